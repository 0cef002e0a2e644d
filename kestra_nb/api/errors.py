"""HTTP errors of the API and the mapping of every KestraNbError to Kestra's status codes and JsonError body.

Kestra (Micronaut) answers errors with a `JsonError`:

    {"message": "Invalid entity: tasks[0].format: must not be null (line 4, column 5)",
     "_links": {"self": {"href": "/api/v1/main/flows", "templated": false}},
     "_embedded": {"errors": [{"message": "must not be null", "path": "tasks[0].format"}]}}

The status and message prefix follow spec §2.14; our messages keep the path and the YAML line:column.
"""
from __future__ import annotations

from typing import Any

from ..errors import (
    ExpressionError,
    FlowValidationError,
    IllegalArgumentError,
    IllegalStateError,
    InputValidationError,
    KestraNbError,
    NotFoundError,
    StoreError,
)
from ..store.nsfiles import FileTooLargeError, InvalidPathError

UNEXPECTED = "Internal server error: the request could not be completed (the server's log says why)"


class ApiError(KestraNbError):
    """An error the HTTP layer answers with `status`; `message` is the whole JsonError message."""

    status = 500
    reason: str | None = None

    def __init__(self, message: str, *, status: int | None = None, embedded: list[dict[str, Any]] | None = None,
                 plain: bool = False) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.embedded = embedded
        self.plain = plain  # answer with the bare message as text/plain (Kestra does it in a few places)


class BadRequest(ApiError):
    """400: a query value is missing or cannot be converted, or the tenant is not `main`."""

    status = 400
    reason = "Bad Request"


class UnsupportedMediaType(ApiError):
    """415: the route does not consume the request's Content-Type."""

    status = 415
    reason = "Unsupported Media Type"


class InvalidEntity(ApiError):
    """422 with constraint violations (`_embedded.errors`), e.g. an existing flow id."""

    status = 422
    reason = "Invalid entity"

    def __init__(self, violations: list[tuple[str, str]] | list[tuple[str, str, int | None, int | None]]) -> None:
        """(path, message) pairs, or (path, message, line, column) where the YAML position is known."""
        text = ", ".join(f"{v[0]}: {v[1]}" if v[0] else v[1] for v in violations)
        embedded: list[dict[str, Any]] = []
        for path, message, *where in violations:
            item: dict[str, Any] = {"message": message, "path": path}
            if where and where[0] is not None:
                item["line"], item["column"] = where[0], where[1]
            embedded.append(item)
        super().__init__(f"Invalid entity: {text}", embedded=embedded)


def error_status(exc: BaseException) -> tuple[int, str, str, list[dict[str, Any]] | None]:
    """(status, reason phrase, JsonError message, `_embedded.errors`) for an exception raised by the service."""
    if isinstance(exc, ApiError):
        return exc.status, exc.reason or _REASONS.get(exc.status, "Error"), exc.message, exc.embedded
    if isinstance(exc, FlowValidationError):
        embedded = []
        for v in exc.violations:
            item: dict[str, Any] = {"message": v.message, "path": v.path}
            if v.line is not None:
                item["line"] = v.line
                item["column"] = v.column
            embedded.append(item)
        return 422, "Invalid entity", "Invalid entity: " + ", ".join(str(v) for v in exc.violations), embedded
    if isinstance(exc, InputValidationError):
        return 422, "Invalid entity", "Invalid entity: " + exc.message, None
    if isinstance(exc, InvalidPathError):
        return 400, "Bad Request", "Bad Request: " + exc.message, None
    if isinstance(exc, FileTooLargeError):
        return 413, "Request Entity Too Large", "Request Entity Too Large: " + exc.message, None
    if isinstance(exc, IllegalArgumentError):
        return 422, "Illegal argument", "Illegal argument: " + exc.message, None
    if isinstance(exc, ExpressionError):
        return 422, "Illegal argument", "Illegal argument: " + exc.message, None
    if isinstance(exc, IllegalStateError):
        return 409, "Illegal state", "Illegal state: " + exc.message, None
    if isinstance(exc, NotFoundError):
        return 404, "Not Found", ("Not Found: " + exc.message) if exc.message else "Not Found", None
    if isinstance(exc, StoreError):   # its message names the store's path: say what failed, not where
        return 500, "Internal Server Error", "Internal server error: " + exc.public, None
    if isinstance(exc, KestraNbError):
        return 500, "Internal Server Error", "Internal server error: " + exc.message, None
    # an unexpected exception: what it means to the client, never its class or a traceback (the server logs it)
    return 500, "Internal Server Error", UNEXPECTED, None


def json_error(message: str, href: str, embedded: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Micronaut's JsonError document."""
    body: dict[str, Any] = {"message": message, "_links": {"self": {"href": href, "templated": False}}}
    if embedded:
        body["_embedded"] = {"errors": embedded}
    return body


_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
            422: "Unprocessable Entity", 500: "Internal Server Error"}

__all__ = ["ApiError", "BadRequest", "InvalidEntity", "UnsupportedMediaType", "error_status", "json_error"]
