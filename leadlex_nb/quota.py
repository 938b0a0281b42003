"""The daily quota, as advertised in ``X-RateLimit-Limit/Remaining/Reset`` on every answer.

Parsing never raises: garbled or missing headers give unknown (None) fields, which the caller
logs instead of guessing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = ["QuotaExhausted", "QuotaInfo", "merge_quota", "parse_quota_headers"]


@dataclass(frozen=True)
class QuotaInfo:
    """The daily quota as last advertised. ``reset_at`` is in LOCAL epoch seconds (skew-corrected)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None


# Reset values below this are "seconds to go" (a day is 86,400 s); above, epoch seconds (1e9 is
# 2001). Above 1e11 they can only be epoch milliseconds (1e11 s is the year 5138).
_EPOCH_SECONDS_FROM: Final[float] = 1e9
_EPOCH_MILLIS_FROM: Final[float] = 1e11
# How much later a Reset must be to count as a new quota period (seconds-to-go values jitter
# by the request latency and integer rounding).
_RESET_TOLERANCE: Final[float] = 1.5


def merge_quota(cur: QuotaInfo, new: QuotaInfo, local_now: float) -> QuotaInfo:
    """The freshest view of the quota: Remaining only falls within one quota period, so the lowest
    value wins whatever order answers arrive in; a later Reset starts a new period."""
    if new == QuotaInfo():
        return cur
    if cur.reset_at is not None and new.reset_at is not None:
        if new.reset_at < cur.reset_at - _RESET_TOLERANCE:
            return cur  # a late answer from the previous period
        new_period = new.reset_at > cur.reset_at + _RESET_TOLERANCE
    else:
        new_period = False
    stale = cur.reset_at is not None and local_now >= cur.reset_at
    if new_period or stale or cur.remaining is None:
        remaining = new.remaining
    elif new.remaining is None:
        remaining = cur.remaining
    else:
        remaining = min(cur.remaining, new.remaining)
    if new_period or cur.reset_at is None:
        reset_at = new.reset_at if new.reset_at is not None else cur.reset_at
    else:
        reset_at = cur.reset_at
    return QuotaInfo(limit=new.limit if new.limit is not None else cur.limit, remaining=remaining, reset_at=reset_at)


def parse_quota_headers(headers: Mapping[str, str], local_now: float) -> QuotaInfo:
    """Read ``X-RateLimit-Limit/Remaining/Reset`` from any mapping, case-insensitively.

    ``Reset`` may be epoch seconds (or milliseconds), seconds-to-go, or ISO 8601. An absolute
    reset is moved onto the local clock with the server's ``Date`` header:
    ``reset_local = reset_server - date_server + local_now``. Garbled or missing values give
    None fields; this never raises, because answers that make no sense must be logged, not crash.
    """
    lowered = _lower_keys(headers)
    reset_at: float | None = None
    raw_reset = lowered.get("x-ratelimit-reset")
    if raw_reset is not None:
        reset_at = _parse_reset(raw_reset, _parse_http_date(lowered.get("date")), local_now)
    return QuotaInfo(
        limit=_parse_count(lowered.get("x-ratelimit-limit")),
        remaining=_parse_count(lowered.get("x-ratelimit-remaining")),
        reset_at=reset_at,
    )


class QuotaExhausted(Exception):
    """The daily quota (minus requests already in flight) is used up.

    Raised at once instead of sleeping until the reset; the engine wraps it into its stop.
    """

    def __init__(self, remaining: int | None, reset_at: float | None) -> None:
        super().__init__(remaining, reset_at)  # keeps the exception picklable
        self.remaining = remaining
        self.reset_at = reset_at

    def __str__(self) -> str:
        when = (
            "at an unknown time"
            if self.reset_at is None
            else "at " + datetime.fromtimestamp(self.reset_at, timezone.utc).isoformat()
        )
        return (
            f"the daily LeadLex request quota is exhausted ({self.remaining} left, "
            f"counting requests still in flight); it resets {when}"
        )


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    lowered: dict[str, str] = {}
    try:
        for key, value in headers.items():
            if isinstance(key, str) and isinstance(value, str):
                lowered.setdefault(key.lower(), value)  # first value wins on repeated headers
    except Exception:  # a broken mapping must not break a run; its fields stay unknown
        return {}
    return lowered


def _parse_count(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    try:
        number = int(text) if text.isascii() and text.isdigit() else float(text)
    except ValueError:
        return None
    if isinstance(number, float):
        if not (math.isfinite(number) and number.is_integer()):
            return None
        number = int(number)
    return number if number >= 0 else None


@functools.lru_cache(maxsize=8)  # a Date header repeats on every answer within its second
def _parse_http_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        epoch = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return epoch if math.isfinite(epoch) else None


def _parse_reset(value: str, server_now: float | None, local_now: float) -> float | None:
    text = value.strip()
    if not text:
        return None
    server_epoch: float | None
    try:
        number = float(text)
    except ValueError:
        server_epoch = _parse_iso8601(text)
        if server_epoch is None:
            server_epoch = _parse_http_date(text)
    else:
        if not math.isfinite(number) or number < 0:
            return None
        if number < _EPOCH_SECONDS_FROM:
            return local_now + number  # seconds to go: relative, so no skew to correct
        server_epoch = number / 1000.0 if number >= _EPOCH_MILLIS_FROM else number
    if server_epoch is None:
        return None
    if server_now is None:
        return server_epoch  # no Date header: assume the clocks agree
    return server_epoch - server_now + local_now


def _parse_iso8601(text: str) -> float | None:
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # fromisoformat accepts "Z" only from Python 3.11
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)  # the quota resets at midnight UTC
        epoch = when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return epoch if math.isfinite(epoch) else None
