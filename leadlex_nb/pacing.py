"""The shared rate governor: one per API key per run, shared by every concurrent batch.

LeadLex has two limits (api facts §2.3):

* a **daily quota**, advertised on every answer in ``X-RateLimit-Limit/Remaining/Reset``;
* a **per-minute limit** that is not advertised at all: we take it from the plan the caller
  names, or learn it from the first 429.

The governor paces *before* sending (architecture principle 4); ``retry.py`` decides what to
do after a failure. Time is injected (principle 5): ``clock`` and ``sleep`` are the monotonic
pair used for pacing, ``wall_clock`` is only used to interpret the quota's reset time.

Stdlib only: the transport translates aiohttp answers into ``status`` + a header mapping.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Final

from .retry import MAX_RETRY_AFTER

__all__ = [
    "PLAN_DAILY_QUOTAS",
    "PLAN_LIMITS",
    "QuotaExhausted",
    "QuotaInfo",
    "RateGovernor",
    "RateLimit",
    "parse_quota_headers",
    "requests_needed_fit",
    "resolve_rate_limit",
]


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``per_seconds`` (the server's limit, before our safety margin)."""

    requests: int
    per_seconds: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or self.requests < 1:
            raise ValueError(f"a rate limit needs at least 1 request, got {self.requests!r}")
        if not (math.isfinite(self.per_seconds) and self.per_seconds > 0):
            raise ValueError(f"per_seconds must be a finite number > 0, got {self.per_seconds!r}")


#: Per-minute limits per plan (LeadLex docs [AUTH]); read-only so no run can change another's.
PLAN_LIMITS: Final[Mapping[str, RateLimit]] = MappingProxyType(
    {"starter": RateLimit(10), "pro": RateLimit(50), "org": RateLimit(200)}
)
#: Daily quotas per plan; the live figure comes from X-RateLimit-* headers, these are for messages.
PLAN_DAILY_QUOTAS: Final[Mapping[str, int]] = MappingProxyType(
    {"starter": 100, "pro": 1000, "org": 10000}
)


def resolve_rate_limit(plan: str | int | RateLimit | None) -> RateLimit | None:
    """The per-minute limit for ``plan``: a plan name, a requests-per-minute number, a
    RateLimit (returned as is), or None meaning "unknown, learn it from 429s"."""
    if plan is None or isinstance(plan, RateLimit):
        return plan
    if isinstance(plan, bool):  # bool is an int subclass; True is not "1 per minute"
        raise TypeError("plan must be a plan name, a requests-per-minute number, or None")
    if isinstance(plan, int):
        if plan < 1:
            raise ValueError(f"requests per minute must be at least 1, got {plan}")
        return RateLimit(plan)
    if isinstance(plan, str):
        key = plan.strip().lower()
        if key in PLAN_LIMITS:
            return PLAN_LIMITS[key]
        if key.isascii() and key.isdigit():
            return resolve_rate_limit(int(key))
        valid = ", ".join(repr(name) for name in sorted(PLAN_LIMITS))
        raise ValueError(
            f"unknown plan {plan!r}: expected one of {valid}, a number of requests per minute, "
            "or None to learn the limit"
        )
    raise TypeError(f"plan must be a str, int, RateLimit or None, not {type(plan).__name__}")


# --------------------------------------------------------------------------- daily quota


