"""Bad input never crashes the sandbox: every case gets the envelope and a message naming the fault."""

from __future__ import annotations

from typing import Any

import pytest
from sandbox_helpers import Api, assert_error

BULK = "/v1/contacts/bulk-delete"
UUID = "123e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "contact_ids is required"),
    ({"contact_ids": "abc"}, "must be an array"),
    ({"contact_ids": None}, "must be an array"),
    ({"contact_ids": []}, "at least one"),
    ({"contact_ids": [UUID] * 501}, "maximum is 500"),
    ({"contact_ids": [UUID, 42]}, "contact_ids[1] must be a string"),
    ({"contact_ids": [UUID, None]}, "contact_ids[1] must be a string"),
    ({"contact_ids": [{"id": UUID}]}, "contact_ids[0] must be a string"),
    ({"contact_ids": [UUID], "dry_run": "yes"}, "dry_run must be a boolean"),
    ({"contact_ids": [UUID], "dry_run": 1}, "dry_run must be a boolean"),
    ([UUID], "must be a JSON object"),
    ("just a string", "must be a JSON object"),
])
def test_invalid_bulk_delete_body_is_400_validation_error_naming_the_problem(
        api: Api, body: Any, needle: str) -> None:
    error = assert_error(api.post(BULK, body), 400, "validation_error")
    assert needle in error["message"]


def test_exactly_500_ids_are_accepted(api: Api) -> None:
    assert api.delete([UUID] * 500).status_code == 200


def test_malformed_json_is_400_validation_error(api: Api) -> None:
    response = api.post(BULK, data=b'{"contact_ids": [', headers={"Content-Type": "application/json"})
    assert "Malformed JSON" in assert_error(response, 400, "validation_error")["message"]


@pytest.mark.parametrize("raw", [b"NaN", b'{"contact_ids": [Infinity]}', b"\xff\xfe{}", b"[" * 100_000])
def test_pathological_json_is_400_not_500(api: Api, raw: bytes) -> None:
    response = api.post(BULK, data=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "validation_error")


def test_empty_body_is_400(api: Api) -> None:
    response = api.post(BULK, data=b"", headers={"Content-Type": "application/json"})
    assert "body is required" in assert_error(response, 400, "validation_error")["message"]


def test_wrong_content_type_is_415_unsupported_media_type(api: Api) -> None:
    response = api.post(BULK, data=b'{"contact_ids": ["x"]}', headers={"Content-Type": "text/plain"})
    assert "application/json" in assert_error(response, 415, "unsupported_media_type")["message"]


def test_body_over_one_megabyte_is_413_payload_too_large(api: Api) -> None:
    big = b'{"contact_ids": ["' + b"a" * (1024 * 1024 + 10) + b'"]}'
    response = api.post(BULK, data=big, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")


def test_unknown_fields_are_ignored(api: Api) -> None:
    ids = api.sb.seed(1)
    response = api.post(BULK, {"contact_ids": ids, "force": True, "extra": {"nested": [1]}})
    assert response.json()["data"]["deleted_count"] == 1


def test_unknown_route_is_404_not_found(api: Api) -> None:
    assert_error(api.get("/v1/nothing-here"), 404, "not_found")
    assert_error(api.get("/v2/contacts"), 404, "not_found")


def test_wrong_method_is_405_with_allow_header(api: Api) -> None:
    response = api.session.delete(api.sb.base_url + "/v1/contacts", headers=api.headers(), timeout=10)
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


@pytest.mark.parametrize("query", ["page=0", "page=abc", "per_page=101", "per_page=0", "sort=email",
                                   "sort=--full_name", "created_after=yesterday"])
def test_bad_list_parameters_are_400(api: Api, query: str) -> None:
    assert_error(api.get(f"/v1/contacts?{query}"), 400, "validation_error")


@pytest.mark.parametrize("query", ["limit=50001", "limit=0", "fields=id,password", "created_before=soon"])
def test_bad_export_parameters_are_400(api: Api, query: str) -> None:
    assert_error(api.get(f"/v1/contacts/export?{query}"), 400, "validation_error")


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "at least one of"),
    ({"full_name": 5}, "full_name must be a string"),
    ({"email": "not-an-address"}, "email"),
    ({"full_name": "A B", "priority": "urgent"}, "priority"),
    ({"full_name": "A B", "tags": "vip"}, "tags"),
])
def test_invalid_contact_is_400(api: Api, body: dict[str, Any], needle: str) -> None:
    assert needle in assert_error(api.post("/v1/contacts", body), 400, "validation_error")["message"]


def test_bulk_create_rejects_over_500_and_names_the_bad_item(api: Api) -> None:
    assert_error(api.post("/v1/contacts/bulk", {"contacts": [{"full_name": "A"}] * 501}), 400, "validation_error")
    error = assert_error(api.post("/v1/contacts/bulk", {"contacts": [{"full_name": "A"}, {}]}), 400,
                         "validation_error")
    assert "contacts[1]" in error["message"]
    assert api.sb.existing_ids() == set()
