"""A gateway in front of the API that echoes the Authorization header into everything it answers.

Dry runs succeed (the header in ``X-Request-ID``). Deleting requests, by ``mode``: ``bad_gateway``
answers a 502 HTML page, then 502 JSON envelopes; ``deny`` a 403 and ``refuse`` a 401, whose
messages echo the header and stop the run. Any other route 404s with an echo.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Literal
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestServer

Mode = Literal["bad_gateway", "deny", "refuse"]


class HostileGateway:
    def __init__(self, mode: Mode = "bad_gateway") -> None:
        self.mode: Mode = mode
        self.authorizations: list[str] = []
        self.attempts: Counter[str] = Counter()  # per idempotency key
        self.deleting = 0

    def _seen(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        self.authorizations.append(auth)
        return auth

    async def bulk_delete(self, request: web.Request) -> web.StreamResponse:
        auth = self._seen(request)
        payload = await request.json()
        if payload.get("dry_run") is not False:
            count = len(payload["contact_ids"])
            return web.json_response({"data": {"deleted_count": count, "not_found_count": 0, "errors": []}},
                                     headers={"X-Request-ID": f"req_dry {auth}"})
        self.deleting += 1
        key = request.headers.get("Idempotency-Key", "")
        self.attempts[key] += 1
        headers = {"X-Request-ID": f"req_gw {auth} {json.dumps(auth)}"}
        if self.mode == "deny":
            envelope = {"error": {"code": "insufficient_permissions", "message": f"{auth} may not delete"}}
            return web.json_response(envelope, status=403, headers=headers)
        if self.mode == "refuse":
            envelope = {"error": {"code": "invalid_key", "message": f"key {auth} is not valid ({quote(auth)})"}}
            return web.json_response(envelope, status=401, headers=headers)
        if self.attempts[key] == 1:
            page = f"<html><body><h1>502 Bad Gateway</h1><p>upstream rejected {auth}</p><pre>{json.dumps(auth)}</pre>"
            return web.Response(status=502, text=page + "</body></html>", content_type="text/html", headers=headers)
        envelope = {"error": {"code": "bad_gateway", "message": f"upstream rejected {auth} (sent {quote(auth)})"}}
        return web.json_response(envelope, status=502, headers=headers)

    async def anything_else(self, request: web.Request) -> web.StreamResponse:
        auth = self._seen(request)
        envelope = {"error": {"code": "not_found", "message": f"no route for {auth}"}}
        return web.json_response(envelope, status=404, headers={"X-Request-ID": f"req_404 {auth}"})


@contextlib.asynccontextmanager
async def serving(hostile: HostileGateway) -> AsyncIterator[str]:
    """The gateway on a free loopback port; yields its base URL."""
    app = web.Application()
    app.router.add_post("/v1/contacts/bulk-delete", hostile.bulk_delete)
    app.router.add_route("*", "/{tail:.*}", hostile.anything_else)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
