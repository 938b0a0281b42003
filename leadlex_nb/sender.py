"""One request's life: a pacing slot that races the stop, the attempts, and what they cost.

The decision after each attempt is :func:`leadlex_nb.retry.decide` (pure); this module carries it
out. The clock, the sleep and the randomness are injected, so the loop is tested without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from leadlex_nb.errors import (
    AuthenticationError,
    LeadLexError,
    PermissionDeniedError,
    QuotaError,
    ServerUnreachableError,
)
from leadlex_nb.hooks import reset_text
from leadlex_nb.pacing import RateGovernor
from leadlex_nb.plan import Batch
from leadlex_nb.quota import QuotaExhausted, QuotaInfo
from leadlex_nb.results import Outcome
from leadlex_nb.retry import Decision, RetryBudget, RetryPolicy, decide, parse_retry_after
from leadlex_nb.transport import Answer, Transport, TransportFailure
from leadlex_nb.verdicts import BulkAnswer, parse_bulk_answer

log = logging.getLogger("leadlex_nb")

BULK_DELETE_PATH = "/v1/contacts/bulk-delete"
FailureStatus = Literal["not_sent", "unknown"]
# A slot not granted within this long counts as held back by pacing (shown to the user).
_HELD_AFTER = 0.25
# Until the server has answered once, a connect failure most likely means a wrong URL or no network:
# give up after this many attempts (at most 3.5 s of backoff by default) and stop the run.
FIRST_CONTACT_ATTEMPTS = 4


@dataclass(frozen=True)
class Delivered:
    """A 2xx answer and the attempts it took."""

    answer: Answer
    attempts: int


@dataclass(frozen=True)
class Reply:
    """A bulk-delete answer in the documented shape."""

    answer: BulkAnswer
    attempts: int
    request_id: str | None


@dataclass(frozen=True)
class Failure:
    """No usable answer: ``not_sent`` when provably never executed, else ``unknown``."""

    status: FailureStatus
    error_code: str | None
    error_message: str | None
    attempts: int
    request_id: str | None

    def outcome(self, batch: int) -> Outcome:
        return Outcome(self.status, self.error_code, self.error_message, batch, self.attempts or None, self.request_id)


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    started: float = field(default_factory=time.monotonic)


class StopState:
    """The first reason a run stopped; once set, no new request goes out."""

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.error: LeadLexError | None = None
        self.event = asyncio.Event()
        self._announce = announce

    @property
    def stopping(self) -> bool:
        return self.error is not None

    def stop(self, error: LeadLexError) -> None:
        if self.error is None:
            self.error = error
            self.event.set()
            self._announce(f"stopping: {error}")

    def raise_if_stopped(self) -> None:
        if self.error is not None:
            raise self.error


def _coming_reset(quota: QuotaInfo, now: float) -> float | None:
    """The quota's reset time if it is still ahead: a reset already past is never named as the way on."""
    return quota.reset_at if quota.reset_at is not None and quota.reset_at > now else None


def quota_exhausted_error(quota: QuotaInfo, now: float | None = None) -> QuotaError:
    reset_at = _coming_reset(quota, time.time() if now is None else now)
    when = reset_text(reset_at) if reset_at is not None or quota.reset_at is None else (
        " (the server refuses although the reset time it named has passed)")
    return QuotaError(
        "the daily request quota is used up" + when + "; unsent rows are not_sent. Resume the run after the reset.",
        remaining=0,
        reset_at=reset_at,
    )


def quota_shortfall_error(needed: int, quota: QuotaInfo, now: float | None = None) -> QuotaError | None:
    """The stop for a run whose next ``needed`` requests the daily quota cannot cover."""
    if quota.remaining is None or needed <= quota.remaining:
        return None
    reset_at = _coming_reset(quota, time.time() if now is None else now)
    return QuotaError(
        f"this run needs about {needed} more request(s) but the daily quota has {quota.remaining} left"
        f"{reset_text(reset_at)}; nothing was deleted. Run it after the reset, on fewer rows, "
        "or pass ignore_quota=True to start anyway (it stops cleanly when the quota runs out)",
        needed=needed, remaining=quota.remaining, reset_at=reset_at,
    )


