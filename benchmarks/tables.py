"""The printed tables of ``make bench``: one small frame per section, built from the results dict."""

from __future__ import annotations

from typing import Any

import pandas as pd

SECTIONS = ("side_by_side", "overhead", "attribution_cost", "fault_attempts", "learning", "snapshot_cost")
TITLES = {
    "side_by_side": "A. Side by side: dry run + delete under a hidden 20/s window, 50 ± 20 ms latency (median; "
                    "leadlex-nb without its snapshot, which the others do not take)",
    "overhead": "B. Client overhead of a dry run (client in its own process, sandbox in another; median)",
    "attribution_cost": "C. Requests per 1,000 IDs by share of unknown IDs (dry run + attribution + delete; "
                        "snapshot off, see F)",
    "fault_attempts": "D. Attempts per batch under 10 % 5xx + 5 % lost answers, audited against the sandbox "
                      "(snapshot off)",
    "learning": "E. Defaults only against hidden 1-second and 60-second windows (dry runs, batches of 50; median)",
    "snapshot_cost": "F. Snapshot before deleting and restore, per read (planned contacts in a workspace twice "
                     "that size)",
}


def side_by_side_table(section: dict[str, Any]) -> pd.DataFrame:
    columns = ["contender", "label", "runs", "stalled_runs", "total_s", "efficiency_total", "delete_s",
               "efficiency_delete", "requests_total", "rate_limited_total", "rate_limited_delete",
               "speedup_total_vs_a", "speedup_total_vs_b", "speedup_delete_vs_a", "speedup_delete_vs_b"]
    return pd.DataFrame(section["summary"]).reindex(columns=columns)


def overhead_table(section: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(section["summary"])


def attribution_table(section: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(section["summary"])


def fault_table(section: dict[str, Any]) -> pd.DataFrame:
    columns = ["seed", "ids", "wall_s", "dry_run_attempts_per_batch", "delete_attempts_per_batch",
               "delete_max_attempts", "faults_injected", "anomalies"]
    return pd.DataFrame(section["summary"]).reindex(columns=columns)


def learning_table(section: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(section["summary"])


def snapshot_table(section: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(section["summary"])


BUILDERS = {"side_by_side": side_by_side_table, "overhead": overhead_table,
            "attribution_cost": attribution_table, "fault_attempts": fault_table, "learning": learning_table,
            "snapshot_cost": snapshot_table}


def render(results: dict[str, Any]) -> str:
    """Every section present in ``results`` as a titled plain-text table."""
    parts: list[str] = []
    for name in SECTIONS:
        if name not in results:
            continue
        parts.append(f"\n== {TITLES[name]}")
        parts.append(BUILDERS[name](results[name]).to_string(index=False))
        if name == "side_by_side":
            s = results[name]
            parts.append(f"ideal: {s['ideal_total_s']} s for {2 * s['requests_per_phase']} requests, "
                         f"{s['ideal_delete_s']} s for the {s['requests_per_phase']} of the delete phase; "
                         f"wall-time cap {s['stall_cap_s']:.0f} s")
        if name == "overhead" and results[name].get("targets"):
            parts.append("targets: " + ", ".join(f"{k}={v}" for k, v in results[name]["targets"].items()))
    return "\n".join(parts)
