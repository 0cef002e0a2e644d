"""Thin tornado handlers: HTTP in, one `ApiService` call, HTTP out. Everything they do is read off the route.

`api_handlers(api, prefix)` gives the tornado URL specs that every server mounts (the standalone server at
`/`, the Jupyter extension under `{base_url}kestra/`). One handler class serves the whole table: the
router picks the route (method, most specific path), then the handler checks auth and the tenant, turns
the query parameters and the body into the service call's arguments, and writes the result as the route
says (JSON, text, server-sent events, a stored file, or an empty body with the route's status).

Request bodies stream in (`stream_request_body`): a multipart body (execution inputs, resume inputs) is
parsed as it arrives by `api.multipart.MultipartSink`, its file parts written to temporary files on the
storage's disk, so an upload of any size (up to `STREAMED_BODY_LIMIT`) costs a chunk of memory; other
bodies are small documents, gathered in memory under the server's usual limit. Files are sent back the
same way, a chunk at a time.
"""
from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any
from urllib.parse import quote

import tornado.web
from tornado.iostream import StreamClosedError

from ..errors import NotFoundError
from ..model.ids import namespace_problem
from ..model.jsonfmt import JsonChunks, JsonText, dumps, parse_duration, parse_instant
from ..store.storage import UPLOAD_LIMIT
from . import sse
from .auth import CHALLENGE, BasicAuth, Credentials
from .errors import ApiError, BadRequest, InvalidEntity, UnsupportedMediaType, error_status, json_error
from .guard import Forbidden, Guard
from .multipart import MultipartSink
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
from .service import ApiService, Body, Redirect, StoredFile

log = logging.getLogger(__name__)

TENANT = "main"
ON_SERVER_LOOP = frozenset({"ping", "openapi"})   # operations answered on the server's loop: constant work
STREAMED_BODY_LIMIT = UPLOAD_LIMIT   # bytes of a multipart body (file uploads); other bodies keep the default
FILE_CHUNK = 512 * 1024                # bytes read and sent at a time when serving a stored file
STREAM_SECONDS = 300                   # longest a large document may take to send (its store snapshot stays open)
MAX_JSON_DEPTH = 200   # levels of arrays and objects in a JSON body (Python code recursing over it stays safe)
JAVA_INT_MIN, JAVA_INT_MAX = -2 ** 31, 2 ** 31 - 1   # the range of an integer query value
MAX_DURATION = datetime.timedelta(days=100 * 366)   # of a duration query value (timeout, timeRange…)
_PATH_KEYWORDS = {"executionId": "execution_id", "id": "flow_id", "flowId": "flow_id"}


async def on_engine_loop(engine: Any, call: Any) -> Any:
    """`call()` (awaited if it gives an awaitable) on the engine's loop, whichever loop the server runs."""
    on_loop = getattr(engine, "on_loop", None)
    if on_loop is not None:
        return await on_loop(call)
    result = call()
    return await result if inspect.isawaitable(result) else result


class Api:
    """What every handler of one server shares: the service, the routes it serves, the credentials."""

    def __init__(self, service: ApiService, auth: BasicAuth | Credentials | None = None,
                 guard: Guard | None = None) -> None:
        self.service = service
        self.routes: list[Route] = served_routes(service.engine)
        self.router = Router(self.routes)
        self.auth = Credentials.of(auth)
        self.guard = guard          # Host and Origin checks (None: the host server makes its own, as Jupyter)
        if service.security is None and self.auth is not None:
            service.security = self.auth.security   # what the OpenAPI document says is needed
        self.in_flight = 0          # requests being answered (the server drains them on shutdown)


