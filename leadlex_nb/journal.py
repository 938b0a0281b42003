"""The run journal: a SQLite file that makes every run resumable.

Written before each request is sent (the batch's IDs, key and a digest of its exact body) and
after each answer, so an interrupt, a crash or a stopped kernel loses nothing: ``resume(run_id)``
resends unfinished batches with the same idempotency key and byte-identical body.
The API key is never stored, only its fingerprint. A journal holds data, never code: the
input's index is typed JSON, or only positions when it cannot be stored faithfully.

Compact (schema 3, :mod:`leadlex_nb.journal_codec`): the input is a few blobs (16 bytes per valid
ID), a batch names its IDs by their rank among the input's unique IDs (delta-coded, compressed) and its body
is rebuilt from them and checked against the stored SHA-256; outcomes are stored one row per
distinct outcome with the ranks of its IDs, read back in the order written (the last one wins).

Location: ``journal=`` argument, else ``$LEADLEX_JOURNAL``, else
``$XDG_DATA_HOME/leadlex-nb/journal.sqlite3`` (``~/.local/share/leadlex-nb/``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from leadlex_nb.errors import JournalError
from leadlex_nb.journal_codec import (
    BAD_CONTENT,
    StoredInputs,
    UniqueIds,
    decode_index,
    encode_index,
    grouped,
    outcome_from_json,
    outcome_json,
    pack_inputs,
    unpack_inputs,
)
from leadlex_nb.plan import DELETE, Batch, Phase, request_body
from leadlex_nb.results import Outcome

SCHEMA_VERSION: Final = 3  # PRAGMA user_version; a journal with tables and version 0 is schema 1

_TABLES: Final = (  # input_index: typed JSON (_encode_index), NULL when only positions were storable
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
    "state TEXT NOT NULL, base_url TEXT NOT NULL, key_fingerprint TEXT NOT NULL, dry_run INTEGER NOT NULL, "
    "plan_fingerprint TEXT, meta TEXT NOT NULL, input_index TEXT)",
    # journal_codec.StoredInputs: flags as bits, valid IDs as 16 bytes each, invalid rows as JSON
    "CREATE TABLE inputs (run_id TEXT PRIMARY KEY, rows INTEGER NOT NULL, valid BLOB NOT NULL, "
    "duplicate BLOB NOT NULL, uuids BLOB NOT NULL, invalid TEXT NOT NULL)",
    # state: planned | sending | answered | failed; ranks: journal_codec.ranks_of
    "CREATE TABLE batches (run_id TEXT NOT NULL, phase TEXT NOT NULL, batch_index INTEGER NOT NULL, "
    "grp TEXT NOT NULL, idempotency_key TEXT NOT NULL, ranks BLOB NOT NULL, body_sha256 BLOB NOT NULL, "
    "state TEXT NOT NULL, first_sent_at REAL, http_status INTEGER, request_id TEXT, answer TEXT, "
    "PRIMARY KEY (run_id, phase, batch_index))",
    # One row per distinct outcome of one write; read back in rowid order, so the last write wins.
    "CREATE TABLE outcomes (run_id TEXT NOT NULL, phase TEXT NOT NULL, outcome TEXT NOT NULL, ranks BLOB NOT NULL)",
    "CREATE INDEX outcomes_by_run ON outcomes (run_id, phase)",
)
# Added to schema 3 journals as they are opened; a reader that does not know them ignores them.
_SNAPSHOT_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS snapshots (run_id TEXT PRIMARY KEY, path TEXT NOT NULL, strategy TEXT NOT NULL, "
    "contacts INTEGER NOT NULL, missing INTEGER NOT NULL, requests INTEGER NOT NULL, taken_at REAL NOT NULL)",
    # state: sending (a create request that holds it went out) | restored (new_contact_id proven)
    "CREATE TABLE IF NOT EXISTS restores (run_id TEXT NOT NULL, contact_id TEXT NOT NULL, state TEXT NOT NULL, "
    "new_contact_id TEXT, first_sent_at REAL, request_id TEXT, PRIMARY KEY (run_id, contact_id))",
)


@dataclass(frozen=True)
class SnapshotRecord:
    """Where a run's snapshot is, how it was read, and how much of the plan it covers."""

    path: Path
    strategy: str
    contacts: int
    missing: int
    requests: int
    taken_at: float


@dataclass(frozen=True)
class JournaledBatch:
    batch: Batch
    state: str
    first_sent_at: float | None


@dataclass(frozen=True)
class JournaledRun:
    """A run's header: enough to check the key before any input is read (:meth:`Journal.load_inputs`)."""

    run_id: str
    created_at: float
    state: str
    base_url: str
    key_fingerprint: str
    dry_run: bool
    plan_fingerprint: str | None
    meta: dict[str, Any]
    index_restored: bool  # False: the input's index was not storable; load_inputs gives a RangeIndex


