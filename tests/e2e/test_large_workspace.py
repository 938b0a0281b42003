"""Past the export's 50,000 rows a call: attribution and the snapshot page it by creation date."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pandas as pd
import pytest

from leadlex_nb.sandbox import Sandbox
from leadlex_nb.sandbox.profiles import Profile

ROOMY = Profile("roomy", per_window=100_000, window_seconds=1.0, daily_quota=10**8)


@pytest.mark.timeout(300)
def test_two_percent_unknown_in_a_120000_contact_workspace_end_exact_within_the_default_budget(
        tmp_path: Path) -> None:
    with Sandbox(seed_contacts=120_000, profile=ROOMY, seed=3) as sandbox:
        existing = sorted(sandbox.existing_ids())
        rng = random.Random(1)
        known = rng.sample(existing, 9_800)
        unknown = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200)]
        frame = pd.DataFrame({"c": known + unknown}).sample(frac=1, random_state=2)
        result = frame.leadlex.bulk_delete("c", api_key=sandbox.api_key, base_url=sandbox.base_url,
                                           confirm=False, journal=tmp_path / "j.sqlite3", progress=False,
                                           verbose=False)
        exports = [e for e in sandbox.execution_log() if e["path"] == "/v1/contacts/export"]
        assert set(existing) - sandbox.existing_ids() == set(known)
    status = result.set_index("contact_id")["status"].astype(str)
    assert set(status[known]) == {"deleted"} and set(status[unknown]) == {"not_found"}
    requests = result.attrs["leadlex"]["requests"]
    # The size probe, then 3 export pages (50,000 rows each, overlapping by a row); the snapshot reuses them.
    assert requests["attribution"] == 4 and len(exports) == 3 and "snapshot" not in requests
    assert result.attrs["leadlex"]["snapshot"] is not None
    assert [bool(e.get("status") == 200) for e in exports] == [True] * 3
