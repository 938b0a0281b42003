"""Reading the planned contacts for a snapshot, through the run's paced, retrying sender.

The plan's strategy goes first; contacts it did not find are read by the next strategies, and
a few stragglers (created or moved while an export paged) one by one. What no read found is
returned as missing: the runner does not delete those. A contact a complete export did not
hold, or whose own read answered 404, is proven absent (the runner reports it ``not_found``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from leadlex_nb.hooks import Progress
from leadlex_nb.sender import Failure, Sender, StopState, gather_bounded
from leadlex_nb.snapshot import (
    EXPORT,
    EXPORT_CALLS_PER_HOUR,
    EXPORT_FIELDS,
    EXPORT_PAGE,
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
EXPORT_PATH = "/v1/contacts/export"
# Contacts a whole-workspace read missed are read one by one up to this many.
STRAGGLERS = 100


class SnapshotReader:
    def __init__(self, sender: Sender, in_flight: Callable[[], int], stop: StopState,
                 progress: Progress, note: Callable[[str], None], exported: bytes | None = None) -> None:
        self._sender = sender
        self._exported = exported  # the dry run's complete export, when the plan reuses it
        self._in_flight = in_flight
        self._stop = stop
        self._bar = progress
        self._note = note
        self.requests = 0
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

    async def _get(self, path: str, params: dict[str, str | int] | None = None, *,
                   optional: bool = False) -> Answer | None:
        self.requests += 1
        sent = await self._sender.request(SNAPSHOT, "GET", path, params=params, optional=optional)
        return None if isinstance(sent, Failure) else sent.answer

    async def _export(self, wanted: set[str]) -> dict[str, Record] | None:
        """Export pages by creation date: each page starts at the last date of the one before."""
        if self._exported is not None:
            parsed = records_from_export(self._exported, wanted)
            self._exported = None  # once: what it missed is read afresh
            if parsed is not None:
                self.absent |= wanted - {r["contact_id"] for r in parsed[0]}  # it was complete
                return {r["contact_id"]: r for r in parsed[0]}
        found: dict[str, Record] = {}
        after: str | None = None
        for _page in range(EXPORT_CALLS_PER_HOUR):
            params: dict[str, str | int] = {"fields": ",".join(EXPORT_FIELDS), "limit": EXPORT_PAGE}
            if after is not None:
                params["created_after"] = after
            # optional: the export's own limit (10 an hour) must not stop the run, only this read.
            answer = await self._get(EXPORT_PATH, params, optional=True)
            parsed = None if answer is None else records_from_export(answer.body, wanted)
            if parsed is None:
                return found or None
            records, created = parsed
            found.update((r["contact_id"], r) for r in records)
            if len(created) < EXPORT_PAGE:  # the last page: the export is complete
                self.absent |= wanted - found.keys()
                break
            if found.keys() >= wanted:
                break
            if created != sorted(created) or not created[-1] or created[-1] == after:
                self._note("snapshot: the export is not in creation order, so it cannot be paged; "
                           "the rest is read another way")
                break
            after = created[-1]  # inclusive or not, the overlap is de-duplicated by ID
        return found

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
            self.requests += 1
            sent = await self._sender.request(SNAPSHOT, "GET", f"{CONTACTS_PATH}/{contact_id}")
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
