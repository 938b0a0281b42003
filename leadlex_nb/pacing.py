"""The shared rate governor: one per run, shared by every concurrent batch.

LeadLex has two limits (api facts §2.3): a **daily quota**, advertised on every answer
(:mod:`leadlex_nb.quota`), and a **per-minute limit** that is not advertised at all: taken from
the plan the caller names (:mod:`leadlex_nb.limits`), or learned from the first 429.

The governor paces *before* sending (architecture principle 4); ``retry.py`` decides what to
do after a failure. Time is injected (principle 5): ``clock`` and ``sleep`` are the monotonic
pair used for pacing, ``wall_clock`` is only used to interpret the quota's reset time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from leadlex_nb.limits import RateLimit
from leadlex_nb.quota import QuotaExhausted, QuotaInfo, parse_quota_headers
from leadlex_nb.retry import MAX_RETRY_AFTER

__all__ = ["RateGovernor"]

_UNKNOWN_QUOTA: Final[QuotaInfo] = QuotaInfo()


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

    def next_grant_in(self) -> float:
        """Seconds until pacing would grant the next request (0 when it would now): for display."""
        return max(0.0, self._wait_time(self._clock()))

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
