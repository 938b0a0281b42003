"""Section A: the same job under a hidden 20-per-second window, five clients side by side.

Every contender gets a fresh sandbox, in a process of its own (its CPU and GIL are not the client's,
as a real server's are not), with the same number of contacts and the same latency draws (50 ± 20 ms),
and does the same work: a dry run over every ID, then the deletion (2 × N/500 requests). The
reference clients (a, b) make the dry run a pass of their own, so both sides send the same requests;
leadlex-nb's delete phase is timed from its confirmation callback to its return. Contenders are
interleaved within each repeat; leadlex-nb with defaults only gets a wall-time cap, so a stall
shows as a figure (and, once seen, is not repeated).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import leadlex_nb  # noqa: F401  (registers the accessor)
from benchmarks.common import (
    Scale,
    ServerProcess,
    Stopwatch,
    count_429,
    fresh_journal,
    ideal_seconds,
    median,
    requests_for,
)
from benchmarks.contenders import gather_all, reference_loop
from leadlex_nb import LeadLexError, RateLimit, StopSignal

REFERENCE = {"a": ("reference page loop (requests, 1 s sleep on 429)", reference_loop),
             "b": ("asyncio.gather + aiohttp, no pacing, 1 s retry", gather_all)}
LEADLEX = {"c": ("leadlex-nb, plan=RateLimit(20, 1.0)", {"plan": RateLimit(20, 1.0)}),
           "d": ("leadlex-nb, learning (rate_window=1)", {"rate_window": 1}),
           "e": ("leadlex-nb, defaults only", {})}
CONTENDERS = {**{k: v[0] for k, v in REFERENCE.items()}, **{k: v[0] for k, v in LEADLEX.items()}}


def _phase_figures(log: list[dict[str, Any]], boundary: float) -> dict[str, int]:
    delete = [e for e in log if e["at"] >= boundary]
    return {"requests_total": len(log), "requests_delete": len(delete),
            "rate_limited_total": count_429(log), "rate_limited_delete": count_429(delete),
            "deleted_on_server": sum(len(e.get("deleted_ids") or ()) for e in log)}


def _run_reference(key: str, sandbox: ServerProcess, ids: list[str]) -> dict[str, Any]:
    send = REFERENCE[key][1]
    with Stopwatch() as total:
        send(ids, sandbox.base_url, sandbox.api_key, dry_run=True)
        boundary = time.time()
        delete = send(ids, sandbox.base_url, sandbox.api_key, dry_run=False)
    return {"total_s": total.seconds, "delete_s": delete.seconds, "stalled": False,
            "client_rate_limited": delete.rate_limited, "boundary": boundary}


def _run_leadlex(key: str, sandbox: ServerProcess, ids: list[str], cap_s: float) -> dict[str, Any]:
    confirmed: list[tuple[float, float]] = []  # (perf_counter, wall clock) when the delete phase starts

    def confirm(plan: Any) -> bool:
        confirmed.append((time.perf_counter(), time.time()))
        return True

    stop = StopSignal()
    timer = threading.Timer(cap_s, stop.set, args=(f"benchmark cap of {cap_s:.0f} s reached",))
    frame = pd.DataFrame({"contact_id": ids})
    timer.start()
    stalled = False
    with fresh_journal() as journal, Stopwatch() as total:
        try:
            result = frame.leadlex.bulk_delete(
                "contact_id", api_key=sandbox.api_key, base_url=sandbox.base_url, confirm=confirm, stop=stop,
                journal=journal, progress=False, verbose=False, snapshot=False, **LEADLEX[key][1])
        except LeadLexError as exc:  # the cap: the run stops cleanly and carries its partial result
            stalled = stop.reason is not None
            if not stalled or exc.result is None:
                raise
            result = exc.result
        finally:
            timer.cancel()
    ended = total.started + total.seconds
    delete_s = ended - confirmed[0][0] if confirmed else None  # None: stopped before the delete phase
    boundary = confirmed[0][1] if confirmed else float("inf")
    report = result.attrs["leadlex"]
    return {"total_s": total.seconds, "delete_s": delete_s, "stalled": stalled,
            "client_requests": report["requests"], "client_rate_limited": report["rate_limited"],
            "statuses": {k: int(v) for k, v in result["status"].value_counts().items() if v},
            "boundary": boundary}


def measure(scale: Scale, progress: Callable[[str], None] = print) -> dict[str, Any]:
    ids_n = scale.side_by_side_ids
    runs: list[dict[str, Any]] = []
    stalled: set[str] = set()
    for repeat in range(scale.side_by_side_repeats):
        for key in CONTENDERS:
            if key in stalled:
                continue
            with tempfile.TemporaryDirectory(prefix="leadlex-bench-a-") as workdir:
                with ServerProcess(ids_n, Path(workdir), hidden=True, fault_seed=100 + repeat) as sandbox:
                    ids = sorted(sandbox.ids())
                    row = (_run_reference(key, sandbox, ids) if key in REFERENCE
                           else _run_leadlex(key, sandbox, ids, scale.stall_cap_s))
                row.update(_phase_figures(sandbox.bulk_delete_log(), row.pop("boundary")))
            row.update(contender=key, repeat=repeat)
            runs.append(row)
            if row["stalled"]:
                stalled.add(key)
            delete_text = "no delete phase" if row["delete_s"] is None else f"{row['delete_s']:.2f} s delete"
            progress(f"  A[{repeat}] {key}: {row['total_s']:.2f} s total, {delete_text}, "
                     f"{row['requests_total']} requests, {row['rate_limited_total']} 429s"
                     + (" (stalled at the cap)" if row["stalled"] else ""))
    return summarise(runs, ids_n, scale.stall_cap_s)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def summarise(runs: list[dict[str, Any]], ids_n: int, cap_s: float) -> dict[str, Any]:
    """Medians per contender, efficiency against the ideal, and (c)-(e) as multiples of (a) and (b)."""
    per_phase = requests_for(ids_n)
    ideal_total, ideal_delete = ideal_seconds(2 * per_phase), ideal_seconds(per_phase)
    rows: list[dict[str, Any]] = []
    for key, label in CONTENDERS.items():
        mine = [r for r in runs if r["contender"] == key]
        if not mine:
            continue
        total = median(r["total_s"] for r in mine)
        deletes = [r["delete_s"] for r in mine if r["delete_s"] is not None]
        delete = median(deletes) if deletes else None
        rows.append({"contender": key, "label": label, "runs": len(mine),
                     "stalled_runs": sum(r["stalled"] for r in mine),
                     "total_s": round(total, 2), "delete_s": _round(delete),
                     "efficiency_total": round(ideal_total / total, 2),
                     "efficiency_delete": _round(ideal_delete / delete if delete else None),
                     "requests_total": median(r["requests_total"] for r in mine),
                     "requests_delete": median(r["requests_delete"] for r in mine),
                     "rate_limited_total": median(r["rate_limited_total"] for r in mine),
                     "rate_limited_delete": median(r["rate_limited_delete"] for r in mine)})
    by_key = {r["contender"]: r for r in rows}
    for row in rows:
        for base in ("a", "b"):
            if row["contender"] in LEADLEX and base in by_key:
                row[f"speedup_total_vs_{base}"] = round(by_key[base]["total_s"] / row["total_s"], 2)
                row[f"speedup_delete_vs_{base}"] = _round(
                    by_key[base]["delete_s"] / row["delete_s"] if row["delete_s"] else None)
    return {"ids": ids_n, "requests_per_phase": per_phase, "ideal_total_s": round(ideal_total, 2),
            "ideal_delete_s": round(ideal_delete, 2), "stall_cap_s": cap_s, "summary": rows, "runs": runs}
