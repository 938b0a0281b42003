"""Helpers for the sandbox's own tests: HTTP over real sockets with ``requests``."""

from __future__ import annotations

from typing import Any

import requests

from leadlex_nb.sandbox import Sandbox


class Api:
    """A thin requests wrapper bound to one sandbox and one key."""

    def __init__(self, sb: Sandbox, session: requests.Session) -> None:
        self.sb = sb
        self.session = session

    def headers(self, key: str | None = "default", **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if key is not None:
            headers["Authorization"] = f"Bearer {self.sb.api_key if key == 'default' else key}"
        return headers

    def post(self, path: str, json: Any = None, key: str | None = "default", idem: str | None = None,
             **kwargs: Any) -> requests.Response:
        extra = {"Idempotency-Key": idem} if idem is not None else {}
        headers = {**self.headers(key, **extra), **kwargs.pop("headers", {})}
        return self.session.post(self.sb.base_url + path, json=json, headers=headers, **{"timeout": 10, **kwargs})

    def get(self, path: str, key: str | None = "default", **kwargs: Any) -> requests.Response:
        headers = {**self.headers(key), **kwargs.pop("headers", {})}
        return self.session.get(self.sb.base_url + path, headers=headers, **{"timeout": 10, **kwargs})

    def delete(self, ids: list[Any], **kwargs: Any) -> requests.Response:
        return self.post("/v1/contacts/bulk-delete", {"contact_ids": ids}, **kwargs)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The documented envelope, the expected status and code, and a request ID."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert response.headers["X-Request-ID"].startswith("req_")
    return body["error"]