async def gather_bounded(
    coroutines: Iterable[Coroutine[Any, Any, Any]], limit: int | Callable[[], int], stop: StopState
) -> None:
    """Run ``coroutines`` at most ``limit`` at a time; those not started when the run stops never start.

    A callable ``limit`` is asked again as each one finishes, and the bound grows to it (it never
    shrinks: requests above a lowered rate only wait in pacing's queue).
    """
    bound = limit if callable(limit) else (lambda: limit)
    allowed = max(1, bound())
    semaphore = asyncio.Semaphore(allowed)

    def grow() -> None:
        nonlocal allowed
        wanted = bound()
        while allowed < wanted:
            allowed += 1
            semaphore.release()

    async def bounded(coroutine: Coroutine[Any, Any, Any]) -> None:
        try:
            async with semaphore:
                if not stop.stopping:
                    await coroutine
            grow()
        finally:
            coroutine.close()  # a no-op once awaited; else it was never started

    pending = list(coroutines)
    tasks = [asyncio.ensure_future(bounded(c)) for c in pending]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for coroutine in pending:  # a task cancelled before its first step never ran bounded()'s finally
            coroutine.close()
        raise


class Sender:
    """Sends requests for one run: paced by the governor, retried by :func:`decide`."""

    def __init__(
        self,
        transport: Transport,
        governor: RateGovernor,
        policy: RetryPolicy,
        stop: StopState,
        *,
        stats: Stats | None = None,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        on_pacing: Callable[[float | None], None] | None = None,
    ) -> None:
        self.transport = transport
        self.governor = governor
        self.policy = policy
        self.stop = stop
        self.stats = stats or Stats()
        self._budget = RetryBudget.from_policy(policy)
        self._rand = rand
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._header_warned = False
        self._answered = False  # whether any request of the run got an answer
        self._first_contact = replace(policy, max_attempts=min(policy.max_attempts, FIRST_CONTACT_ATTEMPTS))
        # Told the seconds until the next grant while pacing holds requests back, None once it no longer does.
        self._on_pacing = on_pacing
        self._held = 0

    async def request(
        self,
        phase: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
        optional: bool = False,
        own_limit: bool = False,
        repeatable: bool = True,
        on_send: Callable[[], None] | None = None,
    ) -> Delivered | Failure:
        """Send until a decision settles it. ``on_send`` runs just before each attempt leaves.

        ``optional``: a 403 gives up instead of stopping the run. ``own_limit``: a 429 is the endpoint's
        own limit (the export's), so it gives up instead of waiting. ``repeatable=False`` (a create
        without an idempotency key): an attempt that may have executed is never repeated; the request
        ends ``unknown`` and the caller finds out what happened.
        """
        attempts = 0
        rate_limited = 0  # attempts answered 429: never executed, so they count apart
        may_have_executed = False
        code: str | None = None
        message: str | None = None
        request_id: str | None = None
        while True:
            if self.stop.stopping:
                return _failure(may_have_executed, "stopped", f"run stopped: {self.stop.error}", attempts, request_id)
            try:
                sent_at = await self._slot()
            except QuotaExhausted:
                self.stop.stop(quota_exhausted_error(self.governor.quota, self._wall_clock()))
                continue
            if sent_at is None:
                continue
            attempts += 1
            self.stats.requests[phase] += 1
            if on_send is not None:
                on_send()
            status: int | None = None
            failure_kind: str | None = None
            retry_after: float | None = None
            try:
                answer = await self.transport.request(
                    method, path, body=body, params=params, idempotency_key=idempotency_key
                )
            except TransportFailure as failure:
                self.governor.on_answer(sent_at, None, None)
                failure_kind = failure.kind
                code, message = f"transport_{failure.kind}", str(failure)
            else:
                self._answered = True
                self._check_headers(answer, self.governor.on_answer(sent_at, answer.status, answer.headers))
                status = answer.status
                request_id = answer.request_id or request_id
                if 200 <= status < 300:
                    return Delivered(answer, attempts)
                code, message = _error_text(answer)
                if status == 429:
                    retry_after = parse_retry_after(answer.headers.get("retry-after"), self._wall_clock())
            unreached = failure_kind == "connect" and not self._answered
            decision = decide(
                status=status, failure=failure_kind, attempt=attempts - rate_limited,
                rate_limited_before=rate_limited,
                policy=self._first_contact if unreached else self.policy, retry_after=retry_after,
                quota_left=self.governor.quota.remaining, optional=optional, own_limit=own_limit,
                budget_left=self._budget.remaining > 0, rand=self._rand,
            )
            may_have_executed = may_have_executed or decision.may_have_executed
            if decision.rate_limited:
                self.stats.rate_limited += 1
                if not own_limit and decision.stop is None:  # the export's 429 is its own hourly limit
                    self.governor.on_rate_limited(sent_at, retry_after)
            if decision.action == "stop_run":
                self.stop.stop(self._stop_error(decision, message))
            elif decision.action == "give_up" and unreached and not self._answered:
                self.stop.stop(ServerUnreachableError(
                    f"could not connect to the API in {attempts} attempt(s) ({message}); the run stopped. "
                    "Check the base URL and the network, then run again"
                ))
            if decision.action != "retry" or self.stop.stopping or (not repeatable and may_have_executed):
                if decision.gave_up == "budget":
                    message = f"{message} (retry budget of the run used up)"
                return _failure(may_have_executed, code, message, attempts, request_id)
            if decision.rate_limited:
                rate_limited += 1
            else:
                self._budget.try_spend()
            if decision.delay > 0:
                await self._sleep(decision.delay)

    async def send_bulk(self, batch: Batch, on_send: Callable[[], None] | None = None) -> Reply | Failure:
        """One bulk-delete batch (dry run or delete) with its fixed key and body."""
        sent = await self.request(
            batch.phase, "POST", BULK_DELETE_PATH, body=batch.body, idempotency_key=batch.idempotency_key,
            on_send=on_send,
        )
        if isinstance(sent, Failure):
            return sent
        answer = sent.answer
        parsed = parse_bulk_answer(answer.json())
        if parsed is None:
            log.warning("bulk-delete answer without the documented shape (X-Request-ID %s): %r",
                        answer.request_id, answer.text_excerpt(200))
            # The server answered 2xx, so it may have executed; its answer proves nothing.
            return Failure("unknown", "invalid_answer", "the answer did not have the documented shape",
                           sent.attempts, answer.request_id)
        return Reply(parsed, sent.attempts, answer.request_id)

    async def _slot(self) -> float | None:
        """A send slot from the governor, or None once the run stops.

        Pacing can hold a caller for most of a window; a stop (401, 403, quota, Stop) must not
        wait for that, so the wait races the stop.
        """
        grant = asyncio.ensure_future(self.governor.acquire())
        stopped = asyncio.ensure_future(self.stop.event.wait())
        held = False
        try:
            done, _ = await asyncio.wait({grant, stopped}, timeout=_HELD_AFTER, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                held = True
                self._held += 1
                if self._on_pacing is not None:
                    self._on_pacing(self.governor.next_grant_in())
                await asyncio.wait({grant, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if held:
                self._held -= 1
                if self._held == 0 and self._on_pacing is not None:
                    self._on_pacing(None)
            stopped.cancel()
            if not grant.done():
                grant.cancel()
                await asyncio.gather(grant, return_exceptions=True)
        if grant.cancelled():
            return None
        sent_at = grant.result()  # may raise QuotaExhausted
        if self.stop.stopping:
            self.governor.on_answer(sent_at, None, None)  # granted, never sent
            return None
        return sent_at

    def _stop_error(self, decision: Decision, message: str | None) -> LeadLexError:
        if decision.stop == "auth":
            return AuthenticationError(
                "the API key was refused (401 invalid_key): it is invalid, revoked or expired; "
                "the run stopped and sent nothing more"
            )
        if decision.stop == "permission":
            return PermissionDeniedError(
                f"the API key lacks a permission (403 insufficient_permissions: {message}); "
                "bulk delete needs write:contacts; the run stopped and sent nothing more"
            )
        return quota_exhausted_error(self.governor.quota, self._wall_clock())

    def _check_headers(self, answer: Answer, quota: QuotaInfo) -> None:
        """Log (once per run) headers that are missing or garbled; they never become a guess."""
        if self._header_warned:
            return
        parsed = (("X-RateLimit-Limit", quota.limit), ("X-RateLimit-Remaining", quota.remaining),
                  ("X-RateLimit-Reset", quota.reset_at))
        problems = [name for name, value in parsed if name.lower() in answer.headers and value is None]
        if answer.request_id is None:
            problems.append("X-Request-ID (missing)")
        if problems:
            self._header_warned = True
            log.warning("answer %s (X-Request-ID %s) has unusable headers: %s; the quota is not read from them",
                        answer.status, answer.request_id, ", ".join(problems))


def _error_text(answer: Answer) -> tuple[str, str | None]:
    code, message = answer.error_code()
    if code is None:
        log.warning("non-JSON %s answer (X-Request-ID %s): %r", answer.status, answer.request_id,
                    answer.text_excerpt(120))
        return f"http_{answer.status}", f"HTTP {answer.status} without the API's error envelope"
    return code, message


def _failure(executed: bool, code: str | None, message: str | None, attempts: int, request_id: str | None) -> Failure:
    return Failure("unknown" if executed else "not_sent", code, message, attempts, request_id)
