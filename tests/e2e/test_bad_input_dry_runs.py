"""Generated bad input through the whole run: dry runs against the sandbox over real sockets.

Each frame mixes contacts that exist (in any spelling, as UUID objects, repeated), UUIDs that do
not, and junk of any dtype, under awkward indexes. Every row must get the status the ground truth
says, in the input's index and order, or the call must raise a clear ``LeadLexError``.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pandas as pd
import pytest
from bad_frames_e2e import mixed_frames
from hypothesis import HealthCheck, given, settings

import leadlex_nb
from leadlex_nb import NothingToDeleteError
from leadlex_nb.sandbox import Sandbox

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def shared() -> Sandbox:
    with Sandbox(seed_contacts=0) as sb:
        yield sb


def options(sandbox: Sandbox, journal: Path) -> dict[str, object]:
    return {"api_key": sandbox.api_key, "base_url": sandbox.base_url, "journal": journal, "progress": False,
            "verbose": False, "batch_size": 7}


@SETTINGS
@given(seed=mixed_frames.seeds)
def test_every_row_of_a_generated_frame_gets_the_status_the_ground_truth_says(
    shared: Sandbox, tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    existing = shared.seed(12)
    values, expected = mixed_frames.build(random.Random(seed), existing)
    frame = pd.DataFrame({"c": values})
    journal = tmp_path_factory.mktemp("j") / "journal.sqlite3"
    if set(expected) <= {"invalid"}:
        with pytest.raises(NothingToDeleteError):
            frame.leadlex.bulk_delete("c", dry_run=True, **options(shared, journal))
        return
    result = frame.leadlex.bulk_delete("c", dry_run=True, **options(shared, journal))
    assert result.index.equals(frame.index) and len(result) == len(frame)
    got = result["status"].astype(str).tolist()
    for row, (status, want) in enumerate(zip(got, expected, strict=True)):
        assert status == want or (want == "not_found" and status == "unresolved"), (row, values.iloc[row])
    assert shared.existing_ids() >= set(existing), "a dry run deleted something"
    # The finished dry run, from its journal: the same statuses, under the same index.
    again = leadlex_nb.resume(result.attrs["leadlex"]["run_id"], **options(shared, journal))
    assert again["status"].astype(str).tolist() == got
    assert again.index.equals(frame.index) or any("index" in n for n in again.attrs["leadlex"]["notes"])


def test_a_million_repeats_of_one_id_take_one_request_and_every_row_shares_its_status(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    one = sandbox.seed(1)[0]
    index = pd.MultiIndex.from_arrays([[i % 7 for i in range(1_000_000)], ["x"] * 1_000_000])
    frame = pd.DataFrame({"c": [one.upper(), one] * 500_000}, index=index)
    result = frame.leadlex.bulk_delete("c", dry_run=True, **options(sandbox, tmp_path / "j.sqlite3"))
    assert len(result) == 1_000_000 and result.index.equals(index)
    assert (result["status"].astype(str) == "would_delete").all()
    assert int(result["duplicate"].sum()) == 999_999
    assert [e["contact_ids"] for e in sandbox.execution_log()] == [[one]]


def test_unknown_uuids_only_are_not_found_and_nothing_exists_to_delete(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.seed(5)
    ghosts = [str(uuid.UUID(int=i + 7)) for i in range(9)]
    result = pd.Series([*ghosts, "", None], index=[3] * 11).leadlex.bulk_delete(
        confirm=False, **options(sandbox, tmp_path / "j.sqlite3"))
    assert result["status"].astype(str).tolist() == ["not_found"] * 9 + ["invalid"] * 2
    assert not any(e["dry_run"] is False for e in sandbox.execution_log())
