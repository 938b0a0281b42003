"""The shared rate governor: pacing, learning the rate from 429s, Retry-After, the daily quota.

Plan limits are tested in test_limits.py, the quota headers in test_quota.py.

Time is a FakeClock: sleeping moves it forward, so nothing here really waits.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest
from fakes import RESET, SERVER_NOW, FakeClock, quota_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from leadlex_nb.limits import RateLimit, resolve_rate_limit
from leadlex_nb.pacing import RateGovernor
from leadlex_nb.quota import QuotaExhausted


def most_in_any_window(times: Sequence[float], window: float) -> int:
    """The largest number of grants inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def governor(clock: FakeClock, limit: RateLimit | None, **kwargs: float) -> RateGovernor:
    return RateGovernor(
        limit, clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.time, **kwargs
    )



# ================================================================ pacing to a known limit


async def grant_all(gov: RateGovernor, n: int, *, answer: bool = True) -> list[tuple[int, float]]:
    """Start n acquirers at once; return (index, grant time) in grant order."""
    granted: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        sent_at = await gov.acquire()
        granted.append((i, sent_at))
        if answer:
            gov.on_answer(sent_at, 200, None)

    await asyncio.gather(*(one(i) for i in range(n)))
    return granted


async def test_concurrent_callers_never_exceed_the_safe_share_of_any_window() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(10, 1.0))  # 10/s with safety 0.9 -> 9 per window
    times = [t for _, t in await grant_all(gov, 50)]
    assert gov.window_cap == 9
    assert most_in_any_window(times, 1.0) == 9
    # ...and it is not slower than needed: 50 grants = 9 at once, then 5 more spans of 1.05 s.
    assert max(times) - min(times) == pytest.approx(5 * 1.05)


async def test_waiting_callers_are_served_first_come_first_served() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(2, 1.0))
    order = [i for i, _ in await grant_all(gov, 12)]
    assert order == list(range(12))


async def test_waiting_callers_do_not_wake_as_a_herd() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(10, 1.0))
    await grant_all(gov, 50)
    # One caller at a time sleeps until the next slot: one sleep per window, not one per caller.
    assert len(clock.sleeps) == 5


async def test_a_plan_limit_is_paced_over_its_real_minute() -> None:
    clock = FakeClock()
    gov = governor(clock, resolve_rate_limit("pro"))
    times = [t for _, t in await grant_all(gov, 100)]
    assert most_in_any_window(times, 60.0) == 45
    assert gov.rate == RateLimit(50, 60.0)


async def test_a_cancelled_waiter_does_not_block_the_ones_behind_it() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(1, 1.0))
    await gov.acquire()
    second = asyncio.create_task(gov.acquire())
    third = asyncio.create_task(gov.acquire())
    await asyncio.sleep(0)
    second.cancel()
    sent_at = await third
    assert second.cancelled()
    assert sent_at >= 1000.0 + 1.0


@settings(max_examples=60, deadline=None)
@given(
    requests=st.integers(min_value=1, max_value=30),
    per_seconds=st.floats(min_value=0.1, max_value=120.0),
    safety=st.floats(min_value=0.5, max_value=1.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=80),
)
def test_sliding_window_holds_for_any_arrival_schedule(
    requests: int, per_seconds: float, safety: float, gaps: list[float]
) -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(requests, per_seconds), safety=safety)
    cap = max(1, math.floor(requests * safety))
    times: list[float] = []

    async def caller() -> None:
        sent_at = await gov.acquire()
        times.append(sent_at)
        gov.on_answer(sent_at, 200, None)

    async def arrivals() -> None:
        tasks = []
        for gap in gaps:
            await clock.sleep(gap)
            tasks.append(asyncio.create_task(caller()))
        await asyncio.gather(*tasks)

    asyncio.run(arrivals())
    assert len(times) == len(gaps)
    assert most_in_any_window(times, per_seconds) <= cap


# ================================================================ learning an unknown limit


async def test_without_a_limit_requests_go_out_freely() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    times = [t for _, t in await grant_all(gov, 30)]
    assert set(times) == {1000.0}
    assert clock.sleeps == []
    assert gov.rate is None


async def test_a_burst_of_429s_lowers_the_rate_once_to_what_got_through() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    burst = [t for _, t in await grant_all(gov, 20, answer=False)]
    for sent_at in burst[:12]:  # the server let 12 through...
        gov.on_answer(sent_at, 200, None)
    for sent_at in burst[12:]:  # ...and refused the other 8, which all were in flight
        gov.on_answer(sent_at, 429, None)
        gov.on_rate_limited(sent_at, None)
    assert gov.rate_limited_count == 8
    assert gov.learn_count == 1
    assert gov.rate == RateLimit(10, 1.0)  # floor(12 * 0.9)
    # Everybody pauses until the server's window holding the 429s must have ended...
    times = [t for _, t in await grant_all(gov, 30)]
    assert min(times) >= 1000.0 + 1.0
    # ...and then goes at the learned rate.
    assert most_in_any_window(times, 1.0) == 10


