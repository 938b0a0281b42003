"""Rate limits: the advertised daily quota, the unadvertised per-window limit, the export limit."""

from __future__ import annotations

import time

from sandbox_helpers import Api, assert_error

from leadlex_nb.sandbox import PROFILES, Profile

LONG = 10**6  # a window no test run crosses


def _remaining(response) -> int:  # type: ignore[no-untyped-def]
    return int(response.headers["X-RateLimit-Remaining"])


def test_profiles_match_the_documented_plans() -> None:
    assert [(PROFILES[n].per_window, PROFILES[n].window_seconds, PROFILES[n].daily_quota)
            for n in ("starter", "pro", "org")] == [(10, 60, 100), (50, 60, 1000), (200, 60, 10000)]
    assert (PROFILES["fast"].per_window, PROFILES["fast"].window_seconds) == (50, 1)


def test_headers_report_the_daily_quota_and_reset_at_next_utc_midnight(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=100, window_seconds=LONG, daily_quota=40))
    before = time.time()
    response = api.get("/v1/contacts")
    after = time.time()
    assert response.headers["X-RateLimit-Limit"] == "40"
    assert _remaining(response) == 39
    reset = int(response.headers["X-RateLimit-Reset"])
    assert reset in {(int(t // 86400) + 1) * 86400 for t in (before, after)}
    assert reset % 86400 == 0


def test_every_authenticated_answer_carries_the_headers_even_errors(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=100, window_seconds=LONG, daily_quota=40))
    bad = api.post("/v1/contacts/bulk-delete", {"contact_ids": []})
    forbidden = api.get("/v1/contacts", key=api.sb.create_key(scopes=[]))
    assert_error(bad, 400, "validation_error")
    assert_error(forbidden, 403, "insufficient_permissions")
    # Both counted: GETs, errors and 403s all use the quota.
    assert (_remaining(bad), _remaining(forbidden)) == (39, 39)  # separate keys, separate budgets
    assert "X-RateLimit-Limit" not in api.get("/v1/contacts", key=None).headers  # unauthenticated


def test_per_window_limit_answers_429_without_advertising_it(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=3, window_seconds=LONG, daily_quota=100))
    answers = [api.get("/v1/contacts") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert_error(answers[3], 429, "rate_limited")
    # Nothing announces the window: Remaining still shows daily budget left, no Retry-After.
    assert _remaining(answers[3]) == 97
    assert "Retry-After" not in answers[3].headers
    assert not any(h.lower().startswith("x-ratelimit") and h not in
                   ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset") for h in answers[3].headers)


def test_a_rejected_429_is_not_counted(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=1, window_seconds=LONG, daily_quota=10))
    assert _remaining(api.get("/v1/contacts")) == 9
    for _ in range(3):
        assert _remaining(api.get("/v1/contacts")) == 9


def test_per_window_limit_resets_in_the_next_aligned_window(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=2, window_seconds=1, daily_quota=100))
    time.sleep(1 - time.time() % 1 + 0.01)  # start at the beginning of a window
    assert [api.get("/v1/contacts").status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(1 - time.time() % 1 + 0.01)
    assert api.get("/v1/contacts").status_code == 200


def test_limits_are_per_api_key(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=1, window_seconds=LONG, daily_quota=100))
    other = api.sb.create_key()
    assert api.get("/v1/contacts").status_code == 200
    assert api.get("/v1/contacts").status_code == 429
    assert api.get("/v1/contacts", key=other).status_code == 200


def test_exhausted_daily_quota_is_429_with_remaining_zero(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=100, window_seconds=LONG, daily_quota=3))
    answers = [api.get("/v1/contacts") for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert [_remaining(r) for r in answers] == [2, 1, 0, 0, 0]
    assert_error(answers[4], 429, "rate_limited")
    ids = api.sb.seed(1)
    assert api.delete(ids).status_code == 429
    assert api.sb.existing_ids() == set(ids)


def test_retry_after_appears_only_when_the_profile_asks(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=1, window_seconds=LONG, daily_quota=100, retry_after=True))
    api.get("/v1/contacts")
    limited = api.get("/v1/contacts")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_export_has_its_own_hourly_limit(api: Api) -> None:
    api.sb.set_profile(Profile(per_window=100, window_seconds=LONG, daily_quota=100, export_per_hour=2))
    answers = [api.get("/v1/contacts/export") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert_error(answers[2], 429, "rate_limited")
    assert api.get("/v1/contacts").status_code == 200  # other calls are unaffected
