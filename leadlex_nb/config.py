"""Frozen settings for a run: the API key (masked), base URL, limits, retries, batching.

Defaults live in :mod:`leadlex_nb.defaults`; nothing is read from the environment except in
:func:`resolve_settings`, once, at the start of a run.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from leadlex_nb.defaults import (
    DEFAULT_ATTRIBUTION_BUDGET,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_WINDOW_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_JOURNAL,
)
from leadlex_nb.errors import ConfigurationError
from leadlex_nb.limits import RateLimit, resolve_rate_limit
from leadlex_nb.retry import RetryPolicy

__all__ = [
    # re-exported from leadlex_nb.defaults: they were defined here before it existed
    "DEFAULT_ATTRIBUTION_BUDGET",
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE_WINDOW_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_JOURNAL",
    "ApiKey",
    "Settings",
    "check_flag",
    "default_journal_path",
    "hide_api_key",
    "hide_key_option",
    "resolve_settings",
    "validate_base_url",
]


class ApiKey:
    """An API key that never shows itself in a repr, str, log line or pickle."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigurationError("the API key is empty")
        if any(ch in secret for ch in "\r\n"):
            raise ConfigurationError("the API key contains a line break")
        self._secret = secret.strip()

    def reveal(self) -> str:
        """The secret itself; only the transport calls this, to build the Authorization header."""
        return self._secret

    @property
    def fingerprint(self) -> str:
        """A stable, non-reversible label: tells keys apart in journals without storing them."""
        return "key_" + hashlib.sha256(self._secret.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"ApiKey({self.fingerprint}, secret=***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._secret == self._secret

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an ApiKey cannot be pickled")


def hide_api_key(key: Any) -> Any:
    """A key given as text, wrapped in :class:`ApiKey` at once; anything else as it is.

    The public entry points rebind their ``api_key`` argument (or ``options``) to this first:
    IPython's verbose tracebacks print every frame's argument values, and a plain string there
    would show the key. Text that ``ApiKey`` refuses (empty, a line break) stays text, so
    ``resolve_settings`` reports it as before.
    """
    if isinstance(key, str):
        try:
            return ApiKey(key)
        except ConfigurationError:
            return key
    return key


def hide_key_option(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with its ``api_key`` passed through :func:`hide_api_key` (a copy; the caller's dict is untouched)."""
    if "api_key" not in options:
        return options
    return {**options, "api_key": hide_api_key(options["api_key"])}


def default_journal_path() -> Path:
    """``$LEADLEX_JOURNAL``, else ``$XDG_DATA_HOME/leadlex-nb/journal.sqlite3`` (``~/.local/share`` by default)."""
    explicit = os.environ.get(ENV_JOURNAL)
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "leadlex-nb" / "journal.sqlite3"


@dataclass(frozen=True)
class Settings:
    api_key: ApiKey = field(repr=False)
    base_url: str
    rate_limit: RateLimit | None = None
    rate_window: float = DEFAULT_RATE_WINDOW_SECONDS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int | None = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    attribution_budget: int = DEFAULT_ATTRIBUTION_BUDGET
    ignore_quota: bool = False
    journal_path: Path | None = None
    snapshot: bool | str = True  # True: the cheapest read; False: none; or "export", "list", "get"

    def __post_init__(self) -> None:
        # Numbers are checked for type too: 1.5 requests, True workers or a NaN timeout would
        # otherwise pass the range checks (NaN fails every comparison) and misbehave later.
        for name in ("batch_size", "concurrency", "attribution_budget"):
            if name == "concurrency" and self.concurrency is None:
                continue  # sized from the rate limit as the run goes
            object.__setattr__(self, name, _whole_number(name, getattr(self, name)))
        for name in ("timeout", "rate_window"):
            object.__setattr__(self, name, _positive_seconds(name, getattr(self, name)))
        object.__setattr__(self, "ignore_quota", check_flag("ignore_quota", self.ignore_quota))
        if not 1 <= self.batch_size <= 500:
            raise ConfigurationError(f"batch_size must be between 1 and 500, got {self.batch_size}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.attribution_budget < 0:
            raise ConfigurationError(f"attribution_budget must be >= 0, got {self.attribution_budget}")
        snapshot: object = self.snapshot
        if isinstance(snapshot, np.bool_):
            snapshot = bool(snapshot)
        if not (isinstance(snapshot, bool) or snapshot in ("export", "list", "get")):
            raise ConfigurationError(f"snapshot must be True, False, 'export', 'list' or 'get', got {snapshot!r}")
        object.__setattr__(self, "snapshot", snapshot)


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool (numpy's too); else a ConfigurationError.

    A flag such as ``dry_run="no"`` must not be read as truthy: the string would turn the run into
    a dry run (or a deletion) that nobody asked for.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigurationError(f"{name} must be True or False, got {value!r}")


def _whole_number(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return seconds


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str) -> str:
    """Refuse anything but https, except plain http to a loopback host (the sandbox)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise ConfigurationError("base_url must not carry credentials")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"refusing plain http:// to {host}: the API key would travel unencrypted; use https:// "
            "(http:// is allowed only for loopback hosts such as the local sandbox)"
        )
    return url.strip().rstrip("/")


def resolve_settings(
    *,
    api_key: str | ApiKey | None = None,
    base_url: str | None = None,
    plan: str | int | RateLimit | None = None,
    rate_window: float = DEFAULT_RATE_WINDOW_SECONDS,
    retry: RetryPolicy | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int | None = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    attribution_budget: int = DEFAULT_ATTRIBUTION_BUDGET,
    ignore_quota: bool = False,
    journal: str | os.PathLike[str] | bool | None = None,
    snapshot: bool | str = True,
) -> Settings:
    """Arguments win over the environment; the environment wins over the defaults."""
    if isinstance(api_key, ApiKey):
        key = api_key
    else:
        raw = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not raw:
            raise ConfigurationError(f"no API key: pass api_key=... or set {ENV_API_KEY}")
        key = ApiKey(raw)
    # Two statements: a verbose traceback (IPython's %xmode Verbose) shows the values named on the
    # failing line, and os.environ there would print the whole environment, $LEADLEX_API_KEY too.
    raw_url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    url = validate_base_url(raw_url)
    try:
        rate_limit = resolve_rate_limit(plan)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if not isinstance(journal, (str, os.PathLike, bool, type(None))):
        raise ConfigurationError(f"journal must be a path, None or False, got {journal!r}")
    if journal is False:
        journal_path = None
    elif journal is None or journal is True:
        journal_path = default_journal_path()
    else:
        journal_path = Path(journal).expanduser()
    return Settings(
        api_key=key,
        base_url=url,
        rate_limit=rate_limit,
        rate_window=rate_limit.per_seconds if rate_limit is not None else rate_window,
        retry=retry or RetryPolicy(),
        batch_size=batch_size,
        concurrency=concurrency,
        timeout=timeout,
        attribution_budget=attribution_budget,
        ignore_quota=ignore_quota,
        journal_path=journal_path,
        snapshot=snapshot,
    )
