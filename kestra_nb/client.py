"""An HTTP client for a kestra_nb server or a real Kestra 1.x: deploy flows, run them, watch and control them.

    from kestra_nb.client import KestraClient
    with KestraClient("http://localhost:8080", username="admin@kestra.io", password="Admin1234") as kestra:
        kestra.deploy(open("myflow.yml").read())
        ex = kestra.execute("company.team", "myflow", inputs={"name": "Wörld"})        # wait=true
        ex = kestra.execute("company.team", "myflow", on_update=lambda doc: print(doc["state"]["current"]))

Paths are Kestra's tenant paths (`/api/v1/main/…`; `tenant=None` uses the tenant-less ones), auth is HTTP
Basic or a bearer token (`from_env`: KESTRA_API_TOKEN, else KESTRA_NB_BASIC_AUTH). `deploy_flows` sends many
flows in one request (Kestra's namespace and bulk updates; kestra_nb.deploy gathers a folder of them) and
`upload_namespace_file` a namespace file. `follow` reads the server-sent events of an execution within
`follow_limits`, reopens a dropped stream once, then polls. Inputs go as multipart/form-data like Kestra's
own clients send them: a FILE input given as a local path (`pathlib.Path`) or an open binary file is sent as
a file part, streamed from disk. `download_file` fetches a `kestra:///` file of an execution (an input, a task's output). Errors
become `KestraNbError` subclasses: 404 NotFoundError, 409 IllegalStateError, 422 FlowValidationError /
InputValidationError / IllegalArgumentError, 400 and 415 IllegalArgumentError, 401/403
AuthenticationError, anything else KestraApiError; each carries `.status` and `.body`.
"""
from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

import httpx

from .errors import (
    ExecutionTimeoutError,
    FlowValidationError,
    IllegalArgumentError,
    IllegalStateError,
    InputValidationError,
    KestraNbError,
    NotFoundError,
    Violation,
)
from .model.state import TERMINATED as _TERMINATED

TERMINATED = frozenset(state.value for state in _TERMINATED)
TOKEN_ENV = "KESTRA_API_TOKEN"            # what Kestra's own clients read their bearer token from
BASIC_AUTH_ENV = "KESTRA_NB_BASIC_AUTH"   # user:password
MAX_LISTED = 10_000                       # namespace files a remote listing walks at most
Update = Callable[[dict[str, Any]], None]


