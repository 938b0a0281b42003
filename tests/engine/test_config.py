"""Settings: where the key and URL come from, what is refused, and that the key stays hidden."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from leadlex_nb.config import ApiKey, check_flag, resolve_settings, validate_base_url
from leadlex_nb.errors import ConfigurationError

SECRET = "wbk_supersecret_value_123"


def test_key_never_shows_in_repr_str_or_settings_repr() -> None:
    key = ApiKey(SECRET)
    settings = resolve_settings(api_key=SECRET, base_url="https://api.example.com", journal=False)
    for text in (repr(key), str(key), repr(settings), str(settings), f"{key}"):
        assert SECRET not in text


def test_key_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(ApiKey(SECRET))


def test_key_comes_from_the_environment_when_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADLEX_API_KEY", SECRET)
    monkeypatch.setenv("LEADLEX_BASE_URL", "http://127.0.0.1:9/")
    settings = resolve_settings(journal=False)
    assert settings.api_key.reveal() == SECRET
    assert settings.base_url == "http://127.0.0.1:9"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADLEX_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="LEADLEX_API_KEY"):
        resolve_settings(journal=False)


def test_default_base_url_is_the_documented_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADLEX_BASE_URL", raising=False)
    assert resolve_settings(api_key=SECRET, journal=False).base_url == "https://data.leadlex.com/functions/v1/api-gateway"


@pytest.mark.parametrize("url", ["http://api.example.com", "http://10.0.0.5:8080", "ftp://127.0.0.1", "https://u:p@example.com"])
def test_unsafe_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        validate_base_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:80", "https://example.com/x/"])
def test_loopback_http_and_any_https_are_allowed(url: str) -> None:
    assert validate_base_url(url) == url.rstrip("/")


def test_unknown_plan_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="pro"):
        resolve_settings(api_key=SECRET, plan="platinum", journal=False)


def test_batch_size_over_the_api_maximum_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="500"):
        resolve_settings(api_key=SECRET, batch_size=501, journal=False)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", float("nan")),
        ("timeout", float("inf")),
        ("timeout", 0),
        ("timeout", -1.0),
        ("timeout", "30"),
        ("timeout", True),
        ("rate_window", float("nan")),
        ("attribution_budget", 1.5),
        ("attribution_budget", True),
        ("attribution_budget", "100"),
        ("batch_size", 100.0),
        ("batch_size", False),
        ("concurrency", True),
        ("concurrency", 2.5),
        ("ignore_quota", "no"),
        ("ignore_quota", 1),
        ("journal", 3),
    ],
)
def test_options_of_the_wrong_type_or_not_finite_are_refused(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=option):
        resolve_settings(api_key=SECRET, base_url="https://api.example.com", **{"journal": False, option: value})


def test_numpy_numbers_and_flags_are_accepted_as_plain_ones() -> None:
    settings = resolve_settings(
        api_key=SECRET, base_url="https://api.example.com", journal=False, batch_size=np.int64(200),
        concurrency=np.int32(2), timeout=np.float64(5), attribution_budget=np.int64(0), ignore_quota=np.bool_(True),
    )
    assert (settings.batch_size, settings.concurrency, settings.attribution_budget) == (200, 2, 0)
    assert settings.timeout == 5.0 and settings.ignore_quota is True
    assert all(type(v) is int for v in (settings.batch_size, settings.concurrency, settings.attribution_budget))


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, np.nan])
def test_a_flag_that_is_not_a_bool_is_refused_not_read_as_truthy(value: object) -> None:
    with pytest.raises(ConfigurationError, match="dry_run must be True or False"):
        check_flag("dry_run", value)
    assert check_flag("dry_run", np.bool_(False)) is False and check_flag("dry_run", True) is True
