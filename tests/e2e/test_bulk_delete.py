"""df.leadlex.bulk_delete end to end, against the sandbox over real sockets.

Every test checks statuses against the sandbox's ground truth (which contacts exist, and
its execution log), never against what the client believes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import leadlex_nb
from leadlex_nb import (
    AuthenticationError,
    ColumnNotFoundError,
    ConfigurationError,
    ConfirmationDeclined,
    NothingToDeleteError,
    PermissionDeniedError,
    QuotaError,
    RateLimit,
    RunInterrupted,
)
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Profile, Sandbox


def options(sandbox: Sandbox, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": sandbox.api_key,
        "base_url": sandbox.base_url,
        "journal": tmp_path / "journal.sqlite3",
        "progress": False,
        "verbose": False,
        **extra,
    }


def unknown_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def assert_no_anomalies(result: pd.DataFrame, sandbox: Sandbox, before: set[str]) -> dict[str, int]:
    report = audit(
        result,
        existed_before=before,
        exists_after=sandbox.existing_ids(),
        execution_log=sandbox.execution_log(),
        run_id=result.attrs["leadlex"]["run_id"],
    )
    assert {k: report[k] for k in (*ANOMALIES, "overclaim")} == dict.fromkeys((*ANOMALIES, "overclaim"), 0)
    return report


def bulk_entries(sandbox: Sandbox, *, dry_run: bool | None = None) -> list[dict[str, Any]]:
    return [
        e for e in sandbox.execution_log()
        if e["path"].endswith("/bulk-delete") and (dry_run is None or e["dry_run"] == dry_run)
    ]


def test_whole_flow_gives_each_row_the_status_the_ground_truth_supports(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(2_000)
    targets, locked, untouched = existing[:1_200], existing[1_200:1_205], existing[1_205:]
    sandbox.protect(locked)
    missing = unknown_ids(40)
    spelled = [
        t.upper() if i % 3 == 0 else "{" + t + "}" if i % 3 == 1 else f" urn:uuid:{t} " for i, t in enumerate(targets)
    ]
    values = spelled + locked + missing + ["", None, "nope", 42, "12345678-1234"] + targets[:15]
    frame = pd.DataFrame({"contact_id": values}, index=[f"row{i}" for i in range(len(values))])
    before = sandbox.existing_ids()

    result = frame.leadlex.bulk_delete("contact_id", confirm=False, **options(sandbox, tmp_path))

    assert list(result.index) == list(frame.index)
    assert list(result.columns[:8]) == ["contact_id", "status", "error_code", "error_message", "batch",
                                        "attempts", "request_id", "duplicate"]
    by_id = result.drop_duplicates("contact_id").set_index("contact_id")["status"].astype(str)
    assert set(by_id[targets]) == {"deleted"}
    assert set(by_id[missing]) == {"not_found"}
    assert set(by_id[locked]) == {"error"}
    assert set(result.loc[result["contact_id"].isin(locked), "error_code"]) == {"contact_locked"}
    assert (result["status"] == "invalid").sum() == 5
    assert result["duplicate"].sum() == 15
    assert set(result.loc[result["duplicate"], "status"].astype(str)) == {"deleted"}
    assert sandbox.existing_ids() == set(untouched) | set(locked)
    report = assert_no_anomalies(result, sandbox, before)
    assert report["exact_rows"] == report["unique_rows"]  # the key may read contacts: no "gone"


def test_dry_run_changes_nothing_and_never_asks(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(300)
    missing = unknown_ids(3)
    frame = pd.DataFrame({"id": existing[:100] + missing + ["junk"]})

    def must_not_ask(summary: Any) -> bool:
        raise AssertionError("a dry run asked for confirmation")

    result = frame.leadlex.bulk_delete("id", dry_run=True, confirm=must_not_ask, **options(sandbox, tmp_path))

    assert sandbox.existing_ids() == set(existing)
    assert all(e["dry_run"] is not False for e in bulk_entries(sandbox))
    assert result["status"].astype(str).value_counts().to_dict() == {"would_delete": 100, "not_found": 3, "invalid": 1}


def test_series_accessor_and_async_entry_point(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(20)

    async def go() -> pd.DataFrame:
        return await pd.Series(existing[:10]).leadlex.abulk_delete(confirm=False, **options(sandbox, tmp_path))

    result = asyncio.run(go())
    assert set(result["status"].astype(str)) == {"deleted"}
    assert sandbox.existing_ids() == set(existing[10:])


async def test_sync_call_works_inside_a_running_event_loop(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(20)
    asyncio.get_running_loop()  # like a Jupyter kernel
    result = pd.DataFrame({"c": existing[:5]}).leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path))
    assert set(result["status"].astype(str)) == {"deleted"}


def test_without_read_permission_missing_ids_are_pinned_by_bisection(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(600)
    write_only = sandbox.create_key(scopes=["write:contacts"])
    missing = unknown_ids(2)
    frame = pd.DataFrame({"c": existing[:400] + missing})
    before = sandbox.existing_ids()

    result = frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path, api_key=write_only))

    status = result.set_index("contact_id")["status"].astype(str)
    assert set(status[existing[:400]]) == {"deleted"} and set(status[missing]) == {"not_found"}
    notes = " ".join(result.attrs["leadlex"]["notes"])
    assert "bisect" in notes
    assert result.attrs["leadlex"]["requests"]["attribution"] <= 2 * 10  # ~k*log2(n/k), not n
    assert_no_anomalies(result, sandbox, before)


def test_with_read_permission_many_missing_ids_are_pinned_by_one_export(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(3_000)
    missing = unknown_ids(100)
    # Ten missing IDs in every hundred rows: every dry-run batch is mixed.
    values = [v for i in range(100) for v in existing[i * 10:(i + 1) * 10] + missing[i:i + 1]]
    frame = pd.DataFrame({"c": values})

    result = frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path))

    assert result.attrs["leadlex"]["requests"]["attribution"] == 2  # size probe + one export
    status = result.set_index("contact_id")["status"].astype(str)
    assert set(status[missing]) == {"not_found"} and set(status[existing[:1_000]]) == {"deleted"}
    exports = [e for e in sandbox.execution_log() if e["path"].endswith("/export")]
    assert len(exports) == 1


def test_unproven_ids_are_deleted_apart_so_proven_rows_stay_exact(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(300)
    missing = unknown_ids(3)
    # Batches of 50: the first two hold only existing IDs; the third mixes in the missing ones.
    frame = pd.DataFrame({"c": existing[:100] + existing[100:147] + missing})
    before = sandbox.existing_ids()

    # Without a snapshot: its read of the workspace would prove which unresolved IDs exist.
    opts = options(sandbox, tmp_path, batch_size=50, attribution_budget=0, snapshot=False)
    dry = frame.leadlex.bulk_delete("c", dry_run=True, **opts)
    assert dry["status"].astype(str).value_counts().to_dict() == {"would_delete": 100, "unresolved": 50}

    result = frame.leadlex.bulk_delete("c", confirm=False, **opts)
    status = result.set_index("contact_id")["status"].astype(str)
    assert set(status[existing[:100]]) == {"deleted"}
    assert set(status[existing[100:147] + missing]) == {"gone"}
    assert not sandbox.existing_ids() & set(existing[:147])
    assert_no_anomalies(result, sandbox, before)


def test_an_id_added_to_the_frame_after_the_dry_run_is_never_deleted(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(50)
    frame = pd.DataFrame({"c": existing[:10]})
    seen: list[leadlex_nb.PlanSummary] = []

    def confirm(summary: leadlex_nb.PlanSummary) -> bool:
        seen.append(summary)
        frame.loc[len(frame)] = [existing[20]]  # the user edits the frame while being asked
        return True

    result = frame.leadlex.bulk_delete("c", confirm=confirm, **options(sandbox, tmp_path))

    assert seen[0].to_delete == 10 and "10 contacts" in seen[0].describe()
    assert existing[20] in sandbox.existing_ids()
    assert len(result) == 10
    deleted_by_log = {cid for e in bulk_entries(sandbox, dry_run=False) for cid in e["deleted_ids"]}
    assert deleted_by_log == set(existing[:10])


def test_a_declined_confirmation_deletes_nothing_and_carries_the_dry_run(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(30)
    frame = pd.DataFrame({"c": existing[:10]})
    with pytest.raises(ConfirmationDeclined) as caught:
        frame.leadlex.bulk_delete("c", confirm=lambda summary: False, **options(sandbox, tmp_path))
    assert sandbox.existing_ids() == set(existing)
    partial = caught.value.result
    assert set(partial["status"].astype(str)) == {"not_sent"}
    assert partial["error_message"].str.contains("would_delete").all()
    assert bulk_entries(sandbox, dry_run=False) == []


def test_without_a_terminal_the_default_confirmation_declines(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(10)
    with pytest.raises(ConfirmationDeclined):
        pd.DataFrame({"c": existing}).leadlex.bulk_delete("c", **options(sandbox, tmp_path))
    assert sandbox.existing_ids() == set(existing)


def test_with_a_plan_the_run_is_paced_and_never_rate_limited(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_profile(Profile("tight", per_window=5, window_seconds=1.0, daily_quota=100_000))
    existing = sandbox.seed(400)
    frame = pd.DataFrame({"c": existing[:300]})

    result = frame.leadlex.bulk_delete(
        "c", confirm=False, **options(sandbox, tmp_path, batch_size=25, concurrency=6, plan=RateLimit(5, 1.0))
    )

    assert set(result["status"].astype(str)) == {"deleted"}
    assert [e["status"] for e in sandbox.execution_log() if e["status"] == 429] == []
    assert result.attrs["leadlex"]["rate_limited"] == 0


def test_without_a_plan_the_limit_is_learned_and_429s_stay_few(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_profile(Profile("tight", per_window=5, window_seconds=1.0, daily_quota=100_000))
    existing = sandbox.seed(400)
    frame = pd.DataFrame({"c": existing[:300]})
    before = sandbox.existing_ids()

    opts = options(sandbox, tmp_path, batch_size=25, concurrency=6, rate_window=1.0)
    result = frame.leadlex.bulk_delete("c", confirm=False, **opts)

    assert set(result["status"].astype(str)) == {"deleted"}
    rejected = [e for e in sandbox.execution_log() if e["status"] == 429]
    sent = [e for e in sandbox.execution_log() if e["status"] != 429]
    # Learning probes the window's end with one request at a time, at 50 ms and growing intervals
    # (about a dozen per episode against a 1-second window); a 429 costs no quota.
    assert 1 <= len(rejected) <= len(sent)
    assert_no_anomalies(result, sandbox, before)


def test_retries_reuse_the_key_and_the_exact_ids_and_nothing_runs_twice(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(100)
    frame = pd.DataFrame({"c": existing[:40]})
    before = sandbox.existing_ids()
    # The dry run (1 request) goes through; then the delete meets every kind of failure in turn.
    sandbox.set_faults(Faults(schedule=[None, "reset_before", "error_503", "drop_after_commit", "gateway_502",
                                        "slow_after_commit"], slow_seconds=2.0))

    result = frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path, timeout=0.8))

    deletes = bulk_entries(sandbox, dry_run=False)
    attempts = bulk_entries(sandbox)[1:]  # everything after the dry run, refused attempts included
    assert len(attempts) == 6
    assert {e["idempotency_key"] for e in attempts} == {deletes[0]["idempotency_key"]}
    assert all(e["contact_ids"] == deletes[0]["contact_ids"] for e in deletes)
    assert [e["outcome"] for e in deletes].count("executed") == 1
    assert set(result["status"].astype(str)) == {"deleted"}
    assert result["attempts"].iloc[0] >= 5
    assert_no_anomalies(result, sandbox, before)


def test_an_expired_key_stops_the_run_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(2_000)
    expired = sandbox.create_key(scopes=["write:contacts", "read:contacts"], expired=True)
    frame = pd.DataFrame({"c": [*existing[:1_500], "junk"]})

    with pytest.raises(AuthenticationError, match=r"invalid or expired|invalid, revoked or expired") as caught:
        frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path, api_key=expired, concurrency=4))

    assert len(sandbox.execution_log()) == 1
    statuses = caught.value.result["status"].astype(str).value_counts().to_dict()
    assert statuses == {"not_sent": 1_500, "invalid": 1}
    assert expired not in str(caught.value)


def test_a_key_without_write_permission_stops_the_run_with_the_cause(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(20)
    read_only = sandbox.create_key(scopes=["read:contacts"])
    with pytest.raises(PermissionDeniedError, match="write:contacts") as caught:
        opts = options(sandbox, tmp_path, api_key=read_only)
        pd.DataFrame({"c": existing}).leadlex.bulk_delete("c", confirm=False, **opts)
    assert len(sandbox.execution_log()) == 1
    assert set(caught.value.result["status"].astype(str)) == {"not_sent"}


def test_a_run_the_daily_quota_cannot_cover_does_not_start_deleting(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_profile(Profile("small", per_window=100, window_seconds=1.0, daily_quota=4))
    existing = sandbox.seed(300)
    frame = pd.DataFrame({"c": existing[:200]})

    with pytest.raises(QuotaError) as caught:
        frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path, batch_size=50))

    error = caught.value
    assert error.needed is not None and error.remaining is not None and error.needed > error.remaining
    assert "resets" in str(error)
    assert bulk_entries(sandbox, dry_run=False) == [] and len(sandbox.execution_log()) == 1
    assert sandbox.existing_ids() == set(existing)


def test_quota_running_out_mid_run_stops_cleanly_with_not_sent_rows(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_profile(Profile("small", per_window=100, window_seconds=1.0, daily_quota=6))
    existing = sandbox.seed(300)
    frame = pd.DataFrame({"c": existing[:200]})
    before = sandbox.existing_ids()

    with pytest.raises(QuotaError) as caught:
        # Without a snapshot, whose reads would count against the quota too.
        frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path, batch_size=50, ignore_quota=True,
                                                                snapshot=False))

    result = caught.value.result
    counts = result["status"].astype(str).value_counts().to_dict()
    assert counts.get("deleted", 0) == 100 and counts.get("not_sent", 0) == 100
    assert len(sandbox.existing_ids()) == 200
    report = audit(result, existed_before=before, exists_after=sandbox.existing_ids(),
                   execution_log=sandbox.execution_log(), run_id=caught.value.run_id)
    assert report["lost"] == 0 and report["false_failure"] == 0


async def test_an_interrupted_run_resumes_without_executing_anything_twice(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(600)
    frame = pd.DataFrame({"c": existing[:500]})
    before = sandbox.existing_ids()
    opts = options(sandbox, tmp_path, batch_size=50, concurrency=2)
    # Deletes are slow, so the interrupt lands with batches in flight.
    sandbox.set_faults(Faults(latency=0.4, paths=("/v1/contacts/bulk-delete",)))
    task = asyncio.ensure_future(frame.leadlex.abulk_delete("c", confirm=False, **opts))
    while not any(e["outcome"] == "executed" for e in bulk_entries(sandbox, dry_run=False)):
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(RunInterrupted) as caught:
        await task
    partial = caught.value.result
    assert "not_sent" in set(partial["status"].astype(str))
    assert sandbox.existing_ids() != before - set(existing[:500])

    sandbox.set_faults(None)
    result = await leadlex_nb.aresume(caught.value.run_id, **opts,
                                      confirm=False)

    assert set(result["status"].astype(str)) == {"deleted"}
    assert sandbox.existing_ids() == set(existing[500:])
    assert_no_anomalies(result, sandbox, before)


def test_resuming_a_finished_run_sends_nothing_new(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(20)
    opts = options(sandbox, tmp_path)
    first = pd.DataFrame({"c": existing[:10]}).leadlex.bulk_delete("c", confirm=False, **opts)
    entries = len(sandbox.execution_log())
    again = leadlex_nb.resume(first.attrs["leadlex"]["run_id"], **{k: v for k, v in opts.items()}, confirm=False)
    assert set(again["status"].astype(str)) == {"deleted"}
    assert len(sandbox.execution_log()) == entries


def test_mistakes_are_caught_before_any_request(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(5)
    frame = pd.DataFrame({"c": existing})
    with pytest.raises(ColumnNotFoundError, match="contact_id"):
        frame.leadlex.bulk_delete("contact_id", confirm=False, **options(sandbox, tmp_path))
    with pytest.raises(KeyError):
        frame.leadlex.bulk_delete("contact_id", confirm=False, **options(sandbox, tmp_path))
    with pytest.raises(NothingToDeleteError):
        pd.DataFrame({"c": ["x", None, ""]}).leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path))
    with pytest.raises(ConfigurationError, match="http://"):
        frame.leadlex.bulk_delete("c", confirm=False, **options(sandbox, tmp_path, base_url="http://api.example.com"))
    with pytest.raises(ConfigurationError, match="ambiguous"):
        frame.leadlex.bulk_delete("c", confirm=True, **options(sandbox, tmp_path))
    assert sandbox.execution_log() == []


def test_the_key_appears_in_no_result_journal_log_or_error(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    existing = sandbox.seed(30)
    sandbox.set_faults(Faults(schedule=[None, "gateway_502"]))
    opts = options(sandbox, tmp_path, verbose=True)
    result = pd.DataFrame({"c": [*existing[:10], "junk"]}).leadlex.bulk_delete("c", confirm=False, **opts)
    expired = sandbox.create_key(scopes=["write:contacts"], expired=True)
    with pytest.raises(AuthenticationError) as caught:
        pd.DataFrame({"c": existing[20:]}).leadlex.bulk_delete("c", confirm=False, **{**opts, "api_key": expired})

    texts = [result.to_csv(), repr(result.attrs), caplog.text, str(caught.value), repr(caught.value)]
    journal_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite3*"))
    for key in (sandbox.api_key, expired):
        assert all(key not in text for text in texts)
        assert key.encode() not in journal_bytes


def test_a_stop_does_not_wait_for_requests_queued_behind_pacing(sandbox: Sandbox, tmp_path: Path) -> None:
    existing = sandbox.seed(400)
    key = sandbox.create_key(scopes=["read:contacts", "write:contacts"])
    frame = pd.DataFrame({"c": existing[:300]})

    def revoke_after_two_requests() -> None:
        while len(sandbox.execution_log()) < 2:
            time.sleep(0.01)
        sandbox.revoke_key(key)

    revoker = threading.Thread(target=revoke_after_two_requests, daemon=True)
    revoker.start()
    # One request per ~2 s: the other dry-run batches queue behind the pacing.
    with pytest.raises(AuthenticationError):
        frame.leadlex.bulk_delete("c", confirm=False, **options(
            sandbox, tmp_path, api_key=key, batch_size=50, concurrency=4, plan=RateLimit(1, 2.0)))
    stopped_at = time.time()
    revoker.join()

    refused = [e for e in sandbox.execution_log() if e["status"] == 401]
    assert len(refused) == 1 and len(sandbox.execution_log()) == 3
    # Three batches were queued for about 2 s each; the run ends right after the 401 instead.
    assert stopped_at - refused[0]["at"] < 1.0
