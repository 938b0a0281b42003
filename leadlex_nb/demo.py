"""The main job, end to end, against the embedded sandbox (``make demo``).

Seeds a sandbox with 20,000 contacts, builds a frame of 10,000 of their IDs plus 500
unknown UUIDs, 100 junk strings and 200 repeats, runs a dry run, then deletes with
``confirm=False`` (no prompt, said out loud), prints the per-status summary, checks every
row against the sandbox's ground truth, and writes the result frame to ``out/``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

import leadlex_nb  # noqa: F401  (registers .leadlex)
from leadlex_nb import RateLimit
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.results import summarise, summary_line
from leadlex_nb.sandbox import Sandbox


def build_frame(existing: list[str], *, known: int, unknown: int, junk: int, repeats: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    chosen = rng.sample(existing, known)
    unknown_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(unknown)]
    junk_values = [rng.choice(["", "  ", "n/a", "12345", "not-a-uuid", None, "{bad}"]) for _ in range(junk)]
    repeated = rng.sample(chosen, repeats)
    # Mixed spellings: upper case, braces, urn prefix; the engine canonicalises them.
    spelled = [rng.choice([c, c.upper(), "{" + c + "}", "urn:uuid:" + c, f" {c} "]) for c in chosen]
    values = spelled + unknown_ids + junk_values + repeated
    rng.shuffle(values)
    return pd.DataFrame({"contact_id": values, "segment": [rng.choice("ABC") for _ in values]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed-contacts", type=int, default=20_000)
    parser.add_argument("--known", type=int, default=10_000)
    parser.add_argument("--unknown", type=int, default=500)
    parser.add_argument("--junk", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    journal = Path(tempfile.mkdtemp(prefix="leadlex-demo-")) / "journal.sqlite3"
    with Sandbox(seed_contacts=args.seed_contacts, profile="fast", seed=7) as sandbox:
        existing = sorted(sandbox.existing_ids())
        frame = build_frame(existing, known=args.known, unknown=args.unknown, junk=args.junk,
                            repeats=args.repeats, seed=11)
        print(f"sandbox at {sandbox.base_url} with {len(existing)} contacts; frame of {len(frame)} rows")
        # The sandbox's "fast" profile is Pro-shaped with one-second windows: pace to it.
        options = dict(api_key=sandbox.api_key, base_url=sandbox.base_url, journal=journal,
                       progress=sys.stderr.isatty(), plan=RateLimit(50, 1.0))

        print("Running bulk_delete with confirm=False: it dry-runs every ID first, then deletes the")
        print("dry-run plan WITHOUT a confirmation prompt (confirm=False is for scripts like this one).")
        before = sandbox.existing_ids()
        started = time.monotonic()
        result = frame.leadlex.bulk_delete("contact_id", confirm=False, **options)
        wall = time.monotonic() - started
        after = sandbox.existing_ids()
        log = sandbox.execution_log()

    report = result.attrs["leadlex"]
    checks = audit(result, existed_before=before, exists_after=after, execution_log=log, run_id=report["run_id"])
    print("\nResult:")
    print(summary_line(result))
    print(summarise(result).to_string())
    print(f"\nrequests by phase: {json.dumps(report['requests'])}; 429 answers: {report['rate_limited']}")
    print(f"wall time: {wall:.2f} s")
    print("ground truth: " + ", ".join(f"{k}={checks[k]}" for k in (*ANOMALIES, "overclaim")))
    print(f"exact rows: {checks['exact_rows']} of {checks['unique_rows']} unique rows")

    result_path = out / "demo-result.csv"
    frame.join(result.drop(columns=["contact_id"])).to_csv(result_path)
    print(f"result frame written to {result_path}")
    bad = sum(checks[k] for k in ANOMALIES) + checks["overclaim"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
