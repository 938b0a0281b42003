"""Section F: what the snapshot before a deletion costs with each read, and restoring from it.

For each read (export, list, get): a fresh sandbox of ``2 × n`` contacts whose limits never bind,
delete ``n`` of them with ``snapshot=<read>``, then restore them; the requests and seconds of
each, and how many re-created contacts equal their original on every field the read covered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

import leadlex_nb
from benchmarks.common import ROOMY_PROFILE, Scale, fresh_journal
from leadlex_nb.sandbox import Sandbox
from leadlex_nb.snapshot import FIELDS_BY_SOURCE

READS = ("export", "list", "get")
_STORE_NAME = {"created_date": "created_at"}


def _equal_fields(before: dict[str, Any], after: dict[str, Any] | None, read: str) -> bool:
    if after is None:
        return False
    return all(after[_STORE_NAME.get(f, f)] == before[_STORE_NAME.get(f, f)]
               for f in FIELDS_BY_SOURCE[read] if f != "updated_date")


def run_one(planned: int, read: str) -> dict[str, Any]:
    with Sandbox(seed_contacts=2 * planned, profile=ROOMY_PROFILE, seed=11) as sandbox, fresh_journal() as journal:
        ids = sorted(sandbox.existing_ids())[:planned]
        originals = {cid: sandbox.contact(cid) for cid in ids}
        started = time.perf_counter()
        result = pd.DataFrame({"contact_id": ids}).leadlex.bulk_delete(
            "contact_id", confirm=False, api_key=sandbox.api_key, base_url=sandbox.base_url, journal=journal,
            progress=False, verbose=False, snapshot=read)
        delete_s = time.perf_counter() - started
        requests = result.attrs["leadlex"]["requests"]
        started = time.perf_counter()
        restored = leadlex_nb.restore(result.attrs["leadlex"]["run_id"], api_key=sandbox.api_key, journal=journal,
                                      confirm=False, progress=False, verbose=False)
        restore_s = time.perf_counter() - started
        equal = sum(_equal_fields(originals[old], sandbox.contact(new), read)
                    for old, new in zip(restored["contact_id"], restored["new_contact_id"], strict=True) if new)
    return {"read": read, "planned": planned, "workspace": 2 * planned,
            "snapshot_requests": int(requests.get("snapshot", 0)),
            "snapshot_requests_per_10000": round(requests.get("snapshot", 0) * 10_000 / planned, 1),
            "delete_run_s": round(delete_s, 2), "restored": int((restored["status"] == "restored").sum()),
            "restore_requests": int(restored.attrs["leadlex"]["requests"].get("restore", 0)),
            "restore_s": round(restore_s, 2), "fields_equal": equal}


def measure(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    rows = []
    for read in READS:
        row = run_one(scale.snapshot_ids, read)
        rows.append(row)
        progress(f"  F {read}: {row['snapshot_requests']} snapshot requests, {row['restored']} restored "
                 f"in {row['restore_requests']} requests, {row['fields_equal']} equal")
    return {"planned": scale.snapshot_ids, "summary": rows}
