"""Snapshot before deleting, restore from it: against the sandbox over real sockets.

Every re-created contact is compared field by field with the original as the sandbox stored it
before the deletion; faults on the create endpoint (lost answers, 5xx) must create no duplicate.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import leadlex_nb
from leadlex_nb.hooks import PlanSummary
from leadlex_nb.journal import Journal
from leadlex_nb.render_outcome import summary_text
from leadlex_nb.restore_plan import RestorePlan, create_body
from leadlex_nb.sandbox import Sandbox
from leadlex_nb.sandbox.faults import Faults
from leadlex_nb.snapshot import FIELDS_BY_SOURCE, read_snapshot

# Store column -> snapshot field, for the fields a snapshot source covers.
_STORE_NAME = {"created_date": "created_at"}


def _delete(sandbox: Sandbox, key: str, ids: list[str], journal: Path, **options: Any) -> pd.DataFrame:
    frame = pd.DataFrame({"contact_id": ids})
    return frame.leadlex.bulk_delete("contact_id", api_key=key, base_url=sandbox.base_url, journal=journal,
                                     progress=False, verbose=False, **{"confirm": False, **options})


def _restore(sandbox: Sandbox, key: str, run_id: str, journal: Path, ids: Any = None, **options: Any) -> pd.DataFrame:
    return leadlex_nb.restore(run_id, ids, api_key=key, journal=journal, progress=False, verbose=False,
                              **{"confirm": False, **options})


def _assert_same_contacts(originals: dict[str, dict[str, Any]], restored: pd.DataFrame, sandbox: Sandbox,
                          source: str) -> None:
    """Every covered field equal; a field the source does not cover is unset on the new contact."""
    assert (restored["status"] == "restored").all(), restored["status"].value_counts()
    covered = [f for f in FIELDS_BY_SOURCE[source] if f != "updated_date"]  # the server sets it
    for old_id, new_id in zip(restored["contact_id"], restored["new_contact_id"], strict=True):
        before, after = originals[old_id], sandbox.contact(new_id)
        assert after is not None and new_id != old_id
        for field in covered:
            name = _STORE_NAME.get(field, field)
            assert after[name] == before[name], (field, before[name], after[name])
        if "custom_fields" not in covered:
            assert after["custom_fields"] == {}


def test_deleting_5000_then_restoring_them_brings_back_every_snapshotted_field(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=6000) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:5000]
        originals = {cid: sandbox.contact(cid) for cid in ids}
        result = _delete(sandbox, key, ids, journal)
        assert (result["status"] == "deleted").all()
        report = result.attrs["leadlex"]
        assert report["requests"]["snapshot"] == 2  # the workspace's size, then one export
        snapshot = read_snapshot(Path(report["snapshot"]))
        assert sorted(snapshot.index) == ids and set(snapshot["source"]) == {"export"}
        assert not set(ids) & sandbox.existing_ids()

        summary = summary_text("finished", result)
        assert f"leadlex_nb.restore({report['run_id']!r}) re-creates them" in summary and report["snapshot"] in summary
        shown: list[RestorePlan] = []
        with pytest.raises(leadlex_nb.ConfirmationDeclined):
            _restore(sandbox, key, report["run_id"], journal, confirm=lambda plan: shown.append(plan) or False)
        assert "5,000 of them were snapshotted by export: re-created without custom fields." in shown[0].describe()
        restored = _restore(sandbox, key, report["run_id"], journal)
        assert list(restored["contact_id"]) == [cid for cid in snapshot.index]
        _assert_same_contacts(originals, restored, sandbox, "export")
        assert restored.attrs["leadlex"]["requests"] == {"restore": 10}
        assert len(sandbox.existing_ids()) == 6000


def test_a_small_plan_is_read_contact_by_contact_custom_fields_too(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=300) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:40]
        originals = {cid: sandbox.contact(cid) for cid in ids}
        assert any(c["custom_fields"] for c in originals.values())  # the comparison below means something
        result = _delete(sandbox, key, ids, journal, snapshot="get")
        assert result.attrs["leadlex"]["requests"]["snapshot"] == 41
        restored = _restore(sandbox, key, result.attrs["leadlex"]["run_id"], journal)
        _assert_same_contacts(originals, restored, sandbox, "get")


def test_the_plan_shows_the_snapshot_and_its_cost_before_the_user_decides(tmp_path: Path) -> None:
    shown: list[PlanSummary] = []
    with Sandbox(seed_contacts=800) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:600]
        result = _delete(sandbox, key, ids, tmp_path / "j.sqlite3", confirm=lambda s: shown.append(s) or True)
    (plan,) = shown
    assert plan.snapshot is not None and plan.snapshot.strategy == "export" and plan.snapshot_requests == 1
    text = plan.describe()
    assert "Snapshot before deleting: 600 contacts by export (about 1 request(s), without custom fields)" in text
    assert (result["status"] == "deleted").all()


def test_a_missing_snapshot_file_is_named(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=50) as sandbox:
        key = sandbox.create_key()
        result = _delete(sandbox, key, sorted(sandbox.existing_ids())[:5], journal)
        path = Path(result.attrs["leadlex"]["snapshot"])
        path.rename(tmp_path / "moved")
        for attempt in (lambda: leadlex_nb.snapshot_of(result.attrs["leadlex"]["run_id"], journal),
                        lambda: _restore(sandbox, key, result.attrs["leadlex"]["run_id"], journal)):
            with pytest.raises(leadlex_nb.RestoreError, match=f"is missing: {path}"):
                attempt()


def test_restoring_twice_never_creates_twice_and_a_contact_never_deleted_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=500) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())
        deleted = _delete(sandbox, key, ids[:100], journal)
        run_id = deleted.attrs["leadlex"]["run_id"]
        resumed = leadlex_nb.resume(run_id, api_key=key, journal=journal, progress=False, verbose=False)
        assert resumed.attrs["leadlex"]["snapshot"] == deleted.attrs["leadlex"]["snapshot"] is not None
        first = _restore(sandbox, key, run_id, journal, ids=ids[:10])
        assert (first["status"] == "restored").all()
        asked = [*ids[:20], ids[300], "not-a-uuid", "{" + ids[20].upper() + "}"]  # spelled as a delete accepts
        second = _restore(sandbox, key, run_id, journal, ids=asked)
        statuses = dict(zip(second["contact_id"], second["status"].astype(str), strict=True))
        assert [statuses[c] for c in ids[:10]] == ["already_restored"] * 10
        assert list(second["new_contact_id"][:10]) == list(first["new_contact_id"])
        assert [statuses[c] for c in ids[10:21]] == ["restored"] * 11
        refused = second.set_index("contact_id").loc[[ids[300], "not-a-uuid"]]
        assert list(refused["status"]) == ["refused", "refused"]
        assert list(refused["error_code"]) == ["not_deleted", "invalid_id"]
        third = _restore(sandbox, key, run_id, journal)
        assert Counter(third["status"].astype(str)) == {"already_restored": 21, "restored": 79}
        assert len(sandbox.existing_ids()) == 500


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lost_answers_and_5xx_during_restore_create_no_duplicates(tmp_path: Path, seed: int) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=2500) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:2000]
        originals = {cid: sandbox.contact(cid) for cid in ids}
        run_id = _delete(sandbox, key, ids, journal).attrs["leadlex"]["run_id"]
        sandbox.set_faults(Faults(seed=seed, drop_after_commit=0.3, error_5xx=0.2, paths=("/v1/contacts/bulk",)))
        restored = _restore(sandbox, key, run_id, journal)
        sandbox.set_faults(None)
        faults = Counter(e.get("fault") for e in sandbox.execution_log() if e.get("path") == "/v1/contacts/bulk")
        assert faults["drop_after_commit"] or faults["error_500"] or faults["error_503"], faults
        emails = Counter(c["email"] for c in sandbox.contacts())
        assert all(emails[originals[cid]["email"]] == 1 for cid in ids)  # no duplicate, none missing
        _assert_same_contacts(originals, restored, sandbox, "export")


def test_a_restore_that_died_after_sending_looks_its_contacts_up_instead_of_creating_them_again(
        tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=300) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:50]
        run_id = _delete(sandbox, key, ids, journal).attrs["leadlex"]["run_id"]
        snapshot = leadlex_nb.snapshot_of(run_id, journal)
        assert snapshot.sort_values("contact_id")["contact_id"].tolist() == ids  # a plain column, not the index
        # As a process killed mid-restore leaves it: 20 contacts journaled as sending, 10 of them created.
        with Journal(journal) as opened:
            opened.restore_sending(run_id, ids[:20])
        created = _create_directly(sandbox, key, [snapshot.loc[cid].to_dict() for cid in ids[:10]])
        restored = _restore(sandbox, key, run_id, journal)
        by_old = restored.set_index("contact_id")
        assert (restored["status"] == "restored").all()
        assert list(by_old.loc[ids[:10], "new_contact_id"]) == created
        emails = Counter(c["email"] for c in sandbox.contacts())
        assert all(n == 1 for n in emails.values())
        assert len(sandbox.existing_ids()) == 300


def _create_directly(sandbox: Sandbox, key: str, records: list[dict[str, Any]]) -> list[str]:
    import urllib.request

    request = urllib.request.Request(
        f"{sandbox.base_url}/v1/contacts/bulk", data=json.dumps(create_body(records)).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as answer:
        return [c["id"] for c in json.loads(answer.read())["data"]["contacts"]]


def test_contacts_the_snapshot_could_not_read_are_not_deleted_and_say_so(tmp_path: Path) -> None:
    with Sandbox(seed_contacts=200) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:20]

        def confirm_while_another_client_deletes(_plan: PlanSummary) -> bool:
            sandbox.delete_contacts(ids[:3])  # gone before the snapshot reads them: proven absent by 404
            sandbox.set_faults(Faults(error_5xx=1.0, paths=tuple(f"/v1/contacts/{cid}" for cid in ids[3:5])))
            return True

        result = _delete(sandbox, key, ids, tmp_path / "j.sqlite3", snapshot="get",
                         confirm=confirm_while_another_client_deletes,
                         retry=leadlex_nb.RetryPolicy(max_attempts=2, base_delay=0))
        assert set(ids[3:5]) <= sandbox.existing_ids()
    by_id = result.set_index("contact_id")
    assert list(by_id.loc[ids[:3], "status"]) == ["not_found"] * 3
    assert list(by_id.loc[ids[3:5], "status"]) == ["not_sent"] * 2
    assert list(by_id.loc[ids[3:5], "error_code"]) == ["snapshot_missing"] * 2
    assert (by_id.loc[ids[5:], "status"] == "deleted").all()


def test_without_read_permission_the_plan_says_there_is_no_snapshot_and_restore_refuses(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    shown: list[PlanSummary] = []
    with Sandbox(seed_contacts=100) as sandbox:
        key = sandbox.create_key(scopes=["write:contacts"])
        ids = sorted(sandbox.existing_ids())[:10]
        result = _delete(sandbox, key, ids, journal, confirm=lambda s: shown.append(s) or True)
        assert (result["status"] == "deleted").all() and result.attrs["leadlex"]["snapshot"] is None
        assert shown[0].snapshot is not None and not shown[0].snapshot.promised
        assert "Snapshot: none (the workspace's contacts cannot be read" in shown[0].describe()
        with pytest.raises(leadlex_nb.RestoreError, match="took no snapshot"):
            _restore(sandbox, key, result.attrs["leadlex"]["run_id"], journal)
        with pytest.raises(leadlex_nb.RestoreError, match="has no snapshot in this journal"):
            leadlex_nb.snapshot_of(result.attrs["leadlex"]["run_id"], journal)


def test_snapshot_false_takes_none(tmp_path: Path) -> None:
    with Sandbox(seed_contacts=50) as sandbox:
        key = sandbox.create_key()
        result = _delete(sandbox, key, sorted(sandbox.existing_ids())[:5], tmp_path / "j.sqlite3", snapshot=False)
    assert result.attrs["leadlex"]["snapshot"] is None and "snapshot" not in result.attrs["leadlex"]["requests"]


def test_the_snapshots_export_settles_unresolved_ids_one_by_one(tmp_path: Path) -> None:
    with Sandbox(seed_contacts=300) as sandbox:
        key = sandbox.create_key()
        existing = sorted(sandbox.existing_ids())[:147]
        missing = ["00000000-0000-4000-8000-00000000000" + str(n) for n in range(3)]
        result = _delete(sandbox, key, existing + missing, tmp_path / "j.sqlite3", batch_size=50,
                         attribution_budget=0)
    by_id = result.set_index("contact_id")
    assert set(by_id.loc[existing, "status"]) == {"deleted"}  # the unresolved ones too: the export found them
    assert set(by_id.loc[missing, "status"]) == {"not_found"}  # a complete export did not hold them


async def test_an_interrupted_restore_says_unknown_for_what_went_out_and_restoring_again_creates_nothing_twice(
        tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Sandbox(seed_contacts=1200) as sandbox:
        key = sandbox.create_key()
        ids = sorted(sandbox.existing_ids())[:1000]
        run_id = (await pd.DataFrame({"contact_id": ids}).leadlex.abulk_delete(
            "contact_id", api_key=key, base_url=sandbox.base_url, journal=journal, progress=False, verbose=False,
            confirm=False)).attrs["leadlex"]["run_id"]
        sandbox.set_faults(Faults(latency=1.0, paths=("/v1/contacts/bulk",)))  # the creates are in flight a while
        task = asyncio.ensure_future(leadlex_nb.arestore(run_id, api_key=key, journal=journal, confirm=False,
                                                         progress=False, verbose=False))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(leadlex_nb.RunInterrupted) as interrupted:
            await task
        partial = interrupted.value.result
        assert partial is not None and set(partial["status"].astype(str)) == {"unknown"}
        await asyncio.sleep(1.0)  # the server finishes what it was given
        sandbox.set_faults(None)
        again = await leadlex_nb.arestore(run_id, api_key=key, journal=journal, confirm=False, progress=False,
                                          verbose=False)
        assert (again["status"] == "restored").all()
        emails = Counter(c["email"] for c in sandbox.contacts())
        assert len(sandbox.contacts()) == 1200 and set(emails.values()) == {1}
