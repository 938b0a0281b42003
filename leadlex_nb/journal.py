"""The run journal: a SQLite file that makes every run resumable.

Written before each request is sent (the batch's IDs, key and exact body) and after each
answer, so an interrupt, a crash or a stopped kernel loses nothing: ``resume(run_id)``
resends unfinished batches with the same idempotency key and byte-identical body.
The API key is never stored, only its fingerprint.

Location: ``journal=`` argument, else ``$LEADLEX_JOURNAL``, else
``$XDG_DATA_HOME/leadlex-nb/journal.sqlite3`` (``~/.local/share/leadlex-nb/``).
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leadlex_nb.plan import Batch
from leadlex_nb.results import Outcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL,
    base_url TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    plan_fingerprint TEXT,
    meta TEXT NOT NULL,
    input_index BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    contact_id TEXT,
    valid INTEGER NOT NULL,
    invalid_reason TEXT,
    duplicate INTEGER NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS batches (
    run_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    batch_index INTEGER NOT NULL,
    grp TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    ids TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,           -- planned | sending | answered | failed
    first_sent_at REAL,
    http_status INTEGER,
    request_id TEXT,
    answer TEXT,
    PRIMARY KEY (run_id, phase, batch_index)
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    batch INTEGER,
    attempts INTEGER,
    request_id TEXT,
    PRIMARY KEY (run_id, phase, contact_id)
);
"""


@dataclass(frozen=True)
class JournaledBatch:
    batch: Batch
    state: str
    first_sent_at: float | None


@dataclass(frozen=True)
class JournaledRun:
    run_id: str
    created_at: float
    state: str
    base_url: str
    key_fingerprint: str
    dry_run: bool
    plan_fingerprint: str | None
    meta: dict[str, Any]
    ids: pd.DataFrame  # the normalised input, with the original index


def _to_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the run's event-loop thread only.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        *,
        base_url: str,
        key_fingerprint: str,
        dry_run: bool,
        meta: Mapping[str, Any],
        ids: pd.DataFrame,
    ) -> None:
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (run_id, now, now, "dry_run", base_url, key_fingerprint, int(dry_run), None,
                 json.dumps(dict(meta)), pickle.dumps(ids.index)),
            )
            self._db.executemany(
                "INSERT INTO inputs VALUES (?,?,?,?,?,?)",
                zip(
                    [run_id] * len(ids),
                    range(len(ids)),
                    map(_to_text, ids["contact_id"].tolist()),
                    ids["valid"].astype(int).tolist(),
                    map(_to_text, ids["invalid_reason"].tolist()),
                    ids["duplicate"].astype(int).tolist(),
                ),
            )

    def set_state(self, run_id: str, state: str, *, plan_fingerprint: str | None = None) -> None:
        self._db.execute(
            "UPDATE runs SET state=?, updated_at=?, plan_fingerprint=COALESCE(?, plan_fingerprint) WHERE run_id=?",
            (state, time.time(), plan_fingerprint, run_id),
        )

    def plan_batches(self, run_id: str, batches: Iterable[Batch]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO batches (run_id, phase, batch_index, grp, idempotency_key, ids, body, state) "
                "VALUES (?,?,?,?,?,?,?,'planned')",
                [(run_id, b.phase, b.index, b.group, b.idempotency_key, json.dumps(list(b.ids)), b.body)
                 for b in batches],
            )

    def sending(self, run_id: str, batch: Batch) -> None:
        self._db.execute(
            "UPDATE batches SET state='sending', first_sent_at=COALESCE(first_sent_at, ?) "
            "WHERE run_id=? AND phase=? AND batch_index=?",
            (time.time(), run_id, batch.phase, batch.index),
        )

    def answered(
        self,
        run_id: str,
        batch: Batch,
        *,
        state: str,
        http_status: int | None,
        request_id: str | None,
        answer: Any,
        outcomes: Mapping[str, Outcome],
    ) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE batches SET state=?, http_status=?, request_id=?, answer=? "
                "WHERE run_id=? AND phase=? AND batch_index=?",
                (state, http_status, request_id, json.dumps(answer) if answer is not None else None,
                 run_id, batch.phase, batch.index),
            )
            self._write_outcomes(run_id, batch.phase, outcomes)

    def record_outcomes(self, run_id: str, phase: str, outcomes: Mapping[str, Outcome]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._write_outcomes(run_id, phase, outcomes)

    def _write_outcomes(self, run_id: str, phase: str, outcomes: Mapping[str, Outcome]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO outcomes VALUES (?,?,?,?,?,?,?,?,?)",
            [(run_id, phase, cid, o.status, o.error_code, o.error_message, o.batch, o.attempts, o.request_id)
             for cid, o in outcomes.items()],
        )

    # -- reading -------------------------------------------------------------------------

    def load_run(self, run_id: str) -> JournaledRun | None:
        row = self._db.execute(
            "SELECT run_id, created_at, state, base_url, key_fingerprint, dry_run, plan_fingerprint, meta, input_index "
            "FROM runs WHERE run_id=?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        inputs = pd.read_sql_query(
            "SELECT contact_id, valid, invalid_reason, duplicate FROM inputs WHERE run_id=? ORDER BY position",
            self._db,
            params=(run_id,),
        )
        inputs["valid"] = inputs["valid"].astype(bool)
        inputs["duplicate"] = inputs["duplicate"].astype(bool)
        inputs = inputs.astype({"contact_id": object, "invalid_reason": object})
        inputs.index = pickle.loads(row[8])
        return JournaledRun(
            run_id=row[0], created_at=row[1], state=row[2], base_url=row[3], key_fingerprint=row[4],
            dry_run=bool(row[5]), plan_fingerprint=row[6], meta=json.loads(row[7]), ids=inputs,
        )

    def load_batches(self, run_id: str, phase: str) -> list[JournaledBatch]:
        rows = self._db.execute(
            "SELECT batch_index, grp, idempotency_key, ids, body, state, first_sent_at "
            "FROM batches WHERE run_id=? AND phase=? ORDER BY batch_index",
            (run_id, phase),
        ).fetchall()
        return [
            JournaledBatch(
                Batch(index=r[0], phase=phase, ids=tuple(json.loads(r[3])), idempotency_key=r[2],
                      body=bytes(r[4]), group=r[1]),
                state=r[5], first_sent_at=r[6],
            )
            for r in rows
        ]

    def load_outcomes(self, run_id: str, phase: str) -> dict[str, Outcome]:
        rows = self._db.execute(
            "SELECT contact_id, status, error_code, error_message, batch, attempts, request_id "
            "FROM outcomes WHERE run_id=? AND phase=?",
            (run_id, phase),
        ).fetchall()
        return {r[0]: Outcome(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}

    def runs(self) -> pd.DataFrame:
        """Every journaled run, newest first (for finding a run to resume)."""
        return pd.read_sql_query(
            "SELECT run_id, datetime(created_at, 'unixepoch') AS created_utc, state, dry_run, base_url "
            "FROM runs ORDER BY created_at DESC",
            self._db,
        )
