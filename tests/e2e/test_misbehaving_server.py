"""A server that answers nonsense: the client never guesses, and goes on where it safely can.

Each case runs end to end against the sandbox over real sockets with one fault on one request
(``Faults(schedule=...)``; requests go one at a time, so the dry run's batches come first).
Rows an answer cannot decide end ``unknown`` (or ``not_sent`` where provably never executed)
with the reason in ``error_code`` / ``error_message``; every other row is settled as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fault_checks import key_body_problems

import leadlex_nb
from leadlex_nb import LeadLexError, QuotaError, RetryPolicy
from leadlex_nb.audit import ANOMALIES, audit
from leadlex_nb.sandbox import Faults, Profile, Sandbox

CONTACTS, BATCH = 100, 25
DRY = CONTACTS // BATCH  # dry-run requests before the first delete request


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed_contacts=0) as sandbox:
        yield sandbox


@pytest.fixture
def options(sb: Sandbox, tmp_path: Path) -> dict[str, Any]:
    return dict(api_key=sb.api_key, base_url=sb.base_url, journal=tmp_path / "journal.sqlite3", progress=False,
                verbose=False, timeout=2.0, rate_window=1.0, batch_size=BATCH, concurrency=1,
                retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
                # The faults strike bulk-delete answers; a snapshot's reads would bring healthy headers.
                snapshot=False)


def run(sb: Sandbox, ids: list[str], faults: Faults, options: dict[str, Any], **extra: Any
        ) -> tuple[pd.DataFrame, LeadLexError | None]:
    before = sb.existing_ids()
    sb.set_faults(faults)
    try:
        result, stop = pd.DataFrame({"c": ids}).leadlex.bulk_delete("c", confirm=False, **options, **extra), None
    except LeadLexError as error:
        assert error.result is not None
        result, stop = error.result, error
    sb.set_faults(None)
    check(sb, result, before)
    return result, stop


def check(sb: Sandbox, result: pd.DataFrame, before: set[str]) -> None:
    run_id = result.attrs["leadlex"]["run_id"]
    log = sb.execution_log()
    report = audit(result, existed_before=before, exists_after=sb.existing_ids(), execution_log=log, run_id=run_id)
    assert {k: report[k] for k in (*ANOMALIES, "overclaim")} == dict.fromkeys((*ANOMALIES, "overclaim"), 0)
    assert key_body_problems(log, run_id) == []


def rows(result: pd.DataFrame, status: str) -> pd.DataFrame:
    return result[result["status"].astype(str).eq(status).to_numpy()]


def resume(sb: Sandbox, result: pd.DataFrame, options: dict[str, Any], before: set[str]) -> pd.DataFrame:
    keep = {k: v for k, v in options.items() if k not in ("batch_size", "concurrency")}
    resumed = leadlex_nb.resume(result.attrs["leadlex"]["run_id"], confirm=False, **keep)
    check(sb, resumed, before)
    return resumed


@pytest.mark.parametrize("seed", [0, 1], ids=["an HTML page", "truncated JSON"])  # the seed picks the body
def test_a_delete_answered_200_without_json_leaves_its_batch_unknown_until_resumed(
        sb: Sandbox, options: dict[str, Any], seed: int) -> None:
    ids = sb.seed(CONTACTS)
    before = sb.existing_ids()
    result, stop = run(sb, ids, Faults(seed=seed, schedule=[*[None] * (DRY + 1), "non_json_200"]), options)
    assert stop is None
    unknown = rows(result, "unknown")
    assert len(unknown) == BATCH and set(unknown["error_code"]) == {"invalid_answer"}
    assert unknown["error_message"].str.contains("documented shape").all()
    assert len(rows(result, "deleted")) == CONTACTS - BATCH  # the other batches went on
    assert set(resume(sb, result, options, before)["status"].astype(str)) == {"deleted"}


def test_a_dry_run_answered_200_without_json_plans_nothing_for_its_rows(sb: Sandbox, options: dict[str, Any]) -> None:
    ids = sb.seed(CONTACTS)
    result, stop = run(sb, ids, Faults(schedule=[None, "non_json_200"]), options)
    skipped = rows(result, "not_sent")
    assert stop is None and len(skipped) == BATCH and set(skipped["error_code"]) == {"invalid_answer"}
    assert skipped["error_message"].str.startswith("dry run failed").all()
    assert sb.existing_ids() >= set(skipped["contact_id"])
    assert len(rows(result, "deleted")) == CONTACTS - BATCH


def test_delete_counts_that_do_not_add_up_leave_the_batch_unknown_with_the_reason(
        sb: Sandbox, options: dict[str, Any]) -> None:
    ids = sb.seed(CONTACTS)
    result, stop = run(sb, ids, Faults(schedule=[*[None] * DRY, "bad_counts"]), options)
    unknown = rows(result, "unknown")
    assert stop is None and len(unknown) == BATCH and set(unknown["error_code"]) == {"inconsistent_answer"}
    assert unknown["error_message"].str.contains(f"deleted_count {BATCH + 1} ").all()
    assert len(rows(result, "deleted")) == CONTACTS - BATCH


def test_resume_settles_a_delete_whose_counts_did_not_add_up(sb: Sandbox, options: dict[str, Any]) -> None:
    ids = sb.seed(CONTACTS)
    before = sb.existing_ids()
    result, _ = run(sb, ids, Faults(schedule=[*[None] * DRY, "bad_counts"]), options)
    assert set(resume(sb, result, options, before)["status"].astype(str)) == {"deleted"}


def test_dry_run_counts_that_do_not_add_up_prove_nothing_about_their_rows(
        sb: Sandbox, options: dict[str, Any]) -> None:
    ids = sb.seed(CONTACTS)
    result, _ = run(sb, ids, Faults(schedule=[None, "bad_counts"]), options, dry_run=True)
    doubtful = result.iloc[BATCH:2 * BATCH]
    assert set(doubtful["status"].astype(str)) == {"unresolved"}  # neither would_delete nor not_found
    assert set(rows(result, "would_delete").index) == set(result.index) - set(doubtful.index)
    assert sb.existing_ids() >= set(ids)


@pytest.mark.parametrize("fault", ["garbled_ratelimit", "missing_ratelimit"])
def test_unusable_rate_limit_headers_are_logged_and_never_read_as_a_quota(
        sb: Sandbox, options: dict[str, Any], fault: str, caplog: pytest.LogCaptureFixture) -> None:
    ids = sb.seed(CONTACTS)
    with caplog.at_level(logging.WARNING, logger="leadlex_nb"):
        result, stop = run(sb, ids, Faults(**{fault: 1.0}), options)
    assert stop is None and set(result["status"].astype(str)) == {"deleted"}
    assert result.attrs["leadlex"]["quota_remaining"] is None
    if fault == "garbled_ratelimit":  # absent headers are not an error; garbled ones are named
        assert any("X-RateLimit-Remaining" in r.getMessage() for r in caplog.records)


def _tiny_quota_run(sb: Sandbox, options: dict[str, Any], fault: str) -> tuple[pd.DataFrame, QuotaError]:
    ids = sb.seed(CONTACTS)
    sb.set_profile(Profile("tiny", per_window=50, window_seconds=1.0, daily_quota=DRY + 2))
    result, stop = run(sb, ids, Faults(**{fault: 1.0}), {**options, "concurrency": 2}, ignore_quota=True)
    assert isinstance(stop, QuotaError)
    assert len(rows(result, "deleted")) == 2 * BATCH  # the quota covered two delete batches
    assert set(rows(result, "not_sent")["contact_id"]) == set(ids) - set(rows(result, "deleted")["contact_id"])
    return result, stop


def test_a_quota_reset_in_the_past_stops_the_run_at_the_servers_refusal(sb: Sandbox, options: dict[str, Any]) -> None:
    _tiny_quota_run(sb, options, "reset_past")
    # A reset already past says the quota renewed, so the client may ask once; the 429 stops it.
    assert sum(e["status"] == 429 for e in sb.execution_log()) <= 2


def test_a_quota_stop_never_names_a_reset_time_in_the_past(sb: Sandbox, options: dict[str, Any]) -> None:
    _, stop = _tiny_quota_run(sb, options, "reset_past")
    assert stop.reset_at is None or stop.reset_at > time.time()
    assert "resets" not in str(stop)


def test_a_quota_reset_ten_years_ahead_stops_at_once_instead_of_waiting(sb: Sandbox, options: dict[str, Any]) -> None:
    _, stop = _tiny_quota_run(sb, options, "reset_future")
    assert stop.reset_at is not None and stop.reset_at > time.time() + 9 * 365 * 86_400
    assert not any(e["status"] == 429 for e in sb.execution_log())  # stopped before asking for more


def test_retry_after_as_an_http_date_is_waited_for_then_the_same_request_is_resent(
        sb: Sandbox, options: dict[str, Any]) -> None:
    ids = sb.seed(CONTACTS)
    result, stop = run(sb, ids, Faults(schedule=[*[None] * DRY, "retry_after_date"]), options)
    assert stop is None and set(result["status"].astype(str)) == {"deleted"}
    assert result.attrs["leadlex"]["rate_limited"] == 1
    log = sb.execution_log()
    refused = next(e for e in log if e["fault"] == "retry_after_date")
    retry = next(e for e in log if e["seq"] > refused["seq"] and e["idempotency_key"] == refused["idempotency_key"])
    assert retry["body_sha256"] == refused["body_sha256"] and retry["outcome"] == "executed"
    # The answer's Retry-After is not in the log, but it is a whole second after the refusal at the latest.
    assert retry["at"] >= int(refused["at"]) + 1 - 0.05


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_a_redirected_delete_is_not_followed_and_its_batch_stays_unknown(
        sb: Sandbox, options: dict[str, Any], seed: int) -> None:
    ids = sb.seed(CONTACTS)
    before = sb.existing_ids()
    result, stop = run(sb, ids, Faults(seed=seed, schedule=[*[None] * DRY, "redirect"]), options)
    unknown = rows(result, "unknown")
    assert stop is None and len(unknown) == BATCH
    assert unknown["error_code"].str.fullmatch(r"http_30[12378]").all()
    assert not any("moved.leadlex.invalid" in str(e) for e in sb.execution_log())
    assert len(rows(result, "deleted")) == CONTACTS - BATCH
    assert set(resume(sb, result, options, before)["status"].astype(str)) == {"deleted"}


def test_a_redirected_dry_run_plans_nothing_for_its_rows(sb: Sandbox, options: dict[str, Any]) -> None:
    ids = sb.seed(CONTACTS)
    result, stop = run(sb, ids, Faults(schedule=["redirect"]), options)
    skipped = rows(result, "not_sent")
    assert stop is None and len(skipped) == BATCH and skipped["error_message"].str.startswith("dry run failed").all()
    assert sb.existing_ids() >= set(skipped["contact_id"])

