"""Reading the workspace for attribution: its size, its IDs by export or by listing.

:class:`WorkspaceReader` is the I/O side of :func:`leadlex_nb.attribution.attribute` (its
``Source``); the parsing is pure and takes what the API documents, refusing anything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from leadlex_nb.attribution import EXPORT, LIST_PAGE_SIZE, LISTING
from leadlex_nb.export_pages import EXPORT_PATH, ExportPages
from leadlex_nb.sender import Failure, Reply, Sender
from leadlex_nb.snapshot import EXPORT_FIELDS
from leadlex_nb.verdicts import BulkAnswer

LIST_PATH = "/v1/contacts"
ATTRIBUTION = "attribution"

# Dry-runs a sub-batch of a batch (its index, its IDs) under a fresh key.
Probe = Callable[[int, Sequence[str]], Awaitable[Reply | Failure]]


def parse_total(payload: Any) -> int | None:
    """``meta.total`` of a contact listing, when it is a count."""
    try:
        total = payload["meta"]["total"]
    except (TypeError, KeyError):
        return None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


def parse_listing_ids(payload: Any) -> set[str] | None:
    """The IDs on one page of ``GET /v1/contacts``; None when the page has another shape."""
    try:
        return {str(contact["id"]).strip().lower() for contact in payload["data"]["contacts"]}
    except (TypeError, KeyError):
        return None


class WorkspaceReader:
    """Attribution's reads, sent through the run's paced, retrying sender."""

    def __init__(self, sender: Sender, probe: Probe, *, phase: str = ATTRIBUTION) -> None:
        self._sender = sender
        self._phase = phase  # what its requests count as in the run's report
        self._probe = probe
        # What the size probe learned, kept for the snapshot: the total, or why it was refused.
        self.total: int | None = None
        self.refusal: str | None = None
        # With keep_export (the run's IDs), attribution's export asks for the snapshot's fields and keeps
        # those IDs' rows, so a snapshot soon after needs no export call of its own (10 an hour).
        self.keep_export: set[str] | None = None
        self.export: tuple[list[dict[str, str]], float] | None = None  # (rows, when read) of a complete export

    async def dry_run(self, batch: int, ids: Sequence[str]) -> tuple[BulkAnswer, int, str | None] | None:
        reply = await self._probe(batch, ids)
        if isinstance(reply, Failure):
            return None
        return reply.answer, reply.attempts, reply.request_id

    async def _get(self, path: str, params: dict[str, str | int]) -> Any:
        """The 2xx answer of an optional read, or None (refused reads are fallen back from)."""
        sent = await self._sender.request(self._phase, "GET", path, params=params, optional=True,
                                          own_limit=path == EXPORT_PATH)
        return None if isinstance(sent, Failure) else sent.answer

    async def workspace_total(self) -> int | None:
        if self.total is not None or self.refusal is not None:
            return self.total
        sent = await self._sender.request(self._phase, "GET", LIST_PATH, params={"page": 1, "per_page": 1},
                                          optional=True)
        if isinstance(sent, Failure):
            self.refusal = f"{sent.error_code}: {sent.error_message}" if sent.error_code else "refused"
            return None
        self.total = parse_total(sent.answer.json())
        if self.total is None:
            self.refusal = "the contact listing did not report a total"
        return self.total

    async def read_ids(self, strategy: str, workspace_total: int) -> tuple[set[str], str | None] | None:
        if strategy == EXPORT:
            return await self._read_export()
        if strategy == LISTING:
            return await self._read_listing(workspace_total)
        return None

    async def _read_export(self) -> tuple[set[str], str | None] | None:
        keep = self.keep_export
        pages = ExportPages(lambda params: self._get(EXPORT_PATH, params), EXPORT_FIELDS if keep else ())
        found: set[str] = set()
        kept: list[dict[str, str]] = []
        async for rows in pages:
            for row in rows:
                contact_id = (row.get("id") or "").strip().lower()
                found.add(contact_id)
                if keep is not None and contact_id in keep:
                    kept.append(row)
        if pages.refused and not found:
            return None
        # A partial read is still sound: a batch is settled only where its count agrees.
        if keep is not None and pages.complete:
            self.export = (kept, time.monotonic())
        found.discard("")
        return found, pages.request_id

    async def _read_listing(self, workspace_total: int) -> tuple[set[str], str | None] | None:
        pages = max(1, -(-workspace_total // LIST_PAGE_SIZE))

        async def page(number: int) -> tuple[set[str], str | None] | None:
            answer = await self._get(LIST_PATH, {"page": number, "per_page": LIST_PAGE_SIZE, "sort": "created_at"})
            ids = None if answer is None else parse_listing_ids(answer.json())
            return None if ids is None else (ids, answer.request_id)

        results = await asyncio.gather(*(page(n) for n in range(1, pages + 1)))
        found: set[str] = set()
        for result in results:
            if result is None:
                return None
            found |= result[0]
        first = results[0]
        return found, first[1] if first is not None else None
