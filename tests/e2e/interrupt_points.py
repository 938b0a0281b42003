"""Where a run is interrupted: seeded points, each a kind of interrupt and a phase of the run.

A point fixes, from its seed alone, the frame, the sandbox's faults, the run's options and the
moment of the interrupt: the n-th request of a given class the sandbox sees (plus a random delay),
or the confirm hook. The same seed always gives the same point, so a failure replays.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import leadlex_nb
from leadlex_nb import RateLimit, RetryPolicy
from leadlex_nb.sandbox import Faults

# keyboard: KeyboardInterrupt into a synchronous call (a kernel's stop button, Ctrl-C in a script);
# cancel: asyncio task cancellation; kill: SIGKILL of a child process running the run;
# panel_stop: the notebook panel's Stop button (only shown while the deletion runs).
KINDS = ("keyboard", "cancel", "kill", "panel_stop")
PHASES = ("dry_run", "attribution", "confirm", "in_flight", "backoff", "pacing")
DELETING_PHASES = ("in_flight", "backoff", "pacing")
PAST_THE_KEY_WINDOW = 25 * 3600
# lnb-<run id>-<phase>[.<key round>]-<batch>-<digest>
_KEY = re.compile(r"lnb-[0-9a-f]+-(dry_run|attribution|recheck|delete)[.-]")


def request_class(entry: dict[str, Any]) -> str:
    """Which part of a run sent a request, from its idempotency key (workspace reads have none)."""
    found = _KEY.match(entry.get("idempotency_key") or "")
    return found.group(1) if found else "workspace"


@dataclass(frozen=True)
class Point:
    kind: str
    phase: str
    seed: int

    def __str__(self) -> str:
        return f"{self.kind}/{self.phase}/seed={self.seed}"


@dataclass
class Setup:
    """Everything a point decides: frame shape, faults, options and when to interrupt."""

    existing: int
    unknown: int
    batch_size: int
    concurrency: int
    faults: Faults
    fires_on: Callable[[dict[str, Any]], bool] | None  # None: the confirm hook interrupts
    count: int  # interrupt at the count-th matching request the server sees
    delay: float  # ... this many seconds after it arrived
    options: dict[str, Any] = field(default_factory=dict)
    confirm_delay: float = 0.0
    rate: int | None = None  # requests per second for a tight plan
    write_only: bool = False  # a key that cannot read the workspace: attribution bisects with dry runs

    def run_options(self) -> dict[str, Any]:
        retry = self.options.get("retry", RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.05, budget=500))
        extra = {"plan": RateLimit(self.rate, 1.0)} if self.rate else {}
        return {"batch_size": self.batch_size, "concurrency": self.concurrency, "timeout": 5.0,
                "rate_window": 1.0, "retry": retry, **extra}


def _is(cls: str) -> Callable[[dict[str, Any]], bool]:
    return lambda entry: request_class(entry) == cls


def setup_for(point: Point) -> Setup:
    rng = random.Random(point.seed)
    latency = rng.uniform(0.002, 0.01)
    paths = ("/v1/*",)
    if point.phase == "dry_run":
        existing = rng.randint(60, 150)
        return Setup(existing, rng.randint(0, 3), 20, rng.randint(1, 3), Faults(latency=latency, paths=paths),
                     _is("dry_run"), rng.randint(1, existing // 20), rng.uniform(0, latency))
    if point.phase == "attribution":
        # Unknown IDs make dry-run batches report missing contacts, which attribution pins down.
        # Half the points with a key that cannot read the workspace, so attribution bisects.
        return Setup(rng.randint(60, 100), rng.randint(4, 10), rng.choice([25, 40]), 2,
                     Faults(latency=latency, paths=paths),
                     lambda e: request_class(e) in ("attribution", "workspace"), rng.randint(1, 2),
                     rng.uniform(0, latency), write_only=rng.random() < 0.5)
    if point.phase == "confirm":
        return Setup(rng.randint(40, 100), rng.randint(0, 3), 20, 2, Faults(latency=latency, paths=paths),
                     None, 0, 0.0, confirm_delay=rng.uniform(0, 0.02))
    existing = rng.randint(60, 140)
    deletes = -(-existing // 20)
    if point.phase == "in_flight":
        latency = rng.uniform(0.01, 0.04)
        return Setup(existing, rng.randint(0, 3), 20, rng.randint(1, 4), Faults(latency=latency, paths=paths),
                     _is("delete"), rng.randint(1, deletes - 1), rng.uniform(0, latency))
    if point.phase == "backoff":
        # 5xx answers before execution; the interrupt lands while the client waits to retry.
        retry = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=0.2, budget=500)
        return Setup(existing, rng.randint(0, 3), 20, rng.randint(1, 3),
                     Faults(seed=rng.getrandbits(16), error_5xx=0.4, latency=0.002),
                     lambda e: e.get("fault") == "error_5xx" and request_class(e) == "delete", 1,
                     rng.uniform(0.002, 0.04), options={"retry": retry})
    if point.phase == "pacing":
        # A tight plan: requests wait for a slot of the client's rate governor.
        return Setup(existing, rng.randint(0, 3), 20, 4, Faults(latency=0.002, paths=paths), _is("delete"),
                     rng.randint(1, deletes // 2), rng.uniform(0, 0.1), rate=rng.randint(4, 8))
    raise ValueError(f"unknown phase {point.phase!r}")


def frame_values(rng: random.Random, existing: list[str], unknown: int) -> list[Any]:
    """The IDs in mixed order, with unknown UUIDs, one upper-case repeat and one junk value."""
    values: list[Any] = [*existing, *(str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(unknown))]
    rng.shuffle(values)
    return [*values, existing[0].upper(), "not-a-contact"]


def plan_points(total: int, seed: int = 0) -> list[Point]:
    """``total`` points spread over every (kind, phase) pair that exists; kills are fewer (a process each)."""
    pairs = [(k, p) for k in KINDS for p in PHASES if k != "panel_stop" or p in DELETING_PHASES]
    weights = [0.5 if k == "kill" else 1.0 for k, _ in pairs]
    rng = random.Random(seed)
    points = [Point(k, p, rng.getrandbits(32)) for k, p in pairs]  # each pair at least once
    while len(points) < total:
        k, p = rng.choices(pairs, weights)[0]
        points.append(Point(k, p, rng.getrandbits(32)))
    return points[:total] if total >= len(pairs) else points


@contextlib.contextmanager
def clock_moved(seconds: float) -> Iterator[None]:
    """``resume`` reads the time when it loads the journal; as if that happened ``seconds`` later."""

    class Later:
        @staticmethod
        def time() -> float:
            return time.time() + seconds

    real = leadlex_nb.api.time
    leadlex_nb.api.time = Later  # type: ignore[assignment]
    try:
        yield
    finally:
        leadlex_nb.api.time = real
