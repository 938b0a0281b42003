"""The runner's phases against a fake transport: no sockets, milliseconds per test.

End-to-end behaviour over real sockets is in tests/e2e; here each test pins one decision of the
runner: what a row's status is after an answer, a stop, an interrupt or a journal failure.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes import Call, FakeApi, answer

from leadlex_nb.config import resolve_settings
from leadlex_nb.errors import ConfirmationDeclined, JournalError, RunInterrupted
from leadlex_nb.hooks import Hooks, PlanSummary, StopSignal
from leadlex_nb.ids import normalise_ids
from leadlex_nb.journal import Journal
from leadlex_nb.limits import RateLimit
from leadlex_nb.pacing import RateGovernor
from leadlex_nb.resume import load_resume_point
from leadlex_nb.retry import RetryPolicy
from leadlex_nb.runner import Run
from leadlex_nb.transport import Answer

KEY = "lx_runner_test_key"


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


def make_run(api: FakeApi, values: list[str], *, batch_size: int = 2, concurrency: int = 2,
             journal: Journal | None = None, dry_run: bool = False, governor: RateGovernor | None = None,
             **hooks: Any) -> Run:
    settings = resolve_settings(
        api_key=KEY, base_url="https://api.example.test", journal=False, batch_size=batch_size,
        concurrency=concurrency, retry=RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0),
    )
    return Run(settings, normalise_ids(pd.Series(values)), dry_run=dry_run, hooks=Hooks(**hooks),
               journal=journal, transport=api, governor=governor)


def statuses(result: pd.DataFrame) -> dict[str, int]:
    return result["status"].astype(str).value_counts().to_dict()


def deleting(api: FakeApi) -> list[Call]:
    return [c for c in api.calls if c.deletes]


async def test_a_confirmed_run_deletes_the_plan_and_reports_each_row() -> None:
    wanted = ids(5)
    api = FakeApi(wanted[:4])
    seen: list[PlanSummary] = []
    result = await make_run(api, wanted, confirm=lambda s: seen.append(s) or True).execute()
    assert statuses(result) == {"deleted": 4, "not_found": 1}
    assert api.deleted == set(wanted[:4])
    assert seen[0].to_delete == 4 and seen[0].counts == {"would_delete": 4, "not_found": 1}
    assert seen[0].dry_run_result is not None and len(seen[0].dry_run_result) == 5


async def test_a_cancelled_run_reports_executed_in_flight_batches_as_unknown_never_not_sent() -> None:
    # Regression: in-flight delete batches were reported not_sent ("safe to send again") although
    # the server had executed them.
    wanted = ids(8)
    api = FakeApi(wanted)
    api.hold_deletes = asyncio.Event()
    task = asyncio.ensure_future(make_run(api, wanted, concurrency=2).execute())
    await asyncio.wait_for(api.executed.wait(), 5)
    task.cancel()
    with pytest.raises(RunInterrupted) as stopped:
        await task
    result = stopped.value.result
    assert result is not None
    by_id = dict(zip(result["contact_id"], result["status"].astype(str), strict=True))
    for cid in api.deleted:
        assert by_id[cid] == "unknown", cid
    assert {by_id[cid] for cid in set(wanted) - api.deleted} <= {"unknown", "not_sent"}
    assert statuses(result).get("not_sent", 0) == len(wanted) - len(deleting(api)) * 2


async def test_a_stop_request_sends_nothing_new_and_records_what_was_in_flight() -> None:
    wanted = ids(8)
    api = FakeApi(wanted)
    api.hold_deletes = asyncio.Event()
    stop = StopSignal()
    task = asyncio.ensure_future(make_run(api, wanted, concurrency=2, stop=stop).execute())
    await asyncio.wait_for(api.executed.wait(), 5)
    await asyncio.sleep(0)
    in_flight = len(deleting(api))
    stop.set("stopped by the user")
    api.hold_deletes.set()
    with pytest.raises(RunInterrupted, match="stopped by the user") as stopped:
        await task
    result = stopped.value.result
    assert result is not None
    assert len(deleting(api)) == in_flight, "no new batch after the stop"
    assert statuses(result) == {"deleted": 2 * in_flight, "not_sent": len(wanted) - 2 * in_flight}


async def test_a_journal_that_cannot_record_a_send_stops_the_run_with_a_partial_result(tmp_path: Path) -> None:
    # Regression: a locked journal ended the run with a raw sqlite3 error and no result.
    wanted = ids(6)
    api = FakeApi(wanted)
    journal = Journal(tmp_path / "j.sqlite3")
    real_sending = journal.sending

    def sending(run_id: str, batch: Any) -> None:
        if batch.phase == "delete" and batch.index == 1:
            raise JournalError("the run journal could not record batch 1 being sent: database is locked")
        real_sending(run_id, batch)

    journal.sending = sending  # type: ignore[method-assign]
    with journal, pytest.raises(JournalError, match="locked") as stopped:
        await make_run(api, wanted, concurrency=1, journal=journal).execute()
    result = stopped.value.result
    assert result is not None and stopped.value.run_id
    counts = statuses(result)
    assert counts.get("deleted", 0) == len(api.deleted) >= 2
    assert counts.get("not_sent", 0) == len(wanted) - len(api.deleted)
    assert all(c.payload["contact_ids"] != wanted[2:4] for c in deleting(api)), "batch 1 was never sent"


async def test_resuming_a_declined_run_repeats_the_dry_run_under_new_keys(tmp_path: Path) -> None:
    # Regression: resuming a declined run replayed the stored dry-run answers and asked to
    # confirm a stale plan.
    wanted = ids(4)
    api = FakeApi(wanted)
    with Journal(tmp_path / "j.sqlite3") as journal:
        with pytest.raises(ConfirmationDeclined) as declined:
            await make_run(api, wanted, journal=journal, confirm=lambda s: False).execute()
        run_id = declined.value.run_id
        assert run_id is not None
        first_keys = {c.idempotency_key for c in api.calls}
        api.existing.discard(wanted[0])  # someone else deleted one meanwhile
        api.calls.clear()
        shown: list[PlanSummary] = []
        settings = make_run(api, wanted).settings
        point = load_resume_point(journal, run_id, settings.api_key.fingerprint, now=time.time())
        resumed = Run.from_journal(settings, Hooks(confirm=lambda s: shown.append(s) or True), journal, point,
                                   transport=api)
        result = await resumed.resume()
    dry_keys = {c.idempotency_key for c in api.calls if not c.deletes and c.path.endswith("/bulk-delete")}
    assert dry_keys and not dry_keys & first_keys
    assert shown[0].counts == {"would_delete": 3, "not_found": 1}
    assert statuses(result) == {"deleted": 3, "not_found": 1}


# -- answers that make no sense -------------------------------------------------------------


def scripted(on_delete: list[Answer]) -> FakeApi:
    """Dry runs answer honestly; deleting requests get ``on_delete`` in turn."""
    queue = list(on_delete)

    def script(call: Call) -> Answer | None:
        return queue.pop(0) if call.deletes and queue else None

    return FakeApi(ids(3), script)


async def test_delete_counts_that_do_not_add_up_become_unknown_not_deleted(caplog: pytest.LogCaptureFixture) -> None:
    api = scripted([answer(200, {"data": {"deleted_count": 7, "not_found_count": 0, "errors": []}},
                           x_request_id="req_odd")])
    result = await make_run(api, ids(3), batch_size=3).execute()
    assert statuses(result) == {"unknown": 3}
    assert set(result["error_code"]) == {"inconsistent_answer"}
    assert "req_odd" in caplog.text


async def test_a_non_json_success_body_is_logged_and_never_a_status(caplog: pytest.LogCaptureFixture) -> None:
    api = scripted([answer(200, body=b"<html>ok</html>", x_request_id="req_html")])
    result = await make_run(api, ids(3), batch_size=3).execute()
    assert statuses(result) == {"unknown": 3}
    assert "req_html" in caplog.text


async def test_garbled_rate_limit_headers_are_logged_and_the_run_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="leadlex_nb")
    garbled = answer(200, {"data": {"deleted_count": 3, "not_found_count": 0, "errors": []}},
                     x_request_id="req_g", x_ratelimit_remaining="lots", x_ratelimit_reset="soon")
    api = FakeApi(ids(3), lambda call: garbled)
    result = await make_run(api, ids(3), batch_size=3, dry_run=True).execute()
    assert statuses(result) == {"would_delete": 3}
    assert "X-RateLimit-Remaining" in caplog.text and "req_g" in caplog.text


async def test_a_5xx_until_retries_run_out_makes_delete_rows_unknown() -> None:
    unavailable = answer(503, {"error": {"code": "unavailable", "message": "try later"}})
    result = await make_run(scripted([unavailable, unavailable]), ids(3), batch_size=3).execute()
    assert statuses(result) == {"unknown": 3}
    assert set(result["attempts"]) == {2}


async def test_a_400_on_delete_is_not_sent_and_not_retried() -> None:
    api = scripted([answer(400, {"error": {"code": "validation_error", "message": "bad"}})])
    result = await make_run(api, ids(3), batch_size=3).execute()
    assert statuses(result) == {"not_sent": 3}
    assert set(result["error_code"]) == {"validation_error"} and set(result["attempts"]) == {1}
    assert len(deleting(api)) == 1


async def test_progress_says_when_pacing_holds_requests_back_and_until_when() -> None:
    notes: list[str] = []

    class Bar:
        def update(self, n: int = 1) -> None:
            pass

        def close(self) -> None:
            pass

        def set_postfix_str(self, text: str) -> None:
            notes.append(text)

    wanted = ids(3)
    run = make_run(FakeApi(wanted), wanted, batch_size=1, concurrency=1, progress=lambda total, desc: Bar(),
                   governor=RateGovernor(RateLimit(1, per_seconds=0.4), jitter=0.0))
    result = await run.execute()
    assert statuses(result) == {"deleted": 3}
    waits = [n for n in notes if n]
    assert waits and all(re.fullmatch(r"waiting for the rate limit until \d\d:\d\d:\d\d", n) for n in waits)
    assert notes[-1] == "", "the note goes once pacing no longer holds requests back"
