"""A sandbox in a process of its own, so a client measured beside it shares no CPU or GIL with it.

``python -m benchmarks.server_child --seed-contacts N --ids-file PATH`` seeds N contacts, writes
their IDs to PATH (CSV, column ``contact_id``), prints ``LEADLEX_BASE_URL=...`` and
``LEADLEX_API_KEY=...`` to its stdout (a pipe the driver reads) and serves until stdin closes; a
line ``clear`` on stdin empties its execution log (answered ``cleared``). Then, with ``--log-file``,
it writes its bulk-delete execution log there as JSON.

By default its limits never bind (section B measures the client's own work, not pacing);
``--hidden`` gives it section A's hidden 20-per-second window and ``--fault-seed`` its latency draws.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from leadlex_nb.sandbox import Faults, Profile, Sandbox

UNLIMITED = Profile("unlimited", per_window=10**7, window_seconds=1.0, daily_quota=10**9)
SEED_CHUNK = 50_000  # seeding in chunks keeps the server's peak memory down
BULK_DELETE_PATH = "/v1/contacts/bulk-delete"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import HIDDEN_PROFILE, LATENCY_JITTER_S, LATENCY_S

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed-contacts", type=int, required=True)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--hidden", action="store_true", help="section A's hidden rate window")
    parser.add_argument("--fault-seed", type=int, help=f"latency {LATENCY_S} ± {LATENCY_JITTER_S} s, these draws")
    parser.add_argument("--log-file", help="where to write the bulk-delete execution log at exit")
    args = parser.parse_args(argv)
    sandbox = Sandbox(seed_contacts=0, profile=HIDDEN_PROFILE if args.hidden else UNLIMITED, seed=5)
    ids: list[str] = []
    for start in range(0, args.seed_contacts, SEED_CHUNK):
        ids.extend(sandbox.seed(min(SEED_CHUNK, args.seed_contacts - start)))
    pd.DataFrame({"contact_id": ids}).to_csv(args.ids_file, index=False)
    if args.fault_seed is not None:
        sandbox.set_faults(Faults(latency=LATENCY_S, latency_jitter=LATENCY_JITTER_S, seed=args.fault_seed))
    with sandbox:
        print(f"LEADLEX_BASE_URL={sandbox.base_url}", flush=True)
        print(f"LEADLEX_API_KEY={sandbox.api_key}", flush=True)
        for line in sys.stdin:  # until the driver closes our stdin
            if line.strip() == "clear":  # between clients: each faces the same server
                sandbox.clear_execution_log()
                print("cleared", flush=True)
        if args.log_file:
            log = [e for e in sandbox.execution_log() if e["path"] == BULK_DELETE_PATH]
            Path(args.log_file).write_text(json.dumps(log, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
