"""The confirm panel in a real JupyterLab, clicked in headless Chromium, against the sandbox.

Each test opens a notebook whose kernel reaches the sandbox (in this process) over real sockets,
runs the bulk delete cell, reads the panel, clicks, and checks the sandbox's own ground truth: which
contacts exist and its execution log. Screenshots go to ``out/browser/``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Sandbox

pytestmark = pytest.mark.timeout(300)

SETUP = """
import pandas as pd
import leadlex_nb
frame = pd.read_json("frame.json", orient="split")
print(f"{len(frame)} rows")
"""
CALL = 'run = frame.leadlex.bulk_delete("contact_id", journal="journal.sqlite3"{extra})'
SAVE = """
result = run.wait(120)
result.to_json("result.json", orient="split")
open("run_id.txt", "w").write(run.run_id)
print("saved", run.status, len(result))
"""
RESUME = """
resumed = leadlex_nb.resume(run.run_id, confirm=False, journal="journal.sqlite3", progress=False)
resumed.to_json("resumed.json", orient="split")
print("resumed", resumed.status.astype(str).value_counts().to_dict())
"""


def frame_for(sandbox: Sandbox, existing: int, unknown: int = 2) -> tuple[pd.DataFrame, list[str]]:
    """``existing`` seeded IDs, ``unknown`` UUIDs that do not exist, one junk value and one repeat."""
    ids = sandbox.seed(existing)
    values = [*ids, *(str(uuid.uuid4()) for _ in range(unknown)), "not-a-uuid", ids[0].upper()]
    return pd.DataFrame({"contact_id": values}), ids


def files(frame: pd.DataFrame) -> dict[str, str]:
    return {"frame.json": frame.to_json(orient="split")}


def read_frame(root: Path, name: str) -> pd.DataFrame:
    return pd.read_json(root / name, orient="split", dtype={"contact_id": str, "status": str})


def run_id(lab) -> str:
    return (lab.root / "run_id.txt").read_text()


def delete_entries(sandbox: Sandbox) -> list[dict]:
    return [e for e in sandbox.execution_log() if e["path"].endswith("/bulk-delete") and e["dry_run"] is False]


def assert_each_batch_executed_once(sandbox: Sandbox) -> None:
    executed = Counter(e["idempotency_key"] for e in delete_entries(sandbox) if e["outcome"] == "executed")
    assert executed and set(executed.values()) == {1}, executed
    deleted = [cid for e in delete_entries(sandbox) for cid in (e["deleted_ids"] or ())]
    assert len(deleted) == len(set(deleted))


def assert_audit_clean(result: pd.DataFrame, sandbox: Sandbox, before: set[str], run_id: str) -> None:
    report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=run_id)
    assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0), report


def test_delete_click_deletes_exactly_the_plan_and_leaves_a_static_summary(open_notebook, sandbox, lab) -> None:
    frame, ids = frame_for(sandbox, 300)
    keep = set(sandbox.seed(20))  # in the workspace, not in the frame
    before = sandbox.existing_ids()
    notebook = open_notebook([SETUP, CALL.format(extra=""), SAVE], sandbox, files(frame))
    notebook.run_cells(3)  # the env cell, the setup, the call: it returns with the panel showing

    delete = notebook.button("Delete 300 contacts")
    delete.wait_for()
    panel = notebook.output_text(2)
    for count, label in [(300, "would delete"), (2, "not found"), (1, "invalid"), (1, "repeated rows")]:
        assert re.search(rf"^{count}\s+\W\s*{label}", panel, flags=re.M), (label, panel)
    assert "Deletion is permanent" in panel and "Plan fingerprint" in panel
    assert sandbox.api_key not in panel
    assert delete_entries(sandbox) == [] and sandbox.existing_ids() == before  # nothing yet
    notebook.screenshot("panel")

    clicked = time.time()
    delete.click()
    notebook.wait_text("Done: 300 contacts deleted", index=2)
    first_delete = min(e["at"] for e in delete_entries(sandbox))
    (notebook.artifacts.parent / "click-to-first-delete.txt").write_text(f"{first_delete - clicked:.3f} s\n")
    notebook.screenshot("summary")

    notebook.run_cell(3)
    notebook.wait_cell_done(3)
    result = read_frame(lab.root, "result.json")
    assert sandbox.existing_ids() == keep
    deleted = set(result.loc[result["status"] == "deleted", "contact_id"])
    assert deleted == set(ids)
    assert Counter(result["status"]) == Counter({"deleted": 301, "not_found": 2, "invalid": 1})
    assert_audit_clean(result, sandbox, before, run_id(lab))
    assert_each_batch_executed_once(sandbox)

    notebook.save()
    saved = lab.read_notebook(notebook.name)
    panel_output = saved.cells[2].outputs
    assert any("Done: 300 contacts deleted" in o.get("data", {}).get("text/html", "") for o in panel_output)
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in panel_output)
    assert sandbox.api_key not in json.dumps(saved)


def test_cancel_sends_nothing_and_planned_rows_end_not_sent(open_notebook, sandbox, lab) -> None:
    frame, _ = frame_for(sandbox, 120)
    before = sandbox.existing_ids()
    notebook = open_notebook([SETUP, CALL.format(extra=""), SAVE], sandbox, files(frame))
    notebook.run_cells(3)
    notebook.button("Delete 120 contacts").wait_for()
    notebook.click("Cancel")
    notebook.wait_text("Cancelled: nothing was sent", index=2)
    notebook.run_cell(3)
    notebook.wait_cell_done(3)
    result = read_frame(lab.root, "result.json")
    assert Counter(result["status"]) == Counter({"not_sent": 121, "not_found": 2, "invalid": 1})
    assert_audit_clean(result, sandbox, before, run_id(lab))
    assert delete_entries(sandbox) == []
    assert sandbox.existing_ids() == before


def test_double_click_and_a_second_panel_of_the_same_plan_delete_once(open_notebook, sandbox, lab) -> None:
    frame, ids = frame_for(sandbox, 300)
    before = sandbox.existing_ids()
    cells = [SETUP, CALL.format(extra=", batch_size=50"), "run  # the same handle, shown again", SAVE]
    notebook = open_notebook(cells, sandbox, files(frame))
    notebook.run_cells(4)
    notebook.button("Delete 300 contacts", 1).wait_for()
    notebook.screenshot("two-panels")
    # Two clicks on each panel's Delete button in one tick of the page: all four reach the kernel
    # before it can disable anything.
    clicked = notebook.page.evaluate("""() => {
        const buttons = [...document.querySelectorAll('button')]
            .filter(b => b.textContent.trim() === 'Delete 300 contacts');
        for (const b of buttons) { b.click(); b.click(); }
        return buttons.length;
    }""")
    assert clicked == 2
    notebook.wait_text("Done: 300 contacts deleted", index=2)
    notebook.wait_text("Done: 300 contacts deleted", index=3)
    notebook.run_cell(4)
    notebook.wait_cell_done(4)
    result = read_frame(lab.root, "result.json")
    assert set(result.loc[result["status"] == "deleted", "contact_id"]) == set(ids)
    assert sandbox.existing_ids() == before - set(ids)
    entries = delete_entries(sandbox)
    assert len(entries) == 6  # 300 IDs in batches of 50, each sent once
    assert_audit_clean(result, sandbox, before, run_id(lab))
    assert_each_batch_executed_once(sandbox)


def test_stop_mid_deletion_leaves_honest_rows_and_resume_finishes(open_notebook, sandbox, lab) -> None:
    frame, ids = frame_for(sandbox, 200)
    before = sandbox.existing_ids()
    cells = [SETUP, CALL.format(extra=", batch_size=20, concurrency=1"), SAVE, RESUME]
    notebook = open_notebook(cells, sandbox, files(frame))
    notebook.run_cells(3)
    delete = notebook.button("Delete 200 contacts")
    delete.wait_for()
    sandbox.set_faults(Faults(latency=0.5))  # the deletion: 10 requests of half a second, one at a time
    delete.click()
    deadline = time.monotonic() + 30
    while not any(e["outcome"] == "executed" for e in delete_entries(sandbox)):
        assert time.monotonic() < deadline, "no delete request executed"
        time.sleep(0.05)
    notebook.button("Stop").wait_for()
    notebook.screenshot("deleting")
    notebook.click("Stop")
    notebook.wait_text("Stopped:", index=2, timeout_ms=30_000)
    notebook.screenshot("stopped")
    sandbox.set_faults(None)

    notebook.run_cell(3)
    notebook.wait_cell_done(3)
    result = read_frame(lab.root, "result.json")
    statuses = Counter(result["status"])
    assert 0 < statuses["deleted"] < 201 and statuses["not_sent"] > 0, statuses
    assert set(statuses) <= {"deleted", "not_sent", "unknown", "not_found", "invalid"}
    assert_audit_clean(result, sandbox, before, run_id(lab))
    assert_each_batch_executed_once(sandbox)
    deleted_now = before - sandbox.existing_ids()
    assert set(result.loc[result["status"] == "deleted", "contact_id"]) == deleted_now
    assert not set(result.loc[result["status"] == "not_sent", "contact_id"]) & deleted_now

    notebook.run_cell(4)
    notebook.wait_cell_done(4)
    resumed = read_frame(lab.root, "resumed.json")
    assert Counter(resumed["status"]) == Counter({"deleted": 201, "not_found": 2, "invalid": 1})
    assert_audit_clean(resumed, sandbox, before, run_id(lab))
    assert sandbox.existing_ids() == before - set(ids)
    assert_each_batch_executed_once(sandbox)
