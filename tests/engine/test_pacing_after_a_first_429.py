"""A lone 429 on a run's very first request (another client's burst) must not set its pace for good."""

from __future__ import annotations

from leadlex_nb.pacing import RateGovernor


async def test_a_429_on_the_first_request_is_recovered_from_after_quiet_windows() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    governor = RateGovernor(None, clock=lambda: now[0], sleep=sleep, wall_clock=lambda: 1e9 + now[0],
                            learn_window=1.0)
    first = await governor.acquire()
    governor.on_answer(first, 429, {})
    governor.on_rate_limited(first, None)
    for _ in range(200):  # then only successes, on the fake clock
        sent = await governor.acquire()
        governor.on_answer(sent, 200, {})
    # Recovery starts after five quiet windows; 200 requests at one per window would take 200.
    assert now[0] < 100
