"""The operations of the Kestra-compatible API, free of any transport: plain arguments in, Kestra JSON out.

One method per operation of `api.routes.ROUTES` (the route names the method). Methods raise
`KestraNbError` subclasses (`api.errors` maps them to statuses); long operations are coroutines on the
engine's loop (`wait=true`, follow, kill); streams are async generators of `(event id, document)`.

Waiting and following listen to the engine's events; an execution driven by another process (a kernel
sharing the SQLite file) is watched through the store, whose `data_version` changes when another
process commits.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..engine.events import Event, ExecutionUnstored, ExecutionUpdated, LogsAppended
from ..errors import (
    FlowValidationError,
    IllegalArgumentError,
    IllegalStateError,
    InputValidationError,
    NotFoundError,
    StoreError,
)
from ..model.execution import SYSTEM_PREFIX, Execution, Label, Level, LogEntry
from ..model.flow import Flow
from ..model.ids import new_id
from ..model.jsonfmt import (
    JsonChunks,
    JsonText,
    dumps,
    format_instant,
    log_to_dict,
    parse_duration,
    parse_instant,
    to_plain,
)
from ..model.state import StateType, utcnow
from ..parsing import check_flow, split_documents
from ..store.base import KVEntry
from ..store._common import kv_type_of
from ..store.nsfiles import NSFILE, parse_nsfile_uri
from ..store.storage import execution_prefix, safe_filename
from . import query
from .errors import BadRequest, InvalidEntity
from .flowjson import flow_document, input_document, source_from_json
from .nsfiles import NamespaceFilesApi

POLL = 0.5                 # seconds between looks at the store for changes made by another process
LARGE_EVENT = 256 * 1024   # bytes of a followed document over which its updates are sent at most FOLLOW_RATE a second
FOLLOW_RATE = 5.0
SCAN_BATCH = 200           # executions read at a time by a search the store cannot answer alone
KILL_ANSWER_WAIT = 2.0     # the 2.0 kill answers once KILLING (or the end) is committed, or after this long
TENANT = "main"
MAX_NAMESPACE_FLOWS = 500  # flows one namespace update may hold (each is parsed and checked)
KINDS = ("NORMAL", "TEST", "PLAYGROUND")
METRIC_SORT_FIELDS = ("name", "type", "value", "timestamp", "taskId", "taskRunId")


@dataclass(slots=True)
class Upload:
    """A file part of a multipart body, streamed to a temporary file (`path`, `size` bytes) by the handler.

    The service moves the file into the internal storage (`InternalStorage.move_in`); whatever is left in
    the temporary directory is removed when the request ends.
    """

    name: str
    filename: str
    path: Path
    size: int
    content_type: str | None = None


@dataclass(slots=True)
class StoredFile:
    """A file of the internal storage to send: its URI (or its `local` path), the name to download it as, its
    size; `remove`, a temporary folder to delete once it is sent (an export)."""

    uri: str
    filename: str
    size: int
    local: Path | None = None
    remove: Path | None = None


@dataclass(slots=True)
class Redirect:
    """The file asked for belongs to another execution of the same flow: answer with its file URL."""

    execution_id: str
    uri: str


@dataclass(slots=True)
class Form:
    """A multipart/form-data body: text fields (repeatable) and file parts."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)


@dataclass(slots=True)
class Body:
    """A raw request body with its media type (None when the request had no Content-Type)."""

    media_type: str | None
    text: str


def is_finished(doc: Mapping[str, Any]) -> bool:
    """Terminal and nothing left to run, judged on a stored document (wait/follow stop rule)."""
    if not StateType(doc["state"]["current"]).is_terminated():
        return False
    return all(StateType(tr["state"]["current"]).is_terminated() for tr in doc.get("taskRunList") or ())


class Watch:
    """The committed updates of one execution: the engine's events, else (another process) the store's."""

    def __init__(self, service: ApiService, execution_id: str) -> None:
        self.service = service
        self.execution_id = execution_id
        self.loop = asyncio.get_running_loop()
        self.pending: deque[ExecutionUpdated] = deque()
        self._last: ExecutionUpdated | None = None      # the latest update seen (its document built if read)
        self._final: ExecutionUpdated | None = None     # the update once finished
        self._waiter: asyncio.Future[None] | None = None
        self._version: int | None = None    # the store's data_version, read on the first poll
        self.unstored: str | None = None    # why the engine stopped it (its transitions could not be stored)
        self._unsubscribe = service.engine.subscribe(execution_id, self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ExecutionUpdated):
            self._add(event)
        elif isinstance(event, ExecutionUnstored):
            self.unstored = event.message
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _raise_unstored(self) -> None:
        if self.unstored is not None:
            raise StoreError(self.unstored, public=self.unstored)

    @property
    def last(self) -> dict[str, Any] | None:
        """The latest document seen."""
        return None if self._last is None else self._last.document

    @last.setter
    def last(self, document: dict[str, Any]) -> None:
        self._last = ExecutionUpdated(self.execution_id, StateType(document["state"]["current"]), document,
                                      is_finished(document))

    @property
    def final(self) -> dict[str, Any] | None:
        """The document once the execution is finished."""
        return None if self._final is None else self._final.document

    def _add(self, event: ExecutionUpdated) -> None:
        self.pending.append(event)
        self._last = event
        if event.finished:
            self._final = event
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Stop listening."""
        self._unsubscribe()

    def latest(self, event: ExecutionUpdated) -> ExecutionUpdated:
        """`event`, or the newest update pending after it (those in between are dropped)."""
        while self.pending:
            event = self.pending.popleft()
        return event

    async def settle(self, seconds: float) -> None:
        """Until an update arrives or `seconds` pass."""
        if not self.pending:
            await self._sleep(seconds)

    async def _sleep(self, seconds: float) -> None:
        """Until an event arrives or `seconds` pass."""
        waiter = self._waiter = self.loop.create_future()
        handle = self.loop.call_later(max(seconds, 0), lambda: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def _poll(self) -> None:
        """Another process may have committed: read the execution again if the store changed."""
        store = self.service.store
        version = store.data_version()
        if version == self._version:
            return
        self._version = version   # (the first poll always reads: it has nothing to compare with)
        doc = store.get_execution_document(self.execution_id)
        if doc is None or doc == self.last:
            return
        self._add(ExecutionUpdated(self.execution_id, StateType(doc["state"]["current"]), doc, is_finished(doc)))

    async def next(self, timeout: float | None = None) -> ExecutionUpdated | None:
        """The next update, or None once `timeout` seconds have passed without one."""
        deadline = None if timeout is None else self.loop.time() + timeout
        while not self.pending:
            self._raise_unstored()
            wait = POLL if deadline is None else min(POLL, deadline - self.loop.time())
            if wait <= 0:
                return None
            await self._sleep(wait)
            if not self.pending:
                self._poll()
        return self.pending.popleft()

    async def finished(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The document once the execution is finished; None if `timeout` seconds pass first."""
        deadline = None if timeout is None else self.loop.time() + timeout
        while self._final is None:
            self._raise_unstored()
            wait = POLL if deadline is None else min(POLL, deadline - self.loop.time())
            if wait <= 0:
                return None
            await self._sleep(wait)
            self.pending.clear()  # only the end matters here
            if self._final is None:
                self._poll()
        return self.final


