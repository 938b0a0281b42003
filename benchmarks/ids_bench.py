"""Is the vectorised ID check worth its code? ``normalise_ids`` against a plain per-row version.

Times ``leadlex_nb.ids.normalise_ids`` (byte-matrix check in numpy) against ``plain_normalise_ids``
below (one regex per row; same output, checked here with ``assert_frame_equal`` on every column),
and, when ``git`` can show it, the earlier vectorised module (``--previous``, default commit 8eb1cf7:
hashed duplicates, strip only on failure, a separate path for categoricals, reasons once per
distinct value). Median of ``--repeats`` runs in this one process, the implementations interleaved.

Columns (``--rows``, default 1,000,000): about 95 % distinct IDs and 5 % repeats; 94 % lower-case
hyphenated, the rest upper case, braced, ``urn:uuid:``, padded or 32 digits; 1 % junk. The same
values as ``object``, pandas ``string`` and pandas 3's default ``str`` dtype, and as ``object`` with
1 % None/NaN mixed in.

Context for the figures: a run of 1M IDs sends about 2,000 requests (500 IDs each); at the API's
60-300 requests per minute that is 7-33 minutes of network time. The client's own CPU target is
3 CPU-s per 1M IDs in total. Run::

    .venv/bin/python benchmarks/ids_bench.py            # prints a table, writes out/ids_bench.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import re
import reprlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadlex_nb.ids import normalise_ids

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out" / "ids_bench.json"
BUDGET_CPU_S = 3.0  # the client's own CPU target per 1M IDs
REQUESTS_PER_1M = 2_000
RATE_PER_MINUTE = (60, 300)

Normalise = Callable[[pd.Series], pd.DataFrame]

# -- the plain version: what ids.py would be without the byte matrix ------------------------------

_HEX_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
_ACCEPTED = re.compile(rf"(?:urn:uuid:)?(?:(?P<bare>{_HEX_UUID})|\{{(?P<braced>{_HEX_UUID})\}})", re.ASCII | re.I)
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = _shown.maxlong = 60


def _canonical(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _ACCEPTED.fullmatch(value.strip())
    if match is None:
        return None
    digits = (match["bare"] or match["braced"]).replace("-", "").lower()
    canonical = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    return value if canonical == value and type(value) is str else canonical  # keep, don't copy


def _reason(value: object, missing: bool) -> str:
    if missing:
        return "missing value"
    if not isinstance(value, str):
        return f"not a string: {_shown.repr(value)}"
    return f"not a UUID: {_shown.repr(value)}" if value.strip() else "empty string"


def plain_normalise_ids(values: pd.Series) -> pd.DataFrame:
    """The same frame as ``normalise_ids``, one regex per row (passes tests/engine/test_ids.py)."""
    raw = values.to_numpy(dtype=object)
    canonical = pd.Series(map(_canonical, raw), index=values.index, dtype=object)
    valid = canonical.notna()
    ok, missing = valid.tolist(), pd.isna(raw).tolist()
    contact_id = np.fromiter((c if v else r for c, v, r in zip(canonical, ok, raw, strict=True)), object, len(raw))
    reason = [None if v else _reason(r, m) for r, v, m in zip(raw, ok, missing, strict=True)]
    return pd.DataFrame(
        {
            "contact_id": pd.Series(contact_id, index=values.index, dtype=object),
            "valid": valid,
            "invalid_reason": pd.Series(reason, index=values.index, dtype=object),
            "duplicate": canonical.duplicated() & valid,
        },
        index=values.index,
    )


def previous_normalise_ids(commit: str) -> Normalise | None:
    """``normalise_ids`` from ``leadlex_nb/ids.py`` at ``commit``, or None if git cannot show it."""
    try:
        source = subprocess.run(["git", "show", f"{commit}:leadlex_nb/ids.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / f"ids_{commit}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Normalise = module.normalise_ids
    return function


# -- data -----------------------------------------------------------------------------------------


def realistic_ids(rows: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    distinct = round(rows * 0.95)
    blob = rng.bytes(16 * distinct)
    ids = [str(uuid.UUID(bytes=blob[i : i + 16], version=4)) for i in range(0, len(blob), 16)]
    ids += [ids[i] for i in rng.integers(0, distinct, rows - distinct)]  # 5 % repeats, spelled anew below
    order = rng.permutation(rows)
    junk = ["", "n/a", "TBD", "jane.doe@example.com", "  "]
    out = []
    for at, draw in zip(order.tolist(), rng.random(rows).tolist(), strict=True):
        value = ids[at]
        if draw < 0.94:
            out.append(value)
        elif draw < 0.96:
            out.append(value.upper())
        elif draw < 0.97:
            out.append("{" + value + "}")
        elif draw < 0.975:
            out.append("urn:uuid:" + value)
        elif draw < 0.98:
            out.append(" " + value + " ")
        elif draw < 0.99:
            out.append(value.replace("-", ""))
        elif draw < 0.995:
            out.append(junk[at % len(junk)])
        else:
            out.append(value[:-1] + "g" if at % 2 else value[:30])  # 1 % junk in all
    return out


def columns(rows: int) -> dict[str, pd.Series]:
    values = realistic_ids(rows)
    with_missing: list[object] = list(values)
    for at in range(0, rows, 100):  # 1 % missing
        with_missing[at] = None if at % 200 else float("nan")
    return {
        "object": pd.Series(values, dtype=object),
        "string": pd.Series(values, dtype="string"),
        "str (pandas 3 default)": pd.Series(values, dtype="str"),
        "object + None/NaN": pd.Series(with_missing, dtype=object),
    }


# -- timing ---------------------------------------------------------------------------------------


def measure(function: Normalise, series: pd.Series) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    function(series)
    return time.perf_counter() - wall, time.process_time() - cpu


def machine() -> dict[str, Any]:
    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        names = [line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")]
        model = names[0] if names else ""
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--previous", default="8eb1cf7", help="commit of the earlier vectorised ids.py ('' to skip)")
    args = parser.parse_args()

    implementations: dict[str, Normalise] = {"vectorised": normalise_ids, "plain": plain_normalise_ids}
    previous = previous_normalise_ids(args.previous) if args.previous else None
    if previous is not None:
        implementations[f"previous ({args.previous})"] = previous
    results: list[dict[str, Any]] = []
    for name, series in columns(args.rows).items():
        frames = {label: function(series) for label, function in implementations.items()}  # warm-up and check
        for label, frame in frames.items():
            pd.testing.assert_frame_equal(frame, frames["vectorised"], check_exact=True, obj=f"{label} on {name}")
        del frames
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in implementations}
        for _ in range(args.repeats):
            for label, function in implementations.items():
                times[label].append(measure(function, series))
        for label, pairs in times.items():
            results.append({"column": name, "dtype": str(series.dtype), "rows": len(series), "implementation": label,
                            "wall_s": round(statistics.median(w for w, _ in pairs), 3),
                            "cpu_s": round(statistics.median(c for _, c in pairs), 3),
                            "runs_cpu_s": [round(c, 3) for _, c in pairs]})

    per_million = 1_000_000 / args.rows
    print(f"normalise_ids, {args.rows:,} rows, median of {args.repeats}; per 1M and % of the 3 CPU-s budget from CPU-s")
    print(f"{'column':24} {'implementation':22} {'CPU s':>7} {'wall s':>8} {'per 1M':>7} {'% budget':>8}")
    for row in results:
        share = 100 * row["cpu_s"] * per_million / BUDGET_CPU_S
        print(f"{row['column']:24} {row['implementation']:22} {row['cpu_s']:7.3f} {row['wall_s']:8.3f} "
              f"{row['cpu_s'] * per_million:7.2f} {share:7.0f}%")
    network_minutes = [REQUESTS_PER_1M / rate for rate in RATE_PER_MINUTE]
    print(f"\nContext per 1M IDs: {REQUESTS_PER_1M:,} requests = {network_minutes[1]:.0f}-{network_minutes[0]:.0f} min "
          f"of network time; CPU budget {BUDGET_CPU_S:g} CPU-s.")
    summary = []
    for name in dict.fromkeys(row["column"] for row in results):
        cpu = {row["implementation"]: row["cpu_s"] * per_million for row in results if row["column"] == name}
        saved = cpu["plain"] - cpu["vectorised"]
        summary.append({"column": name, "saved_cpu_s_per_1m": round(saved, 2),
                        "saved_share_of_budget": round(saved / BUDGET_CPU_S, 2),
                        "ratio_plain_over_vectorised": round(cpu["plain"] / cpu["vectorised"], 2),
                        "saved_share_of_network_time_at_300_per_min": round(saved / (network_minutes[1] * 60), 4)})
        print(f"{name:24} vectorised saves {saved:.2f} CPU-s per 1M ({100 * saved / BUDGET_CPU_S:.0f}% of the budget, "
              f"{cpu['plain'] / cpu['vectorised']:.1f}x; {100 * saved / (network_minutes[1] * 60):.2f}% of a "
              f"{network_minutes[1]:.0f}-min run)")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]),
                               "date": time.strftime("%Y-%m-%d"), "machine": machine(), "rows": args.rows,
                               "repeats": args.repeats, "budget_cpu_s_per_1m": BUDGET_CPU_S,
                               "network_minutes_per_1m": network_minutes, "results": results, "summary": summary},
                              indent=2) + "\n")
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
