"""A sandbox in a process of its own, for section B: the client's CPU and memory are then its own.

``python -m benchmarks.server_child --seed-contacts N --ids-file PATH`` seeds N contacts, writes
their IDs to PATH (CSV, column ``contact_id``), prints ``LEADLEX_BASE_URL=...`` and
``LEADLEX_API_KEY=...`` to its stdout (a pipe the driver reads) and serves until stdin closes.
Its limits never bind: section B measures the client's own work, not pacing.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from leadlex_nb.sandbox import Profile, Sandbox

UNLIMITED = Profile("unlimited", per_window=10**7, window_seconds=1.0, daily_quota=10**9)
SEED_CHUNK = 50_000  # seeding in chunks keeps the server's peak memory down


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed-contacts", type=int, required=True)
    parser.add_argument("--ids-file", required=True)
    args = parser.parse_args(argv)
    sandbox = Sandbox(seed_contacts=0, profile=UNLIMITED, seed=5)
    ids: list[str] = []
    for start in range(0, args.seed_contacts, SEED_CHUNK):
        ids.extend(sandbox.seed(min(SEED_CHUNK, args.seed_contacts - start)))
    pd.DataFrame({"contact_id": ids}).to_csv(args.ids_file, index=False)
    with sandbox:
        print(f"LEADLEX_BASE_URL={sandbox.base_url}", flush=True)
        print(f"LEADLEX_API_KEY={sandbox.api_key}", flush=True)
        sys.stdin.read()  # the driver closes our stdin when it is done
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
