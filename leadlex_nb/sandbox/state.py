"""Everything one sandbox instance holds, shared by the routes and the thread harness."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from aiohttp import web

from .auth import KeyRing
from .execlog import ExecutionLog
from .faults import FaultInjector
from .idempotency import IdempotencyStore
from .profiles import Profile
from .ratelimit import RateLimiter
from .store import Store
from .webhooks import Webhooks

MAX_BODY_BYTES = 1024 * 1024


@dataclass
class SandboxState:
    store: Store
    keys: KeyRing
    limiter: RateLimiter
    faults: FaultInjector
    idempotency: IdempotencyStore
    log: ExecutionLog
    webhooks: Webhooks
    rng: random.Random
    rng_lock: threading.Lock = field(default_factory=threading.Lock)
    workspace_id: str = "ws_sandbox"
    max_body_bytes: int = MAX_BODY_BYTES

    @property
    def profile(self) -> Profile:
        return self.limiter.profile


STATE_KEY = web.AppKey("leadlex_sandbox_state", SandboxState)