async def test_after_a_429_nobody_sends_until_its_window_must_have_ended() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    for sent_at in [t for _, t in await grant_all(gov, 12)]:
        assert sent_at == 1000.0
    clock.advance(0.5)
    refused = await gov.acquire()
    gov.on_answer(refused, 429, None)
    gov.on_rate_limited(refused, None)
    assert gov.paused_until == refused + 1.0
    # The learned rate alone would allow a send at 1001.05; the server's window may last longer.
    assert await gov.acquire() >= refused + 1.0


async def test_a_late_429_from_before_the_drop_does_not_lower_the_rate_again() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    burst = [t for _, t in await grant_all(gov, 20, answer=False)]
    for sent_at in burst[:12]:
        gov.on_answer(sent_at, 200, None)
    gov.on_rate_limited(burst[12], None)
    clock.advance(5.0)  # a straggler answers long after the pause is over
    gov.on_rate_limited(burst[13], None)
    assert gov.learn_count == 1
    assert gov.rate == RateLimit(10, 1.0)


async def test_a_429_in_a_later_window_lowers_the_rate_again() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    first = [t for _, t in await grant_all(gov, 20, answer=False)]
    for sent_at in first[:12]:
        gov.on_answer(sent_at, 200, None)
    gov.on_rate_limited(first[12], None)
    second = [t for _, t in await grant_all(gov, 10, answer=False)]
    for sent_at in second[:6]:
        gov.on_answer(sent_at, 200, None)
    gov.on_rate_limited(second[6], None)
    assert gov.learn_count == 2
    assert gov.rate == RateLimit(5, 1.0)  # floor(6 * 0.9)


async def test_while_answers_are_out_the_grants_before_the_429_are_the_estimate() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    sent = []
    for _ in range(20):
        sent.append(await gov.acquire())
        clock.advance(0.01)
    gov.on_rate_limited(sent[12], None)  # nothing else answered yet
    assert gov.rate == RateLimit(10, 1.0)  # 12 sent before it, x 0.9


async def test_a_429_despite_a_plan_lowers_the_rate_below_the_plan() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(20, 1.0))  # the caller named a plan above the real one
    times = [t for _, t in await grant_all(gov, 18)]
    gov.on_rate_limited(times[-1], None)
    assert gov.window_cap is not None and gov.window_cap < 18
    assert gov.rate == RateLimit(gov.window_cap, 1.0)


async def test_after_quiet_windows_a_lowered_rate_recovers_to_the_first_learned_rate_and_no_further() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    first = [t for _, t in await grant_all(gov, 20, answer=False)]
    for sent_at in first[:12]:
        gov.on_answer(sent_at, 200, None)
    gov.on_rate_limited(first[12], None)  # learned 10: the ceiling
    second = [t for _, t in await grant_all(gov, 10, answer=False)]
    for sent_at in second[:6]:
        gov.on_answer(sent_at, 200, None)
    gov.on_rate_limited(second[6], None)  # someone else's traffic: down to 5
    assert gov.rate == RateLimit(5, 1.0)

    rates = []
    for _ in range(60):  # 60 quiet windows' worth of grants
        await grant_all(gov, 10)
        rates.append(gov.rate)
    assert rates[0] == RateLimit(5, 1.0)  # nothing earned back before RECOVERY_WINDOWS quiet windows
    assert gov.rate == RateLimit(10, 1.0)  # back to the ceiling...
    assert max(r.requests for r in rates if r is not None) == 10  # ...and never above it


async def test_a_rate_lowered_below_the_plan_recovers_to_the_plan() -> None:
    clock = FakeClock()
    plan = RateLimit(20, 1.0)
    gov = governor(clock, plan)
    times = [t for _, t in await grant_all(gov, 18)]
    gov.on_rate_limited(times[-1], None)
    assert gov.window_cap is not None and gov.window_cap < 18
    for _ in range(80):
        await grant_all(gov, 18)
    assert gov.window_cap == 18 and gov.rate == plan
    later = [t for _, t in await grant_all(gov, 54)]
    assert most_in_any_window(later, 1.0) <= 18


async def test_a_429_during_recovery_restarts_the_quiet_period() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(20, 1.0))
    times = [t for _, t in await grant_all(gov, 18)]
    gov.on_rate_limited(times[-1], None)
    started = clock.now
    while clock.now < started + 4.5:  # not yet enough quiet windows to earn anything back
        more = [t for _, t in await grant_all(gov, 5)]
    gov.on_rate_limited(more[-1], None)
    after_second = gov.window_cap
    while clock.now < started + 8.0:  # quiet windows since the first 429, not since the second
        await grant_all(gov, 5)
    assert gov.window_cap == after_second


