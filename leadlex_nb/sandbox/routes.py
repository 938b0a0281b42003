"""Route handlers. Authentication, limits, faults and idempotency happen in ``middleware.py``."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from aiohttp import web

from .auth import READ_CONTACTS, READ_WEBHOOKS, WRITE_CONTACTS, WRITE_WEBHOOKS
from .bodies import (
    canonical_uuid,
    normalize_contact,
    parse_bulk_create,
    parse_bulk_delete,
    parse_json_object,
    parse_webhook,
)
from .errors import ApiError, validation_error
from .fakes import new_id
from .middleware import route_meta
from .openapi import build_spec
from .state import STATE_KEY, SandboxState, ctx
from .store import SORTABLE
from .timefmt import iso_of, parse_iso

EXPORT_FIELDS = ("id", "first_name", "last_name", "full_name", "email", "phone", "job_title",
                 "company_name", "linkedin_url", "priority", "tags", "created_at", "updated_date")
DEFAULT_EXPORT_FIELDS = ("id", "full_name", "email", "phone", "job_title", "company_name",
                         "linkedin_url", "tags", "created_at")
EXPORT_CHUNK_ROWS = 1000


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]


def _json_body(request: web.Request) -> dict[str, Any]:
    return parse_json_object(request.content_type, ctx(request).raw_body)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise validation_error(f"{name} must be an integer, got {text[:50]!r}") from None
    if not low <= value <= high:
        raise validation_error(f"{name} must be between {low} and {high}, got {value}")
    return value


def _time_param(request: web.Request, name: str) -> str | None:
    text = request.query.get(name)
    if not text:
        return None
    parsed = parse_iso(text)
    if parsed is None:
        raise validation_error(f"{name} must be an ISO 8601 date or date-time, got {text[:50]!r}")
    return iso_of(parsed)


def _new_ids(state: SandboxState, n: int) -> list[str]:
    with state.rng_lock:
        return [new_id(state.rng) for _ in range(n)]


def list_item(c: dict[str, Any]) -> dict[str, Any]:
    return {"id": c["id"], "full_name": c["full_name"], "email": c["email"], "phone": c["phone"],
            "job_title": c["job_title"], "company_name": c["company"], "linkedin_url": c["linkedin_url"],
            "created_at": c["created_at"], "updated_date": c["updated_date"]}


def full_contact(c: dict[str, Any]) -> dict[str, Any]:
    return {"id": c["id"], "first_name": c["first_name"], "last_name": c["last_name"],
            "full_name": c["full_name"], "email": c["email"], "phone": c["phone"],
            "job_title": c["job_title"], "company": c["company"], "related_company_id": None,
            "linkedin_url": c["linkedin_url"], "priority": c["priority"], "tags": c["tags"],
            "custom_fields": c["custom_fields"], "created_date": c["created_at"],
            "updated_date": c["updated_date"]}


# -- contacts -----------------------------------------------------------------------------------

@route_meta(scope=WRITE_CONTACTS)
async def bulk_delete(request: web.Request) -> web.Response:
    state = _state(request)
    spec = parse_bulk_delete(_json_body(request))
    deletable, locked, found = state.store.bulk_delete(spec.ids, spec.dry_run)
    errors = [{"contact_id": raw, "code": "invalid_id", "message": "Not a valid contact UUID"}
              for raw in spec.invalid]
    errors += [{"contact_id": cid, "code": "contact_locked",
                "message": "Contact is locked and cannot be deleted"} for cid in locked]
    data = {"deleted_count": len(deletable), "not_found_count": len(spec.ids) - len(found), "errors": errors}
    if not spec.dry_run:
        state.log.update(ctx(request).log_entry, deleted_ids=list(deletable))
        state.webhooks.emit("contact.deleted", [{"contact": {"id": cid}} for cid in deletable])
    return web.json_response({"data": data})


@route_meta(scope=WRITE_CONTACTS)
async def create_contact(request: web.Request) -> web.Response:
    state = _state(request)
    row = normalize_contact(_json_body(request))
    row["id"] = _new_ids(state, 1)[0]
    state.store.insert([row])
    contact = full_contact({**row, "locked": False})
    state.webhooks.emit("contact.created", [{"contact": contact}])
    keys = ("id", "first_name", "last_name", "full_name", "email", "priority", "created_date")
    return web.json_response({"data": {k: contact[k] for k in keys}}, status=201)


@route_meta(scope=WRITE_CONTACTS)
async def bulk_create(request: web.Request) -> web.Response:
    state = _state(request)
    rows = parse_bulk_create(_json_body(request), time.time())
    for row, cid in zip(rows, _new_ids(state, len(rows)), strict=True):
        row["id"] = cid
    state.store.insert(rows)
    created = [{"id": r["id"], "full_name": r["full_name"], "email": r["email"]} for r in rows]
    state.webhooks.emit("contact.bulk_created", [{"contacts": created, "count": len(created)}])
    return web.json_response({"data": {"created": len(rows), "contacts": created}}, status=201)


@route_meta(scope=READ_CONTACTS)
async def list_contacts(request: web.Request) -> web.Response:
    page = _int_param(request, "page", 1, 1, 1_000_000)
    per_page = _int_param(request, "per_page", 50, 1, 100)
    sort = request.query.get("sort") or "created_at"
    descending = sort.startswith("-")
    if sort.lstrip("-") not in SORTABLE or sort.count("-") > 1:
        raise validation_error(f"sort must be one of {', '.join(SORTABLE)}, optionally prefixed with '-'")
    rows, total = _state(request).store.page(
        page=page, per_page=per_page, search=request.query.get("search") or None,
        sort=sort.lstrip("-"), descending=descending, created_after=_time_param(request, "created_after"))
    return web.json_response({"data": {"contacts": [list_item(r) for r in rows]},
                              "meta": {"page": page, "per_page": per_page, "total": total}})


@route_meta(scope=READ_CONTACTS)
async def get_contact(request: web.Request) -> web.Response:
    cid = canonical_uuid(request.match_info["contact_id"])
    contact = _state(request).store.get(cid) if cid else None
    if contact is None:
        raise ApiError(404, "not_found", "Contact not found in this workspace")
    return web.json_response({"data": full_contact(contact)})


@route_meta(scope=READ_CONTACTS, export=True)
async def export_contacts(request: web.Request) -> web.StreamResponse:
    limit = _int_param(request, "limit", 10_000, 1, 50_000)
    fields = [f.strip() for f in (request.query.get("fields") or "").split(",") if f.strip()]
    unknown = [f for f in fields if f not in EXPORT_FIELDS]
    if unknown:
        raise validation_error(f"unknown export fields: {', '.join(unknown)[:200]}; "
                               f"choose from {', '.join(EXPORT_FIELDS)}")
    fields = fields or list(DEFAULT_EXPORT_FIELDS)
    rows = _state(request).store.export(
        limit=limit, created_after=_time_param(request, "created_after"),
        created_before=_time_param(request, "created_before"), tags=request.query.getall("tag", []))
    response = web.StreamResponse(headers={
        "Content-Disposition": 'attachment; filename="contacts-export.csv"'})
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    for start in range(0, max(len(rows), 1), EXPORT_CHUNK_ROWS):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if start == 0:
            writer.writerow(fields)
        for row in rows[start:start + EXPORT_CHUNK_ROWS]:
            writer.writerow([_export_cell(row, f) for f in fields])
        await response.write(buffer.getvalue().encode("utf-8"))
    await response.write_eof()
    return response


def _export_cell(row: dict[str, Any], field: str) -> Any:
    if field == "company_name":
        return row["company"] or ""
    if field == "tags":
        return ",".join(row["tags"])
    value = row[field]
    return "" if value is None else value


# -- webhooks -----------------------------------------------------------------------------------

@route_meta(scope=WRITE_WEBHOOKS)
async def create_webhook(request: web.Request) -> web.Response:
    url, events, description, active = parse_webhook(_json_body(request))
    hook = _state(request).webhooks.register(url, events, description, active)
    return web.json_response({"data": {**hook.public(), "secret": hook.secret}}, status=201)


@route_meta(scope=READ_WEBHOOKS)
async def list_webhooks(request: web.Request) -> web.Response:
    return web.json_response({"data": {"webhooks": [h.public() for h in _state(request).webhooks.all()]}})


@route_meta(scope=READ_WEBHOOKS)
async def webhook_logs(request: web.Request) -> web.Response:
    hook = _state(request).webhooks.get(request.match_info["webhook_id"])
    if hook is None:
        raise ApiError(404, "not_found", "Webhook not found")
    page = _int_param(request, "page", 1, 1, 1_000_000)
    per_page = _int_param(request, "per_page", 50, 1, 100)
    status = request.query.get("status")
    if status and status not in ("success", "failed", "pending"):
        raise validation_error("status must be one of success, failed, pending")
    logs = [entry for entry in list(hook.logs) if not status or entry["status"] == status]
    logs.reverse()  # newest first
    return web.json_response({"data": {"logs": logs[(page - 1) * per_page: page * per_page]},
                              "meta": {"page": page, "per_page": per_page, "total": len(logs)}})


# -- meta ---------------------------------------------------------------------------------------

async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_spec(f"{request.scheme}://{request.host}"))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/contacts/bulk-delete", bulk_delete)
    r.add_post("/v1/contacts/bulk", bulk_create)
    r.add_get("/v1/contacts/export", export_contacts, allow_head=False)
    r.add_post("/v1/contacts", create_contact)
    r.add_get("/v1/contacts", list_contacts, allow_head=False)
    r.add_get("/v1/contacts/{contact_id}", get_contact, allow_head=False)
    r.add_post("/v1/webhooks", create_webhook)
    r.add_get("/v1/webhooks", list_webhooks, allow_head=False)
    r.add_get("/v1/webhooks/{webhook_id}/logs", webhook_logs, allow_head=False)
    r.add_get("/openapi.json", openapi_json, allow_head=False)