@dataclass(frozen=True)
class QuotaInfo:
    """The daily quota as last advertised. ``reset_at`` is in LOCAL epoch seconds (skew-corrected)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None


_UNKNOWN_QUOTA: Final[QuotaInfo] = QuotaInfo()
# Reset values below this are "seconds to go" (a day is 86,400 s); above, epoch seconds (1e9 is
# 2001). Above 1e11 they can only be epoch milliseconds (1e11 s is the year 5138).
_EPOCH_SECONDS_FROM: Final[float] = 1e9
_EPOCH_MILLIS_FROM: Final[float] = 1e11


def parse_quota_headers(headers: Mapping[str, str], local_now: float) -> QuotaInfo:
    """Read ``X-RateLimit-Limit/Remaining/Reset`` from any mapping, case-insensitively.

    ``Reset`` may be epoch seconds (or milliseconds), seconds-to-go, or ISO 8601. An absolute
    reset is moved onto the local clock with the server's ``Date`` header:
    ``reset_local = reset_server - date_server + local_now``. Garbled or missing values give
    None fields; this never raises, because answers that make no sense must be logged, not crash.
    """
    lowered = _lower_keys(headers)
    reset_at: float | None = None
    raw_reset = lowered.get("x-ratelimit-reset")
    if raw_reset is not None:
        reset_at = _parse_reset(raw_reset, _parse_http_date(lowered.get("date")), local_now)
    return QuotaInfo(
        limit=_parse_count(lowered.get("x-ratelimit-limit")),
        remaining=_parse_count(lowered.get("x-ratelimit-remaining")),
        reset_at=reset_at,
    )


def requests_needed_fit(
    needed: int, quota: QuotaInfo, *, wall_now: float | None = None
) -> bool | None:
    """Pre-flight check: can the daily quota cover ``needed`` more requests?

    None when it cannot be told (nothing advertised yet): the caller decides how to present
    that. If ``wall_now`` is past ``reset_at`` the advertised ``remaining`` is stale and the
    fresh day's ``limit`` is used instead.
    """
    if wall_now is not None and quota.reset_at is not None and wall_now >= quota.reset_at:
        return None if quota.limit is None else needed <= quota.limit
    if quota.remaining is None:
        return None
    return needed <= quota.remaining


class QuotaExhausted(Exception):
    """The daily quota (minus requests already in flight) is used up.

    Raised at once instead of sleeping until the reset; the engine wraps it into its stop.
    """

    def __init__(self, remaining: int | None, reset_at: float | None) -> None:
        super().__init__(remaining, reset_at)  # keeps the exception picklable
        self.remaining = remaining
        self.reset_at = reset_at

    def __str__(self) -> str:
        when = (
            "at an unknown time"
            if self.reset_at is None
            else "at " + datetime.fromtimestamp(self.reset_at, timezone.utc).isoformat()
        )
        return (
            f"the daily LeadLex request quota is exhausted ({self.remaining} left, "
            f"counting requests still in flight); it resets {when}"
        )


# --------------------------------------------------------------------------- the governor

# How much later a Reset must be to count as a new quota period (seconds-to-go values jitter
# by the request latency and integer rounding).
_RESET_TOLERANCE: Final[float] = 1.5
# Grant times are kept this long beyond the pacing span: a 429 is matched against the window
# before its request was sent, and a request may be answered minutes after it was sent.
_HISTORY: Final[float] = 600.0
# After a 429 lowered the rate, this many quiet windows earn back a tenth of the ceiling (the
# plan, or the first rate learned): a one-off 429 caused by another client must not slow the
# rest of a long run, and recovery never goes above a rate already known to be safe.
RECOVERY_WINDOWS: Final[int] = 5
RECOVERY_STEP: Final[float] = 0.1


class RateGovernor:
    """Paces all requests of one API key: per-minute limit, daily quota, Retry-After.

    Usage per request::

        sent_at = await governor.acquire()          # may wait; may raise QuotaExhausted
        ... send ...
        governor.on_answer(sent_at, status, headers) # every grant, exactly once (status None if
                                                     # no answer came or it was never sent)
        if status == 429:
            governor.on_rate_limited(sent_at, retry_after)   # after on_answer

    With a known limit, grants are a sliding-window log: no span of ``per_seconds + jitter``
    holds more than ``floor(requests * safety)`` grants. The span is ``jitter`` longer than the
    server's window so that network delay between our grant and the server's clock cannot put
    two of our windows' worth into one of the server's fixed windows.

    Callers are served one at a time in FIFO order (an asyncio.Lock hands over in order), so a
    freed slot goes to the longest waiter and concurrent callers never wake as a herd.
    """

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        safety: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        learn_window: float = 60.0,
        jitter: float | None = None,
    ) -> None:
        if not (0.0 < safety <= 1.0):
            raise ValueError(f"safety must be in (0, 1], got {safety}")
        if not (math.isfinite(learn_window) and learn_window > 0):
            raise ValueError(f"learn_window must be a finite number > 0, got {learn_window}")
        self._given = limit
        self._safety = safety
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._window = limit.per_seconds if limit is not None else learn_window
        if jitter is None:
            jitter = min(2.0, 0.05 * self._window)
        if not (math.isfinite(jitter) and jitter >= 0):
            raise ValueError(f"jitter must be a finite number >= 0, got {jitter}")
        self._span = self._window + jitter
        self._cap: int | None = (
            None if limit is None else max(1, math.floor(limit.requests * safety))
        )
        self._ceiling = self._cap  # the highest cap recovery may return to
        self._recover_at = math.inf
        self._learned: RateLimit | None = None
        self._grants: deque[float] = deque()  # send times, ascending (granted under the lock)
        self._accepted: deque[float] = deque()  # send times of answers other than 429
        self._in_flight = 0
        self._paused_until = -math.inf
        self._learn_blocked_until = -math.inf
        self._quota = _UNKNOWN_QUOTA
        self._rate_limited_count = 0
        self._learn_count = 0
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ public state

    @property
    def rate(self) -> RateLimit | None:
        """The per-minute limit being paced to: learned (already x safety) or given; None if unknown."""
        return self._learned if self._learned is not None else self._given

    @property
    def window_cap(self) -> int | None:
        """Grants allowed per pacing span; None while sending freely (limit unknown)."""
        return self._cap

    @property
    def quota(self) -> QuotaInfo:
        return self._quota

    @property
    def available(self) -> int | None:
        """Daily requests left after those in flight; None if unknown or the period has reset."""
        if self._quota_is_stale() or self._quota.remaining is None:
            return None
        return max(0, self._quota.remaining - self._in_flight)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def rate_limited_count(self) -> int:
        return self._rate_limited_count

    @property
    def learn_count(self) -> int:
        """How many times a 429 lowered the rate (at most once per window)."""
        return self._learn_count

    @property
    def paused_until(self) -> float | None:
        """Monotonic time before which nobody is granted (a 429 pause), if any is pending."""
        return self._paused_until if self._paused_until > self._clock() else None

    # ------------------------------------------------------------------ the three calls

    async def acquire(self) -> float:
        """Wait until a request may be sent; return its (monotonic) send time.

        Raises QuotaExhausted at once when the known daily quota minus in-flight grants is 0.
        """
        self._raise_if_exhausted()  # before queueing: a stop must not wait behind pacing
        async with self._lock:
            while True:
                self._raise_if_exhausted()  # the quota may have run out while we waited
                now = self._clock()
                self._recover(now)
                wait = self._wait_time(now)
                if wait <= 0:
                    break
                await self._sleep(wait)
            self._grants.append(now)
            self._in_flight += 1
            self._forget_before(now - self._span - _HISTORY)
            return now

    def on_answer(
        self, sent_at: float, status: int | None, headers: Mapping[str, str] | None
    ) -> QuotaInfo:
        """Release the grant made at ``sent_at`` and learn the daily quota from ``headers``.

        Call exactly once per grant, also when no answer came (``status=None``). Returns what
        these headers said (all None without headers), so callers need not parse them again.
        """
        if self._in_flight > 0:
            self._in_flight -= 1
        if status is not None and status != 429:
            self._accepted.append(sent_at)
        if headers is None:
            return _UNKNOWN_QUOTA
        parsed = parse_quota_headers(headers, self._wall_clock())
        self._merge_quota(parsed)
        return parsed

    def on_rate_limited(self, sent_at: float, retry_after: float | None) -> None:
        """A 429 answered the request granted at ``sent_at`` (call after ``on_answer``).

        * Retry-After given: every caller waits until ``sent_at + retry_after``.
        * otherwise: every caller waits until the server's window holding that request must
          have ended (``sent_at + window``), and the rate drops to (grants seen in the window
          before it) x safety, at most once per window: a 429 for a request sent before the
          last drop says nothing about the new rate, so a burst of in-flight 429s drops it once.
        * Remaining 0 in the freshest headers: the daily quota, not the minute; acquire() stops.
        """
        self._rate_limited_count += 1
        if self._quota.remaining == 0 and not self._quota_is_stale():
            return
        if retry_after is not None and math.isfinite(retry_after):
            pause = min(max(retry_after, 0.0), MAX_RETRY_AFTER)
            self._paused_until = max(self._paused_until, sent_at + pause)
            return
        self._paused_until = max(self._paused_until, sent_at + self._window)
        self._recover_at = self._clock() + RECOVERY_WINDOWS * self._span
        if sent_at < self._learn_blocked_until:
            return
        seen = max(
            sum(1 for t in self._accepted if sent_at - self._window < t <= sent_at),
            # When answers are still out, the grants sent before it are the better estimate.
            sum(1 for t in self._grants if sent_at - self._window < t < sent_at),
        )
        learned = max(1, math.floor(seen * self._safety))
        if self._cap is None or learned < self._cap:
            self._cap = learned
            self._learned = RateLimit(learned, self._window)
        if self._ceiling is None:
            self._ceiling = self._cap
        self._learn_count += 1
        self._learn_blocked_until = max(self._clock(), sent_at + self._window)

    # ------------------------------------------------------------------ internals

    def _recover(self, now: float) -> None:
        """Additive increase after quiet windows, up to the ceiling, never above it."""
        cap, ceiling = self._cap, self._ceiling
        if cap is None or ceiling is None or cap >= ceiling or now < self._recover_at:
            return
        self._cap = min(ceiling, cap + max(1, math.ceil(ceiling * RECOVERY_STEP)))
        self._recover_at = now + RECOVERY_WINDOWS * self._span
        back_to_plan = self._given is not None and self._cap == self._ceiling
        self._learned = None if back_to_plan else RateLimit(self._cap, self._window)

    def _wait_time(self, now: float) -> float:
        wait = self._paused_until - now
        cap = self._cap
        if cap is not None and len(self._grants) >= cap:
            # The cap-th most recent grant must leave the span before another may enter it.
            wait = max(wait, self._grants[-cap] + self._span - now)
        return wait

    def _forget_before(self, horizon: float) -> None:
        while self._grants and self._grants[0] < horizon:
            self._grants.popleft()
        while self._accepted and self._accepted[0] < horizon:
            self._accepted.popleft()

    def _quota_is_stale(self) -> bool:
        reset_at = self._quota.reset_at
        return reset_at is not None and self._wall_clock() >= reset_at

    def _raise_if_exhausted(self) -> None:
        remaining = self._quota.remaining
        if remaining is None or self._quota_is_stale():
            return
        if remaining - self._in_flight <= 0:
            raise QuotaExhausted(max(0, remaining - self._in_flight), self._quota.reset_at)

    def _merge_quota(self, new: QuotaInfo) -> None:
        """Keep the freshest view: Remaining only falls within one quota period, so the lowest
        value wins whatever order answers arrive in; a later Reset starts a new period."""
        if new == _UNKNOWN_QUOTA:
            return
        cur = self._quota
        if cur.reset_at is not None and new.reset_at is not None:
            if new.reset_at < cur.reset_at - _RESET_TOLERANCE:
                return  # a late answer from the previous period
            new_period = new.reset_at > cur.reset_at + _RESET_TOLERANCE
        else:
            new_period = False
        if new_period or self._quota_is_stale() or cur.remaining is None:
            remaining = new.remaining
        elif new.remaining is None:
            remaining = cur.remaining
        else:
            remaining = min(cur.remaining, new.remaining)
        if new_period or cur.reset_at is None:
            reset_at = new.reset_at if new.reset_at is not None else cur.reset_at
        else:
            reset_at = cur.reset_at
        self._quota = QuotaInfo(
            limit=new.limit if new.limit is not None else cur.limit,
            remaining=remaining,
            reset_at=reset_at,
        )

    def __repr__(self) -> str:
        return (
            f"RateGovernor(rate={self.rate!r}, window_cap={self._cap}, quota={self._quota!r}, "
            f"in_flight={self._in_flight}, rate_limited={self._rate_limited_count})"
        )


# --------------------------------------------------------------------------- header parsing


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    lowered: dict[str, str] = {}
    try:
        for key, value in headers.items():
            if isinstance(key, str) and isinstance(value, str):
                lowered.setdefault(key.lower(), value)  # first value wins on repeated headers
    except Exception:  # a broken mapping must not break a run; its fields stay unknown
        return {}
    return lowered


def _parse_count(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    try:
        number = int(text) if text.isascii() and text.isdigit() else float(text)
    except ValueError:
        return None
    if isinstance(number, float):
        if not (math.isfinite(number) and number.is_integer()):
            return None
        number = int(number)
    return number if number >= 0 else None


def _parse_http_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        epoch = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return epoch if math.isfinite(epoch) else None


def _parse_reset(value: str, server_now: float | None, local_now: float) -> float | None:
    text = value.strip()
    if not text:
        return None
    server_epoch: float | None
    try:
        number = float(text)
    except ValueError:
        server_epoch = _parse_iso8601(text)
        if server_epoch is None:
            server_epoch = _parse_http_date(text)
    else:
        if not math.isfinite(number) or number < 0:
            return None
        if number < _EPOCH_SECONDS_FROM:
            return local_now + number  # seconds to go: relative, so no skew to correct
        server_epoch = number / 1000.0 if number >= _EPOCH_MILLIS_FROM else number
    if server_epoch is None:
        return None
    if server_now is None:
        return server_epoch  # no Date header: assume the clocks agree
    return server_epoch - server_now + local_now


def _parse_iso8601(text: str) -> float | None:
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # fromisoformat accepts "Z" only from Python 3.11
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)  # the quota resets at midnight UTC
        epoch = when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return epoch if math.isfinite(epoch) else None
