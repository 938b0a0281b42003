"""The shared rate governor: pacing, learning the rate from 429s, Retry-After, the daily quota.

Plan limits are tested in test_limits.py, the quota headers in test_quota.py.

Time is a FakeClock: sleeping moves it forward, so nothing here really waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from fakes import RESET, SERVER_NOW, FakeClock, quota_headers
from hypothesis import given, settings
from hypothesis import strategies as st
from virtual_time import Drive, HiddenLimit, VirtualTimeLoop, drive, governor_on, ideal_seconds, run_virtual

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


async def test_concurrent_callers_use_the_whole_limit_and_never_exceed_it() -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(10, 1.0))
    times = [t for _, t in await grant_all(gov, 50)]
    assert gov.window_cap == 10
    assert most_in_any_window(times, 1.0) == 10
    # ...and it is not slower than needed: 10 at once, then 4 more spans of the window plus the
    # guard, which is the measured spread of answer times (here none: the least guard).
    assert max(times) - min(times) == pytest.approx(4 * (1.0 + 0.005))


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
    assert len(clock.sleeps) == 4


async def test_a_plan_limit_is_paced_over_its_real_minute() -> None:
    clock = FakeClock()
    gov = governor(clock, resolve_rate_limit("pro"))
    times = [t for _, t in await grant_all(gov, 100)]
    assert most_in_any_window(times, 60.0) == 50
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
    gaps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=80),
)
def test_sliding_window_holds_for_any_arrival_schedule(
    requests: int, per_seconds: float, gaps: list[float]
) -> None:
    clock = FakeClock()
    gov = governor(clock, RateLimit(requests, per_seconds))
    cap = requests
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
# Against a server with a hidden fixed-window limit, on virtual time (virtual_time.py).


async def test_without_a_limit_requests_go_out_freely() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    times = [t for _, t in await grant_all(gov, 30)]
    assert set(times) == {1000.0}
    assert clock.sleeps == []
    assert gov.rate is None


def learn(per_window: int, window: float, requests: int, seed: int, plan: RateLimit | None = None,
          ) -> tuple[float, Drive, RateGovernor]:
    """Efficiency (ideal time / time taken), the drive, and the governor after it."""

    async def main(loop: VirtualTimeLoop) -> tuple[Drive, RateGovernor]:
        loop.now += seed * 0.37  # the run starts anywhere in the server's window
        gov = governor_on(loop, plan)
        done = await drive(loop, gov, HiddenLimit(per_window, window), requests,
                           in_flight=gov.suggested_in_flight, seed=seed)
        return done, gov

    done, gov = run_virtual(main)
    return ideal_seconds(RateLimit(per_window, window), requests, 0.05) / done.seconds, done, gov


@pytest.mark.parametrize("seed", range(6))
def test_a_hidden_one_second_window_is_learned_with_defaults(seed: int) -> None:
    efficiency, _, gov = learn(10, 1.0, 80, seed)
    assert efficiency >= 0.85
    assert gov.rate is not None and gov.rate.requests == 10
    assert 0.9 <= gov.rate.per_seconds <= 1.15  # probes at 15 % intervals place its end within that


@pytest.mark.parametrize("seed", range(3))
def test_a_hidden_sixty_second_window_is_learned_with_defaults(seed: int) -> None:
    efficiency, _, gov = learn(10, 60.0, 200, seed)
    assert efficiency >= 0.85
    assert gov.rate is not None and gov.rate.requests == 10
    assert 57.0 <= gov.rate.per_seconds <= 63.0


@pytest.mark.parametrize("seed", range(6))
def test_a_plan_reaches_the_limit_without_a_single_429(seed: int) -> None:
    efficiency, done, _ = learn(20, 1.0, 80, seed, plan=RateLimit(20, 1.0))
    assert done.rate_limited == 0
    assert efficiency >= 0.95


@pytest.mark.parametrize("seed", range(12))
def test_a_long_learned_run_keeps_to_the_limit(seed: int) -> None:
    # Runs that began near a window's end count their first cap across two windows, or learn a
    # window too short: later episodes correct both.
    efficiency, done, gov = learn(20, 1.0, 400, seed)
    assert efficiency >= 0.85
    assert gov.rate is not None and 18 <= gov.rate.requests <= 20  # never above; maybe mid-recovery
    assert done.rate_limited <= 40  # the probes of two or three episodes, not one per window


def test_a_first_cap_counted_across_two_windows_is_lowered_for_good() -> None:
    _, _, gov = learn(20, 1.0, 400, seed=8)  # starts 0.04 s before a window ends
    assert gov.rate is not None and gov.rate.requests == 20
    assert gov.window_cap == 20


async def test_while_the_window_is_full_only_one_probe_is_out() -> None:
    clock = FakeClock()
    gov = governor(clock, None, learn_window=60.0)
    refused = await gov.acquire()
    gov.on_answer(refused, 429, None)
    gov.on_rate_limited(refused, None)
    probe = await gov.acquire()
    assert probe >= refused + 0.05
    second = asyncio.ensure_future(gov.acquire())
    for _ in range(20):
        await clock.sleep(0.1)
    assert not second.done()  # held until the probe's answer says whether the window ended
    gov.on_answer(probe, 200, None)
    assert await second >= probe


async def test_no_probe_waits_past_the_documented_minute() -> None:
    clock = FakeClock()
    gov = governor(clock, None)  # learn_window defaults to the documented minute
    refused = await gov.acquire()
    gov.on_answer(refused, 429, None)
    gov.on_rate_limited(refused, None)
    probes = [refused]
    while probes[-1] < refused + 60.0:
        probe = await gov.acquire()
        assert probe - probes[-1] <= 0.15 * (probe - refused) + 0.05 + 1e-9  # growing, not a whole window
        probes.append(probe)
        gov.on_answer(probe, 429, None)
        gov.on_rate_limited(probe, None)
    assert probes[-1] <= refused + 60.0 + 1e-9 or probes[-2] < refused + 60.0
    assert len(probes) < 60  # growing intervals: a few dozen probes in a minute, not one per 50 ms


async def a_window_of_20_where_15_got_through(clock: FakeClock, plan: RateLimit) -> RateGovernor:
    """A governor told ``plan`` whose first 20 requests met a server that let 15 through, then a
    probe a window later that got through."""
    gov = governor(clock, plan)
    times = [t for _, t in await grant_all(gov, 20, answer=False)]
    for sent_at in times[:15]:
        gov.on_answer(sent_at, 200, None)
    for sent_at in times[15:]:
        gov.on_answer(sent_at, 429, None)
        gov.on_rate_limited(sent_at, None)
    clock.advance(1.0)
    gov.on_answer(await gov.acquire(), 200, None)
    return gov


async def test_a_429_despite_a_plan_lowers_the_rate_below_the_plan() -> None:
    clock = FakeClock()
    gov = await a_window_of_20_where_15_got_through(clock, RateLimit(20, 1.0))  # a plan above the real one
    assert gov.window_cap == 15
    assert gov.rate == RateLimit(15, 1.0)


async def test_a_rate_lowered_below_the_plan_recovers_to_the_plan_and_no_further() -> None:
    clock = FakeClock()
    plan = RateLimit(20, 1.0)
    gov = await a_window_of_20_where_15_got_through(clock, plan)
    assert gov.window_cap == 15
    caps = []
    for _ in range(80):
        await grant_all(gov, 20)
        caps.append(gov.window_cap)
    assert caps[0] == 15  # nothing earned back before quiet windows
    assert gov.window_cap == 20 and gov.rate == plan
    assert max(c for c in caps if c is not None) == 20
    later = [t for _, t in await grant_all(gov, 60)]
    assert most_in_any_window(later, 1.0) <= 20


def test_runs_with_one_key_at_the_same_time_share_one_governor_and_the_next_run_starts_afresh() -> None:
    from leadlex_nb.governors import shared_governor

    with shared_governor("http://127.0.0.1:1", "key_a", None, 60.0) as first:
        with shared_governor("http://127.0.0.1:1", "key_a", None, 60.0) as second:
            assert second is first
        with shared_governor("http://127.0.0.1:1", "key_b", None, 60.0) as other:
            assert other is not first
        # A later run naming its plan sets the shared pace to it.
        with shared_governor("http://127.0.0.1:1", "key_a", RateLimit(5, 1.0), 60.0) as third:
            assert third is first and first.rate == RateLimit(5, 1.0)
    with shared_governor("http://127.0.0.1:1", "key_a", None, 60.0) as later:
        assert later is not first and later.rate is None


def test_requests_in_flight_follow_the_limit() -> None:
    assert RateGovernor(None).suggested_in_flight() == 8
    assert RateGovernor(RateLimit(20, 1.0)).suggested_in_flight() == 20
    assert RateGovernor(RateLimit(2, 1.0)).suggested_in_flight() == 4
    assert RateGovernor(RateLimit(1000, 60.0)).suggested_in_flight() == 32


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


async def test_a_probe_refused_with_retry_after_lets_the_next_probe_out_after_the_pause() -> None:
    # Found by the soak (seed 100435): the probe's 429 carried a Retry-After date, the probe was
    # never marked answered, and the run waited forever.
    clock = FakeClock()
    gov = governor(clock, None, learn_window=1.0)
    first = await gov.acquire()
    gov.on_answer(first, 429, None)
    gov.on_rate_limited(first, None)  # an episode: only probes from now on
    probe = await gov.acquire()
    gov.on_answer(probe, 429, None)
    gov.on_rate_limited(probe, 2.0)
    after = await asyncio.wait_for(gov.acquire(), timeout=5)  # virtual time: a hang times out for real
    assert after >= probe + 2.0


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


def test_a_run_joining_a_shared_governor_learns_the_quota_afresh() -> None:
    from leadlex_nb.governors import shared_governor

    with shared_governor("http://127.0.0.1:2", "key_q", None, 60.0) as first:
        first.on_answer(0.0, 200, quota_headers(0))
        assert first.available == 0
        # The quota may have been raised or reset since: the next run asks the server again.
        with shared_governor("http://127.0.0.1:2", "key_q", None, 60.0) as second:
            assert second is first and second.available is None
