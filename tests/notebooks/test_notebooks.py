"""The notebooks, executed headless in a real Jupyter kernel (nbclient + ipykernel).

This is the path with no frontend at all: nothing can click or type, so every cell must finish,
and nothing may be deleted that was not confirmed in code.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from leadlex_nb.sandbox import Sandbox

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT = 120  # seconds per cell; a cell waiting for an answer nobody can give fails the test
KERNEL_NAME = "leadlex-nb-tests"
SEEDED = 5000  # quickstart.ipynb seeds its sandbox with this many contacts

# jupyter_client's Session.send wraps each socket in a throw-away zmq shadow socket, and pyzmq 27
# warns when a shadow is collected unclosed. A shadow owns nothing: the real sockets are closed.
pytestmark = pytest.mark.filterwarnings(r"ignore:Unclosed socket <zmq\.asyncio\.Socket:ResourceWarning")


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A kernelspec pinned to this interpreter, so the kernel imports the same leadlex_nb as the tests
    # whatever kernels the machine or user has installed under the name "python3".
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL_NAME, "language": "python"}))
    return root


@pytest.fixture
def run_notebook(
    kernel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., nbformat.NotebookNode]:
    # Anything that falls back to a default location writes into tmp_path, where the test can see it.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEADLEX_JOURNAL", raising=False)

    def run(nb: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT, **kernel_options: object) -> nbformat.NotebookNode:
        specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
        manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        client = NotebookClient(
            nb, km=manager, timeout=timeout, shutdown_kernel="immediate",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        try:
            client.execute(**kernel_options)  # raises CellExecutionError on a cell error, CellTimeoutError on a hang
        finally:
            del client, manager
            gc.collect()  # collect the shadows (they sit in reference cycles) while the filter applies
        return nb

    return run


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


def _tagged(nb: nbformat.NotebookNode, tag: str) -> str:
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}"
    return _text(cells[0])


def _summary(text: str) -> dict[str, int]:
    # The text form of leadlex_nb.results.summarise(): "status\n deleted   12\n ..."
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", text, flags=re.M)}
    assert counts, f"no per-status summary in:\n{text}"
    return counts


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    return int(match.group(1))


@pytest.mark.parametrize("name", ["quickstart.ipynb", "real-workspace.ipynb"])
def test_committed_notebooks_are_valid_and_carry_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_quickstart_deletes_exactly_the_stale_contacts(run_notebook, tmp_path: Path) -> None:
    nb = run_notebook(nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4))
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]

    stale = _number(rf"stale contacts: (\d+) of {SEEDED}", _tagged(nb, "stale"))
    assert 0 < stale < SEEDED  # a real filter, neither empty nor everything
    # The notebook adds 6 rows: 4 invalid values, 1 unknown UUID, and 1 upper-case repeat of a stale
    # ID, which shares that ID's status (so stale + 1 rows carry it).
    dry = _summary(_tagged(nb, "dry-run-summary"))
    assert dry == {**dict.fromkeys(dry, 0), "would_delete": stale + 1, "not_found": 1, "invalid": 4}
    assert _number(r"after the dry run: (\d+)", _tagged(nb, "after-dry-run")) == SEEDED

    declined = _tagged(nb, "declined")
    assert "ConfirmationDeclined" in declined
    assert _number(r"still in the workspace: (\d+)", declined) == SEEDED
    assert _summary(declined)["not_sent"] == stale + 1

    done = _summary(_tagged(nb, "delete-summary"))
    assert done == {**dict.fromkeys(done, 0), "deleted": stale + 1, "not_found": 1, "invalid": 4}

    truth = _tagged(nb, "ground-truth")  # computed in the kernel from the sandbox's own database
    assert _number(r"deleted contacts: (\d+)", truth) == stale
    assert "deleted IDs equal the stale IDs: True" in truth
    assert _number(r"stale IDs still in the workspace: (\d+)", truth) == 0
    assert _number(r"contacts left in the workspace: (\d+)", truth) == SEEDED - stale

    resumed = _tagged(nb, "resume")
    assert "requests sent by resume: {}" in resumed  # a finished run resumes from the journal alone
    assert _summary(resumed)["deleted"] == stale + 1

    assert not (tmp_path / "xdg" / "leadlex-nb").exists(), "the quickstart wrote into the default journal"


def test_real_workspace_without_a_key_sends_nothing_and_says_what_to_do(
    run_notebook, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = set(sandbox.seed(50))
    monkeypatch.delenv("LEADLEX_API_KEY", raising=False)
    # Point the notebook at the sandbox: any request it sent would show in the execution log.
    monkeypatch.setenv("LEADLEX_BASE_URL", sandbox.base_url)

    nb = run_notebook(nbformat.read(NOTEBOOKS / "real-workspace.ipynb", as_version=4))

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "No API key" in _text(code[0]) and "LEADLEX_API_KEY" in _text(code[0])
    for cell in code[1:]:
        text = _text(cell)
        assert "skipped" in text or "no deletion run yet" in text, text
        assert "Traceback" not in text
    assert sandbox.execution_log() == []
    assert sandbox.existing_ids() == ids


DEFAULT_CONFIRM_CELLS = [
    """
