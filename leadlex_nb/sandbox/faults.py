"""Seeded fault injection.

``Faults`` is the configuration; ``FaultInjector`` turns it into one decision per request on a
matched path, in arrival order, from ``random.Random(seed)`` so a run replays exactly.

Where each fault strikes (see ``app.py``):

- ``reset_before``, ``gateway_html``: at the edge, before authentication; nothing is counted or run.
- ``burst_429``: after authentication, instead of the rate-limit check (a 429 is never counted).
- ``error_5xx``: after authentication and counting, before execution (JSON 500 or 503).
- ``drop_after_commit``: the request runs and commits (its idempotent answer is stored), then the
  connection is dropped without an answer.
- ``slow_after_commit``: the request runs and commits, then the answer waits ``slow_seconds``.
- ``latency``: every matched request first waits ``latency`` ± ``latency_jitter`` seconds.

A misbehaving server (``MISBEHAVIOUR``; rolled after the faults above, so their seeds replay
unchanged):

- ``redirect``: at the edge, a 301/302/303/307/308 to another host; nothing is counted or run.
- ``retry_after_date``: like ``burst_429`` (one answer), with ``Retry-After`` as an HTTP date.
- ``non_json_200``: the request runs and commits (the stored idempotent answer is the real one),
  then the 200 carries a truncated JSON body or an HTML page instead.
- ``bad_counts``: the same, but the 200's ``deleted_count`` is one more than the truth.
- ``garbled_ratelimit``, ``missing_ratelimit``, ``reset_past``, ``reset_future``: the request runs
  normally; its answer's ``X-RateLimit-*`` headers are garbled, missing, or reset an hour ago or
  ten years ahead.
- ``revoke_after=n``: the key of the matched request after the first ``n`` is revoked just
  before it is authenticated (the request gets 401); ``Sandbox.reinstate_key`` undoes it.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field

PRE_FAULTS = ("reset_before", "gateway_html", "error_5xx", "burst_429")
POST_FAULTS = ("drop_after_commit", "slow_after_commit")
MISBEHAVIOUR = ("redirect", "retry_after_date", "non_json_200", "bad_counts", "garbled_ratelimit",
                "missing_ratelimit", "reset_past", "reset_future")
ROLLED = PRE_FAULTS + POST_FAULTS + MISBEHAVIOUR
HEADER_FAULTS = frozenset({"garbled_ratelimit", "missing_ratelimit", "reset_past", "reset_future"})
# Names accepted in ``Faults.schedule``; the specific ones pin the status code.
SCHEDULE_NAMES = frozenset(
    (*ROLLED, "latency", "error_500", "error_503", "gateway_502", "gateway_504")
)


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    latency: float = 0.0
    latency_jitter: float = 0.0
    error_5xx: float = 0.0
    gateway_html: float = 0.0
    reset_before: float = 0.0
    drop_after_commit: float = 0.0
    slow_after_commit: float = 0.0
    slow_seconds: float = 2.0
    burst_429: float = 0.0
    burst_length: int = 3
    redirect: float = 0.0
    retry_after_date: float = 0.0
    non_json_200: float = 0.0
    bad_counts: float = 0.0
    garbled_ratelimit: float = 0.0
    missing_ratelimit: float = 0.0
    reset_past: float = 0.0
    reset_future: float = 0.0
    revoke_after: int | None = None
    # Explicit per-request fault names for matched requests; overrides the probabilities.
    schedule: tuple[str | None, ...] | list[str | None] | None = None
    paths: tuple[str, ...] = ("/v1/contacts/bulk-delete",)

    def __post_init__(self) -> None:
        probs = [getattr(self, n) for n in ROLLED]
        if any(p < 0 or p > 1 for p in probs) or sum(probs) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must be in [0, 1] and sum to at most 1")
        if self.latency < 0 or self.latency_jitter < 0 or self.slow_seconds < 0:
            raise ValueError("latency, latency_jitter and slow_seconds must be >= 0")
        if self.revoke_after is not None and self.revoke_after < 0:
            raise ValueError("revoke_after must be >= 0")
        if self.burst_length < 1:
            raise ValueError("burst_length must be >= 1")
        if self.schedule is not None:
            bad = [s for s in self.schedule if s is not None and s not in SCHEDULE_NAMES]
            if bad:
                raise ValueError(f"unknown fault names in schedule: {bad}; known: {sorted(SCHEDULE_NAMES)}")
            object.__setattr__(self, "schedule", tuple(self.schedule))
        paths: object = self.paths  # one pattern may be given as a plain string
        object.__setattr__(self, "paths", (paths,) if isinstance(paths, str) else tuple(self.paths))


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one request. ``name`` is what the execution log records."""

    name: str | None
    delay: float = 0.0
    status: int | None = None  # for error_5xx / gateway_html
    slow_seconds: float = 0.0

    @property
    def kind(self) -> str | None:
        if self.name in ("error_500", "error_503"):
            return "error_5xx"
        if self.name in ("gateway_502", "gateway_504"):
            return "gateway_html"
        return self.name


NO_FAULT = FaultDecision(None)


@dataclass
class FaultInjector:
    faults: Faults | None = None
    _rng: random.Random = field(init=False)
    _position: int = field(init=False, default=0)
    _burst_left: int = field(init=False, default=0)
    _seen: int = field(init=False, default=0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reset(self.faults)

    def reset(self, faults: Faults | None) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed if faults else 0)
            self._position = 0
            self._burst_left = 0
            self._seen = 0

    def matches(self, path: str) -> bool:
        f = self.faults
        return f is not None and any(fnmatch.fnmatchcase(path, p) for p in f.paths)

    def decide(self, path: str) -> FaultDecision:
        with self._lock:
            f = self.faults
            if f is None or not any(fnmatch.fnmatchcase(path, p) for p in f.paths):
                return NO_FAULT
            self._seen += 1
            if f.revoke_after is not None and self._seen == f.revoke_after + 1:
                return FaultDecision("revoke_key")
            delay = self._delay(f)
            if f.schedule is not None:
                name = f.schedule[self._position] if self._position < len(f.schedule) else None
                self._position += 1
                return self._build(f, name, delay)
            if self._burst_left > 0:
                self._burst_left -= 1
                return FaultDecision("burst_429", delay)
            roll = self._rng.random()
            acc = 0.0
            for name in ROLLED:
                acc += getattr(f, name)
                if roll < acc:
                    if name == "burst_429":
                        self._burst_left = f.burst_length - 1
                    return self._build(f, name, delay)
            return FaultDecision("latency" if delay > 0 else None, delay)

    def _delay(self, f: Faults) -> float:
        if f.latency <= 0 and f.latency_jitter <= 0:
            return 0.0
        return max(0.0, f.latency + self._rng.uniform(-f.latency_jitter, f.latency_jitter))

    def _build(self, f: Faults, name: str | None, delay: float) -> FaultDecision:
        if name is None or name == "latency":
            return FaultDecision("latency" if delay > 0 else None, delay)
        status = None
        if name == "error_5xx":
            status = self._rng.choice((500, 503))
        elif name == "gateway_html":
            status = self._rng.choice((502, 504))
        elif name == "redirect":
            status = self._rng.choice((301, 302, 303, 307, 308))
        elif name == "non_json_200":
            status = self._rng.choice((0, 1))  # which body: truncated JSON or an HTML page
        elif name in ("error_500", "error_503", "gateway_502", "gateway_504"):
            status = int(name[-3:])
        return FaultDecision(name, delay, status, f.slow_seconds)
