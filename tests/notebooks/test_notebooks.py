"""The notebooks, executed headless in a real Jupyter kernel (nbclient + ipykernel).

This is the path with no frontend at all: nothing can click or type, so every cell must finish,
and nothing may be deleted that was not confirmed in code.

The notebooks are committed without outputs, but users run them and save them: the check reads the
version committed at HEAD, never the working tree, so a saved run never fails ``make test``. The
executed copies go to ``out/notebooks/`` (ignored by git), never into ``notebooks/``.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from leadlex_nb.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
EXECUTED = REPO / "out" / "notebooks"  # executed copies, for people to open; ignored by git
CELL_TIMEOUT = 120  # seconds per cell; a cell waiting for an answer nobody can give fails the test
KERNEL_NAME = "leadlex-nb-tests"  # the kernelspec of the kernel_dir fixture (tests/conftest.py)
STRIP_HINT = "jupyter nbconvert --clear-output --inplace {path}"

# jupyter_client's Session.send wraps each socket in a throw-away zmq shadow socket, and pyzmq 27
# warns when a shadow is collected unclosed. A shadow owns nothing: the real sockets are closed.
pytestmark = pytest.mark.filterwarnings(r"ignore:Unclosed socket <zmq\.asyncio\.Socket:ResourceWarning")



@pytest.fixture
def run_notebook(
    kernel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., nbformat.NotebookNode]:
    # Anything that falls back to a default location writes into tmp_path, where the test can see it.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEADLEX_JOURNAL", raising=False)

    def run(
        nb: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT, allow_errors: bool = False, **kernel_options: object
    ) -> nbformat.NotebookNode:
        specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
        manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        client = NotebookClient(
            nb, km=manager, timeout=timeout, shutdown_kernel="immediate", allow_errors=allow_errors,
            resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
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


def _cell(nb: nbformat.NotebookNode, tag: str) -> int:
    found = [i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]
    assert len(found) == 1, f"expected one cell tagged {tag!r}, found {len(found)}"
    return found[0]


def _errors(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, o) for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o["output_type"] == "error"]


def _save(nb: nbformat.NotebookNode, name: str) -> Path:
    EXECUTED.mkdir(parents=True, exist_ok=True)
    path = EXECUTED / name
    nbformat.write(nb, path)
    return path


# -- what is committed ---------------------------------------------------------------------------


class NotCommitted(Exception):
    """There is no committed version to check: not a git checkout, no git, or a file not committed yet."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise NotCommitted("git is not installed")
    # The checkout that holds `repo`, even when the tests run from a git hook (which sets GIT_DIR & co).
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    return subprocess.run([git, "-C", str(repo), *args], capture_output=True, text=True, encoding="utf-8", env=env)


def committed_notebook(repo: Path, path: str) -> nbformat.NotebookNode:
    """``path`` (relative to ``repo``) as committed at HEAD, whatever the working tree holds.

    Raises :class:`NotCommitted` outside a git checkout (a source archive) or for a file that HEAD
    does not have yet.
    """
    inside = _git(repo, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        reason = (inside.stderr.strip().splitlines() or ["not a git checkout"])[-1]
        raise NotCommitted(f"{repo} is not in a usable git checkout ({reason})")
    shown = _git(repo, "show", f"HEAD:./{path}")  # ./: relative to `repo`, wherever the checkout's root is
    if shown.returncode != 0:
        raise NotCommitted(f"HEAD has no {path} yet ({shown.stderr.strip()})")
    return nbformat.reads(shown.stdout, as_version=4)


def assert_no_outputs(nb: nbformat.NotebookNode, path: str) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path} has no code cell"
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (
        f"{path} is committed with outputs or execution counts in cells {dirty}. Notebooks are committed "
        f"without them: run `{STRIP_HINT.format(path=path)}` and commit again."
    )


@pytest.mark.parametrize("name", ["quickstart.ipynb", "real-workspace.ipynb"])
def test_notebooks_are_valid(name: str) -> None:
    # The working tree may hold a saved run (outputs and all): that is the user's business, and still valid.
    nbformat.validate(nbformat.read(NOTEBOOKS / name, as_version=4))


@pytest.mark.parametrize("name", ["quickstart.ipynb", "real-workspace.ipynb"])
def test_committed_notebooks_carry_no_outputs(name: str) -> None:
    path = f"notebooks/{name}"
    try:
        nb = committed_notebook(REPO, path)
    except NotCommitted as reason:
        pytest.skip(str(reason))
    nbformat.validate(nb)
    assert_no_outputs(nb, path)


