"""Snapshots: what a run saves of the contacts it is about to delete, so they can be re-created.

Pure: choosing how to read them (and what that costs), turning what the API returns into
records, and the snapshot file. The reads themselves are :mod:`leadlex_nb.snapshot_reader`.

Three ways to read the planned contacts, each covering different fields:

- ``export``: ``GET /v1/contacts/export`` (CSV), 50,000 per call paged by creation date, 10 calls
  an hour; every field but custom fields, and tags as one comma-joined cell.
- ``list``: ``GET /v1/contacts``, 100 per page; no first/last name, priority, tags or custom fields.
- ``get``: ``GET /v1/contacts/{id}``, one request per contact; every field, custom fields too.

A snapshot holds one row per contact with the column ``source`` naming the read that filled
it; a field that read does not cover is empty and restore leaves it unset.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from leadlex_nb.export_pages import export_calls

EXPORT, LISTING, GET = "export", "list", "get"
STRATEGIES: Final = (EXPORT, LISTING, GET)
LIST_PAGE: Final = 100

TEXT_FIELDS: Final = ("first_name", "last_name", "full_name", "email", "phone", "job_title", "company",
                      "linkedin_url", "created_date", "updated_date")
COLUMNS: Final = ("contact_id", *TEXT_FIELDS, "priority", "tags", "custom_fields", "source")
FIELDS_BY_SOURCE: Final[Mapping[str, tuple[str, ...]]] = {
    GET: (*TEXT_FIELDS, "priority", "tags", "custom_fields"),
    EXPORT: (*TEXT_FIELDS, "priority", "tags"),
    LISTING: ("full_name", "email", "phone", "job_title", "company", "linkedin_url", "created_date",
              "updated_date"),
}
# Asked of the export; the documented default set lacks names, priority and updated_date.
EXPORT_FIELDS: Final = ("id", "first_name", "last_name", "full_name", "email", "phone", "job_title",
                        "company_name", "linkedin_url", "priority", "tags", "created_at", "updated_date")
EXPORT_DEFAULT_FIELDS: Final = ("id", "full_name", "email", "phone", "job_title", "company_name",
                                "linkedin_url", "tags", "created_at")
_API_NAMES: Final = {"company_name": "company", "created_at": "created_date", "id": "contact_id"}

Record = dict[str, Any]
# What a read leaves out, as the plan and the notes say it.
LACKING: Final[Mapping[str, str]] = {
    EXPORT: "without custom fields",
    LISTING: "without first/last name, priority, tags and custom fields",
}


@dataclass(frozen=True)
class SnapshotPlan:
    """How the planned contacts will be saved before deletion, and what that costs."""

    strategy: str | None           # None: no snapshot will be taken
    requests: int                  # estimated, the size probe excluded
    contacts: int
    reason: str = ""               # why there is none, when strategy is None
    ranked: tuple[str, ...] = ()   # fallbacks, cheapest first

    @property
    def promised(self) -> bool:
        return self.strategy is not None

    def describe(self) -> str:
        if self.strategy is None:
            return f"Snapshot: none ({self.reason}); deleted contacts cannot be restored by leadlex-nb."
        lacking = f", {LACKING[self.strategy]}" if self.strategy in LACKING else ""
        cost = (f"about {self.requests:,} request(s)" if self.requests
                else "no extra request: from the dry run's export")
        return (f"Snapshot before deleting: {self.contacts:,} contacts by {self.strategy} "
                f"({cost}{lacking}); restore re-creates them with new IDs.")


def strategy_costs(contacts: int, workspace_total: int | None) -> dict[str, int]:
    """Requests each way needs to read ``contacts`` planned contacts (the size probe excluded)."""
    costs = {GET: contacts}
    if workspace_total is not None:
        calls = export_calls(workspace_total)
        if calls is not None:
            costs[EXPORT] = calls
        costs[LISTING] = max(1, math.ceil(workspace_total / LIST_PAGE))
    return costs


def plan_snapshot(contacts: int, workspace_total: int | None, *, wanted: bool | str, readable: bool,
                  exported: bool = False) -> SnapshotPlan:
    """The cheapest read that covers the plan; on a tie the one with more fields (get, export, list).

    ``exported``: the dry run's export of the whole workspace is at hand, so an export costs nothing.
    """
    if wanted is False:
        return SnapshotPlan(None, 0, contacts, "switched off with snapshot=False")
    if contacts == 0:
        return SnapshotPlan(None, 0, 0, "nothing to delete")
    if not readable:
        return SnapshotPlan(None, 0, contacts, "this API key cannot read contacts (read:contacts)")
    costs = strategy_costs(contacts, workspace_total)
    if exported:
        costs[EXPORT] = 0
    ranked = sorted(costs, key=lambda s: (costs[s], STRATEGIES.index(s) if s != GET else -1))
    if isinstance(wanted, str):
        if wanted not in costs:
            return SnapshotPlan(None, 0, contacts, f"snapshot={wanted!r} cannot read this workspace")
        ranked = [wanted]
    return SnapshotPlan(ranked[0], costs[ranked[0]], contacts, ranked=tuple(ranked[1:]))


# -- records from API answers ---------------------------------------------------------------------

def _text(value: Any) -> str | None:
    """A text field; empty means unset (the export cannot tell an empty field from a missing one)."""
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def _priority(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _record(fields: Mapping[str, Any], source: str) -> Record:
    record: Record = {name: None for name in COLUMNS}
    for name, value in fields.items():
        name = _API_NAMES.get(name, name)
        if name in TEXT_FIELDS:
            record[name] = _text(value)
        elif name == "priority":
            record[name] = _priority(value)
        elif name == "tags":
            record[name] = [t for t in value.split(",") if t] if isinstance(value, str) else list(value or [])
        elif name == "custom_fields":
            record[name] = dict(value) if isinstance(value, Mapping) else None
    record["contact_id"] = str(fields.get("id", "")).strip().lower()
    record["source"] = source
    return record


def records_from_export(rows: Iterable[Mapping[str, str]], wanted: set[str]) -> list[Record]:
    """The wanted contacts among an export's rows (CSV cells by column)."""
    return [_record(row, EXPORT) for row in rows if (row.get("id") or "").strip().lower() in wanted]


