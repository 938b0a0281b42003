"""Test doubles for the engine's injected time (architecture principle 5)."""

from __future__ import annotations

import asyncio


class FakeClock:
    """A monotonic clock, a wall clock and a ``sleep`` that moves time instead of waiting.

    ``sleep(d)`` yields to the event loop once, then sets the time to at least (its start + d):
    concurrent sleepers overlap instead of adding up, and a sleeper never wakes early.
    The wall clock runs in step, ``wall_offset`` seconds apart.
    """

    def __init__(self, start: float = 1000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self.now = start
        self.wall_offset = wall_offset
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now + self.wall_offset

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time does not run backwards"
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake_at = self.now + max(0.0, seconds)
        await asyncio.sleep(0)
        self.now = max(self.now, wake_at)
