"""Restore: re-create a run's deleted contacts from its snapshot with ``POST /v1/contacts/bulk``.

The flow of a deletion: a plan (local: what the journal and the snapshot allow), a confirmation,
then paced requests with progress. Each create is journaled as sending before it leaves and as
restored once its answer names the new IDs, so restoring twice never creates twice. A create
whose answer was lost is never simply resent (bulk create has no idempotency key): its contacts
are looked up first (:func:`leadlex_nb.restore_plan.prove_created`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pandas as pd

from leadlex_nb.config import Settings, hide_api_key, hide_key_option, resolve_settings
from leadlex_nb.errors import ConfigurationError, ConfirmationDeclined, RestoreError, RunInterrupted
from leadlex_nb.governors import shared_governor
from leadlex_nb.hooks import Hooks
from leadlex_nb.ids import normalise_ids
from leadlex_nb.journal import Journal, JournaledRun
from leadlex_nb.pacing import MAX_IN_FLIGHT
from leadlex_nb.plan import DELETE
from leadlex_nb.restore_plan import (
    CLOCK_SKEW_SECONDS,
    RestorePlan,
    RowResult,
    create_body,
    created_ids,
    index_listing,
    plan_restore,
    prove_created,
    result_frame,
    search_term,
    updated_at,
)
from leadlex_nb.sender import Failure, Sender, Stats, StopState, gather_bounded
from leadlex_nb.snapshot import Record, chunks, read_snapshot
from leadlex_nb.syncrun import run_sync
from leadlex_nb.transport import HttpTransport
from leadlex_nb.workspace import parse_total

RESTORE = "restore"
BULK_CREATE_PATH = "/v1/contacts/bulk"
CONTACTS_PATH = "/v1/contacts"
CREATE_BATCH = 500
# Rounds of look-up-then-resend for contacts whose create went unanswered.
RESEND_ROUNDS = 3
# Pages of the most recently updated contacts read to find out what unanswered creates did.
SCAN_PAGES = 50


class _Restorer:
    """One restore: its journal, snapshot and sender, and the row results it has settled."""

    def __init__(self, run_id: str, journal: Journal, snapshot: Mapping[str, Record], sender: Sender,
                 hooks: Hooks, in_flight: int, journaled: Mapping[str, tuple[str, str | None, float | None]]) -> None:
        self.run_id = run_id
        self.journal = journal
        self.snapshot = snapshot
        # When a create holding each contact first went out (kept as the journal keeps it: the first time).
        self.sent_at = {cid: sent for cid, (_state, _new, sent) in journaled.items() if sent is not None}
        self.sender = sender
        self.hooks = hooks
        self.in_flight = in_flight
        self.rows: dict[str, RowResult] = {}
        self.claimed: set[str] = set()  # new IDs proven ours: never claimed for a second contact

    def _settle(self, restored: Mapping[str, str], request_id: str | None) -> None:
        self.journal.restore_settled(self.run_id, restored, request_id=request_id)
        self.claimed.update(restored.values())
        for old, new in restored.items():
            self.rows[old] = RowResult("restored", new, None, None, request_id)

    async def run(self, plan: RestorePlan) -> None:
        bar = self.hooks.progress(plan.to_restore, "restore")
        try:
            resend = await self._check(list(plan.to_check), {c: self.sent_at.get(c, 0.0) for c in plan.to_check})
            bar.update(len(plan.to_check) - len(resend))
            pending = list(plan.to_create) + resend
            for _round in range(RESEND_ROUNDS):
                if not pending:
                    break
                unanswered: list[str] = []
                await gather_bounded((self._create(list(b), unanswered, bar) for b in chunks(pending, CREATE_BATCH)),
                                     self.in_flight, self.sender.stop)
                pending = await self._check(unanswered, {c: self.sent_at[c] for c in unanswered})
            for cid in pending:
                self.rows.setdefault(cid, RowResult("unknown", None, "unanswered",
                                                    "created perhaps: its answer was lost and a look-up did not settle "
                                                    "it; restore again to look it up"))
        finally:
            bar.close()

    async def _create(self, ids: list[str], unanswered: list[str], bar: Any) -> None:
        records = [self.snapshot[cid] for cid in ids]
        self.journal.restore_sending(self.run_id, ids)
        now = time.time()
        for cid in ids:
            self.sent_at.setdefault(cid, now)
        body = json.dumps(create_body(records), ensure_ascii=False, allow_nan=False).encode("utf-8")
        sent = await self.sender.request(RESTORE, "POST", BULK_CREATE_PATH, body=body, repeatable=False)
        if isinstance(sent, Failure):
            if sent.status == "unknown":
                unanswered.extend(ids)
                return
            self.journal.restore_settled(self.run_id, {}, unsent=ids)
            if sent.error_code == "validation_error" and len(ids) > 1:
                # One contact the API refuses fails its whole batch: halve until it stands alone.
                half = len(ids) // 2
                await self._create(ids[:half], unanswered, bar)
                await self._create(ids[half:], unanswered, bar)
                return
            # The API refused these contacts (error), or they were never created for another reason.
            status = "error" if sent.error_code == "validation_error" else "not_sent"
            for cid in ids:
                self.rows[cid] = RowResult(status, None, sent.error_code, sent.error_message, sent.request_id)
            bar.update(len(ids))
            return
        new_ids = created_ids(sent.answer.json(), records)
        if new_ids is None:
            unanswered.extend(ids)  # created, perhaps: the answer does not say which is which
            return
        self._settle(dict(zip(ids, new_ids, strict=True)), sent.answer.request_id)
        bar.update(len(ids))

    async def _check(self, ids: list[str], sent_at: Mapping[str, float]) -> list[str]:
        """Look up contacts whose create may have run; those proven absent are returned to resend.

        One scan of the most recently updated contacts covers them all; when it cannot be trusted to be
        complete (too many updates, or contacts deleted meanwhile), each one not found is searched for.
        """
        if not ids:
            return []
        listed, complete = await self._recently_updated(min(sent_at[c] for c in ids) - CLOCK_SKEW_SECONDS)
        index = index_listing(listed)
        absent: list[str] = []
        unsure: list[str] = []
        for cid in ids:
            if self._judge(cid, index, sent_at[cid]) == "absent":
                (absent if complete else unsure).append(cid)

        async def search(cid: str) -> None:
            record = self.snapshot[cid]
            answer = await self.sender.request(RESTORE, "GET", CONTACTS_PATH, params={
                "search": search_term(record), "per_page": 100, "sort": "-updated_date"})
            found = None if isinstance(answer, Failure) else _contacts(answer.answer.json())
            if found is None:
                self.rows[cid] = RowResult("unknown", None, "lookup_failed",
                                           "created perhaps, and the look-up failed; restore again to look it up")
            elif self._judge(cid, index_listing(found), sent_at[cid]) == "absent":
                absent.append(cid)

        await gather_bounded((search(cid) for cid in unsure), self.in_flight, self.sender.stop)
        self.journal.restore_settled(self.run_id, {}, unsent=absent)
        return absent

    def _judge(self, cid: str, index: Mapping[str, Sequence[Mapping[str, Any]]], sent_at: float) -> str:
        verdict, new_id = prove_created(index, self.snapshot[cid], sent_at, self.claimed)
        if verdict == "restored" and new_id is not None:
            self._settle({cid: new_id}, None)
        elif verdict == "ambiguous":
            self.rows[cid] = RowResult("unknown", None, "ambiguous",
                                       "created perhaps: several contacts match its snapshot; check by hand")
        return verdict

    async def _recently_updated(self, since: float) -> tuple[list[dict[str, Any]], bool]:
        """The contacts updated since ``since``, newest first, and whether the scan is surely complete."""
        listed: list[dict[str, Any]] = []
        total: int | None = None
        for page in range(1, SCAN_PAGES + 1):
            answer = await self.sender.request(RESTORE, "GET", CONTACTS_PATH, params={
                "sort": "-updated_date", "per_page": 100, "page": page})
            payload = None if isinstance(answer, Failure) else answer.answer.json()
            contacts = _contacts(payload)
            page_total = parse_total(payload)
            if contacts is None or page_total is None or (total is not None and page_total < total):
                return listed, False  # a page missing, or contacts deleted meanwhile: offsets moved up
            total = page_total
            listed.extend(contacts)
            oldest = updated_at(contacts[-1].get("updated_date")) if contacts else None
            if len(contacts) < 100 or oldest is None or oldest < since:
                return listed, oldest is not None or len(contacts) < 100
        return listed, False


def _contacts(payload: Any) -> list[dict[str, Any]] | None:
    try:
        contacts = payload["data"]["contacts"]
    except (TypeError, KeyError):
        return None
    return [c for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else None


def _requested(ids: Any, deleted: set[str], snapshot: Mapping[str, Record]) -> list[str]:
    if ids is None:
        return [cid for cid in snapshot if cid in deleted] + sorted(deleted.difference(snapshot))
    if isinstance(ids, pd.DataFrame):
        if "contact_id" not in ids.columns:
            raise ConfigurationError("ids: pass the IDs (a list or a Series), or a DataFrame with a contact_id column")
        ids = ids["contact_id"]
    if isinstance(ids, str):
        return [ids]
    return [v if isinstance(v, str) else repr(v) for v in ids]


def _load(journal: Journal, run_id: str, settings: Settings) -> tuple[JournaledRun, dict[str, Record], set[str]]:
    """The run, its snapshot's records by contact ID, and the contacts it deleted."""
    record = journal.load_run(run_id)
    if record is None:
        raise RestoreError(f"no run {run_id!r} in the journal {journal.path}")
    if record.key_fingerprint != settings.api_key.fingerprint:
        raise RestoreError(f"run {run_id} was made with a different API key; restore it with the same key")
    snapshot = journal.load_snapshot(run_id)
    if snapshot is None:
        raise RestoreError(f"run {run_id} took no snapshot (snapshot=False, a dry run, or nothing deleted), "
                           "so there is nothing to restore from")
    if not snapshot.path.exists():
        raise RestoreError(f"the snapshot of run {run_id} is missing: {snapshot.path}")
    deleted = {cid for cid, o in journal.load_outcomes(run_id, DELETE).items() if o.status in ("deleted", "gone")}
    rows = cast("list[Record]", read_snapshot(snapshot.path).to_dict("records"))  # its columns are strings
    records = {str(r["contact_id"]): r for r in rows}
    return record, records, deleted


