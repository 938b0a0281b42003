"""The two reference clients of section A, written the way a user would without leadlex-nb.

- ``reference_loop``: the Python example of the API reference page (``requests.post`` with an
  ``Idempotency-Key``) in a loop over chunks of 500, one request at a time, sleeping 1 s on a 429.
- ``gather_all``: every chunk at once with ``asyncio.gather`` over one aiohttp session, no pacing,
  each 429 retried after 1 s.

Each sends one pass (a dry run or the deletion) and returns what it sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import requests

from benchmarks.common import BATCH, BULK_DELETE_PATH

RETRY_AFTER_429_S = 1.0  # what both reference clients wait after a 429 (the API sends no Retry-After)


@dataclass
class PassResult:
    seconds: float
    requests: int
    rate_limited: int
    deleted: int


def chunks(ids: Sequence[str], size: int = BATCH) -> list[list[str]]:
    return [list(ids[i:i + size]) for i in range(0, len(ids), size)]


def _headers(api_key: str, idempotency_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key}


def reference_loop(ids: Sequence[str], base_url: str, api_key: str, *, dry_run: bool) -> PassResult:
    started = time.perf_counter()
    sent = limited = deleted = 0
    for chunk in chunks(ids):
        body = {"contact_ids": chunk, "dry_run": True} if dry_run else {"contact_ids": chunk}
        key = str(uuid.uuid4())
        while True:
            r = requests.post(f"{base_url}{BULK_DELETE_PATH}", headers=_headers(api_key, key), json=body, timeout=30)
            sent += 1
            if r.status_code != 429:
                break
            limited += 1
            time.sleep(RETRY_AFTER_429_S)
        r.raise_for_status()
        deleted += int(r.json()["data"]["deleted_count"])
    return PassResult(time.perf_counter() - started, sent, limited, deleted)


async def _gather(ids: Sequence[str], base_url: str, api_key: str, dry_run: bool) -> PassResult:
    started = time.perf_counter()
    counts = {"sent": 0, "limited": 0, "deleted": 0}

    async def send(session: aiohttp.ClientSession, chunk: list[str]) -> None:
        body = {"contact_ids": chunk, "dry_run": True} if dry_run else {"contact_ids": chunk}
        headers = _headers(api_key, str(uuid.uuid4()))
        while True:
            async with session.post(f"{base_url}{BULK_DELETE_PATH}", json=body, headers=headers) as r:
                counts["sent"] += 1
                if r.status == 429:
                    counts["limited"] += 1
                    await asyncio.sleep(RETRY_AFTER_429_S)
                    continue
                r.raise_for_status()
                counts["deleted"] += int((await r.json())["data"]["deleted_count"])
                return

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(send(session, chunk) for chunk in chunks(ids)))
    return PassResult(time.perf_counter() - started, counts["sent"], counts["limited"], counts["deleted"])


def gather_all(ids: Sequence[str], base_url: str, api_key: str, *, dry_run: bool) -> PassResult:
    return asyncio.run(_gather(ids, base_url, api_key, dry_run))
