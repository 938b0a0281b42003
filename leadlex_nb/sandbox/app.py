"""The LeadLex sandbox as an aiohttp application.

Where the LeadLex docs are silent, the sandbox chooses as follows (also listed in README.md here):

Bulk delete (``POST /v1/contacts/bulk-delete``)
  - Body ``{"contact_ids": [...], "dry_run": bool}``; unknown fields are ignored.
  - 400 ``validation_error`` for: no body, a body that is not a JSON object, malformed JSON,
    ``contact_ids`` missing / not an array / empty / over 500 items / holding a non-string
    (the message names the index), ``dry_run`` not a boolean.
  - A string that is not a hyphenated 8-4-4-4-12 hex UUID gets an ``errors[]`` row
    ``{contact_id: <as sent>, code: "invalid_id"}``; it is not counted in ``not_found_count``.
  - IDs match case-insensitively (canonical form: lower case). Duplicates in one request are
    processed and counted once (per canonical ID; an invalid string once per distinct string).
  - IDs that do not exist count in ``not_found_count`` only, never in ``errors[]``.
  - Locked contacts get an ``errors[]`` row ``contact_locked``, are kept, and are not counted;
    the rest of the batch is deleted (rows are independent, one transaction, one SQL round).
  - ``errors[]`` lists ``invalid_id`` rows first, then ``contact_locked`` rows, each in input order.
  - Dry run: the same validation, counts and ``errors[]`` (``deleted_count`` = would be deleted),
    nothing changes and no webhook fires.
  - Success is HTTP 200 ``{"data": {"deleted_count", "not_found_count", "errors"}}``; each deleted
    contact emits one ``contact.deleted`` webhook, ``data = {"contact": {"id": ...}}``.

Errors
  - Always ``{"error": {"code", "message"}}``. A body with a non-JSON Content-Type → 415
    ``unsupported_media_type``; an empty body → 400; over 1 MiB → 413 ``payload_too_large``;
    unknown route → 404 ``not_found``; wrong method → 405 ``method_not_allowed``; injected faults
    → 500 ``internal_error`` / 503 ``service_unavailable`` (JSON) or 502/504 HTML pages. Any other
    failure would be a JSON 500 ``internal_error``, which is a sandbox bug.

Authentication and scopes
  - ``Authorization: Bearer wbk_...``; missing, malformed, unknown or expired → 401 ``invalid_key``.
  - ``write:contacts`` for bulk delete and creating contacts; ``read:contacts`` for list, get and
    export; ``webhooks:write`` to register a webhook, ``webhooks:read`` (or write) to list them and
    read logs. ``contacts:write``-style spellings are accepted as aliases when a key is created.

Rate limits (per API key)
  - Every authenticated request that is not itself answered 429 counts once against both the
    fixed window (aligned to multiples of ``window_seconds`` since the epoch; never advertised)
    and the UTC-daily quota (``X-RateLimit-Limit/Remaining/Reset`` on every answer to an
    authenticated request, errors included; Reset = epoch seconds of the next 00:00 UTC).
  - Both limits answer 429 ``rate_limited`` (quota exhausted: Remaining 0). No ``Retry-After``
    unless the profile sets ``retry_after=True``. Checks run after authentication and before the
    scope check, so a 403 counts. Export: 10 calls per ``60 × window_seconds`` per workspace.
  - ``Sandbox.set_profile`` resets all counters.

Idempotency (``Idempotency-Key`` on any POST, scoped per API key)
  - Stored only when the request executed and answered 2xx (dry runs included), for 24 hours.
  - Same key + same method, path and canonical JSON body → the stored status, body and
    ``X-Request-ID`` again; nothing runs twice, no second webhook; logged as ``replayed``.
  - Same key + different request → 422 ``idempotency_key_reused``; same key while the first
    request is still running → 409 ``idempotency_conflict``. Validation errors are not stored.
  - A replay still counts against the rate limits (it is an authenticated request).

Listing and export
  - ``GET /v1/contacts``: ``page`` ≥ 1, ``per_page`` 1..100 (default 50), ``sort`` one of
    ``created_at``/``updated_date``/``full_name`` with optional ``-``; out-of-range values → 400
    (not clamped). ``search`` is a case-insensitive substring of name or email.
  - ``GET /v1/contacts/{id}``: a malformed ID is simply 404 ``not_found``.
  - Export sorts by ``created_at`` ascending; ``created_after`` is inclusive and
    ``created_before`` exclusive, so consecutive windows tile without overlap or gaps.

Contacts and webhooks
  - ``POST /v1/contacts`` answers 201; duplicate emails are accepted (no duplicate detection).
  - ``POST /v1/contacts/bulk`` is all-or-nothing on validation; any one of name or email suffices.
  - ``POST /v1/webhooks`` accepts http or https URLs on loopback hosts only (127.0.0.1,
    localhost, ::1): the sandbox never sends anything off the machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .middleware import add_common_headers, pipeline
from .routes import add_routes
from .state import STATE_KEY, SandboxState


def make_app(state: SandboxState) -> web.Application:
    app = web.Application(middlewares=[pipeline], client_max_size=state.max_body_bytes)
    app[STATE_KEY] = state
    app.on_response_prepare.append(add_common_headers)
    add_routes(app)

    async def webhook_worker(app: web.Application) -> AsyncIterator[None]:
        await state.webhooks.start()
        yield
        await state.webhooks.stop()

    app.cleanup_ctx.append(webhook_worker)
    return app
