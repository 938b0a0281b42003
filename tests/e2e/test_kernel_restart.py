"""A real Jupyter kernel stopped in the middle of a deletion, then the run resumed.

The kernel (the test kernelspec of tests/conftest.py) runs the deletion against the sandbox; at a
seeded random count of executed delete batches it is either restarted (killed, no chance to clean
up: the journal lets the new kernel resume the run) or its panel's Stop button is clicked.
"""

from __future__ import annotations

import gc
import os
import random
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

import leadlex_nb
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Sandbox

pytestmark = pytest.mark.filterwarnings(r"ignore:Unclosed socket <zmq.*:ResourceWarning")

DELETE = """
import pandas as pd, leadlex_nb
ids = open({ids!r}).read().split()
pd.DataFrame({{"c": ids}}).leadlex.bulk_delete("c", confirm=False, journal={journal!r}, batch_size=20,
                                              concurrency=2, progress=False, verbose=False)
"""
RESUME = """
import leadlex_nb
leadlex_nb.resume({run_id!r}, confirm=False, journal={journal!r}, progress=False,
                  verbose=False).to_pickle({out!r})
"""


def executed_deletes(sandbox: Sandbox) -> int:
    return sum(e["outcome"] == "executed" and e["dry_run"] is False for e in sandbox.execution_log())


@pytest.mark.parametrize("seed", [1, 2])
def test_a_kernel_restarted_mid_deletion_leaves_a_journal_that_resume_finishes(
    sandbox: Sandbox, kernel_dir: Path, tmp_path: Path, seed: int
) -> None:
    existing = sandbox.seed(300)
    targets = existing[:240]
    (tmp_path / "ids.txt").write_text("\n".join(targets))
    journal, out = str(tmp_path / "j.sqlite3"), str(tmp_path / "result.pkl")
    before = sandbox.existing_ids()
    sandbox.set_faults(Faults(latency=0.05))
    restart_after = random.Random(seed).randint(1, 10)  # of the 12 delete batches

    env = {**os.environ, "LEADLEX_API_KEY": sandbox.api_key, "LEADLEX_BASE_URL": sandbox.base_url,
           "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    manager = KernelManager(kernel_name="leadlex-nb-tests",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute(DELETE.format(ids=str(tmp_path / "ids.txt"), journal=journal))
        deadline = time.monotonic() + 60
        while executed_deletes(sandbox) < restart_after:
            assert time.monotonic() < deadline, "the deletion never got going"
            time.sleep(0.005)
        manager.restart_kernel(now=True)  # kills the kernel process outright, then starts a new one
        client.wait_for_ready(timeout=60)
        assert sandbox.existing_ids() != before - set(targets), "the restart came after the deletion ended"
        time.sleep(0.2)  # requests the old kernel had sent still land
        sandbox.set_faults(None)

        runs = leadlex_nb.journaled_runs(journal)
        assert len(runs) == 1 and runs["state"].iloc[0] == "deleting"
        run_id = str(runs["run_id"].iloc[0])
        reply = client.execute_interactive(RESUME.format(run_id=run_id, journal=journal, out=out), timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        del client, manager
        gc.collect()

    result = pd.read_pickle(out)
    assert len(result) == len(targets) and set(result["status"].astype(str)) == {"deleted"}
    assert sandbox.existing_ids() == before - set(targets)
    report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=run_id)
    assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0), report
    executed = Counter(e["idempotency_key"] for e in sandbox.execution_log()
                       if e["outcome"] == "executed" and e["dry_run"] is False)
    assert set(executed.values()) == {1} and len(executed) == 12


PANEL = """
import pandas as pd, leadlex_nb
ids = open({ids!r}).read().split()
run = pd.DataFrame({{"c": ids}}).leadlex.bulk_delete("c", journal={journal!r}, batch_size=20, concurrency=2,
                                                    progress=False, verbose=False)
run._panel.delete_button.click()  # the panel's Delete, as a click runs it: the cell ends, the deletion runs
"""
STOP = """
run._panel.stop_button.click()
run.wait(60).to_pickle({out!r})
assert run.status == "stopped", run.status
"""


@pytest.mark.parametrize("seed", [3, 4])
def test_the_panels_stop_in_a_kernel_leaves_an_honest_partial_result_and_resume_finishes(
    sandbox: Sandbox, kernel_dir: Path, tmp_path: Path, seed: int
) -> None:
    existing = sandbox.seed(300)
    targets = existing[:240]
    (tmp_path / "ids.txt").write_text("\n".join(targets))
    journal = str(tmp_path / "j.sqlite3")
    before = sandbox.existing_ids()
    stop_after = random.Random(seed).randint(1, 8)  # of the 12 delete batches

    env = {**os.environ, "LEADLEX_API_KEY": sandbox.api_key, "LEADLEX_BASE_URL": sandbox.base_url,
           "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    manager = KernelManager(kernel_name="leadlex-nb-tests",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        sandbox.set_faults(Faults(latency=0.1, paths=("/v1/contacts/bulk-delete",)))
        reply = client.execute_interactive(PANEL.format(ids=str(tmp_path / "ids.txt"), journal=journal), timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        deadline = time.monotonic() + 60
        while executed_deletes(sandbox) < stop_after:
            assert time.monotonic() < deadline, "the deletion never got going"
            time.sleep(0.005)
        reply = client.execute_interactive(STOP.format(out=str(tmp_path / "partial.pkl")), timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        time.sleep(0.2)  # requests given up on still land
        at_stop = (sandbox.existing_ids(), sandbox.execution_log())
        sandbox.set_faults(None)
        run_id = str(leadlex_nb.journaled_runs(journal)["run_id"].iloc[0])
        reply = client.execute_interactive(RESUME.format(run_id=run_id, journal=journal, out=str(tmp_path / "r.pkl")),
                                           timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        del client, manager
        gc.collect()

    partial, result = pd.read_pickle(tmp_path / "partial.pkl"), pd.read_pickle(tmp_path / "r.pkl")
    statuses = Counter(partial["status"].astype(str))
    assert statuses["deleted"] > 0 and statuses["not_sent"] > 0 and set(statuses) <= {"deleted", "not_sent", "unknown"}
    for frame, (exists_after, log) in ((partial, at_stop), (result, (sandbox.existing_ids(), sandbox.execution_log()))):
        report = audit(frame, existed_before=before, exists_after=exists_after, execution_log=log, run_id=run_id)
        assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0), report
    assert set(result["status"].astype(str)) == {"deleted"} and sandbox.existing_ids() == before - set(targets)
    acknowledged = set(partial.loc[partial["status"].astype(str) == "deleted", "request_id"])
    resent = [e for e in sandbox.execution_log() if e["dry_run"] is False and e["request_id"] in acknowledged]
    assert len(resent) == len(acknowledged), "a batch acknowledged before the Stop was sent again"