import json, sys, time
import pandas as pd
import leadlex_nb
from leadlex_nb.sandbox import Sandbox

sandbox = Sandbox(seed_contacts=300).start()
ids = sorted(sandbox.existing_ids())
frame = pd.DataFrame({"contact_id": ids})
""",
    """
started = time.monotonic()
# confirm left out: the default, which in a kernel returns a deletion handle awaiting a click
run = frame.leadlex.bulk_delete("contact_id", api_key=sandbox.api_key, base_url=sandbox.base_url,
                                journal="journal.sqlite3", progress=False)
outcome = type(run).__name__
log = sandbox.execution_log()  # before the cancel: nothing may have been deleted without a decision
statuses = run.cancel().wait(30)["status"].astype(str).value_counts().to_dict()
report = {
    "outcome": outcome,
    "statuses": statuses,
    "seconds": time.monotonic() - started,
    "remaining": len(sandbox.existing_ids()),
    "seeded": len(ids),
    "delete_requests": sum(1 for e in log if e["path"].endswith("/bulk-delete") and e["dry_run"] is False),
    "dry_run_requests": sum(1 for e in log if e["path"].endswith("/bulk-delete") and e["dry_run"] is True),
    "deleted_on_server": sum(len(e["deleted_ids"] or ()) for e in log),
    "kernel_python": sys.executable,
}
sandbox.stop()
print("REPORT " + json.dumps(report))
""",
]


def test_default_confirm_in_a_kernel_returns_a_handle_without_deleting(run_notebook) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src.strip()) for src in DEFAULT_CONFIRM_CELLS])
    run_notebook(nb)  # CELL_TIMEOUT bounds the wait: a prompt nobody can answer fails here

    line = next(line for line in _text(nb.cells[-1]).splitlines() if line.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    assert Path(report["kernel_python"]).resolve() == Path(sys.executable).resolve()
    assert report["outcome"] == "DeletionRun"
    assert {k: v for k, v in report["statuses"].items() if v} == {"not_sent": report["seeded"]}
    assert report["dry_run_requests"] > 0  # it got as far as the plan, then waited for a decision
    assert report["delete_requests"] == 0
    assert report["deleted_on_server"] == 0
    assert report["remaining"] == report["seeded"] == 300


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_default_confirm_never_hangs_in_a_kernel_whose_stdin_is_a_terminal(run_notebook) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src.strip()) for src in DEFAULT_CONFIRM_CELLS])
        run_notebook(nb, timeout=15, stdin=terminal)  # the kernel process inherits the terminal as stdin
    finally:
        os.close(controller)
        os.close(terminal)
    line = next(line for line in _text(nb.cells[-1]).splitlines() if line.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    assert report["outcome"] == "DeletionRun"
    assert report["deleted_on_server"] == 0