class Journal:
    def __init__(self, path: Path | str, *, busy_timeout: float = 5.0) -> None:
        """Open or create the journal; a write waits up to ``busy_timeout`` seconds for a lock."""
        self.path = Path(path)
        self._unique: dict[str, UniqueIds] = {}  # per run: its unique IDs, whose ranks batches store
        with self._guard("be opened", (OSError,)):
            if str(path) != ":memory:":
                _create_private(self.path)
            # One connection, used from the run's event-loop thread only.
            self._db = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False, isolation_level=None)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._ensure_schema()
            except BaseException:
                self._db.close()
                raise

    def _ensure_schema(self) -> None:
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._create_schema()
        if self._db.execute("SELECT count(*) FROM sqlite_master WHERE name='restores'").fetchone()[0] == 0:
            with self._transaction("be set up for snapshots"):
                for table in _SNAPSHOT_TABLES:
                    self._db.execute(table)

    def _create_schema(self) -> None:
        with self._transaction("be set up"):  # checked again under the lock: another process may create it
            found = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if found == 0 and not self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                for table in _TABLES:
                    self._db.execute(table)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                return
        if found != SCHEMA_VERSION:
            raise JournalError(
                f"the run journal {self.path} has schema {found or 1}, but this leadlex-nb reads schema "
                f"{SCHEMA_VERSION} only, so its runs cannot be resumed; move it aside or choose another journal path"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, doing: str, content: tuple[type[Exception], ...] = ()) -> Iterator[None]:
        # sqlite3 messages never quote bound values, so no request body can reach the message.
        errors: tuple[type[Exception], ...] = (sqlite3.Error, *content)
        try:
            yield
        except errors as error:
            raise JournalError(f"the run journal {self.path} could not {doing}: {error}") from error

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._guard(doing, BAD_CONTENT):  # a batch ID outside the run's input is refused too
            self._db.execute("BEGIN IMMEDIATE")  # the write lock up front (waiting busy_timeout), never midway
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.rollback()
                raise

    # -- writing -------------------------------------------------------------------------

    def start_run(self, run_id: str, *, base_url: str, key_fingerprint: str, dry_run: bool,
                  meta: Mapping[str, Any], ids: pd.DataFrame) -> None:
        now, index, stored = time.time(), encode_index(ids.index), pack_inputs(ids)
        with self._transaction(f"record the start of run {run_id}") as db:
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)", (run_id, now, now, "dry_run", base_url,
                       key_fingerprint, int(dry_run), None, json.dumps(dict(meta)), index))
            db.execute("INSERT INTO inputs VALUES (?,?,?,?,?,?)", (run_id, stored.rows, stored.valid_bits,
                       stored.duplicate_bits, stored.uuids, stored.invalid))
        self._unique[run_id] = UniqueIds(ids)

    def set_state(self, run_id: str, state: str, *, plan_fingerprint: str | None = None) -> None:
        with self._guard(f"record run {run_id} as {state}"):
            self._db.execute(
                "UPDATE runs SET state=?, updated_at=?, plan_fingerprint=COALESCE(?, plan_fingerprint) WHERE run_id=?",
                (state, time.time(), plan_fingerprint, run_id))

    def plan_batches(self, run_id: str, batches: Iterable[Batch]) -> None:
        """Record planned batches. A batch planned again under its key keeps its row (a resume re-plans
        the same batches); under a new key, its key, IDs and body are replaced and its state reset."""
        batches = list(batches)
        with self._transaction("record the planned batches") as db:
            unique = self._unique_ids(run_id)
            # Consecutive batches usually cover consecutive unique IDs: each one's hint is where the last ended.
            starts = [0 if not batches else batches[0].index * len(batches[0].ids)]
            for b in batches:
                starts.append(starts[-1] + len(b.ids))
            db.executemany(
                "INSERT INTO batches (run_id, phase, batch_index, grp, idempotency_key, ranks, body_sha256, state) "
                "VALUES (?,?,?,?,?,?,?,'planned') ON CONFLICT (run_id, phase, batch_index) DO UPDATE SET "
                "grp=excluded.grp, idempotency_key=excluded.idempotency_key, ranks=excluded.ranks, "
                "body_sha256=excluded.body_sha256, state='planned', first_sent_at=NULL, http_status=NULL, "
                "request_id=NULL, answer=NULL WHERE idempotency_key != excluded.idempotency_key",
                [(run_id, b.phase, b.index, b.group, b.idempotency_key, unique.ranks_of(b.ids, start_hint=start),
                  hashlib.sha256(b.body).digest()) for b, start in zip(batches, starts, strict=False)])

    def forget_phase(self, run_id: str, phase: Phase) -> None:
        """Delete a phase's batches and outcomes: a declined run's dry run is done again under new keys."""
        with self._transaction(f"forget the {phase} phase of run {run_id}") as db:
            db.execute("DELETE FROM batches WHERE run_id=? AND phase=?", (run_id, phase))
            db.execute("DELETE FROM outcomes WHERE run_id=? AND phase=?", (run_id, phase))

    def sending(self, run_id: str, batch: Batch) -> None:
        with self._guard(f"record {batch.phase} batch {batch.index} being sent"):
            self._db.execute(
                "UPDATE batches SET state='sending', first_sent_at=COALESCE(first_sent_at, ?) "
                "WHERE run_id=? AND phase=? AND batch_index=?", (time.time(), run_id, batch.phase, batch.index))

    def answered(self, run_id: str, batch: Batch, *, state: str, http_status: int | None, request_id: str | None,
                 answer: Any, outcomes: Mapping[str, Outcome]) -> None:
        with self._transaction(f"record the answer to {batch.phase} batch {batch.index}") as db:
            db.execute(
                "UPDATE batches SET state=?, http_status=?, request_id=?, answer=? "
                "WHERE run_id=? AND phase=? AND batch_index=?",
                (state, http_status, request_id, None if answer is None else json.dumps(answer),
                 run_id, batch.phase, batch.index))
            self._write_outcomes(db, run_id, batch.phase, outcomes, batch)

    def record_outcomes(self, run_id: str, phase: str, outcomes: Mapping[str, Outcome]) -> None:
        with self._transaction(f"record {phase} outcomes") as db:
            self._write_outcomes(db, run_id, phase, outcomes)

    def _write_outcomes(self, db: sqlite3.Connection, run_id: str, phase: str,
                        outcomes: Mapping[str, Outcome], batch: Batch | None = None) -> None:
        groups = grouped(outcomes)
        if batch is not None and len(groups) == 1:
            ((outcome, ids),) = groups.items()
            # The usual answer: one outcome for the whole batch, whose ranks its row already holds.
            if ids == list(batch.ids) and db.execute(
                    "INSERT INTO outcomes SELECT run_id, phase, ?, ranks FROM batches "
                    "WHERE run_id=? AND phase=? AND batch_index=? AND idempotency_key=?",
                    (outcome_json(outcome), run_id, phase, batch.index, batch.idempotency_key)).rowcount == 1:
                return
        unique = self._unique_ids(run_id)
        db.executemany("INSERT INTO outcomes VALUES (?,?,?,?)", [
            (run_id, phase, outcome_json(outcome), unique.ranks_of(ids)) for outcome, ids in groups.items()])

    def _unique_ids(self, run_id: str) -> UniqueIds:
        """The run's unique IDs, read from its stored input when this journal did not start the run."""
        if run_id not in self._unique:
            self.load_inputs(run_id)
        return self._unique[run_id]

    def record_snapshot(self, run_id: str, snapshot: SnapshotRecord) -> None:
        with self._guard(f"record the snapshot of run {run_id}"):
            self._db.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?,?,?,?)", (
                run_id, str(snapshot.path), snapshot.strategy, snapshot.contacts, snapshot.missing,
                snapshot.requests, snapshot.taken_at))

    def restore_sending(self, run_id: str, contact_ids: Iterable[str]) -> None:
        """Before a create request leaves: its contacts may exist from now on."""
        now = time.time()
        with self._transaction(f"record a restore of run {run_id} being sent") as db:
            db.executemany(
                "INSERT INTO restores VALUES (?,?,'sending',NULL,?,NULL) ON CONFLICT (run_id, contact_id) "
                "DO UPDATE SET state='sending', first_sent_at=COALESCE(first_sent_at, excluded.first_sent_at) "
                "WHERE state != 'restored'", [(run_id, cid, now) for cid in contact_ids])

    def restore_settled(self, run_id: str, restored: Mapping[str, str], unsent: Iterable[str] = (),
                        request_id: str | None = None) -> None:
        """Contacts proven re-created (old ID -> new ID), and contacts proven not created."""
        with self._transaction(f"record restored contacts of run {run_id}") as db:
            db.executemany(
                "UPDATE restores SET state='restored', new_contact_id=?, request_id=? WHERE run_id=? AND contact_id=?",
                [(new, request_id, run_id, old) for old, new in restored.items()])
            db.executemany("DELETE FROM restores WHERE run_id=? AND contact_id=? AND state='sending'",
                           [(run_id, cid) for cid in unsent])

    # -- reading -------------------------------------------------------------------------

    def load_snapshot(self, run_id: str) -> SnapshotRecord | None:
        with self._guard(f"read the snapshot record of run {run_id}"):
            row = self._db.execute("SELECT path, strategy, contacts, missing, requests, taken_at FROM snapshots "
                                   "WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else SnapshotRecord(Path(row[0]), row[1], row[2], row[3], row[4], row[5])

    def load_restores(self, run_id: str) -> dict[str, tuple[str, str | None, float | None]]:
        """Per old contact ID: (state, new ID, first sent at)."""
        with self._guard(f"read the restores of run {run_id}"):
            rows = self._db.execute("SELECT contact_id, state, new_contact_id, first_sent_at FROM restores "
                                    "WHERE run_id=?", (run_id,)).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def load_run(self, run_id: str) -> JournaledRun | None:
        """The run's header, or None; reads no input, so the caller can check the key first."""
        with self._guard(f"read run {run_id}", BAD_CONTENT):
            row = self._db.execute(
                "SELECT run_id, created_at, state, base_url, key_fingerprint, dry_run, plan_fingerprint, meta, "
                "input_index IS NOT NULL FROM runs WHERE run_id=?", (run_id,)).fetchone()
            return None if row is None else JournaledRun(
                run_id=row[0], created_at=row[1], state=row[2], base_url=row[3], key_fingerprint=row[4],
                dry_run=bool(row[5]), plan_fingerprint=row[6], meta=dict(json.loads(row[7])),
                index_restored=bool(row[8]))

    def load_inputs(self, run_id: str) -> pd.DataFrame:
        """The run's normalised input (``contact_id``, ``valid``, ``invalid_reason``, ``duplicate``) with
        its original index, or a RangeIndex where ``JournaledRun.index_restored`` is False."""
        with self._guard(f"read the input of run {run_id}", BAD_CONTENT):
            header = self._db.execute("SELECT input_index FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if header is None:
                raise ValueError("there is no such run")
            row = self._db.execute("SELECT rows, valid, duplicate, uuids, invalid FROM inputs WHERE run_id=?",
                                   (run_id,)).fetchone()
            if row is None:
                raise ValueError("its input is missing")
            stored = StoredInputs(int(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3]), str(row[4]))
            index = pd.RangeIndex(stored.rows) if header[0] is None else decode_index(header[0])
            if len(index) != stored.rows:
                raise ValueError(f"it holds {stored.rows} input rows but an index of {len(index)}")
            inputs = unpack_inputs(stored, index)
            self._unique[run_id] = UniqueIds(inputs)
            return inputs

    def load_batches(self, run_id: str, phase: Phase) -> list[JournaledBatch]:
        with self._guard(f"read the {phase} batches of run {run_id}", BAD_CONTENT):
            rows = self._db.execute(
                "SELECT batch_index, grp, idempotency_key, ranks, body_sha256, state, first_sent_at "
                "FROM batches WHERE run_id=? AND phase=? ORDER BY batch_index", (run_id, phase)).fetchall()
            batches = []
            for index, group, key, ranks, digest, state, first_sent_at in rows:
                ids = tuple(self._unique_ids(run_id).ids_at(bytes(ranks)))
                body = request_body(ids, phase != DELETE)  # the bytes first sent: checked, not trusted
                if hashlib.sha256(body).digest() != bytes(digest):
                    raise ValueError(f"batch {index} does not rebuild the body it was sent with")
                batches.append(JournaledBatch(Batch(index=index, phase=phase, ids=ids, idempotency_key=key,
                                                    body=body, group=group), state=state, first_sent_at=first_sent_at))
            return batches

    def load_outcomes(self, run_id: str, phase: str) -> dict[str, Outcome]:
        with self._guard(f"read the {phase} outcomes of run {run_id}", BAD_CONTENT):
            rows = self._db.execute("SELECT outcome, ranks FROM outcomes WHERE run_id=? AND phase=? ORDER BY rowid",
                                    (run_id, phase)).fetchall()
            outcomes: dict[str, Outcome] = {}
            for text, ranks in rows:
                outcomes.update(dict.fromkeys(self._unique_ids(run_id).ids_at(bytes(ranks)), outcome_from_json(text)))
            return outcomes

    def runs(self) -> pd.DataFrame:
        """Every journaled run, newest first (for finding a run to resume)."""
        with self._guard("list its runs"):
            rows = self._db.execute("SELECT run_id, datetime(created_at, 'unixepoch'), state, dry_run, base_url "
                                    "FROM runs ORDER BY created_at DESC").fetchall()
        return pd.DataFrame(rows, columns=["run_id", "created_utc", "state", "dry_run", "base_url"])


def _create_private(path: Path) -> None:
    """Missing parent directories 0700 and a new journal file 0600, whatever the umask: a journal lists
    contacts. Existing ones (a directory the user chose, a journal's file) keep their modes."""
    for directory in reversed([parent for parent in path.parents if not parent.exists()]):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else
        os.chmod(directory, 0o700)
    try:
        # O_EXCL never follows a planted symlink. SQLite gives the -wal and -shm files this file's mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    os.chmod(path, 0o600)
