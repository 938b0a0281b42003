"""The transport: aiohttp errors are translated, redirects are not followed, the key stays hidden."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from aioresponses import aioresponses

from leadlex_nb.config import ApiKey
from leadlex_nb.transport import HttpTransport, TransportFailure

SECRET = "wbk_transport_secret_42"
BASE = "https://api.example.test/gw"
URL = re.compile(r"^https://api\.example\.test/gw/v1/contacts/bulk-delete.*$")


def transport() -> HttpTransport:
    return HttpTransport(BASE, ApiKey(SECRET), timeout=5, max_connections=2)


async def test_request_carries_key_body_and_idempotency_key_and_returns_the_answer() -> None:
    with aioresponses() as mocked:
        mocked.post(URL, status=200, payload={"data": {"deleted_count": 1, "not_found_count": 0, "errors": []}},
                    headers={"X-Request-ID": "req_abc", "X-RateLimit-Remaining": "9"})
        async with transport() as http:
            answer = await http.request("POST", "/v1/contacts/bulk-delete", body=b'{"contact_ids":[]}', idempotency_key="k1")
        call = next(iter(mocked.requests.values()))[0]
    assert answer.status == 200 and answer.request_id == "req_abc"
    assert answer.headers["x-ratelimit-remaining"] == "9"
    assert answer.json()["data"]["deleted_count"] == 1
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert call.kwargs["headers"]["Idempotency-Key"] == "k1"
    assert call.kwargs["data"] == b'{"contact_ids":[]}'
    assert call.kwargs["allow_redirects"] is False


@pytest.mark.parametrize(
    "exc,kind",
    [
        (aiohttp.ServerDisconnectedError(), "connection"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "connection"),
        (asyncio.TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError("read timeout"), "timeout"),
        (aiohttp.ClientPayloadError("truncated"), "connection"),
    ],
)
async def test_aiohttp_errors_become_transport_failures(exc: BaseException, kind: str) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, exception=exc)
        async with transport() as http:
            with pytest.raises(TransportFailure) as caught:
                await http.request("POST", "/v1/contacts/bulk-delete", body=b"{}")
    assert caught.value.kind == kind
    assert caught.value.may_have_executed
    assert caught.value.__context__ is None and caught.value.__cause__ is None


async def test_a_refused_connection_is_known_not_to_have_executed() -> None:
    # A real closed port on loopback: the connection is never established.
    async with HttpTransport("http://127.0.0.1:9", ApiKey(SECRET), timeout=5, max_connections=1) as http:
        with pytest.raises(TransportFailure) as caught:
            await http.request("POST", "/v1/contacts/bulk-delete", body=b"{}")
    assert caught.value.kind == "connect" and not caught.value.may_have_executed
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


async def test_the_key_is_scrubbed_from_failure_messages() -> None:
    with aioresponses() as mocked:
        mocked.post(URL, exception=aiohttp.ClientOSError(1, f"proxy said Bearer {SECRET}"))
        async with transport() as http:
            with pytest.raises(TransportFailure) as caught:
                await http.request("POST", "/v1/contacts/bulk-delete", body=b"{}")
    assert SECRET not in str(caught.value)


async def test_redirects_are_answers_not_followed() -> None:
    with aioresponses() as mocked:
        mocked.post(URL, status=307, headers={"Location": "https://evil.example/steal"})
        async with transport() as http:
            answer = await http.request("POST", "/v1/contacts/bulk-delete", body=b"{}")
        assert len(mocked.requests) == 1
    assert answer.status == 307


async def test_non_json_gateway_page_parses_to_none_with_an_excerpt() -> None:
    with aioresponses() as mocked:
        mocked.post(URL, status=502, body="<html><body>Bad gateway</body></html>", content_type="text/html")
        async with transport() as http:
            answer = await http.request("POST", "/v1/contacts/bulk-delete", body=b"{}")
    assert answer.json() is None and answer.error_code() == (None, None)
    assert "Bad gateway" in answer.text_excerpt()


def test_repr_hides_the_key() -> None:
    assert SECRET not in repr(transport())
