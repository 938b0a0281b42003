"""Plan limits: reading a ``plan=`` argument into a per-minute RateLimit."""

from __future__ import annotations

import pytest

from leadlex_nb.limits import PLAN_LIMITS, RateLimit, resolve_rate_limit


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("starter", RateLimit(10, 60.0)),
        ("pro", RateLimit(50, 60.0)),
        (" Org ", RateLimit(200, 60.0)),
        (120, RateLimit(120, 60.0)),
        ("120", RateLimit(120, 60.0)),
    ],
)
def test_plan_names_and_numbers_become_per_minute_limits(
    plan: str | int, expected: RateLimit
) -> None:
    assert resolve_rate_limit(plan) == expected


def test_an_explicit_rate_limit_passes_through_and_none_means_learn_it() -> None:
    custom = RateLimit(5, 1.0)
    assert resolve_rate_limit(custom) is custom
    assert resolve_rate_limit(None) is None


def test_an_unknown_plan_name_is_refused_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError) as caught:
        resolve_rate_limit("enterprise")
    message = str(caught.value)
    assert "enterprise" in message
    assert all(repr(name) in message for name in ("starter", "pro", "org"))


@pytest.mark.parametrize("plan", [0, -3, "0"])
def test_a_non_positive_rate_is_refused(plan: int | str) -> None:
    with pytest.raises(ValueError):
        resolve_rate_limit(plan)


def test_a_boolean_is_not_a_rate() -> None:
    with pytest.raises(TypeError):
        resolve_rate_limit(True)


def test_plan_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        PLAN_LIMITS["pro"] = RateLimit(1)  # type: ignore[index]
