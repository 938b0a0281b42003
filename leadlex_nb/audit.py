"""Check a result frame against a server's ground truth, the way Jepsen checks a set.

Used by the demo, the benchmarks and the fault tests with the sandbox's ground truth
(``existing_ids()`` before and after, and its execution log). Five anomalies must be zero:

- ``lost``: reported ``deleted`` but still exists;
- ``false_failure``: reported ``error`` / ``not_found`` / ``not_sent`` but this run deleted it;
- ``unexpected``: deleted by this run although never in the confirmed plan;
- ``duplicate_execution``: one idempotency key executed more than once (a replay is fine);
- ``unreported``: a row with no status.

It also counts rows whose status claims more than the truth supports (``overclaim``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

ANOMALIES = ("lost", "false_failure", "unexpected", "duplicate_execution", "unreported")


def audit(
    result: pd.DataFrame,
    *,
    existed_before: set[str],
    exists_after: set[str],
    execution_log: Iterable[Mapping[str, Any]],
    run_id: str,
    plan: set[str] | None = None,
) -> dict[str, int]:
    """Anomaly counts (all must be 0) plus ``overclaim`` and ``exact_rows``."""
    entries = [e for e in execution_log if str(e.get("idempotency_key") or "").startswith(f"lnb-{run_id}-")]
    executions = [e for e in entries if e.get("outcome") == "executed" and not e.get("dry_run")]
    deleted_by_run: set[str] = {cid for e in executions for cid in (e.get("deleted_ids") or ())}
    executed_keys = Counter(e["idempotency_key"] for e in executions)

    firsts = result[~result["duplicate"].astype(bool)]
    status = firsts["status"].astype(object)
    ids = firsts["contact_id"].astype(object)
    planned = plan if plan is not None else set(ids[status.isin(["deleted", "gone", "unknown", "not_sent", "error"])])

    in_deleted_by_run = ids.isin(deleted_by_run)
    still_exists = ids.isin(exists_after)
    existed = ids.isin(existed_before)
    report = {
        "lost": int(((status == "deleted") & still_exists).sum()),
        "false_failure": int((status.isin(["error", "not_found", "not_sent"]) & in_deleted_by_run).sum()),
        "unexpected": len(deleted_by_run - planned),
        "duplicate_execution": sum(1 for n in executed_keys.values() if n > 1),
        "unreported": int(result["status"].isna().sum()),
    }
    # A row overclaims when its status says more than the truth: deleted by someone else,
    # "not_found" although it existed, "gone" although it still exists.
    report["overclaim"] = int(
        ((status == "deleted") & ~in_deleted_by_run).sum()
        + ((status == "not_found") & existed & ~in_deleted_by_run).sum()
        + ((status == "gone") & still_exists).sum()
        + ((status == "would_delete") & ~existed).sum()
    )
    exact = (
        ((status == "deleted") & in_deleted_by_run)
        | ((status == "not_found") & ~existed)
        | (status == "invalid")
        | ((status == "would_delete") & existed)
        | ((status == "error") & still_exists)
    )
    report["exact_rows"] = int(exact.sum())
    report["unique_rows"] = len(firsts)
    return report
