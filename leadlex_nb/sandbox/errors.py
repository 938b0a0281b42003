"""The error envelope ``{"error": {"code", "message"}}`` and control-flow exceptions."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.details = details

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.headers, self.details)


class DropConnection(Exception):
    """Close the TCP connection without answering (an injected fault)."""


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   details: dict[str, Any] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status, headers=headers)


def validation_error(message: str) -> ApiError:
    return ApiError(400, "validation_error", message)
