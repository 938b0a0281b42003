"""Test doubles: injected time (architecture principle 5), and a transport without sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from leadlex_nb.transport import Answer


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


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None
    params: Mapping[str, str | int] | None
    idempotency_key: str | None

    @property
    def payload(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def deletes(self) -> bool:
        return self.path.endswith("/bulk-delete") and self.payload["dry_run"] is False


def answer(status: int, payload: Any = None, *, body: bytes | None = None, **headers: str) -> Answer:
    """An :class:`Answer` as the transport would return it (header names lower-case)."""
    raw = body if body is not None else json.dumps(payload).encode()
    names = {"x-request-id": "req_fake", "x-ratelimit-limit": "10000", "x-ratelimit-remaining": "9000",
             "x-ratelimit-reset": "4102444800"}
    names.update({k.replace("_", "-").lower(): v for k, v in headers.items()})
    return Answer(status, names, raw)


class FakeApi:
    """A transport that plays LeadLex's bulk-delete over an in-memory workspace, no sockets.

    ``script(call)`` may return an Answer (or raise TransportFailure) to override the default,
    honest behaviour; returning None lets the workspace answer. ``hold_deletes`` makes deleting
    requests wait until it is set, after the server has executed them (like a slow answer).
    """

    def __init__(self, existing: Iterable[str], script: Callable[[Call], Answer | None] | None = None) -> None:
        self.existing = set(existing)
        self.deleted: set[str] = set()
        self.calls: list[Call] = []
        self.script = script
        self.hold_deletes: asyncio.Event | None = None
        self.executed = asyncio.Event()  # set once any deleting request was executed

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      params: Mapping[str, str | int] | None = None, idempotency_key: str | None = None) -> Answer:
        call = Call(method, path, body, params, idempotency_key)
        self.calls.append(call)
        await asyncio.sleep(0)
        scripted = self.script(call) if self.script else None
        if scripted is not None:
            return scripted
        if not path.endswith("/bulk-delete"):
            return answer(404, {"error": {"code": "not_found", "message": "no such path"}})
        ids = call.payload["contact_ids"]
        found = [cid for cid in ids if cid in self.existing]
        if call.deletes:
            self.existing.difference_update(found)
            self.deleted.update(found)
            self.executed.set()
            if self.hold_deletes is not None:
                await self.hold_deletes.wait()
        return answer(200, {"data": {"deleted_count": len(found), "not_found_count": len(ids) - len(found),
                                     "errors": []}})


SERVER_NOW = 1_708_869_600.0  # 2024-02-25T14:00:00Z, as the server's Date header says
RESET = 1_708_905_600.0  # 2024-02-26T00:00:00Z, the example X-RateLimit-Reset from the docs


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, timezone.utc), usegmt=True)


def quota_headers(remaining: int, *, reset: float = RESET, limit: int = 1000) -> dict[str, str]:
    """The daily-quota headers of one answer, with the server's Date."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
        "Date": http_date(SERVER_NOW),
    }