class ApiService(NamespaceFilesApi):
    """Every operation of the REST API over one engine (whose loop is the caller's loop)."""

    def __init__(self, engine: Any, *, base_url: str = "") -> None:
        self.engine = engine
        self.store = engine.store
        self.storage = engine.store.storage   # the `kestra:///` files (inputs, task outputs)
        self.base_url = base_url.rstrip("/")
        self._scheduled: dict[str, asyncio.TimerHandle] = {}
        self.active: dict[str, StateType] = {}   # executions of this engine not finished, by last state
        self._untrack = engine.subscribe(None, self._track)
        self.openapi_document: dict[str, Any] | None = None
        self.security: str | None = None   # how the server serving it authenticates (api.openapi.SCHEMES)

    def _track(self, event: Event) -> None:
        if isinstance(event, ExecutionUpdated):
            if event.finished:
                self.active.pop(event.execution_id, None)
            else:
                self.active[event.execution_id] = event.state

    def close(self) -> None:
        """Stop listening and drop the timers of scheduled executions (they stay CREATED in the store)."""
        self._untrack()
        for handle in self._scheduled.values():
            handle.cancel()
        self._scheduled.clear()

    # ------------------------------------------------------------------------------------------ misc

    def ping(self) -> str:
        """Kestra's liveness answer."""
        return "pong"

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document of the routes served."""
        if self.openapi_document is None:
            from .openapi import document
            from .routes import served_routes

            self.openapi_document = document(served_routes(self.engine), self.security)
        return self.openapi_document

    # ------------------------------------------------------------------------------ executions: create

    def _flow_for_execution(self, namespace: str, flow_id: str, revision: int | None) -> tuple[Flow, int]:
        try:
            return self.engine.load_flow(namespace, flow_id, revision)
        except NotFoundError:
            raise NotFoundError("Requested Flow is not found.") from None
        except FlowValidationError as exc:
            raise IllegalStateError("Requested Flow is not valid. Error: "
                                    + ", ".join(str(v) for v in exc.violations)) from None

    def _form_inputs(self, flow: Flow, form: Form | None, execution_id: str
                     ) -> tuple[dict[str, Any], dict[str, Upload]]:
        """Form fields as input values, and file parts as their future `kestra:///` URIs (the uploads to move
        there once the inputs are accepted: see `_store_uploads`)."""
        if form is None:
            return {}, {}
        inputs: dict[str, Any] = {name: values[0] if len(values) == 1 else list(values)
                                  for name, values in form.fields.items()}
        declared = {inp.id for inp in flow.inputs}
        chosen: dict[str, tuple[str, Upload]] = {}   # input id -> (URI, upload): the last part of a name wins
        for upload in form.files:
            input_id, filename = upload.name, upload.filename or upload.name
            if input_id == "files" and "files" not in declared and upload.filename in declared:
                input_id = upload.filename   # 0.x form: part `files`, filename = the input id
            if input_id not in declared:
                continue                     # undeclared inputs are dropped, as in Kestra
            uri = self.storage.input_uri(flow.namespace, flow.id, execution_id, input_id, filename)
            chosen[input_id] = (uri, upload)
            inputs[input_id] = uri
        return inputs, dict(chosen.values())

    def _store_uploads(self, uploads: Mapping[str, Upload]) -> None:
        """Move accepted uploads from their temporary files to their URIs (a rename on the same disk)."""
        for uri, upload in uploads.items():
            self.storage.move_in(uri, upload.path)

    def _new_execution(self, flow: Flow, revision: int, form: Form | None, labels: Sequence[str] | None,
                       kind: str | None = None) -> Execution:
        if kind is not None and kind not in KINDS:
            raise BadRequest(f"Bad Request: Failed to convert argument [kind] for value [{kind}]")
        # the id comes first: the inputs name the files by it, and the files move in once the inputs are valid
        execution_id = new_id()
        inputs, uploads = self._form_inputs(flow, form, execution_id)
        ex = self.engine.new_execution(flow, revision, inputs, _label_pairs(labels), execution_id=execution_id)
        self._store_uploads(uploads)
        if kind is not None and kind != "NORMAL":
            ex.kind = kind
        return ex

    def _response(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Kestra's ExecutionResponse: the execution plus its UI `url`."""
        return {**doc, "url": f"{self.base_url}/ui/{TENANT}/executions/{doc['namespace']}/{doc['flowId']}/{doc['id']}"}

    async def create_execution(self, namespace: str, flow_id: str, *, form: Form | None = None, wait: bool = False,
                               labels: Sequence[str] | None = None, revision: int | None = None,
                               schedule_date: datetime | None = None, kind: str | None = None,
                               timeout: timedelta | None = None) -> dict[str, Any]:
        """Create (and start, or schedule) an execution; with `wait`, answer once it is finished.

        `timeout` (our extension, implies wait) answers with the execution as it is when the time is up.
        """
        flow, flow_revision = self._flow_for_execution(namespace, flow_id, revision)
        ex = self._new_execution(flow, flow_revision, form, labels, kind)
        wait = wait or timeout is not None
        watch = Watch(self, ex.id) if wait else None
        try:
            delay = 0.0
            if schedule_date is not None:
                ex.schedule_date = schedule_date
                delay = (schedule_date - utcnow()).total_seconds()
            if delay > 0:
                self._schedule(flow, ex, delay)
            else:
                await self.engine.start(flow, ex)
            if watch is None:
                return self._response(ex.to_dict())
            doc = await watch.finished(None if timeout is None else timeout.total_seconds())
            if doc is None:  # the time is up: the execution as last committed
                doc = watch.last or self.store.get_execution_document(ex.id) or ex.to_dict()
            return self._response(doc)
        finally:
            if watch is not None:
                watch.close()

    def _schedule(self, flow: Flow, ex: Execution, delay: float) -> None:
        """Keep a CREATED execution until its scheduleDate, then start it."""
        self.store.save_execution(ex)
        loop = asyncio.get_running_loop()

        def start() -> None:
            if self._scheduled.pop(ex.id, None) is not None:
                loop.create_task(self.engine.start(flow, ex))

        self._scheduled[ex.id] = loop.call_later(delay, start)

    def validate_inputs(self, namespace: str, flow_id: str, *, form: Form | None = None,
                        labels: Sequence[str] | None = None, revision: int | None = None) -> dict[str, Any]:
        """Type and check inputs as a create would, without creating anything."""
        flow, flow_revision = self._flow_for_execution(namespace, flow_id, revision)
        record = self.store.get_flow(namespace, flow_id, flow_revision)
        provided = {name: values[0] if len(values) == 1 else list(values)
                    for name, values in (form.fields.items() if form else ())}
        for upload in form.files if form else ():
            provided[upload.name] = f"kestra:///upload/{safe_filename(upload.filename) or upload.name}"
        errors: dict[str, list[str]] = {}
        typed: dict[str, Any] = {}
        try:
            ex = self.engine.new_execution(flow, flow_revision, provided, _label_pairs(labels))
            typed = ex.inputs or {}
        except InputValidationError as exc:
            for message in exc.errors:
                m = re.match(r"(?:Invalid value for input `([^`]+)`|Missing required input:(\S+))", message)
                errors.setdefault(m.group(1) or m.group(2) if m else "", []).append(message)
        results = []
        for inp in flow.inputs:
            value = _nested(typed, inp.id) if not errors else provided.get(inp.id)
            item: dict[str, Any] = {"input": (input_document(record, inp.id) if record else None)
                                    or {"id": inp.id, "type": inp.type}}
            if value is not None:
                item["value"] = value
            item["enabled"] = True
            item["errors"] = [{"message": m} for m in errors.get(inp.id, ())]
            results.append(item)
        return {"id": flow_id, "namespace": namespace, "inputs": results, "checks": []}

    # -------------------------------------------------------------------------------- executions: read

    def _document(self, execution_id: str) -> dict[str, Any]:
        doc = self.store.get_execution_document(execution_id)
        if doc is None:
            raise NotFoundError(f"Execution '{execution_id}' not found.")
        return doc

    def get_execution(self, execution_id: str) -> JsonText | JsonChunks:
        """The execution as last committed: the stored text, sent as is (a 10,000-task-run document is not
        parsed and encoded again for each GET) and, when large, read from the store as it is sent."""
        text = self.store.execution_text_stream(execution_id)
        if text is None:
            raise NotFoundError(f"Execution '{execution_id}' not found.")
        return JsonText(text) if isinstance(text, str) else JsonChunks(text)

    def execution_outputs(self, execution_id: str) -> dict[str, Any]:
        """The flow-level outputs, as a bare map (Kestra 2.0's outputs API)."""
        return self._document(execution_id).get("outputs") or {}

    # ------------------------------------------------------------------------------- executions: files

    def _execution_file(self, execution_id: str, path: str) -> StoredFile | Redirect:
        """The stored file `path` (a `kestra:///` URI) of an execution, checked to be one of its own; or a namespace
        file (`nsfile://`)."""
        doc = self._document(execution_id)
        if path.startswith(NSFILE):   # a namespace file (Kestra 1.x): of the execution's namespace, or the one named
            namespace, ns_path = parse_nsfile_uri(path, doc["namespace"])
            return self._namespace_file(namespace, ns_path)
        storage_path = self.storage.uri_path(path)   # 422 for another scheme, `..`, NUL bytes, no file name
        prefix = execution_prefix(doc["namespace"], doc["flowId"], execution_id)
        if not storage_path.startswith(prefix):
            executions = prefix[:-len(execution_id) - 1]   # /<ns as path>/<flow slug>/executions/
            other, _, rest = storage_path[len(executions):].partition("/")
            if storage_path.startswith(executions) and other and rest:
                return Redirect(other, path)   # a file of another execution of the same flow
            raise IllegalArgumentError("Invalid prefix path")
        return StoredFile(path, storage_path.rsplit("/", 1)[-1], self.storage.size(path))

    def download_file(self, execution_id: str, *, path: str) -> StoredFile | Redirect:
        """A file of the execution to send (the handler streams it from `storage.open`)."""
        return self._execution_file(execution_id, path)

    def file_metas(self, execution_id: str, *, path: str) -> dict[str, Any] | Redirect:
        """`{"size": <bytes>}` of a file of the execution."""
        found = self._execution_file(execution_id, path)
        return found if isinstance(found, Redirect) else {"size": found.size}

    # ------------------------------------------------------------------------------------------ metrics

    def search_metrics(self, execution_id: str, *, page: int = 1, size: int = 10, sort: Sequence[str] | None = None,
                       task_run_id: str | None = None, task_id: str | None = None) -> dict[str, Any]:
        """A page of the metrics the execution's task runs recorded: `{results, total}` (in recorded order)."""
        if page < 1 or size < 1:
            raise IllegalArgumentError("page and size must be greater than or equal to 1")
        entries = self.store.list_metrics(execution_id, task_run_id=task_run_id)
        if task_id:
            entries = [m for m in entries if m.get("taskId") == task_id]
        for key, ascending in reversed(query.parse_sort(sort)):
            if key not in METRIC_SORT_FIELDS:
                raise IllegalArgumentError(f"Invalid sort field '{key}', expected one of: "
                                           + ", ".join(METRIC_SORT_FIELDS))
            entries.sort(key=lambda m, k=key: (m.get(k) is not None, m.get(k) if m.get(k) is not None else 0),
                         reverse=not ascending)
        return {"results": entries[(page - 1) * size:page * size], "total": len(entries)}

    def search_executions(self, *, page: int = 1, size: int = 10, sort: Sequence[str] | None = None,
                          filters: Mapping[str, Sequence[str]] | None = None, q: str | None = None,
                          scope: Sequence[str] | None = None, namespace: str | None = None,
                          flow_id: str | None = None, start_date: datetime | None = None,
                          end_date: datetime | None = None, time_range: timedelta | None = None,
                          state: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                          trigger_execution_id: str | None = None,
                          child_filter: str | None = None) -> JsonText | Awaitable[JsonText]:
        """A page of executions matching the 1.x filters and the legacy parameters: `{results, total}`."""
        criteria = query.parse_filters(filters or {}, query.EXECUTION_FIELDS)
        legacy: list[query.Criterion] = []
        if q:
            legacy.append(query.Criterion("q", "EQUALS", q))
        if scope:
            legacy.append(query.Criterion("scope", "IN", [s.upper() for s in scope]))
        if namespace:
            legacy.append(query.Criterion("namespace", "PREFIX", namespace))
        if flow_id:
            legacy.append(query.Criterion("flowId", "EQUALS", flow_id))
        if start_date is not None:
            legacy.append(query.Criterion("startDate", "GREATER_THAN_OR_EQUAL_TO", start_date))
        if end_date is not None:
            legacy.append(query.Criterion("endDate", "LESS_THAN_OR_EQUAL_TO", end_date))
        if time_range is not None:
            legacy.append(query.Criterion("timeRange", "EQUALS", time_range))
        if state:
            legacy.append(query.Criterion("state", "IN", [s.upper() for s in query.split_list(",".join(state))]))
        legacy.extend(query.labels_criteria(labels))
        if trigger_execution_id:
            legacy.append(query.Criterion("triggerExecutionId", "EQUALS", trigger_execution_id))
        if child_filter:
            legacy.append(query.Criterion("childFilter", "EQUALS", child_filter))
        criteria = query.checked(criteria + legacy)
        return self._search(criteria, query.parse_sort(sort), page, size)

    def _search(self, criteria: list[query.Criterion], sort: list[tuple[str, bool]], page: int,
                size: int) -> JsonText | Awaitable[JsonText]:
        pushed, rest = _push_down(criteria)
        if not rest:   # the stored texts as they are: a page of large documents is not parsed and encoded again
            return _page(*self.store.search_execution_texts(sort=sort, page=page, size=size, **pushed))
        if page < 1 or size < 1:
            raise IllegalArgumentError("page and size must be greater than or equal to 1")
        return self._scan(pushed, rest, sort, page, size)

    async def _scan(self, pushed: dict[str, Any], rest: list[query.Criterion], sort: list[tuple[str, bool]],
                    page: int, size: int) -> JsonText:
        """A search the store cannot answer alone: the documents it selects read SCAN_BATCH at a time, each
        batch matched and dropped (only the page asked for is kept), the engine's loop given back between
        batches (a scan of 50,000 executions holds it up for one batch at a time, never for all of them)."""
        first, last = (page - 1) * size, page * size
        kept: list[str] = []
        total, batch = 0, 1
        while True:
            texts, _ = self.store.search_execution_texts(sort=sort, page=batch, size=SCAN_BATCH, count=False,
                                                         **pushed)
            for text in texts:
                doc = json.loads(text)
                if all(query.execution_matches(doc, c) for c in rest):
                    if first <= total < last:
                        kept.append(text)
                    total += 1
            if len(texts) < SCAN_BATCH:
                return _page(kept, total)
            batch += 1
            await asyncio.sleep(0)

    def list_flow_executions(self, *, namespace: str, flow_id: str, page: int = 1, size: int = 10) -> JsonText:
        """The executions of one flow, newest first: `{results, total}`."""
        return _page(*self.store.search_execution_texts(
            namespace=namespace, namespace_prefix=False, flow_id=flow_id, sort=[("state.startDate", False)],
            page=page, size=size))

    def latest_executions(self, *, body: Any) -> list[dict[str, Any]]:
        """The latest execution of each `{namespace, id}` flow given (flows never run are left out)."""
        if not isinstance(body, list):
            raise IllegalArgumentError("Invalid json mapping: expected a list of {namespace, id}")
        out = []
        for item in body:
            if not isinstance(item, dict) or not isinstance(item.get("namespace"), str) or not isinstance(
                    item.get("id"), str):
                raise IllegalArgumentError("Invalid json mapping: expected a list of {namespace, id}")
            found, _ = self.store.search_executions(namespace=item["namespace"], namespace_prefix=False,
                                                    flow_id=item["id"], sort=[("state.startDate", False)], size=1)
            if found:
                ex = found[0]
                out.append({"id": ex.id, "flowId": ex.flow_id, "namespace": ex.namespace,
                            "startDate": format_instant(ex.state.start_date), "status": ex.state.current.value})
        return out

    async def follow_execution(self, execution_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Server-sent events of an execution: `start`, then `progress` per update, `end` once finished."""
        self._document(execution_id)  # 404 before the stream starts
        return self._follow(execution_id)

    async def _follow(self, execution_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        watch = Watch(self, execution_id)
        try:
            # subscribed, then read, with no await in between: no update can fall in the gap
            doc = self.store.get_execution_document(execution_id)
            yield "start", {"id": execution_id, **({"originalId": doc.get("originalId"), "deleted": False,
                                                     "metadata": doc.get("metadata")} if doc else {})}
            if doc is None:
                return
            if is_finished(doc):
                yield "end", doc
                return
            yield "progress", doc
            watch.last = doc
            sent = float("-inf")
            while True:
                event = await watch.next()
                if event is None:
                    continue
                event = watch.latest(event)   # updates that came meanwhile: only the newest is sent
                text = event.text
                if len(text) > LARGE_EVENT:   # a large document goes out at most FOLLOW_RATE times a second
                    while not event.finished and watch.loop.time() < sent + 1 / FOLLOW_RATE:
                        await watch.settle(sent + 1 / FOLLOW_RATE - watch.loop.time())
                        event = watch.latest(event)
                    text = event.text
                    sent = watch.loop.time()
                yield "progress", text
                if event.finished:
                    yield "end", text
                    return
        finally:
            watch.close()

    # ------------------------------------------------------------------------------ executions: change

    async def kill_execution(self, execution_id: str, *, is_on_kill_cascade: bool = True) -> None:
        """Ask for a kill (Kestra 1.x: 202, no body); a finished execution is accepted unless not cascading."""
        handle = self._scheduled.pop(execution_id, None)
        if handle is not None:  # not started yet: it ends KILLED without running
            handle.cancel()
            ex = self.store.get_execution(execution_id)
            if ex is not None:
                ex.state.transition(StateType.KILLED)
                self.store.save_execution(ex)
            return
        try:
            await self.engine.kill_async(execution_id, cascade=is_on_kill_cascade)
        except IllegalStateError:
            doc = self._document(execution_id)
            if StateType(doc["state"]["current"]).is_terminated():
                if is_on_kill_cascade:
                    return
                raise IllegalStateError("Execution is already finished, can't kill it") from None
            raise

    async def kill_execution_v2(self, execution_id: str, *, is_on_kill_cascade: bool = True) -> dict[str, Any]:
        """Kill (Kestra 2.0 form): answer with the execution once KILLING (or its end) is committed."""
        watch = Watch(self, execution_id)
        try:
            await self.kill_execution(execution_id, is_on_kill_cascade=is_on_kill_cascade)
            deadline = watch.loop.time() + KILL_ANSWER_WAIT
            doc = self._document(execution_id)
            while doc["state"]["current"] not in ("KILLING", "KILLED") and not is_finished(doc):
                event = await watch.next(deadline - watch.loop.time())
                if event is None:
                    break
                doc = event.document
            return doc
        finally:
            watch.close()

    async def delete_execution(self, execution_id: str, *, delete_logs: bool = True, delete_metrics: bool = True,
                               delete_storage: bool = True) -> None:
        """Delete an execution with its logs, metrics and files; a running one driven here is killed first, so
        it stays gone. (Kestra can keep the logs, metrics or files of a deleted execution; here nothing could
        reach them any more, so the store removes them with it.)"""
        doc = self._document(execution_id)
        handle = self._scheduled.pop(execution_id, None)
        if handle is not None:
            handle.cancel()
        elif not is_finished(doc):
            watch = Watch(self, execution_id)
            try:
                await self.engine.kill_async(execution_id)
                await watch.finished(10)
            except IllegalStateError:
                pass  # driven by another process, or ending: delete what is stored
            finally:
                watch.close()
        self.store.delete_execution(execution_id)   # its logs, metrics and files go with it

    def set_labels(self, execution_id: str, *, body: Any) -> dict[str, Any]:
        """Replace the labels of a terminated execution (its system labels are kept)."""
        ex = self.store.get_execution(execution_id)
        if ex is None:
            raise NotFoundError(f"Execution '{execution_id}' not found.")
        if not ex.state.current.is_terminated():
            from .errors import ApiError

            raise ApiError("The execution is not terminated", status=400, plain=True)
        labels = _label_list(body)
        system = [label for label in ex.labels if label.key.startswith(SYSTEM_PREFIX)]
        for label in labels:
            if label.key.startswith(SYSTEM_PREFIX) and not any(
                    s.key == label.key and s.value == label.value for s in system):
                raise IllegalArgumentError("System labels can only be set by Kestra itself, offending label: "
                                           f"{label.key}={label.value}")
        merged: dict[str, str] = {label.key: label.value for label in labels}
        for label in system:
            merged.setdefault(label.key, label.value)
        ex.labels = [Label(k, v) for k, v in merged.items()]
        self.store.save_execution(ex)
        return ex.to_dict()

    def change_status(self, execution_id: str, *, status: str) -> dict[str, Any]:
        """Set another terminal state on a terminated execution."""
        try:
            target = StateType(status)
        except ValueError:
            raise BadRequest(f"Bad Request: Failed to convert argument [status] for value [{status}]") from None
        if not target.is_terminated():
            raise IllegalArgumentError("You can only change the status of an execution to a terminal state.")
        ex = self.store.get_execution(execution_id)
        if ex is None:
            raise NotFoundError(f"Execution '{execution_id}' not found.")
        if not ex.state.current.is_terminated():
            raise IllegalArgumentError("You can only change the status of a terminated execution.")
        ex.state.transition(target)
        self.store.save_execution(ex)
        return ex.to_dict()

    # ---- operations the engine carries out (restart, replay, resume, pause): one engine call each

    async def restart_execution(self, execution_id: str, *, revision: int | None = None) -> dict[str, Any]:
        """Restart a terminated or paused execution (failed task runs run again)."""
        self._document(execution_id)
        ex = await self.engine.restart_async(execution_id, revision)
        return ex.to_dict()

    async def replay_execution(self, execution_id: str, *, task_run_id: str | None = None,
                               revision: int | None = None, form: Form | None = None) -> dict[str, Any]:
        """Replay as a new execution (from a task run, with another revision, or other inputs)."""
        self._document(execution_id)
        inputs, uploads, replay_id = None, {}, new_id()
        if form is not None:
            source = self.store.get_execution(execution_id)
            flow, _ = self._flow_for_execution(source.namespace, source.flow_id, revision or source.flow_revision)
            inputs, uploads = self._form_inputs(flow, form, replay_id)
        # the files are in place before the replay starts (its tasks may read them at once)
        self._store_uploads(uploads)
        try:
            ex = await self.engine.replay_async(execution_id, task_run_id, revision, inputs,
                                                 new_execution_id=replay_id)
        except BaseException:
            for uri in uploads:
                self.storage.delete(uri)
            raise
        return ex.to_dict()

    async def resume_execution(self, execution_id: str, *, form: Form | None = None) -> dict[str, Any]:
        """Resume a paused execution; the form holds the Pause task's `onResume` inputs."""
        doc = self._document(execution_id)
        inputs: dict[str, Any] = {}
        uploads: dict[str, Upload] = {}
        if form is not None:
            inputs = {name: values[0] if len(values) == 1 else list(values) for name, values in form.fields.items()}
            declared = self._on_resume_inputs(doc)
            chosen: dict[str, tuple[str, Upload]] = {}   # the last part of a name wins
            for upload in form.files:
                if declared is not None and upload.name not in declared:
                    continue   # not an input of the paused task: dropped, as undeclared flow inputs are
                uri = self.storage.input_uri(doc["namespace"], doc["flowId"], execution_id, upload.name,
                                             upload.filename or upload.name)
                chosen[upload.name] = (uri, upload)
                inputs[upload.name] = uri
            uploads = dict(chosen.values())
        self._store_uploads(uploads)
        try:
            ex = await self.engine.resume_async(execution_id, inputs)
        except BaseException:
            for uri in uploads:
                self.storage.delete(uri)
            raise
        return ex.to_dict()

    def _on_resume_inputs(self, doc: Mapping[str, Any]) -> set[str] | None:
        """The ids of the `onResume` inputs of the execution's paused tasks (None if the flow cannot be read)."""
        declared = self.engine.on_resume_inputs(doc)
        return None if declared is None else {inp.id for inp in declared}

    async def pause_execution(self, execution_id: str) -> dict[str, Any]:
        """Pause a running execution by hand."""
        self._document(execution_id)
        ex = await self.engine.pause_async(execution_id)
        return ex.to_dict()

    # -------------------------------------------------------------------------------------------- logs

    @staticmethod
    def _level(min_level: str | None) -> Level | None:
        if min_level is None:
            return None
        try:
            return Level(min_level.upper())
        except ValueError:
            raise BadRequest(f"Bad Request: Failed to convert argument [minLevel] for value [{min_level}]") from None

    def _logs(self, execution_id: str, min_level: str | None, task_run_id: str | None, task_id: str | None,
              attempt: int | None) -> list[LogEntry]:
        return self.store.list_logs(execution_id, min_level=self._level(min_level), task_run_id=task_run_id,
                                    task_id=task_id, attempt=attempt)

    def list_logs(self, execution_id: str, *, min_level: str | None = None, task_run_id: str | None = None,
                  task_id: str | None = None, attempt: int | None = None) -> list[dict[str, Any]]:
        """The execution's log entries, in order (an unknown execution has none)."""
        return [log_to_dict(e) for e in self._logs(execution_id, min_level, task_run_id, task_id, attempt)]

    def download_logs(self, execution_id: str, *, min_level: str | None = None, task_run_id: str | None = None,
                      task_id: str | None = None, attempt: int | None = None) -> str:
        """The logs as text, one `<timestamp> <LEVEL> <message>` line per entry."""
        entries = self._logs(execution_id, min_level, task_run_id, task_id, attempt)
        return "".join(f"{format_instant(e.timestamp)} {e.level.value} {e.message}\n" for e in entries)

    async def follow_logs(self, execution_id: str, *, min_level: str | None = None
                          ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Server-sent events: the stored logs, then the new ones as they come; it never ends by itself."""
        self._document(execution_id)  # 404 before the stream starts
        return self._follow_logs(execution_id, self._level(min_level))

    async def _follow_logs(self, execution_id: str, level: Level | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        pending: deque[LogEntry] = deque()
        wake: list[asyncio.Future[None]] = []
        threshold = level.severity if level is not None else -1

        def on_event(event: Event) -> None:
            if isinstance(event, LogsAppended):
                pending.extend(e for e in event.entries if e.level.severity >= threshold)
                if wake and not wake[0].done():
                    wake[0].set_result(None)

        unsubscribe = self.engine.subscribe(execution_id, on_event)
        try:
            sent = 0
            version = self.store.data_version()
            for entry in self.store.list_logs(execution_id, min_level=level):
                sent += 1
                yield "progress", log_to_dict(entry)
            while True:
                while pending:
                    sent += 1
                    yield "progress", log_to_dict(pending.popleft())
                future = loop.create_future()
                wake[:] = [future]
                handle = loop.call_later(POLL, lambda f=future: f.done() or f.set_result(None))
                try:
                    await future
                finally:
                    handle.cancel()
                if not pending and self.store.data_version() != version:  # written by another process
                    version = self.store.data_version()
                    entries = self.store.list_logs(execution_id, min_level=level)
                    pending.extend(entries[sent:])
        finally:
            unsubscribe()

    # ------------------------------------------------------------------------------------------- flows

    @staticmethod
    def _source(body: Body) -> str:
        if body.media_type == "application/json":
            try:
                return source_from_json(json.loads(body.text))
            except ValueError as exc:
                raise IllegalArgumentError(f"Invalid json: {exc}") from None
        if not body.text.strip():
            raise InvalidEntity([("flow", "must not be empty")])
        return body.text

    @staticmethod
    def _checked(source: str) -> Flow:
        check = check_flow(source)
        if check.flow is None:
            raise FlowValidationError(check.violations)
        return check.flow

    def create_flow(self, *, body: Body) -> dict[str, Any]:
        """Store a new flow (revision 1, or the next one after a deleted flow of the same id)."""
        source = self._source(body)
        flow = self._checked(source)
        if self.store.get_flow(flow.namespace, flow.id) is not None:
            raise InvalidEntity([("flow.id", "Flow id already exists")])
        record = self.store.save_flow(flow.namespace, flow.id, source)
        return flow_document(record, with_source=True)

    def update_namespace_flows(self, namespace: str, *, body: str, delete: bool = True) -> list[dict[str, Any]]:
        """Create or update every flow of the YAML documents (all of `namespace`: a new revision only for a
        changed source), then, with `delete`, delete the namespace's flows the body does not hold. Nothing is
        stored unless every document is a valid flow of that namespace (422 naming each problem)."""
        return self._update_flows(namespace, body, delete)

    def bulk_update_flows(self, *, body: str, delete: bool = True) -> list[dict[str, Any]]:
        """Kestra's `flows/bulk`: the same as a namespace update for flows of any namespaces; with `delete`
        (Kestra's default), every flow of the tenant the body does not hold is deleted."""
        return self._update_flows(None, body, delete)

    def _update_flows(self, namespace: str | None, body: str, delete: bool) -> list[dict[str, Any]]:
        sources = [source for source in split_documents(body) if source.strip()]
        if len(sources) > MAX_NAMESPACE_FLOWS:
            raise InvalidEntity([("flows", f"{len(sources)} documents; the limit is {MAX_NAMESPACE_FLOWS} a request")])
        if not sources:
            raise InvalidEntity([("flows", "must not be empty: give one or more YAML documents")])
        flows: list[tuple[Flow, str]] = []
        problems: list[tuple[str, str, int | None, int | None]] = []
        for index, source in enumerate(sources):
            check = check_flow(source)
            if check.flow is None:   # each at its line and column in its document
                problems.extend((f"flows[{index}]" + (f".{v.path}" if v.path else ""), str(v.message), v.line,
                                 v.column) for v in check.violations)
                continue
            flow = check.flow
            if namespace is not None and flow.namespace != namespace:
                problems.append((f"flows[{index}].namespace",
                                 f"Flow namespace is invalid: `{flow.namespace}` instead of `{namespace}`",
                                 *(flow.position("namespace") or (None, None))))
            elif any(other.id == flow.id and other.namespace == flow.namespace for other, _ in flows):
                problems.append((f"flows[{index}].id", f"Duplicate flow id `{flow.id}` in the body",
                                 *(flow.position("id") or (None, None))))
            flows.append((flow, source))
        if problems:
            raise InvalidEntity(problems)
        records = [self.store.save_flow(flow.namespace, flow.id, source) for flow, source in flows]
        if delete:
            kept = {(flow.namespace, flow.id) for flow, _ in flows}
            for record in self.store.list_flows(namespace):
                if (record.namespace, record.id) not in kept:
                    self.store.delete_flow(record.namespace, record.id)
        return [flow_document(record, with_source=False) for record in records]

    def update_flow(self, namespace: str, flow_id: str, *, body: Body) -> dict[str, Any]:
        """Store a new revision of an existing flow (an identical source keeps the current revision)."""
        if self.store.get_flow(namespace, flow_id) is None:
            raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found.")
        source = self._source(body)
        flow = self._checked(source)
        problems = []
        if flow.id != flow_id:
            problems.append(("flow.id", f"Illegal flow id update: `{flow.id}` instead of `{flow_id}`"))
        if flow.namespace != namespace:
            problems.append(("flow.namespace",
                             f"Illegal namespace update: `{flow.namespace}` instead of `{namespace}`"))
        if problems:
            raise InvalidEntity(problems)
        record = self.store.save_flow(namespace, flow_id, source)
        return flow_document(record, with_source=True)

    def get_flow(self, namespace: str, flow_id: str, *, source: bool = False, revision: int | None = None,
                 allow_deleted: bool = False) -> dict[str, Any]:
        """A flow (its latest or given revision); `source` adds the YAML text."""
        record = self.store.get_flow(namespace, flow_id, revision, allow_deleted=allow_deleted)
        if record is None:
            raise NotFoundError(f"Flow '{namespace}.{flow_id}'"
                                + (f" revision {revision}" if revision is not None else "") + " not found.")
        return flow_document(record, with_source=source)

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Soft delete: a deleted revision is written, the others are kept."""
        if self.store.delete_flow(namespace, flow_id) is None:
            raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found.")

    def list_flows(self, namespace: str) -> list[dict[str, Any]]:
        """The latest revision of each flow of exactly that namespace."""
        return [flow_document(r, with_source=False) for r in self.store.list_flows(namespace)]

    def search_flows(self, *, page: int = 1, size: int = 10, sort: Sequence[str] | None = None,
                     filters: Mapping[str, Sequence[str]] | None = None, q: str | None = None,
                     scope: Sequence[str] | None = None, namespace: str | None = None,
                     labels: Sequence[str] | None = None) -> dict[str, Any]:
        """A page of flows matching the filters: `{results, total}`."""
        if page < 1 or size < 1:
            raise IllegalArgumentError("page and size must be greater than or equal to 1")
        criteria = query.parse_filters(filters or {}, query.FLOW_FIELDS)
        if q:
            criteria.append(query.Criterion("q", "EQUALS", q))
        if scope:
            criteria.append(query.Criterion("scope", "IN", [s.upper() for s in scope]))
        if namespace:
            criteria.append(query.Criterion("namespace", "PREFIX", namespace))
        criteria.extend(query.labels_criteria(labels))
        criteria = query.checked(criteria)
        docs = query.select((flow_document(r, with_source=False) for r in self.store.list_flows()), criteria,
                            query.flow_matches)
        order = query.parse_sort(sort) or [("namespace", True), ("id", True)]
        for key, ascending in reversed(order):
            if key not in ("id", "namespace", "revision", "updated"):
                raise IllegalArgumentError(f"Invalid sort field '{key}', expected one of: id, namespace, "
                                           "revision, updated")
            docs.sort(key=lambda d, k=key: d.get(k) or "", reverse=not ascending)
        return {"results": docs[(page - 1) * size:page * size], "total": len(docs)}

    def distinct_namespaces(self, *, q: str | None = None) -> list[str]:
        """The namespaces that hold flows (containing `q`)."""
        names = sorted({r.namespace for r in self.store.list_flows()})
        return [n for n in names if not q or q.lower() in n.lower()]

    def flow_revisions(self, namespace: str, flow_id: str, *, allow_delete: bool = False) -> list[dict[str, Any]]:
        """Every revision, oldest first (deleted markers only with `allowDelete`)."""
        records = self.store.flow_revisions(namespace, flow_id)
        if not records:
            raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found.")
        return [flow_document(r, with_source=True) for r in records if allow_delete or not r.deleted]

    def validate_flows(self, *, body: str) -> list[dict[str, Any]]:
        """One ValidateConstraintViolation per YAML document (always answered with 200)."""
        out = []
        for index, source in enumerate(split_documents(body)):
            check = check_flow(source)
            item: dict[str, Any] = {"index": index}
            if check.id is not None:
                item["flow"] = check.id
            if check.namespace is not None:
                item["namespace"] = check.namespace
            if check.violations:
                item["constraints"] = ", ".join(str(v) for v in check.violations)
            outdated = False
            if check.revision is not None and check.id and check.namespace:
                latest = self.store.get_flow(check.namespace, check.id, allow_deleted=True)
                outdated = check.revision != (latest.revision if latest else 0) + 1
            item["outdated"] = outdated
            item["deprecationPaths"] = list(check.deprecation_paths)
            item["warnings"] = list(check.warnings)
            item["infos"] = list(check.infos)
            out.append(item)
        return out

    # ---------------------------------------------------------------------------------------------- KV

    @staticmethod
    def _kv_entry(entry: KVEntry) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": entry.namespace, "key": entry.key, "version": entry.revision}
        if entry.description is not None:
            out["description"] = entry.description
        out["creationDate"] = format_instant(entry.updated)
        out["updateDate"] = format_instant(entry.updated)
        if entry.expiration is not None:
            out["expirationDate"] = format_instant(entry.expiration)
        return out

    def list_kv(self, namespace: str) -> list[dict[str, Any]]:
        """The live keys of a namespace."""
        return [self._kv_entry(e) for e in self.store.kv_list(namespace)]

    def list_kv_inheritance(self, namespace: str) -> list[dict[str, Any]]:
        """The keys of a namespace and of its parents (the nearest namespace wins a shared key)."""
        parts = namespace.split(".")
        seen: dict[str, dict[str, Any]] = {}
        for depth in range(len(parts), 0, -1):
            for entry in self.store.kv_list(".".join(parts[:depth])):
                seen.setdefault(entry.key, self._kv_entry(entry))
        return list(seen.values())

    def get_kv(self, namespace: str, key: str) -> dict[str, Any]:
        """`{type, value, revision, updated}` of a key."""
        entry = self.store.kv_get(namespace, key)
        if entry is None:
            raise NotFoundError(f"No value found for key '{key}' in namespace '{namespace}'")
        value = entry.value
        if isinstance(value, date) and not isinstance(value, datetime):
            value = value.isoformat()
        return {"type": entry.type, "value": to_plain(value), "revision": entry.revision,
                "updated": format_instant(entry.updated)}

    def put_kv(self, namespace: str, key: str, *, body: str, ttl: str | None = None) -> None:
        """Set a key from a request body: JSON when it parses (typed), a date, or else a plain string."""
        value, kind = kv_value(body)
        expiration = None
        if ttl:
            try:
                expiration = utcnow() + parse_duration(ttl)
            except ValueError:
                raise BadRequest(f"Bad Request: Invalid ttl header `{ttl}`, expected an ISO duration") from None
        self.store.kv_put(namespace, key, value, kind, expiration=expiration)

    def delete_kv(self, namespace: str, key: str) -> bool:
        """Remove a key; whether it existed."""
        return self.store.kv_delete(namespace, key)

    def delete_kv_keys(self, namespace: str, *, body: Any) -> dict[str, Any]:
        """Remove several keys (`{"keys": [...]}`); the ones that existed."""
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise IllegalArgumentError('Invalid json mapping: expected {"keys": ["key", ...]}')
        return {"keys": [k for k in keys if self.store.kv_delete(namespace, k)]}


# ---------------------------------------------------------------------------------------------- helpers


def kv_value(text: str) -> tuple[Any, str]:
    """A KV request body as Kestra reads it (an Ion value): JSON values typed, dates, else a string."""
    stripped = text.strip()
    if not stripped:
        raise IllegalArgumentError("Invalid JSON value for: " + text)
    try:
        value = json.loads(stripped)
    except ValueError:
        try:
            return parse_instant(stripped), "DATETIME"
        except ValueError:
            pass
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
                return date.fromisoformat(stripped), "DATE"
        except ValueError:
            pass
        return stripped, "STRING"   # Ion reads a bare word as a symbol, i.e. text
    return value, kv_type_of(value)


def _label_pairs(values: Sequence[str] | None) -> list[tuple[str, str]]:
    """`key:value` query labels (split on the first colon) -> pairs."""
    out = []
    for value in values or ():
        key, sep, label_value = value.partition(":")
        if not sep or not key.strip():
            raise IllegalArgumentError(f"Invalid queryString parameter: labels={value}")
        out.append((key.strip(), label_value.strip()))
    return out


def _label_list(body: Any) -> list[Label]:
    """A labels body: `[{key, value}]` (a `{key: value}` map is accepted too)."""
    if isinstance(body, dict):
        body = [{"key": k, "value": v} for k, v in body.items()]
    if not isinstance(body, list):
        raise IllegalArgumentError("Invalid json mapping: expected a list of {key, value}")
    out = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(
                item.get("value"), str) or not item["key"] or not item["value"]:
            raise IllegalArgumentError(f"Invalid label {dumps(item)}: a label needs a key and a non-empty value")
        out.append(Label(item["key"], item["value"]))
    return out


def _page(texts: Sequence[str], total: int) -> JsonText:
    """Kestra's `{results, total}` of stored documents' texts, as they are (not parsed and encoded again)."""
    return JsonText(f'{{"results":[{",".join(texts)}],"total":{total}}}')


def _push_down(criteria: list[query.Criterion]) -> tuple[dict[str, Any], list[query.Criterion]]:
    """Split criteria into the store's search arguments and those matched on the documents."""
    pushed: dict[str, Any] = {}
    rest: list[query.Criterion] = []
    labels: dict[str, str] = {}
    for c in criteria:
        if c.field == "namespace" and c.op in ("EQUALS", "PREFIX") and "namespace" not in pushed:
            pushed["namespace"] = c.value
            pushed["namespace_prefix"] = c.op == "PREFIX"
        elif c.field == "flowId" and c.op == "EQUALS" and "flow_id" not in pushed:
            pushed["flow_id"] = c.value
        elif c.field == "state" and c.op in ("EQUALS", "IN") and "states" not in pushed:
            pushed["states"] = query.states(c.value if isinstance(c.value, list) else [c.value])
        elif c.field == "labels" and c.op == "EQUALS" and c.key is not None and c.key not in labels:
            labels[c.key] = c.value
        elif c.field == "timeRange" and "start_after" not in pushed:
            pushed["start_after"] = query.since(c.value)
        else:
            rest.append(c)
    if labels:
        pushed["labels"] = labels
    return pushed, rest


def _nested(values: Mapping[str, Any], key: str) -> Any:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


__all__ = ["ApiService", "Body", "Form", "Redirect", "StoredFile", "Upload", "Watch", "is_finished", "kv_value"]
