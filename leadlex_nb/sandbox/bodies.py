"""Pure request validation: JSON bodies, bulk-delete input, contact fields, webhook input.

Every function raises ``ApiError`` with a message naming what was wrong; nothing here touches I/O.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError, validation_error
from .timefmt import iso, iso_of, parse_iso
from .webhooks import EVENTS

MAX_BATCH = 500
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PRIORITIES = {"high": 1, "medium": 2, "low": 3, 1: 1, 2: 2, 3: 3}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def canonical_uuid(value: str) -> str | None:
    """Lower-case form of a hyphenated 8-4-4-4-12 hex UUID; None for anything else."""
    return value.lower() if _UUID_RE.fullmatch(value) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise validation_error("Request body is required: a JSON object")
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type must be application/json, got {content_type or 'none'!r}")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise validation_error("Request body is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise validation_error(f"Malformed JSON body: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise validation_error(f"Request body must be a JSON object, got {_json_type(body)}")
    return body


@dataclass(frozen=True)
class BulkDeleteInput:
    ids: list[str]          # unique canonical UUIDs, in first-seen order
    invalid: list[str]      # unique raw strings that are not UUIDs, in first-seen order
    dry_run: bool


def parse_bulk_delete(body: dict[str, Any]) -> BulkDeleteInput:
    if "contact_ids" not in body:
        raise validation_error("contact_ids is required: an array of contact UUIDs")
    raw_ids = body["contact_ids"]
    if not isinstance(raw_ids, list):
        raise validation_error(f"contact_ids must be an array, got {_json_type(raw_ids)}")
    if not raw_ids:
        raise validation_error("contact_ids must contain at least one ID")
    if len(raw_ids) > MAX_BATCH:
        raise validation_error(f"contact_ids has {len(raw_ids)} items; the maximum is {MAX_BATCH}")
    for i, value in enumerate(raw_ids):
        if not isinstance(value, str):
            raise validation_error(f"contact_ids[{i}] must be a string, got {_json_type(value)}")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise validation_error(f"dry_run must be a boolean, got {_json_type(dry_run)}")
    ids: dict[str, None] = {}
    invalid: dict[str, None] = {}
    for value in raw_ids:
        canonical = canonical_uuid(value)
        if canonical is None:
            invalid[value] = None
        else:
            ids[canonical] = None
    return BulkDeleteInput(list(ids), list(invalid), dry_run)


# -- contacts -----------------------------------------------------------------------------------

_TEXT_FIELDS = ("full_name", "first_name", "last_name", "email", "phone", "job_title", "company",
                "related_company_id", "company_id", "linkedin_url", "created_date")


def _text(body: dict[str, Any], name: str, where: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation_error(f"{where}{name} must be a string, got {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise validation_error(f"{where}{name} is not valid Unicode text") from None
    return value.strip()


def _split_name(full: str) -> tuple[str, str]:
    if "," in full:  # "Last, First"
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.rpartition(" ")
    return (first.strip(), last.strip()) if first else (last.strip(), "")


def normalize_contact(body: Any, *, where: str = "", now: float | None = None) -> dict[str, Any]:
    """Store row for a create request, with the documented name self-healing."""
    if not isinstance(body, dict):
        raise validation_error(f"{where or 'contact '}must be a JSON object, got {_json_type(body)}")
    now = time.time() if now is None else now
    f = {name: _text(body, name, where) for name in _TEXT_FIELDS}
    full, first, last, email = f["full_name"], f["first_name"], f["last_name"], f["email"]
    if not any((full, first, last, email)):
        raise validation_error(f"{where}at least one of first_name, last_name, full_name or email is required")
    if email and ("@" not in email or len(email) > 320):
        raise validation_error(f"{where}email is not a valid address")
    if full and not (first or last):
        first, last = _split_name(full)
    elif not full and (first or last):
        full = " ".join(p for p in (first, last) if p)
    elif not full and email:
        words = [w for w in re.split(r"[._+\-]+", email.split("@")[0]) if w]
        full = " ".join(w.capitalize() for w in words) or email
        first, last = _split_name(full)
    priority = body.get("priority")
    if priority is not None:
        key = priority.lower() if isinstance(priority, str) else priority
        if isinstance(priority, bool) or key not in _PRIORITIES:
            raise validation_error(f"{where}priority must be 'high', 'medium', 'low' or 1, 2, 3")
        priority = _PRIORITIES[key]
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise validation_error(f"{where}tags must be an array of strings")
    custom = body.get("custom_fields") or {}
    if not isinstance(custom, dict):
        raise validation_error(f"{where}custom_fields must be an object")
    created = iso(now)
    if f["created_date"]:
        parsed = parse_iso(f["created_date"])
        moment = datetime.fromtimestamp(now, tz=timezone.utc)
        # Kept only within the documented bounds: at most 24 h ahead, at most 5 years back.
        if parsed and moment - timedelta(days=5 * 365) <= parsed <= moment + timedelta(hours=24):
            created = iso_of(parsed)
    return {
        "first_name": first or "", "last_name": last or "", "full_name": full or "",
        "email": email, "phone": f["phone"], "job_title": f["job_title"], "company": f["company"],
        "linkedin_url": f["linkedin_url"], "priority": priority, "tags": tags,
        "custom_fields": json.loads(json.dumps(custom)), "created_at": created, "updated_date": iso(now),
    }


def parse_bulk_create(body: dict[str, Any], now: float) -> list[dict[str, Any]]:
    items = body.get("contacts")
    if items is None:
        raise validation_error("contacts is required: an array of contact objects")
    if not isinstance(items, list):
        raise validation_error(f"contacts must be an array, got {_json_type(items)}")
    if not items:
        raise validation_error("contacts must contain at least one contact")
    if len(items) > MAX_BATCH:
        raise validation_error(f"contacts has {len(items)} items; the maximum is {MAX_BATCH}")
    return [normalize_contact(item, where=f"contacts[{i}].", now=now) for i, item in enumerate(items)]


# -- webhooks -----------------------------------------------------------------------------------

def parse_webhook(body: dict[str, Any]) -> tuple[str, list[str], str, bool]:
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise validation_error("url is required: a string")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise validation_error("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise validation_error("url must be an http(s) URL")
    if host not in _LOOPBACK_HOSTS:
        raise validation_error("the sandbox delivers webhooks to loopback hosts only (127.0.0.1, localhost, ::1)")
    events = body.get("events")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise validation_error("events is required: a non-empty array of event names")
    unknown = sorted(set(events) - EVENTS)
    if unknown:
        raise validation_error(f"unknown events: {', '.join(unknown)[:300]}")
    description = body.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str) or len(description) > 200:
        raise validation_error("description must be a string of at most 200 characters")
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise validation_error(f"active must be a boolean, got {_json_type(active)}")
    return url, list(dict.fromkeys(events)), description, active