@tornado.web.stream_request_body
class ApiHandler(tornado.web.RequestHandler):
    """Serves every route of the table."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, api: Api, prefix: str = "") -> None:
        """Tornado's per-request set-up: the shared Api and the prefix the table is mounted under."""
        self.api = api
        self.prefix = prefix.rstrip("/")
        self._closed = asyncio.Event()   # set when the client goes away (ends event streams)
        self._match: Match | None = None
        self._sink: MultipartSink | None = None   # a multipart body being parsed to temporary files
        self._buffer = bytearray()                # any other body
        self._discard = False                     # a body nobody will read (refused request): dropped
        self._refused: ApiError | None = None     # why the guard refused the request (answered after the body)
        self._preflight = False                   # an allowed CORS preflight (answered 204 after the body)
        self._received = 0

    def prepare(self) -> None:
        """Before the body arrives: the Host and Origin checks (api.guard), then decide where the body goes
        (see `_open_body`)."""
        if self._guarded():
            self._open_body()

    def _guarded(self) -> bool:
        """Whether the request passed the server's guard (api.guard). A refused one has its body dropped as it
        comes (never stored: it is not a multipart upload then, so the server's usual size limit applies) and
        is answered 403 once it is in, which keeps the connection usable. Answers to an allowed foreign origin
        get their CORS headers, and its preflight is answered here."""
        guard = self.api.guard
        if guard is None:
            return True
        headers = self.request.headers
        for name, value in guard.cors_headers(headers).items():
            self.set_header(name, value)
        try:
            guard.check(self.request.method or "GET", headers)
        except Forbidden as exc:
            self._refused = exc
            self._discard = True
            return False
        if self.request.method == "OPTIONS":
            preflight = guard.preflight_headers(headers)
            if preflight:   # answered in _dispatch: finishing before the body is read would close the connection
                for name, value in preflight.items():
                    self.set_header(name, value)
                self._preflight = True
                self._discard = True
                return False
        return True

    def _open_body(self) -> None:
        """A multipart body of an allowed request streams to temporary files under a raised size limit; a
        request without credentials is answered (401) before its body is read; the body a multipart route
        will refuse (another media type: 415) is dropped as it comes; any other body is gathered in memory
        (under the server's usual limit) and left in `request.body`."""
        match = self.api.router.match(self.request.method or "GET", self._api_path())
        route = match.route if isinstance(match, Match) else None
        if route is not None and route.auth and not self.is_authorized():
            headers = self.request.headers
            if headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in headers:
                # answered now, the body unread: the connection cannot be reused, so the client is told
                self.set_header("Connection", "close")
                self._unauthorized()
            else:
                self._discard = True
            return
        if route is None or route.body != MULTIPART:
            return
        if _media(self.request.headers.get("Content-Type")) != "multipart/form-data":
            self._discard = True   # answered with 415 (or as an empty form when there is no body at all)
            return
        connection = self.request.connection
        if connection is not None and hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(STREAMED_BODY_LIMIT)
        self._sink = self._new_sink()

    def _new_sink(self) -> MultipartSink:
        storage = self.api.service.storage
        return MultipartSink(self.request.headers.get("Content-Type", ""), lambda: storage.temp_dir("upload-"))

    def data_received(self, chunk: bytes) -> None:
        """A chunk of the request body."""
        self._received += len(chunk)
        if self._sink is not None:
            self._sink.feed(chunk)
        elif not self._discard:
            self._buffer += chunk

    def on_finish(self) -> None:
        """The answer is sent: remove the upload's temporary files (moved ones are in the storage already)."""
        self._close_body()

    def _close_body(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _api_path(self) -> str:
        return self.request.path[len(self.prefix):] if self.prefix else self.request.path

    def compute_etag(self) -> str | None:
        """No ETag: hashing every body costs time, and no client sends If-None-Match."""
        return None

    def check_xsrf_cookie(self) -> None:
        """No XSRF check: Basic-authenticated API clients are exempt, as in Kestra."""

    def on_connection_close(self) -> None:
        """The client left: event streams stop (and unsubscribe), a partial upload is removed."""
        self._closed.set()
        self._close_body()

    def is_authorized(self) -> bool:
        """Whether the request may use authenticated routes (Basic auth or the bearer token; a host server may
        override it)."""
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
        if self._buffer:   # a gathered (small) body: where tornado code expects it
            self.request.body, self._buffer = bytes(self._buffer), bytearray()
        try:
            if self._refused is not None:
                self._error(self._refused)
                return
            if self._preflight:
                self.set_status(204)
                self._finish()
                return
            match = api.router.match(self.request.method or "GET", self._api_path())
            route = match.route if isinstance(match, Match) else None
            self._match = match if isinstance(match, Match) else None
            if (route is None or route.auth) and not self.is_authorized():
                self._unauthorized()
                return
            if not isinstance(match, Match):
                status = 405 if match == "method" else 404
                self._error(ApiError("Method Not Allowed" if status == 405 else "Not Found", status=status))
                return
            try:
                kwargs = self._arguments(match)
                operation = getattr(api.service, match.route.operation)
                if match.route.operation in ON_SERVER_LOOP:
                    result = operation(**kwargs)
                else:   # on the engine's loop: no render, step or store call holds up this one
                    result = await on_engine_loop(api.service.engine, lambda: operation(**kwargs))
                    if match.route.produces == "sse":
                        result = api.service.engine.iterate_on_loop(result)
            except Exception as exc:  # noqa: BLE001 - every error becomes a JsonError, never a traceback
                self._close_body()
                self._error(exc)
                return
            self._close_body()   # temporary upload files are gone before the client hears the answer
            await self._respond(match.route, result)
        finally:
            api.in_flight -= 1

    def _arguments(self, match: Match) -> dict[str, Any]:
        route, variables = match.route, dict(match.variables)
        tenant = variables.pop("tenant", TENANT)
        if tenant != TENANT:
            raise BadRequest(f"Bad Request: Tenant '{tenant}' does not exist: this server only serves the "
                             f"'{TENANT}' tenant")
        namespace = variables.get("namespace")
        if namespace is not None and self.request.method in ("POST", "PUT", "PATCH"):
            # nothing is written under a namespace Kestra would refuse (reading and deleting stay possible)
            problem = namespace_problem(namespace)
            if problem is not None:
                raise InvalidEntity([("namespace", f"Invalid namespace '{namespace}': {problem}")])
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
            if body is not None or route.body == JSON:   # (a JSON `null` or no body: the service says what's wanted)
                kwargs["form" if route.body == MULTIPART else "body"] = body
        return kwargs

    def _body(self, route: Route) -> Any:
        raw = self.request.body or b""
        content_type = self.request.headers.get("Content-Type")
        media = _media(content_type)
        if route.body == MULTIPART:
            # clients send no body (and no Content-Type) when there are no inputs
            if media is None and not self._received:
                return None
            if media != "multipart/form-data":
                raise _unsupported(content_type, route)
            if self._sink is None:   # (a host that gathered the body itself)
                self._sink = self._new_sink()
                self._sink.feed(raw)
            return self._sink.form()
        if media is None and raw:
            # a body must say what it is: a page's form or `no-cors` fetch cannot pass YAML or JSON as such
            raise _unsupported(content_type, route)
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
                value = json.loads(text)
            except RecursionError:
                value = None
            except ValueError as exc:
                raise ApiError(f"Invalid json: {exc}", status=422) from None
            else:
                if json_depth(value) <= MAX_JSON_DEPTH:
                    return value
            raise BadRequest(f"Invalid json: nested deeper than {MAX_JSON_DEPTH} levels")
        if route.body == TEXT:
            return text
        return None

    # ----------------------------------------------------------------------------------------- answers

    async def _respond(self, route: Route, result: Any) -> None:
        if isinstance(result, Redirect):
            self.redirect(self._file_url(result), status=302)
            return
        if route.produces == "sse":
            await self._stream(result)
            return
        if route.produces == "file":
            await self._send_file(result)
            return
        if isinstance(result, JsonChunks):
            await self._send_chunks(result)
            return
        self.set_status(route.status)
        if route.produces == "none":
            self._finish()
        elif route.produces == "text":
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            if route.operation == "download_logs":
                execution_id = self._match.variables.get("executionId", "logs")  # type: ignore[union-attr]
                self.set_header("Content-Disposition", _attachment(f"{execution_id}.log"))
            self._finish(result.encode("utf-8") if isinstance(result, str) else result)
        else:
            self.set_header("Content-Type", "application/json")
            self._finish((result if isinstance(result, JsonText) else dumps(result)).encode("utf-8"))

    def _unauthorized(self) -> None:
        self.set_status(401)
        self.set_header("WWW-Authenticate", CHALLENGE)
        self._finish()

    def _file_url(self, redirect: Redirect) -> str:
        """This request's URL (`…/executions/<id>/file[/metas]`) for the other execution and URI."""
        path = self.request.path
        head, sep, tail = path.rpartition("/file")
        base = head.rsplit("/", 1)[0]
        return f"{base}/{quote(redirect.execution_id, safe='')}{sep}{tail}?path={quote(redirect.uri, safe='')}"

    async def _send_file(self, stored: StoredFile) -> None:
        """Stream a stored file as an attachment, a chunk at a time (each written out before the next read)."""
        try:
            if stored.local is not None:
                try:
                    source = open(stored.local, "rb")
                except OSError:   # replaced or deleted since it was looked up
                    raise NotFoundError(f"File not found: {stored.filename}") from None
            else:
                source = self.api.service.storage.open(stored.uri)
        except Exception as exc:  # noqa: BLE001 - gone since it was looked up: a JsonError
            self._error(exc)
            return
        finally:
            if stored.remove is not None:   # (still readable through `source`: POSIX keeps it until closed)
                shutil.rmtree(stored.remove, ignore_errors=True)
        with source:
            self.set_status(200)
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", _attachment(stored.filename))
            self.set_header("Content-Length", str(stored.size))
            if self.request.method == "HEAD":
                self._finish()
                return
            remaining = stored.size
            while remaining > 0:
                chunk = source.read(min(FILE_CHUNK, remaining))
                if not chunk:   # the file shrank since its size was read: the answer cannot be completed
                    log.warning("kestra_nb: %s shrank while being sent", stored.uri)
                    self.request.connection.close()  # type: ignore[union-attr]
                    return
                remaining -= len(chunk)
                self.write(chunk)
                try:
                    await self.flush()
                except StreamClosedError:
                    return   # the client left
        self._finish()

    async def _send_chunks(self, result: JsonChunks) -> None:
        """Send JSON text a chunk at a time: each chunk read on a worker thread (never on an event loop) and
        written out before the next is read, for at most STREAM_SECONDS (a reader that slow holds a store
        snapshot open); an error before the first chunk is an error answer, one after it cuts the answer."""
        chunks = result.chunks
        deadline = time.monotonic() + STREAM_SECONDS
        try:
            try:
                chunk = await asyncio.to_thread(next, chunks, None)
            except Exception as exc:  # noqa: BLE001 - every error becomes a JsonError, never a traceback
                self._error(exc)
                return
            self.set_status(200)
            self.set_header("Content-Type", "application/json")
            while chunk is not None:
                self.write(chunk.encode("utf-8"))
                try:   # a client that stops reading must not hold the store snapshot open: the flush is timed too
                    await asyncio.wait_for(self.flush(), max(deadline - time.monotonic(), 0.001))
                except StreamClosedError:
                    return   # the client left
                except asyncio.TimeoutError:
                    log.warning("kestra_nb: %s took over %s s to read: cut", self.request.path, STREAM_SECONDS)
                    self.request.connection.close()  # type: ignore[union-attr]
                    return
                try:
                    chunk = await asyncio.to_thread(next, chunks, None)
                except Exception:  # noqa: BLE001 - the answer has started: it can only be cut
                    log.exception("kestra_nb: reading %s failed while it was sent", self.request.path)
                    self.request.connection.close()  # type: ignore[union-attr]
                    return
            self._finish()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

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
        if param.type == "integer":   # a Java Integer, as Kestra's page, size, revision…
            number = int(value)
            if not JAVA_INT_MIN <= number <= JAVA_INT_MAX:
                raise ValueError(value)
            return number
        if param.type == "duration":
            duration = parse_duration(value)
            if abs(duration) > MAX_DURATION:
                raise ValueError(value)
            return duration
        if param.type == "datetime":
            try:
                return parse_instant(value)
            except ValueError:
                return parse_instant(value + "Z")  # the legacy search format's zone is optional
    except (ValueError, OverflowError):
        raise BadRequest(f"Bad Request: Failed to convert argument [{param.name}] for value [{value}]") from None
    return value


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest


def _media(content_type: str | None) -> str | None:
    """The media type of a Content-Type header, lower case (None without one)."""
    return content_type.split(";", 1)[0].strip().lower() if content_type else None


def _attachment(filename: str) -> str:
    """A Content-Disposition for downloading `filename` (its UTF-8 form too when it is not plain ASCII)."""
    plain = re.sub(r'[\x00-\x1f\x7f"\\]', "_", filename)
    ascii_name = plain.encode("ascii", "replace").decode("ascii").replace("?", "_")
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != plain:
        header += f"; filename*=UTF-8''{quote(plain, safe='')}"
    return header


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


__all__ = ["Api", "ApiHandler", "NotFoundHandler", "api_handlers", "on_engine_loop"]
