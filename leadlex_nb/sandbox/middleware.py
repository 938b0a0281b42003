"""The request pipeline every route goes through, in this order:

1. unknown route → 404 ``not_found``; wrong method → 405 ``method_not_allowed``;
2. fault decision for matched paths; ``reset_before``, ``gateway_html`` and ``redirect`` strike here
   (the edge), and ``revoke_after`` revokes the key;
3. authentication → 401 ``invalid_key``;
4. rate limits (``burst_429`` and ``retry_after_date`` stand in for them) → 429 ``rate_limited``,
   else the request counts;
5. ``error_5xx`` → JSON 500/503; scope check → 403 ``insufficient_permissions``;
6. body read (over the limit → 413 ``payload_too_large``);
7. ``Idempotency-Key``: replay (same body) / 422 (different body) / 409 (still running) / reserve;
8. ``latency``, then the handler; then ``drop_after_commit`` / ``slow_after_commit``, or the
   answer is bent (``non_json_200``, ``bad_counts``, the ``X-RateLimit-*`` header faults).

Any exception left over becomes a JSON 500 ``internal_error`` (never an HTML traceback), and every
request, whatever its fate, gets one execution-log entry (with the SHA-256 of its body, read before
any fault strikes) and an ``X-Request-ID``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .auth import AuthFailure
from .errors import ApiError, DropConnection, error_response, validation_error
from .faults import HEADER_FAULTS
from .idempotency import MAX_KEY_LENGTH, fingerprint
from .misbehave import bend_body, bend_headers, rate_limited_until_date, redirect
from .state import CTX_KEY, STATE_KEY, RequestContext, SandboxState, ctx

log = logging.getLogger("leadlex_nb.sandbox")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_GATEWAY_PAGE = ("<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
                 "</h1></center><hr><center>edge-gateway</center></body></html>")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


@dataclass(frozen=True)
class RouteMeta:
    scope: str | None = None
    export: bool = False


def route_meta(scope: str | None = None, export: bool = False) -> Callable[[Handler], Handler]:
    """Declare the scope a handler needs (and whether it counts as an export)."""
    def mark(handler: Handler) -> Handler:
        handler._sandbox_meta = RouteMeta(scope, export)  # type: ignore[attr-defined]
        return handler
    return mark


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every answer, streamed ones included."""
    context = request.get(CTX_KEY)
    response.headers["X-Request-ID"] = context.request_id if context else new_request_id()
    headers = context.rl_headers if context else {}
    if context and context.header_fault:
        headers = bend_headers(headers, context.header_fault)
    for name, value in headers.items():
        response.headers[name] = value


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    entry = state.log.begin(request.method, request.path)
    # Logged before anything can fail, so even attempts refused at the edge show their key.
    state.log.update(entry, idempotency_key=request.headers.get("Idempotency-Key"))
    context = RequestContext(new_request_id(), entry)
    request[CTX_KEY] = context
    try:
        response = await _run(request, handler, state, entry)
    except DropConnection:
        if request.transport is not None:
            request.transport.abort()
        state.log.update(entry, status=None, request_id=context.request_id)
        return web.Response(status=500)  # never written: the transport is gone
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:  # raised by aiohttp itself; keep the envelope
        response = error_response(exc.status, "http_error", exc.reason)
    except UnicodeError:
        response = validation_error("Text in the request is not valid Unicode").response()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        response = error_response(500, "internal_error", "Internal error")
    _finish_log(state, entry, request, response)
    return response


def _finish_log(state: SandboxState, entry: dict[str, Any], request: web.Request,
                response: web.StreamResponse) -> None:
    parsed = None
    if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
        try:
            parsed = json.loads(bytes(response.body))  # type: ignore[arg-type]
        except ValueError:
            parsed = None
    state.log.update(entry, status=response.status, request_id=ctx(request).request_id, response=parsed)


