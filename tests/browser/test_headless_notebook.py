"""The notebook flow with no frontend at all: nbclient executes the notebook in a real ipykernel.

Nobody can click: the default call must return (never hang), delete nothing, say in its text output
what to do, and leave no traceback and no red stderr box. ``run.confirm()`` in code still works.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

KERNEL_NAME = "leadlex-nb-tests"  # the kernelspec of the kernel_dir fixture (tests/conftest.py)
CELL_TIMEOUT = 60  # a cell waiting for a click nobody can give fails here instead of hanging

pytestmark = pytest.mark.filterwarnings(r"ignore:Unclosed socket <zmq\.asyncio\.Socket:ResourceWarning")

SETUP = """
import json
import pandas as pd
import leadlex_nb
from leadlex_nb.sandbox import Sandbox

sandbox = Sandbox(seed_contacts=300).start()
ids = sorted(sandbox.existing_ids())
frame = pd.DataFrame({"contact_id": ids + ["not-a-uuid"]})
options = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal="journal.sqlite3")

def deletes():
    return sum(1 for e in sandbox.execution_log() if e["path"].endswith("/bulk-delete") and e["dry_run"] is False)
"""
CALL = 'run = frame.leadlex.bulk_delete("contact_id", **options)'
SHOWN = 'frame.leadlex.bulk_delete("contact_id", **options)  # not assigned: the call shows its panel once'
PENDING = """
report = {"status": run.status, "deletes": deletes(), "remaining": len(sandbox.existing_ids())}
for name, attempt in [("result", lambda: run.result), ("wait", lambda: run.wait())]:
    try:
        attempt()
        report[name] = "returned"
    except leadlex_nb.LeadLexError as error:
        report[name] = f"{type(error).__name__}: {error}"
print("REPORT " + json.dumps(report))
"""
CONFIRM = """
result = run.confirm().wait(60)
print("CONFIRMED " + json.dumps({"status": run.status, "deletes": deletes(), "remaining": len(sandbox.existing_ids()),
                                 "statuses": result.status.astype(str).value_counts().to_dict()}))
"""
STOP = "sandbox.stop()"



@pytest.fixture
def execute(
    kernel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[list[str]], nbformat.NotebookNode]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEADLEX_JOURNAL", raising=False)

    def run(cells: list[str]) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in cells])
        specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
        manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        client = NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT, shutdown_kernel="immediate",
                                resources={"metadata": {"path": str(tmp_path)}})
        try:
            client.execute()  # raises CellExecutionError on an error, CellTimeoutError on a hang
        finally:
            del client, manager
            gc.collect()
        return nb

    return run


def texts(cell: nbformat.NotebookNode) -> list[str]:
    out = []
    for output in cell.outputs:
        if output["output_type"] == "stream":
            out.append(output["text"])
        elif "data" in output:
            out.append(output["data"].get("text/plain", ""))
    return out


def line(cell: nbformat.NotebookNode, prefix: str) -> dict:
    found = next(t for text in texts(cell) for t in text.splitlines() if t.startswith(prefix))
    return json.loads(found.removeprefix(prefix))


def test_headless_default_call_returns_a_handle_deletes_nothing_and_says_what_to_do(execute) -> None:
    nb = execute([SETUP, CALL, PENDING, SHOWN, STOP])
    call = nb.cells[1]
    assert not [o for o in call.outputs if o["output_type"] in ("error", "stream") and o.get("name") != "stdout"]
    text = "\n".join(texts(call))
    assert "NOTHING HAS BEEN DELETED" in text
    assert "run.confirm()" in text and "confirm=False" in text
    assert "Delete 300 contacts" in text
    assert "dry run: 300 IDs in" in text  # the progress bar left a static line
    assert "Traceback" not in text

    report = line(nb.cells[2], "REPORT ")
    assert report["status"] == "awaiting_decision"
    assert report["deletes"] == 0 and report["remaining"] == 300
    assert report["result"].startswith("ResultPending: nothing has been deleted")
    assert report["wait"].startswith("ResultPending: the plan awaits a decision")

    shown = [o for o in nb.cells[3].outputs if "NOTHING HAS BEEN DELETED" in o.get("data", {}).get("text/plain", "")]
    assert len(shown) == 1  # the call showed its panel; the cell's value did not show it again


def test_headless_confirm_in_code_deletes_and_updates_the_panel_output(execute) -> None:
    nb = execute([SETUP, CALL, CONFIRM, STOP])
    confirmed = line(nb.cells[2], "CONFIRMED ")
    assert (confirmed["status"], confirmed["deletes"], confirmed["remaining"]) == ("finished", 1, 0)
    assert {k: v for k, v in confirmed["statuses"].items() if v} == {"deleted": 300, "invalid": 1}
    panel = "\n".join(texts(nb.cells[1]))
    assert "Done: 300 contacts deleted" in panel, panel