@contextlib.asynccontextmanager
async def _sender(settings: Settings, stop: StopState, stats: Stats) -> AsyncIterator[Sender]:
    with shared_governor(settings.base_url, settings.api_key.fingerprint, settings.rate_limit,
                         settings.rate_window) as governor:
        async with HttpTransport(settings.base_url, settings.api_key, timeout=settings.timeout,
                                 max_connections=settings.concurrency or MAX_IN_FLIGHT) as transport:
            yield Sender(transport, governor, settings.retry, stop, stats=stats)


async def arestore(
    run_id: str,
    ids: Any = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    journal: str | os.PathLike[str] | bool | None = None,
    dry_run: bool = False,
    confirm: Any = ...,
    progress: bool = True,
    verbose: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Re-create the contacts run ``run_id`` deleted (or those of ``ids``) from its snapshot.

    Returns one row per contact asked for: ``contact_id`` (the deleted ID), ``new_contact_id``,
    ``status`` (``restored``, ``would_restore`` on a dry run, ``already_restored``, ``refused``,
    ``error``, ``not_sent``, ``unknown``), ``error_code``, ``error_message``, ``request_id``.
    Re-created contacts get new IDs; their notes, activities and tasks are not re-linked.
    """
    from leadlex_nb.api import _hooks, _open_journal, restore_confirm_hook

    api_key = hide_api_key(api_key)
    if journal is False:
        raise ConfigurationError("restore needs the journal that recorded the run's snapshot")
    settings = resolve_settings(api_key=api_key, base_url=base_url, journal=journal, **options)
    hooks = _hooks(None, progress, verbose)
    with _open_journal(settings) as opened:
        record, snapshot, deleted = _load(opened, run_id, settings)
        settings = resolve_settings(api_key=settings.api_key, base_url=base_url or record.base_url,
                                    journal=settings.journal_path, **options)
        # The spellings a deletion accepts (upper case, braces, urn:uuid:), normalised the same way.
        asked = normalise_ids(pd.Series(_requested(ids, deleted, snapshot), dtype=object))
        requested = [str(v) for v in asked["contact_id"]]
        journaled = opened.load_restores(run_id)
        plan = plan_restore(run_id, requested, asked["valid"].tolist(), deleted, snapshot, journaled)
        rows = dict(plan.decided)
        if dry_run or not plan.to_restore:
            rows.update((cid, RowResult("would_restore" if dry_run else "not_sent")) for cid in
                        (*plan.to_create, *plan.to_check))
            return _finish(requested, rows, run_id, Stats())
        ask = restore_confirm_hook(confirm)
        if ask is not None:
            decision = ask(plan)
            if not isinstance(decision, bool):
                decision = await decision
            if decision is not True:
                raise ConfirmationDeclined("the restore was not confirmed; nothing was created",
                                           result=_finish(requested, rows, run_id, Stats()), run_id=run_id)
        stats, stop = Stats(), StopState(hooks.announce)
        restorer: _Restorer | None = None
        try:
            async with _sender(settings, stop, stats) as sender:
                restorer = _Restorer(run_id, opened, snapshot, sender, hooks, settings.concurrency or 8, journaled)
                await restorer.run(plan)
        except asyncio.CancelledError:
            partial = {**rows, **(restorer.rows if restorer else {})}
            in_flight = RowResult("unknown", "interrupted", "sent, and the restore was interrupted before its answer: "
                                  "created perhaps; restore again to look it up")
            for cid in restorer.sent_at if restorer else ():
                partial.setdefault(cid, in_flight)  # a create that went out may have run: never "not_sent"
            raise RunInterrupted(f"restore of run {run_id} interrupted; restore again to finish it (contacts "
                                 "already created are looked up, never created twice)",
                                 result=_finish(requested, partial, run_id, stats), run_id=run_id) from None
        rows.update(restorer.rows)
        if stop.error is not None:
            stop.error.result = _finish(requested, rows, run_id, stats)
            raise stop.error
        return _finish(requested, rows, run_id, stats)


def _finish(requested: Sequence[str], rows: Mapping[str, RowResult], run_id: str, stats: Stats) -> pd.DataFrame:
    frame = result_frame(requested, rows)
    frame.attrs["leadlex"] = {"run_id": run_id, "requests": dict(stats.requests)}
    return frame


def restore(run_id: str, ids: Any = None, **options: Any) -> pd.DataFrame:
    """Synchronous :func:`arestore`."""
    options = hide_key_option(options)
    return run_sync(lambda: arestore(run_id, ids, **options))


def snapshot_of(run_id: str, journal: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The snapshot a run took before deleting (one row per contact), indexed by contact ID."""
    from leadlex_nb.config import default_journal_path

    with Journal(Path(journal) if journal is not None else default_journal_path()) as opened:
        record = opened.load_snapshot(run_id)
    if record is None:
        raise RestoreError(f"run {run_id} has no snapshot in this journal (snapshot=False, a dry run, or no such run)")
    if not record.path.exists():
        raise RestoreError(f"the snapshot of run {run_id} is missing: {record.path}")
    return read_snapshot(record.path)
