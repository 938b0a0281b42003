"""``Idempotency-Key`` bookkeeping, scoped per API key.

A key is reserved while its first request runs (a second request then gets 409); a 2xx answer is
stored for 24 hours and replayed byte for byte with its ``X-Request-ID``; any other outcome frees the
key. The fingerprint is method + path + canonical JSON of the parsed body, so key order and
whitespace do not matter but any value does.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class StoredAnswer:
    fingerprint: str
    created: float
    done: bool = False
    status: int = 0
    body: bytes = b""
    content_type: str = "application/json"
    request_id: str = ""


def fingerprint(method: str, path: str, raw: bytes, parsed: Any = None, parsed_ok: bool = False) -> str:
    if parsed_ok:
        material = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        material = raw
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + material).hexdigest()


class IdempotencyStore:
    """Only touched from the server's event loop, so no lock is needed."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str], StoredAnswer] = {}

    def lookup(self, label: str, key: str) -> StoredAnswer | None:
        entry = self._entries.get((label, key))
        if entry is not None and entry.done and self._clock() - entry.created > TTL_SECONDS:
            del self._entries[(label, key)]
            return None
        return entry

    def reserve(self, label: str, key: str, fp: str) -> None:
        self._entries[(label, key)] = StoredAnswer(fp, self._clock())

    def complete(self, label: str, key: str, *, status: int, body: bytes, content_type: str,
                 request_id: str) -> None:
        entry = self._entries[(label, key)]
        entry.done, entry.status, entry.body = True, status, body
        entry.content_type, entry.request_id, entry.created = content_type, request_id, self._clock()

    def release(self, label: str, key: str) -> None:
        entry = self._entries.get((label, key))
        if entry is not None and not entry.done:
            del self._entries[(label, key)]
