"""One client of section B in a process of its own, so its CPU time and peak RSS are its own.

``python -m benchmarks.client_child MODE --ids-file PATH`` with ``LEADLEX_BASE_URL`` and
``LEADLEX_API_KEY`` in the environment; prints one JSON line. Modes:

- ``floor``: pandas loads the IDs and JSON-encodes the dry-run bodies (500 IDs each), nothing sent;
- ``aiohttp``: the same bodies sent as dry runs by a plain aiohttp client, 4 in flight;
- ``leadlex``: ``df.leadlex.bulk_delete("contact_id", dry_run=True)`` with a fresh journal;
- ``leadlex-delete``: the same run deleting (confirmed by a callback, ``snapshot=False``): not part
  of section B, which measures dry runs; run it by hand against a fresh sandbox.

``import_cpu_s`` covers importing leadlex-nb (pandas and aiohttp come before any figure),
``load_cpu_s`` reading the CSV, ``work_cpu_s`` everything after that (the figure to compare);
``peak_rss_mb`` is the process's peak, ``rss_after_load_mb`` the peak before the work began.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd

CONCURRENCY = 4  # leadlex-nb's default today; the plain client uses the same
BATCH = 500
PATH = "/v1/contacts/bulk-delete"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _bodies(ids: list[str]) -> list[bytes]:
    return [json.dumps({"contact_ids": ids[i:i + BATCH], "dry_run": True}).encode()
            for i in range(0, len(ids), BATCH)]


async def _send_all(bodies: list[bytes], base_url: str, api_key: str) -> int:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    slots = asyncio.Semaphore(CONCURRENCY)
    answered = 0

    async def send(session: aiohttp.ClientSession, index: int, body: bytes) -> None:
        nonlocal answered
        async with slots, session.post(f"{base_url}{PATH}", data=body,
                                       headers={**headers, "Idempotency-Key": f"plain-{index}"}) as r:
            r.raise_for_status()
            await r.json()
            answered += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(send(session, i, b) for i, b in enumerate(bodies)))
    return answered


def _import_libraries(mode: str) -> None:
    if mode.startswith("leadlex"):
        import leadlex_nb  # noqa: F401  (registers the accessor)


def _run_leadlex(frame: pd.DataFrame, base_url: str, api_key: str, *, delete: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {"confirm": lambda plan: True, "snapshot": False} if delete else {"dry_run": True}
    with tempfile.TemporaryDirectory(prefix="leadlex-bench-journal-") as directory:
        journal_dir = Path(directory)
        result = frame.leadlex.bulk_delete("contact_id", api_key=api_key, base_url=base_url, **options,
                                           journal=journal_dir / "journal.sqlite3", progress=False, verbose=False)
        journal_bytes = sum(p.stat().st_size for p in journal_dir.iterdir())
    return {"requests": result.attrs["leadlex"]["requests"], "journal_bytes": journal_bytes,
            "statuses": {k: int(v) for k, v in result["status"].value_counts().items() if v}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("floor", "aiohttp", "leadlex", "leadlex-delete"))
    parser.add_argument("--ids-file", required=True)
    args = parser.parse_args(argv)
    base_url = os.environ.get("LEADLEX_BASE_URL", "")
    api_key = os.environ.get("LEADLEX_API_KEY", "")

    cpu_start = _cpu_s()
    _import_libraries(args.mode)
    cpu_imported = _cpu_s()
    frame = pd.read_csv(args.ids_file, dtype={"contact_id": "str"})
    cpu_loaded, rss_loaded, wall_started = _cpu_s(), _peak_rss_mb(), time.perf_counter()
    extra: dict[str, Any] = {}
    if args.mode.startswith("leadlex"):
        extra = _run_leadlex(frame, base_url, api_key, delete=args.mode == "leadlex-delete")
    else:
        bodies = _bodies(frame["contact_id"].tolist())
        extra["bodies"] = len(bodies)
        if args.mode == "aiohttp":
            extra["answered"] = asyncio.run(_send_all(bodies, base_url, api_key))
    report = {"mode": args.mode, "ids": len(frame), "import_cpu_s": round(cpu_imported - cpu_start, 3),
              "load_cpu_s": round(cpu_loaded - cpu_imported, 3),
              "work_cpu_s": round(_cpu_s() - cpu_loaded, 3), "process_cpu_s": round(_cpu_s(), 3),
              "work_wall_s": round(time.perf_counter() - wall_started, 3),
              "rss_after_load_mb": round(rss_loaded, 1), "peak_rss_mb": round(_peak_rss_mb(), 1), **extra}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
