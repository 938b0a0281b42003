"""Correctness under faults, checked like a Jepsen set test.

Seeded random fault schedules (resets, 5xx, gateway pages, commits whose answer is lost or
late, 429 bursts, latency) against a real sandbox; every input ID must end with exactly one
status, and the five anomalies (lost, false failure, unexpected, duplicate execution,
unreported) must be zero. Then resuming the run settles every ``unknown`` row.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import leadlex_nb
from leadlex_nb import LeadLexError, RetryPolicy
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Sandbox

FAULT_MIX = st.fixed_dictionaries({
    "seed": st.integers(0, 2**16),
    "error_5xx": st.sampled_from([0.0, 0.1, 0.2]),
    "gateway_html": st.sampled_from([0.0, 0.1]),
    "reset_before": st.sampled_from([0.0, 0.1]),
    "drop_after_commit": st.sampled_from([0.0, 0.1, 0.2]),
    "slow_after_commit": st.sampled_from([0.0, 0.1]),
    "burst_429": st.sampled_from([0.0, 0.05]),
    "latency": st.sampled_from([0.0, 0.02]),
})


# No shrinking: each example runs a server for seconds; the seed in the report replays it.
@settings(max_examples=8, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(FAULT_MIX, st.integers(1, 4))
def test_every_fault_schedule_ends_with_zero_anomalies(fault_mix: dict[str, float], concurrency: int) -> None:
    journal = Path(tempfile.mkdtemp()) / "journal.sqlite3"
    with Sandbox(seed_contacts=0, seed=int(fault_mix["seed"])) as sandbox:
        existing = sandbox.seed(900)
        frame = pd.DataFrame({"c": existing[:600] + [str(uuid.UUID(int=i + 1)) for i in range(20)] + ["junk"]})
        before = sandbox.existing_ids()
        sandbox.set_faults(Faults(slow_seconds=0.6, latency_jitter=0.01, **fault_mix))
        options = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=journal, progress=False,
                       verbose=False, timeout=0.4, concurrency=concurrency, rate_window=1.0,
                       retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05))
        try:
            result = frame.leadlex.bulk_delete("c", confirm=False, batch_size=100, **options)
        except LeadLexError as stop:  # a stop still carries one status per row
            assert stop.result is not None
            result = stop.result
        run_id = result.attrs["leadlex"]["run_id"]

        report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                       execution_log=sandbox.execution_log(), run_id=run_id)
        assert len(result) == len(frame) and result["status"].notna().all()
        assert {k: report[k] for k in (*ANOMALIES, "overclaim")} == dict.fromkeys((*ANOMALIES, "overclaim"), 0)

        # Without faults, resuming settles what the faults left in flight (unknown), executing
        # nothing twice; rows whose dry run failed were never confirmed, so they take a new run.
        sandbox.set_faults(None)
        if result["status"].astype(str).isin(["unknown", "not_sent"]).any():
            result = leadlex_nb.resume(run_id, **{k: v for k, v in options.items() if k != "concurrency"})
        report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                       execution_log=sandbox.execution_log(), run_id=run_id)
        assert {k: report[k] for k in ANOMALIES} == dict.fromkeys(ANOMALIES, 0)
        assert not result["status"].astype(str).isin(["unknown"]).any()
        leftover = frame[result["status"].astype(str).eq("not_sent").to_numpy()]
        dry_run_failed = result.loc[result["error_message"].str.contains("dry run", na=False), "contact_id"]
        assert leftover["c"].isin(dry_run_failed).all()
        if len(leftover):
            again = leftover.leadlex.bulk_delete("c", confirm=False, **options)
            assert set(again["status"].astype(str)) <= {"deleted", "not_found", "gone"}
        assert sandbox.existing_ids().isdisjoint(existing[:600])
