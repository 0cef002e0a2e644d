"""HTTP tasks (spec §5.19): http.Request (the response body as text) and http.Download (the body to storage).

Both send one request with httpx's async client: `method`, `headers`, a `body` (with `contentType`,
application/json by default) or `formData` (urlencoded, or multipart with `contentType:
multipart/form-data`, where `kestra:///` values and `{name, content}` maps are uploaded as files), and
Kestra's `options` (timeouts, redirects, allowFailed, allowedResponseCodes, charset, basic/bearer auth).
A status of 400 or more fails the task unless allowed. Request keeps the body as text, never decoded
as JSON; Download streams it into the internal storage chunk by chunk, never holding it whole.
"""
from __future__ import annotations

import asyncio
import codecs
import contextlib
import shutil
from datetime import timedelta
from email.message import Message
from typing import Any, AsyncIterator, BinaryIO
from urllib.parse import unquote, urlsplit

from ..lazy import lazy_module

from ..errors import IllegalArgumentError, KestraNbError, TaskFailure
from ..model.execution import Level
from ..model.jsonfmt import parse_duration
from ..store.storage import SCHEME, InternalStorage, safe_filename
from .base import Prop, Task, TaskContext

httpx = lazy_module("httpx")  # imported on first use: every process loads the task registry, few send requests

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_READ_TIMEOUT = 300.0  # Kestra's readIdleTimeout default, PT5M
_DURATION_OPTIONS = ("connectTimeout", "readTimeout", "readIdleTimeout", "connectionPoolIdleTimeout")
_OPTIONS = frozenset({*_DURATION_OPTIONS, "followRedirects", "allowFailed", "allowedResponseCodes",
                      "defaultCharset", "auth", "basicAuthUser", "basicAuthPassword", "timeout", "ssl",
                      "maxContentLength"})
_WRITE_CHUNK = 1 << 16

_COMMON = (
    Prop("uri", "string", required=True), Prop("method", "string", default="GET"), Prop("headers", "map"),
    Prop("body", "string"), Prop("formData", "map"), Prop("contentType", "string"), Prop("options", "map"),
    Prop("allowFailed", "bool", deprecated=True), Prop("sslOptions", "map", deprecated=True),
)


class _Options:
    """Kestra's HttpConfiguration, rendered and checked."""

    __slots__ = (
        "allow_failed",
        "allowed_codes",
        "auth",
        "charset",
        "connect",
        "follow",
        "max_length",
        "read",
        "verify",
    )

    def __init__(self) -> None:
        self.connect = DEFAULT_CONNECT_TIMEOUT
        self.read = DEFAULT_READ_TIMEOUT
        self.follow = True
        self.allow_failed = False
        self.allowed_codes: list[int] | None = None
        self.charset = "UTF-8"
        self.auth: Any = None
        self.verify = True
        self.max_length: int | None = None


