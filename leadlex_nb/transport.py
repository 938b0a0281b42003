"""HTTP transport: the only module that imports aiohttp.

Every aiohttp exception is translated here into :class:`TransportFailure`, whose message
never carries request headers (aiohttp's own ``ClientResponseError`` repr does). The API key
is scrubbed from everything that leaves this module, answers included: a proxy that echoes
the ``Authorization`` header cannot put the key into a result, a log line or the journal.

:class:`Transport` is what the runner needs; tests give it a fake one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp

from leadlex_nb.config import ApiKey
from leadlex_nb.defaults import package_version
from leadlex_nb.redact import Redactor

FailureKind = Literal["connect", "timeout", "connection"]
# Seconds to open a TCP connection; a host that does not answer by then is not waited on for the
# whole request timeout.
CONNECT_TIMEOUT_SECONDS = 10.0


class TransportFailure(Exception):
    """No HTTP answer was received.

    ``kind`` says how far the request got: ``connect`` means the connection was never
    established, so the server cannot have executed it; ``timeout`` and ``connection``
    (reset, dropped, truncated answer) mean it may have been executed.
    """

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def may_have_executed(self) -> bool:
        return self.kind != "connect"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, fully read."""

    status: int
    headers: Mapping[str, str] = field(repr=False)  # lower-case names
    body: bytes = field(repr=False)
    elapsed: float = 0.0

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self) -> Any | None:
        """The parsed body, or None when it is not JSON (gateway pages, truncated bodies)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def error_code(self) -> tuple[str | None, str | None]:
        """``(code, message)`` from the documented error envelope, if present."""
        payload = self.json()
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            error = payload["error"]
            code, message = error.get("code"), error.get("message")
            return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)
        return (None, None)

    def text_excerpt(self, limit: int = 200) -> str:
        return self.body[:limit].decode("utf-8", "replace")


class Transport(Protocol):
    """Sends one request and returns its answer, or raises :class:`TransportFailure`."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer: ...


class HttpTransport:
    """Sends requests to ``{base_url}{path}`` with the key; never follows redirects."""

    def __init__(self, base_url: str, api_key: ApiKey, *, timeout: float, max_connections: int) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._redactor = Redactor(api_key.reveal())
        # A connection not made within this is never made: the request cannot have reached the server.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, CONNECT_TIMEOUT_SECONDS))
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"HttpTransport({self._base_url!r}, {self._api_key!r})"

    async def __aenter__(self) -> HttpTransport:
        connector = aiohttp.TCPConnector(limit=self._max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": f"leadlex-nb/{package_version()}"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        if self._session is None:
            raise RuntimeError("HttpTransport used outside 'async with'")
        headers = {"Authorization": f"Bearer {self._api_key.reveal()}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        started = time.monotonic()
        failure: TransportFailure | None = None
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                data=body,
                params=params,
                headers=headers,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                scrub = self._redactor.scrub_text
                return Answer(
                    status=response.status,
                    headers={name.lower(): scrub(value) for name, value in response.headers.items()},
                    body=self._redactor.scrub_bytes(payload),
                    elapsed=time.monotonic() - started,
                )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            failure = TransportFailure("connect", self._describe(exc))
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            failure = TransportFailure("timeout", self._describe(exc) or "timed out")
        except (aiohttp.ClientError, OSError) as exc:
            failure = TransportFailure("connection", self._describe(exc))
        # The aiohttp exception (whose repr may hold the request headers) must not ride along as
        # __context__. Raising outside the except blocks is not enough on Python 3.10, where a
        # coroutine still reports it as being handled here, so the link is cut as it propagates.
        try:
            raise failure
        finally:
            failure.__context__ = None

    def _describe(self, exc: BaseException) -> str:
        # Never include headers; scrub the key in case a server or proxy echoed it.
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return self._redactor.scrub_text(text)
