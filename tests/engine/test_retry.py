"""Retry decisions: which failures are retried, and how long to wait first."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadlex_nb.retry import (
    MAX_RETRY_AFTER,
    RetryBudget,
    RetryPolicy,
    backoff_delay,
    decide,
    is_retryable,
    next_delay,
    parse_retry_after,
)

NOW = 1_700_000_000.0


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, timezone.utc), usegmt=True)


# ---------------------------------------------------------------- is_retryable


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retried(status: int) -> None:
    assert is_retryable(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 418, 422, 451, 200, 204, 301, 600])
def test_client_errors_and_successes_are_never_retried(status: int) -> None:
    assert not is_retryable(status)


@pytest.mark.parametrize("failure", ["connect", "timeout", "connection"])
def test_timeouts_and_connection_failures_are_retried(failure: str) -> None:
    assert is_retryable(None, failure)


@pytest.mark.parametrize("failure", [None, "ssl", "cancelled", ""])
def test_unknown_transport_failures_are_not_retried(failure: str | None) -> None:
    assert not is_retryable(None, failure)


def test_a_status_decides_even_when_a_failure_name_is_given() -> None:
    assert not is_retryable(401, "timeout")


# ---------------------------------------------------------------- backoff


def test_backoff_doubles_from_the_base_delay_until_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    ceilings = [backoff_delay(n, policy, lambda: 1.0) for n in range(9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_is_full_jitter_scaled_by_the_random_draw() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    assert backoff_delay(3, policy, lambda: 0.25) == pytest.approx(1.0)
    assert backoff_delay(3, policy, lambda: 0.0) == 0.0


def test_backoff_survives_huge_retry_numbers_without_overflow() -> None:
    assert backoff_delay(10_000, RetryPolicy(max_delay=7.0), lambda: 1.0) == 7.0


def test_backoff_clamps_a_misbehaving_random_source() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    assert backoff_delay(1, policy, lambda: 5.0) == 2.0
    assert backoff_delay(1, policy, lambda: -1.0) == 0.0
    assert backoff_delay(1, policy, lambda: math.nan) == 0.0


def test_backoff_rejects_a_negative_retry_number() -> None:
    with pytest.raises(ValueError):
        backoff_delay(-1, RetryPolicy(), lambda: 0.5)


@given(
    n=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=120),
    r=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_stays_within_zero_and_the_capped_exponential(
    n: int, base: float, cap: float, r: float
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    delay = backoff_delay(n, policy, lambda: r)
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(n, 62))


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"), [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("1.5", 1.5)]
)
def test_retry_after_delta_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date_is_measured_from_the_given_now() -> None:
    assert parse_retry_after(http_date(NOW + 30), NOW) == pytest.approx(30.0)


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    assert parse_retry_after(http_date(NOW - 300), NOW) == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "-5", "nan", "inf", "1e999", "Mon, 99 Foo 2024", "12abc"]
)
def test_retry_after_absent_or_garbled_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.text())
def test_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    result = parse_retry_after(value, NOW)
    assert result is None or (math.isfinite(result) and result >= 0)


def test_next_delay_obeys_retry_after_over_backoff() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    assert next_delay(6, policy, lambda: 0.99, retry_after=2.0) == 2.0
    assert next_delay(0, policy, lambda: 0.0, retry_after=45.0) == 45.0


def test_next_delay_caps_an_absurd_retry_after_at_an_hour() -> None:
    assert next_delay(0, RetryPolicy(), lambda: 0.5, retry_after=86_400.0) == MAX_RETRY_AFTER


def test_next_delay_without_retry_after_is_the_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    assert next_delay(2, policy, lambda: 0.5, retry_after=None) == 2.0


# ---------------------------------------------------------------- budget and policy


def test_budget_is_shared_and_refuses_once_spent() -> None:
    budget = RetryBudget.from_policy(RetryPolicy(budget=3))
    batch_a = [budget.try_spend(), budget.try_spend()]
    batch_b = [budget.try_spend(), budget.try_spend()]
    assert batch_a == [True, True]
    assert batch_b == [True, False]
    assert budget.remaining == 0
    assert budget.spent == 3


def test_a_zero_budget_never_allows_a_retry() -> None:
    budget = RetryBudget(0)
    assert not budget.try_spend()
    assert budget.remaining == 0


def test_budget_cannot_be_negative() -> None:
    with pytest.raises(ValueError):
        RetryBudget(-1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": -1.0},
        {"max_delay": math.inf},
        {"base_delay": math.nan},
        {"budget": -1},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_defaults_match_the_contract() -> None:
    assert RetryPolicy() == RetryPolicy(max_attempts=8, base_delay=0.5, max_delay=30.0, budget=200)


# ---------------------------------------------------------------- decide

POLICY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=8.0, budget=10)


def half() -> float:
    return 0.5


def test_a_success_is_accepted() -> None:
    assert decide(status=204, failure=None, attempt=1, policy=POLICY, rand=half).action == "accept"


@pytest.mark.parametrize("status,cause", [(401, "auth"), (403, "permission")])
def test_refused_keys_stop_the_run_without_retrying(status: int, cause: str) -> None:
    decision = decide(status=status, failure=None, attempt=1, policy=POLICY, rand=half)
    assert (decision.action, decision.stop, decision.may_have_executed) == ("stop_run", cause, False)


def test_optional_reads_give_up_on_403_instead_of_stopping_and_wait_out_a_429() -> None:
    refused = decide(status=403, failure=None, attempt=1, policy=POLICY, optional=True, rand=half)
    assert (refused.action, refused.gave_up) == ("give_up", "refused")
    limited = decide(status=429, failure=None, attempt=1, policy=POLICY, optional=True, rand=half)
    assert (limited.action, limited.rate_limited) == ("retry", True)


def test_a_429_of_an_endpoints_own_limit_gives_up() -> None:
    decision = decide(status=429, failure=None, attempt=1, policy=POLICY, optional=True, own_limit=True, rand=half)
    assert (decision.action, decision.gave_up, decision.rate_limited) == ("give_up", "refused", True)


def test_a_429_with_the_quota_used_up_stops_the_run() -> None:
    decision = decide(status=429, failure=None, attempt=1, policy=POLICY, quota_left=0, rand=half)
    assert (decision.action, decision.stop, decision.rate_limited) == ("stop_run", "quota", True)


def test_a_429_without_retry_after_is_retried_at_once_because_pacing_holds_it() -> None:
    decision = decide(status=429, failure=None, attempt=1, policy=POLICY, quota_left=5, rand=half)
    assert (decision.action, decision.delay, decision.rate_limited) == ("retry", 0.0, True)
    assert decide(status=429, failure=None, attempt=1, policy=POLICY, retry_after=7.0, rand=half).delay == 7.0


@pytest.mark.parametrize("status,failure", [(500, None), (503, None), (409, None), (None, "timeout"),
                                            (None, "connection")])
def test_failures_that_may_have_executed_are_retried_with_backoff_and_say_so(status: int | None,
                                                                          failure: str | None) -> None:
    decision = decide(status=status, failure=failure, attempt=2, policy=POLICY, rand=half)
    assert (decision.action, decision.may_have_executed) == ("retry", True)
    assert decision.delay == 0.5 * 2.0


def test_a_refused_connection_is_retried_and_known_not_to_have_executed() -> None:
    decision = decide(status=None, failure="connect", attempt=1, policy=POLICY, rand=half)
    assert (decision.action, decision.may_have_executed) == ("retry", False)


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_other_client_errors_are_given_up_at_once(status: int) -> None:
    decision = decide(status=status, failure=None, attempt=1, policy=POLICY, rand=half)
    assert (decision.action, decision.gave_up, decision.may_have_executed) == ("give_up", "refused", False)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_given_up_at_once_and_may_have_executed(status: int) -> None:
    decision = decide(status=status, failure=None, attempt=1, policy=POLICY, rand=half)
    assert (decision.action, decision.gave_up, decision.may_have_executed) == ("give_up", "refused", True)


def test_attempts_and_the_budget_bound_the_retries() -> None:
    last = decide(status=503, failure=None, attempt=3, policy=POLICY, rand=half)
    assert (last.action, last.gave_up, last.may_have_executed) == ("give_up", "attempts", True)
    broke = decide(status=503, failure=None, attempt=1, policy=POLICY, budget_left=False, rand=half)
    assert (broke.action, broke.gave_up) == ("give_up", "budget")


@given(st.one_of(st.none(), st.integers(100, 599)), st.sampled_from([None, "connect", "timeout", "connection", "ssl"]),
       st.integers(1, 5), st.booleans(), st.one_of(st.none(), st.integers(0, 3)), st.booleans())
def test_a_decision_is_always_one_of_four_and_only_2xx_is_accepted(
    status: int | None, failure: str | None, attempt: int, optional: bool, quota_left: int | None, budget: bool
) -> None:
    decision = decide(status=status, failure=failure, attempt=attempt, policy=POLICY, optional=optional,
                      quota_left=quota_left, budget_left=budget, rand=half)
    assert decision.action in ("accept", "retry", "give_up", "stop_run")
    assert (decision.action == "accept") == (status is not None and 200 <= status < 300)
    assert decision.delay >= 0 and (decision.action == "retry" or decision.delay == 0)
    assert (decision.action == "stop_run") == (decision.stop is not None)