def _bool(value: Any, prop: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TaskFailure(f"Invalid `{prop}` `{value}`: expected true or false")


def _seconds(value: Any, prop: str) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        seconds = parse_duration(str(value)).total_seconds()
    except ValueError:
        raise TaskFailure(f"Invalid `{prop}` `{value}`: expected an ISO-8601 duration such as PT30S") from None
    if seconds <= 0:
        raise TaskFailure(f"Invalid `{prop}` `{value}`: expected a positive duration")
    return seconds


def _options(ctx: TaskContext, task: Task) -> _Options:
    opts = _Options()
    raw = task.prop("options")
    rendered = ctx.render(raw, "options") if raw is not None else {}
    if not isinstance(rendered, dict):
        raise TaskFailure(f"Invalid `options`: expected a map, got: {rendered}")
    unknown = sorted(str(k) for k in set(rendered) - _OPTIONS)
    if unknown:
        raise TaskFailure(f"Invalid `options`: unsupported option(s) {', '.join(unknown)}; supported: "
                          f"{', '.join(sorted(_OPTIONS))}")
    timeout = rendered.get("timeout")
    if timeout is not None:  # Kestra's older nested form {connectTimeout, readIdleTimeout}
        if not isinstance(timeout, dict) or set(timeout) - {"connectTimeout", "readIdleTimeout"}:
            raise TaskFailure("Invalid `options.timeout`: expected a map of connectTimeout and readIdleTimeout")
        rendered = {**{k: v for k, v in timeout.items() if v is not None}, **rendered}
    if rendered.get("connectTimeout") is not None:
        opts.connect = _seconds(rendered["connectTimeout"], "options.connectTimeout")
    for key in ("readIdleTimeout", "readTimeout"):  # readTimeout wins when both are given
        if rendered.get(key) is not None:
            opts.read = _seconds(rendered[key], f"options.{key}")
    idle = rendered.get("connectionPoolIdleTimeout")
    if idle is not None and str(idle).strip().upper() != "PT0S":  # one request per client: only checked
        _seconds(idle, "options.connectionPoolIdleTimeout")
    if rendered.get("followRedirects") is not None:
        opts.follow = _bool(rendered["followRedirects"], "options.followRedirects")
    if rendered.get("allowFailed") is not None:
        opts.allow_failed = _bool(rendered["allowFailed"], "options.allowFailed")
    if task.prop("allowFailed") is not None:  # deprecated top-level form
        opts.allow_failed = opts.allow_failed or _bool(ctx.render(task.prop("allowFailed"), "allowFailed"),
                                                       "allowFailed")
    codes = rendered.get("allowedResponseCodes")
    if codes is not None:
        if not isinstance(codes, list) or not all(_is_int(c) for c in codes):
            raise TaskFailure(f"Invalid `options.allowedResponseCodes` `{codes}`: expected a list of status codes")
        opts.allowed_codes = [int(c) for c in codes]
    if rendered.get("defaultCharset") is not None:
        charset = str(rendered["defaultCharset"])
        try:
            codecs.lookup(charset)
        except LookupError:
            raise TaskFailure(f"Invalid `options.defaultCharset` `{charset}`: unknown charset") from None
        opts.charset = charset
    if rendered.get("maxContentLength") is not None:
        if not _is_int(rendered["maxContentLength"]) or int(rendered["maxContentLength"]) < 0:
            raise TaskFailure(f"Invalid `options.maxContentLength` `{rendered['maxContentLength']}`: "
                              "expected a number of bytes")
        opts.max_length = int(rendered["maxContentLength"])
    opts.auth = _auth(rendered)
    ssl = rendered.get("ssl")
    legacy_ssl = task.prop("sslOptions")
    for prop, value in (("options.ssl", ssl),
                        ("sslOptions", ctx.render(legacy_ssl, "sslOptions") if legacy_ssl is not None else None)):
        if value is None:
            continue
        if not isinstance(value, dict) or set(value) - {"insecureTrustAllCertificates"}:
            raise TaskFailure(f"Invalid `{prop}`: only `insecureTrustAllCertificates` is supported")
        if value.get("insecureTrustAllCertificates") is not None and \
                _bool(value["insecureTrustAllCertificates"], f"{prop}.insecureTrustAllCertificates"):
            opts.verify = False
    return opts


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def _auth(options: dict[str, Any]) -> Any:
    auth = options.get("auth")
    if auth is None:
        user = options.get("basicAuthUser")
        if user is None:
            return None
        return httpx.BasicAuth(str(user), str(options.get("basicAuthPassword") or ""))
    if not isinstance(auth, dict):
        raise TaskFailure("Invalid `options.auth`: expected a map such as {type: BASIC, username, password}")
    kind = str(auth.get("type") or "").upper()
    if kind == "BASIC":
        if auth.get("username") is None:
            raise TaskFailure("Invalid `options.auth`: BASIC authentication needs a `username`")
        return httpx.BasicAuth(str(auth["username"]), str(auth.get("password") or ""))
    if kind == "BEARER":
        if not auth.get("token"):
            raise TaskFailure("Invalid `options.auth`: BEARER authentication needs a `token`")
        header = f"Bearer {auth['token']}"

        def bearer(request: httpx.Request) -> httpx.Request:  # httpx takes a callable as `auth`
            request.headers["Authorization"] = header
            return request

        return bearer
    raise TaskFailure(f"Invalid `options.auth`: expected {{type: BASIC, username, password}} or "
                      f"{{type: BEARER, token}}, got type `{auth.get('type')}`")


class _Prepared:
    """A rendered request, with the files it opened for a multipart upload."""

    def __init__(self) -> None:
        self.method = "GET"
        self.url = ""
        self.headers: list[tuple[str, str]] = []
        self.kwargs: dict[str, Any] = {}
        self.opened: list[BinaryIO] = []

    def close(self) -> None:
        for f in self.opened:
            f.close()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _prepare(ctx: TaskContext, task: Task) -> _Prepared:
    p = _Prepared()
    url = ctx.render_string(task.prop("uri"), "uri").strip()
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise TaskFailure(f"Invalid `uri` `{url}`: expected an http:// or https:// URL")
    p.url = url
    method = ctx.render_string(task.prop("method"), "method").strip().upper()
    if method not in METHODS:
        raise TaskFailure(f"Invalid `method` `{method}`: expected one of {', '.join(METHODS)}")
    p.method = method
    raw_headers = task.prop("headers")
    if raw_headers is not None:
        headers = ctx.render(raw_headers, "headers")
        if not isinstance(headers, dict):
            raise TaskFailure(f"Invalid `headers`: expected a map of header names to values, got: {headers}")
        for name, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                p.headers.append((str(name), _text(item)))
    content_type = ctx.render_string(task.prop("contentType"), "contentType").strip() \
        if task.prop("contentType") is not None else None
    body, form = task.prop("body"), task.prop("formData")
    if body is not None and form is not None:
        raise TaskFailure("Invalid request: set either `body` or `formData`, not both")
    if body is not None:
        p.kwargs["content"] = ctx.render_string(body, "body").encode("utf-8")
        _set_header(p, "Content-Type", content_type or "application/json")
    elif form is not None:
        data = ctx.render(form, "formData")
        if not isinstance(data, dict):
            raise TaskFailure(f"Invalid `formData`: expected a map, got: {data}")
        if content_type is not None and content_type.split(";")[0].strip().lower() == "multipart/form-data":
            _multipart(ctx, p, data)
        else:
            p.kwargs["data"] = {str(k): ([_text(i) for i in v] if isinstance(v, list) else _text(v))
                                for k, v in data.items()}
            if content_type is not None:
                _set_header(p, "Content-Type", content_type)
    elif content_type is not None:
        _set_header(p, "Content-Type", content_type)
    return p


def _set_header(p: _Prepared, name: str, value: str) -> None:
    if not any(n.lower() == name.lower() for n, _ in p.headers):
        p.headers.append((name, value))


def _multipart(ctx: TaskContext, p: _Prepared, data: dict[str, Any]) -> None:
    storage: InternalStorage = ctx.storage  # type: ignore[attr-defined]
    parts: list[tuple[str, tuple[str | None, Any]]] = []  # fields are parts without a file name

    def upload(key: str, uri: str, name: str | None) -> None:
        uri = uri.strip()
        try:
            if not storage.exists(uri):
                raise TaskFailure(f"Invalid `formData.{key}`: file not found: {uri}")
            f = storage.open(uri)
        except TaskFailure:
            raise
        except KestraNbError as exc:  # IllegalArgumentError: not a URI inside the storage
            raise TaskFailure(f"Invalid `formData.{key}`: {exc.message}") from None
        p.opened.append(f)
        parts.append((key, (name or safe_filename(unquote(urlsplit(uri).path)) or key, f)))

    try:
        for key, value in data.items():
            key = str(key)
            if isinstance(value, str) and value.startswith(SCHEME):
                upload(key, value, None)
            elif isinstance(value, dict) and "content" in value:
                content = value.get("content")
                if not isinstance(content, str) or not content.startswith(SCHEME):
                    raise TaskFailure(f"Invalid `formData.{key}.content`: expected a kestra:/// URI")
                upload(key, content, safe_filename(str(value["name"])) if value.get("name") else None)
            else:
                for item in value if isinstance(value, list) else [value]:
                    parts.append((key, (None, _text(item).encode("utf-8"))))
    except BaseException:
        p.close()
        raise
    p.kwargs["files"] = parts


def _client(opts: _Options) -> httpx.AsyncClient:
    timeout = httpx.Timeout(connect=opts.connect, read=opts.read, write=opts.read, pool=opts.connect)
    return httpx.AsyncClient(timeout=timeout, follow_redirects=opts.follow, auth=opts.auth, verify=opts.verify,
                             trust_env=False)


def _build(client: httpx.AsyncClient, p: _Prepared) -> httpx.Request:
    try:
        return client.build_request(p.method, p.url, headers=p.headers, **p.kwargs)
    except httpx.InvalidURL as exc:
        raise TaskFailure(f"Invalid `uri` `{p.url}`: {exc}") from None
    except (TypeError, ValueError) as exc:  # e.g. a header value with a line break
        raise TaskFailure(f"Invalid request to {p.url}: {exc}") from None


@contextlib.asynccontextmanager
async def _exchange(opts: _Options, p: _Prepared) -> AsyncIterator[tuple[httpx.Request, httpx.Response]]:
    """Send the request and yield it with its streamed response; transport errors, also while the body is
    read, become task failures; the response is closed on the way out."""
    async with _client(opts) as client:
        request = _build(client, p)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, p) from None
        try:
            yield request, response
        except httpx.HTTPError as exc:
            raise _transport_error(exc, p) from None
        finally:
            await response.aclose()


