"""The daily quota headers (``X-RateLimit-Limit/Remaining/Reset``) and QuotaExhausted."""

from __future__ import annotations

import math
import pickle

import pytest
from fakes import RESET, SERVER_NOW, http_date, quota_headers
from hypothesis import given
from hypothesis import strategies as st

from leadlex_nb.quota import QuotaExhausted, QuotaInfo, parse_quota_headers


def test_epoch_reset_is_moved_onto_the_local_clock_using_the_date_header() -> None:
    local_now = 5_000.0  # a local clock that disagrees wildly with the server's
    info = parse_quota_headers(quota_headers(995), local_now)
    assert info == QuotaInfo(limit=1000, remaining=995, reset_at=local_now + (RESET - SERVER_NOW))


def test_a_skewed_local_clock_still_gets_the_right_time_to_go() -> None:
    local_now = SERVER_NOW - 600.0  # our clock runs ten minutes behind
    info = parse_quota_headers(quota_headers(10), local_now)
    assert info.reset_at is not None
    assert info.reset_at - local_now == pytest.approx(RESET - SERVER_NOW)


def test_without_a_date_header_an_epoch_reset_is_taken_as_is() -> None:
    info = parse_quota_headers({"X-RateLimit-Reset": str(int(RESET))}, 123.0)
    assert info.reset_at == RESET


def test_small_reset_values_are_seconds_to_go() -> None:
    info = parse_quota_headers({"x-ratelimit-reset": "3600", "date": http_date(SERVER_NOW)}, 50.0)
    assert info.reset_at == 3650.0


def test_iso8601_reset_is_understood_and_skew_corrected() -> None:
    headers = {"X-RateLimit-Reset": "2024-02-26T00:00:00Z", "Date": http_date(SERVER_NOW)}
    info = parse_quota_headers(headers, 0.0)
    assert info.reset_at == pytest.approx(RESET - SERVER_NOW)


def test_epoch_milliseconds_reset_is_understood() -> None:
    info = parse_quota_headers({"X-RateLimit-Reset": str(int(RESET * 1000))}, 0.0)
    assert info.reset_at == pytest.approx(RESET)


def test_header_names_are_case_insensitive() -> None:
    upper = parse_quota_headers({"X-RATELIMIT-REMAINING": "7"}, 0.0)
    lower = parse_quota_headers({"x-ratelimit-remaining": "7"}, 0.0)
    assert upper.remaining == lower.remaining == 7


def test_aiohttp_style_multidict_headers_are_accepted() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDictProxy(multidict.CIMultiDict(quota_headers(42)))
    assert parse_quota_headers(headers, 0.0).remaining == 42


@pytest.mark.parametrize("garbage", ["", "abc", "-3", "nan", "inf", "1e999", "4.5", "１x"])
def test_garbled_values_become_unknown_fields(garbage: str) -> None:
    headers = {
        "X-RateLimit-Limit": garbage,
        "X-RateLimit-Remaining": garbage,
        "X-RateLimit-Reset": garbage if garbage != "4.5" else "2024-13-45T99:00",
        "Date": "yesterday-ish",
    }
    assert parse_quota_headers(headers, 0.0) == QuotaInfo(None, None, None)


def test_a_garbled_date_header_leaves_the_reset_uncorrected() -> None:
    headers = {"X-RateLimit-Reset": str(int(RESET)), "Date": "not a date"}
    assert parse_quota_headers(headers, 0.0).reset_at == RESET


def test_missing_headers_mean_an_unknown_quota() -> None:
    assert parse_quota_headers({}, 0.0) == QuotaInfo(None, None, None)


header_names = st.sampled_from(
    ["X-RateLimit-Limit", "x-ratelimit-remaining", "X-RATELIMIT-RESET", "Date", "date", "Other"]
)


@given(st.dictionaries(header_names, st.text(), max_size=6), st.floats(-1e12, 1e12))
def test_quota_parsing_never_raises_on_arbitrary_text(
    headers: dict[str, str], local_now: float
) -> None:
    info = parse_quota_headers(headers, local_now)
    assert info.limit is None or info.limit >= 0
    assert info.remaining is None or info.remaining >= 0
    assert info.reset_at is None or math.isfinite(info.reset_at)


def test_quota_exhausted_names_the_reset_and_survives_pickling() -> None:
    error = QuotaExhausted(0, RESET)
    assert "2024-02-26T00:00:00+00:00" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.remaining, copy.reset_at) == (0, RESET)
