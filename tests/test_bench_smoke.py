"""``make bench`` still runs end to end: every section measured on a tiny input, tables built, JSON written.

Nothing here is timed: the figures belong in BENCHMARKS.md, not in assertions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmarks live beside the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Scale  # noqa: E402
from benchmarks.run import run_all, write  # noqa: E402
from benchmarks.tables import SECTIONS, render  # noqa: E402

TINY = Scale(side_by_side_ids=1_000, side_by_side_repeats=1, stall_cap_s=30.0, overhead_ids=2_000,
             overhead_repeats=1, unknown_ids=1_000, fault_ids=1_000, fault_seeds=1,
             learning_cases=((10, 1.0, 20, 1),), snapshot_ids=200, large_workspace=2_000)


@pytest.mark.timeout(300)
def test_every_section_is_measured_tabled_and_written(tmp_path: Path) -> None:
    results = run_all(TINY, progress=lambda line: None)
    write(results, tmp_path, tmp_path / "results.json")

    written = json.loads((tmp_path / "results.json").read_text())
    assert set(SECTIONS) <= set(written)
    for name in SECTIONS:
        assert json.loads((tmp_path / f"{name}.json").read_text())["summary"], name
    assert {row["contender"] for row in written["side_by_side"]["summary"]} == {"a", "b", "c", "d", "e"}
    assert {row["client"] for row in written["overhead"]["summary"]} == {"floor", "aiohttp", "leadlex"}
    assert all(row["anomalies"] == 0 for row in written["fault_attempts"]["summary"])
    text = render(written)
    assert all(row["all_would_delete"] for row in written["learning"]["summary"])
    for title in ("A. Side by side", "B. Client overhead", "C. Requests per 1,000 IDs", "D. Attempts per batch",
                  "E. Defaults only"):
        assert title in text
