"""Interrupts from sync code in a running loop (a notebook kernel), and resuming after 24 hours."""

from __future__ import annotations

import _thread
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import leadlex_nb
from leadlex_nb import RunInterrupted
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Sandbox


def _interrupt_when_deleting(sandbox: Sandbox) -> threading.Thread:
    """Press 'stop' (KeyboardInterrupt in the main thread) once a delete has executed."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log()):
                _thread.interrupt_main()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


async def test_kernel_interrupt_of_a_sync_call_records_the_run_and_resume_finishes_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    existing = sandbox.seed(500)
    frame = pd.DataFrame({"c": existing[:400]})
    before = sandbox.existing_ids()
    opts = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=tmp_path / "j.sqlite3",
                progress=False, verbose=False, concurrency=2)
    sandbox.set_faults(Faults(latency=0.3))
    asyncio.get_running_loop()  # a running loop in this thread, like a kernel's

    # While a cell executes, ipykernel makes SIGINT raise KeyboardInterrupt (its stop button).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        watcher = _interrupt_when_deleting(sandbox)
        with pytest.raises(RunInterrupted) as caught:
            frame.leadlex.bulk_delete("c", confirm=False, batch_size=40, **opts)
        watcher.join()
    finally:
        signal.signal(signal.SIGINT, previous)

    partial = caught.value.result
    assert len(partial) == 400 and partial["status"].notna().all()
    assert "not_sent" in set(partial["status"].astype(str))
    # The frame the user holds is honest already: nothing the server executed reads not_sent.
    early = audit(partial, existed_before=before, exists_after=sandbox.existing_ids(),
                  execution_log=sandbox.execution_log(), run_id=caught.value.run_id)
    assert early["false_failure"] == 0 and "unknown" in set(partial["status"].astype(str))
    sandbox.set_faults(None)
    result = await leadlex_nb.aresume(caught.value.run_id, **opts)
    assert set(result["status"].astype(str)) == {"deleted"}
    report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=caught.value.run_id)
    assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0)


async def test_cancelling_during_the_deletion_reports_executed_batches_unknown_not_not_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Regression: 5,000 IDs, 0.5 s latency, cancelled 0.3 s after the first delete executed:
    # every row read not_sent while 2,000 contacts were gone on the server.
    existing = sandbox.seed(5000)
    before = sandbox.existing_ids()
    opts = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=tmp_path / "j.sqlite3",
                progress=False, verbose=False)
    sandbox.set_faults(Faults(latency=0.5))
    task = asyncio.ensure_future(pd.Series(existing).leadlex.abulk_delete(confirm=False, **opts))
    while not any(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log()):
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(RunInterrupted) as caught:
        await task
    partial = caught.value.result
    await asyncio.sleep(1.0)  # requests the client gave up on still land on the server
    sandbox.set_faults(None)
    gone_on_server = before - sandbox.existing_ids()
    assert gone_on_server, "the test interrupted after deletions executed"
    status = dict(zip(partial["contact_id"], partial["status"].astype(str), strict=True))
    assert {status[cid] for cid in gone_on_server} <= {"deleted", "unknown"}
    report = audit(partial, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=caught.value.run_id)
    assert report["false_failure"] == 0 and report["lost"] == 0


async def test_a_journal_locked_mid_deletion_stops_the_run_with_its_partial_result(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Regression: a journal locked for more than its busy timeout ended the run with a raw
    # sqlite3.OperationalError, no result, and deleted contacts without statuses.
    existing = sandbox.seed(400)
    before = sandbox.existing_ids()
    journal = tmp_path / "j.sqlite3"
    opts = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=journal, progress=False,
                verbose=False, concurrency=2, batch_size=40)
    sandbox.set_faults(Faults(latency=0.2))
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        while not any(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log()):
            time.sleep(0.01)
        db = sqlite3.connect(journal, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(30)
        db.execute("ROLLBACK")
        db.close()

    holder = threading.Thread(target=hold_the_lock, daemon=True)
    holder.start()
    try:
        with pytest.raises(leadlex_nb.JournalError, match="journal") as caught:
            await pd.Series(existing).leadlex.abulk_delete(confirm=False, **opts)
    finally:
        release.set()
        holder.join()
    assert locked.is_set()
    partial = caught.value.result
    assert partial is not None and caught.value.run_id and partial["status"].notna().all()
    sandbox.set_faults(None)
    report = audit(partial, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=caught.value.run_id)
    assert report["false_failure"] == 0 and report["lost"] == 0
    assert "deleted" in set(partial["status"].astype(str)) or "unknown" in set(partial["status"].astype(str))
    # Once the lock is gone, resume settles the rest.
    result = await leadlex_nb.aresume(caught.value.run_id, **opts)
    assert set(result["status"].astype(str)) == {"deleted"}


async def test_after_24_hours_resume_checks_with_a_dry_run_before_it_resends(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(300)
    frame = pd.DataFrame({"c": existing[:200]})
    journal = tmp_path / "j.sqlite3"
    opts = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=journal, progress=False,
                verbose=False, concurrency=1)
    sandbox.set_faults(Faults(latency=0.3))
    task = asyncio.ensure_future(frame.leadlex.abulk_delete("c", confirm=False, batch_size=50, **opts))
    while not any(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log()):
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(RunInterrupted) as caught:
        await task
    run_id = caught.value.run_id
    # As if the unfinished delete batches had gone out 25 hours ago, past the idempotency window.
    with sqlite3.connect(journal) as db:
        aged = db.execute("UPDATE batches SET first_sent_at = ? WHERE phase = 'delete' AND state != 'answered'",
                          (time.time() - 90_000,)).rowcount
    assert aged > 0
    sandbox.set_faults(None)
    log_before = len(sandbox.execution_log())

    result = await leadlex_nb.aresume(run_id, **opts)

    new = sandbox.execution_log()[log_before:]
    rechecks = [e for e in new if e["dry_run"] is True]
    assert rechecks, "an expired batch is checked with a dry run first"
    assert all(f"-{run_id}-" in (e["idempotency_key"] or "") for e in new)
    statuses = set(result["status"].astype(str))
    assert statuses <= {"deleted", "gone"}
    assert sandbox.existing_ids().isdisjoint(existing[:200])
    # Nothing deleted twice: every contact was deleted by exactly one execution.
    deleted = [cid for e in sandbox.execution_log() if e["outcome"] == "executed" for cid in e["deleted_ids"] or ()]
    assert len(deleted) == len(set(deleted)) == 200
    # The journal holds the key and body each resent batch was actually sent with.
    resent = {e["idempotency_key"] for e in new if e["dry_run"] is False}
    with sqlite3.connect(journal) as db:
        journaled = {key for (key,) in db.execute("SELECT idempotency_key FROM batches WHERE phase = 'delete'")}
    assert resent and resent <= journaled


async def test_resuming_a_declined_run_confirms_a_current_plan_not_a_replay(sandbox: Sandbox, tmp_path: Path) -> None:
    # Regression: the resumed run replayed the stored dry-run answers and asked to confirm a stale plan.
    existing = sandbox.seed(300)
    opts = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=tmp_path / "j.sqlite3",
                progress=False, verbose=False)
    with pytest.raises(leadlex_nb.ConfirmationDeclined) as declined:
        await pd.Series(existing[:200]).leadlex.abulk_delete(confirm=lambda plan: False, **opts)
    await pd.Series(existing[:50]).leadlex.abulk_delete(confirm=False, **opts)  # someone else, meanwhile
    shown: list[leadlex_nb.PlanSummary] = []

    def confirm(plan: leadlex_nb.PlanSummary) -> bool:
        shown.append(plan)
        return True

    result = await leadlex_nb.aresume(declined.value.run_id, confirm=confirm, **opts)
    assert shown[0].counts == {"would_delete": 150, "not_found": 50}
    assert result["status"].astype(str).value_counts().to_dict() == {"deleted": 150, "not_found": 50}


CLIENT_SCRIPT = """
import os, sys
import pandas as pd
import leadlex_nb
ids = open(sys.argv[1]).read().split()
pd.DataFrame({"c": ids}).leadlex.bulk_delete(
    "c", confirm=False, batch_size=50, concurrency=2, journal=sys.argv[2], progress=False, verbose=False)