def records_from_listing(payload: Any, wanted: set[str]) -> list[Record] | None:
    try:
        contacts = payload["data"]["contacts"]
        return [_record(c, LISTING) for c in contacts if str(c["id"]).strip().lower() in wanted]
    except (TypeError, KeyError, AttributeError):
        return None


def record_from_contact(payload: Any) -> Record | None:
    try:
        data = payload["data"]
        return _record(data, GET) if isinstance(data, Mapping) and data.get("id") else None
    except (TypeError, KeyError):
        return None


# -- the file ---------------------------------------------------------------------------------------

def snapshot_format() -> str:
    """Parquet when pyarrow is installed, else CSV."""
    import importlib.util

    return "parquet" if importlib.util.find_spec("pyarrow") is not None else "csv"


def snapshot_path(journal_path: Path, run_id: str, fmt: str) -> Path:
    """Beside the journal: ``snapshots/<run_id>.<fmt>``."""
    return journal_path.parent / "snapshots" / f"{run_id}.{fmt}"


def write_snapshot(path: Path, records: Iterable[Record], fmt: str) -> int:
    """Write the records (contacts' personal data: owner-only permissions); the row count."""
    frame = pd.DataFrame(list(records), columns=list(COLUMNS))
    for name in ("tags", "custom_fields"):
        frame[name] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in frame[name]]
    frame["priority"] = frame["priority"].astype("Int64")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        if fmt == "parquet":
            frame.to_parquet(handle, index=False)
        else:
            frame.to_csv(handle, index=False)
    os.replace(partial, path)  # a reader never sees half a snapshot
    return len(frame)


def read_snapshot(path: Path) -> pd.DataFrame:
    """The snapshot's records, indexed by contact ID, with empty fields as None."""
    parquet = path.suffix == ".parquet"
    frame = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame.astype(object).where(frame.notna(), None)  # plain Python values, JSON-ready
    frame = frame.replace({"": None})
    frame["priority"] = pd.Series([_priority(v) for v in frame["priority"]], index=frame.index, dtype=object)
    for name in ("tags", "custom_fields"):
        frame[name] = [None if v is None else json.loads(v) for v in frame[name]]
    frame.index = pd.Index(frame["contact_id"].tolist(), name=None)  # unnamed: "contact_id" stays a plain column
    return frame


def create_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/contacts/bulk`` item that re-creates a snapshotted contact.

    Only the fields its read covered, and never ``updated_date`` (the server sets it);
    ``created_date`` is sent, and kept by the server within its documented bounds.
    """
    covered = FIELDS_BY_SOURCE.get(str(record.get("source")), ())
    item: dict[str, Any] = {}
    for name in covered:
        value = record.get(name)
        if name == "updated_date" or value is None:
            continue
        item[name] = value
    item.setdefault("full_name", record.get("email") or "")
    return item


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
