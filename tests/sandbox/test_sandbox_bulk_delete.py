"""Bulk-delete semantics: counts, ground truth, per-row errors, duplicates, case, dry run."""

from __future__ import annotations

import uuid

from sandbox_helpers import Api


def _data(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"data"}
    return response.json()["data"]


def test_delete_removes_exactly_the_listed_contacts_and_counts_them(api: Api) -> None:
    ids = api.sb.seed(10)
    data = _data(api.delete(ids[:4]))
    assert data == {"deleted_count": 4, "not_found_count": 0, "errors": []}
    assert api.sb.existing_ids() == set(ids[4:])
    entry = api.sb.execution_log()[-1]
    assert entry["outcome"] == "executed" and sorted(entry["deleted_ids"]) == sorted(ids[:4])


def test_unknown_ids_count_as_not_found_and_never_appear_in_errors(api: Api) -> None:
    ids = api.sb.seed(2)
    missing = [str(uuid.uuid4()) for _ in range(3)]
    data = _data(api.delete(ids + missing))
    assert data == {"deleted_count": 2, "not_found_count": 3, "errors": []}


def test_deleting_again_reports_not_found(api: Api) -> None:
    ids = api.sb.seed(3)
    _data(api.delete(ids))
    assert _data(api.delete(ids)) == {"deleted_count": 0, "not_found_count": 3, "errors": []}


def test_malformed_ids_get_invalid_id_rows_and_the_rest_proceeds(api: Api) -> None:
    ids = api.sb.seed(2)
    data = _data(api.delete([ids[0], "not-a-uuid", "", ids[1], "{" + ids[0] + "}"]))
    assert data["deleted_count"] == 2 and data["not_found_count"] == 0
    assert [(e["contact_id"], e["code"]) for e in data["errors"]] == [
        ("not-a-uuid", "invalid_id"), ("", "invalid_id"), ("{" + ids[0] + "}", "invalid_id")]
    assert all(e["message"] for e in data["errors"])


def test_duplicate_ids_are_processed_and_counted_once(api: Api) -> None:
    ids = api.sb.seed(2)
    data = _data(api.delete([ids[0], ids[0], ids[1], ids[0].upper(), "bad", "bad"]))
    assert data["deleted_count"] == 2
    assert [e["contact_id"] for e in data["errors"]] == ["bad"]
    assert api.sb.existing_ids() == set()


def test_ids_match_case_insensitively(api: Api) -> None:
    ids = api.sb.seed(1)
    assert _data(api.delete([ids[0].upper()]))["deleted_count"] == 1
    assert api.sb.existing_ids() == set()


def test_locked_contacts_get_contact_locked_rows_while_the_rest_is_deleted(api: Api) -> None:
    ids = api.sb.seed(5)
    api.sb.protect(ids[:2])
    data = _data(api.delete(ids))
    assert data["deleted_count"] == 3 and data["not_found_count"] == 0
    assert sorted((e["contact_id"], e["code"]) for e in data["errors"]) == sorted(
        (i, "contact_locked") for i in ids[:2])
    assert api.sb.existing_ids() == set(ids[:2])


def test_dry_run_changes_nothing_and_reports_the_same_counts(api: Api) -> None:
    ids = api.sb.seed(5)
    api.sb.protect([ids[0]])
    body = {"contact_ids": [*ids, str(uuid.uuid4()), "junk"], "dry_run": True}
    dry = _data(api.post("/v1/contacts/bulk-delete", body))
    assert api.sb.existing_ids() == set(ids)
    assert dry["deleted_count"] == 4 and dry["not_found_count"] == 1
    assert sorted(e["code"] for e in dry["errors"]) == ["contact_locked", "invalid_id"]
    entry = api.sb.execution_log()[-1]
    assert entry["dry_run"] is True and entry["deleted_ids"] == []
    live = _data(api.post("/v1/contacts/bulk-delete", {**body, "dry_run": False}))
    assert live == dry
    assert api.sb.existing_ids() == {ids[0]}


def test_five_hundred_ids_in_one_request(api: Api) -> None:
    ids = api.sb.seed(600)
    assert _data(api.delete(ids[:500]))["deleted_count"] == 500
    assert api.sb.existing_ids() == set(ids[500:])


def test_success_answer_carries_request_id_and_rate_limit_headers(api: Api) -> None:
    response = api.delete(api.sb.seed(1))
    for name in ("X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Date"):
        assert response.headers.get(name), name
    assert api.sb.execution_log()[-1]["request_id"] == response.headers["X-Request-ID"]


def test_a_cleared_execution_log_forgets_earlier_requests_and_goes_on_logging(api: Api) -> None:
    ids = api.sb.seed(4)
    _data(api.delete(ids[:2]))
    assert api.sb.log_length == 1
    api.sb.clear_execution_log()
    assert api.sb.execution_log() == [] and api.sb.log_length == 0
    _data(api.delete(ids[2:]))
    (entry,) = api.sb.execution_log()
    assert entry["seq"] == 1 and sorted(entry["deleted_ids"]) == sorted(ids[2:])
