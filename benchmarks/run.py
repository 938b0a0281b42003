"""``make bench``: every benchmark section in one run, printed as tables and written as JSON.

A. side by side under a hidden rate window (:mod:`benchmarks.side_by_side`);
B. the client's CPU, memory and journal size on a dry run of 1M IDs (:mod:`benchmarks.overhead`);
C. requests per 1,000 IDs by share of unknown IDs (:mod:`benchmarks.attribution_cost`);
D. attempts per batch under 5xx and lost answers, audited (:mod:`benchmarks.fault_attempts`);
E. learning an unknown limit with defaults, 1-second and 60-second windows (:mod:`benchmarks.learning`);
F. what a snapshot costs per read, and restoring from it (:mod:`benchmarks.snapshot_cost`).

``BENCH_QUICK=1`` runs a smaller smoke version. Writes ``out/bench/<section>.json``,
``out/bench/results.json`` and ``benchmarks/results.json``. ID normalisation has its own script,
``benchmarks/ids_bench.py``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import attribution_cost, fault_attempts, learning, overhead, side_by_side, snapshot_cost
from benchmarks.common import Scale, machine
from benchmarks.tables import SECTIONS, TITLES, render

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "out" / "bench"
RESULTS = Path(__file__).with_name("results.json")
MEASURES: dict[str, Callable[..., dict[str, Any]]] = {
    "side_by_side": side_by_side.measure, "overhead": overhead.measure,
    "attribution_cost": attribution_cost.measure, "fault_attempts": fault_attempts.measure,
    "learning": learning.measure, "snapshot_cost": snapshot_cost.measure,
}


def run_all(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                               "scale": scale.as_dict()}
    for name in SECTIONS:
        progress(f"{TITLES[name]} ...")
        started = time.perf_counter()
        results[name] = MEASURES[name](scale, progress)
        results[name]["section_seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


def write(results: dict[str, Any], out_dir: Path, results_path: Path | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SECTIONS:
        (out_dir / f"{name}.json").write_text(json.dumps(results[name], indent=2) + "\n")
    text = json.dumps(results, indent=2) + "\n"
    (out_dir / "results.json").write_text(text)
    if results_path is not None:
        results_path.write_text(text)


def main() -> int:
    scale = Scale.from_environment()
    results = run_all(scale, lambda line: print(line, file=sys.stderr, flush=True))
    print(render(results))
    quick = scale == Scale.quick()
    # A quick run is a smoke test: it leaves the recorded figures in benchmarks/results.json alone.
    write(results, OUT_DIR, None if quick else RESULTS)
    print(f"\nwritten to {OUT_DIR}" + ("" if quick else f" and {RESULTS}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
