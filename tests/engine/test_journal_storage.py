"""The compact journal (schema 3): what goes in comes back, in a few bytes per ID."""

from __future__ import annotations

import ast
import inspect
import sqlite3
import uuid
from pathlib import Path

import pandas as pd
import pytest

import leadlex_nb.journal_codec as codec_module
from leadlex_nb.errors import JournalError
from leadlex_nb.ids import normalise_ids
from leadlex_nb.journal import Journal
from leadlex_nb.plan import DELETE, DRY_RUN, build_batches
from leadlex_nb.results import Outcome

RUN = "r1"


def start(journal: Journal, ids: pd.DataFrame) -> None:
    journal.start_run(RUN, base_url="http://sandbox", key_fingerprint="fp", dry_run=False, meta={}, ids=ids)


def test_the_codec_module_does_not_import_pickle() -> None:
    tree = ast.parse(inspect.getsource(codec_module))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names} | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {"pickle", "marshal", "shelve"} & imported


def test_inputs_batches_and_outcomes_come_back_from_a_reopened_journal(tmp_path: Path) -> None:
    u, v, w = (str(uuid.UUID(int=n)) for n in (1, 2**127, 2**128 - 1))
    ids = normalise_ids(pd.Series([u.upper(), v, u, None, "junk", 42, w, float("nan")], dtype=object))
    unique = [u, v, w]
    dry = build_batches(RUN, DRY_RUN, unique, size=2)
    delete = build_batches(RUN, DELETE, [w, u], size=1)
    first = Outcome("would_delete", None, None, 0, 1, "req-1")
    with Journal(tmp_path / "j.sqlite3") as journal:
        start(journal, ids)
        journal.plan_batches(RUN, dry + delete)
        journal.answered(RUN, dry[0], state="answered", http_status=200, request_id="req-1", answer={},
                         outcomes={u: first, v: Outcome("not_found", None, None, 0, 1, "req-1")})
        journal.record_outcomes(RUN, DRY_RUN, {v: Outcome("unresolved", "ambiguous", "why", 0)})
        journal.answered(RUN, delete[0], state="sending", http_status=None, request_id=None, answer=None,
                         outcomes={w: Outcome("unknown", "timeout", "no answer", 0, 3)})
    with Journal(tmp_path / "j.sqlite3") as journal:  # a new process: nothing cached
        expected = ids.assign(contact_id=ids["contact_id"].replace({42: "42"}).where(ids["contact_id"].notna(), None))
        pd.testing.assert_frame_equal(journal.load_inputs(RUN), expected)  # invalid values as text or None
        loaded = [jb.batch for jb in journal.load_batches(RUN, DRY_RUN) + journal.load_batches(RUN, DELETE)]
        assert loaded == dry + delete  # IDs, keys and byte-identical bodies
        assert journal.load_outcomes(RUN, DRY_RUN) == {u: first, v: Outcome("unresolved", "ambiguous", "why", 0)}
        assert journal.load_outcomes(RUN, DELETE) == {w: Outcome("unknown", "timeout", "no answer", 0, 3)}


def test_a_batch_whose_stored_body_digest_differs_is_refused(tmp_path: Path) -> None:
    ids = normalise_ids(pd.Series([str(uuid.UUID(int=7))]))
    with Journal(tmp_path / "j.sqlite3") as journal:
        start(journal, ids)
        journal.plan_batches(RUN, build_batches(RUN, DELETE, ids["contact_id"].tolist()))
        db = sqlite3.connect(journal.path, isolation_level=None)
        db.execute("UPDATE batches SET body_sha256=zeroblob(32)")
        db.close()
        with pytest.raises(JournalError, match="does not rebuild the body"):
            journal.load_batches(RUN, DELETE)


def test_a_batch_of_ids_outside_the_input_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        start(journal, normalise_ids(pd.Series([str(uuid.UUID(int=7))])))
        with pytest.raises(JournalError, match="not in its run's input"):
            journal.plan_batches(RUN, build_batches(RUN, DELETE, [str(uuid.UUID(int=8))]))


def test_a_journal_holds_at_most_40_bytes_per_id(tmp_path: Path) -> None:
    """A whole delete run's records: the input, dry-run and delete batches and their outcomes."""
    n = 20_000
    unique = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(n)]
    ids = normalise_ids(pd.Series(unique + unique[:100] + ["junk"] * 10))
    path = tmp_path / "j.sqlite3"
    with Journal(path) as journal:
        start(journal, ids)
        for phase, status in ((DRY_RUN, "would_delete"), (DELETE, "deleted")):
            batches = build_batches(RUN, phase, unique)
            journal.plan_batches(RUN, batches)
            for batch in batches:
                journal.sending(RUN, batch)
                outcomes = {cid: Outcome(status, None, None, batch.index, 1, f"req-{batch.index}") for cid in batch.ids}
                outcomes[batch.ids[0]] = Outcome("error", "locked", "contact is locked", batch.index, 1)
                journal.answered(RUN, batch, state="answered", http_status=200, request_id=f"req-{batch.index}",
                                 answer={"deleted_count": 499, "not_found_count": 0, "errors": []}, outcomes=outcomes)
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert size <= 40 * len(ids) + 64 * 1024
