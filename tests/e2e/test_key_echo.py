"""Regression: a gateway that echoes the Authorization header must not leak the API key.

Before the fix, a proxy in front of the API that reflected the header put the key into the
result's ``error_message`` and ``request_id``, exception messages, log lines and the SQLite
journal. Here a hostile gateway, over real sockets, answers dry runs correctly (with the header
in ``X-Request-ID``) and every deleting request with a 502 that echoes it: an HTML page first,
then a JSON error envelope. Retries run out, the rows end ``unknown`` with the server's
(scrubbed) words, and the key is nowhere in any spelling.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import leadlex_nb
from leadlex_nb.config import ApiKey
from leadlex_nb.redact import MASK

KEY = 'lx_live/ab+c"d=e12345'  # "/", "+", '"' and "=" change under JSON escaping or percent-encoding
SPELLINGS = {
    "plain": KEY,
    "json": json.dumps(KEY)[1:-1],  # lx_live/ab+c\"d=e12345
    "json-slash": json.dumps(KEY)[1:-1].replace("/", "\\/"),
    "percent": quote(KEY, safe=""),
    "percent-path": quote(KEY, safe="/"),
    "csv": KEY.replace('"', '""'),
    "fragment": "ab+c",  # a piece of the key: a truncated echo would still show it
}


class HostileGateway:
    """Echoes the Authorization header; dry runs succeed, deleting requests get 502s (or, with
    ``deny``, a 403 whose message echoes the header, which stops the run with an exception)."""

    def __init__(self, deny: bool = False) -> None:
        self.deny = deny
        self.authorizations: list[str] = []
        self.attempts: Counter[str] = Counter()  # per idempotency key
        self.deleting = 0

    async def bulk_delete(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        self.authorizations.append(auth)
        payload = await request.json()
        if payload.get("dry_run") is not False:
            count = len(payload["contact_ids"])
            return web.json_response(
                {"data": {"deleted_count": count, "not_found_count": 0, "errors": []}},
                headers={"X-Request-ID": f"req_dry {auth}"},
            )
        self.deleting += 1
        key = request.headers.get("Idempotency-Key", "")
        self.attempts[key] += 1
        headers = {"X-Request-ID": f"req_gw {auth} {json.dumps(auth)}"}
        if self.deny:
            envelope = {"error": {"code": "insufficient_permissions", "message": f"{auth} may not delete"}}
            return web.Response(status=403, text=json.dumps(envelope), content_type="application/json",
                                headers=headers)
        if self.attempts[key] == 1:
            page = f"<html><body><h1>502 Bad Gateway</h1><p>upstream rejected {auth}</p><pre>{json.dumps(auth)}</pre>"
            return web.Response(status=502, text=page + "</body></html>", content_type="text/html", headers=headers)
        envelope = {"error": {"code": "bad_gateway", "message": f"upstream rejected {auth} (sent {quote(auth)})"}}
        return web.Response(status=502, text=json.dumps(envelope), content_type="application/json", headers=headers)


@pytest.fixture(params=[False, True], ids=["bad-gateway", "denied"])
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[tuple[HostileGateway, str]]:
    hostile = HostileGateway(deny=request.param)
    app = web.Application()
    app.router.add_post("/v1/contacts/bulk-delete", hostile.bulk_delete)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield hostile, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def leaks(text: str) -> list[str]:
    return [name for name, spelling in SPELLINGS.items() if spelling in text]


def byte_leaks(data: bytes) -> list[str]:
    found = []
    for name, spelling in SPELLINGS.items():
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            if spelling.encode(encoding) in data:
                found.append(f"{name}/{encoding}")
    return found


async def test_an_echoed_authorization_header_leaks_the_key_nowhere(
    gateway: tuple[HostileGateway, str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hostile, base_url = gateway
    assert ApiKey(KEY).reveal() == KEY  # the key is accepted as it is
    caplog.set_level(logging.DEBUG)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(7)]
    error: BaseException | None = None
    try:
        result = await leadlex_nb.abulk_delete(
            pd.Series(ids), api_key=KEY, base_url=base_url, confirm=False, journal=tmp_path / "j.sqlite3",
            progress=False, verbose=True,
            retry=leadlex_nb.RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001),
        )
    except leadlex_nb.LeadLexError as exc:  # the denied run stops; its exception carries the result
        error = exc
        result = getattr(exc, "result", None)
        assert result is not None, f"the run failed without a result: {exc!r}"
    captured = capsys.readouterr()

    # Not vacuous: the key went out, the gateway echoed it, and the echo reached the result.
    assert hostile.authorizations and set(hostile.authorizations) == {f"Bearer {KEY}"}
    masked = f"Bearer {MASK}"
    assert set(result["request_id"]) == {f'req_gw {masked} "{masked}"'}
    if hostile.deny:
        assert isinstance(error, leadlex_nb.PermissionDeniedError)
        assert f"{masked} may not delete" in str(error) and f"{masked} may not delete" in captured.err
        assert set(result["status"].astype(str)) == {"not_sent"}  # a refusal did not execute
        assert set(result["error_code"]) == {"insufficient_permissions"}
        assert set(result["error_message"]) == {f"{masked} may not delete"}
    else:
        assert hostile.deleting >= 2 and set(hostile.attempts.values()) == {2}  # retries ran out
        assert set(result["status"].astype(str)) == {"unknown"}
        assert set(result["error_code"]) == {"bad_gateway"}
        assert set(result["error_message"]) == {f"upstream rejected {masked} (sent Bearer%20{MASK})"}
        assert any(masked in record.getMessage() for record in caplog.records)  # the HTML page's excerpt

    # The key, in any spelling, is nowhere.
    for value in result.astype(str).to_numpy().ravel():
        assert not leaks(value), value
    assert not leaks(result.to_csv())
    assert not leaks(result.to_json())
    assert not leaks(repr(result.attrs)) and not leaks(json.dumps(result.attrs, default=repr))
    if error is not None:
        assert not leaks(str(error)) and not leaks(repr(error))
    assert not leaks(caplog.text)
    for record in caplog.records:
        assert not leaks(record.getMessage()) and not leaks(repr(record.args))
    assert not leaks(captured.err) and not leaks(captured.out)
    journal_files = sorted(tmp_path.glob("j.sqlite3*"))
    assert journal_files
    for path in journal_files:
        assert not byte_leaks(path.read_bytes()), path.name
