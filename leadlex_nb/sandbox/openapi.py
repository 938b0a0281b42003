"""The OpenAPI 3 description served at ``/openapi.json`` (precise enough for fuzzing)."""

from __future__ import annotations

from typing import Any

_UUID = {"type": "string", "format": "uuid"}
_STR_OR_NULL = {"type": ["string", "null"]}
_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}},
}
_RL_HEADERS = {name: {"schema": {"type": "integer"}, "description": desc} for name, desc in (
    ("X-RateLimit-Limit", "daily quota"), ("X-RateLimit-Remaining", "calls left today"),
    ("X-RateLimit-Reset", "epoch seconds of the next 00:00 UTC"))}
_RID = {"X-Request-ID": {"schema": {"type": "string"}}}
_LIST_ITEM = {"type": "object", "properties": {
    "id": _UUID, "full_name": {"type": "string"}, "email": _STR_OR_NULL, "phone": _STR_OR_NULL,
    "job_title": _STR_OR_NULL, "company_name": _STR_OR_NULL, "linkedin_url": _STR_OR_NULL,
    "created_at": {"type": "string"}, "updated_date": {"type": "string"}}}
_CONTACT = {"type": "object", "properties": {
    "id": _UUID, "first_name": {"type": "string"}, "last_name": {"type": "string"},
    "full_name": {"type": "string"}, "email": _STR_OR_NULL, "phone": _STR_OR_NULL,
    "job_title": _STR_OR_NULL, "company": _STR_OR_NULL, "related_company_id": _STR_OR_NULL,
    "linkedin_url": _STR_OR_NULL, "priority": {"type": ["integer", "null"]},
    "tags": {"type": "array", "items": {"type": "string"}}, "custom_fields": {"type": "object"},
    "created_date": {"type": "string"}, "updated_date": {"type": "string"}}}
_CONTACT_INPUT = {"type": "object", "properties": {
    "full_name": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
    "email": {"type": "string"}, "phone": {"type": "string"}, "job_title": {"type": "string"},
    "company": {"type": "string"}, "related_company_id": {"type": "string"},
    "linkedin_url": {"type": "string"},
    "priority": {"oneOf": [{"type": "string", "enum": ["high", "medium", "low"]},
                           {"type": "integer", "enum": [1, 2, 3]}]},
    "tags": {"type": "array", "items": {"type": "string"}}, "custom_fields": {"type": "object"},
    "created_date": {"type": "string", "format": "date-time"}}}
_WEBHOOK: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "string"}, "url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}},
    "description": {"type": "string"}, "active": {"type": "boolean"},
    "last_delivery_status": _STR_OR_NULL, "last_delivery_at": _STR_OR_NULL, "created_at": {"type": "string"}}}
