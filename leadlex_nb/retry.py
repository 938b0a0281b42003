"""Retry decisions: pure functions over plain data, no I/O and no clock of their own.

Pacing (``pacing.py``) keeps a run under the limits before sending; this module decides what
to do after a request failed: whether to try again, and how long to wait first. The caller
owns the loop, the clock and the randomness, so tests pin all three.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Final, Literal

from leadlex_nb.defaults import DEFAULT_BASE_DELAY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, DEFAULT_RETRY_BUDGET

__all__ = [
    "MAX_RETRY_AFTER",
    "RETRYABLE_FAILURES",
    "Decision",
    "RetryBudget",
    "RetryPolicy",
    "backoff_delay",
    "decide",
    "is_retryable",
    "next_delay",
    "parse_retry_after",
]

#: A Retry-After beyond this is capped: an hour is the longest wait we accept without the user
#: deciding; the daily quota is handled by stopping, not by sleeping (see quota.QuotaExhausted).
MAX_RETRY_AFTER: Final[float] = 3600.0

#: Transport failures without an HTTP status that are worth another try. The transport
#: translates aiohttp's exceptions into these names, so this module never sees aiohttp.
#: ``connect`` never reached the server; the other two may have been executed.
RETRYABLE_FAILURES: Final[frozenset[str]] = frozenset({"connect", "timeout", "connection"})
_MAY_HAVE_EXECUTED: Final[frozenset[str]] = frozenset({"timeout", "connection"})

#: A 429 is never executed and costs no quota, and pacing spaces its retries, so it does not count
#: against ``max_attempts`` or the run's retry budget; this many per request end the trying.
MAX_RATE_LIMITED_ATTEMPTS: Final[int] = 100

# 2**62 * base already exceeds any sane max_delay; clamping the exponent avoids float overflow.
_MAX_EXPONENT: Final[int] = 62


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one run tries. Frozen: shared by all batches without copying."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # per batch, including the first
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    budget: int = DEFAULT_RETRY_BUDGET  # retries across a whole run: a sick server cannot cost 8x the quota

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not (math.isfinite(self.base_delay) and self.base_delay >= 0):
            raise ValueError(f"base_delay must be a finite number >= 0, got {self.base_delay}")
        if not (math.isfinite(self.max_delay) and self.max_delay >= 0):
            raise ValueError(f"max_delay must be a finite number >= 0, got {self.max_delay}")
        if self.budget < 0:
            raise ValueError(f"budget must be >= 0, got {self.budget}")


def is_retryable(status: int | None, failure: str | None = None) -> bool:
    """Whether another attempt may succeed where this one failed.

    ``status`` is the HTTP status, or None when no answer came; then ``failure`` names why
    (``"connect"``, ``"timeout"``, ``"connection"``; anything else is not retried).
    429 (rate limit), 409 (conflict, e.g. the same Idempotency-Key still in progress) and 5xx
    are transient. Every other 4xx is the request's own fault (400, 401, 403, 404, 413, 422...)
    and would fail identically; 2xx/3xx are not failures.
    """
    if status is None:
        return failure in RETRYABLE_FAILURES
    return status in (409, 429) or 500 <= status <= 599


def backoff_delay(retry_number: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Full-jitter exponential backoff: ``rand() * min(max_delay, base_delay * 2**retry_number)``.

    ``retry_number`` counts from 0 (the wait before the first retry). Full jitter rather than
    "equal jitter" because concurrent batches failing together must not retry together.
    ``rand`` returns a float in [0, 1); values outside are clamped so a bad source cannot
    produce a negative or unbounded wait.
    """
    if retry_number < 0:
        raise ValueError(f"retry_number starts at 0, got {retry_number}")
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** min(retry_number, _MAX_EXPONENT))
    r = rand()
    r = 0.0 if not math.isfinite(r) else min(max(r, 0.0), 1.0)
    return r * ceiling


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None if absent or garbled.

    Accepts delta-seconds (``"120"``, also ``"1.5"``) and an HTTP-date. ``now_epoch`` is the
    reference for a date: prefer the server's ``Date`` header (as epoch) over the local clock
    to cancel clock skew. A date in the past gives 0; a negative delta is garbled (None).
    Never raises: the header is undocumented for LeadLex, so anything may arrive.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # float() also accepts "nan", "inf", "1e400": not delta-seconds.
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        # parsedate_to_datetime gives a naive datetime for "-0000": treat it as UTC like RFC 5322.
        epoch = when.timestamp() if when.tzinfo else when.replace(tzinfo=timezone.utc).timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    delta = epoch - now_epoch
    return max(0.0, delta) if math.isfinite(delta) else None


