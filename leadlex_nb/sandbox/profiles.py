"""Plan-shaped rate-limit profiles.

The documented plans (Starter, Pro, Org) count calls per minute and per UTC day. ``fast`` keeps
Pro's shape but scales time (one-second windows, a large daily quota) so tests run in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Profile:
    """Rate limits of one API key.

    ``per_window`` calls per fixed window of ``window_seconds`` (aligned to the epoch, never
    advertised), ``daily_quota`` calls per UTC day (advertised in ``X-RateLimit-*``), and
    ``export_per_hour`` exports per "hour", where an hour is ``60 * window_seconds`` so the export
    limit scales with the profile. ``retry_after`` adds a ``Retry-After`` header to 429 answers,
    which the real API does not document.
    """

    name: str = "custom"
    per_window: int = 50
    window_seconds: float = 60.0
    daily_quota: int = 1_000
    export_per_hour: int = 10
    retry_after: bool = False

    def __post_init__(self) -> None:
        if self.per_window < 1 or self.daily_quota < 1 or self.export_per_hour < 1:
            raise ValueError("per_window, daily_quota and export_per_hour must be >= 1")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")

    @property
    def time_scale(self) -> float:
        """How much faster than real time this profile runs (1.0 for minute windows)."""
        return self.window_seconds / 60.0

    @property
    def export_window_seconds(self) -> float:
        return 60.0 * self.window_seconds


PROFILES: dict[str, Profile] = {
    "starter": Profile("starter", per_window=10, window_seconds=60.0, daily_quota=100),
    "pro": Profile("pro", per_window=50, window_seconds=60.0, daily_quota=1_000),
    "org": Profile("org", per_window=200, window_seconds=60.0, daily_quota=10_000),
    "fast": Profile("fast", per_window=50, window_seconds=1.0, daily_quota=100_000),
}


def resolve_profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}") from None
