"""The rate governor: one per API key and process, shared by every batch of every run using the key.

LeadLex has two limits (api facts §2.3): a **daily quota**, advertised on every answer
(:mod:`leadlex_nb.quota`), and a **per-minute limit** that is not advertised at all: its rate and
its window are taken from the plan the caller names (:mod:`leadlex_nb.limits`), or learned.

Learning: the first requests go out freely (bounded by the requests in flight). A 429 without
``Retry-After`` starts an *episode*: nobody is granted but one probe at a time, sent at growing
intervals (15 % of the time since the episode began, at least 50 ms, never past the documented
minute). The first probe that gets through marks the end of the server's window; what got through
before the 429 is the rate, and the time from the first of those to that end is (at least) the
window. A window learned too short costs one more episode, which measures it between two window
ends; a later episode where fewer got through lowers the rate (another client shares the key), and
quiet windows earn it back. Refused requests are not counted against the window (the server does not).

Pacing is a sliding-window log: no span of ``window + guard`` holds more than ``cap`` grants. The
guard is measured from the spread of answer times (see :attr:`RateGovernor.guard`), so a known
limit is used in full, not at a fixed fraction. Time is injected (principle 5): ``clock`` and
``sleep`` are the monotonic pair for pacing, ``wall_clock`` only reads the quota's reset time.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from leadlex_nb.limits import RateLimit
from leadlex_nb.quota import QuotaExhausted, QuotaInfo, merge_quota, parse_quota_headers
from leadlex_nb.retry import MAX_RETRY_AFTER

__all__ = ["RateGovernor"]

_UNKNOWN_QUOTA: Final[QuotaInfo] = QuotaInfo()
# Grant times are kept this long beyond the window: a 429 is matched against the grants before it.
_HISTORY: Final[float] = 600.0
# Probing after a 429: the first probe after this long, then a tenth of the time since the 429.
PROBE_MIN: Final[float] = 0.05
PROBE_GROWTH: Final[float] = 0.15
# The guard: at most this share of the window (also before any answer was timed), at least _MIN_GUARD.
_GUARD_SHARE: Final[float] = 0.02
_MIN_GUARD: Final[float] = 0.005
_LATENCIES_KEPT: Final[int] = 64
# After a 429 lowered the cap, this many quiet windows earn back a tenth of the ceiling (the plan,
# or the highest rate learned): a one-off 429 caused by another client must not slow a long run.
RECOVERY_WINDOWS: Final[int] = 5
RECOVERY_STEP: Final[float] = 0.1
# Requests in flight: never fewer than MIN, never more than MAX (connections to one host), and
# while the limit is unknown enough to find it within a window or two.
MIN_IN_FLIGHT: Final[int] = 4
MAX_IN_FLIGHT: Final[int] = 32
UNKNOWN_LIMIT_IN_FLIGHT: Final[int] = 8


class RateGovernor:
    """Paces all requests of one API key: per-minute limit, daily quota, Retry-After.

    Usage per request::

        sent_at = await governor.acquire()          # may wait; may raise QuotaExhausted
        ... send ...
        governor.on_answer(sent_at, status, headers) # every grant, exactly once (status None if
                                                     # no answer came or it was never sent)
        if status == 429:
            governor.on_rate_limited(sent_at, retry_after)   # after on_answer

    Thread-safe: runs on other threads and event loops may share it (their state is guarded by a
    lock; the callers of one loop queue behind each other in FIFO order, so they never wake as a herd).
    """

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        learn_window: float = 60.0,
        jitter: float | None = None,
    ) -> None:
        if not (math.isfinite(learn_window) and learn_window > 0):
            raise ValueError(f"learn_window must be a finite number > 0, got {learn_window}")
        if jitter is not None and not (math.isfinite(jitter) and jitter >= 0):
            raise ValueError(f"jitter must be a finite number >= 0, got {jitter}")
        self._given = limit
        self._clock, self._sleep, self._wall_clock = clock, sleep, wall_clock
        self._max_window = max(learn_window, limit.per_seconds) if limit is not None else learn_window
        self._window: float | None = limit.per_seconds if limit is not None else None
        self._cap: int | None = limit.requests if limit is not None else None
        self._ceiling = self._cap  # the highest cap recovery may return to
        self._fixed_guard = jitter
        self._latencies: deque[float] = deque(maxlen=_LATENCIES_KEPT)
        self._measured_guard: float | None = None
        self._recover_at = math.inf
        self._grants: deque[float] = deque()  # send times, ascending
        self._accepted: deque[float] = deque()  # send times of answers other than 429
        self._cycle_start: float | None = None  # the first grant since the last window's end was seen
        self._boundary: float | None = None  # the last window end an episode found
        self._ceiling_measured = limit is not None  # else the first learned cap may be too high
        self._episode: float | None = None  # send time of the 429 that started the current episode
        self._probe_at = -math.inf
        self._probe_out: float | None = None  # send time of the probe in flight
        self._last_refused: float | None = None  # the latest send time refused in this episode
        self._in_flight = 0
        self._paused_until = -math.inf
        self._quota = _UNKNOWN_QUOTA
        self._rate_limited_count = 0
        self._learn_count = 0
        self._state = threading.Lock()
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    # ------------------------------------------------------------------ public state

    @property
    def rate(self) -> RateLimit | None:
        """The limit being paced to (learned, or given); None while it is unknown."""
        if self._cap is None or self._window is None:
            return None
        return RateLimit(self._cap, self._window)

    @property
    def window_cap(self) -> int | None:
        """Grants allowed per pacing span; None while sending freely (limit unknown)."""
        return self._cap

    @property
    def guard(self) -> float:
        """Seconds added to the window, for the jitter of arrivals at the server.

        Measured as the spread of the faster half of answer times (median minus fastest): the
        slower half is mostly the server's processing and queueing, which come after it counted
        the request. At most 2 % of the window (and that before any answer); a guard too small
        shows as a 429, and the episode that follows lengthens the window.
        """
        if self._fixed_guard is not None:
            return self._fixed_guard
        window = self._window or self._max_window
        if self._measured_guard is not None:
            return max(_MIN_GUARD, min(self._measured_guard, _GUARD_SHARE * window))
        return _GUARD_SHARE * window

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

    def suggested_in_flight(self, floor: int = MIN_IN_FLIGHT) -> int:
        """Requests worth having in flight: a window's whole allowance can leave at its start.

        Fewer leave a window part-used while answers are out (4 in flight against 20 a second
        reached 0.67 of the limit); more than the allowance would only queue behind pacing.
        """
        cap = self._cap
        if cap is None:
            return max(floor, UNKNOWN_LIMIT_IN_FLIGHT)
        return max(floor, min(cap, MAX_IN_FLIGHT))

    @property
    def rate_limited_count(self) -> int:
        return self._rate_limited_count

    @property
    def learn_count(self) -> int:
        """How many episodes taught the governor something about the limit."""
        return self._learn_count

    @property
    def paused_until(self) -> float | None:
        """Monotonic time before which nobody is granted (a Retry-After or a probe), if pending."""
        with self._state:
            until = max(self._paused_until, self._probe_at if self._episode is not None else -math.inf)
        return until if until > self._clock() else None

    def forget_quota(self) -> None:
        """Learn the daily quota again from the next answer: a run starting now must not be refused
        on what an earlier run saw (the quota may have been raised or reset since)."""
        with self._state:
            self._quota = _UNKNOWN_QUOTA

    def name_limit(self, limit: RateLimit) -> None:
        """A run sharing this governor named its plan: pace to it from now on."""
        with self._state:
            if self._given == limit:
                return
            self._given = limit
            self._cap = self._ceiling = limit.requests
            self._window = limit.per_seconds
            self._max_window = max(self._max_window, limit.per_seconds)

    def next_grant_in(self) -> float:
        """Seconds until pacing would grant the next request (0 when it would now): for display."""
        with self._state:
            return max(0.0, self._wait_time(self._clock()))

    # ------------------------------------------------------------------ the three calls

    async def acquire(self) -> float:
        """Wait until a request may be sent; return its (monotonic) send time.

        Raises QuotaExhausted at once when the known daily quota minus in-flight grants is 0.
        """
        self._raise_if_exhausted()  # before queueing: a stop must not wait behind pacing
        async with self._queue():
            while True:
                with self._state:
                    self._raise_if_exhausted()  # the quota may have run out while we waited
                    now = self._clock()
                    self._recover(now)
                    wait = self._wait_time(now)
                    if wait <= 0:
                        return self._grant(now)
                await self._sleep(wait)

    def on_answer(
        self, sent_at: float, status: int | None, headers: Mapping[str, str] | None
    ) -> QuotaInfo:
        """Release the grant made at ``sent_at`` and learn the daily quota from ``headers``.

        Call exactly once per grant, also when no answer came (``status=None``). Returns what
        these headers said (all None without headers), so callers need not parse them again.
        """
        with self._state:
            now = self._clock()
            self._in_flight = max(0, self._in_flight - 1)
            if self._probe_out == sent_at and status != 429:
                self._probe_out = None
                if status is None:  # no answer: it says nothing about the window; probe again
                    self._schedule_probe(now)
            if status == 429:
                self._forget_grant(sent_at)  # refused requests do not count against the server's window
            if status is not None:
                self._latencies.append(now - sent_at)
                if len(self._latencies) >= 2:
                    ordered = sorted(self._latencies)
                    self._measured_guard = ordered[len(ordered) // 2] - ordered[0]
                if status != 429:
                    self._accepted.append(sent_at)
                    if self._episode is not None and sent_at >= self._episode:
                        self._end_episode(sent_at)
            if headers is None:
                return _UNKNOWN_QUOTA
            parsed = parse_quota_headers(headers, self._wall_clock())
            if parsed != _UNKNOWN_QUOTA:
                self._quota = merge_quota(self._quota, parsed, self._wall_clock())
            return parsed

    def on_rate_limited(self, sent_at: float, retry_after: float | None) -> None:
        """A 429 answered the request granted at ``sent_at`` (call after ``on_answer``).

        * Retry-After given: every caller waits until ``sent_at + retry_after``.
        * Remaining 0 in the freshest headers: the daily quota, not the minute; acquire() stops.
        * otherwise: an episode starts (or its probe failed): only probes go out until one gets through.
        """
        with self._state:
            self._rate_limited_count += 1
            now = self._clock()
            was_probe = self._probe_out == sent_at
            if was_probe:
                # The probe's answer: whatever it says, the next probe needs scheduling, or none
                # would ever go out again.
                self._probe_out = None
                self._probe_at = now
            if self._quota.remaining == 0 and not self._quota_is_stale():
                return
            if retry_after is not None and math.isfinite(retry_after):
                pause = min(max(retry_after, 0.0), MAX_RETRY_AFTER)
                self._paused_until = max(self._paused_until, sent_at + pause)
                return
            self._recover_at = now + RECOVERY_WINDOWS * self._span()
            if was_probe:
                self._last_refused = max(self._last_refused or sent_at, sent_at)
                self._schedule_probe(now)
            elif self._episode is None:
                self._episode = self._last_refused = sent_at
                self._schedule_probe(now)
            elif self._last_refused is not None and sent_at > self._last_refused:
                # A request of the same burst, sent later and refused too: the window was still full.
                self._last_refused = sent_at

    # ------------------------------------------------------------------ internals

    def _queue(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._state:
            lock = self._queues.get(loop)
            if lock is None:
                lock = self._queues[loop] = asyncio.Lock()
            return lock

    def _grant(self, now: float) -> float:
        if self._episode is not None:
            self._probe_out = now
            self._probe_at = math.inf  # one probe at a time: the next is scheduled by its answer
        if self._cycle_start is None:
            self._cycle_start = now
        self._grants.append(now)
        self._in_flight += 1
        self._forget_before(now - self._max_window - _HISTORY)
        return now

    def _span(self) -> float:
        return (self._window if self._window is not None else self._max_window) + self.guard

    def _schedule_probe(self, now: float) -> None:
        assert self._episode is not None
        interval = max(PROBE_MIN, PROBE_GROWTH * (now - self._episode))
        # The window is at most the documented minute: by then a probe must be let through (a
        # server refusing for longer is probed at the growing interval, never in a tight loop).
        deadline = self._episode + self._max_window
        self._probe_at = min(now + interval, deadline) if now < deadline else now + interval

    def _end_episode(self, through: float) -> None:
        """A request sent at ``through`` got past the 429 of the episode: the server's window ended."""
        first_429 = self._episode
        assert first_429 is not None
        refused = self._last_refused if self._last_refused is not None else first_429
        window_end = (refused + through) / 2  # somewhere between the last refusal and this success
        # A window end found by an earlier episode, if recent enough to count from.
        boundary = self._boundary
        if boundary is not None and boundary < first_429 - self._max_window:
            boundary = None
        # Counted from the first request sent after that end (the one that got through), not from
        # the estimated end itself: requests sent just before it may have landed in either window.
        since = max(self._cycle_start or -math.inf, first_429 - self._max_window)
        # What got through while the window was full: sent no later than its last refusal (answers
        # overtake each other, so some sent after the first 429 were in that window too).
        before = [t for t in self._accepted if since <= t <= refused]
        if before:
            self._learn(before, window_end, boundary)
        self._episode, self._probe_out, self._last_refused = None, None, None
        self._probe_at = -math.inf
        self._cycle_start = through
        self._boundary = window_end

    def _learn(self, before: list[float], window_end: float, boundary: float | None) -> None:
        """What got through before the 429, and when the window ended, say the limit.

        ``before`` are the send times accepted since ``boundary`` (an earlier window end), or since
        the run began when none is known; the first episode's window is then a lower bound.
        """
        cap, window, got = self._cap, self._window, len(before)
        if cap is None or window is None:  # first episode: the rate, and a first window
            # The run may have begun near a window's end, so this can span two windows: the cap is
            # provisional (the next episode measured between two window ends may lower it for good).
            self._cap = self._ceiling = got
            self._window = min(self._max_window, max(window_end - before[0], PROBE_MIN))
        elif got >= cap:
            # The pace was kept and still refused: the window is longer than thought. From a known
            # window end, about ``got / cap`` allowances were used in as many windows.
            if boundary is not None:
                longer = (window_end - boundary) / max(1, round(got / cap))
            else:
                longer = window_end - before[-cap]
            self._window = min(self._max_window, max(window, longer))
        else:  # fewer got through than the pace allows: someone else uses the key, or a lower limit
            self._cap = max(1, got)
            if boundary is not None and not self._ceiling_measured and self._given is None:
                self._ceiling = self._cap  # the first cap was counted across two windows
            self._recover_at = self._clock() + RECOVERY_WINDOWS * self._span()
        if boundary is not None:
            self._ceiling_measured = True
        self._learn_count += 1

    def _recover(self, now: float) -> None:
        """Additive increase after quiet windows, up to the ceiling, never above it."""
        cap, ceiling = self._cap, self._ceiling
        if cap is None or ceiling is None or cap >= ceiling or now < self._recover_at:
            return
        self._cap = min(ceiling, cap + max(1, math.ceil(ceiling * RECOVERY_STEP)))
        self._recover_at = now + RECOVERY_WINDOWS * self._span()

    def _wait_time(self, now: float) -> float:
        wait = self._paused_until - now
        if self._episode is not None:
            # Only a probe goes out; while one is out, look again soon (its answer reschedules).
            return max(wait, PROBE_MIN if self._probe_out is not None else self._probe_at - now)
        cap = self._cap
        if cap is not None and len(self._grants) >= cap:
            # The cap-th most recent grant must leave the span before another may enter it.
            wait = max(wait, self._grants[-cap] + self._span() - now)
        return wait

    def _forget_grant(self, sent_at: float) -> None:
        for i in range(len(self._grants) - 1, -1, -1):  # recent grants are answered first
            if self._grants[i] == sent_at:
                del self._grants[i]
                return

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

    def __repr__(self) -> str:
        return (
            f"RateGovernor(rate={self.rate!r}, guard={self.guard:.3f}, quota={self._quota!r}, "
            f"in_flight={self._in_flight}, rate_limited={self._rate_limited_count})"
        )