def next_delay(
    retry_number: int,
    policy: RetryPolicy,
    rand: Callable[[], float],
    retry_after: float | None,
) -> float:
    """The wait before retry ``retry_number``: the server's Retry-After when it gave one
    (capped at MAX_RETRY_AFTER), otherwise full-jitter backoff."""
    if retry_after is not None and math.isfinite(retry_after):
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    return backoff_delay(retry_number, policy, rand)


class RetryBudget:
    """Retries left for a whole run, shared by all of its batches.

    One event loop, so no lock: ``try_spend`` runs to completion without awaiting.
    """

    __slots__ = ("_remaining", "_total")

    def __init__(self, total: int) -> None:
        if total < 0:
            raise ValueError(f"a retry budget cannot be negative, got {total}")
        self._total = total
        self._remaining = total

    @classmethod
    def from_policy(cls, policy: RetryPolicy) -> RetryBudget:
        return cls(policy.budget)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        if self._remaining <= 0:
            return False
        self._remaining -= 1
        return True

    @property
    def remaining(self) -> int:
        return self._remaining

    @property
    def spent(self) -> int:
        return self._total - self._remaining

    def __repr__(self) -> str:
        return f"RetryBudget(remaining={self._remaining}, total={self._total})"


Action = Literal["accept", "retry", "give_up", "stop_run"]
StopCause = Literal["auth", "permission", "quota"]
GiveUpCause = Literal["refused", "attempts", "budget"]


@dataclass(frozen=True)
class Decision:
    """What to do after one attempt of one request.

    ``may_have_executed`` is about this attempt: whether the server may have carried it out
    although no success came back (a timeout, a reset, a 5xx, a 409 for a key still running).
    """

    action: Action
    delay: float = 0.0
    may_have_executed: bool = False
    rate_limited: bool = False
    stop: StopCause | None = None
    gave_up: GiveUpCause | None = None


def decide(
    *,
    status: int | None,
    failure: str | None,
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    quota_left: int | None = None,
    optional: bool = False,
    own_limit: bool = False,
    budget_left: bool = True,
    rate_limited_before: int = 0,
    rand: Callable[[], float],
) -> Decision:
    """The decision after attempt number ``attempt`` (from 1) got ``status`` or ``failure``.

    A redirect (3xx) is not followed nor retried, and may have executed: its batch is ``unknown``.
    401 and 403 stop the run (another attempt would be refused the same way), as does a 429
    once the daily quota is used up. ``optional`` requests (workspace reads for attribution and the
    snapshot) give up on 403 instead: a missing read permission must not stop a deletion. With
    ``own_limit`` (the export's 10 calls an hour) a 429 gives up too, instead of waiting for the hour.
    A 429 without Retry-After retries at once: pacing, not a backoff, holds it back. ``attempt``
    counts the attempts not answered 429; ``rate_limited_before`` those that were.
    """
    if status is not None and 200 <= status < 300:
        return Decision("accept")
    # A redirect is never followed, and it proves nothing about execution: a 303 even says the
    # request was processed and its result lies elsewhere.
    redirected = status is not None and 300 <= status < 400
    executed = (status is None and failure in _MAY_HAVE_EXECUTED) or status == 409 or (status or 0) >= 500 \
        or redirected
    limited = status == 429
    if status == 401:
        return Decision("stop_run", stop="auth")
    if status == 403:
        return Decision("give_up", gave_up="refused") if optional else Decision("stop_run", stop="permission")
    if limited and own_limit:
        return Decision("give_up", rate_limited=True, gave_up="refused")
    if limited and quota_left == 0:
        return Decision("stop_run", rate_limited=True, stop="quota")
    if limited:  # never executed: retried until pacing lets it through, within its own limit
        if rate_limited_before + 1 >= MAX_RATE_LIMITED_ATTEMPTS:
            return Decision("give_up", rate_limited=True, gave_up="attempts")
        delay = 0.0 if retry_after is None else next_delay(0, policy, rand, retry_after)
        return Decision("retry", delay=delay, rate_limited=True)
    if not is_retryable(status, failure):
        return Decision("give_up", may_have_executed=executed, gave_up="refused")
    if attempt >= policy.max_attempts:
        return Decision("give_up", may_have_executed=executed, gave_up="attempts")
    if not budget_left:
        return Decision("give_up", may_have_executed=executed, gave_up="budget")
    return Decision("retry", delay=next_delay(attempt - 1, policy, rand, None), may_have_executed=executed)
