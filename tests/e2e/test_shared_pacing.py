"""Two runs at once with one key share one rate governor, so together they keep to the key's limit.

Against the sandbox over real sockets: each run alone would pace itself to the whole limit, and
two of them would get every other window answered with 429s.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

import leadlex_nb  # noqa: F401  (registers the accessor)
from leadlex_nb import RateLimit
from leadlex_nb.sandbox import Profile, Sandbox


def test_two_concurrent_runs_with_one_key_keep_together_to_its_limit(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_profile(Profile("tight", per_window=6, window_seconds=1.0, daily_quota=100_000))
    existing = sandbox.seed(120)
    halves = [existing[:60], existing[60:]]
    results: dict[int, pd.DataFrame] = {}
    failures: list[BaseException] = []

    def run(which: int) -> None:
        try:
            results[which] = pd.DataFrame({"c": halves[which]}).leadlex.bulk_delete(
                "c", api_key=sandbox.api_key, base_url=sandbox.base_url, dry_run=True, batch_size=10,
                plan=RateLimit(6, 1.0), journal=tmp_path / f"journal{which}.sqlite3", progress=False,
                verbose=False)
        except BaseException as exc:  # reported below, with the other run's outcome
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert all(set(results[i]["status"].astype(str)) == {"would_delete"} for i in (0, 1))
    log = [e for e in sandbox.execution_log() if e["path"] == "/v1/contacts/bulk-delete"]
    assert len(log) == 12
    assert [e for e in log if e["status"] == 429] == []
