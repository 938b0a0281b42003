"""Section C: requests per 1,000 IDs as the share of unknown IDs grows.

A whole run (dry run, attribution of the batches that reported missing IDs, deletion) on a fresh
sandbox whose limits never bind, with a read-capable key (attribution by export) and a write-only
key (attribution by bisection, within the default budget); and 2 % unknown among IDs of a workspace
larger than one export call (50,000 rows), read by export pages.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd

import leadlex_nb  # noqa: F401  (registers the accessor)
from benchmarks.common import ROOMY_PROFILE, Scale, fresh_journal
from leadlex_nb.sandbox import Sandbox

UNKNOWN_SHARES = (0.0, 0.002, 0.02, 0.2)
KEYS = ("read+write", "write-only")


def _frame(existing: list[str], ids: int, unknown_share: float, seed: int) -> pd.DataFrame:
    unknown = round(ids * unknown_share)
    rng = random.Random(seed)
    values = existing[:ids - unknown] + [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(unknown)]
    rng.shuffle(values)
    return pd.DataFrame({"contact_id": values})


def run_one(ids: int, unknown_share: float, key_kind: str, workspace: int | None = None) -> dict[str, Any]:
    """One run; ``workspace``: how many contacts the workspace holds (default: as many as the IDs)."""
    workspace = workspace or ids
    with Sandbox(seed_contacts=workspace, profile=ROOMY_PROFILE, seed=3) as sandbox, fresh_journal() as journal:
        existing = sorted(sandbox.existing_ids())
        frame = _frame(random.Random(7).sample(existing, ids) if workspace > ids else existing, ids,
                       unknown_share, seed=5)
        key = sandbox.api_key if key_kind == "read+write" else sandbox.create_key(["write:contacts"])
        result = frame.leadlex.bulk_delete("contact_id", confirm=False, api_key=key, base_url=sandbox.base_url,
                                           journal=journal, progress=False, verbose=False, snapshot=False)
    requests = {k: int(v) for k, v in result.attrs["leadlex"]["requests"].items()}
    total = sum(requests.values())
    statuses = result["status"].value_counts()
    return {"unknown": f"{unknown_share:.1%}", "key": key_kind, "ids": ids, "workspace": workspace,
            "dry_run": requests.get("dry_run", 0), "attribution": requests.get("attribution", 0),
            "delete": requests.get("delete", 0), "total": total,
            "requests_per_1000_ids": round(total * 1000 / ids, 2),
            "deleted": int(statuses.get("deleted", 0)), "not_found": int(statuses.get("not_found", 0)),
            "gone": int(statuses.get("gone", 0)), "unknown_status": int(statuses.get("unknown", 0))}


def measure(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    rows = []
    for share in UNKNOWN_SHARES:
        for key_kind in KEYS:
            row = run_one(scale.unknown_ids, share, key_kind)
            rows.append(row)
            progress(f"  C {row['unknown']} {key_kind}: {row['total']} requests "
                     f"({row['requests_per_1000_ids']} per 1,000 IDs)")
    # Past the export's 50,000 rows a call: it is paged by creation date (5 calls for 200,000).
    row = run_one(scale.unknown_ids, 0.02, "read+write", workspace=scale.large_workspace)
    rows.append(row)
    progress(f"  C 2% in a workspace of {scale.large_workspace:,}: {row['attribution']} attribution requests, "
             f"{row['not_found']} not_found, {row['gone']} gone")
    return {"ids": scale.unknown_ids, "summary": rows}
