"""Timestamps: stored and sent as fixed-width ISO 8601 UTC strings, so text order is time order."""

from __future__ import annotations

from datetime import datetime, timezone

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime(_FMT)


def parse_iso(text: str) -> datetime | None:
    """Parse an ISO 8601 date or date-time; naive values are taken as UTC. None if invalid."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def iso_of(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime(_FMT)