def _with_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` as a user leaves it after Run All and Save: outputs and execution counts in every code cell."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output of cell {count}\n")]
    return nb


def test_a_saved_run_in_the_working_tree_does_not_fail_the_committed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never find a checkout above tmp_path
    checkout = tmp_path / "checkout"
    repo = checkout / "leadlex-nb"  # the project in a subfolder of a larger checkout: HEAD:./ must still find it
    (repo / "notebooks").mkdir(parents=True)
    notebook = repo / "notebooks" / "quickstart.ipynb"
    path = "notebooks/quickstart.ipynb"

    def git(*args: str) -> None:
        done = _git(repo, "-c", "user.name=leadlex-tests", "-c", "user.email=tests@example.invalid",
                    "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args)
        assert done.returncode == 0, done.stderr

    with pytest.raises(NotCommitted, match="not in a usable git checkout"):  # e.g. a source archive
        committed_notebook(repo, path)

    clean = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    nbformat.write(_with_outputs(clean), notebook)  # a run saved before the first commit: nothing to check yet
    done = _git(checkout, "init", "-q")
    assert done.returncode == 0, done.stderr
    with pytest.raises(NotCommitted, match="HEAD has no"):
        committed_notebook(repo, path)

    for cell in clean.cells:  # whatever the working tree held: commit it without outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(clean, notebook)
    git("add", path)
    git("commit", "-q", "-m", "quickstart without outputs")

    # The user runs the notebook and saves it: outputs in the working tree, HEAD unchanged.
    nbformat.write(_with_outputs(clean), notebook)
    saved = nbformat.read(notebook, as_version=4)
    with pytest.raises(AssertionError, match="committed with outputs"):
        assert_no_outputs(saved, path)  # what the old check, which read the working tree, saw
    assert_no_outputs(committed_notebook(repo, path), path)  # what is committed: still clean

    # Committing the outputs is what fails, with the command that strips them.
    git("add", path)
    git("commit", "-q", "-m", "oops: outputs")
    with pytest.raises(AssertionError, match=re.escape(STRIP_HINT.format(path=path))):
        assert_no_outputs(committed_notebook(repo, path), path)


# -- quickstart.ipynb, executed ------------------------------------------------------------------

# Run in the notebook's kernel by the tests only, before its clean-up cell: the sandbox's ground truth,
# into a file in the kernel's working directory (the key never goes into an output).
PROBE = """
from pathlib import Path as _Path
import json as _json

_probe = {
    "api_key": sandbox.api_key,
    "workdir": str(workdir),
    "journal": os.environ.get("LEADLEX_JOURNAL"),
    "all_ids": sorted(contacts["contact_id"]),
    "stale_ids": sorted(stale["contact_id"]),
    "locked_id": locked_id,
    "input_ids": to_delete["contact_id"].tolist(),
    "remaining": sorted(sandbox.existing_ids()),
    "requests": [{k: e[k] for k in ("path", "dry_run", "status", "deleted_ids")} for e in sandbox.execution_log()],
    "plan": {"to_delete": run.plan.to_delete, "counts": dict(run.plan.counts)},
    "run_status": run.status,
}
if "result" in globals():
    _probe["result"] = _json.loads(result.to_json(orient="split"))
if "back" in globals():
    _probe["restored_new"] = back["new_contact_id"].tolist()
    _probe["restored_statuses"] = back["status"].astype(str).tolist()
    _probe["again_statuses"] = again["status"].astype(str).tolist()
if "resumed" in globals():
    _probe["resume_requests"] = resumed.attrs["leadlex"]["requests"]
    _probe["resumed_statuses"] = resumed["status"].astype(str).tolist()
_Path("probe.json").write_text(_json.dumps(_probe))
"""


def _quickstart(confirm_in_code: bool) -> nbformat.NotebookNode:
    """quickstart.ipynb with its parameter set as papermill sets it: a cell after the one tagged `parameters`."""
    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    for cell in nb.cells:  # a copy saved after a run: start from a clean slate
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    injected = nbformat.v4.new_code_cell(f"CONFIRM_IN_CODE = {confirm_in_code}")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(_cell(nb, "parameters") + 1, injected)
    return nb


def _probe_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(PROBE.strip())
    cell.metadata["tags"] = ["test-probe"]
    return cell


def _check_clean_and_keyless(nb: nbformat.NotebookNode, key: str) -> None:
    text = nbformat.writes(nb)
    assert key not in text, "the API key appears in the executed notebook"
    assert "wbk_" not in text, "an API key (wbk_...) appears in the executed notebook"
    streams = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "stream"]
    assert not [o["text"] for o in streams if o["name"] == "stderr"], "routine output belongs on stdout, not stderr"


def test_quickstart_confirmed_in_code_deletes_exactly_the_stale_contacts(run_notebook, tmp_path: Path) -> None:
    nb = _quickstart(confirm_in_code=True)
    nb.cells.insert(_cell(nb, "cleanup"), _probe_cell())
    run_notebook(nb)
    probe = json.loads((tmp_path / "probe.json").read_text())
    nb.cells.pop(_cell(nb, "test-probe"))
    saved = _save(nb, "quickstart.ipynb")

    assert not _errors(nb), f"errors in {saved}"
    _check_clean_and_keyless(nb, probe["api_key"])

    everyone, stale, locked = set(probe["all_ids"]), set(probe["stale_ids"]), probe["locked_id"]
    assert 0 < len(stale) < len(everyone)  # a real filter, neither empty nor everything
    assert locked in stale
    planned = stale - {locked}

    # The dry run came first and changed nothing; then each planned contact was deleted exactly once.
    deletes = [r for r in probe["requests"] if r["path"].endswith("/bulk-delete")]
    first_delete = next(i for i, r in enumerate(deletes) if r["dry_run"] is False)
    assert first_delete > 0 and all(r["dry_run"] is True for r in deletes[:first_delete])
    assert not [r for r in deletes if r["dry_run"] and r["deleted_ids"]]
    deleted = Counter(cid for r in deletes for cid in r["deleted_ids"])
    assert set(deleted) == planned and set(deleted.values()) == {1}

    # Ground truth: the stale contacts are gone except the locked one, and nothing else was touched;
    # the five restored at the end are back under new IDs, once, and the locked one was refused.
    restored = set(probe["restored_new"])
    assert len(restored) == 5 and not restored & everyone
    assert set(probe["remaining"]) == (everyone - planned) | restored
    assert probe["restored_statuses"] == ["restored"] * 5
    assert probe["again_statuses"] == ["already_restored"] * 5 + ["refused"]
    assert probe["plan"]["to_delete"] == len(planned)
    assert probe["plan"]["counts"] == {"would_delete": len(planned), "not_found": 1, "error": 1}
    assert probe["run_status"] == "finished"

    # The result: one row per input row, in order; the stale rows, then the six messy ones.
    frame = probe["result"]
    rows = [dict(zip(frame["columns"], values, strict=True)) for values in frame["data"]]
    assert frame["index"] == list(range(len(probe["input_ids"])))
    assert len(rows) == len(stale) + 6
    for row, given in zip(rows[: len(stale)], probe["input_ids"], strict=False):
        expected = ("error", "contact_locked") if given == locked else ("deleted", None)
        assert (row["status"], row["error_code"]) == expected, row
        assert row["contact_id"] == given and row["duplicate"] is False
    messy = [(r["status"], r["error_code"], r["duplicate"]) for r in rows[len(stale):]]
    assert messy == [("invalid", "invalid_id", False)] * 4 + [("not_found", None, False), ("deleted", None, True)]
    repeat = probe["input_ids"][-1]  # an upper-case repeat of a stale ID: normalised, sent once, deleted
    assert repeat != repeat.lower() and rows[-1]["contact_id"] == repeat.lower() and repeat.lower() in planned

    # What the reader sees: the panel's cell ends with the summary, which stays in the saved notebook.
    panel = _text(nb.cells[_cell(nb, "panel")])
    assert f"dry run: {len(stale) + 1:,} IDs" in panel  # the dry run's progress, left as a static line
    assert f"{len(planned):,} contacts deleted" in panel and "nothing has been deleted" not in panel.lower()

    # The journal: resuming the finished run sends nothing and gives the same statuses.
    assert probe["resume_requests"] == {}
    assert probe["resumed_statuses"] == [r["status"] for r in rows]
    assert probe["journal"] and Path(probe["journal"]).parent == Path(probe["workdir"])
    assert not Path(probe["workdir"]).exists(), "the clean-up cell left the journal behind"
    assert not (tmp_path / "xdg" / "leadlex-nb").exists(), "the quickstart wrote into the default journal"


def test_quickstart_left_to_the_click_deletes_nothing_headless_and_stops_at_the_decision(
    run_notebook, tmp_path: Path
) -> None:
    # CONFIRM_IN_CODE = False, as committed, and nobody to click: what papermill or nbclient would do.
    # nbclient stops at the first error; here the test lets it go on to its probe and the clean-up.
    nb = _quickstart(confirm_in_code=False)
    decide = _cell(nb, "decide")
    nb.cells[decide + 1:] = [_probe_cell(), nb.cells[_cell(nb, "cleanup")]]
    run_notebook(nb, allow_errors=True)  # CELL_TIMEOUT bounds every cell: a wait for a click fails here
    probe = json.loads((tmp_path / "probe.json").read_text())
    nb.cells.pop(_cell(nb, "test-probe"))
    saved = _save(nb, "quickstart-unconfirmed.ipynb")

    errors = _errors(nb)
    assert [(i, o["ename"]) for i, o in errors] == [(decide, "ResultPending")], f"see {saved}"
    assert "the plan awaits a decision" in errors[0][1]["evalue"] and "run.confirm()" in errors[0][1]["evalue"]
    _check_clean_and_keyless(nb, probe["api_key"])

    panel = _text(nb.cells[_cell(nb, "panel")])  # the text form of the panel says what to do
    assert "nothing has been deleted" in panel.lower() and "run.confirm()" in panel
    stale = set(probe["stale_ids"])
    assert f"Delete {len(stale) - 1:,} contacts" in panel

    assert probe["run_status"] == "awaiting_decision"
    assert not [r for r in probe["requests"] if r["path"].endswith("/bulk-delete") and r["dry_run"] is False]
    assert set(probe["remaining"]) == set(probe["all_ids"])
    assert not Path(probe["workdir"]).exists()


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
