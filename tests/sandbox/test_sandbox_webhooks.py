"""Webhooks: signed contact.deleted events to a real receiver, retries, no repeat on replay."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from leadlex_nb.sandbox import Sandbox


@dataclass
class Receiver:
    url: str
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many deliveries first

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        async def poll() -> None:
            while len(self.deliveries) < n:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")
    calls = {"n": 0}

    async def hook(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= state.fail_first:
            return web.Response(status=500, text="try again")
        state.deliveries.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    yield state
    await runner.cleanup()


async def _call(sb: Sandbox, method: str, path: str, body: Any = None, idem: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {sb.api_key}"}
    if idem:
        headers["Idempotency-Key"] = idem
    async with aiohttp.ClientSession() as session, session.request(
        method, sb.base_url + path, json=body, headers=headers
    ) as r:
        return r.status, await r.json()


async def _register(sb: Sandbox, url: str) -> dict[str, Any]:
    status, body = await _call(sb, "POST", "/v1/webhooks", {"url": url, "events": ["contact.deleted"]})
    assert status == 201, body
    return body["data"]


async def test_each_deleted_contact_sends_one_signed_event(sandbox: Sandbox, receiver: Receiver) -> None:
    hook = await _register(sandbox, receiver.url)
    ids = sandbox.seed(4)
    sandbox.protect(ids[:1])
    status, _ = await _call(sandbox, "POST", "/v1/contacts/bulk-delete", {"contact_ids": ids})
    assert status == 200
    await receiver.wait_for(3)
    assert await asyncio.to_thread(sandbox.drain_webhooks, 5.0)
    assert len(receiver.deliveries) == 3
    seen = set()
    for headers, raw in receiver.deliveries:
        expected = "sha256=" + hmac.new(hook["secret"].encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-LeadLex-Signature"], expected)
        assert headers["User-Agent"] == "LeadLex-Webhook/1.0"
        assert headers["X-LeadLex-Timestamp"] and headers["X-LeadLex-Delivery-ID"]
        event = json.loads(raw)
        assert event["event"] == "contact.deleted" and event["workspace_id"]
        assert event["timestamp"].endswith("Z")
        seen.add(event["data"]["contact"]["id"])
    assert seen == set(ids[1:])
    assert len({h["X-LeadLex-Delivery-ID"] for h, _ in receiver.deliveries}) == 3


async def test_replays_and_dry_runs_send_no_events(sandbox: Sandbox, receiver: Receiver) -> None:
    await _register(sandbox, receiver.url)
    ids = sandbox.seed(2)
    await _call(sandbox, "POST", "/v1/contacts/bulk-delete", {"contact_ids": ids, "dry_run": True})
    await _call(sandbox, "POST", "/v1/contacts/bulk-delete", {"contact_ids": ids}, idem="w-1")
    await _call(sandbox, "POST", "/v1/contacts/bulk-delete", {"contact_ids": ids}, idem="w-1")
    assert await asyncio.to_thread(sandbox.drain_webhooks, 5.0)
    assert len(receiver.deliveries) == 2


async def test_failed_delivery_is_retried_with_the_same_signed_body(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.fail_first = 1
    hook = await _register(sandbox, receiver.url)
    await _call(sandbox, "POST", "/v1/contacts/bulk-delete", {"contact_ids": sandbox.seed(1)})
    await receiver.wait_for(1)  # fast profile: the first retry comes after 5 s / 60
    assert await asyncio.to_thread(sandbox.drain_webhooks, 5.0)
    status, logs = await _call(sandbox, "GET", f"/v1/webhooks/{hook['id']}/logs")
    assert status == 200
    attempts = sorted((e["attempt"], e["status"], e["response_status_code"]) for e in logs["data"]["logs"])
    assert attempts == [(1, "failed", 500), (2, "success", 200)]
    status, listed = await _call(sandbox, "GET", "/v1/webhooks")
    assert listed["data"]["webhooks"][0]["last_delivery_status"] == "success"
    assert "secret" not in listed["data"]["webhooks"][0]


async def test_webhook_urls_must_be_loopback_and_events_known(sandbox: Sandbox) -> None:
    status, body = await _call(sandbox, "POST", "/v1/webhooks",
                               {"url": "https://example.com/hook", "events": ["contact.deleted"]})
    assert status == 400 and "loopback" in body["error"]["message"]
    status, body = await _call(sandbox, "POST", "/v1/webhooks",
                               {"url": "http://127.0.0.1:9/hook", "events": ["contact.exploded"]})
    assert status == 400 and "contact.exploded" in body["error"]["message"]
