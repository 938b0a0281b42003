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
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from hostile_gateway import HostileGateway, serving

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


@pytest.fixture(params=["bad_gateway", "deny"], ids=["bad-gateway", "denied"])
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[tuple[HostileGateway, str]]:
    hostile = HostileGateway(request.param)
    async with serving(hostile) as base_url:
        yield hostile, base_url


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
    if hostile.mode == "deny":
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
