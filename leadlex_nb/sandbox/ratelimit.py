"""Per-key rate limiting: an unadvertised fixed window plus an advertised UTC-daily quota.

Every authenticated request that is not itself answered 429 counts once against both. Exports also
count against a per-workspace limit (one workspace in the sandbox).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .profiles import DAY_SECONDS, Profile


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]
    message: str = ""


class RateLimiter:
    def __init__(self, profile: Profile, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.set_profile(profile)

    def set_profile(self, profile: Profile) -> None:
        """Switch limits and forget past counts, so a test starts from a known budget."""
        with self._lock:
            self.profile = profile
            self._window: dict[str, tuple[int, int]] = {}
            self._daily: dict[str, tuple[int, int]] = {}
            self._exports: tuple[int, int] = (0, 0)

    def headers(self, label: str) -> dict[str, str]:
        with self._lock:
            now = self._clock()
            return self._headers(self._used_today(label, now), now)

    def admit(self, label: str, *, export: bool = False) -> Verdict:
        """Count the request if it fits every limit, else refuse it without counting."""
        with self._lock:
            p = self.profile
            now = self._clock()
            used = self._used_today(label, now)
            if used >= p.daily_quota:
                return self._refuse(
                    used, now, _next_midnight(now) - now, "Daily API quota exhausted; it resets at 00:00 UTC"
                )
            window = int(now // p.window_seconds)
            w_idx, w_count = self._window.get(label, (window, 0))
            if w_idx != window:
                w_count = 0
            if w_count >= p.per_window:
                wait = (window + 1) * p.window_seconds - now
                return self._refuse(used, now, wait, "Rate limit exceeded; slow down and retry later")
            if export:
                e_window = int(now // p.export_window_seconds)
                e_idx, e_count = self._exports
                if e_idx != e_window:
                    e_count = 0
                if e_count >= p.export_per_hour:
                    wait = (e_window + 1) * p.export_window_seconds - now
                    return self._refuse(used, now, wait, f"Export limit of {p.export_per_hour} calls per hour reached")
                self._exports = (e_window, e_count + 1)
            self._window[label] = (window, w_count + 1)
            self._daily[label] = (int(now // DAY_SECONDS), used + 1)
            return Verdict(True, self._headers(used + 1, now))

    def refusal(self, label: str, message: str = "Rate limit exceeded; slow down and retry later") -> Verdict:
        """A 429 decided elsewhere (an injected burst): not counted, current headers."""
        with self._lock:
            now = self._clock()
            return self._refuse(self._used_today(label, now), now, 1.0, message)

    def _refuse(self, used: int, now: float, wait: float, message: str) -> Verdict:
        headers = self._headers(used, now)
        if self.profile.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return Verdict(False, headers, message)

    def _used_today(self, label: str, now: float) -> int:
        day, used = self._daily.get(label, (int(now // DAY_SECONDS), 0))
        return used if day == int(now // DAY_SECONDS) else 0

    def _headers(self, used: int, now: float) -> dict[str, str]:
        quota = self.profile.daily_quota
        return {
            "X-RateLimit-Limit": str(quota),
            "X-RateLimit-Remaining": str(max(0, quota - used)),
            "X-RateLimit-Reset": str(_next_midnight(now)),
        }


def _next_midnight(now: float) -> int:
    return (int(now // DAY_SECONDS) + 1) * DAY_SECONDS
