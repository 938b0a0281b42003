"""Section B: the client's own CPU time, peak memory and journal size on a dry run of many IDs.

The sandbox runs in a process of its own (:mod:`benchmarks.server_child`) and each client in
another (:mod:`benchmarks.client_child`), so ``getrusage(RUSAGE_SELF)`` of a client counts only
that client. Beside leadlex-nb, in the same run: the floor (pandas loads the IDs and JSON-encodes
the bodies) and a plain aiohttp client sending the same bodies. Clients are interleaved; the
sandbox forgets its execution log before each, so each faces the same server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Scale, ServerProcess, child_env, median

MODES = ("floor", "aiohttp", "leadlex")
# Targets per 1M IDs for the client's own work.
TARGET_CPU_S_PER_1M = 3.0
TARGET_PEAK_RSS_MB = 500.0
TARGET_JOURNAL_BYTES_PER_ID = 40.0
# A client whose run takes longer than this is measured once: CPU time and peak RSS vary little
# between runs, and repeating a slow one would push ``make bench`` far past its ten minutes.
REPEAT_ONLY_UNDER_S = 60.0


def _run_client(mode: str, ids_file: Path, server_env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.client_child", mode, "--ids-file", str(ids_file)],
                          cwd=ROOT, env=child_env(server_env), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"client {mode} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def measure(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadlex-bench-ids-") as directory, \
            ServerProcess(scale.overhead_ids, Path(directory)) as server:
        return _measure_against(server, scale, progress)


def _measure_against(server: ServerProcess, scale: Scale, progress: Callable[[str], None]) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    too_slow_to_repeat: set[str] = set()
    for repeat in range(scale.overhead_repeats):
        for mode in MODES:
            if mode in too_slow_to_repeat:
                continue
            server.clear_log()
            report = _run_client(mode, server.ids_file, server.env)
            report["repeat"] = repeat
            runs.append(report)
            if report["work_wall_s"] > REPEAT_ONLY_UNDER_S:
                too_slow_to_repeat.add(mode)
            progress(f"  B[{repeat}] {mode}: {report['work_cpu_s']:.2f} CPU-s work, "
                     f"{report['peak_rss_mb']:.0f} MB peak, {report['work_wall_s']:.1f} s wall")
    return summarise(runs, scale.overhead_ids)


def summarise(runs: list[dict[str, Any]], ids: int) -> dict[str, Any]:
    per_1m = 1_000_000 / ids
    rows = []
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        if not mine:
            continue
        row = {"client": mode, "runs": len(mine),
               "import_cpu_s": round(median(r["import_cpu_s"] for r in mine), 2),
               "load_cpu_s": round(median(r["load_cpu_s"] for r in mine), 2),
               "work_cpu_s": round(median(r["work_cpu_s"] for r in mine), 2),
               "work_cpu_s_per_1m": round(median(r["work_cpu_s"] for r in mine) * per_1m, 2),
               "work_wall_s": round(median(r["work_wall_s"] for r in mine), 1),
               "rss_after_load_mb": round(median(r["rss_after_load_mb"] for r in mine)),
               "peak_rss_mb": round(median(r["peak_rss_mb"] for r in mine))}
        if mode == "leadlex":
            row["journal_bytes_per_id"] = round(median(r["journal_bytes"] for r in mine) / ids, 1)
        rows.append(row)
    by_mode = {r["client"]: r for r in rows}
    verdict: dict[str, Any] = {}
    if "leadlex" in by_mode:
        mine = by_mode["leadlex"]
        verdict = {
            "cpu_s_per_1m": mine["work_cpu_s_per_1m"], "cpu_target": TARGET_CPU_S_PER_1M,
            "cpu_met": mine["work_cpu_s_per_1m"] <= TARGET_CPU_S_PER_1M,
            "peak_rss_mb": mine["peak_rss_mb"], "rss_target_mb": TARGET_PEAK_RSS_MB,
            "rss_met": mine["peak_rss_mb"] <= TARGET_PEAK_RSS_MB,
            "journal_bytes_per_id": mine["journal_bytes_per_id"], "journal_target": TARGET_JOURNAL_BYTES_PER_ID,
            "journal_met": mine["journal_bytes_per_id"] <= TARGET_JOURNAL_BYTES_PER_ID,
        }
        for base in ("floor", "aiohttp"):
            if base in by_mode:
                verdict[f"cpu_over_{base}_s_per_1m"] = round(
                    mine["work_cpu_s_per_1m"] - by_mode[base]["work_cpu_s_per_1m"], 2)
    return {"ids": ids, "summary": rows, "targets": verdict, "runs": runs}
