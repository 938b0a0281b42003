"""The per-minute rate limits of LeadLex plans, and reading a ``plan=`` argument.

The per-minute limit is not advertised by the API (api facts §2.3): the caller names the plan,
or the governor learns the limit from the first 429.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = ["PLAN_LIMITS", "RateLimit", "resolve_rate_limit"]


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``per_seconds`` (the server's limit, used in full)."""

    requests: int
    per_seconds: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or self.requests < 1:
            raise ValueError(f"a rate limit needs at least 1 request, got {self.requests!r}")
        if not (math.isfinite(self.per_seconds) and self.per_seconds > 0):
            raise ValueError(f"per_seconds must be a finite number > 0, got {self.per_seconds!r}")


#: Per-minute limits per plan (LeadLex docs [AUTH]); read-only so no run can change another's.
PLAN_LIMITS: Final[Mapping[str, RateLimit]] = MappingProxyType(
    {"starter": RateLimit(10), "pro": RateLimit(50), "org": RateLimit(200)}
)


def resolve_rate_limit(plan: str | int | RateLimit | None) -> RateLimit | None:
    """The per-minute limit for ``plan``: a plan name, a requests-per-minute number, a
    RateLimit (returned as is), or None meaning "unknown, learn it from 429s"."""
    if plan is None or isinstance(plan, RateLimit):
        return plan
    if isinstance(plan, bool):  # bool is an int subclass; True is not "1 per minute"
        raise TypeError("plan must be a plan name, a requests-per-minute number, or None")
    if isinstance(plan, int):
        if plan < 1:
            raise ValueError(f"requests per minute must be at least 1, got {plan}")
        return RateLimit(plan)
    if isinstance(plan, str):
        key = plan.strip().lower()
        if key in PLAN_LIMITS:
            return PLAN_LIMITS[key]
        if key.isascii() and key.isdigit():
            return resolve_rate_limit(int(key))
        valid = ", ".join(repr(name) for name in sorted(PLAN_LIMITS))
        raise ValueError(
            f"unknown plan {plan!r}: expected one of {valid}, a number of requests per minute, "
            "or None to learn the limit"
        )
    raise TypeError(f"plan must be a str, int, RateLimit or None, not {type(plan).__name__}")
