"""Reading the planned contacts for a snapshot, through the run's paced, retrying sender.

The plan's strategy goes first; contacts it did not find are read by the next strategies, and
a few stragglers (created or moved while an export paged) one by one. What no read found is
returned as missing: the runner does not delete those. A contact a complete export did not
hold, or whose own read answered 404, is proven absent (the runner reports it ``not_found``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from leadlex_nb.export_pages import EXPORT_PATH, ExportPages
from leadlex_nb.hooks import Progress
from leadlex_nb.sender import Failure, Sender, StopState, gather_bounded
from leadlex_nb.snapshot import (
    EXPORT,
    EXPORT_FIELDS,
    GET,
    LIST_PAGE,
    LISTING,
    Record,
    SnapshotPlan,
    record_from_contact,
    records_from_export,
    records_from_listing,
)
from leadlex_nb.transport import Answer

SNAPSHOT = "snapshot"
CONTACTS_PATH = "/v1/contacts"
# Contacts a whole-workspace read missed are read one by one up to this many.
STRAGGLERS = 100


class SnapshotReader:
    def __init__(self, sender: Sender, in_flight: Callable[[], int], stop: StopState,
                 progress: Progress, note: Callable[[str], None],
                 exported: list[dict[str, str]] | None = None) -> None:
        self._sender = sender
        self._exported = exported  # the dry run's complete export, when the plan reuses it
        self._in_flight = in_flight
        self._stop = stop
        self._bar = progress
        self._note = note
        self.absent: set[str] = set()  # proven not in the workspace when read

    async def take(self, plan: SnapshotPlan, ids: Sequence[str], workspace_total: int) -> dict[str, Record]:
        """The records found for ``ids``, by contact ID."""
        wanted = set(ids)
        found: dict[str, Record] = {}
        tried: list[str] = []
        for strategy in (plan.strategy, *plan.ranked, GET):
            missing = wanted - found.keys()
            if not missing or self._stop.stopping:
                break
            if strategy is None or strategy in tried:
                continue
            if strategy == GET and tried and len(missing) > STRAGGLERS:
                continue  # one request per contact is for small plans and stragglers
            tried.append(strategy)
            read = await self._read(strategy, missing, workspace_total)
            if read is None:
                self._note(f"snapshot: the read by {strategy} was refused")
                continue
            found.update(read)
            self._bar.update(len(read))
        self.absent -= found.keys()
        return found

    async def _read(self, strategy: str, wanted: set[str], workspace_total: int) -> dict[str, Record] | None:
        if strategy == EXPORT:
            return await self._export(wanted)
        if strategy == LISTING:
            return await self._listing(wanted, workspace_total)
        return await self._each(wanted)

    async def _get(self, path: str, params: dict[str, str | int] | None = None) -> Answer | None:
        """A read that gives up on 403, and on the export's own 429."""
        sent = await self._sender.request(SNAPSHOT, "GET", path, params=params, optional=True,
                                          own_limit=path == EXPORT_PATH)
        return None if isinstance(sent, Failure) else sent.answer

    async def _export(self, wanted: set[str]) -> dict[str, Record] | None:
        """The export, paged by creation date; what a complete one did not hold is proven absent."""
        if self._exported is not None:
            rows, self._exported = self._exported, None  # once: what it missed is read afresh
            self.absent |= wanted - {r["contact_id"] for r in records_from_export(rows, wanted)}
            return {r["contact_id"]: r for r in records_from_export(rows, wanted)}
        found: dict[str, Record] = {}
        pages = ExportPages(lambda params: self._get(EXPORT_PATH, params), EXPORT_FIELDS)
        async for rows in pages:
            found.update((r["contact_id"], r) for r in records_from_export(rows, wanted))
        if pages.note:
            self._note(f"snapshot: {pages.note}; the rest is read another way")
        if pages.complete:
            self.absent |= wanted - found.keys()
        return None if pages.refused and not found else found

    async def _listing(self, wanted: set[str], workspace_total: int) -> dict[str, Record] | None:
        pages = max(1, -(-workspace_total // LIST_PAGE))
        found: dict[str, Record] = {}
        refused: list[int] = []

        async def page(number: int) -> None:
            answer = await self._get(CONTACTS_PATH, {"page": number, "per_page": LIST_PAGE, "sort": "created_at"})
            records = None if answer is None else records_from_listing(answer.json(), wanted)
            if records is None:
                refused.append(number)
                return
            found.update((r["contact_id"], r) for r in records)

        await gather_bounded((page(n) for n in range(1, pages + 1)), self._in_flight, self._stop)
        return None if refused and not found else found

    async def _each(self, wanted: set[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}

        async def one(contact_id: str) -> None:
            sent = await self._sender.request(SNAPSHOT, "GET", f"{CONTACTS_PATH}/{contact_id}", optional=True)
            if isinstance(sent, Failure):
                if sent.error_code == "not_found":
                    self.absent.add(contact_id)
                return
            record = record_from_contact(sent.answer.json())
            if record is not None and record["contact_id"] == contact_id:
                found[contact_id] = record

        await gather_bounded((one(cid) for cid in sorted(wanted)), self._in_flight, self._stop)
        return found


def describe_missing(missing: int, planned: int) -> str:
    return (f"snapshot: {missing:,} of {planned:,} planned contacts could not be read, so they are not "
            "deleted (status not_sent, error_code snapshot_missing)")
