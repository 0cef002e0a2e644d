"""Thin tornado handlers: HTTP in, one `ApiService` call, HTTP out. Everything they do is read off the route.

`api_handlers(api, prefix)` gives the tornado URL specs that every server mounts (the standalone server at
`/`, the Jupyter extension under `{base_url}kestra/`). One handler class serves the whole table: the
router picks the route (method, most specific path), then the handler checks auth and the tenant, turns
the query parameters and the body into the service call's arguments, and writes the result as the route
says (JSON, text, server-sent events, or an empty body with the route's status).
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import tornado.web
from tornado.httputil import parse_multipart_form_data
from tornado.iostream import StreamClosedError

from ..model.jsonfmt import dumps, parse_duration, parse_instant
from . import sse
from .auth import CHALLENGE, BasicAuth
from .errors import ApiError, BadRequest, UnsupportedMediaType, error_status, json_error
from .routes import (
    FLOW_SOURCE,
    JSON,
    MULTIPART,
    TEXT,
    Match,
    Param,
    Route,
    Router,
    served_routes,
)
from .service import ApiService, Body, Form, Upload

log = logging.getLogger(__name__)

TENANT = "main"
_PATH_KEYWORDS = {"executionId": "execution_id", "id": "flow_id", "flowId": "flow_id"}


class Api:
    """What every handler of one server shares: the service, the routes it serves, the credentials."""

    def __init__(self, service: ApiService, auth: BasicAuth | None = None) -> None:
        self.service = service
        self.routes: list[Route] = served_routes(service.engine)
        self.router = Router(self.routes)
        self.auth = auth
        self.in_flight = 0          # requests being answered (the server drains them on shutdown)


class ApiHandler(tornado.web.RequestHandler):
    """Serves every route of the table."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, api: Api, prefix: str = "") -> None:
        """Tornado's per-request set-up: the shared Api and the prefix the table is mounted under."""
        self.api = api
        self.prefix = prefix.rstrip("/")
        self._closed = asyncio.Event()   # set when the client goes away (ends event streams)
        self._match: Match | None = None

    def compute_etag(self) -> str | None:
        """No ETag: hashing every body costs time, and no client sends If-None-Match."""
        return None

    def check_xsrf_cookie(self) -> None:
        """No XSRF check: Basic-authenticated API clients are exempt, as in Kestra."""

    def on_connection_close(self) -> None:
        """The client left: event streams stop (and unsubscribe)."""
        self._closed.set()

    def is_authorized(self) -> bool:
        """Whether the request may use authenticated routes (Basic auth; a host server may override it)."""
        auth = self.api.auth
        return auth is None or auth.check(self.request.headers.get("Authorization"), self.get_cookie("BASIC_AUTH"))

    # tornado calls one method per verb; they all dispatch through the table
    async def get(self, *args: str) -> None:
        await self._dispatch()

    async def head(self, *args: str) -> None:
        await self._dispatch()

    async def post(self, *args: str) -> None:
        await self._dispatch()

    async def put(self, *args: str) -> None:
        await self._dispatch()

    async def delete(self, *args: str) -> None:
        await self._dispatch()

    async def patch(self, *args: str) -> None:
        await self._dispatch()

    async def options(self, *args: str) -> None:
        await self._dispatch()

    # ----------------------------------------------------------------------------------------- dispatch

    async def _dispatch(self) -> None:
        api = self.api
        api.in_flight += 1
        try:
            path = self.request.path[len(self.prefix):] if self.prefix else self.request.path
            match = api.router.match(self.request.method or "GET", path)
            route = match.route if isinstance(match, Match) else None
            self._match = match if isinstance(match, Match) else None
            if (route is None or route.auth) and not self.is_authorized():
                self.set_status(401)
                self.set_header("WWW-Authenticate", CHALLENGE)
                self._finish()
                return
            if not isinstance(match, Match):
                status = 405 if match == "method" else 404
                self._error(ApiError("Method Not Allowed" if status == 405 else "Not Found", status=status))
                return
            try:
                kwargs = self._arguments(match)
                result = getattr(api.service, match.route.operation)(**kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:  # noqa: BLE001 - every error becomes a JsonError, never a traceback
                self._error(exc)
                return
            await self._respond(match.route, result)
        finally:
            api.in_flight -= 1

    def _arguments(self, match: Match) -> dict[str, Any]:
        route, variables = match.route, dict(match.variables)
        tenant = variables.pop("tenant", TENANT)
        if tenant != TENANT:
            raise BadRequest(f"Bad Request: Tenant '{tenant}' does not exist: this server only serves the "
                             f"'{TENANT}' tenant")
        kwargs: dict[str, Any] = {_PATH_KEYWORDS.get(k, k): v for k, v in variables.items()}
        query = self.request.query_arguments
        for param in route.params:
            if param.type == "filters":
                raw = {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in query.items()
                       if k.startswith("filters[")}
                if raw:
                    kwargs[param.keyword] = raw
                continue
            values = [v.decode("utf-8", "replace") for v in query.get(param.name, ())]
            if not values:
                if param.required:
                    raise BadRequest(f"Bad Request: Required QueryValue [{param.name}] not specified")
                continue
            converted = [_convert(param, v) for v in values]
            kwargs[param.keyword] = converted if param.multi else converted[-1]
        for header in route.headers:
            value = self.request.headers.get(header)
            if value is not None:
                kwargs[header.replace("-", "_")] = value
        if route.body is not None:
            body = self._body(route)
            if body is not None:
                kwargs["form" if route.body == MULTIPART else "body"] = body
        return kwargs

    def _body(self, route: Route) -> Any:
        raw = self.request.body or b""
        content_type = self.request.headers.get("Content-Type")
        media = content_type.split(";", 1)[0].strip().lower() if content_type else None
        if route.body == MULTIPART:
            # clients send no body (and no Content-Type) when there are no inputs
            if media is None and not raw:
                return None
            if media != "multipart/form-data":
                raise _unsupported(content_type, route)
            return _form(content_type or "", raw)
        if media is not None and media not in route.consumes and not (
                route.body == JSON and media.endswith("+json")):
            raise _unsupported(content_type, route)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("Invalid entity: the body is not UTF-8 text", status=422) from None
        if route.body == FLOW_SOURCE:
            return Body(media, text)
        if route.body == JSON:
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ApiError(f"Invalid json: {exc}", status=422) from None
        if route.body == TEXT:
            return text
        return None

    # ----------------------------------------------------------------------------------------- answers

    async def _respond(self, route: Route, result: Any) -> None:
        if route.produces == "sse":
            await self._stream(result)
            return
        self.set_status(route.status)
        if route.produces == "none":
            self._finish()
        elif route.produces == "text":
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            if route.operation == "download_logs":
                self.set_header("Content-Disposition",
                                f'attachment; filename="{self._match.variables.get("executionId", "logs")}.log"')  # type: ignore[union-attr]
            self._finish(result.encode("utf-8") if isinstance(result, str) else result)
        else:
            self.set_header("Content-Type", "application/json")
            self._finish(dumps(result).encode("utf-8"))

    async def _stream(self, events: AsyncIterator[tuple[str, Any]]) -> None:
        """Write server-sent events until the stream ends or the client leaves (then it is closed)."""
        self.set_status(200)
        self.set_header("Content-Type", sse.CONTENT_TYPE)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        closer = asyncio.ensure_future(self._closed.wait())
        iterator = events.__aiter__()
        try:
            while True:
                step = asyncio.ensure_future(iterator.__anext__())
                done, _ = await asyncio.wait({step, closer}, return_when=asyncio.FIRST_COMPLETED)
                if step not in done:  # the client left: stop the stream, which unsubscribes
                    step.cancel()
                    with suppress(BaseException):
                        await step
                    return
                try:
                    event_id, data = step.result()
                except StopAsyncIteration:
                    break
                self.write(sse.event(event_id, data))
                try:
                    await self.flush()
                except StreamClosedError:
                    return
            self._finish()
        except Exception:
            log.exception("kestra_nb: event stream failed")
            self._finish()
        finally:
            closer.cancel()
            with suppress(BaseException):
                await events.aclose()  # type: ignore[attr-defined]

    def _error(self, exc: BaseException) -> None:
        status, reason, message, embedded = error_status(exc)
        if status >= 500:
            log.error("kestra_nb: %s %s failed", self.request.method, self.request.path,
                      exc_info=(type(exc), exc, exc.__traceback__))
        self.clear_header("Content-Disposition")
        self.set_status(status, reason)
        if isinstance(exc, ApiError) and exc.plain:
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self._finish(message.encode("utf-8"))
            return
        self.set_header("Content-Type", "application/json")
        self._finish(dumps(json_error(message, self.request.path, embedded)).encode("utf-8"))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own errors (a malformed request…) as a JsonError too, without a traceback."""
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(json_error(self._reason or "Error", self.request.path)))

    def _finish(self, body: bytes | None = None) -> None:
        try:
            self.finish(body)
        except StreamClosedError:
            pass  # the client left before the answer


class NotFoundHandler(tornado.web.RequestHandler):
    """Paths outside the API: a JsonError 404."""

    def prepare(self) -> None:
        """Answer 404 at once, whatever the method."""
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(json_error("Not Found", self.request.path)))


def _convert(param: Param, value: str) -> Any:
    """A query value converted to the parameter's type (400 Bad Request if it cannot be)."""
    try:
        if param.type == "boolean":
            lowered = value.strip().lower()
            if lowered not in ("true", "false", ""):
                raise ValueError(value)
            return lowered != "false"
        if param.type == "integer":
            return int(value)
        if param.type == "duration":
            return parse_duration(value)
        if param.type == "datetime":
            try:
                return parse_instant(value)
            except ValueError:
                return parse_instant(value + "Z")  # the legacy search format's zone is optional
    except ValueError:
        raise BadRequest(f"Bad Request: Failed to convert argument [{param.name}] for value [{value}]") from None
    return value


def _form(content_type: str, raw: bytes) -> Form:
    """A multipart/form-data body as text fields (UTF-8) and file parts."""
    boundary = None
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    form = Form()
    if not raw:
        return form
    if not boundary:
        raise BadRequest("Bad Request: multipart/form-data without a boundary")
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[Any]] = {}
    parse_multipart_form_data(boundary.encode("latin1"), raw, arguments, files)
    for name, values in arguments.items():
        try:
            form.fields[name] = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise ApiError(f"Invalid entity: the form field `{name}` is not UTF-8 text", status=422) from None
    for name, uploads in files.items():
        for upload in uploads:
            form.files.append(Upload(name, upload.filename, upload.body, upload.content_type))
    return form


def _unsupported(content_type: str | None, route: Route) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"Content Type [{content_type or 'none'}] not allowed. Allowed types: "
                                f"[{', '.join(route.consumes)}]")


def api_handlers(api: Api, prefix: str = "", handler: type[ApiHandler] = ApiHandler
                 ) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """The tornado URL specs that mount the whole table under `prefix` (e.g. `/kestra` in Jupyter).

    A host server with its own authentication passes a `handler` subclass overriding `is_authorized`.
    """
    base = prefix.rstrip("/")
    options = {"api": api, "prefix": base}
    return [(base + r"/ping", handler, options), (base + r"/api/v1/.*", handler, options)]


__all__ = ["Api", "ApiHandler", "NotFoundHandler", "api_handlers"]
