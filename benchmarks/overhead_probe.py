"""The client's own cost for one big run: CPU seconds, peak RSS and journal bytes per ID.

The sandbox runs in a child process (its CPU is not counted) with a rate limit high enough never
to pace; this process runs one ``bulk_delete`` (a dry run of ``--ids`` seeded contacts, or of as
many random unknown ones with ``--unknown``, or with ``--delete`` their deletion without
confirmation) and reports ``time.process_time()`` around it, ``ru_maxrss`` and the journal's size.
Targets: 3 CPU-s per million IDs, 500 MB peak, 40 B/ID.

    PYTHONPATH=. .venv/bin/python benchmarks/overhead_probe.py --ids 1000000
    PYTHONPATH=. .venv/bin/python benchmarks/overhead_probe.py --ids 200000 --delete
    PYTHONPATH=. .venv/bin/python benchmarks/overhead_probe.py --ids 1000000 --unknown --no-journal
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing as mp
import pstats
import resource
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import pandas as pd


def _serve(seed_contacts: int, conn: Connection) -> None:
    from leadlex_nb.sandbox import Profile, Sandbox

    profile = Profile("probe", per_window=1_000_000, window_seconds=1.0, daily_quota=10_000_000)
    with Sandbox(seed_contacts=seed_contacts, profile=profile, seed=5) as sandbox:
        conn.send((sandbox.base_url, sandbox.api_key, sorted(sandbox.existing_ids())))
        conn.recv()  # until the parent is done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, required=True, help="unique IDs in the run")
    parser.add_argument("--unknown", action="store_true", help="random IDs the workspace does not hold")
    parser.add_argument("--delete", action="store_true", help="delete them (default: a dry run)")
    parser.add_argument("--no-journal", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's top N functions")
    args = parser.parse_args()

    parent, child = mp.get_context("spawn").Pipe()
    server = mp.get_context("spawn").Process(target=_serve, args=(0 if args.unknown else args.ids, child), daemon=True)
    server.start()
    base_url, api_key, existing = parent.recv()
    ids = [str(uuid.uuid4()) for _ in range(args.ids)] if args.unknown else existing
    frame = pd.DataFrame({"contact_id": ids})
    del existing, ids

    import leadlex_nb

    with tempfile.TemporaryDirectory() as scratch:
        journal: Path | bool = False if args.no_journal else Path(scratch) / "journal.sqlite3"
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits
        cpu, wall = time.process_time(), time.monotonic()
        if profiler:
            profiler.enable()
        result = leadlex_nb.bulk_delete(frame["contact_id"], api_key=api_key, base_url=base_url,
                                        dry_run=not args.delete, confirm=False, journal=journal,
                                        progress=False, verbose=False)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
        journal_bytes = sum(p.stat().st_size for p in Path(scratch).iterdir()) if journal else 0
    parent.send("done")
    server.join(timeout=10)
    n = len(frame)
    print(json.dumps({
        "ids": n, "unknown": args.unknown, "dry_run": not args.delete, "journal": not args.no_journal,
        "client_cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "journal_bytes": journal_bytes, "journal_bytes_per_id": round(journal_bytes / n, 1),
        "statuses": result["status"].value_counts().to_dict(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
