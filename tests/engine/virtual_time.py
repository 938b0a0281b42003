"""An event loop on virtual time, and a server with a hidden fixed-window limit, for pacing tests.

The loop's clock jumps to the next timer instead of waiting, so minutes of pacing run in
milliseconds while ``asyncio.sleep`` and the governor's ``clock`` agree exactly.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from leadlex_nb.limits import RateLimit
from leadlex_nb.pacing import RateGovernor

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("deadlock: nothing scheduled and nothing to wait for")
        self._loop.now += max(0.0, timeout)
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


@dataclass
class HiddenLimit:
    """A server allowing ``per_window`` requests per fixed window (like the sandbox), no Retry-After."""

    per_window: int
    window: float
    accepted: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)

    def admit(self, now: float) -> bool:
        index = int(now // self.window)
        if sum(1 for t in self.accepted[-self.per_window:] if int(t // self.window) == index) >= self.per_window:
            self.refused.append(now)
            return False
        self.accepted.append(now)
        return True


@dataclass
class Drive:
    seconds: float
    rate_limited: int
    granted: int


async def drive(
    loop: VirtualTimeLoop,
    governor: RateGovernor,
    server: HiddenLimit,
    requests: int,
    *,
    in_flight: int | Callable[[], int],
    latency: float = 0.05,
    jitter: float = 0.02,
    seed: int = 0,
) -> Drive:
    """Send ``requests`` through ``governor`` like the sender does: a 429 is sent again."""
    rand = random.Random(seed)
    todo = list(range(requests))
    start = loop.time()
    limited = granted = 0
    running = 0
    bound = in_flight if callable(in_flight) else (lambda: in_flight)
    done = asyncio.Event()

    async def one() -> None:
        nonlocal limited, granted, running
        while True:
            sent_at = await governor.acquire()
            granted += 1
            half = max(0.0, latency + rand.uniform(-jitter, jitter)) / 2
            await asyncio.sleep(half)
            ok = server.admit(loop.time())
            await asyncio.sleep(half)
            governor.on_answer(sent_at, 200 if ok else 429, None)
            if ok:
                break
            limited += 1
            governor.on_rate_limited(sent_at, None)
        running -= 1
        fill()

    def fill() -> None:
        nonlocal running
        while todo and running < bound():
            todo.pop()
            running += 1
            loop.create_task(one())
        if not todo and running == 0:
            done.set()

    fill()
    await done.wait()
    return Drive(loop.time() - start, limited, granted)


def ideal_seconds(limit: RateLimit, requests: int, latency: float) -> float:
    """The least time for ``requests`` answers: full windows, back to back, plus one round trip."""
    windows = -(-requests // limit.requests)
    return (windows - 1) * limit.per_seconds + latency


def governor_on(loop: VirtualTimeLoop, limit: RateLimit | None, **kwargs: Any) -> RateGovernor:
    return RateGovernor(limit, clock=loop.time, sleep=asyncio.sleep, wall_clock=lambda: 1.7e9 + loop.time(),
                        **kwargs)