_META = {"type": "object", "required": ["page", "per_page", "total"], "properties": {
    "page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": {"type": "integer"}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "headers": {**_RL_HEADERS, **_RID},
            "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "validation_error", 401: "invalid_key", 403: "insufficient_permissions",
            404: "not_found", 409: "idempotency_conflict", 413: "payload_too_large",
            415: "unsupported_media_type", 422: "idempotency_key_reused", 429: "rate_limited"}
    return {str(s): {"description": text[s], "headers": _RID,
                     "content": {"application/json": {"schema": _ERROR}}} for s in (401, 403, 429, *statuses)}


def _data(schema: dict[str, Any], meta: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"data": schema}
    if meta:
        props["meta"] = _META
    return {"type": "object", "required": list(props), "properties": props}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_IDEM = {"name": "Idempotency-Key", "in": "header", "required": False,
         "schema": {"type": "string", "minLength": 1, "maxLength": 255}}


def _q(name: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, **extra}


def build_spec(server_url: str) -> dict[str, Any]:
    body_errors = (400, 409, 413, 415, 422)
    return {
        "openapi": "3.1.0",
        "info": {"title": "LeadLex API (sandbox)", "version": "1.0.0"},
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/v1/contacts/bulk-delete": {"post": {
                "operationId": "bulkDeleteContacts", "parameters": [_IDEM],
                "requestBody": _body({"type": "object", "required": ["contact_ids"], "properties": {
                    "contact_ids": {"type": "array", "minItems": 1, "maxItems": 500, "items": {"type": "string"}},
                    "dry_run": {"type": "boolean", "default": False}}}),
                "responses": {"200": _json(_data({"type": "object", "required": [
                    "deleted_count", "not_found_count", "errors"], "properties": {
                    "deleted_count": {"type": "integer"}, "not_found_count": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object", "required": [
                        "contact_id", "code", "message"], "properties": {
                        "contact_id": {"type": "string"}, "code": {"type": "string"},
                        "message": {"type": "string"}}}}}})), **_errors(*body_errors)}}},
            "/v1/contacts": {
                "get": {"operationId": "listContacts", "parameters": [
                    _q("page", {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}),
                    _q("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
                    _q("search", {"type": "string"}),
                    _q("created_after", {"type": "string", "format": "date-time"}),
                    _q("sort", {"type": "string", "enum": ["created_at", "-created_at", "updated_date",
                                                           "-updated_date", "full_name", "-full_name"]})],
                    "responses": {"200": _json(_data({"type": "object", "required": ["contacts"], "properties": {
                        "contacts": {"type": "array", "items": _LIST_ITEM}}}, meta=True)), **_errors(400)}},
                "post": {"operationId": "createContact", "parameters": [_IDEM],
                         "requestBody": _body(_CONTACT_INPUT),
                         "responses": {"201": _json(_data(_CONTACT), "Created"), **_errors(*body_errors)}}},
            "/v1/contacts/bulk": {"post": {
                "operationId": "bulkCreateContacts", "parameters": [_IDEM],
                "requestBody": _body({"type": "object", "required": ["contacts"], "properties": {
                    "contacts": {"type": "array", "minItems": 1, "maxItems": 500, "items": _CONTACT_INPUT}}}),
                "responses": {"201": _json(_data({"type": "object", "properties": {
                    "created": {"type": "integer"}, "contacts": {"type": "array", "items": {"type": "object"}}}}),
                    "Created"), **_errors(*body_errors)}}},
            "/v1/contacts/export": {"get": {
                "operationId": "exportContacts", "parameters": [
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 50000, "default": 10000}),
                    _q("created_after", {"type": "string", "format": "date-time"}),
                    _q("created_before", {"type": "string", "format": "date-time"}),
                    _q("fields", {"type": "string"}),
                    _q("tag", {"type": "array", "items": {"type": "string"}}, style="form", explode=True)],
                "responses": {"200": {"description": "CSV, header row first", "headers": {**_RL_HEADERS, **_RID},
                                      "content": {"text/csv": {"schema": {"type": "string"}}}},
                              **_errors(400)}}},
            "/v1/contacts/{contact_id}": {"get": {
                "operationId": "getContact",
                "parameters": [{"name": "contact_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_data(_CONTACT)), **_errors(404)}}},
            "/v1/webhooks": {
                "post": {"operationId": "createWebhook", "parameters": [_IDEM],
                         "requestBody": _body({"type": "object", "required": ["url", "events"], "properties": {
                             "url": {"type": "string"},
                             "events": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                             "description": {"type": "string", "maxLength": 200},
                             "active": {"type": "boolean", "default": True}}}),
                         "responses": {"201": _json(_data({**_WEBHOOK, "properties": {
                             **_WEBHOOK["properties"], "secret": {"type": "string"}}}), "Created"),
                             **_errors(*body_errors)}},
                "get": {"operationId": "listWebhooks",
                        "responses": {"200": _json(_data({"type": "object", "properties": {
                            "webhooks": {"type": "array", "items": _WEBHOOK}}})), **_errors()}}},
            "/v1/webhooks/{webhook_id}/logs": {"get": {
                "operationId": "webhookLogs", "parameters": [
                    {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    _q("status", {"type": "string", "enum": ["success", "failed", "pending"]}),
                    _q("page", {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}),
                    _q("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50})],
                "responses": {"200": _json(_data({"type": "object", "properties": {
                    "logs": {"type": "array", "items": {"type": "object"}}}}, meta=True)), **_errors(400, 404)}}},
        },
    }
