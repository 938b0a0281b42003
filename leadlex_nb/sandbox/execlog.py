"""The execution log: one entry per request, in arrival order, for tests to check against."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any


class ExecutionLog:
    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def begin(self, method: str, path: str) -> dict[str, Any]:
        with self._lock:
            entry: dict[str, Any] = {
                "seq": len(self._entries) + 1,
                "at": time.time(),
                "method": method,
                "path": path,
                "key_label": None,
                "idempotency_key": None,
                "body_sha256": None,
                "dry_run": None,
                "contact_ids": None,
                "outcome": "rejected",
                "status": None,
                "request_id": None,
                "response": None,
                "deleted_ids": [],
                "fault": None,
            }
            self._entries.append(entry)
            return entry

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def snapshot(self, since: int = 0) -> list[dict[str, Any]]:
        """Entries with ``seq`` above ``since`` (all by default), as copies."""
        with self._lock:
            return copy.deepcopy(self._entries[since:])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
