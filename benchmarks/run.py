"""Benchmarks, measured as ratios side by side in one run (``make bench``).

1. ID normalisation: the vectorised ``normalise_ids`` against a plain per-row loop.
2. The main job (10,000 known + 500 unknown + 100 junk + 200 repeats on a 20,000-contact
   sandbox with 30 ms latency): wall time at concurrency 1, 4 and 8.
3. Attribution: requests spent with a read-capable key (export) against a write-only key
   (bisection), at 1 % and 5 % missing.
4. Pacing: a tight per-window limit with the plan given against learning it from 429s.

Prints a table and writes ``benchmarks/results.json``.
"""

from __future__ import annotations

import json
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

import leadlex_nb  # noqa: F401
from leadlex_nb import RateLimit
from leadlex_nb.demo import build_frame
from leadlex_nb.ids import normalise_ids
from leadlex_nb.sandbox import Faults, Profile, Sandbox

OUT = Path(__file__).with_name("results.json")


def _naive_normalise(values: pd.Series) -> list[str | None]:
    out: list[str | None] = []
    for value in values:
        try:
            text = value.strip().lower().removeprefix("urn:uuid:").strip("{}")
            out.append(str(uuid.UUID(text)))
        except (AttributeError, ValueError):
            out.append(None)
    return out


def bench_normalise(rows: int = 500_000) -> dict[str, Any]:
    rng = random.Random(1)
    base = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rows // 2)]
    values = pd.Series([rng.choice([v, v.upper(), "{" + v + "}", " " + v]) for v in base] + base[: rows // 4]
                       + ["junk", None, "", 42] * (rows // 16))
    started = time.perf_counter()
    normalise_ids(values)
    vectorised = time.perf_counter() - started
    started = time.perf_counter()
    _naive_normalise(values)
    naive = time.perf_counter() - started
    return {"rows": len(values), "vectorised_s": round(vectorised, 3), "per_row_loop_s": round(naive, 3),
            "speedup": round(naive / vectorised, 2)}


def _run(sandbox: Sandbox, frame: pd.DataFrame, journal: Path, **options: Any) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    result = frame.leadlex.bulk_delete("contact_id", confirm=False, api_key=options.pop("api_key", sandbox.api_key),
                                       base_url=sandbox.base_url, journal=journal, progress=False, verbose=False,
                                       **options)
    return result, time.perf_counter() - started


def bench_concurrency(journal: Path) -> list[dict[str, Any]]:
    rows = []
    for concurrency in (1, 4, 8):
        with Sandbox(seed_contacts=20_000, profile="fast", seed=7) as sandbox:
            sandbox.set_faults(Faults(latency=0.03, latency_jitter=0.01, seed=1))
            frame = build_frame(
                sorted(sandbox.existing_ids()), known=10_000, unknown=500, junk=100, repeats=200, seed=11
            )
            result, wall = _run(sandbox, frame, journal, concurrency=concurrency, plan=RateLimit(50, 1.0))
            report = result.attrs["leadlex"]
            rows.append({"concurrency": concurrency, "wall_s": round(wall, 2), "requests": report["requests"],
                         "rate_limited": report["rate_limited"],
                         "statuses": {k: int(v) for k, v in result["status"].value_counts().items() if v}})
    base = rows[0]["wall_s"]
    for row in rows:
        row["speedup_vs_1"] = round(base / row["wall_s"], 2)
    return rows


def bench_attribution(journal: Path) -> list[dict[str, Any]]:
    rows = []
    for missing_share in (0.01, 0.05):
        for strategy_key in ("read+write", "write-only"):
            with Sandbox(seed_contacts=20_000, profile="fast", seed=3) as sandbox:
                existing = sorted(sandbox.existing_ids())
                unknown = int(5_000 * missing_share)
                values = existing[:5_000 - unknown] + [str(uuid.uuid4()) for _ in range(unknown)]
                random.Random(5).shuffle(values)
                key = sandbox.api_key if strategy_key == "read+write" else sandbox.create_key(["write:contacts"])
                result = pd.DataFrame({"contact_id": values}).leadlex.bulk_delete(
                    "contact_id", dry_run=True, api_key=key, base_url=sandbox.base_url, journal=journal,
                    progress=False, verbose=False, attribution_budget=1_000, plan=RateLimit(50, 1.0))
                report = result.attrs["leadlex"]
                rows.append({"missing": f"{missing_share:.0%}", "key": strategy_key,
                             "attribution_requests": report["requests"].get("attribution", 0),
                             "dry_run_requests": report["requests"].get("dry_run", 0),
                             "unresolved": int((result["status"] == "unresolved").sum())})
    return rows


def bench_pacing(journal: Path) -> list[dict[str, Any]]:
    rows = []
    for label, extra in (("plan given", {"plan": RateLimit(10, 1.0)}), ("learned", {"rate_window": 1.0})):
        with Sandbox(seed_contacts=3_000, profile=Profile("tight", per_window=10, window_seconds=1.0,
                                                          daily_quota=100_000), seed=2) as sandbox:
            frame = pd.DataFrame({"contact_id": sorted(sandbox.existing_ids())[:2_000]})
            result, wall = _run(sandbox, frame, journal, batch_size=50, concurrency=8, **extra)
            rejected = sum(1 for e in sandbox.execution_log() if e["status"] == 429)
            requests = sum(result.attrs["leadlex"]["requests"].values())
            rows.append({"pacing": label, "wall_s": round(wall, 2), "requests": requests,
                         "429s_in_server_log": rejected})
    return rows


def main() -> int:
    journal = Path(tempfile.mkdtemp(prefix="leadlex-bench-")) / "journal.sqlite3"
    results = {
        "machine": {
            "python": platform.python_version(), "platform": platform.platform(), "cpus": __import__("os").cpu_count()
        },
        "date": time.strftime("%Y-%m-%d"),
        "normalise": bench_normalise(),
        "concurrency": bench_concurrency(journal),
        "attribution": bench_attribution(journal),
        "pacing": bench_pacing(journal),
    }
    for section in ("normalise", "concurrency", "attribution", "pacing"):
        data = results[section]
        print(f"\n== {section}")
        print(pd.DataFrame(data if isinstance(data, list) else [data]).to_string(index=False))
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
