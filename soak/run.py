"""Soak: thousands of seeded fault schedules, each checked like a Jepsen set (``make soak``).

The schedules and checks are those of ``tests/e2e/test_fault_schedules.py`` (``fault_checks``),
from other seeds: ``make test`` runs seeds 0-199, the soak starts at 100,000 by default. Prints a
table (schedules, faults injected by kind, anomalies by kind, resumes, requests) and writes the
JSON under ``out/soak/``. Exits 1 when any schedule found an anomaly; its seed replays it:
``python soak/run.py --start SEED --schedules 1``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from fault_checks import Report, run_many  # noqa: E402


def run_chunk(seeds: list[int]) -> list[dict[str, Any]]:
    """One worker's share: its own sandbox and journals; the engine's warnings stay quiet."""
    logging.getLogger("leadlex_nb").setLevel(logging.CRITICAL)
    reports: list[dict[str, Any]] = []

    def keep(report: Report) -> None:
        reports.append(report.as_dict())

    with tempfile.TemporaryDirectory(prefix="lnb-soak-") as workdir:
        run_many(seeds, Path(workdir), keep)
    return reports


def summarise(reports: list[dict[str, Any]]) -> dict[str, Any]:
    def total(field: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for r in reports:
            counts.update(r[field])
        return dict(counts.most_common())

    return {
        "schedules": len(reports),
        "scenarios": dict(Counter(r["scenario"] for r in reports).most_common()),
        "faults_injected": total("faults"),
        "anomalies": total("anomalies"),
        "resumes": sum(r["resumed"] for r in reports),
        "requests": sum(r["requests"] for r in reports),
        "stops": dict(Counter(r["stop"] for r in reports if r["stop"]).most_common()),
        "final_statuses": total("statuses"),
        "failing_seeds": sorted(r["seed"] for r in reports if r["problems"]),
    }


def table(summary: dict[str, Any], args: argparse.Namespace, seconds: float) -> str:
    seeds = f"seeds {args.start}..{args.start + args.schedules - 1}, {args.jobs} jobs, {seconds:.0f} s"
    lines = [f"{'schedules run':<30}{summary['schedules']:>9,}   {seeds}",
             f"{'resumes':<30}{summary['resumes']:>9,}",
             f"{'requests (attempts)':<30}{summary['requests']:>9,}"]
    for title, key in (("scenarios", "scenarios"), ("faults injected", "faults_injected"),
                       ("stops", "stops"), ("final statuses", "final_statuses")):
        lines.append(f"{title}:")
        lines += [f"  {name:<28}{count:>9,}" for name, count in summary[key].items()]
    lines.append("anomalies:")
    anomalies = summary["anomalies"]
    lines += [f"  {name:<28}{count:>9,}" for name, count in anomalies.items()] or [f"  {'none':<28}{0:>9}"]
    if summary["failing_seeds"]:
        lines.append(f"failing seeds: {summary['failing_seeds']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=2000)
    parser.add_argument("--start", type=int, default=100_000, help="first seed")
    parser.add_argument("--jobs", type=int, default=4, help="worker processes (schedules mostly wait)")
    parser.add_argument("--chunk", type=int, default=25, help="schedules per task")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "soak")
    args = parser.parse_args(argv)

    seeds = list(range(args.start, args.start + args.schedules))
    chunks = [seeds[i:i + args.chunk] for i in range(0, len(seeds), args.chunk)]
    reports: list[dict[str, Any]] = []
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for future in as_completed([pool.submit(run_chunk, chunk) for chunk in chunks]):
            chunk = future.result()
            reports += chunk
            for r in chunk:
                if r["problems"]:
                    print(f"seed {r['seed']} ({r['scenario']}): {'; '.join(r['problems'])}", flush=True)
            failing = sum(bool(r["problems"]) for r in reports)
            print(f"{len(reports):>6} / {len(seeds)} schedules, {failing} failing", flush=True)
    seconds = time.monotonic() - started
    reports.sort(key=lambda r: r["seed"])
    summary = summarise(reports)
    print(table(summary, args, seconds))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"soak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"summary": summary, "seconds": round(seconds, 1), "start": args.start,
                                "schedules": reports}, indent=1))
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if summary["failing_seeds"] else 0


if __name__ == "__main__":
    sys.exit(main())
