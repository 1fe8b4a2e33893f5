"""Request/response values passed between the HTTP layer, the API routes and the control API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import msgspec

_encoder = msgspec.json.Encoder()

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(slots=True)
class Request:
    method: str
    target: str  # raw request target, e.g. /api/v4/projects/group%2Fproject/issues?page=2
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    path: str = ""  # raw (still percent-encoded) path
    query_string: str = ""
    query: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        path, _, qs = self.target.partition("?")
        self.path, self.query_string = path, qs
        self.query = parse_qsl(qs, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """Last value of a scalar query parameter (Rails keeps the last one)."""
        found = None
        for key, value in self.query:
            if key == name:
                found = value
        return found

    def params(self, name: str) -> list[str]:
        """All values of an array parameter, given as ``name[]=`` (or bare ``name=``)."""
        return [v for k, v in self.query if k in (f"{name}[]", name)]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, _encoder.encode(payload), headers or [])


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode(), headers or [], content_type="text/plain; charset=utf-8")


class ApiError(Exception):
    """An error answer with GitLab's exact body (``message`` or ``error`` key, per API-NOTES §1.11)."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status} {body}")
        self.response = json_response(status, body, headers)


def not_found(resource: str) -> ApiError:
    """``not_found!(resource)``: ``{"message":"404 <Resource> Not Found"}``."""
    return ApiError(404, {"message": f"404 {resource} Not Found"})


def no_route() -> ApiError:
    return ApiError(404, {"error": "404 Not Found"})


def invalid_param(name: str) -> ApiError:
    return ApiError(400, {"error": f"{name} is invalid"})


def invalid_value(name: str) -> ApiError:
    return ApiError(400, {"error": f"{name} does not have a valid value"})