async def _body(response: httpx.Response, opts: _Options, p: _Prepared, raw: bool = False) -> AsyncIterator[bytes]:
    """The response body chunk by chunk (as sent when `raw`), failing once it exceeds options.maxContentLength."""
    size = 0
    async for chunk in response.aiter_raw() if raw else response.aiter_bytes():
        size += len(chunk)
        if opts.max_length is not None and size > opts.max_length:
            raise TaskFailure(f"Response from {p.url} is bigger than "
                              f"options.maxContentLength ({opts.max_length} bytes)")
        yield chunk


def _response_headers(response: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():  # names in lower case, as HTTP/2 and Kestra 1.x
        out.setdefault(name, []).append(value)
    return out


def _check_status(response: httpx.Response, opts: _Options) -> None:
    code = response.status_code
    if opts.allowed_codes is not None:
        if code in opts.allowed_codes:
            return
        raise TaskFailure(f"Failed http request with response code '{code}' "
                          f"(allowed: {', '.join(str(c) for c in opts.allowed_codes)})")
    if code >= 400 and not opts.allow_failed:
        raise TaskFailure(f"Failed http request with response code '{code}'")


def _transport_error(exc: httpx.HTTPError, p: _Prepared) -> TaskFailure:
    if isinstance(exc, httpx.ConnectTimeout):
        return TaskFailure(f"Unable to connect to `{p.url}`: connection timed out (options.connectTimeout)")
    if isinstance(exc, httpx.TimeoutException):
        return TaskFailure(f"Request {p.method} {p.url} timed out waiting for the server (options.readTimeout)")
    if isinstance(exc, httpx.ConnectError):
        return TaskFailure(f"Unable to connect to `{p.url}`: {exc or 'connection refused'}")
    if isinstance(exc, httpx.TooManyRedirects):
        return TaskFailure(f"Request {p.method} {p.url} failed: too many redirects")
    return TaskFailure(f"Request {p.method} {p.url} failed: {type(exc).__name__}: {exc}")


def _charset(response: httpx.Response, default: str) -> str:
    content_type = response.headers.get("content-type")
    if content_type:
        msg = Message()
        msg["content-type"] = content_type
        charset = msg.get_param("charset")
        if isinstance(charset, str) and charset:
            try:
                codecs.lookup(charset)
                return charset
            except LookupError:
                pass
    return default


class Request(Task):
    """Send an HTTP request → `uri`, `code`, `headers` (name → list of values), `body` (the text)."""

    type = "io.kestra.plugin.core.http.Request"
    props = _COMMON

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        opts = _options(ctx, self)
        p = _prepare(ctx, self)
        try:
            async with _exchange(opts, p) as (request, response):
                content = b"".join([chunk async for chunk in _body(response, opts, p)])
        finally:
            p.close()
        ctx.log(Level.DEBUG, f"Request {p.method} {p.url} answered {response.status_code}")
        _check_status(response, opts)
        out: dict[str, Any] = {"uri": str(request.url), "code": response.status_code,
                               "headers": _response_headers(response)}
        if content:
            charset = _charset(response, opts.charset)
            try:
                out["body"] = content.decode(charset)
            except UnicodeDecodeError:
                raise TaskFailure(f"Illegal unicode in the response body of {p.url} (charset {charset}); use "
                                  "io.kestra.plugin.core.http.Download to fetch binary content") from None
        return out


def download_filename(disposition: str | None, url: str) -> str:
    """The name of a downloaded file: Content-Disposition's (RFC 6266/5987), the URL's last segment, or `download`."""
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename()
        if name:
            safe = safe_filename(name)
            if safe:
                return safe
    return safe_filename(unquote(urlsplit(url).path)) or "download"


class Download(Task):
    """Download a URL into the internal storage (streamed) → `uri`, `code`, `headers`, `length`."""

    type = "io.kestra.plugin.core.http.Download"
    props = (*_COMMON, Prop("failOnEmptyResponse", "bool", default=True), Prop("saveAs", "string"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        opts = _options(ctx, self)
        p = _prepare(ctx, self)
        fail_on_empty = _bool(ctx.render(self.prop("failOnEmptyResponse"), "failOnEmptyResponse"),
                              "failOnEmptyResponse") if self.prop("failOnEmptyResponse") is not None else True
        save_as = None
        if self.prop("saveAs") is not None:
            save_as = safe_filename(ctx.render_string(self.prop("saveAs"), "saveAs"))
            if not save_as:
                raise TaskFailure("Invalid `saveAs`: expected a file name")
        tmp = ctx.working_dir()  # type: ignore[attr-defined]
        try:
            async with _exchange(opts, p) as (request, response):
                _check_status(response, opts)
                name = save_as or download_filename(response.headers.get("content-disposition"), str(response.url))
                local = tmp / name
                length = 0
                out = await asyncio.to_thread(open, local, "wb")
                try:
                    pending: list[bytes] = []
                    pending_size = 0
                    async for chunk in _body(response, opts, p, raw=_identity(response)):
                        length += len(chunk)
                        pending.append(chunk)
                        pending_size += len(chunk)
                        if pending_size >= _WRITE_CHUNK:
                            await asyncio.to_thread(out.writelines, pending)
                            pending, pending_size = [], 0
                    if pending:
                        await asyncio.to_thread(out.writelines, pending)
                finally:
                    await asyncio.to_thread(out.close)
            if length == 0 and fail_on_empty:
                raise TaskFailure(f"No response from server: {p.url} returned an empty body "
                                  "(set `failOnEmptyResponse: false` to accept it)")
            storage: InternalStorage = ctx.storage  # type: ignore[attr-defined]
            tr = ctx.task_run
            uri = storage.task_uri(tr.namespace, tr.flow_id, tr.execution_id, tr.task_id, tr.id, name)
            try:
                await asyncio.to_thread(storage.move_in, uri, local)
            except IllegalArgumentError as exc:
                raise TaskFailure(exc.message) from None
        finally:
            p.close()
            await asyncio.to_thread(shutil.rmtree, tmp, True)
        ctx.log(Level.DEBUG, f"Downloaded {length} bytes from {p.url} to {uri}")
        return {"uri": uri, "code": response.status_code, "headers": _response_headers(response), "length": length}


def _identity(response: httpx.Response) -> bool:
    """Whether the body is sent as is (no Content-Encoding to undo)."""
    return response.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")



__all__ = ["METHODS", "Download", "Request", "download_filename"]
