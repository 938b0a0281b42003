"""Async orchestration: dry run → attribution → confirmation → delete, with a journal.

Everything that decides lives in pure modules (``verdicts``, ``attribution``, ``retry``,
``plan``, ``results``); this module carries the decisions out over the transport, paced by
one shared :class:`RateGovernor`, and writes each step to the journal before and after it
happens. Front ends (notebook, terminal, CLI) plug in through :class:`Hooks`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Coroutine, Mapping, Protocol, Sequence, Union

import pandas as pd

from leadlex_nb.attribution import EXPORT, LISTING, LIST_PAGE_SIZE, EXPORT_LIMIT, Ambiguity, attribute
from leadlex_nb.config import Settings
from leadlex_nb.errors import (
    AuthenticationError,
    ConfirmationDeclined,
    LeadLexError,
    NothingToDeleteError,
    PermissionDeniedError,
    QuotaError,
    RunInterrupted,
)
from leadlex_nb.ids import unique_valid_ids
from leadlex_nb.journal import Journal
from leadlex_nb.pacing import QuotaExhausted, QuotaInfo, RateGovernor
from leadlex_nb.plan import Batch, idempotency_key, make_batches, plan_fingerprint, request_body
from leadlex_nb.results import Outcome, build_result_frame
from leadlex_nb.retry import RetryBudget, is_retryable, next_delay, parse_retry_after
from leadlex_nb.transport import Answer, HttpTransport, TransportFailure
from leadlex_nb.verdicts import BulkAnswer, Verdict, judge_delete, judge_dry_run, parse_bulk_answer

log = logging.getLogger("leadlex_nb")

BULK_DELETE_PATH = "/v1/contacts/bulk-delete"
LIST_PATH = "/v1/contacts"
EXPORT_PATH = "/v1/contacts/export"
DRY_RUN, ATTRIBUTION, DELETE = "dry_run", "attribution", "delete"
# An Idempotency-Key is honoured for 24 h; resume resends blindly only well inside that.
IDEMPOTENCY_WINDOW_SECONDS = 23 * 3600


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[[int, str], Progress]
ConfirmResult = Union[bool, Awaitable[bool]]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class PlanSummary:
    """What the confirmation step shows: exactly what will be sent for deletion."""

    run_id: str
    rows: int
    unique_ids: int
    counts: dict[str, int]          # dry-run status -> unique IDs
    to_delete: int                  # IDs in the plan
    unresolved: int                 # of which existence was not pinned down
    delete_requests: int
    fingerprint: str
    quota_remaining: int | None
    quota_reset_at: float | None
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [
            f"Run {self.run_id}: {self.rows} rows, {self.unique_ids} unique valid contact IDs.",
            "Dry run: " + ", ".join(f"{n} {s}" for s, n in self.counts.items() if n) + ".",
            f"Will permanently delete up to {self.to_delete} contacts in {self.delete_requests} request(s)"
            + (f" ({self.unresolved} of them not proven to exist)." if self.unresolved else "."),
        ]
        if self.quota_remaining is not None:
            lines.append(f"Daily quota: {self.quota_remaining} requests left{_reset_text(self.quota_reset_at)}.")
        lines.extend(self.notes)
        lines.append(f"Plan fingerprint: {self.fingerprint[:16]}")
        return "\n".join(lines)


Confirm = Callable[[PlanSummary], ConfirmResult]


@dataclass
class Hooks:
    """How a front end takes part in a run."""

    confirm: Confirm | None = None                  # None: delete the plan without asking
    progress: ProgressFactory = lambda total, desc: _NoProgress()
    announce: Callable[[str], None] = lambda message: log.info("%s", message)


def _reset_text(reset_at: float | None) -> str:
    if reset_at is None:
        return ""
    return ", resets " + datetime.fromtimestamp(reset_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Reply:
    answer: BulkAnswer
    attempts: int
    request_id: str | None


@dataclass(frozen=True)
class Failure:
    status: str  # not_sent | unknown
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


class Run:
    """One bulk-delete run over one normalised input."""

    def __init__(
        self,
        settings: Settings,
        ids: pd.DataFrame,
        *,
        dry_run: bool,
        hooks: Hooks,
        run_id: str | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.ids = ids
        self.dry_run = dry_run
        self.hooks = hooks
        self.run_id = run_id or uuid.uuid4().hex[:16]
        self.rand = rand
        self.stats = Stats()
        self.dry_outcomes: dict[str, Outcome] = {}
        self.delete_outcomes: dict[str, Outcome] = {}
        self.plan: list[str] | None = None
        self.notes: list[str] = []
        self._stop_error: LeadLexError | None = None
        self._in_flight: dict[tuple[str, int], Batch] = {}
        self._transport: HttpTransport | None = None
        self._governor: RateGovernor | None = None
        self._budget = RetryBudget.from_policy(settings.retry)
        self._journal: Journal | None = None
        self.resumed = False  # set by resume: the journal already holds this run
        self._unsent_reason = "not sent"
        self._header_warned = False
        self._stopped = asyncio.Event()

    # -- entry points ------------------------------------------------------------------

    async def execute(self) -> pd.DataFrame:
        unique = unique_valid_ids(self.ids)
        if not unique:
            raise NothingToDeleteError(
                f"no valid contact ID among {len(self.ids)} row(s); nothing was sent",
                result=None,
            )
        async with self._session():
            self._journal_start()
            return await self._guarded(self._full_run(unique))

    async def _full_run(self, unique: list[str]) -> pd.DataFrame:
        await self._dry_run_phase(unique)
        if not self.dry_run:
            batches = self._delete_batches(unique)
            await self._confirm(self._summarise_plan(unique, batches))
            await self._delete_phase(batches)
        self._set_state("finished")
        return self._result()

    async def resume_delete(self, batches: Sequence[Batch], expired: Sequence[Batch]) -> pd.DataFrame:
        """Finish a journaled run: resend ``batches`` with their keys; dry-run-check ``expired`` first."""

        async def finish() -> pd.DataFrame:
            checked = await self._recheck_expired(expired)
            await self._delete_phase(list(batches) + checked)
            self._set_state("finished")
            return self._result()

        async with self._session():
            return await self._guarded(finish())

    async def _guarded(self, work: Coroutine[Any, Any, pd.DataFrame]) -> pd.DataFrame:
        """Turn a cancellation or a stop into an exception that carries the partial result."""
        try:
            return await work
        except asyncio.CancelledError:
            self._set_state("interrupted")
            raise RunInterrupted(
                f"run {self.run_id} interrupted; requests in flight are marked unknown. "
                f"Finish it with leadlex_nb.resume({self.run_id!r})",
                result=self._result(interrupted=True),
                run_id=self.run_id,
            ) from None
        except LeadLexError as error:
            if error.result is None:
                error.result = self._result()
                error.run_id = self.run_id
            self._set_state("stopped")
            raise

    # -- plumbing ----------------------------------------------------------------------

    def _session(self) -> _Session:
        return _Session(self)

    def attach_journal(self, journal: Journal | None) -> None:
        self._journal = journal

    def _journal_start(self) -> None:
        if self._journal is None or self.resumed:
            return
        self._journal.start_run(
            self.run_id,
            base_url=self.settings.base_url,
            key_fingerprint=self.settings.api_key.fingerprint,
            dry_run=self.dry_run,
            meta={"batch_size": self.settings.batch_size},
            ids=self.ids,
        )

    def _set_state(self, state: str, **kwargs: Any) -> None:
        if self._journal is not None:
            self._journal.set_state(self.run_id, state, **kwargs)

    def _stop(self, error: LeadLexError) -> None:
        if self._stop_error is None:
            self._stop_error = error
            self._stopped.set()
            self.hooks.announce(f"stopping: {error}")

    async def _acquire_unless_stopped(self) -> float | None:
        """A send slot from the governor, or None once the run stops.

        Pacing can hold a caller for most of a window; a stop (401, 403, quota) must not wait
        for that, so the wait races the stop.
        """
        assert self._governor is not None
        grant = asyncio.ensure_future(self._governor.acquire())
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({grant, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not grant.done():
                grant.cancel()
                await asyncio.gather(grant, return_exceptions=True)
        if grant.cancelled():
            return None
        sent_at = grant.result()  # may raise QuotaExhausted
        if self.stopping:
            self._governor.on_answer(sent_at, None, None)  # granted, never sent
            return None
        return sent_at

    @property
    def stopping(self) -> bool:
        return self._stop_error is not None

    def _raise_if_stopped(self) -> None:
        if self._stop_error is not None:
            raise self._stop_error

    # -- one request, with pacing and retries ------------------------------------------

    async def _request(
        self,
        phase: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
        optional: bool = False,
    ) -> tuple[Answer | None, Failure | None, int]:
        """Send until an answer settles it: (answer, None, attempts) on 2xx, else (None, failure, attempts).

        ``optional`` requests (attribution reads) treat 403 and 429 as a refusal to fall back
        from: a missing read:contacts must not stop a deletion, and the export's own hourly
        limit must not slow down the per-minute pacing.
        """
        assert self._transport is not None and self._governor is not None
        attempts = 0
        may_have_executed = False
        last_code: str | None = None
        last_message: str | None = None
        request_id: str | None = None
        while True:
            if self.stopping:
                return None, self._failure(may_have_executed, "stopped", f"run stopped: {self._stop_error}", attempts, request_id), attempts
            try:
                sent_at = await self._acquire_unless_stopped()
            except QuotaExhausted:
                self._stop(self._quota_exhausted_error())
                continue
            if sent_at is None:
                continue
            attempts += 1
            self.stats.requests[phase] += 1
            retry_after: float | None = None
            try:
                answer = await self._transport.request(
                    method, path, body=body, params=params, idempotency_key=idempotency_key
                )
            except TransportFailure as failure:
                self._governor.on_answer(sent_at, None, None)
                may_have_executed = may_have_executed or failure.may_have_executed
                last_code, last_message = f"transport_{failure.kind}", str(failure)
                retryable = is_retryable(None, "connection" if failure.kind == "connect" else failure.kind)
            else:
                self._check_headers(answer, self._governor.on_answer(sent_at, answer.status, answer.headers))
                request_id = answer.request_id or request_id
                if 200 <= answer.status < 300:
                    return answer, None, attempts
                last_code, last_message = answer.error_code()
                if last_code is None:
                    log.warning(
                        "non-JSON %s answer (X-Request-ID %s): %r", answer.status, answer.request_id,
                        answer.text_excerpt(120),
                    )
                    last_code = f"http_{answer.status}"
                    last_message = f"HTTP {answer.status} without the API's error envelope"
                if answer.status == 401:
                    self._stop(AuthenticationError(
                        "the API key was refused (401 invalid_key): it is invalid, revoked or expired; "
                        "the run stopped and sent nothing more"
                    ))
                elif answer.status == 403 and optional:
                    return None, self._failure(False, last_code, last_message, attempts, request_id), attempts
                elif answer.status == 429 and optional:
                    self.stats.rate_limited += 1
                    return None, self._failure(False, last_code, last_message, attempts, request_id), attempts
                elif answer.status == 403:
                    self._stop(PermissionDeniedError(
                        f"the API key lacks a permission (403 insufficient_permissions: {last_message}); "
                        "bulk delete needs write:contacts; the run stopped and sent nothing more"
                    ))
                elif answer.status == 429:
                    self.stats.rate_limited += 1
                    retry_after = parse_retry_after(answer.headers.get("retry-after"), time.time())
                    if self._governor.quota.remaining == 0:
                        self._stop(self._quota_exhausted_error())
                    else:
                        self._governor.on_rate_limited(sent_at, retry_after)
                elif answer.status >= 500 or answer.status == 409:
                    # The server may have executed before failing, or an earlier attempt is executing.
                    may_have_executed = True
                retryable = is_retryable(answer.status)
            if self.stopping or not retryable or attempts >= self.settings.retry.max_attempts:
                return None, self._failure(may_have_executed, last_code, last_message, attempts, request_id), attempts
            if not self._budget.try_spend():
                return None, self._failure(
                    may_have_executed, last_code, f"{last_message} (retry budget of the run used up)", attempts, request_id
                ), attempts
            # A 429 is paced by the governor; other failures back off with full jitter.
            delay = 0.0 if retry_after is None and last_code == "rate_limited" else next_delay(
                attempts - 1, self.settings.retry, self.rand, retry_after
            )
            if delay > 0:
                await asyncio.sleep(delay)

    def _check_headers(self, answer: Answer, quota: QuotaInfo) -> None:
        """Log (once per run) headers that are missing or garbled; they never become a guess."""
        if self._header_warned:
            return
        problems = [name for name, value in (("X-RateLimit-Limit", quota.limit), ("X-RateLimit-Remaining", quota.remaining),
                                             ("X-RateLimit-Reset", quota.reset_at))
                    if name.lower() in answer.headers and value is None]
        if answer.request_id is None:
            problems.append("X-Request-ID (missing)")
        if problems:
            self._header_warned = True
            log.warning("answer %s (X-Request-ID %s) has unusable headers: %s; the quota is not read from them",
                        answer.status, answer.request_id, ", ".join(problems))

    @staticmethod
    def _failure(may_have_executed: bool, code: str | None, message: str | None, attempts: int, request_id: str | None) -> Failure:
        return Failure("unknown" if may_have_executed else "not_sent", code, message, attempts, request_id)

    def _quota_exhausted_error(self) -> QuotaError:
        assert self._governor is not None
        quota = self._governor.quota
        return QuotaError(
            "the daily request quota is used up"
            + _reset_text(quota.reset_at)
            + "; unsent rows are not_sent. Resume the run after the reset.",
            remaining=0,
            reset_at=quota.reset_at,
        )

    async def _send_bulk(self, batch: Batch) -> Reply | Failure:
        """Send one bulk-delete batch (dry run or delete) with its fixed key and body."""
        key = (batch.phase, batch.index)
        self._in_flight[key] = batch
        if self._journal is not None:
            self._journal.sending(self.run_id, batch)
        try:
            answer, failure, attempts = await self._request(
                batch.phase, "POST", BULK_DELETE_PATH, body=batch.body, idempotency_key=batch.idempotency_key
            )
        finally:
            self._in_flight.pop(key, None)
        if failure is not None:
            return failure
        assert answer is not None
        parsed = parse_bulk_answer(answer.json())
        if parsed is None:
            log.warning(
                "bulk-delete answer without the documented shape (X-Request-ID %s): %r",
                answer.request_id, answer.text_excerpt(200),
            )
            # The server answered 2xx, so it may have executed; its answer proves nothing.
            return Failure("unknown", "invalid_answer", "the answer did not have the documented shape", attempts, answer.request_id)
        return Reply(parsed, attempts, answer.request_id)

    def _batches(
        self,
        phase: str,
        ids: Sequence[str],
        *,
        dry_run: bool,
        start_index: int = 0,
        group: str = "proven",
        size: int | None = None,
        key_phase: str | None = None,
    ) -> list[Batch]:
        """Batches with their idempotency key and exact body fixed once, before any send."""
        return [
            Batch(
                index=start_index + offset,
                phase=phase,
                ids=chunk,
                idempotency_key=idempotency_key(self.run_id, key_phase or phase, start_index + offset, chunk),
                body=request_body(chunk, dry_run),
                group=group,
            )
            for offset, chunk in enumerate(make_batches(list(ids), size or self.settings.batch_size))
        ]

    # -- dry run -------------------------------------------------------------------------

    async def _dry_run_phase(self, unique: list[str]) -> None:
        batches = self._batches(DRY_RUN, unique, dry_run=True)
        if self._journal is not None:
            self._journal.plan_batches(self.run_id, batches)
        bar = self.hooks.progress(len(unique), "dry run")
        ambiguities: list[Ambiguity] = []
        try:
            # The first batch goes alone: its headers tell whether the quota can cover the run.
            first = await self._dry_run_batch(batches[0], ambiguities, bar)
            if first and not self.settings.ignore_quota:
                self._check_quota(needed=2 * len(batches) - 1)
            await self._gather(self._dry_run_batch(b, ambiguities, bar) for b in batches[1:])
        finally:
            bar.close()
        self._raise_if_stopped()
        if ambiguities:
            self._journal_outcomes(DRY_RUN, await self._attribute(ambiguities))

    async def _attribute(self, ambiguities: list[Ambiguity]) -> dict[str, Outcome]:
        """Pin down what attribution can; the rest of the ambiguous batches stay unresolved."""
        clean = [a for a in ambiguities if a.missing >= 0]
        outcomes, notes = await attribute(clean, _AttributionSource(self), self.settings.attribution_budget,
                                          self.hooks.announce)
        self.notes.extend(notes)
        for amb in ambiguities:
            reason = (f"{amb.missing} of the {len(amb.ids)} IDs in this batch are missing; which ones was not pinned down"
                      if amb.missing >= 0 else "the dry-run answer did not add up")
            for contact_id in amb.ids:
                outcomes.setdefault(contact_id, Outcome("unresolved", None, reason, amb.batch, 1, None))
        self.dry_outcomes.update(outcomes)
        return outcomes

    def _journal_outcomes(self, phase: str, outcomes: Mapping[str, Outcome]) -> None:
        if self._journal is not None:
            self._journal.record_outcomes(self.run_id, phase, outcomes)

    async def _dry_run_batch(self, batch: Batch, ambiguities: list[Ambiguity], bar: Progress) -> bool:
        reply = await self._send_bulk(batch)
        if isinstance(reply, Failure):
            # A dry run changes nothing, so a failed one is never "unknown".
            outcome = Outcome("not_sent", reply.error_code, f"dry run failed: {reply.error_message}",
                              batch.index, reply.attempts or None, reply.request_id)
            outcomes = {cid: outcome for cid in batch.ids}
            self.dry_outcomes.update(outcomes)
            self._journal_answer(batch, "failed", None, outcomes)
            bar.update(len(batch.ids))
            return False
        verdict = self._judge(judge_dry_run, batch, reply)
        self.dry_outcomes.update(verdict.outcomes)
        if verdict.unresolved:
            ambiguities.append(Ambiguity(batch.index, verdict.unresolved, verdict.missing_among_unresolved))
        self._journal_answer(batch, "answered", reply, verdict.outcomes)
        bar.update(len(batch.ids))
        return True

    @staticmethod
    def _judge(judge: Callable[..., Verdict], batch: Batch, reply: Reply) -> Verdict:
        verdict = judge(batch.ids, reply.answer, batch=batch.index, attempts=reply.attempts, request_id=reply.request_id)
        if verdict.inconsistency is not None:
            log.warning("%s answer for batch %d does not add up (X-Request-ID %s): %s",
                        batch.phase, batch.index, reply.request_id, verdict.inconsistency)
        return verdict

    def _journal_answer(self, batch: Batch, state: str, reply: Reply | None, outcomes: Mapping[str, Outcome]) -> None:
        if self._journal is None:
            return
        answer = None
        if reply is not None:
            answer = {"deleted_count": reply.answer.deleted_count, "not_found_count": reply.answer.not_found_count,
                      "errors": [e.__dict__ for e in reply.answer.errors]}
        self._journal.answered(self.run_id, batch, state=state, http_status=200 if reply else None,
                               request_id=reply.request_id if reply else None, answer=answer, outcomes=outcomes)

    async def _gather(self, coroutines: Any) -> None:
        semaphore = asyncio.Semaphore(self.settings.concurrency)

        async def bounded(coroutine: Coroutine[Any, Any, Any]) -> None:
            try:
                async with semaphore:
                    if not self.stopping:
                        await coroutine
            finally:
                coroutine.close()  # a no-op once awaited; else it was never started

        tasks = [asyncio.ensure_future(bounded(c)) for c in coroutines]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _check_quota(self, needed: int) -> None:
        assert self._governor is not None
        quota = self._governor.quota
        if quota.remaining is not None and needed > quota.remaining:
            self._stop(QuotaError(
                f"this run needs about {needed} more request(s) but the daily quota has {quota.remaining} left"
                f"{_reset_text(quota.reset_at)}; nothing was deleted. Run it after the reset, on fewer rows, "
                "or pass ignore_quota=True to start anyway (it stops cleanly when the quota runs out)",
                needed=needed, remaining=quota.remaining, reset_at=quota.reset_at,
            ))

    # -- attribution ---------------------------------------------------------------------

    # -- confirm and delete --------------------------------------------------------------

    def _delete_batches(self, unique: list[str]) -> list[Batch]:
        """The plan: what the dry run found deletable, proven first, then the unresolved."""
        status = {cid: o.status for cid, o in self.dry_outcomes.items()}
        proven = [cid for cid in unique if status.get(cid) == "would_delete"]
        unproven = [cid for cid in unique if status.get(cid) == "unresolved"]
        self.plan = proven + unproven
        # Unproven IDs travel apart, so their ambiguous counts cannot blur proven rows.
        batches = self._batches(DELETE, proven, dry_run=False, group="proven")
        batches += self._batches(DELETE, unproven, dry_run=False, start_index=len(batches), group="unresolved")
        return batches

    def _summarise_plan(self, unique: list[str], batches: list[Batch]) -> PlanSummary:
        """The confirmed fingerprint is taken from the very batches that will be sent."""
        assert self._governor is not None
        counts = Counter(self.dry_outcomes[cid].status if cid in self.dry_outcomes else "not_sent" for cid in unique)
        quota = self._governor.quota
        return PlanSummary(
            run_id=self.run_id, rows=len(self.ids), unique_ids=len(unique),
            counts={s: counts[s] for s in ("would_delete", "unresolved", "not_found", "error", "not_sent") if counts[s]},
            to_delete=sum(len(b.ids) for b in batches),
            unresolved=sum(len(b.ids) for b in batches if b.group == "unresolved"),
            delete_requests=len(batches),
            fingerprint=plan_fingerprint(cid for b in batches for cid in b.ids), quota_remaining=quota.remaining, quota_reset_at=quota.reset_at,
            notes=tuple(self.notes),
        )

    async def _confirm(self, summary: PlanSummary) -> None:
        self._set_state("confirming", plan_fingerprint=summary.fingerprint)
        if summary.to_delete == 0:
            self.hooks.announce("nothing to delete: the dry run found no deletable contact")
            return
        if not self.settings.ignore_quota:
            self._check_quota(needed=summary.delete_requests)
            self._raise_if_stopped()
        if self.hooks.confirm is None:
            return
        decision = self.hooks.confirm(summary)
        if asyncio.iscoroutine(decision) or isinstance(decision, asyncio.Future):
            decision = await decision
        if decision is not True:
            self._unsent_reason = "the deletion plan was not confirmed"
            raise ConfirmationDeclined("the deletion plan was not confirmed; nothing was deleted")

    async def _delete_phase(self, batches: list[Batch]) -> None:
        if not batches:
            return
        self._set_state("deleting")
        if self._journal is not None:
            self._journal.plan_batches(self.run_id, batches)
        self.plan = [cid for b in batches for cid in b.ids] if self.plan is None else self.plan
        bar = self.hooks.progress(sum(len(b.ids) for b in batches), "delete")
        try:
            await self._gather(self._delete_batch(b, bar) for b in batches)
        finally:
            bar.close()
        self._raise_if_stopped()

    async def _delete_batch(self, batch: Batch, bar: Progress) -> None:
        reply = await self._send_bulk(batch)
        if isinstance(reply, Failure):
            outcomes = {cid: reply.outcome(batch.index) for cid in batch.ids}
            self.delete_outcomes.update(outcomes)
            self._journal_answer(batch, "failed" if reply.status == "not_sent" else "sending", None, outcomes)
        else:
            verdict = self._judge(judge_delete, batch, reply)
            self.delete_outcomes.update(verdict.outcomes)
            self._journal_answer(batch, "answered", reply, verdict.outcomes)
        bar.update(len(batch.ids))

    async def _recheck_expired(self, batches: Sequence[Batch]) -> list[Batch]:
        """Batches whose key may have expired: dry-run them with a fresh key before resending."""
        resend: list[Batch] = []
        for batch in batches:
            probe = self._batches(f"recheck-{uuid.uuid4().hex[:8]}", batch.ids, dry_run=True,
                                  start_index=batch.index)[0]
            reply = await self._send_bulk(probe)
            if isinstance(reply, Failure):
                self.delete_outcomes.update({cid: reply.outcome(batch.index) for cid in batch.ids})
                continue
            verdict = judge_dry_run(batch.ids, reply.answer, batch=batch.index, attempts=reply.attempts,
                                    request_id=reply.request_id)
            gone = [cid for cid, o in verdict.outcomes.items() if o.status == "not_found"]
            self.delete_outcomes.update({cid: Outcome("gone", None, "already absent when the run was resumed",
                                                      batch.index, reply.attempts, reply.request_id) for cid in gone})
            still_there = [cid for cid in batch.ids if cid not in gone]
            if still_there:
                # A fresh key: the old one may have expired, and these IDs were just seen to exist.
                resend += self._batches(DELETE, still_there, dry_run=False, start_index=batch.index,
                                        group=batch.group, key_phase=f"{DELETE}-resumed-{uuid.uuid4().hex[:8]}")
        return resend

    # -- results -------------------------------------------------------------------------

    def _result(self, *, interrupted: bool = False) -> pd.DataFrame:
        outcomes: dict[str, Outcome] = {**self.dry_outcomes, **self.delete_outcomes}
        if self.plan is not None:
            # A planned ID never settled by a delete answer: in flight -> unknown, else not_sent.
            in_flight = {cid for b in self._in_flight.values() if b.phase == DELETE for cid in b.ids}
            reason = f"run stopped: {self._stop_error}" if self._stop_error else self._unsent_reason
            if interrupted:
                reason = "interrupted before this batch was sent"
            for cid in self.plan:
                if cid in self.delete_outcomes:
                    continue
                if cid in in_flight:
                    outcomes[cid] = Outcome("unknown", "interrupted", "in flight when the run was interrupted")
                else:
                    dry = self.dry_outcomes.get(cid)
                    outcomes[cid] = Outcome("not_sent", None, f"{reason} (dry run: {dry.status})" if dry else reason)
        unsent_reason = "run stopped before this ID was sent" if self._stop_error or interrupted else None
        frame = build_result_frame(self.ids, outcomes, unsent_status="not_sent", unsent_reason=unsent_reason)
        frame.attrs["leadlex"] = self.report()
        return frame

    def report(self) -> dict[str, Any]:
        quota = self._governor.quota if self._governor is not None else None
        return {
            "run_id": self.run_id,
            "requests": dict(self.stats.requests),
            "rate_limited": self.stats.rate_limited,
            "wall_seconds": round(time.monotonic() - self.stats.started, 3),
            "quota_remaining": quota.remaining if quota else None,
            "notes": list(self.notes),
        }


class _Session:
    """Opens the transport and governor for the length of a run."""

    def __init__(self, run: Run) -> None:
        self.run = run

    async def __aenter__(self) -> None:
        settings = self.run.settings
        self.run._governor = RateGovernor(settings.rate_limit, learn_window=settings.rate_window)
        transport = HttpTransport(settings.base_url, settings.api_key, timeout=settings.timeout,
                                  max_connections=settings.concurrency)
        self.run._transport = await transport.__aenter__()

    async def __aexit__(self, *exc_info: object) -> None:
        if self.run._transport is not None:
            await self.run._transport.close()
            self.run._transport = None


class _AttributionSource:
    """Attribution's I/O, carried out through the run's paced, retrying requests."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.counter = 0

    async def dry_run(self, batch: int, ids: Sequence[str]) -> tuple[BulkAnswer, int, str | None] | None:
        self.counter += 1
        probe = self.run._batches(ATTRIBUTION, ids, dry_run=True, start_index=batch, size=len(ids),
                                  key_phase=f"{ATTRIBUTION}-{self.counter}")[0]
        reply = await self.run._send_bulk(probe)
        if isinstance(reply, Failure):
            return None
        return reply.answer, reply.attempts, reply.request_id

    async def workspace_total(self) -> int | None:
        answer, failure, _ = await self.run._request(
            ATTRIBUTION, "GET", LIST_PATH, params={"page": 1, "per_page": 1}, optional=True
        )
        if failure is not None or answer is None:
            return None
        payload = answer.json()
        try:
            total = payload["meta"]["total"]
        except (TypeError, KeyError):
            return None
        return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None

    async def read_ids(self, strategy: str, workspace_total: int) -> tuple[set[str], str | None] | None:
        if strategy == EXPORT:
            answer, failure, _ = await self.run._request(
                ATTRIBUTION, "GET", EXPORT_PATH, params={"fields": "id", "limit": EXPORT_LIMIT}, optional=True
            )
            if failure is not None or answer is None:
                return None
            try:
                reader = csv.DictReader(io.StringIO(answer.body.decode("utf-8")))
                ids = {row["id"].strip().lower() for row in reader if row.get("id")}
            except (UnicodeDecodeError, KeyError, csv.Error):
                return None
            return ids, answer.request_id
        if strategy == LISTING:
            pages = max(1, -(-workspace_total // LIST_PAGE_SIZE))
            found: set[str] = set()
            request_ids: list[str | None] = []

            async def page(number: int) -> bool:
                answer, failure, _ = await self.run._request(
                    ATTRIBUTION, "GET", LIST_PATH, params={"page": number, "per_page": LIST_PAGE_SIZE, "sort": "created_at"},
                    optional=True,
                )
                if failure is not None or answer is None:
                    return False
                try:
                    contacts = answer.json()["data"]["contacts"]
                    found.update(str(c["id"]).strip().lower() for c in contacts)
                except (TypeError, KeyError):
                    return False
                request_ids.append(answer.request_id)
                return True

            results = await asyncio.gather(*(page(n) for n in range(1, pages + 1)))
            if not all(results):
                return None
            return found, request_ids[0] if request_ids else None
        return None
