"""The runner: drives executions with the pure executor, on one asyncio loop per process.

It owns the loop (a private daemon thread, or the server's loop when given one), runs runnable tasks
as coroutines, commits every transition to the store before publishing it on the event bus, and
offers a blocking façade (`Engine.run`) for scripts, the CLI and notebooks.

SQLite commits are made inline on the loop: in WAL mode with synchronous=NORMAL a commit takes tens
of microseconds, far less than a thread hop, and the whole of a small flow must run in about 1 ms.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

from ..errors import (
    ExecutionTimeoutError, ExpressionError, IllegalArgumentError, IllegalStateError, KestraNbError,
    NotFoundError,
)
from ..expressions import Renderer, is_truthy
from ..model.execution import (
    CORRELATION_ID, Attempt, Execution, ExecutionMetadata, Label, Level, LogEntry, TaskRun,
)
from ..model.flow import Flow
from ..model.ids import new_id
from ..model.jsonfmt import to_plain
from ..model.state import State, StateType, utcnow
from ..parsing import parse_flow
from ..store import Store, open_store
from ..tasks.registry import Registry, registry as default_registry
from .context import TaskRunContext, execution_variables
from .events import EventBus, ExecutionUpdated, Listener, LogsAppended
from .executor import (
    Action, CreateTaskRun, EndExecution, KillTaskRun, StartExecution, StartTaskRun, is_finished,
    next_actions,
)
from .inputs import coerce_output, resolve_inputs

log = logging.getLogger(__name__)

LabelsArg = Union[Mapping[str, Any], Iterable[Any], None]


@dataclass(slots=True)
class _TaskDone:
    task_run_id: str
    state: StateType
    outputs: dict[str, Any] | None


class _Kill:
    __slots__ = ()


class _Driven:
    """An execution this process is driving, with its inbox and pending logs."""

    __slots__ = ("flow", "ex", "inbox", "workers", "logs", "dirty", "finished", "waiters")

    def __init__(self, flow: Flow, ex: Execution) -> None:
        self.flow = flow
        self.ex = ex
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.logs: list[LogEntry] = []
        self.dirty = True
        self.finished = False
        self.waiters: list[asyncio.Future[Execution]] = []


def build_labels(flow: Flow, requested: LabelsArg, execution_id: str) -> list[Label]:
    """Flow labels (minus system ones), then the requested ones, then system.correlationId if missing."""
    labels = [label for label in flow.labels if not label.key.startswith("system.")]
    if requested:
        pairs = requested.items() if isinstance(requested, Mapping) else requested
        for item in pairs:
            key, value = (item.key, item.value) if isinstance(item, Label) else item
            key = str(key)
            value = "true" if value is True else "false" if value is False else str(value)
            if key.startswith("system.") and key != CORRELATION_ID:
                raise IllegalArgumentError(
                    f"System labels can only be set by Kestra itself, offending label: {key}={value}")
            if not key or not value:
                raise IllegalArgumentError(f"Invalid label `{key}`: a label needs a key and a non-empty value")
            labels.append(Label(key, value))
    if not any(label.key == CORRELATION_ID for label in labels):
        labels.append(Label(CORRELATION_ID, execution_id))
    return labels


class Engine:
    """Runs Kestra flows in-process; one per process is the rule (see `get_engine`)."""

    def __init__(self, store: Store | str | os.PathLike[str] | None = None, *,
                 loop: asyncio.AbstractEventLoop | None = None, tasks: Registry | None = None) -> None:
        self.store: Store = store if hasattr(store, "save_execution") else open_store(
            None if store is None else str(store))  # type: ignore[arg-type]
        self.bus = EventBus()
        self.renderer = Renderer()
        self.tasks = tasks or default_registry
        self._loop = loop
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._driven: dict[str, _Driven] = {}
        self._closed = False

    # ------------------------------------------------------------------------------------------ loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The engine's loop, started on a daemon thread on first use when none was given."""
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    if self._closed:
                        raise IllegalStateError("The engine is closed")
                    loop = asyncio.new_event_loop()
                    ready = threading.Event()

                    def main() -> None:
                        asyncio.set_event_loop(loop)
                        loop.call_soon(ready.set)
                        loop.run_forever()

                    self._thread = threading.Thread(target=main, name="kestra_nb-engine", daemon=True)
                    self._thread.start()
                    ready.wait()
                    self._loop = loop
        return self._loop

    def _call(self, coro: Any) -> concurrent.futures.Future[Any]:
        loop = self.loop
        if self._on_loop_thread():
            coro.close()
            raise IllegalStateError("Engine.run() blocks; on the engine's own loop use `await engine.run_async()`")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def close(self) -> None:
        """Stop the loop thread (if ours) and close the store; executions still running stay RUNNING."""
        self._closed = True
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None:
            async def cancel_all() -> None:
                for d in list(self._driven.values()):
                    for worker in d.workers.values():
                        worker.cancel()
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            self._thread = None
            self._loop = None
        self.store.close()

    # ----------------------------------------------------------------------------------------- flows

    def deploy(self, source: str) -> tuple[Flow, int]:
        """Validate and store a flow source; returns the flow and its revision (unchanged if identical)."""
        flow = parse_flow(source)
        record = self.store.save_flow(flow.namespace, flow.id, source)
        return flow, record.revision

    def load_flow(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[Flow, int]:
        """The stored flow (latest or given revision), parsed; NotFoundError if missing."""
        record = self.store.get_flow(namespace, flow_id, revision)
        if record is None:
            raise NotFoundError("Requested Flow is not found.")
        return parse_flow(record.source), record.revision

    # ------------------------------------------------------------------------------------ executions

    def new_execution(self, flow: Flow, revision: int, inputs: Mapping[str, Any] | None = None,
                      labels: LabelsArg = None) -> Execution:
        """Build a CREATED execution: typed inputs (InputValidationError) and labels checked."""
        if flow.disabled:
            raise IllegalStateError("Requested Flow is disabled.")
        execution_id = new_id()
        now = utcnow()
        ex = Execution(
            id=execution_id, namespace=flow.namespace, flow_id=flow.id, flow_revision=revision,
            state=State.new(StateType.CREATED, now),
            metadata=ExecutionMetadata(attempt_number=1, original_created_date=now),
            original_id=execution_id, labels=build_labels(flow, labels, execution_id))
        if flow.inputs:
            ex.inputs = resolve_inputs(flow.inputs, inputs or {}, variables=execution_variables(flow, ex))
        return ex

    async def start(self, flow: Flow, ex: Execution) -> Execution:
        """Store a new execution and start driving it; returns once CREATED is committed."""
        d = _Driven(flow, ex)
        self._driven[ex.id] = d
        self._commit(d)
        asyncio.get_running_loop().create_task(self._drive(d))
        return ex

    async def run_async(self, flow: Flow | str, inputs: Mapping[str, Any] | None = None,
                        labels: LabelsArg = None, *, started: list[str] | None = None) -> Execution:
        """Deploy (if a source), create, run to the end and return the execution (on the engine loop)."""
        if isinstance(flow, str):
            flow, revision = self.deploy(flow)
        else:
            revision = self.store.save_flow(flow.namespace, flow.id, flow.source).revision
        ex = self.new_execution(flow, revision, inputs, labels)
        if started is not None:
            started.append(ex.id)
        await self.start(flow, ex)
        return await self.wait_async(ex.id)

    def run(self, flow: Flow | str | os.PathLike[str], inputs: Mapping[str, Any] | None = None,
            labels: LabelsArg = None, timeout: float | None = None) -> Execution:
        """Run a flow (YAML text, a path to a .yml file, or a Flow) and block until it has ended.

        On `timeout` (seconds) the execution is killed and ExecutionTimeoutError raised.
        """
        if isinstance(flow, os.PathLike):
            flow = Path(flow).read_text(encoding="utf-8")
        started: list[str] = []
        future = self._call(self.run_async(flow, inputs, labels, started=started))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if not started:
                future.cancel()
                raise ExecutionTimeoutError(f"The execution did not start within {timeout}s") from None
            try:
                killed = self.kill(started[0], wait=True)
            except IllegalStateError:  # it ended just as the time ran out
                return future.result()
            raise ExecutionTimeoutError(
                f"Execution {started[0]} did not end within {timeout}s; it was killed", killed) from None

    async def wait_async(self, execution_id: str) -> Execution:
        """Wait until the execution is finished (terminal and nothing left to run) and return it."""
        d = self._driven.get(execution_id)
        if d is None or d.finished:
            ex = self._stored(execution_id)
            if d is None and not ex.state.current.is_terminated():
                raise self._elsewhere(ex)
            return ex
        waiter: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        d.waiters.append(waiter)
        return await waiter

    def _stored(self, execution_id: str) -> Execution:
        ex = self.store.get_execution(execution_id)
        if ex is None:
            raise NotFoundError(f"Execution '{execution_id}' not found.")
        return ex

    @staticmethod
    def _elsewhere(ex: Execution) -> IllegalStateError:
        # another process (a kernel, the server) drives it; cross-process control comes with recovery
        return IllegalStateError(
            f"Execution '{ex.id}' is not driven by this process (state {ex.state.current.value})")

    def get_execution(self, execution_id: str) -> Execution | None:
        """The execution as last committed."""
        return self.store.get_execution(execution_id)

    async def kill_async(self, execution_id: str) -> None:
        """Ask a running execution to stop: KILLING, running task runs stopped, then KILLED."""
        d = self._driven.get(execution_id)
        if d is None or d.finished:
            ex = self._stored(execution_id)
            if ex.state.current.is_terminated():
                raise IllegalStateError("Execution is already finished, can't kill it")
            raise self._elsewhere(ex)
        d.inbox.put_nowait(_Kill())

    def kill(self, execution_id: str, wait: bool = False, timeout: float | None = 30) -> Execution | None:
        """Kill from any thread but the loop's; with `wait`, return the execution once KILLED."""
        self._call(self.kill_async(execution_id)).result(timeout)
        if wait:
            return self._call(self.wait_async(execution_id)).result(timeout)
        return None

    def subscribe(self, execution_id: str | None, listener: Listener) -> Any:
        """Listen to an execution's committed updates (on the loop thread); returns unsubscribe."""
        return self.bus.subscribe(execution_id, listener)

    # -------------------------------------------------------------------------------------- driving

    async def _drive(self, d: _Driven) -> None:
        try:
            self._step(d)
            while not d.finished:
                self._handle(d, await d.inbox.get())
                while not d.inbox.empty():
                    self._handle(d, d.inbox.get_nowait())
                self._step(d)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an engine bug: fail the execution rather than leave it hanging
            log.exception("kestra_nb: execution %s crashed", d.ex.id)
            self._execution_log(d, Level.ERROR, f"Internal error in kestra_nb: {type(exc).__name__}: {exc}")
            for tr in d.ex.task_run_list:
                if not tr.state.is_terminated():
                    tr.state.transition(StateType.FAILED)
            d.ex.state.transition(StateType.FAILED)
            d.finished = True
            d.dirty = True
            self._commit(d)
        finally:
            self._driven.pop(d.ex.id, None)
            for worker in d.workers.values():
                worker.cancel()
            for waiter in d.waiters:
                if not waiter.done():
                    waiter.set_result(d.ex)

    def _handle(self, d: _Driven, message: Any) -> None:
        if isinstance(message, _TaskDone):
            d.workers.pop(message.task_run_id, None)
            tr = d.ex.task_run(message.task_run_id)
            if tr.state.is_terminated():  # killed meanwhile
                return
            spec = d.flow.task(tr.task_id)
            state = message.state
            if state is StateType.FAILED and spec.allow_failure:
                state = StateType.SUCCESS if spec.allow_warning else StateType.WARNING
            if tr.attempts:
                tr.attempts[-1].state.transition(message.state)
            tr.outputs = message.outputs
            tr.state.transition(state)
            d.dirty = True
        elif isinstance(message, _Kill):
            if not d.ex.state.current.is_terminated() and d.ex.state.current is not StateType.KILLING:
                d.ex.state.transition(StateType.KILLING)
                d.dirty = True
                self._commit(d)  # KILLING is seen before the task runs end

    def _step(self, d: _Driven) -> None:
        dispatch: list[tuple[TaskRun, Any]] = []
        for _ in range(100_000):
            actions = next_actions(d.flow, d.ex)
            if not actions:
                break
            for action in actions:
                self._apply(d, action, dispatch)
        else:  # pragma: no cover - the executor always converges; this guards against a bug
            raise RuntimeError("the executor did not converge")
        d.finished = is_finished(d.flow, d.ex)
        self._commit(d)
        loop = asyncio.get_running_loop()
        for tr, cls in dispatch:
            d.workers[tr.id] = loop.create_task(self._work(d, tr, cls))
        if d.finished:
            for waiter in d.waiters:
                if not waiter.done():
                    waiter.set_result(d.ex)

    def _apply(self, d: _Driven, action: Action, dispatch: list[tuple[TaskRun, Any]]) -> None:
        ex = d.ex
        d.dirty = True
        if isinstance(action, StartExecution):
            ex.state.transition(StateType.RUNNING)
        elif isinstance(action, CreateTaskRun):
            ex.task_run_list.append(TaskRun(
                id=new_id(), execution_id=ex.id, namespace=ex.namespace, flow_id=ex.flow_id,
                task_id=action.task.id, state=State.new(), parent_task_run_id=action.parent_task_run_id,
                value=action.value, tenant_id=ex.tenant_id))
        elif isinstance(action, StartTaskRun):
            self._start_task_run(d, ex.task_run(action.task_run_id), action, dispatch)
        elif isinstance(action, KillTaskRun):
            tr = ex.task_run(action.task_run_id)
            worker = d.workers.pop(tr.id, None)
            if worker is not None:
                worker.cancel()
            now = utcnow()
            if tr.attempts and not tr.attempts[-1].state.is_terminated():
                tr.attempts[-1].state.transition(StateType.KILLED, now)
            tr.state.transition(StateType.KILLED, now)
        elif isinstance(action, EndExecution):
            self._end(d, action.state)

    def _start_task_run(self, d: _Driven, tr: TaskRun, action: StartTaskRun,
                        dispatch: list[tuple[TaskRun, Any]]) -> None:
        spec = action.task
        ctx = TaskRunContext(d.flow, d.ex, tr, spec, self.renderer, d.logs.append)
        if spec.run_if is not None:
            try:
                run = is_truthy(ctx.render_string(spec.run_if, "runIf"))
            except ExpressionError as exc:
                ctx.log(Level.ERROR, exc.message)
                tr.state.transition(StateType.RUNNING)
                tr.state.transition(StateType.FAILED)
                return
            if not run:
                tr.state.transition(StateType.SKIPPED)
                return
        cls = self.tasks.resolve(spec.type)
        if cls is None or cls.flowable:
            # parsing refuses unknown types; flowable types arrive with their executor support
            ctx.log(Level.ERROR, f"Task type {spec.type} cannot be run by this engine")
            tr.state.transition(StateType.RUNNING)
            tr.state.transition(StateType.FAILED)
            return
        now = utcnow()
        attempt = State.new(StateType.CREATED, now)
        attempt.transition(StateType.RUNNING, now)
        tr.attempts = [*(tr.attempts or ()), Attempt(attempt)]
        tr.state.transition(StateType.RUNNING, now)
        dispatch.append((tr, cls))

    async def _work(self, d: _Driven, tr: TaskRun, cls: Any) -> None:
        spec = d.flow.task(tr.task_id)
        ctx = TaskRunContext(d.flow, d.ex, tr, spec, self.renderer, d.logs.append)
        outputs: dict[str, Any] | None = None
        try:
            result = await cls(spec).run(ctx)
            outputs = None if result is None else to_plain(result)
            state = StateType.SUCCESS
        except asyncio.CancelledError:
            raise
        except KestraNbError as exc:
            ctx.log(Level.ERROR, exc.message)
            state = StateType.FAILED
        except Exception as exc:
            ctx.log(Level.ERROR, f"{type(exc).__name__}: {exc}")
            state = StateType.FAILED
        d.inbox.put_nowait(_TaskDone(tr.id, state, outputs))

    def _end(self, d: _Driven, state: StateType) -> None:
        ex, flow = d.ex, d.flow
        if flow.outputs:
            variables = execution_variables(flow, ex)
            outputs: dict[str, Any] = {}
            try:
                for output in flow.outputs:
                    value = coerce_output(output, self.renderer.render_value(output.value, variables))
                    _set_nested(outputs, output.id, to_plain(value))
            except Exception as exc:
                message = exc.message if isinstance(exc, KestraNbError) else f"{type(exc).__name__}: {exc}"
                self._execution_log(d, Level.ERROR, f"Failed to render output values: {message}")
                if state is not StateType.KILLED:
                    state = StateType.FAILED
            else:
                ex.outputs = outputs
        ex.state.transition(state)

    def _execution_log(self, d: _Driven, level: Level, message: str) -> None:
        ex = d.ex
        d.logs.append(LogEntry(namespace=ex.namespace, flow_id=ex.flow_id, timestamp=utcnow(), level=level,
                               message=message, execution_id=ex.id, tenant_id=ex.tenant_id))

    def _commit(self, d: _Driven) -> None:
        if not d.dirty and not d.logs:
            return
        document = d.ex.to_dict()
        logs, d.logs = d.logs, []
        self.store.save_execution(d.ex, logs, document=document)
        d.dirty = False
        self.bus.publish(ExecutionUpdated(d.ex.id, d.ex.state.current, document, d.finished))
        if logs:
            self.bus.publish(LogsAppended(d.ex.id, tuple(logs)))


def _set_nested(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


_default: Engine | None = None
_default_lock = threading.Lock()


def get_engine() -> Engine:
    """The process's engine, on the default SQLite store under KESTRA_NB_HOME (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Engine()
    return _default
