"""The run journal: data only (no pickle), private files, JournalError for every SQLite failure,
re-keyed batches, forgetting a phase and the schema version."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import json
import os
import pickle
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import leadlex_nb.journal as journal_module
from leadlex_nb.errors import JournalError
from leadlex_nb.ids import normalise_ids
from leadlex_nb.journal import Journal
from leadlex_nb.plan import DELETE, DRY_RUN, build_batches
from leadlex_nb.results import Outcome

U = "123e4567-e89b-12d3-a456-426614174000"
V = "00000000-0000-0000-0000-0000000000ff"
W = "ffffffff-0000-0000-0000-000000000000"
X = "0000000a-0000-0000-0000-00000000000b"
RUN = "r1"


def ids_frame(index: pd.Index | None = None) -> pd.DataFrame:
    """A normalised input with valid, duplicate, missing and junk rows: 7 rows, or one per ``index`` entry."""
    values = ([U.upper(), V, U, None, "junk", W, X] * 2)[: 7 if index is None else len(index)]
    return normalise_ids(pd.Series(values, index=index, dtype=object))


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the file, as another process would open it; closed after use."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "j.sqlite3", busy_timeout=0.1) as opened:
        yield opened


def start(journal: Journal, ids: pd.DataFrame, run_id: str = RUN) -> None:
    journal.start_run(run_id, base_url="http://sandbox", key_fingerprint="fp-1", dry_run=False,
                      meta={"batch_size": 2}, ids=ids)


# -- 1. a journal is data, never code ---------------------------------------------------------


def test_the_journal_module_does_not_import_pickle() -> None:
    tree = ast.parse(inspect.getsource(journal_module))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in {"pickle", "_pickle", "dill", "cloudpickle"}}


class _WritesAFile:
    """A pickle payload that, when unpickled, creates a file: code run from the journal."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_tampered_index_holding_a_pickle_payload_is_never_run(journal: Journal, tmp_path: Path) -> None:
    start(journal, ids_frame())
    marker = tmp_path / "pwned"
    with raw(journal.path) as db:
        db.execute("UPDATE runs SET input_index=? WHERE run_id=?", (pickle.dumps(_WritesAFile(marker)), RUN))
    # The header loads (the key can be checked); the input is refused, and the payload never ran.
    record = journal.load_run(RUN)
    assert record is not None and record.key_fingerprint == "fp-1" and record.index_restored
    with pytest.raises(JournalError, match=f"could not read the input of run {RUN}"):
        journal.load_inputs(RUN)
    assert not marker.exists()


@pytest.mark.parametrize("tampered", [
    {"kind": "index", "names": [None], "levels": [{"type": "number", "dtype": "category", "values": [1]}]},
    {"kind": "index", "names": [None], "levels": [{"type": "str", "dtype": "int64", "values": ["a"]}]},
    {"kind": "index", "names": [None], "levels": [{"type": "object", "dtype": "object", "values": ["a"]}]},
    {"kind": "range", "names": [None], "range": [0, 2, 1]},  # a length that does not match the inputs
])
def test_an_index_the_journal_did_not_write_is_refused(journal: Journal, tampered: dict[str, Any]) -> None:
    start(journal, ids_frame(pd.RangeIndex(1)))
    with raw(journal.path) as db:
        db.execute("UPDATE runs SET input_index=?", (json.dumps(tampered),))
    with pytest.raises(JournalError, match="could not read the input"):
        journal.load_inputs(RUN)


def test_load_run_is_the_header_only_and_an_unknown_run_is_none(journal: Journal) -> None:
    start(journal, ids_frame())
    record = journal.load_run(RUN)
    assert record is not None and not hasattr(record, "ids")
    assert (record.run_id, record.state, record.base_url, record.dry_run, record.plan_fingerprint, record.meta) == (
        RUN, "dry_run", "http://sandbox", False, None, {"batch_size": 2})
    assert journal.load_run("nope") is None
    with pytest.raises(JournalError, match="nope"):
        journal.load_inputs("nope")


