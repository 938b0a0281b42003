"""Webhook registrations and signed, retried delivery off the request path.

Each event is queued; a few worker tasks POST it to every active subscriber with
``X-LeadLex-Signature: sha256=<HMAC-SHA256(secret, raw body)>``. A non-2xx answer, a timeout (10 s)
or a connection error schedules a retry after 5 s, 30 s, 5 min, 1 h, 6 h, scaled by the profile's
time scale (``fast``: one sixtieth). The body, and so the signature, is the same on every attempt;
``X-LeadLex-Delivery-ID`` is new per attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .timefmt import iso

EVENTS = frozenset({
    "contact.created", "contact.updated", "contact.deleted", "contact.bulk_created",
    "company.created", "company.updated", "company.deleted",
    "deal.created", "deal.updated", "deal.deleted", "deal.bulk_created", "deal.bulk_updated",
    "list.created", "list.deleted", "list.contacts_added", "list.contacts_removed",
    "campaign.created", "campaign.started", "campaign.paused", "campaign.deleted",
    "campaign.step_created", "campaign.contacts_added",
    "activity.created", "task.created", "task.updated", "task.approved", "task.dismissed",
})
RETRY_DELAYS = (5.0, 30.0, 300.0, 3600.0, 21600.0)
TIMEOUT_SECONDS = 10.0
WORKERS = 8
USER_AGENT = "LeadLex-Webhook/1.0"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Webhook:
    id: str
    url: str
    events: list[str]
    description: str
    active: bool
    secret: str
    created_at: str
    last_delivery_status: str | None = None
    last_delivery_at: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": list(self.events),
                "description": self.description, "active": self.active,
                "last_delivery_status": self.last_delivery_status,
                "last_delivery_at": self.last_delivery_at, "created_at": self.created_at}


@dataclass
class _Job:
    hook: Webhook
    event: str
    body: bytes
    attempt: int = 1


class Webhooks:
    def __init__(self, workspace_id: str, time_scale: Callable[[], float]) -> None:
        self.workspace_id = workspace_id
        self._time_scale = time_scale
        self._hooks: dict[str, Webhook] = {}
        self._lock = threading.Lock()
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._session: aiohttp.ClientSession | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    # -- registry (any thread) ------------------------------------------------------------------

    def register(self, url: str, events: list[str], description: str, active: bool) -> Webhook:
        hook = Webhook(str(uuid.uuid4()), url, events, description, active,
                       "whsec_" + secrets.token_hex(24), iso(time.time()))
        with self._lock:
            self._hooks[hook.id] = hook
        return hook

    def all(self) -> list[Webhook]:
        with self._lock:
            return list(self._hooks.values())

    def get(self, hook_id: str) -> Webhook | None:
        with self._lock:
            return self._hooks.get(hook_id)

    # -- delivery (server loop) -----------------------------------------------------------------

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        self._workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def emit(self, event: str, items: list[dict[str, Any]]) -> int:
        """Queue one event per item for every active subscriber; returns deliveries queued."""
        hooks = [h for h in self.all() if h.active and event in h.events]
        if not hooks or self._queue is None:
            return 0
        now = iso(time.time())
        queued = 0
        for item in items:
            body = json.dumps({"event": event, "timestamp": now, "workspace_id": self.workspace_id,
                               "data": item}, separators=(",", ":")).encode()
            for hook in hooks:
                self._enqueue(_Job(hook, event, body))
                queued += 1
        return queued

    async def drain(self, timeout: float) -> bool:
        assert self._idle is not None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def _enqueue(self, job: _Job) -> None:
        assert self._queue is not None and self._idle is not None
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(job)

    def _settle(self) -> None:
        assert self._idle is not None
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                ok = await self._attempt(job)
            except Exception:  # a bug in delivery must not kill the worker
                ok = False
            if ok or job.attempt > len(RETRY_DELAYS):
                self._settle()
                continue
            delay = RETRY_DELAYS[job.attempt - 1] * self._time_scale()
            job.attempt += 1
            self._requeue_later(delay, job)

    def _requeue_later(self, delay: float, job: _Job) -> None:
        # A function of its own, so each callback forgets its own timer: a closure over a loop
        # variable would discard whichever timer the worker loop scheduled last.
        timer: asyncio.TimerHandle

        def requeue() -> None:
            self._timers.discard(timer)
            assert self._queue is not None
            self._queue.put_nowait(job)

        timer = asyncio.get_running_loop().call_later(delay, requeue)
        self._timers.add(timer)

    async def _attempt(self, job: _Job) -> bool:
        assert self._session is not None
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-LeadLex-Signature": sign(job.hook.secret, job.body),
            "X-LeadLex-Timestamp": iso(time.time()),
            "X-LeadLex-Delivery-ID": delivery_id,
        }
        started = time.monotonic()
        status_code: int | None = None
        response_body = ""
        error: str | None = None
        try:
            async with self._session.post(job.hook.url, data=job.body, headers=headers) as resp:
                status_code = resp.status
                response_body = (await resp.text(errors="replace"))[:1000]
            if not 200 <= status_code < 300:
                error = "http_error"
        except asyncio.TimeoutError:
            error = "timeout"
        except aiohttp.ClientConnectorError:
            error = "connection_refused"
        except aiohttp.ClientError:
            error = "http_error"
        ok = error is None
        delivered_at = iso(time.time())
        job.hook.logs.append({
            "delivery_id": delivery_id, "event": job.event, "status": "success" if ok else "failed",
            "response_status_code": status_code, "response_body": response_body,
            "duration_ms": int((time.monotonic() - started) * 1000), "attempt": job.attempt,
            "error": error, "delivered_at": delivered_at,
        })
        job.hook.last_delivery_status = "success" if ok else "failed"
        job.hook.last_delivery_at = delivered_at
        return ok
