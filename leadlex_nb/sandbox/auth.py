"""API keys: ``Authorization: Bearer wbk_...`` with scopes. Keys are never logged; labels are."""

from __future__ import annotations

import secrets
import string
import threading
from dataclasses import dataclass

READ_CONTACTS = "read:contacts"
WRITE_CONTACTS = "write:contacts"
READ_WEBHOOKS = "webhooks:read"
WRITE_WEBHOOKS = "webhooks:write"
DEFAULT_SCOPES = (READ_CONTACTS, WRITE_CONTACTS, READ_WEBHOOKS, WRITE_WEBHOOKS)
# The docs spell scopes both ways (``write:contacts`` and ``contacts:write``); accept both.
_ALIASES = {"contacts:read": READ_CONTACTS, "contacts:write": WRITE_CONTACTS,
            "read:webhooks": READ_WEBHOOKS, "write:webhooks": WRITE_WEBHOOKS,
            "admin:webhooks": WRITE_WEBHOOKS}
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ApiKey:
    label: str
    scopes: frozenset[str]
    expired: bool = False

    def allows(self, scope: str) -> bool:
        # Writing webhooks implies reading them, as the UI's coarse "Write" includes "Read".
        return scope in self.scopes or (scope == READ_WEBHOOKS and WRITE_WEBHOOKS in self.scopes)


class AuthFailure(Exception):
    """Why a request is not authenticated (the message never contains the key)."""


class KeyRing:
    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._revoked: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def create(self, scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES, expired: bool = False,
               label: str | None = None) -> str:
        secret = "wbk_" + "".join(secrets.choice(_ALPHABET) for _ in range(52))
        with self._lock:
            key = ApiKey(label or f"key-{len(self._keys) + 1}",
                         frozenset(_ALIASES.get(s, s) for s in scopes), expired)
            self._keys[secret] = key
        return secret

    def revoke(self, secret: str) -> None:
        """Revoked keys answer 401 like unknown ones, from the next request on."""
        with self._lock:
            key = self._keys.pop(secret, None)
            if key is not None:
                self._revoked[secret] = key

    def reinstate(self, secret: str) -> None:
        """Undo ``revoke`` (an administrator restoring the key): it authenticates again."""
        with self._lock:
            key = self._revoked.pop(secret, None)
            if key is not None:
                self._keys[secret] = key

    def authenticate(self, authorization: str | None) -> ApiKey:
        if not authorization:
            raise AuthFailure("Missing Authorization header; send 'Authorization: Bearer wbk_...'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure("Authorization header must use the Bearer scheme")
        with self._lock:
            key = self._keys.get(token.strip())
        if key is None:
            raise AuthFailure("Invalid API key")
        if key.expired:
            raise AuthFailure("API key has expired")
        return key
