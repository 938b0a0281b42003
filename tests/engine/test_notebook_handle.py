"""The notebook's deletion handle, driven from code against the sandbox over real sockets.

No browser and no kernel: ``notebook.bulk_delete(..., widgets=True)`` builds the same panel widgets
a kernel shows (ipywidgets works without a frontend), so its buttons are clicked from code here.
The browser tests (tests/browser) click the same buttons in JupyterLab.
"""

from __future__ import annotations

import _thread
import asyncio
import html
import signal
import threading
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import leadlex_nb
from leadlex_nb import notebook
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.errors import (
    AuthenticationError,
    ConfigurationError,
    LeadLexError,
    NothingToDeleteError,
    QuotaError,
    RunInterrupted,
)
from leadlex_nb.notebook import DeletionRun, ResultPending, WaitTimeout
from leadlex_nb.sandbox import Faults, Profile, Sandbox


def options(sandbox: Sandbox, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"api_key": sandbox.api_key, "base_url": sandbox.base_url, "journal": tmp_path / "journal.sqlite3",
            "progress": False, **extra}


def frame_for(sandbox: Sandbox, n: int) -> tuple[pd.Series, list[str]]:
    """``n`` existing IDs, 2 unknown ones, one junk value and one repeat."""
    ids = sandbox.seed(n)
    values = [*ids, str(uuid.uuid4()), str(uuid.uuid4()), "not-a-uuid", ids[0].upper()]
    return pd.Series(values, name="contact_id"), ids


def start(sandbox: Sandbox, tmp_path: Path, values: pd.Series, **extra: Any) -> DeletionRun:
    run = notebook.bulk_delete(values, options(sandbox, tmp_path, **extra), widgets=True)
    assert isinstance(run, DeletionRun)
    return run


def deletes(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.execution_log() if e["path"].endswith("/bulk-delete") and e["dry_run"] is False]


def assert_clean(result: pd.DataFrame, sandbox: Sandbox, before: set[str], run_id: str) -> None:
    report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=run_id)
    assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0), report
    executed = Counter(e["idempotency_key"] for e in deletes(sandbox) if e["outcome"] == "executed")
    assert set(executed.values()) <= {1}


def test_the_call_returns_a_handle_after_the_dry_run_and_sends_no_delete(sandbox: Sandbox, tmp_path: Path) -> None:
    values, _ = frame_for(sandbox, 120)
    before = sandbox.existing_ids()
    run = start(sandbox, tmp_path, values)

    assert run.status == "awaiting_decision"
    assert run.plan.to_delete == 120 and run.plan.counts == {"would_delete": 120, "not_found": 2}
    assert run.run_id == run.plan.run_id
    assert run.dry_run_result is not None and len(run.dry_run_result) == len(values)
    assert set(run.dry_run_result["status"].astype(str)) == {"would_delete", "not_found", "invalid"}
    assert deletes(sandbox) == [] and sandbox.existing_ids() == before
    with pytest.raises(ResultPending, match="awaits a decision"):
        _ = run.result
    started = time.monotonic()
    with pytest.raises(ResultPending, match="nobody can click"):
        run.wait()
    assert time.monotonic() - started < 1  # at once: a blocked cell could never receive the click
    assert "awaiting_decision" in repr(run) and "120 contacts planned" in repr(run)
    run.cancel().wait(30)


def test_confirm_from_code_deletes_exactly_the_plan(sandbox: Sandbox, tmp_path: Path) -> None:
    values, ids = frame_for(sandbox, 300)
    others = set(sandbox.seed(10))
    before = sandbox.existing_ids()
    run = start(sandbox, tmp_path, values, batch_size=100)

    result = run.confirm().wait(30)

    assert run.status == "finished" and run.error is None
    assert run.result is result
    assert sandbox.existing_ids() == others
    assert set(result.loc[result["status"] == "deleted", "contact_id"]) == set(ids)
    assert Counter(result["status"].astype(str)) == Counter({"deleted": 301, "not_found": 2, "invalid": 1})
    assert list(result.index) == list(values.index)
    assert len(deletes(sandbox)) == 3
    assert_clean(result, sandbox, before, run.run_id)
    assert run.confirm() is run  # the same decision again: nothing happens
    with pytest.raises(LeadLexError, match="already started"):
        run.cancel()


def test_cancel_sends_nothing_and_planned_rows_end_not_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    values, _ = frame_for(sandbox, 50)
    before = sandbox.existing_ids()
    run = start(sandbox, tmp_path, values)

    run._panel.cancel_button.click()
    result = run.wait(30)

    assert run.status == "cancelled" and run.error is None
    assert deletes(sandbox) == [] and sandbox.existing_ids() == before
    assert Counter(result["status"].astype(str)) == Counter({"not_sent": 51, "not_found": 2, "invalid": 1})
    assert run._panel.delete_button.disabled and run._panel.cancel_button.disabled
    assert "Cancelled: nothing was sent" in run._panel.message.value
    run.cancel()  # again: nothing happens
    with pytest.raises(LeadLexError, match="cancelled"):
        run.confirm()
    assert_clean(result, sandbox, before, run.run_id)


