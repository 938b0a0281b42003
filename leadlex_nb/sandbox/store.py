"""SQLite storage of contacts: the sandbox's ground truth.

One connection (in memory by default, or a file) shared by the server thread and the test thread,
guarded by a lock; every operation is a short statement or two, so holding the lock is cheap.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

CONTACT_COLUMNS = ("id", "first_name", "last_name", "full_name", "email", "phone", "job_title",
                   "company", "linkedin_url", "priority", "tags", "custom_fields", "created_at",
                   "updated_date")
_JSON_COLUMNS = ("tags", "custom_fields")
SORTABLE = {"created_at": "created_at", "updated_date": "updated_date", "full_name": "full_name"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    first_name TEXT, last_name TEXT, full_name TEXT, email TEXT, phone TEXT, job_title TEXT,
    company TEXT, linkedin_url TEXT, priority INTEGER, tags TEXT NOT NULL DEFAULT '[]',
    custom_fields TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_date TEXT NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS contacts_created ON contacts (created_at, seq);
"""


class Store:
    def __init__(self, db_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes ---------------------------------------------------------------------------------

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        params = [tuple(_encode(c, r.get(c)) for c in CONTACT_COLUMNS) for r in rows]
        sql = f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)}) VALUES ({', '.join('?' * len(CONTACT_COLUMNS))})"
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [r["id"] for r in rows]

    def protect(self, ids: Iterable[str], locked: bool = True) -> int:
        with self._lock:
            cur = self._db.execute(
                "UPDATE contacts SET locked = ? WHERE id IN (SELECT value FROM json_each(?))",
                (int(locked), json.dumps([i.lower() for i in ids])),
            )
            return cur.rowcount

    def bulk_delete(self, ids: Sequence[str], dry_run: bool) -> tuple[list[str], list[str], list[str]]:
        """Delete unlocked contacts among ``ids`` (canonical, unique) in one transaction.

        Returns (deleted or would-be-deleted ids, locked ids, found ids), each in input order.
        """
        payload = json.dumps(list(ids))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = {r[0]: r[1] for r in self._db.execute(
                    "SELECT id, locked FROM contacts WHERE id IN (SELECT value FROM json_each(?))", (payload,))}
                if not dry_run:
                    self._db.execute(
                        "DELETE FROM contacts WHERE locked = 0 AND id IN (SELECT value FROM json_each(?))",
                        (payload,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        deletable = [i for i in ids if i in found and not found[i]]
        locked = [i for i in ids if found.get(i)]
        return deletable, locked, [i for i in ids if i in found]

    # -- reads ----------------------------------------------------------------------------------

    def existing_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM contacts")}

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])

    def get(self, contact_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        return _decode(row) if row else None

    def page(self, *, page: int, per_page: int, search: str | None, sort: str, descending: bool,
             created_after: str | None) -> tuple[list[dict[str, Any]], int]:
        where, params = _filters(search=search, created_after=created_after)
        direction = "DESC" if descending else "ASC"
        sql = (f"SELECT * FROM contacts {where} ORDER BY {SORTABLE[sort]} {direction}, seq {direction} "
               "LIMIT ? OFFSET ?")
        with self._lock:
            total = int(self._db.execute(f"SELECT COUNT(*) FROM contacts {where}", params).fetchone()[0])
            rows = self._db.execute(sql, (*params, per_page, (page - 1) * per_page)).fetchall()
        return [_decode(r) for r in rows], total

    def export(self, *, limit: int, created_after: str | None, created_before: str | None,
               tags: Sequence[str]) -> list[dict[str, Any]]:
        where, params = _filters(created_after=created_after, created_before=created_before, tags=tags)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM contacts {where} ORDER BY created_at, seq LIMIT ?", (*params, limit)).fetchall()
        return [_decode(r) for r in rows]


def _filters(*, search: str | None = None, created_after: str | None = None,
             created_before: str | None = None, tags: Sequence[str] = ()) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if search:
        # Partial, case-insensitive match on name or email; LIKE wildcards in the term are literal.
        term = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(lower(full_name) LIKE ? ESCAPE '\\' OR lower(email) LIKE ? ESCAPE '\\')")
        params += [term, term]
    if created_after:
        clauses.append("created_at >= ?")
        params.append(created_after)
    if created_before:
        clauses.append("created_at < ?")
        params.append(created_before)
    for tag in tags:
        clauses.append("EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE value = ?)")
        params.append(tag)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return json.dumps(value if value is not None else ([] if column == "tags" else {}))
    return value


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = {c: row[c] for c in CONTACT_COLUMNS}
    for c in _JSON_COLUMNS:
        out[c] = json.loads(out[c])
    out["locked"] = bool(row["locked"])
    return out
