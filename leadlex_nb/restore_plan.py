"""Restore decisions, pure: which contacts of a run may be re-created, and proving what a create did.

Bulk create has no idempotency key, so a create whose answer was lost may or may not have run.
Before such contacts are sent again they are looked up: a contact proves the earlier create
when it matches the snapshot on every field the listing shows and was last updated after that
create went out. One match: restored. None: sent again. Several: ``unknown``, never a guess.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pandas as pd

from leadlex_nb.snapshot import LACKING, create_item

RESTORE_STATUSES: Final = ("restored", "would_restore", "already_restored", "refused", "error", "not_sent",
                           "unknown")
# How far the server's clock may lag ours when proving a create by its update time.
CLOCK_SKEW_SECONDS: Final = 300.0
# What the listing shows of a contact, compared with the snapshot (snapshot name -> listing name).
_LISTED: Final = {"full_name": "full_name", "email": "email", "phone": "phone", "job_title": "job_title",
                  "company": "company_name", "linkedin_url": "linkedin_url"}
RESULT_COLUMNS: Final = ("contact_id", "new_contact_id", "status", "error_code", "error_message", "request_id")


@dataclass(frozen=True)
class RowResult:
    status: str
    new_contact_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, for the confirmation."""

    run_id: str
    requested: int
    to_create: tuple[str, ...]          # old IDs to send
    to_check: tuple[str, ...]           # old IDs whose earlier create may have run: looked up first
    decided: Mapping[str, RowResult] = field(repr=False)   # refused and already restored
    sources: Mapping[str, int] = field(default_factory=dict)  # contacts to re-create per snapshot read

    @property
    def to_restore(self) -> int:
        return len(self.to_create) + len(self.to_check)

    @property
    def create_requests(self) -> int:
        return -(-self.to_restore // 500)

    def describe(self) -> str:
        counts = pd.Series([r.status for r in self.decided.values()], dtype=object).value_counts()
        lines = [f"Restore of run {self.run_id}: {self.requested:,} contact(s) asked for."]
        lines.append(f"Will re-create {self.to_restore:,} contact(s) from the snapshot in about "
                     f"{self.create_requests:,} request(s)"
                     + (f", after looking up {len(self.to_check):,} whose earlier create may have run"
                        if self.to_check else "") + ".")
        for status, n in counts.items():
            lines.append(f"{n:,} {status}.")
        for source, n in self.sources.items():
            if source in LACKING:
                lines.append(f"{n:,} of them were snapshotted by {source}: re-created {LACKING[source]}.")
        lines.append("Re-created contacts get new IDs; their notes, activities and tasks are not re-linked.")
        return "\n".join(lines)


def api_id(value: Any) -> str | None:
    """A contact ID the API returned, spelled as the journal and the snapshot spell IDs."""
    return value.strip().lower() or None if isinstance(value, str) else None


def plan_restore(run_id: str, requested: Sequence[str], valid: Sequence[bool], deleted: set[str],
                 snapshot: Mapping[str, Mapping[str, Any]],
                 journaled: Mapping[str, tuple[str, str | None, float | None]]) -> RestorePlan:
    """Per requested old ID (normalised by :func:`~leadlex_nb.ids.normalise_ids`, ``valid`` its verdict):
    refused, already restored, to check, or to create."""
    decided: dict[str, RowResult] = {}
    to_create: list[str] = []
    to_check: list[str] = []
    for cid, ok in zip(requested, valid, strict=True):
        if not ok:
            decided[cid] = RowResult("refused", None, "invalid_id", "not a contact UUID")
            continue
        if cid in decided or cid in to_create or cid in to_check:
            continue
        state, new_id, _sent = journaled.get(cid, (None, None, None))
        if state == "restored":
            decided[cid] = RowResult("already_restored", new_id, None, "restored earlier; not created again")
        elif cid not in deleted:
            decided[cid] = RowResult("refused", None, "not_deleted", f"run {run_id} did not delete this contact")
        elif cid not in snapshot:
            decided[cid] = RowResult("refused", None, "no_snapshot", "the snapshot has no copy of this contact")
        elif state == "sending":
            to_check.append(cid)
        else:
            to_create.append(cid)
    sources = Counter(str(snapshot[cid]["source"]) for cid in (*to_create, *to_check))
    return RestorePlan(run_id, len(requested), tuple(to_create), tuple(to_check), decided, dict(sources))


def create_body(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"contacts": [create_item(r) for r in records]}


def _same(a: Any, b: Any) -> bool:
    left = "" if a is None else str(a).strip()
    right = "" if b is None else str(b).strip()
    return left.casefold() == right.casefold()


def created_ids(payload: Any, records: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The new IDs in the order sent, when the answer lists one contact per record that matches it."""
    try:
        contacts = payload["data"]["contacts"]
    except (TypeError, KeyError):
        return None
    if not isinstance(contacts, list) or len(contacts) != len(records):
        return None
    new_ids: list[str] = []
    for contact, record in zip(contacts, records, strict=True):
        new_id = api_id(contact.get("id")) if isinstance(contact, dict) else None
        if new_id is None or not _same(contact.get("email"), record.get("email")):
            return None
        new_ids.append(new_id)
    return new_ids


def search_term(record: Mapping[str, Any]) -> str:
    return str(record.get("email") or record.get("full_name") or "")


def _match_key(email: Any, full_name: Any) -> str:
    return ("" if email is None else str(email).strip().casefold()) or \
        "name:" + ("" if full_name is None else str(full_name).strip().casefold())


def index_listing(listed: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Listed contacts by email (by name without one): each snapshot record meets only its candidates."""
    index: dict[str, list[Mapping[str, Any]]] = {}
    for item in listed:
        index.setdefault(_match_key(item.get("email"), item.get("full_name")), []).append(item)
    return index


def updated_at(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def prove_created(index: Mapping[str, Sequence[Mapping[str, Any]]], record: Mapping[str, Any], sent_at: float,
                  exclude: set[str]) -> tuple[str, str | None]:
    """("restored", new ID), ("absent", None) or ("ambiguous", None) for one record, from a listing's index."""
    matches = []
    for item in index.get(_match_key(record.get("email"), record.get("full_name")), ()):
        new_id = api_id(item.get("id"))
        if new_id is None or new_id in exclude:
            continue
        if not all(_same(item.get(listed_name), record.get(name)) for name, listed_name in _LISTED.items()):
            continue
        updated = updated_at(item.get("updated_date"))
        if updated is None or updated < sent_at - CLOCK_SKEW_SECONDS:
            continue
        matches.append(new_id)
    if len(matches) == 1:
        return "restored", matches[0]
    return ("absent", None) if not matches else ("ambiguous", None)


def result_frame(requested: Sequence[str], rows: Mapping[str, RowResult]) -> pd.DataFrame:
    """One row per requested ID (normalised), in the order asked."""
    records = []
    for cid in requested:
        row = rows.get(cid) or RowResult("not_sent", None, None, "not sent")
        records.append({"contact_id": cid, "new_contact_id": row.new_contact_id, "status": row.status,
                        "error_code": row.error_code, "error_message": row.error_message,
                        "request_id": row.request_id})
    frame = pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))
    frame["status"] = pd.Categorical(frame["status"], categories=list(RESTORE_STATUSES))
    return frame