def test_many_clicks_and_confirms_at_once_run_the_deletion_once(sandbox: Sandbox, tmp_path: Path) -> None:
    values, ids = frame_for(sandbox, 200)
    before = sandbox.existing_ids()
    run = start(sandbox, tmp_path, values, batch_size=50)
    barrier = threading.Barrier(8)

    def press(i: int) -> None:
        barrier.wait()
        if i % 2:
            run._panel.delete_button.click()
        else:
            run.confirm()

    threads = [threading.Thread(target=press, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = run.wait(30)

    assert len(deletes(sandbox)) == 4  # 200 IDs in batches of 50, each sent once
    assert sandbox.existing_ids() == before - set(ids)
    assert_clean(result, sandbox, before, run.run_id)


def test_two_handles_of_the_same_plan_never_both_delete(sandbox: Sandbox, tmp_path: Path) -> None:
    values, ids = frame_for(sandbox, 100)
    before = sandbox.existing_ids()
    first = start(sandbox, tmp_path, values)
    second = start(sandbox, tmp_path, values)  # the cell run again before anyone clicked
    assert first.plan.fingerprint == second.plan.fingerprint

    first.confirm()
    second._panel.delete_button.click()
    second_result = second.wait(30)
    first.wait(30)

    assert second.status == "cancelled"
    assert "already confirmed in run " + first.run_id in second._summary_text()
    assert set(second_result["status"].astype(str)) <= {"not_sent", "not_found", "invalid"}
    assert {e["idempotency_key"].split("-")[1] for e in deletes(sandbox)} == {first.run_id}
    assert sandbox.existing_ids() == before - set(ids)


def test_stop_mid_deletion_keeps_an_honest_partial_result_and_resume_finishes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    values, ids = frame_for(sandbox, 200)
    before = sandbox.existing_ids()
    run = start(sandbox, tmp_path, values, batch_size=20, concurrency=1)
    sandbox.set_faults(Faults(latency=0.3))
    run._panel.delete_button.click()
    assert run.status == "deleting"
    assert not run._panel.stop_button.layout.display  # Stop shows once the deletion runs
    with pytest.raises(ResultPending, match="deletion is running"):
        _ = run.result
    with pytest.raises(WaitTimeout):
        run.wait(0.05)
    deadline = time.monotonic() + 20
    while not any(e["outcome"] == "executed" for e in deletes(sandbox)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    run._panel.stop_button.click()
    partial = run.wait(30)

    assert run.status == "stopped"
    assert isinstance(run.error, RunInterrupted) and f"leadlex_nb.resume({run.run_id!r})" in str(run.error)
    statuses = Counter(partial["status"].astype(str))
    assert 0 < statuses["deleted"] < 201 and statuses["not_sent"] > 0
    assert "Stopped: the Stop button was clicked" in run._panel.message.value
    assert_clean(partial, sandbox, before, run.run_id)

    sandbox.set_faults(None)
    resumed = leadlex_nb.resume(run.run_id, confirm=False, **options(sandbox, tmp_path))
    assert set(resumed.loc[resumed["status"] == "deleted", "contact_id"]) == set(ids)
    assert sandbox.existing_ids() == before - set(ids)
    assert_clean(resumed, sandbox, before, run.run_id)


def test_a_401_during_the_deletion_shows_in_the_panel_and_keeps_the_partial_result(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    key = sandbox.create_key()
    values, _ = frame_for(sandbox, 60)
    before = sandbox.existing_ids()
    run = start(sandbox, tmp_path, values, api_key=key)
    sandbox.revoke_key(key)
    result = run.confirm().wait(30)

    assert run.status == "stopped" and isinstance(run.error, AuthenticationError)
    assert run.result is result and set(result["status"].astype(str)) <= {"not_sent", "not_found", "invalid"}
    shown = html.unescape(run._panel.message.value)
    assert "Stopped: the API key was refused (401" in shown
    assert f"leadlex_nb.resume({run.run_id!r})" in shown
    assert sandbox.existing_ids() == before


def test_errors_before_the_plan_raise_at_once_with_a_short_traceback(sandbox: Sandbox, tmp_path: Path) -> None:
    values, _ = frame_for(sandbox, 20)

    with pytest.raises(AuthenticationError) as caught:
        notebook.bulk_delete(values, options(sandbox, tmp_path, api_key="wbk_" + "0" * 40), widgets=True)
    assert caught.value.result is not None  # it had sent its first request
    files = {Path(frame.filename).name for frame in traceback.extract_tb(caught.value.__traceback__)}
    assert files <= {"notebook.py", "test_notebook_handle.py", "python_api.py", "raises.py"}, files

    with pytest.raises(ConfigurationError, match="key"):
        notebook.bulk_delete(values, {**options(sandbox, tmp_path), "api_key": None}, widgets=True)
    with pytest.raises(NothingToDeleteError):
        notebook.bulk_delete(pd.Series(["junk", None]), options(sandbox, tmp_path), widgets=True)


def test_the_kernel_stop_button_during_the_dry_run_raises_run_interrupted_with_the_partial_result(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    values, _ = frame_for(sandbox, 200)
    sandbox.set_faults(Faults(latency=0.3))

    def press_stop() -> None:  # what ipykernel's interrupt does to a running cell
        deadline = time.monotonic() + 20
        while not sandbox.execution_log() and time.monotonic() < deadline:
            time.sleep(0.02)
        _thread.interrupt_main()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=press_stop, daemon=True).start()
        with pytest.raises(RunInterrupted, match="resume") as caught:
            notebook.bulk_delete(values, options(sandbox, tmp_path, batch_size=20, concurrency=1), widgets=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert caught.value.result is not None and len(caught.value.result) == len(values)
    assert deletes(sandbox) == []


def test_nothing_deletable_returns_the_frame_without_a_handle(sandbox: Sandbox, tmp_path: Path) -> None:
    unknown = pd.Series([str(uuid.uuid4()) for _ in range(5)])
    result = notebook.bulk_delete(unknown, options(sandbox, tmp_path), widgets=True)
    assert isinstance(result, pd.DataFrame)
    assert set(result["status"].astype(str)) == {"not_found"}
    assert deletes(sandbox) == []


def test_a_quota_that_cannot_cover_the_run_raises_before_any_plan(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_profile(Profile("small", per_window=100, window_seconds=1.0, daily_quota=4))
    values, _ = frame_for(sandbox, 200)
    with pytest.raises(QuotaError):
        notebook.bulk_delete(values, options(sandbox, tmp_path, batch_size=50), widgets=True)
    assert deletes(sandbox) == []


def test_the_accessor_hands_over_only_in_a_kernel_with_confirm_omitted(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, ids = frame_for(sandbox, 10)
    frame = values.to_frame()
    opts = options(sandbox, tmp_path)
    assert not notebook.wants_handle({})  # pytest is no kernel
    monkeypatch.setattr(notebook, "in_kernel", lambda: True)
    monkeypatch.setattr(notebook, "show", lambda bundle, display_id: None)

    assert isinstance(frame.leadlex.bulk_delete("contact_id", dry_run=True, **opts), pd.DataFrame)
    assert deletes(sandbox) == []
    run = frame.leadlex.bulk_delete("contact_id", **opts)
    assert isinstance(run, DeletionRun)
    run.cancel().wait(30)
    run = frame["contact_id"].leadlex.bulk_delete(**opts)
    assert isinstance(run, DeletionRun)
    run.cancel().wait(30)
    run = asyncio.run(frame.leadlex.abulk_delete("contact_id", **opts))
    assert isinstance(run, DeletionRun)
    run.cancel().wait(30)
    assert deletes(sandbox) == []
    done = frame.leadlex.bulk_delete("contact_id", confirm=False, **opts)
    assert isinstance(done, pd.DataFrame) and set(done.loc[done["status"] == "deleted", "contact_id"]) == set(ids)


async def test_the_async_call_returns_the_same_handle_without_blocking_the_loop(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    values, ids = frame_for(sandbox, 40)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    sandbox.set_faults(Faults(latency=0.2))  # a dry run long enough for the caller's loop to tick
    run = await notebook.abulk_delete(values, options(sandbox, tmp_path), widgets=True)
    ticker.cancel()
    assert isinstance(run, DeletionRun) and run.status == "awaiting_decision"
    assert ticks > 5
    sandbox.set_faults(None)
    result = await asyncio.to_thread(run.confirm().wait, 30)
    assert set(result.loc[result["status"] == "deleted", "contact_id"]) == set(ids)


def test_the_panel_and_its_text_never_show_the_key(sandbox: Sandbox, tmp_path: Path) -> None:
    values, _ = frame_for(sandbox, 30)
    run = start(sandbox, tmp_path, values)
    pending = run._bundle()
    widgets_text = " ".join(str(w.value) for w in (run._panel.plan_view, run._panel.message, run._panel.bar_label))
    run.confirm().wait(30)
    final = run._bundle()
    shown = " ".join([str(pending), widgets_text, str(final), run._panel.message.value, repr(run)])
    assert sandbox.api_key not in shown
    assert "application/vnd.jupyter.widget-view+json" in pending
    assert "application/vnd.jupyter.widget-view+json" not in final  # static: survives a saved notebook
    assert "Done: 30 contacts deleted" in final["text/plain"] and "Done: 30 contacts deleted" in final["text/html"]