NAIVE = pd.DatetimeIndex(["2024-01-01 10:00", None, "2024-03-31 02:30:00.123456789"])
INDEXES = {
    "default": pd.RangeIndex(7),
    "range": pd.RangeIndex(10, 24, 2, name="row"),
    "int": pd.Index([5, 3, -1, 2**40, 0, 7, 9], name=0),
    "uint": pd.Index(np.array([2**64 - 1, 1, 2, 3, 4, 5, 6], dtype=np.uint64)),
    "int32": pd.Index(np.arange(7, dtype=np.int32)),
    "nullable": pd.Index([1, None, 3, 4, 5, 6, 7], dtype="Int64", name="n"),
    "str": pd.Index(list("abcdefg"), name="key"),
    "object str": pd.Index(["a", None, "ü", "", "e", "f", "g"], dtype=object),
    "float": pd.Index([0.5, np.nan, -1e300, np.inf, 2.0, 3.0, 1 / 3]),
    "bool": pd.Index([True, False, True, True, False, False, True], name="flag"),
    "datetime ns": NAIVE.append(pd.date_range("2024-01-01", periods=4, freq="h")),
    "datetime s": pd.date_range("1900-01-01", periods=7, freq="D", unit="s"),
    "datetime tz": pd.date_range("2024-03-31 00:30", periods=7, freq="30min", tz="Europe/Berlin", name="at"),
    "datetime utc": pd.date_range("2024-01-01", periods=7, tz=dt.timezone.utc),
    "multi": pd.MultiIndex.from_arrays(
        [list("aabbccd"), [1, 2, 1, 2, 1, 2, 1],
         pd.date_range("2024-01-01", periods=7, tz="America/New_York")], names=["k", None, "when"]),
}


@pytest.mark.parametrize("index", INDEXES.values(), ids=INDEXES.keys())
def test_the_input_index_comes_back_as_it_was(journal: Journal, index: pd.Index) -> None:
    ids = ids_frame(index)
    start(journal, ids)
    record = journal.load_run(RUN)
    assert record is not None and record.index_restored
    loaded = journal.load_inputs(RUN)
    assert type(loaded.index) is type(index) and loaded.index.equals(index)
    assert list(loaded.index.names) == list(index.names)
    assert [loaded.index.get_level_values(i).dtype for i in range(index.nlevels)] == [
        index.get_level_values(i).dtype for i in range(index.nlevels)]
    pd.testing.assert_frame_equal(loaded, ids)


class _Thing:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Thing)

    __hash__ = object.__hash__


UNSTORABLE = {
    "objects": pd.Index([_Thing() for _ in range(3)]),
    "mixed": pd.Index(["a", 1, 2.5], dtype=object),
    "tuple name": pd.Index(["a", "b", "c"], name=("x", "y")),
    "timedelta": pd.to_timedelta([1, 2, 3], unit="s"),
    "categorical": pd.CategoricalIndex(["b", "a", "b"]),
}


