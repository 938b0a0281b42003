"""The transport against a real local aiohttp server: what it sends, what it makes of answers
and failures, and that the API key never leaves it; and the Redactor that scrubs the key.

Every failure is produced by the server really doing it (refusing, dropping, resetting,
stalling, sending a malformed answer), not by a mocked exception.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadlex_nb.config import ApiKey
from leadlex_nb.redact import MASK, Redactor
from leadlex_nb.transport import HttpTransport, TransportFailure

SECRET = "wbk_transport_secret_42"
BULK = "/v1/contacts/bulk-delete"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class Gateway:
    """A local server; ``/gw/<name>`` runs the behaviour ``name``; every request is recorded."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.release = asyncio.Event()  # lets the stalling handler finish at teardown
        self.server: TestServer | None = None
        self.behaviours: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "v1/contacts/bulk-delete": self._bulk_delete,
            "v1/contacts": self._listing,
            "redirect": self._redirect,
            "steal": self._steal,
            "bad-gateway": self._bad_gateway,
            "echo": self._echo,
            "close-before-answer": self._close_before_answer,
            "close-mid-body": self._close_mid_body,
            "reset": self._reset,
            "slow": self._slow,
            "echo-malformed": self._echo_malformed,
        }

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/gw"))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers),
                              await request.read()))
        behaviour = self.behaviours.get(request.match_info["name"])
        if behaviour is None:
            raise web.HTTPNotFound()
        return await behaviour(request)

    async def _bulk_delete(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"data": {"deleted_count": 1, "not_found_count": 0, "errors": []}},
                                 headers={"X-Request-ID": "req_abc", "X-RateLimit-Remaining": "9"})

    async def _listing(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"data": {"contacts": []}, "meta": {"total": 0}})

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "/gw/steal"})

    async def _steal(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="followed")

    async def _bad_gateway(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="<html><body>Bad gateway</body></html>", content_type="text/html")

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        # A proxy that reflects the Authorization header everywhere it can.
        auth = request.headers["Authorization"]
        body = json.dumps({"error": {"code": "bad_gateway", "message": f"upstream refused {auth}"}})
        return web.Response(status=502, text=body, content_type="application/json", headers={
            "X-Request-ID": f"req_{auth}",
            "X-Echo": json.dumps(auth),
            "Location": "/login?next=" + quote(auth, safe=""),
        })

    async def _close_before_answer(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError  # nothing more to send on a closed connection

    async def _close_mid_body(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b'{"data": {"deleted_')
        assert request.transport is not None
        request.transport.close()
        return response

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        sock = request.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        request.transport.abort()
        raise asyncio.CancelledError

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(self.release.wait(), 10)
        return web.json_response({})

    async def _echo_malformed(self, request: web.Request) -> web.StreamResponse:
        # A broken proxy writes the Authorization header as a bare line: aiohttp's parser error
        # quotes the offending line, so the key is in the aiohttp exception's message.
        assert request.transport is not None
        auth = request.headers["Authorization"]
        request.transport.write(f"HTTP/1.1 200 OK\r\n{auth}\r\nContent-Length: 0\r\n\r\n".encode())
        request.transport.close()
        raise asyncio.CancelledError


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    app = web.Application()
    app.router.add_route("*", "/gw/{name:.*}", gw.handle)
    gw.server = TestServer(app, host="127.0.0.1")
    await gw.server.start_server()
    try:
        yield gw
    finally:
        gw.release.set()
        await gw.server.close()


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: a connection to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def transport(base_url: str, *, secret: str = SECRET, timeout: float = 5) -> HttpTransport:
    return HttpTransport(base_url, ApiKey(secret), timeout=timeout, max_connections=2)


async def fail(http: HttpTransport, path: str) -> TransportFailure:
    with pytest.raises(TransportFailure) as caught:
        await http.request("POST", path, body=b"{}")
    failure = caught.value
    # The aiohttp exception (whose repr can hold the request headers) is not kept.
    assert failure.__context__ is None and failure.__cause__ is None
    return failure


# --- what is sent, what comes back -------------------------------------------------------------


async def test_request_carries_key_body_and_idempotency_key_and_returns_the_answer(gateway: Gateway) -> None:
    async with transport(gateway.base_url) as http:
        answer = await http.request("POST", BULK, body=b'{"contact_ids":[]}', idempotency_key="k1")
    assert answer.status == 200 and answer.request_id == "req_abc"
    assert answer.headers["x-ratelimit-remaining"] == "9"
    assert answer.json()["data"]["deleted_count"] == 1
    assert answer.elapsed > 0
    [call] = gateway.seen
    assert (call.method, call.path) == ("POST", "/gw" + BULK)
    assert call.headers["Authorization"] == f"Bearer {SECRET}"
    assert call.headers["Idempotency-Key"] == "k1"
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["User-Agent"].startswith("leadlex-nb/")
    assert call.body == b'{"contact_ids":[]}'


async def test_a_read_sends_its_params_and_no_body_headers(gateway: Gateway) -> None:
    async with transport(gateway.base_url + "/") as http:  # a trailing slash is dropped
        answer = await http.request("GET", "/v1/contacts", params={"page": 2, "per_page": 100})
    assert answer.status == 200 and answer.json()["meta"]["total"] == 0
    [call] = gateway.seen
    assert (call.method, call.path, call.query) == ("GET", "/gw/v1/contacts", {"page": "2", "per_page": "100"})
    assert call.body == b""
    assert "Content-Type" not in call.headers and "Idempotency-Key" not in call.headers


async def test_redirects_are_answers_not_followed(gateway: Gateway) -> None:
    async with transport(gateway.base_url) as http:
        answer = await http.request("POST", "/redirect", body=b"{}")
    assert answer.status == 307 and answer.headers["location"] == "/gw/steal"
    assert [call.path for call in gateway.seen] == ["/gw/redirect"]  # the target was never asked


async def test_non_json_gateway_page_parses_to_none_with_an_excerpt(gateway: Gateway) -> None:
    async with transport(gateway.base_url) as http:
        answer = await http.request("POST", "/bad-gateway", body=b"{}")
    assert answer.status == 502
    assert answer.json() is None and answer.error_code() == (None, None)
    assert "Bad gateway" in answer.text_excerpt()


async def test_an_echoed_key_is_scrubbed_from_the_answer_headers_and_body(gateway: Gateway) -> None:
    secret = 'lx_live/ab+c"d=e12345'
    spellings = (secret, json.dumps(secret)[1:-1], quote(secret, safe=""))
    async with transport(gateway.base_url, secret=secret) as http:
        answer = await http.request("POST", "/echo", body=b"{}")
    assert gateway.seen[0].headers["Authorization"] == f"Bearer {secret}"  # the key went out
    text = answer.body.decode() + "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
    for spelling in spellings:
        assert spelling not in text
    assert answer.request_id == f"req_Bearer {MASK}"
    assert answer.error_code() == ("bad_gateway", f"upstream refused Bearer {MASK}")
    assert answer.headers["x-echo"] == f'"Bearer {MASK}"'
    assert answer.headers["location"] == "/login?next=Bearer%20" + MASK


def test_repr_hides_the_key() -> None:
    assert SECRET not in repr(transport("http://127.0.0.1:1"))


# --- failures ----------------------------------------------------------------------------------


async def test_a_refused_connection_is_known_not_to_have_executed(refusing_port: int) -> None:
    async with transport(f"http://127.0.0.1:{refusing_port}") as http:
        failure = await fail(http, BULK)
    assert failure.kind == "connect" and not failure.may_have_executed
    assert SECRET not in str(failure) and SECRET not in repr(failure)


@pytest.mark.parametrize("path", ["/close-before-answer", "/close-mid-body", "/reset"])
async def test_a_dropped_connection_may_have_executed(gateway: Gateway, path: str) -> None:
    async with transport(gateway.base_url) as http:
        failure = await fail(http, path)
    assert failure.kind == "connection" and failure.may_have_executed
    assert [call.path for call in gateway.seen] == ["/gw" + path]  # the server did get it
    assert SECRET not in str(failure)


async def test_a_handler_slower_than_the_timeout_is_a_timeout(gateway: Gateway) -> None:
    async with transport(gateway.base_url, timeout=0.2) as http:
        failure = await fail(http, "/slow")
    assert failure.kind == "timeout" and failure.may_have_executed
    assert str(failure)  # never an empty message


@pytest.mark.parametrize("secret", [SECRET, 'lx_live/ab+c"d=e12345', "lx_it's_\"quoted\"_\\_key"])
async def test_the_key_is_scrubbed_from_failure_messages(gateway: Gateway, secret: str) -> None:
    async with transport(gateway.base_url, secret=secret) as http:
        failure = await fail(http, "/echo-malformed")
    assert failure.kind == "connection"
    message = str(failure) + repr(failure)
    assert MASK in message  # the echo did reach the message, scrubbed
    for spelling in (secret, json.dumps(secret)[1:-1], repr(secret.encode())[2:-1], repr(secret)[1:-1]):
        assert spelling not in message


# --- the Redactor ------------------------------------------------------------------------------

ODD = 'lx_live/ab+c"d=e12345'  # changes under JSON escaping and percent-encoding


def json_escaped(secret: str) -> str:
    return json.dumps(secret)[1:-1]


def test_the_plain_key_is_replaced() -> None:
    assert Redactor(SECRET).scrub_text(f"Bearer {SECRET} refused") == f"Bearer {MASK} refused"


@pytest.mark.parametrize("secret", [ODD, "lx_back\\slash_0123", "lx_tab\there_0123", "lx_ünïcode_€_𝄞_0123"])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_json_escaped_key_is_replaced(secret: str, ensure_ascii: bool) -> None:
    body = json.dumps({"message": f"echo: Bearer {secret}"}, ensure_ascii=ensure_ascii)
    assert json.loads(Redactor(secret).scrub_text(body)) == {"message": f"echo: Bearer {MASK}"}


@pytest.mark.parametrize(
    "spell",
    [
        lambda k: json_escaped(k).replace("/", "\\/"),  # PHP and others write "/" as "\/"
        lambda k: "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in k),  # Go: \u0022, \u002b
        lambda k: "".join(f"\\u{ord(c):04X}" for c in k),  # every character, upper-case hex
    ],
    ids=["escaped-slash", "unicode-escapes", "all-escaped"],
)
def test_other_valid_json_escapes_are_replaced(spell: Callable[[str], str]) -> None:
    body = '{"message": "echo: Bearer ' + spell(ODD) + '"}'
    assert json.loads(body)["message"] == f"echo: Bearer {ODD}"  # a valid spelling of the key
    assert json.loads(Redactor(ODD).scrub_text(body)) == {"message": f"echo: Bearer {MASK}"}


@pytest.mark.parametrize("safe", ["", "/"])
@pytest.mark.parametrize("case", [str.upper, str.lower])
def test_the_percent_encoded_key_is_replaced(safe: str, case: Callable[[str], str]) -> None:
    secret = 'lx_live/ab+c"d=e 12345'
    encoded = re.sub(r"%[0-9A-F]{2}", lambda m: case(m.group()), quote(f"Bearer {secret}", safe=safe))
    assert unquote(encoded) == f"Bearer {secret}"
    assert Redactor(secret).scrub_text("/login?next=" + encoded) == "/login?next=Bearer%20" + MASK
    form = "next=" + quote_plus(f"Bearer {secret}")
    assert Redactor(secret).scrub_text(form) == "next=Bearer+" + MASK


@pytest.mark.parametrize("secret", [ODD, "lx_it's_\"both\"_0123", "lx_back\\slash\"_0123", "lx_é_0123"])
def test_a_key_quoted_by_repr_once_or_twice_is_replaced(secret: str) -> None:
    # An aiohttp parser error quotes the bad line as a bytes repr, inside a message that
    # ClientResponseError's str() reprs again.
    line = repr(f"Bearer {secret}".encode())
    for text in (line, repr(line), repr(repr(line)), repr(f"Bearer {secret}")):
        scrubbed = Redactor(secret).scrub_text(text)
        assert MASK in scrubbed and "Bearer" in scrubbed
        assert secret not in scrubbed and secret.encode() not in scrubbed.encode()


def test_the_key_is_replaced_inside_bytes_bodies() -> None:
    body = (f"<html>{ODD}</html>".encode() + json.dumps({"m": ODD}).encode()
            + quote(ODD, safe="").encode() + "é".encode())
    scrubbed = Redactor(ODD).scrub_bytes(body)
    assert scrubbed == f'<html>{MASK}</html>{{"m": "{MASK}"}}{MASK}é'.encode()
    assert Redactor("lx_é_0123").scrub_bytes("key lx_é_0123 ".encode() + b"\xff") == b"key *** \xff"


def test_every_occurrence_is_replaced() -> None:
    assert Redactor(SECRET).scrub_text(f"{SECRET}{SECRET} and {SECRET}") == f"{MASK}{MASK} and {MASK}"
    text = f"{ODD} {json_escaped(ODD)} {quote(ODD, safe='')}"
    assert Redactor(ODD).scrub_text(text) == f"{MASK} {MASK} {MASK}"


def test_text_without_the_key_is_unchanged() -> None:
    redactor = Redactor(SECRET)
    for text in ("Bad gateway: wbk_transport_secret_4 (almost the key) %20 \\\" *** +",
                 "wbk_transport_secret_4\\u0033", "wbk%5Ftransport_secret_43", "", "\\" * 50):
        assert redactor.scrub_text(text) == text
        assert redactor.scrub_bytes(text.encode()) == text.encode()
    assert SECRET not in repr(redactor)


def test_a_hostile_body_is_scrubbed_in_linear_time() -> None:
    redactor = Redactor("lx\\\\" + ODD)
    started = time.perf_counter()
    for body in ("\\" * 200_000, ("\\" * 7 + "lx" + ODD[:-1]) * 10_000, "%5c" * 100_000, "lx\\" * 100_000):
        redactor.scrub_text(body)
        redactor.scrub_bytes(body.encode())
    assert time.perf_counter() - started < 2


PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
SPELLINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda k: k,
    "json": json_escaped,
    "json-ascii-off": lambda k: json.dumps(k, ensure_ascii=False)[1:-1],
    "json-slash": lambda k: json_escaped(k).replace("/", "\\/"),
    "percent": lambda k: quote(k, safe=""),
    "percent-lower": lambda k: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(k, safe="")),
    "form": quote_plus,
    "repr": lambda k: repr(k)[1:-1],
    "bytes-repr-twice": lambda k: repr(repr(k.encode())),
}


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(PRINTABLE, min_size=8, max_size=40),
    before=st.text(max_size=30),
    between=st.text(max_size=30),
    after=st.text(max_size=30),
    twice=st.booleans(),
)
@example(secret="***ab***", before="", between="", after="ab***", twice=False)  # a replacement makes a new key
def test_scrubbed_text_never_contains_the_key(secret: str, before: str, between: str, after: str, twice: bool) -> None:
    text = before + secret + between + (secret if twice else "") + after
    redactor = Redactor(secret)
    assert secret not in redactor.scrub_text(text)
    assert secret.encode() not in redactor.scrub_bytes(text.encode())


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(PRINTABLE, min_size=8, max_size=40),
    spelling=st.sampled_from(sorted(SPELLINGS)),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_scrubbed_text_never_contains_a_spelling_of_the_key(
    secret: str, spelling: str, before: str, after: str,
) -> None:
    spelled = SPELLINGS[spelling](secret)
    scrubbed = Redactor(secret).scrub_text(before + spelled + after)
    assert spelled not in scrubbed and secret not in scrubbed
