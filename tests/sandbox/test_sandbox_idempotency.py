"""Idempotency-Key: replay without re-execution, 422 on a different body, 409 while in flight."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from sandbox_helpers import Api, assert_error

from leadlex_nb.sandbox import Faults, Sandbox

BULK = "/v1/contacts/bulk-delete"


def test_same_key_and_body_replays_the_stored_answer_without_executing_again(api: Api) -> None:
    ids = api.sb.seed(3)
    first = api.delete(ids, idem="k-1")
    api.sb.seed(0)
    second = api.delete(ids, idem="k-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() == {"data": {"deleted_count": 3, "not_found_count": 0, "errors": []}}
    assert second.headers["X-Request-ID"] == first.headers["X-Request-ID"]
    log = api.sb.execution_log()
    assert [e["outcome"] for e in log] == ["executed", "replayed"]
    assert log[1]["deleted_ids"] == [] and log[1]["idempotency_key"] == "k-1"
    assert log[1]["request_id"] == first.headers["X-Request-ID"]


def test_replay_compares_the_meaning_of_the_json_not_its_bytes(api: Api) -> None:
    ids = api.sb.seed(2)
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k-2"}
    a = api.post(BULK, data=json.dumps({"dry_run": False, "contact_ids": ids}), headers=headers)
    b = api.post(BULK, data=json.dumps({"contact_ids": ids, "dry_run": False}, indent=2), headers=headers)
    assert b.status_code == 200 and b.headers["X-Request-ID"] == a.headers["X-Request-ID"]


def test_same_key_with_a_different_body_is_422_and_runs_nothing(api: Api) -> None:
    ids = api.sb.seed(3)
    api.delete(ids[:1], idem="k-3")
    assert_error(api.delete(ids[1:], idem="k-3"), 422, "idempotency_key_reused")
    assert api.sb.existing_ids() == set(ids[1:])
    assert api.sb.execution_log()[-1]["outcome"] == "rejected"


def test_dry_run_answers_are_stored_too(api: Api) -> None:
    ids = api.sb.seed(1)
    dry = api.post(BULK, {"contact_ids": ids, "dry_run": True}, idem="k-4")
    again = api.post(BULK, {"contact_ids": ids, "dry_run": True}, idem="k-4")
    assert again.headers["X-Request-ID"] == dry.headers["X-Request-ID"]
    assert_error(api.post(BULK, {"contact_ids": ids, "dry_run": False}, idem="k-4"), 422, "idempotency_key_reused")
    assert api.sb.existing_ids() == set(ids)


def test_failed_requests_are_not_stored(api: Api) -> None:
    ids = api.sb.seed(1)
    assert_error(api.post(BULK, {"contact_ids": ids, "dry_run": "no"}, idem="k-5"), 400, "validation_error")
    ok = api.delete(ids, idem="k-5")
    assert ok.status_code == 200 and ok.json()["data"]["deleted_count"] == 1
    assert api.sb.execution_log()[-1]["outcome"] == "executed"


def test_keys_are_scoped_per_api_key(api: Api) -> None:
    ids = api.sb.seed(2)
    other = api.sb.create_key()
    a = api.delete(ids[:1], idem="shared")
    b = api.delete(ids[1:], idem="shared", key=other)
    assert a.status_code == b.status_code == 200
    assert a.headers["X-Request-ID"] != b.headers["X-Request-ID"]
    assert api.sb.existing_ids() == set()


async def test_same_key_while_the_first_request_runs_is_409(sandbox: Sandbox) -> None:
    ids = sandbox.seed(2)
    sandbox.set_faults(Faults(latency=0.6))  # the first request holds its key while it waits
    headers = {"Authorization": f"Bearer {sandbox.api_key}", "Idempotency-Key": "k-6"}
    url = sandbox.base_url + BULK
    async with aiohttp.ClientSession() as session:
        async def send() -> tuple[int, dict]:
            async with session.post(url, json={"contact_ids": ids}, headers=headers) as r:
                return r.status, await r.json()

        first = asyncio.create_task(send())
        await asyncio.sleep(0.2)
        second_status, second_body = await send()
        first_status, first_body = await first
    assert second_status == 409 and second_body["error"]["code"] == "idempotency_conflict"
    assert first_status == 200 and first_body["data"]["deleted_count"] == 2
    outcomes = sorted(e["outcome"] for e in sandbox.execution_log())
    assert outcomes == ["executed", "rejected"]
