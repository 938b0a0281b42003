"""Authentication and scopes: 401 invalid_key, 403 insufficient_permissions, no key leaks."""

from __future__ import annotations

import json

from sandbox_helpers import Api, assert_error


def test_missing_authorization_header_is_401_invalid_key(api: Api) -> None:
    assert_error(api.delete([], key=None), 401, "invalid_key")
    assert_error(api.get("/v1/contacts", key=None), 401, "invalid_key")


def test_unknown_key_is_401_invalid_key(api: Api) -> None:
    assert_error(api.get("/v1/contacts", key="wbk_" + "x" * 52), 401, "invalid_key")


def test_non_bearer_scheme_is_401(api: Api) -> None:
    response = api.get("/v1/contacts", key=None, headers={"Authorization": f"Basic {api.sb.api_key}"})
    assert_error(response, 401, "invalid_key")


def test_expired_key_is_401_invalid_key(api: Api) -> None:
    expired = api.sb.create_key(expired=True)
    assert_error(api.get("/v1/contacts", key=expired), 401, "invalid_key")


def test_bulk_delete_without_write_contacts_is_403_and_deletes_nothing(api: Api) -> None:
    ids = api.sb.seed(2)
    read_only = api.sb.create_key(scopes=["read:contacts"])
    assert_error(api.delete(ids, key=read_only), 403, "insufficient_permissions")
    assert api.sb.existing_ids() == set(ids)


def test_listing_without_read_contacts_is_403(api: Api) -> None:
    write_only = api.sb.create_key(scopes=["write:contacts"])
    assert_error(api.get("/v1/contacts", key=write_only), 403, "insufficient_permissions")
    assert_error(api.get("/v1/contacts/export", key=write_only), 403, "insufficient_permissions")


def test_write_only_key_can_bulk_delete(api: Api) -> None:
    ids = api.sb.seed(1)
    write_only = api.sb.create_key(scopes=["write:contacts"])
    assert api.delete(ids, key=write_only).json()["data"]["deleted_count"] == 1


def test_key_without_scopes_gets_403_everywhere(api: Api) -> None:
    none = api.sb.create_key(scopes=[])
    assert_error(api.delete(["x"], key=none), 403, "insufficient_permissions")
    assert_error(api.post("/v1/webhooks", {"url": "http://127.0.0.1:1/", "events": ["contact.deleted"]}, key=none),
                 403, "insufficient_permissions")


def test_key_never_appears_in_answers_or_execution_log(api: Api) -> None:
    bogus = "wbk_" + "y" * 52
    answers = [api.get("/v1/contacts", key=bogus).text, api.delete(["x"]).text,
               api.get("/v1/contacts", key=api.sb.create_key(scopes=[])).text]
    log = json.dumps(api.sb.execution_log())
    for text in [*answers, log]:
        assert api.sb.api_key not in text and bogus not in text
    assert api.sb.api_key not in repr(api.sb)
    assert [e["key_label"] for e in api.sb.execution_log()][:2] == [None, "default"]
