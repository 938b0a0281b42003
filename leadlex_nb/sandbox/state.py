"""Everything one sandbox instance holds, shared by the routes and the thread harness."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class RequestContext:
    """What the pipeline learns about one request, shared with the handler."""

    request_id: str
    log_entry: dict[str, Any]
    rl_headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    replayed: bool = False
    header_fault: str | None = None  # one of faults.HEADER_FAULTS: bends this answer's X-RateLimit-*


# aiohttp >= 3.13 prefers typed request keys; older versions take a plain string.
_RequestKey = getattr(web, "RequestKey", None)
CTX_KEY: Any = _RequestKey("leadlex_ctx", RequestContext) if _RequestKey else "leadlex_ctx"


def ctx(request: web.BaseRequest) -> RequestContext:
    return request[CTX_KEY]  # type: ignore[no-any-return]