@pytest.mark.parametrize("index", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_an_index_that_cannot_be_stored_faithfully_becomes_positions(journal: Journal, index: pd.Index) -> None:
    ids = ids_frame(index)
    start(journal, ids)
    record = journal.load_run(RUN)
    assert record is not None and not record.index_restored
    loaded = journal.load_inputs(RUN)
    pd.testing.assert_frame_equal(loaded, ids.reset_index(drop=True))


def test_an_empty_input_loads_as_an_empty_frame(journal: Journal) -> None:
    ids = ids_frame(pd.Index([], dtype="int64"))
    start(journal, ids)
    pd.testing.assert_frame_equal(journal.load_inputs(RUN), ids)


# -- 2. permissions ----------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # the most permissive umask: the modes below must not depend on it
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
@pytest.mark.usefixtures("open_umask")
def test_new_directories_are_0700_and_the_database_files_0600(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    chosen.mkdir(mode=0o755)
    chosen.chmod(0o755)
    path = chosen / "a" / "b" / "j.sqlite3"
    with Journal(path) as journal:
        start(journal, ids_frame())
        sides = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(side.exists() for side in sides)
        modes = {p.name: p.stat().st_mode & 0o777 for p in (chosen / "a", chosen / "a" / "b", path, *sides)}
    assert modes == {"a": 0o700, "b": 0o700, "j.sqlite3": 0o600, "j.sqlite3-wal": 0o600, "j.sqlite3-shm": 0o600}
    assert chosen.stat().st_mode & 0o777 == 0o755  # an existing directory is the user's choice


# -- 3. JournalError, never a raw sqlite3 error -----------------------------------------------


def test_a_locked_journal_raises_journal_error_after_the_busy_timeout(journal: Journal) -> None:
    start(journal, ids_frame())
    (batch,) = build_batches(RUN, DELETE, [U])
    journal.plan_batches(RUN, [batch])
    holder = sqlite3.connect(journal.path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        began = time.monotonic()
        with pytest.raises(JournalError) as caught:
            journal.sending(RUN, batch)
        assert 0.05 <= time.monotonic() - began < 3
        with pytest.raises(JournalError, match="could not record the planned batches: database is locked"):
            journal.plan_batches(RUN, build_batches(RUN, DELETE, [V], start_index=1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(caught.value)
    assert message == f"the run journal {journal.path} could not record delete batch 0 being sent: database is locked"
    assert U not in message and batch.body.decode() not in message
    # The failed writes left no transaction open: the journal works once the lock is gone.
    journal.sending(RUN, batch)
    journal.plan_batches(RUN, build_batches(RUN, DELETE, [V], start_index=1))
    assert [jb.state for jb in journal.load_batches(RUN, DELETE)] == ["sending", "planned"]


def test_the_busy_timeout_defaults_to_five_seconds_and_reaches_sqlite(tmp_path: Path) -> None:
    with Journal(tmp_path / "a.sqlite3") as default, Journal(tmp_path / "b.sqlite3", busy_timeout=0.25) as short:
        assert default._db.execute("PRAGMA busy_timeout").fetchone() == (5000,)
        assert short._db.execute("PRAGMA busy_timeout").fetchone() == (250,)


def test_a_corrupt_file_raises_journal_error_on_open(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    with pytest.raises(JournalError, match=f"the run journal {path} could not be opened: file is not a database"):
        Journal(path)


def test_a_journal_that_cannot_be_created_raises_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(JournalError, match="could not be opened"):
        Journal(tmp_path / "file" / "j.sqlite3")


def test_writing_a_run_twice_raises_journal_error(journal: Journal) -> None:
    start(journal, ids_frame())
    with pytest.raises(JournalError, match=f"could not record the start of run {RUN}: UNIQUE constraint failed"):
        start(journal, ids_frame())


# -- 4. re-keyed batches -----------------------------------------------------------------------


def test_a_batch_planned_again_under_its_key_keeps_its_state(journal: Journal) -> None:
    start(journal, ids_frame())
    batches = build_batches(RUN, DELETE, [U, V, W], size=2)
    journal.plan_batches(RUN, batches)
    journal.sending(RUN, batches[0])
    journal.answered(RUN, batches[1], state="answered", http_status=200, request_id="req-1",
                     answer={"deleted_count": 1}, outcomes={W: Outcome("deleted", batch=1, attempts=1)})
    before = journal.load_batches(RUN, DELETE)
    journal.plan_batches(RUN, build_batches(RUN, DELETE, [U, V, W], size=2))  # a resume re-plans them
    after = journal.load_batches(RUN, DELETE)
    assert after == before
    assert [(jb.state, jb.first_sent_at is not None) for jb in after] == [("sending", True), ("answered", False)]


def test_a_batch_planned_again_under_a_new_key_replaces_key_body_and_state(journal: Journal) -> None:
    start(journal, ids_frame())
    (old,) = build_batches(RUN, DRY_RUN, [U, V])
    journal.plan_batches(RUN, [old])
    journal.sending(RUN, old)
    journal.answered(RUN, old, state="answered", http_status=200, request_id="req-1", answer={"n": 1}, outcomes={})
    (new,) = build_batches(RUN, DRY_RUN, [U, W], key_round="2")
    assert new.idempotency_key != old.idempotency_key
    journal.plan_batches(RUN, [new])
    (loaded,) = journal.load_batches(RUN, DRY_RUN)
    assert loaded.batch == new and loaded.state == "planned" and loaded.first_sent_at is None
    with raw(journal.path) as db:
        assert db.execute("SELECT http_status, request_id, answer FROM batches").fetchall() == [(None, None, None)]


# -- 5. forgetting a phase ----------------------------------------------------------------------


def test_forget_phase_deletes_that_phase_s_batches_and_outcomes_only(journal: Journal) -> None:
    for run_id in (RUN, "r2"):
        start(journal, ids_frame(), run_id)
        journal.plan_batches(run_id, build_batches(run_id, DRY_RUN, [U, V], size=1))
        journal.record_outcomes(run_id, DRY_RUN, {U: Outcome("would_delete", batch=0, attempts=1)})
        journal.plan_batches(run_id, build_batches(run_id, DELETE, [U]))
        journal.record_outcomes(run_id, DELETE, {U: Outcome("deleted", batch=0, attempts=1)})
    journal.forget_phase(RUN, DRY_RUN)
    assert journal.load_batches(RUN, DRY_RUN) == [] and journal.load_outcomes(RUN, DRY_RUN) == {}
    assert len(journal.load_batches(RUN, DELETE)) == 1 and journal.load_outcomes(RUN, DELETE) == {
        U: Outcome("deleted", batch=0, attempts=1)}
    assert len(journal.load_batches("r2", DRY_RUN)) == 2 and len(journal.load_outcomes("r2", DRY_RUN)) == 1


# -- 6. the rest of the API and the schema version ---------------------------------------------


def test_states_outcomes_and_the_run_list(journal: Journal) -> None:
    start(journal, ids_frame())
    journal.set_state(RUN, "confirmed", plan_fingerprint="abc")
    journal.set_state(RUN, "deleting")
    outcome = Outcome("error", "contact_locked", "locked", batch=0, attempts=3, request_id="req-9")
    journal.record_outcomes(RUN, DELETE, {V: outcome})
    record = journal.load_run(RUN)
    assert record is not None and (record.state, record.plan_fingerprint) == ("deleting", "abc")
    assert journal.load_outcomes(RUN, DELETE) == {V: outcome}
    runs = journal.runs()
    assert list(runs.columns) == ["run_id", "created_utc", "state", "dry_run", "base_url"]
    assert runs[["run_id", "state", "dry_run"]].values.tolist() == [[RUN, "deleting", 0]]


def test_a_journal_of_schema_1_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with raw(path) as db:  # schema 1 had no user_version
        db.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, input_index BLOB NOT NULL)")
    with pytest.raises(JournalError, match=r"has schema 1, but this leadlex-nb reads schema 3 only"):
        Journal(path)


def test_a_journal_of_schema_2_one_row_per_id_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with raw(path) as db:
        db.execute("CREATE TABLE inputs (run_id TEXT NOT NULL, position INTEGER NOT NULL, contact_id TEXT)")
        db.execute("PRAGMA user_version=2")
    with pytest.raises(JournalError, match=r"has schema 2, but this leadlex-nb reads schema 3 only.*move it aside"):
        Journal(path)


def test_a_journal_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with Journal(path):
        pass
    with raw(path) as db:
        db.execute("PRAGMA user_version=4")
    with pytest.raises(JournalError, match="has schema 4"):
        Journal(path)


def test_a_journal_opens_again_with_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as journal:
        start(journal, ids_frame())
    with Journal(path) as journal:
        assert journal.load_run(RUN) is not None
        with raw(path) as db:
            assert db.execute("PRAGMA user_version").fetchone() == (journal_module.SCHEMA_VERSION,)
