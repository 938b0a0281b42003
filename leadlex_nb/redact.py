"""Scrubbing the API key out of text that came from the network.

A gateway or proxy may echo the ``Authorization`` header into an error page, a message or a
header. The transport passes every answer through :class:`Redactor` before anything stores or
shows it, so no later layer has to remember to.
"""

from __future__ import annotations

import json
from urllib.parse import quote

MASK = "***"


class Redactor:
    """Replaces the key, in the spellings a server could echo it in, with ``***``."""

    __slots__ = ("_forms", "_byte_forms")

    def __init__(self, secret: str) -> None:
        forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret, safe="/")}
        # Longest first, so a form that contains another is replaced whole.
        self._forms = sorted((f for f in forms if f), key=len, reverse=True)
        self._byte_forms = [f.encode("utf-8") for f in self._forms]

    def __repr__(self) -> str:
        return "Redactor(***)"

    def scrub_text(self, value: str) -> str:
        for form in self._forms:
            if form in value:
                value = value.replace(form, MASK)
        return value

    def scrub_bytes(self, value: bytes) -> bytes:
        for form in self._byte_forms:
            if form in value:
                value = value.replace(form, MASK.encode())
        return value
