"""Section D: attempts per batch when answers fail (10 % 5xx before execution, 5 % lost after it).

A whole run (dry run + deletion) on a sandbox whose limits never bind, one run per fault seed,
checked against the sandbox's ground truth with :func:`leadlex_nb.audit.audit` (every anomaly
must be 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

import leadlex_nb  # noqa: F401  (registers the accessor)
from benchmarks.common import ROOMY_PROFILE, Scale, Stopwatch, fresh_journal, requests_for
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Sandbox

ERROR_5XX = 0.10
LOST_ANSWERS = 0.05


def run_one(ids: int, seed: int) -> dict[str, Any]:
    with Sandbox(seed_contacts=ids, profile=ROOMY_PROFILE, seed=4) as sandbox, fresh_journal() as journal:
        sandbox.set_faults(Faults(error_5xx=ERROR_5XX, drop_after_commit=LOST_ANSWERS, latency=0.005, seed=seed))
        before = sandbox.existing_ids()
        frame = pd.DataFrame({"contact_id": sorted(before)})
        with Stopwatch() as watch:
            result = frame.leadlex.bulk_delete("contact_id", confirm=False, api_key=sandbox.api_key,
                                               base_url=sandbox.base_url, journal=journal,
                                               progress=False, verbose=False, snapshot=False)
        after = sandbox.existing_ids()
        log = sandbox.execution_log()
    report = result.attrs["leadlex"]
    checks = audit(result, existed_before=before, exists_after=after, execution_log=log, run_id=report["run_id"])
    batches = requests_for(ids)
    requests = {k: int(v) for k, v in report["requests"].items()}
    faults = [e["fault"] for e in log if e.get("fault") not in (None, "latency")]
    per_batch = result.drop_duplicates("batch")["attempts"].dropna().astype(int)
    return {"seed": seed, "ids": ids, "batches_per_phase": batches, "wall_s": round(watch.seconds, 2),
            "dry_run_attempts_per_batch": round(requests.get("dry_run", 0) / batches, 2),
            "delete_attempts_per_batch": round(requests.get("delete", 0) / batches, 2),
            "delete_max_attempts": int(per_batch.max()) if len(per_batch) else 0,
            "faults_injected": len(faults), "requests": requests,
            "statuses": {k: int(v) for k, v in result["status"].value_counts().items() if v},
            "anomalies": sum(checks[k] for k in ANOMALIES), "audit": checks}


def measure(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    rows = []
    for seed in range(1, scale.fault_seeds + 1):
        row = run_one(scale.fault_ids, seed)
        rows.append(row)
        progress(f"  D seed {seed}: {row['dry_run_attempts_per_batch']} / {row['delete_attempts_per_batch']} "
                 f"attempts per batch (dry run / delete), {row['anomalies']} anomalies")
    return {"ids": scale.fault_ids, "error_5xx": ERROR_5XX, "lost_answers": LOST_ANSWERS, "summary": rows}
