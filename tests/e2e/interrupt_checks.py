"""What must hold after an interrupt, and after the resume that finishes the run.

Checked against the sandbox's ground truth (contacts before and after, the execution log):
the five audit anomalies and overclaims are zero; no batch the client saw acknowledged is sent
again; no idempotency key executes twice and no contact is deleted by two executions; a resume
past the idempotency window dry-runs a batch that went out before it sends it again, under a new key.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pandas as pd
from interrupt_points import request_class

from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Sandbox

CHECKED = (*ANOMALIES, "overclaim")
FINAL_STATUSES = {"deleted", "not_found", "gone", "invalid"}


def settle_server(sandbox: Sandbox, start_seq: int, patience: float = 5.0) -> None:
    """Wait until every request of the run has its answer on the server: one the client gave up on
    still executes, and must be in the ground truth before a result is audited against it."""
    time.sleep(0.05)  # bytes already on the wire reach the server
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if all(e["status"] is not None for e in sandbox.execution_log()[start_seq:]):
            return
        time.sleep(0.01)


def _audit(result: pd.DataFrame, sandbox: Sandbox, truth: dict[str, Any], run_id: str) -> dict[str, int]:
    report = audit(result, existed_before=truth["existed_before"], exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=run_id)
    return {k: report[k] for k in CHECKED}


def _one_status_per_row(result: pd.DataFrame, rows: int) -> None:
    assert len(result) == rows, f"{len(result)} result rows for {rows} input rows"
    assert result["status"].notna().all(), "a row without a status"


def check_partial(partial: pd.DataFrame, sandbox: Sandbox, truth: dict[str, Any], run_id: str, rows: int) -> None:
    _one_status_per_row(partial, rows)
    report = _audit(partial, sandbox, truth, run_id)
    assert report == dict.fromkeys(CHECKED, 0), f"the partial result: {report}"


def _acknowledged_keys(partial: pd.DataFrame | None, log: list[dict[str, Any]]) -> set[str]:
    """Delete keys whose answer the client had when it was interrupted (its rows read deleted/gone)."""
    if partial is None:
        return set()
    decided = set(partial.loc[partial["status"].astype(str).isin(["deleted", "gone"]), "request_id"].dropna())
    return {e["idempotency_key"] for e in log if e["request_id"] in decided and request_class(e) == "delete"}


def check_final(final: pd.DataFrame, sandbox: Sandbox, truth: dict[str, Any], run_id: str, rows: int, *,
                partial: pd.DataFrame | None, resume_seq: int, aged: bool) -> int:
    """Check the resumed run's result; returns how many recheck dry runs the resume sent."""
    _one_status_per_row(final, rows)
    status = final["status"].astype(str)
    # Rows whose dry run failed (5xx until the retries ran out) were never confirmed: not_sent, honestly.
    never_confirmed = status.eq("not_sent") & final["error_message"].str.contains("dry run", na=False)
    assert set(status[~never_confirmed]) <= FINAL_STATUSES, f"unsettled rows: {Counter(status)}"
    report = _audit(final, sandbox, truth, run_id)
    assert report == dict.fromkeys(CHECKED, 0), f"the resumed result: {report}"
    left = set(truth["targets"]) & sandbox.existing_ids()
    assert left <= set(final.loc[never_confirmed, "contact_id"]), f"{len(left)} targets still exist"

    log = sandbox.execution_log()
    ours = [e for e in log if f"-{run_id}-" in (e["idempotency_key"] or "")]
    executed = [e for e in ours if e["outcome"] == "executed" and request_class(e) == "delete"]
    twice = [k for k, n in Counter(e["idempotency_key"] for e in executed).items() if n > 1]
    assert not twice, f"keys executed twice: {twice}"
    deleted = [cid for e in executed for cid in e["deleted_ids"] or ()]
    assert len(deleted) == len(set(deleted)), "a contact deleted by two executions"

    before_resume, resumed = log[:resume_seq], log[resume_seq:]
    acknowledged = _acknowledged_keys(partial, before_resume)
    again = [e["idempotency_key"] for e in resumed if e["idempotency_key"] in acknowledged]
    assert not again, f"acknowledged batches sent again: {again}"
    rechecks = [e for e in resumed if request_class(e) == "recheck"]
    if aged:
        sent = {e["idempotency_key"] for e in before_resume
                if request_class(e) == "delete" and f"-{run_id}-" in e["idempotency_key"]}
        unanswered = sent - acknowledged - _answered_in_journal(final, before_resume)
        reused = [e["idempotency_key"] for e in resumed if e["idempotency_key"] in unanswered]
        assert not reused, f"keys past the window were reused: {reused}"
        if unanswered:
            assert rechecks, f"sent more than 24 hours ago and resent without a dry run first: {unanswered}"
            first_recheck = min(e["seq"] for e in rechecks)
            deletes = [e["seq"] for e in resumed if request_class(e) == "delete"
                       and ".resumed-" in (e["idempotency_key"] or "")]
            assert all(seq > first_recheck for seq in deletes), "resent before it was checked"
    return len(rechecks)


def _answered_in_journal(final: pd.DataFrame, log: list[dict[str, Any]]) -> set[str]:
    """Delete keys whose answer the run recorded before it ended (a killed run's partial is unseen):
    the final result's rows name their deciding answer's request id."""
    ids = set(final["request_id"].dropna())
    return {e["idempotency_key"] for e in log if e["request_id"] in ids and request_class(e) == "delete"}