class KestraApiError(KestraNbError):
    """The server answered with an error this client has no better class for."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthenticationError(KestraApiError):
    """401/403: credentials missing or wrong."""


class ServerUnreachableError(KestraApiError):
    """The server could not be reached (connection refused, DNS, timeout)."""


def _violations(body: Any, message: str) -> list[Violation]:
    errors = ((body or {}).get("_embedded") or {}).get("errors") if isinstance(body, dict) else None
    if errors:
        return [Violation(str(e.get("path") or ""), str(e.get("message") or ""), e.get("line"), e.get("column"))
                for e in errors if isinstance(e, dict)]
    return [Violation("", message)]


def _strip(message: str, prefix: str) -> str:
    return message.removeprefix(prefix)


class RemoteNamespaceFiles:
    """A server's namespace files through its API, with the methods of the local store's (`upload_local`,
    `sizes`, `delete`) that `%flow files` and `kestra-nb namespace files` use with `--server`."""

    def __init__(self, client: KestraClient) -> None:
        self.client = client

    def upload_local(self, namespace: str, sources: list[Any], to: str = "/") -> list[tuple[Path, str, None]]:
        """Upload local files and folders (their tree) under `to`; every path is checked before the first
        upload. The server keeps the revisions: none is returned."""
        from .store.nsfiles import upload_plan

        plan = upload_plan(sources, to)
        for local, path in plan:
            self.client.upload_namespace_file(namespace, path, local)
        return [(local, path, None) for local, path in plan]

    def sizes(self, namespace: str, folder: str = "/") -> list[tuple[str, int]]:
        """Every file under `folder` with its size (the folders walked one request each, MAX_LISTED at most)."""
        out: list[tuple[str, int]] = []
        pending = [folder.rstrip("/") or "/"]
        while pending:
            current = pending.pop()
            try:
                entries = self.client.namespace_directory(namespace, current)
            except NotFoundError:
                continue
            for entry in sorted(entries, key=lambda e: str(e.get("fileName")), reverse=True):
                path = f"{current.rstrip('/')}/{entry.get('fileName')}"
                if entry.get("type") == "Directory":
                    pending.append(path)
                else:
                    out.append((path, int(entry.get("size") or 0)))
                if len(out) + len(pending) > MAX_LISTED:
                    raise IllegalArgumentError(f"More than {MAX_LISTED} namespace files under {folder}")
        return sorted(out)

    def delete(self, namespace: str, path: str) -> bool:
        """Delete a file or folder; False if there is none."""
        try:
            self.client.delete_namespace_file(namespace, path)
        except NotFoundError:
            return False
        return True


class KestraClient:
    """A synchronous client (httpx); use it as a context manager or call `close()`."""

    def __init__(self, url: str = "http://localhost:8080", *, tenant: str | None = "main",
                 username: str | None = None, password: str | None = None, token: str | None = None,
                 timeout: float | None = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        if token is not None and (not token or any(c.isspace() or not c.isprintable() for c in token)):
            raise IllegalArgumentError("The API token must be one word of printable characters (no spaces or "
                                       "line breaks): check --token or KESTRA_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username and not token else None
        self.url = url.rstrip("/")
        self.tenant = tenant
        self.timeout = timeout
        self.follow_limits = FollowLimits()
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout,
                                  transport=transport)

    @classmethod
    def from_env(cls, url: str, tenant: str | None = "main", *, basic_auth: str | None = None,
                 token: str | None = None, **kwargs: Any) -> KestraClient:
        """A client with the credentials given (`token`, or `basic_auth` as `user:password`), else those of the
        environment: KESTRA_API_TOKEN (a bearer token, as Kestra's own clients read it), else
        KESTRA_NB_BASIC_AUTH (`user:password`)."""
        if not token and not basic_auth and "username" not in kwargs:
            token = os.environ.get(TOKEN_ENV) or None
            basic_auth = None if token else os.environ.get(BASIC_AUTH_ENV) or None
        if basic_auth and not token:
            user, sep, password = basic_auth.partition(":")
            if not sep or not user:
                raise IllegalArgumentError("Basic auth must be given as USER:PASSWORD (--basic-auth or "
                                           f"{BASIC_AUTH_ENV})")
            kwargs.update(username=user, password=password)
        return cls(url, tenant=tenant, token=token, **kwargs)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> KestraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ transport

    def _path(self, *segments: str) -> str:
        parts = ["/api/v1"] + ([quote(self.tenant, safe="")] if self.tenant else [])
        return "/".join(parts + [quote(str(s), safe="") for s in segments])

    def _request(self, method: str, path: str, *, invalid: type[KestraNbError] = IllegalArgumentError,
                 **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnreachableError(f"{method} {self.url}{path}: timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"{method} {self.url}{path}: cannot reach the server ({exc})") from None
        if response.status_code >= 400:
            raise self._error(response, invalid)
        return response

    @staticmethod
    def _error(response: httpx.Response, invalid: type[KestraNbError]) -> KestraNbError:
        status, text = response.status_code, response.text
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), str) \
            else (text.strip() or response.reason_phrase or f"HTTP {status}")
        error: KestraNbError
        if status in (401, 403):
            error = AuthenticationError(f"Authentication failed ({status}): check the username and password",
                                        status, text)
        elif status == 404:
            error = NotFoundError(_strip(message, "Not Found: "))
        elif status == 409:
            error = IllegalStateError(_strip(message, "Illegal state: "))
        elif status == 422 and message.startswith("Illegal argument: "):
            error = IllegalArgumentError(_strip(message, "Illegal argument: "))
        elif status == 422 and invalid is FlowValidationError:
            error = FlowValidationError(_violations(body, _strip(message, "Invalid entity: ")))
        elif status == 422 and invalid is InputValidationError:
            error = InputValidationError(_strip(message, "Invalid entity: ").split("\n"))
        elif status in (400, 415, 422):
            error = IllegalArgumentError(message)
        else:
            error = KestraApiError(f"HTTP {status}: {message}", status, text)
        error.status = status    # type: ignore[attr-defined]
        error.body = text        # type: ignore[attr-defined]
        return error

    @staticmethod
    def _multipart(inputs: Mapping[str, Any] | None, files: ExitStack) -> list[tuple[str, Any]] | None:
        """Inputs as Kestra's clients send them: text parts, JSON for other values, file parts for files.

        A local path (`os.PathLike`) is opened on `files` (closed after the request) and, like an open binary
        file, streamed by httpx a chunk at a time, never read whole."""
        if not inputs:
            return None
        parts: list[tuple[str, Any]] = []
        for name, value in inputs.items():
            if isinstance(value, (bytes, bytearray)):
                parts.append((name, (name, bytes(value))))
            elif isinstance(value, os.PathLike):
                path = Path(value)
                try:
                    stream = files.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the ExitStack
                except OSError as exc:
                    raise IllegalArgumentError(f"Cannot read the file of input `{name}`: {exc}") from None
                parts.append((name, (path.name, stream)))
            elif hasattr(value, "read"):
                if isinstance(value, io.TextIOBase):
                    raise IllegalArgumentError(f"The file of input `{name}` must be opened in binary mode")
                filename = Path(str(getattr(value, "name", "") or name)).name
                parts.append((name, (filename, value)))
            elif isinstance(value, tuple):
                parts.append((name, value))
            elif isinstance(value, str):
                parts.append((name, (None, value)))
            else:
                parts.append((name, (None, json.dumps(value))))
        return parts

    # ---------------------------------------------------------------------------------------------- flows

    def deploy(self, source: str) -> dict[str, Any]:
        """Create the flow, or update it when it exists (an identical source keeps the revision)."""
        headers = {"Content-Type": "application/x-yaml"}
        data = source.encode("utf-8")
        try:
            return self._request("POST", self._path("flows"), content=data, headers=headers,
                                 invalid=FlowValidationError).json()
        except (FlowValidationError, IllegalStateError) as exc:
            if "already exists" not in str(exc) and getattr(exc, "status", None) != 409:
                raise
        namespace, flow_id = _flow_key(source)
        return self._request("PUT", self._path("flows", namespace, flow_id), content=data, headers=headers,
                             invalid=FlowValidationError).json()

    def deploy_flows(self, body: str, *, namespace: str | None = None, delete: bool = False) -> list[dict[str, Any]]:
        """Create or update the flows of a multi-document YAML text in one request, as Kestra's CLI does:
        `flows/{namespace}` (all of that namespace) or `flows/bulk`; with `delete`, the server deletes the
        flows the text does not hold (of the namespace, or of the whole tenant without one)."""
        path = self._path("flows", namespace) if namespace is not None else self._path("flows", "bulk")
        return self._request("POST", path, params={"delete": str(delete).lower()}, content=body.encode("utf-8"),
                             headers={"Content-Type": "application/x-yaml"}, invalid=FlowValidationError).json()

    def validate_flows(self, body: str) -> list[dict[str, Any]]:
        """Kestra's check of a multi-document YAML text: one result per document (`index`, `constraints`)."""
        return self._request("POST", self._path("flows", "validate"), content=body.encode("utf-8"),
                             headers={"Content-Type": "application/x-yaml"}).json()

    def upload_namespace_file(self, namespace: str, path: str, local: str | os.PathLike[str]) -> None:
        """Store a local file as the namespace file `path` (`/scripts/etl.py`), streamed from disk (Kestra's
        `namespaces/{namespace}/files?path=`, multipart part `fileContent`). Kestra unpacks a `.zip` there."""
        local = Path(local)
        with ExitStack() as files:
            try:
                stream = files.enter_context(open(local, "rb"))  # noqa: SIM115 - closed by the ExitStack
            except OSError as exc:
                raise IllegalArgumentError(f"Cannot read {local}: {exc.strerror or exc}") from None
            self._request("POST", self._path("namespaces", namespace, "files"), params={"path": path},
                          files=[("fileContent", (local.name, stream))])

    def namespace_directory(self, namespace: str, folder: str = "/") -> list[dict[str, Any]]:
        """What a namespace folder holds: Kestra's FileAttributes (`fileName`, `type` File/Directory, `size`…)."""
        return self._request("GET", self._path("namespaces", namespace, "files", "directory"),
                             params={"path": folder}).json()

    def delete_namespace_file(self, namespace: str, path: str) -> None:
        """Delete a namespace file or folder (NotFoundError if there is none)."""
        self._request("DELETE", self._path("namespaces", namespace, "files"), params={"path": path})

    def flow(self, namespace: str, flow_id: str, *, source: bool = True) -> dict[str, Any]:
        """A flow's JSON (with its YAML `source`)."""
        return self._request("GET", self._path("flows", namespace, flow_id),
                             params={"source": str(source).lower()}).json()

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Delete a flow (Kestra keeps its revisions)."""
        self._request("DELETE", self._path("flows", namespace, flow_id))

    # ----------------------------------------------------------------------------------------- executions

    def execute(self, namespace: str, flow_id: str, inputs: Mapping[str, Any] | None = None,
                labels: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None, *, wait: bool = True,
                on_update: Update | None = None, timeout: float | None = None,
                revision: int | None = None) -> dict[str, Any]:
        """Run a flow: wait for the end (`wait=true`), or follow it with `on_update(doc)` per update.

        With `timeout` (seconds) the execution is followed until then, then killed (ExecutionTimeoutError).
        """
        pairs = labels.items() if isinstance(labels, Mapping) else (labels or ())
        params: list[tuple[str, str]] = [("labels", f"{k}:{v}") for k, v in pairs]
        if revision is not None:
            params.append(("revision", str(revision)))
        follow = on_update is not None or timeout is not None
        if wait and not follow:
            params.append(("wait", "true"))
        with ExitStack() as files:
            response = self._request("POST", self._path("executions", namespace, flow_id), params=params,
                                     files=self._multipart(inputs, files), invalid=InputValidationError,
                                     timeout=None if wait and not follow else self.timeout)
        execution = response.json()
        if not follow:
            return execution
        deadline = None if timeout is None else time.monotonic() + timeout
        final = self.follow(execution["id"], on_update, deadline=deadline)
        if final is None:  # the time is up
            try:
                self.kill(execution["id"])
            except IllegalStateError:
                pass  # it ended meanwhile
            raise ExecutionTimeoutError(
                f"Execution {execution['id']} did not end within {timeout}s; it was killed",
                _execution(self.get(execution["id"]))) from None
        return final

    def follow(self, execution_id: str, on_update: Update | None = None, *,
               deadline: float | None = None) -> dict[str, Any] | None:
        """Follow an execution until its end, `on_update(doc)` per new document; the final document (None at
        the deadline). Over server-sent events (Kestra's `follow`), within `follow_limits`: a stream that
        drops, goes silent or runs over its budget is opened once more, then the execution is polled."""
        last: dict[str, Any] | None = None
        with closing(self._updates(execution_id, deadline)) as updates:   # (closing ends an open stream)
            for doc, end in updates:
                if doc is None:
                    return None   # the deadline
                if doc != last:   # (a new stream starts with the document the last one ended on; polls repeat)
                    last = doc
                    if on_update is not None:
                        on_update(doc)
                if end:
                    return doc
        return last   # (not reached: the updates go on until the end or the deadline)

    def _updates(self, execution_id: str, deadline: float | None) -> Iterator[tuple[dict[str, Any] | None, bool]]:
        """(document, whether it is the end) from the follow stream, the execution after it ends, one more
        stream and the execution again, then polls at a growing interval; (None, True) at the deadline. A
        stream's end is its `end` event (Kestra's: a terminated execution may still run its afterExecution
        tasks until then); a fetched execution's end is a terminated state."""
        limits = self.follow_limits
        path = self._path("executions", execution_id, "follow")
        budget = _StreamBudget()
        for _ in range(2):   # the stream, then one reconnection
            try:
                for event_id, doc in self._events(path, deadline, budget):
                    if event_id != "start" and isinstance(doc, dict) and "state" in doc:
                        yield doc, event_id == "end"
            except _StreamEnded:
                pass   # dropped, silent or over budget: told by what the execution is now
            if deadline is not None and time.monotonic() >= deadline:
                yield None, True
            yield _fetched(self.get(execution_id))
            if budget.exhausted:
                break   # a second stream would run over the same budget
        interval = limits.poll_min
        while True:
            pause = interval if deadline is None else min(interval, deadline - time.monotonic())
            if pause <= 0:
                yield None, True
            time.sleep(pause)
            interval = min(interval * 2, limits.poll_max)
            yield _fetched(self.get(execution_id))

    def _events(self, path: str, deadline: float | None, budget: _StreamBudget) -> Iterator[tuple[str, Any]]:
        """Server-sent events of a stream as (event id, parsed data), until the server closes it (_StreamEnded
        when it drops, says nothing for `follow_limits.idle` seconds, or runs over `budget`)."""
        limits = self.follow_limits
        read = limits.idle if deadline is None else max(min(limits.idle, deadline - time.monotonic()), 0.001)
        timeout = httpx.Timeout(self.timeout, read=read)
        try:
            with self._http.stream("GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(resp, IllegalArgumentError)
                for event_id, data in _sse(resp.iter_raw(), limits, budget):
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    try:
                        yield event_id, json.loads(data)
                    except ValueError:
                        pass  # not JSON: skipped, as Kestra's clients do
        except httpx.ReadTimeout:
            if deadline is not None and time.monotonic() >= deadline:
                return
            raise _StreamEnded("silent") from None
        except httpx.TimeoutException as exc:
            raise ServerUnreachableError(f"GET {self.url}{path}: timed out ({exc})") from None
        except httpx.ConnectError as exc:
            raise ServerUnreachableError(f"GET {self.url}{path}: cannot reach the server ({exc})") from None
        except httpx.TransportError:
            raise _StreamEnded("dropped") from None

    def get(self, execution_id: str) -> dict[str, Any]:
        """An execution's JSON."""
        return self._request("GET", self._path("executions", execution_id)).json()

    def search(self, *, namespace: str | None = None, flow_id: str | None = None,
               state: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
               page: int = 1, size: int = 10, sort: str | None = "state.startDate:desc") -> dict[str, Any]:
        """A page of executions (`{results, total}`), with Kestra 1.x filters."""
        params: list[tuple[str, str]] = [("page", str(page)), ("size", str(size))]
        if sort:
            params.append(("sort", sort))
        if namespace:
            params.append(("filters[namespace][EQUALS]", namespace))
        if flow_id:
            params.append(("filters[flowId][EQUALS]", flow_id))
        if state:
            params.append(("filters[state][IN]", ",".join(state)))
        for key, value in (labels or {}).items():
            params.append((f"filters[labels][EQUALS][{key}]", value))
        return self._request("GET", self._path("executions", "search"), params=params).json()

    def kill(self, execution_id: str) -> None:
        """Ask for the execution to be killed (Kestra 1.x route: 202)."""
        self._request("DELETE", self._path("executions", execution_id, "kill"))

    def resume(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> None:
        """Resume a paused execution; `inputs` are the Pause task's `onResume` inputs."""
        with ExitStack() as files:
            self._request("POST", self._path("executions", execution_id, "resume"),
                          files=self._multipart(inputs, files), invalid=InputValidationError)

    def restart(self, execution_id: str) -> dict[str, Any]:
        """Restart a failed, killed or paused execution; the execution as restarted."""
        return self._request("POST", self._path("executions", execution_id, "restart")).json()

    def pause(self, execution_id: str) -> None:
        """Pause a running execution by hand (Kestra 1.x route: 204)."""
        self._request("POST", self._path("executions", execution_id, "pause"))

    def file_size(self, execution_id: str, uri: str) -> int:
        """The size in bytes of a `kestra:///` file of the execution."""
        return int(self._request("GET", self._path("executions", execution_id, "file", "metas"),
                                 params={"path": uri}, follow_redirects=True).json()["size"])

    def download_file(self, execution_id: str, uri: str, dest: str | os.PathLike[str] | BinaryIO) -> Path | None:
        """Download a `kestra:///` file of the execution (an input, a task's output file), streamed to `dest`:
        a file path, an existing directory (the file keeps its name), or a binary file object. The path
        written, or None for a file object. A file of another execution of the same flow is followed to
        it (the server redirects)."""
        path = self._path("executions", execution_id, "file")
        try:
            with self._http.stream("GET", path, params={"path": uri}, follow_redirects=True) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response, IllegalArgumentError)
                if hasattr(dest, "write"):
                    for chunk in response.iter_bytes():
                        dest.write(chunk)  # type: ignore[union-attr]
                    return None
                target = Path(dest)  # type: ignore[arg-type]
                if target.is_dir():
                    name = unquote(uri.rstrip("/").rsplit("/", 1)[-1]).replace("\\", "/").rsplit("/", 1)[-1]
                    target = target / (name if name not in ("", ".", "..") else "file")
                partial = target.with_name(target.name + ".part")
                try:
                    with open(partial, "wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                    os.replace(partial, target)
                finally:
                    partial.unlink(missing_ok=True)
                return target
        except httpx.TimeoutException as exc:
            raise ServerUnreachableError(f"GET {self.url}{path}: timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"GET {self.url}{path}: cannot reach the server ({exc})") from None

    def logs(self, execution_id: str, *, min_level: str | None = None) -> list[dict[str, Any]]:
        """The execution's log entries."""
        params = {"minLevel": min_level} if min_level else None
        return self._request("GET", self._path("logs", execution_id), params=params).json()

    def logs_text(self, execution_id: str, *, min_level: str | None = None) -> str:
        """The execution's logs as text (Kestra's download)."""
        params = {"minLevel": min_level} if min_level else None
        return self._request("GET", self._path("logs", execution_id, "download"), params=params).text


class LogFollow:
    """An execution's log entries as the server streams them (Kestra's `logs/{id}/follow`, which never ends by
    itself), each passed to `on_log`: `start()` runs it on a thread of its own (or call `run()` on one),
    `stop()` ends it from any other. A stream that drops is opened once more (the entries it repeats are
    skipped); `seen` counts the entries passed."""

    def __init__(self, client: KestraClient, execution_id: str, on_log: Callable[[dict[str, Any]], None]) -> None:
        self.client = client
        self.execution_id = execution_id
        self.on_log = on_log
        self.seen = 0
        self._stopped = threading.Event()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LogFollow:
        """Run on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="kestra_nb-logs", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Stream until `stop()`, a second drop, the budget's end or an error answer (the logs then come
        from a fetch)."""
        client = self.client
        path = client._path("logs", self.execution_id, "follow")
        budget = _StreamBudget()
        for _ in range(2):
            count = 0
            try:   # no read timeout: stop() ends the wait
                with client._http.stream("GET", path, headers={"Accept": "text/event-stream"},
                                         timeout=httpx.Timeout(client.timeout, read=None)) as resp:
                    stream = resp.extensions.get("network_stream")
                    self._socket = stream.get_extra_info("socket") if stream is not None else None
                    if self._stopped.is_set() or resp.status_code >= 400:
                        return
                    for _, data in _sse(resp.iter_raw(), client.follow_limits, budget):
                        try:
                            entry = json.loads(data)
                        except ValueError:
                            continue
                        count += 1
                        if count > self.seen and isinstance(entry, dict):
                            self.seen += 1
                            self.on_log(entry)
            except (_StreamEnded, httpx.TransportError):
                pass
            if self._stopped.is_set() or budget.exhausted:
                return

    def stop(self, wait: float = 5.0) -> int | None:
        """End the stream now (a blocked read is woken by shutting the connection's socket) and wait up to
        `wait` seconds for `start()`'s thread; how many entries were passed, None if it has not ended."""
        self._stopped.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass   # already closed
        if self._thread is not None:
            self._thread.join(wait)
            if self._thread.is_alive():
                return None
        return self.seen

    def finish(self, wait: float = 5.0) -> list[dict[str, Any]]:
        """Stop, then fetch the entries the stream did not bring (all of them if it has not ended)."""
        seen = self.stop(wait)
        return self.client.logs(self.execution_id)[seen or 0:]


@dataclass(frozen=True, slots=True)
class FollowLimits:
    """What following one execution over server-sent events may take before it falls back to polling."""

    max_events: int = 10_000                 # events of all the streams of one follow
    max_bytes: int = 256 * 1024 ** 2         # bytes read from them
    max_event_bytes: int = 32 * 1024 ** 2    # bytes of one event (an execution document)
    idle: float = 120.0                      # seconds a stream may say nothing (a task can be silent that long)
    poll_min: float = 0.25                   # seconds between polls, at first
    poll_max: float = 2.0                    # … growing to this


@dataclass(slots=True)
class _StreamBudget:
    events: int = 0
    bytes: int = 0
    exhausted: bool = False


class _StreamEnded(Exception):
    """A follow stream stopped before the execution's end: dropped, silent, or over its budget."""


def _state(doc: Mapping[str, Any]) -> str | None:
    state = doc.get("state")
    return state.get("current") if isinstance(state, Mapping) else None


def _fetched(doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    return doc, _state(doc) in TERMINATED


def _sse(chunks: Iterator[bytes], limits: FollowLimits, budget: _StreamBudget) -> Iterator[tuple[str, str]]:
    """(id, data) of each event of an `text/event-stream` body, read within `limits` (bytes, events, size of
    one event): past one, `budget.exhausted` is set and _StreamEnded raised."""
    buffer = bytearray()
    event_id, data, size = "", [], 0
    for chunk in chunks:
        budget.bytes += len(chunk)
        if budget.bytes > limits.max_bytes:
            budget.exhausted = True
            raise _StreamEnded("bytes")
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) + size > limits.max_event_bytes:
                    budget.exhausted = True
                    raise _StreamEnded("event size")
                break
            line = bytes(buffer[:end]).rstrip(b"\r").decode("utf-8", "replace")
            del buffer[:end + 1]
            if not line:
                if data:
                    budget.events += 1
                    if budget.events > limits.max_events:
                        budget.exhausted = True
                        raise _StreamEnded("events")
                    yield event_id, "\n".join(data)
                event_id, data, size = "", [], 0
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                size += len(line)
                if size > limits.max_event_bytes:
                    budget.exhausted = True
                    raise _StreamEnded("event size")
            elif line.startswith("id:"):
                event_id = line[3:].strip()


def _execution(doc: dict[str, Any]) -> Any:
    """The Execution model of a document, when it reads (a newer Kestra may add what we cannot)."""
    from .model.execution import Execution

    try:
        return Execution.from_dict(doc)
    except (KeyError, TypeError, ValueError):
        return None


def _flow_key(source: str) -> tuple[str, str]:
    """(namespace, id) written in a flow source."""
    import yaml

    try:
        doc = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise FlowValidationError([Violation("", f"Invalid YAML: {exc}")]) from None
    if not isinstance(doc, dict) or not doc.get("id") or not doc.get("namespace"):
        raise FlowValidationError([Violation("", "the flow needs an `id` and a `namespace`")])
    return str(doc["namespace"]), str(doc["id"])


__all__ = ["AuthenticationError", "FollowLimits", "KestraApiError", "KestraClient", "LogFollow",
           "ServerUnreachableError"]