# ================================================================ Retry-After


async def test_retry_after_holds_every_caller_until_it_has_passed() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(100, 1.0))
    sent_at = await gov.acquire()
    gov.on_answer(sent_at, 429, None)
    gov.on_rate_limited(sent_at, 5.0)
    times = [t for _, t in await grant_all(gov, 3)]
    assert min(times) >= sent_at + 5.0
    assert gov.learn_count == 0  # the server said when: no guessing at the rate


async def test_retry_after_longer_than_the_window_still_wins() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    sent_at = await gov.acquire()
    gov.on_rate_limited(sent_at, 90.0)
    assert await gov.acquire() >= sent_at + 90.0


async def test_retry_after_is_measured_from_the_send_time_not_the_answer() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    sent_at = await gov.acquire()
    clock.advance(4.0)  # the 429 took 4 s to arrive
    gov.on_rate_limited(sent_at, 5.0)
    assert await gov.acquire() == pytest.approx(sent_at + 5.0)


# ================================================================ daily quota


async def test_requests_in_flight_count_against_the_remaining_quota() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    first = await gov.acquire()
    gov.on_answer(first, 200, quota_headers(3))
    for _ in range(3):
        await gov.acquire()
    assert gov.available == 0
    with pytest.raises(QuotaExhausted) as caught:
        await gov.acquire()
    assert caught.value.remaining == 0
    assert caught.value.reset_at == pytest.approx(clock.time() + (RESET - SERVER_NOW))
    assert clock.sleeps == []  # stopped at once, no sleeping until the reset


async def test_a_grant_that_never_consumed_quota_gives_its_slot_back() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    first = await gov.acquire()
    gov.on_answer(first, 200, quota_headers(1))
    lost = await gov.acquire()
    with pytest.raises(QuotaExhausted):
        await gov.acquire()
    gov.on_answer(lost, None, None)  # connection failed, the server never saw it
    assert await gov.acquire() >= lost


async def test_queued_callers_stop_too_once_the_quota_runs_out() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(1, 1.0))
    first = await gov.acquire()
    gov.on_answer(first, 200, quota_headers(2))
    results = await asyncio.gather(*(gov.acquire() for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(r, float) for r in results) == 2
    assert sum(isinstance(r, QuotaExhausted) for r in results) == 2


async def test_a_stale_answer_arriving_late_cannot_raise_the_remaining_quota() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    gov.on_answer(0.0, 200, quota_headers(5))
    gov.on_answer(0.0, 200, quota_headers(9))  # sent earlier, answered later
    assert gov.quota.remaining == 5


async def test_a_new_quota_period_replaces_the_old_figures() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    gov.on_answer(0.0, 200, quota_headers(0))
    gov.on_answer(0.0, 200, quota_headers(999, reset=RESET + 86_400))
    assert gov.quota.remaining == 999
    assert gov.available == 999


async def test_a_late_answer_from_the_previous_period_is_ignored() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    gov.on_answer(0.0, 200, quota_headers(999, reset=RESET + 86_400))
    gov.on_answer(0.0, 200, quota_headers(0))
    assert gov.quota.remaining == 999


async def test_once_the_reset_has_passed_requests_flow_again() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "10"}  # 10 s to go
    gov.on_answer(0.0, 200, headers)
    with pytest.raises(QuotaExhausted):
        await gov.acquire()
    clock.advance(10.0)
    assert await gov.acquire() == pytest.approx(1010.0)


async def test_a_429_with_no_quota_left_is_the_daily_limit_not_the_minute() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    sent_at = await gov.acquire()
    gov.on_answer(sent_at, 429, quota_headers(0))
    gov.on_rate_limited(sent_at, None)
    assert gov.rate is None  # no per-minute rate was learned from it
    assert gov.paused_until is None
    with pytest.raises(QuotaExhausted):
        await gov.acquire()


async def test_garbled_quota_headers_leave_the_known_quota_alone() -> None:
    clock = FakeClock()
    gov = governor(clock, None)
    gov.on_answer(0.0, 200, quota_headers(7))
    gov.on_answer(0.0, 200, {"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "??"})
    assert gov.quota.remaining == 7
    assert gov.quota.reset_at == pytest.approx(clock.time() + (RESET - SERVER_NOW))


async def test_governor_keeps_the_reset_on_the_local_clock_despite_server_skew() -> None:
    clock = FakeClock(wall_offset=SERVER_NOW - 1000.0 - 3_600.0)  # local wall 1 h behind server
    gov = governor(clock, None)
    gov.on_answer(0.0, 200, quota_headers(3))
    assert gov.quota.reset_at is not None
    assert gov.quota.reset_at - clock.time() == pytest.approx(RESET - SERVER_NOW)
