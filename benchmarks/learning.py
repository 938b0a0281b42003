"""Section E: learning an unknown limit with defaults only, against a hidden 1-second and 60-second window.

Neither the rate nor the window is advertised and no ``Retry-After`` comes with a 429, so the
client must learn both. Each run is a dry run of ``requests`` batches of 50 IDs (dry runs count
against the limit like deletions), 50 ± 20 ms latency, in real time: the 60-second case takes a few
minutes and runs once (``BENCH_QUICK=1`` leaves it out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

import leadlex_nb  # noqa: F401  (registers the accessor)
from benchmarks.common import LATENCY_JITTER_S, LATENCY_S, Scale, count_429, fresh_journal, median
from leadlex_nb.sandbox import Faults, Profile, Sandbox

BATCH = 50


def ideal_seconds(requests: int, per_window: int, window_s: float) -> float:
    return (-(-requests // per_window) - 1) * window_s + LATENCY_S


def run_one(per_window: int, window_s: float, requests: int, seed: int) -> dict[str, Any]:
    profile = Profile("hidden", per_window=per_window, window_seconds=window_s, daily_quota=10**7)
    with Sandbox(seed_contacts=requests * BATCH, profile=profile, seed=seed) as sandbox:
        sandbox.set_faults(Faults(latency=LATENCY_S, latency_jitter=LATENCY_JITTER_S, seed=seed))
        frame = pd.DataFrame({"contact_id": sorted(sandbox.existing_ids())})
        with fresh_journal() as journal:
            started = time.perf_counter()
            result = frame.leadlex.bulk_delete("contact_id", api_key=sandbox.api_key, base_url=sandbox.base_url,
                                               dry_run=True, batch_size=BATCH, journal=journal, progress=False,
                                               verbose=False)
            seconds = time.perf_counter() - started
        log = [e for e in sandbox.execution_log() if e["path"] == "/v1/contacts/bulk-delete"]
    ideal = ideal_seconds(requests, per_window, window_s)
    return {"hidden_limit": f"{per_window} per {window_s:g} s", "requests": requests, "seed": seed,
            "seconds": round(seconds, 2), "ideal_s": round(ideal, 2), "efficiency": round(ideal / seconds, 2),
            "rate_limited": count_429(log), "requests_sent": len(log),
            "all_would_delete": bool((result["status"].astype(str) == "would_delete").all())}


def measure(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    runs = []
    # (requests per window, window seconds, requests in the run, repeats)
    for per_window, window_s, requests, repeats in scale.learning_cases:
        for seed in range(1, repeats + 1):
            row = run_one(per_window, window_s, requests, seed)
            runs.append(row)
            progress(f"  E {row['hidden_limit']}, seed {seed}: {row['seconds']} s (ideal {row['ideal_s']} s, "
                     f"efficiency {row['efficiency']}), {row['rate_limited']} answers of 429")
    summary = []
    for limit in dict.fromkeys(r["hidden_limit"] for r in runs):
        mine = [r for r in runs if r["hidden_limit"] == limit]
        summary.append({"hidden_limit": limit, "runs": len(mine), "requests": mine[0]["requests"],
                        "ideal_s": mine[0]["ideal_s"], "seconds": median(r["seconds"] for r in mine),
                        "efficiency": median(r["efficiency"] for r in mine),
                        "efficiency_min": min(r["efficiency"] for r in mine),
                        "rate_limited": median(r["rate_limited"] for r in mine),
                        "all_would_delete": all(r["all_would_delete"] for r in mine)})
    return {"batch_size": BATCH, "target_efficiency": 0.85, "summary": summary, "runs": runs}
