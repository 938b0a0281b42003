"""How a misbehaving server bends an answer (``faults.MISBEHAVIOUR``); pure functions over answers.

The real answer has already been stored for idempotent replay when these strike, so a retry or
a resume with the same key gets the truth.
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from typing import Any

from aiohttp import web

from .errors import error_response

ELSEWHERE = "https://moved.leadlex.invalid/v1/contacts/bulk-delete"
_TRUNCATED = b'{"data": {"deleted_count": 3, "not_found_co'
_HTML_OK = b"<html><body><h1>OK</h1><p>Request processed.</p></body></html>"
_TEN_YEARS = 10 * 365 * 86_400


def redirect(status: int) -> web.Response:
    return web.Response(status=status, headers={"Location": ELSEWHERE}, text="Moved\n", content_type="text/plain")


def rate_limited_until_date(headers: dict[str, str], seconds: float, now: float | None = None) -> web.Response:
    """A 429 whose ``Retry-After`` is an HTTP date ``seconds`` ahead (rounded up to a whole second)."""
    now = time.time() if now is None else now
    retry_at = formatdate(int(now + seconds) + 1, usegmt=True)
    return error_response(429, "rate_limited", "Rate limit exceeded; slow down and retry later",
                          {**headers, "Retry-After": retry_at})


def bend_body(response: web.StreamResponse, name: str, variant: int | None) -> web.StreamResponse:
    """A 2xx answer's body, made unusable (``non_json_200``) or inconsistent (``bad_counts``)."""
    if not isinstance(response, web.Response) or not 200 <= response.status < 300:
        return response
    if name == "non_json_200":
        if variant:
            return web.Response(status=response.status, body=_HTML_OK, content_type="text/html")
        return web.Response(status=response.status, body=_TRUNCATED, content_type="application/json")
    payload: Any = json.loads(bytes(response.body))  # type: ignore[arg-type]
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict) and isinstance(data.get("deleted_count"), int):
        data["deleted_count"] += 1
    return web.json_response(payload, status=response.status)


def bend_headers(headers: dict[str, str], name: str, now: float | None = None) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers of an answer under one of ``faults.HEADER_FAULTS``."""
    now = time.time() if now is None else now
    if name == "missing_ratelimit":
        return {k: v for k, v in headers.items() if not k.lower().startswith("x-ratelimit-")}
    bent = dict(headers)
    if name == "garbled_ratelimit":
        bent.update({"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": "soon"})
    elif name == "reset_past":
        bent["X-RateLimit-Reset"] = str(int(now) - 3600)
    elif name == "reset_future":
        bent["X-RateLimit-Reset"] = str(int(now) + _TEN_YEARS)
    return bent