async def _run(request: web.Request, handler: Handler, state: SandboxState,
               entry: dict[str, Any]) -> web.StreamResponse:
    match = request.match_info
    if match.http_exception is not None:
        if match.http_exception.status == 405:
            allow = match.http_exception.headers.get("Allow", "")
            raise ApiError(405, "method_not_allowed",
                           f"Method {request.method} is not allowed on {request.path}", {"Allow": allow})
        raise ApiError(404, "not_found", f"No route matches {request.method} {request.path}")
    if not request.path.startswith("/v1/"):
        response = await handler(request)
        state.log.update(entry, outcome="executed")
        return response

    if request.method in _BODY_METHODS and request.content_length is not None \
            and request.content_length <= state.max_body_bytes:
        # Every attempt's exact bytes, even of those a fault refuses: a retry must resend them unchanged.
        state.log.update(entry, body_sha256=hashlib.sha256(await request.read()).hexdigest())
    decision = state.faults.decide(request.path)
    state.log.update(entry, fault=decision.name)
    kind = decision.kind
    if kind == "revoke_key":
        _, _, token = (request.headers.get("Authorization") or "").partition(" ")
        state.keys.revoke(token.strip())
    if kind == "reset_before":
        raise DropConnection
    if kind == "redirect":
        return redirect(decision.status or 307)
    if kind == "gateway_html":
        status = decision.status or 502
        reason = "Bad Gateway" if status == 502 else "Gateway Timeout"
        return web.Response(status=status, text=_GATEWAY_PAGE.format(status=status, reason=reason),
                            content_type="text/html")

    try:
        key = state.keys.authenticate(request.headers.get("Authorization"))
    except AuthFailure as exc:
        raise ApiError(401, "invalid_key", str(exc)) from None
    state.log.update(entry, key_label=key.label)
    meta: RouteMeta = getattr(match.handler, "_sandbox_meta", RouteMeta())

    verdict = (state.limiter.refusal(key.label) if kind in ("burst_429", "retry_after_date")
               else state.limiter.admit(key.label, export=meta.export))
    ctx(request).rl_headers = verdict.headers
    if kind == "retry_after_date":
        ctx(request).rl_headers = {}  # the refusal's own headers, Retry-After as a date, are the answer's
        return rate_limited_until_date(verdict.headers, 1.0)
    if kind in HEADER_FAULTS:
        ctx(request).header_fault = kind
    if not verdict.allowed:
        raise ApiError(429, "rate_limited", verdict.message)
    if kind == "error_5xx":
        if decision.status == 503:
            raise ApiError(503, "service_unavailable", "The service is temporarily unavailable")
        raise ApiError(500, "internal_error", "Internal error")
    if meta.scope and not key.allows(meta.scope):
        raise ApiError(403, "insufficient_permissions", f"This API key lacks the {meta.scope} permission")

    if request.method in _BODY_METHODS:
        raw = await _read_body(request, state.max_body_bytes)
        ctx(request).raw_body = raw
        _log_body(state, entry, request, raw)

    idem_key = request.headers.get("Idempotency-Key")
    if idem_key is not None and request.method in _BODY_METHODS:
        response = await _idempotent(request, handler, state, entry, key.label, idem_key, decision.delay)
    else:
        if decision.delay:
            await asyncio.sleep(decision.delay)
        response = await handler(request)

    if 200 <= response.status < 300 and not ctx(request).replayed:
        state.log.update(entry, outcome="executed")
    if kind == "drop_after_commit":
        raise DropConnection
    if kind == "slow_after_commit":
        await asyncio.sleep(decision.slow_seconds)
    if kind in ("non_json_200", "bad_counts"):
        return bend_body(response, kind, decision.status)
    return response


async def _read_body(request: web.Request, limit: int) -> bytes:
    too_large = ApiError(413, "payload_too_large", f"Request body exceeds the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None


def _log_body(state: SandboxState, entry: dict[str, Any], request: web.Request, raw: bytes) -> None:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return
    if not isinstance(body, dict):
        return
    fields: dict[str, Any] = {}
    if isinstance(body.get("contact_ids"), list):
        fields["contact_ids"] = list(body["contact_ids"])
    if request.path.endswith("/bulk-delete"):
        dry_run = body.get("dry_run", False)
        fields["dry_run"] = dry_run if isinstance(dry_run, bool) else None
    state.log.update(entry, **fields)


def _body_bytes(response: web.Response) -> bytes:
    """The body of a finished answer, to store for replay (handlers answer with bytes, not streams)."""
    body = response.body
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    raise TypeError(f"cannot store a {type(body).__name__} body for an idempotent replay")


async def _idempotent(request: web.Request, handler: Handler, state: SandboxState, entry: dict[str, Any],
                      label: str, idem_key: str, delay: float) -> web.StreamResponse:
    if not idem_key or len(idem_key) > MAX_KEY_LENGTH:
        raise validation_error(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    state.log.update(entry, idempotency_key=idem_key)
    raw = ctx(request).raw_body
    try:
        parsed, parsed_ok = json.loads(raw), True
    except (ValueError, RecursionError):
        parsed, parsed_ok = None, False
    fp = fingerprint(request.method, request.path, raw, parsed, parsed_ok)
    stored = state.idempotency.lookup(label, idem_key)
    if stored is not None:
        if not stored.done:
            raise ApiError(409, "idempotency_conflict",
                           "A request with this Idempotency-Key is still being processed; retry later")
        if stored.fingerprint != fp:
            raise ApiError(422, "idempotency_key_reused",
                           "This Idempotency-Key was already used with a different request")
        ctx(request).request_id = stored.request_id
        ctx(request).replayed = True
        state.log.update(entry, outcome="replayed")
        replay = web.Response(status=stored.status, body=stored.body)
        replay.content_type = stored.content_type
        replay.charset = "utf-8"
        return replay
    state.idempotency.reserve(label, idem_key, fp)
    try:
        if delay:
            await asyncio.sleep(delay)
        response = await handler(request)
    except BaseException:
        state.idempotency.release(label, idem_key)
        raise
    if isinstance(response, web.Response) and 200 <= response.status < 300:
        state.idempotency.complete(label, idem_key, status=response.status, body=_body_bytes(response),
                                   content_type=response.content_type, request_id=ctx(request).request_id)
    else:
        state.idempotency.release(label, idem_key)
    return response