"""


async def test_a_killed_process_loses_nothing_and_resume_finishes_the_run(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(500)
    targets = existing[:400]
    (tmp_path / "ids.txt").write_text("\n".join(targets))
    journal = tmp_path / "j.sqlite3"
    before = sandbox.existing_ids()
    sandbox.set_faults(Faults(latency=0.3))
    env = {**os.environ, "LEADLEX_API_KEY": sandbox.api_key, "LEADLEX_BASE_URL": sandbox.base_url}
    client = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, str(tmp_path / "ids.txt"), str(journal)], env=env)
    try:
        while not any(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log()):
            assert client.poll() is None, "the client finished before it could be killed"
            await asyncio.sleep(0.02)
        client.send_signal(signal.SIGKILL)  # like a kernel that dies: no chance to clean up
    finally:
        client.wait(timeout=30)
    assert sandbox.existing_ids() != before - set(targets)
    sandbox.set_faults(None)

    runs = leadlex_nb.journaled_runs(journal)
    assert len(runs) == 1 and runs["state"].iloc[0] == "deleting"
    result = await leadlex_nb.aresume(runs["run_id"].iloc[0], api_key=sandbox.api_key, journal=journal,
                                      progress=False, verbose=False)

    assert set(result["status"].astype(str)) == {"deleted"} and len(result) == 400
    report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=runs["run_id"].iloc[0])
    assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0)
