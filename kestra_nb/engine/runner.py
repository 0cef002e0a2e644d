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
import inspect
import json
import logging
import random
import os
import shutil
import socket
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Union

from ..config import home_dir
from ..errors import (
    ExecutionTimeoutError, FlowValidationError, TaskFailure, IllegalArgumentError, IllegalStateError,
    KestraNbError, NotFoundError, StoreError, error_record, recorded_error,
)
from ..expressions import Renderer, is_truthy
from ..model.execution import (
    CORRELATION_ID, Attempt, Execution, ExecutionMetadata, Label, Level, LogEntry, TaskRun,
)
from ..model.flow import Flow, Input
from ..model.ids import new_id
from ..model.jsonfmt import ExecutionJson, parse_duration, to_plain
from ..model.state import State, StateType, utcnow
from ..parsing import parse_flow
from ..store import Store, open_store
from ..tasks.base import ExitRequested
from ..tasks.registry import Registry, registry as default_registry
from .configuration import global_variables
from .context import TaskRunContext, add_outputs, execution_variables, outputs_variable
from .events import EventBus, ExecutionUnstored, ExecutionUpdated, Listener, LogsAppended, started_by
from .executor import (
    EXIT, FLOWABLES, FOREACH, IF, LOOP_UNTIL, LOOPS, PAUSE, SWITCH, WORKING_DIRECTORY, Action, CreateTaskRun,
    EndExecution,
    EndTaskRun, Index, KillTaskRun, NextIteration, StartExecution, StartTaskRun, next_actions,
)
from .inputs import coerce_output, resolve_inputs
from .sla import ENDS as SLA_ENDS, assertion_violations, deadlines as sla_deadlines, has_assertions, \
    max_duration_violation
from .subflows import Executions
from . import workingdir

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 0.2  # how often a long-running task's log lines are stored while it runs

INLINE_BUDGET = 0.02  # seconds of instant tasks run inline in one executor step

# States in which an execution still has work ahead: what crash recovery takes over.
RECOVERABLE = (StateType.CREATED, StateType.RESTARTED, StateType.QUEUED, StateType.RUNNING, StateType.PAUSED,
               StateType.KILLING)

# Crash recovery takes an execution over at most this many times between clean stops: one whose recoveries
# a crash interrupted that often (a poison pill that kills or freezes every process driving it) ends FAILED.
MAX_RECOVERIES = 2
UNSTORED_RETRY_MAX = 5.0   # seconds between tries at storing the end of an execution the store refused
# Commands through the store (kill, pause, resume from another process). The store is the truth; to hear of
# a command at once, without polling, each driving process has a doorbell (a Linux abstract datagram socket
# named after its store owner) that a sender rings after storing a command. A lost ring is caught by a look
# at the store every DOORBELL_FALLBACK seconds while something is driven (and at every COMMAND_POLL where
# there is no doorbell). A sender reads the outcome every COMMAND_POLL seconds while it waits, and waits
# at most COMMAND_WAIT for the driver before withdrawing the command and answering 409.
COMMAND_POLL = 0.005
DOORBELL_FALLBACK = 1.0
COMMAND_WAIT = 10.0
DRIVER_CHECK = 0.5         # seconds between a sender's checks that the driver is still alive

LabelsArg = Union[Mapping[str, Any], Iterable[Any], None]


@dataclass(slots=True)
class _TaskDone:
    """A worker finished an attempt."""

    task_run_id: str
    state: StateType
    outputs: dict[str, Any] | None


@dataclass(slots=True)
class _DirectoryDone:
    """A WorkingDirectory's directory was prepared (`opened`) or closed: run its children, or end it."""

    task_run_id: str
    opened: bool
    error: str | None = None
    outputs: dict[str, Any] | None = None
    state: StateType | None = None        # (closed) the state its children gave it


@dataclass(slots=True)
class _Timer:
    """A timer fired: retry a task run, run a LoopUntil's next iteration, end a Pause, or an SLA expired."""

    kind: str                   # "retry" | "iteration" | "pause" | "pause-timeout" | "sla"
    task_run_id: str            # (the SLA's id for "sla")


class _Kill:
    __slots__ = ("command",)

    def __init__(self, command: int | None = None) -> None:
        self.command = command     # the stored command it carries out, if it came through the store


class _Dequeue:
    """A slot under the flow's concurrency limit freed up: a QUEUED execution may run."""

    __slots__ = ()


class _ForeignIterator:
    """Steps an async generator of the engine's loop from another loop (a server's): see `iterate_on_loop`."""

    def __init__(self, engine: Engine, events: AsyncIterator[Any]) -> None:
        self._engine = engine
        self._events = events
        self._running: asyncio.Future[Any] | None = None   # the step in progress, on the engine's loop

    def __aiter__(self) -> _ForeignIterator:
        return self

    async def __anext__(self) -> Any:
        return await self._engine.on_loop(self._step)

    async def _step(self) -> Any:
        self._running = asyncio.ensure_future(self._events.__anext__())
        try:
            return await self._running
        finally:
            self._running = None

    async def aclose(self) -> None:
        """Close the generator on its own loop (it unsubscribes there). A step still in progress there (the
        caller gave up on it: its client left) is cancelled and awaited first, whenever the cancellation
        from the caller's loop arrives: a running generator cannot be closed."""
        async def close() -> None:
            running = self._running
            if running is not None:
                running.cancel()
                with suppress(BaseException):
                    await running
            end = getattr(self._events, "aclose", None)
            if end is not None:
                await end()

        await self._engine.on_loop(close)


class Doorbell:
    """A process's doorbell for commands: a datagram socket in Linux's abstract namespace (no file, gone
    with the process), read by the engine's loop. A ring carries nothing: the receiver reads the store."""

    PREFIX = "\0kestra_nb-commands-"

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._loop = loop

    @classmethod
    def open(cls, owner: str, loop: asyncio.AbstractEventLoop, rung: Callable[[], None]) -> Doorbell | None:
        if not sys.platform.startswith("linux"):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(cls.PREFIX + owner)
        except OSError:
            sock.close()
            return None
        sock.setblocking(False)
        bell = cls(sock, loop)

        def readable() -> None:
            try:
                while sock.recv(64):   # take every ring in at once: one look at the store for them all
                    pass
            except OSError:
                pass
            rung()

        loop.add_reader(sock.fileno(), readable)
        return bell

    def close(self) -> None:
        try:
            self._loop.remove_reader(self._sock.fileno())
        except (ValueError, RuntimeError):
            pass
        self._sock.close()


def ring(owner: str) -> None:
    """Ring the doorbell of the process behind `owner` (nothing happens if it has none)."""
    if not sys.platform.startswith("linux"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(b"!", Doorbell.PREFIX + owner)
        except OSError:
            pass


class _Driven:
    """An execution this process is driving, with its inbox, workers, timers and pending logs."""

    __slots__ = ("flow", "ex", "inbox", "workers", "timers", "logs", "dirty", "finished", "waiters",
                 "loop_values", "loop_started", "task", "runs", "outputs", "index", "json", "commands",
                 "violated")

    def __init__(self, flow: Flow, ex: Execution) -> None:
        self.flow = flow
        self.ex = ex
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.logs: list[LogEntry] = []
        self.dirty = True
        self.finished = False
        self.waiters: list[asyncio.Future[Execution]] = []
        self.loop_values: dict[str, list[str]] = {}     # ForEach task run id -> its rendered values
        self.loop_started: dict[str, Any] = {}          # LoopUntil task run id -> first iteration start
        self.task: asyncio.Task[None] | None = None     # the coroutine driving it
        self.runs = {tr.id: tr for tr in ex.task_run_list}  # task runs by id
        self.outputs = outputs_variable(flow, ex)           # the `outputs` variable, kept up to date
        self.index = Index(flow, ex)                        # the executor's, kept from one step to the next
        self.json = ExecutionJson()                         # its JSON, written as it changes
        self.commands: list[int] = []                       # stored commands the next commit carries out
        self.violated: set[str] = set()                     # ids of the SLAs found violated (logged once)


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
                 loop: asyncio.AbstractEventLoop | None = None, tasks: Registry | None = None,
                 recover: bool = True) -> None:
        self.store: Store = store if hasattr(store, "save_execution") else open_store(
            None if store is None else str(store))  # type: ignore[arg-type]
        self.bus = EventBus()
        store_file = getattr(self.store, "path", None)
        self.renderer = Renderer(store=self.store, globals=global_variables(
            Path(store_file).parent if store_file is not None else home_dir()))
        self.tasks = tasks or default_registry
        self._loop = loop
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._driven: dict[str, _Driven] = {}
        self._unstored: set[asyncio.Task[None]] = set()   # final commits of stopped executions, retried
        self._closed = False
        self._inline_until = 0.0
        self._watcher: asyncio.Task[None] | None = None   # applies stored commands while something is driven
        self._applying: set[int] = set()                  # seqs of stored commands being applied here
        self._doorbell: Doorbell | None = None            # rung by senders of commands (Linux)
        self.recovered: list[str] = []    # ids of the executions this engine took over at start-up
        self.executions = Executions(self)  # what Subflow/ForEachItem tasks reach through ctx.executions
        if recover:
            self.recover()

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

    async def on_loop(self, call: Callable[[], Any]) -> Any:
        """Call `call` on the engine's loop from any loop, awaiting what it returns there; its result.

        A server answers HTTP on one loop and runs the engine on its own: renders, steps and store work
        then never hold up the server's loop (which the GIL's switch interval lets run meanwhile)."""
        async def on_engine() -> Any:
            result = call()
            return await result if inspect.isawaitable(result) else result

        if self._on_loop_thread():
            return await on_engine()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_engine(), self.loop))

    def iterate_on_loop(self, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """An async iterator stepping `events` (an async generator of the engine's loop) from another loop."""
        if self._on_loop_thread():
            return events
        return _ForeignIterator(self, events)

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
                # stop the drivers first (they cancel their workers and timers): none may write to the
                # store once it is closed; what they drive stays as last committed, for recovery
                drivers = [d.task for d in self._driven.values() if d.task is not None] + list(self._unstored)
                drivers += [self._watcher] if self._watcher is not None else []
                for task in drivers:
                    task.cancel()
                await asyncio.gather(*drivers, return_exceptions=True)
            try:
                asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(5)
            except concurrent.futures.TimeoutError:   # a step still computing: the store closes under it
                log.warning("kestra_nb: the engine's drivers did not stop within 5 s")
            if self._doorbell is not None:
                loop.call_soon_threadsafe(self._doorbell.close)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()
            self._thread = None
            self._loop = None
        try:
            self.store.forget_recoveries()   # a clean stop: what it drove was not interrupted by a crash
        except Exception:  # noqa: BLE001 - the store is unwell; the counts stay, which errs on the safe side
            log.exception("kestra_nb: cannot reset the recovery counts")
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

    def on_resume_inputs(self, doc: Mapping[str, Any]) -> list[Input] | None:
        """The `onResume` inputs of the execution document's paused tasks (None if its flow cannot be read)."""
        try:
            flow, _ = self.load_flow(doc["namespace"], doc["flowId"], doc.get("flowRevision"))
        except (NotFoundError, FlowValidationError):
            return None
        declared: dict[str, Input] = {}
        for tr in doc.get("taskRunList") or ():
            if tr["state"]["current"] == StateType.PAUSED.value:
                try:
                    spec = flow.task(tr["taskId"])
                except KeyError:
                    continue
                declared.update((inp.id, inp) for inp in spec.props.get("onResume") or ())
        return list(declared.values())

    def new_execution(self, flow: Flow, revision: int, inputs: Mapping[str, Any] | None = None,
                      labels: LabelsArg = None, *, execution_id: str | None = None) -> Execution:
        """Build a CREATED execution: typed inputs (InputValidationError) and labels checked.

        `execution_id` is given by a caller that names files by it before the execution exists (uploads)."""
        if flow.disabled:
            raise IllegalStateError("Requested Flow is disabled.")
        execution_id = execution_id or new_id()
        now = utcnow()
        ex = Execution(
            id=execution_id, namespace=flow.namespace, flow_id=flow.id, flow_revision=revision,
            state=State.new(StateType.CREATED, now),
            metadata=ExecutionMetadata(attempt_number=1, original_created_date=now),
            original_id=execution_id, labels=build_labels(flow, labels, execution_id))
        if flow.inputs:
            ex.inputs = resolve_inputs(flow.inputs, inputs or {}, variables=execution_variables(flow, ex, globals=self.renderer.globals))
        return ex

    async def start(self, flow: Flow, ex: Execution, *, command: int | None = None) -> Execution:
        """Store a new execution and start driving it; returns once CREATED is committed.

        Under the flow's `concurrency.limit` it is QUEUED, CANCELLED or FAILED per `behavior`.
        """
        d = _Driven(flow, ex)
        if command is not None:   # a stored command this start carries out (a restart from another process)
            d.commands.append(command)
        self._commit(d)
        if flow.concurrency and ex.state.current is StateType.CREATED:
            self._limit_concurrency(d)
        self._driven[ex.id] = d
        self._watch_sla(d)
        d.task = asyncio.get_running_loop().create_task(self._drive(d))
        self._watch()
        return ex

    def _limit_concurrency(self, d: _Driven) -> None:
        flow = d.flow
        limit = int(flow.concurrency.get("limit") or 0)
        if limit < 1:
            return
        mine = [o for o in self._driven.values()
                if o.flow.uid == flow.uid and not o.finished and o.ex.state.current is not StateType.QUEUED]
        others, _ = self.store.search_executions(
            namespace=flow.namespace, namespace_prefix=False, flow_id=flow.id,
            states=[StateType.RUNNING, StateType.PAUSED, StateType.KILLING, StateType.RESTARTED],
            size=limit + len(self._driven) + 1)
        active = len(mine) + sum(1 for o in others if o.id not in self._driven)
        if active < limit:
            return
        behavior = str(flow.concurrency.get("behavior") or "QUEUE")
        state = {"CANCEL": StateType.CANCELLED, "FAIL": StateType.FAILED}.get(behavior, StateType.QUEUED)
        d.ex.state.transition(state)
        if state is StateType.FAILED:
            self._execution_log(d, Level.ERROR, f"Flow is FAILED due to concurrency limit exceeded ({limit})")
        d.dirty = True
        d.finished = state is not StateType.QUEUED
        self._commit(d)

    def _dequeue(self, flow: Flow) -> None:
        """An execution of `flow` ended here: let the oldest QUEUED one of the same flow run."""
        if not flow.concurrency:
            return
        for other in self._driven.values():
            if other.flow.uid == flow.uid and other.ex.state.current is StateType.QUEUED:
                other.inbox.put_nowait(_Dequeue())
                return

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

    async def kill_async(self, execution_id: str, *, cascade: bool = True, command: int | None = None) -> None:
        """Ask a running execution to stop: KILLING, running task runs stopped, then KILLED.

        With `cascade`, the executions it started (Subflow, ForEachItem, also without `wait`) that this
        engine still drives or has scheduled are killed too, at any depth. An execution another process
        drives is sent the kill through the store (and the process it runs in kills its children)."""
        d = self._driven.get(execution_id)
        if d is None or d.finished:
            ex = self._stored(execution_id)
            if ex.state.current.is_terminated():
                raise IllegalStateError("Execution is already finished, can't kill it")
            if await self._remote(ex, "kill", {"cascade": cascade}):
                await self.kill_async(execution_id, cascade=cascade, command=command)
            return
        d.inbox.put_nowait(_Kill(command))
        if cascade:
            for child in [c for c in self._driven.values() if not c.finished and started_by(c.ex) == execution_id]:
                await self.kill_async(child.ex.id)
            self.executions.kill_scheduled_children(execution_id)
            if hasattr(self.store, "put_command"):   # children another process drives get the kill there
                for child in self.store.executions_in_states(RECOVERABLE, tenant=d.ex.tenant_id or "main"):
                    if started_by(child) == execution_id and child.id not in self._driven:
                        with suppress(IllegalStateError, NotFoundError):   # (it ended meanwhile)
                            await self.kill_async(child.id)

    def kill(self, execution_id: str, wait: bool = False, timeout: float | None = 30) -> Execution | None:
        """Kill from any thread but the loop's; with `wait`, return the execution once KILLED."""
        self._call(self.kill_async(execution_id)).result(timeout)
        if wait:
            return self._call(self.wait_async(execution_id)).result(timeout)
        return None

    def subscribe(self, execution_id: str | None, listener: Listener) -> Any:
        """Listen to an execution's committed updates (on the loop thread); returns unsubscribe."""
        return self.bus.subscribe(execution_id, listener)

    # -------------------------------------------------------------------------------- recovery

    def recover(self) -> None:
        """Take over the executions whose process died mid-flow (a restarted kernel, a killed server).

        They are claimed here and driven on the engine's loop: a server listens first, then calls this, so
        neither its start nor its API waits on them."""
        claim = getattr(self.store, "claim_orphans", None)
        orphans = claim(RECOVERABLE) if claim is not None else []
        if not orphans:
            return
        self.recovered = [ex.id for ex in orphans]
        loop = self.loop
        now = utcnow()
        for ex in orphans:
            if ex.state.current is StateType.CREATED and ex.schedule_date is not None and ex.schedule_date > now:
                # not started yet: it starts at its scheduleDate, as it would have in the lost process
                delay = (ex.schedule_date - now).total_seconds()
                loop.call_soon_threadsafe(loop.call_later, delay, self._adopt_later, ex)
            elif self._on_loop_thread():
                loop.create_task(self._adopt(ex))
            else:
                asyncio.run_coroutine_threadsafe(self._adopt(ex), loop)

    def _adopt_later(self, ex: Execution) -> None:
        if not self._closed:
            asyncio.get_running_loop().create_task(self._adopt(ex))

    async def _adopt(self, ex: Execution) -> None:
        """Drive a recovered execution on: ended task runs are kept, interrupted ones run again.

        The attempt is counted in the store first: past MAX_RECOVERIES the execution ends FAILED instead."""
        attempts = self.store.count_recovery(ex.id)
        try:
            flow, _ = self.load_flow(ex.namespace, ex.flow_id, ex.flow_revision)
        except KestraNbError as exc:
            log.error("kestra_nb: cannot recover execution %s: %s", ex.id, exc)
            return
        d = _Driven(flow, ex)
        now = utcnow()
        if attempts > MAX_RECOVERIES:
            self._give_up(d, attempts)
            return
        dispatch: list[tuple[TaskRun, Any]] = []
        self._execution_log(d, Level.WARN, "The process driving this execution stopped; it was recovered "
                                           f"by process {os.getpid()}")
        for tr in ex.task_run_list:
            spec = flow.task(tr.task_id)
            current = tr.state.current
            ctx = TaskRunContext(flow, ex, tr, spec, self.renderer, d.logs.append, d.outputs, d.runs)
            try:
                if current is StateType.RUNNING and spec.type not in FLOWABLES:
                    if tr.attempts and not tr.attempts[-1].state.is_terminated():
                        tr.attempts[-1].state.transition(StateType.RESUBMITTED, now)
                    tr.state.transition(StateType.RESUBMITTED, now)
                    cls = self.tasks.resolve(spec.type)
                    if cls is None:
                        raise TaskFailure(f"Task type {spec.type} cannot be run by this engine")
                    self._new_attempt(d, tr, cls, dispatch)
                elif current is StateType.RUNNING and spec.type in LOOPS:
                    d.loop_values[tr.id] = loop_values(ctx, spec)
                elif current is StateType.RUNNING and spec.type == LOOP_UNTIL:
                    d.loop_started[tr.id] = tr.state.start_date
            except KestraNbError as exc:
                ctx.log(Level.ERROR, exc.message)
                tr.state.transition(StateType.FAILED, now)
        d.dirty = True
        self._driven[ex.id] = d
        self._commit(d)  # RESUBMITTED and the new attempts are stored before anything runs again
        loop = asyncio.get_running_loop()
        for tr in ex.task_run_list:
            spec = flow.task(tr.task_id)
            if tr.state.current is StateType.RETRYING:
                self._schedule(d, "retry", tr.id, 0)
            elif tr.state.current is StateType.PAUSED and spec.type == PAUSE:
                duration = spec.props.get("pauseDuration") or spec.props.get("delay")
                if duration is not None:
                    ctx = TaskRunContext(flow, ex, tr, spec, self.renderer, d.logs.append, d.outputs, d.runs)
                    paused_at = tr.state.histories[-1].date
                    remaining = _seconds(ctx.render_string(duration, "pauseDuration")) - (now - paused_at).total_seconds()
                    self._schedule(d, "pause", tr.id, remaining)
        for tr, cls in dispatch:
            d.workers[tr.id] = loop.create_task(self._work(d, tr, cls))
        self._watch_sla(d)
        d.task = loop.create_task(self._drive(d))
        self._watch()

    def _give_up(self, d: _Driven, attempts: int) -> None:
        """End a poison pill FAILED: every process that recovered it stopped before it could finish."""
        ex, now = d.ex, utcnow()
        self._execution_log(d, Level.ERROR, (
            f"The process driving this execution stopped while recovering it {attempts - 1} times in a row "
            f"(at most {MAX_RECOVERIES} recoveries): it is FAILED and will not run again"))
        for tr in ex.task_run_list:
            if not tr.state.current.is_terminated():
                if tr.attempts and not tr.attempts[-1].state.is_terminated():
                    tr.attempts[-1].state.transition(StateType.FAILED, now)
                tr.state.transition(StateType.FAILED, now)
        ex.state.transition(StateType.FAILED, now)
        d.finished = True
        d.dirty = True
        self._commit(d)
        log.error("kestra_nb: execution %s failed: its recovery was interrupted %d times", ex.id, attempts - 1)

    # ------------------------------------------------------------------------------ operations

    async def resume_async(self, execution_id: str, inputs: Mapping[str, Any] | None = None, *,
                           command: int | None = None) -> Execution:
        """Resume a PAUSED execution; `inputs` are the paused Pause task's `onResume` inputs (typed)."""
        d = self._driven.get(execution_id)
        if d is None or d.ex.state.current is not StateType.PAUSED:
            ex = d.ex if d is not None else self._stored(execution_id)
            if ex.state.current is not StateType.PAUSED:
                raise IllegalStateError(f"Execution '{execution_id}' is not paused, can't resume it")
            if await self._remote(ex, "resume", {"inputs": dict(inputs or {})}):
                return await self.resume_async(execution_id, inputs, command=command)
            return self._stored(execution_id)
        paused = [tr for tr in d.ex.task_run_list if tr.state.current is StateType.PAUSED]
        now = utcnow()
        for tr in paused:
            spec = d.flow.task(tr.task_id)
            on_resume = spec.props.get("onResume") or []
            values = resolve_inputs(on_resume, inputs or {}) if on_resume else {}
            self._end_pause(d, tr, spec, StateType.SUCCESS, {"onResume": values} if on_resume else None)
        if not paused:  # paused by hand
            d.ex.state.transition(StateType.RUNNING, now)
        d.dirty = True
        if command is not None:
            d.commands.append(command)
        # the answer is the execution as resumed (RUNNING), as Kestra's: what comes next is the next step's,
        # even when nothing is left to run (a pause by hand after the last task ended)
        asyncio.get_running_loop().call_soon(self._step, d)
        return d.ex

    async def pause_async(self, execution_id: str, *, command: int | None = None) -> Execution:
        """Pause a RUNNING execution by hand: task runs under way finish, nothing new starts until resumed."""
        d = self._driven.get(execution_id)
        ex = d.ex if d is not None else self._stored(execution_id)
        if ex.state.current is not StateType.RUNNING:
            raise IllegalStateError(f"Execution '{execution_id}' is not running, can't pause it")
        if d is None:
            if await self._remote(ex, "pause", None):
                return await self.pause_async(execution_id, command=command)
            return self._stored(execution_id)
        d.ex.state.transition(StateType.PAUSED)
        d.dirty = True
        if command is not None:
            d.commands.append(command)
        self._commit(d)
        return d.ex

    # ------------------------------------------------------------------- commands through the store

    async def _remote(self, ex: Execution, kind: str, payload: Any) -> bool:
        """Have the process driving `ex` apply a command, through the store; True when that process had died
        and this one took the execution over instead (the caller then applies it here)."""
        store = self.store
        put = getattr(store, "put_command", None)
        if put is None or store.driver(ex.id) == store.owner:
            raise self._elsewhere(ex)   # a store of this process alone, or an execution it owns but does not drive
        if await self._take_over(ex.id):
            return True
        seq = put(ex.id, kind, payload, tenant=ex.tenant_id or "main")
        driver = store.driver(ex.id)
        if driver is not None:
            ring(driver)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMMAND_WAIT
        next_check = loop.time() + DRIVER_CHECK
        while True:   # (a bounded wait of one caller: an indexed read every COMMAND_POLL)
            done, error = store.command_outcome(seq)
            if done:
                if error is not None:
                    raise recorded_error(error)
                return False
            now = loop.time()
            if now >= deadline:   # taken back, so that it is not applied later, when nobody expects it
                message = (f"Execution '{ex.id}' is driven by another process that did not apply the {kind} "
                           f"within {COMMAND_WAIT:g} s; the command was withdrawn")
                if store.withdraw_command(seq, message):
                    raise IllegalStateError(message)
                continue   # applied just now: its outcome is read on the next turn
            if now >= next_check:   # its driver died meanwhile: take the execution over; our watcher applies it
                next_check = now + DRIVER_CHECK
                await self._take_over(ex.id)
            await asyncio.sleep(COMMAND_POLL)

    async def _take_over(self, execution_id: str) -> bool:
        """Claim and drive an execution whose driving process died (the recovery of one execution)."""
        claim = getattr(self.store, "claim_execution", None)
        if claim is None or execution_id in self._driven or self.store.driver(execution_id) is not None:
            return False
        claimed = claim(execution_id, RECOVERABLE)
        if claimed is None:
            return False
        await self._adopt(claimed)
        return execution_id in self._driven

    def _watch(self) -> None:
        """Apply stored commands to what this engine drives, for as long as it drives something."""
        if self._watcher is None and hasattr(self.store, "pending_commands") and not self._closed:
            if self._doorbell is None:
                self._doorbell = Doorbell.open(self.store.owner, asyncio.get_running_loop(), self._rung)
            self._watcher = asyncio.get_running_loop().create_task(self._watch_commands())

    def _rung(self) -> None:
        if self._driven and not self._closed:
            try:
                self._check_commands()
            except StoreError as exc:
                log.error("kestra_nb: cannot read commands: %s", exc)

    async def _watch_commands(self) -> None:
        pause = DOORBELL_FALLBACK if self._doorbell is not None else COMMAND_POLL
        try:
            while self._driven and not self._closed:
                self._check_commands()
                await asyncio.sleep(pause)
        except StoreError as exc:   # the store is unwell: commands wait until something is driven again
            log.error("kestra_nb: stopped watching for commands: %s", exc)
        finally:
            self._watcher = None

    def _check_commands(self) -> None:
        for command in self.store.pending_commands():
            d = self._driven.get(command.execution_id)
            if d is not None and not d.finished and command.seq not in self._applying:
                self._applying.add(command.seq)
                asyncio.get_running_loop().create_task(self._apply_command(command))

    async def _apply_command(self, command: Any) -> None:
        payload = command.payload or {}
        try:
            if command.kind == "kill":
                await self.kill_async(command.execution_id, cascade=bool(payload.get("cascade", True)),
                                      command=command.seq)
            elif command.kind == "pause":
                await self.pause_async(command.execution_id, command=command.seq)
            elif command.kind == "resume":
                await self.resume_async(command.execution_id, payload.get("inputs"), command=command.seq)
            elif command.kind == "restart":
                await self.restart_async(command.execution_id, payload.get("revision"), command=command.seq)
            else:
                raise IllegalArgumentError(f"Unknown command '{command.kind}'")
        except KestraNbError as exc:   # refused here as it would have been in the sender's process
            self._finish_command(command.seq, error_record(exc))
        except Exception as exc:  # noqa: BLE001 - an engine bug: the sender is told, not left waiting
            log.exception("kestra_nb: command %s on %s failed", command.kind, command.execution_id)
            self._finish_command(command.seq, {"type": "KestraNbError", "message": f"{type(exc).__name__}: {exc}"})
        # (applied: it stays in _applying until the commit carrying its effect marks it done, see _commit)

    def _finish_command(self, seq: int, error: dict[str, Any] | None) -> None:
        """A command with no effect to commit: refused, or moot (what it was for has ended)."""
        try:
            self.store.finish_command(seq, error)
        except StoreError as exc:
            log.error("kestra_nb: cannot mark command %s done: %s", seq, exc)
        self._applying.discard(seq)

    async def restart_async(self, execution_id: str, revision: int | None = None, *,
                            command: int | None = None) -> Execution:
        """Restart a terminated (or paused) execution: failed task runs run again, successful ones are kept.

        Same id (a new one, with `parentId`, when another `revision` is asked for); `attemptNumber` + 1.
        A paused execution another process drives is restarted there (a command through the store).
        """
        if execution_id in self._driven and self._driven[execution_id].ex.state.current is not StateType.PAUSED:
            current = self._driven[execution_id].ex.state.current
            raise IllegalStateError(
                f"Execution must be terminated to be restarted, current state is '{current.value}' !")
        held = self._driven.get(execution_id)
        ex = held.ex if held is not None else self._stored(execution_id)
        if not (ex.state.current.is_terminated() or ex.state.current is StateType.PAUSED):
            raise IllegalStateError(
                f"Execution must be terminated to be restarted, current state is '{ex.state.current.value}' !")
        if held is None and ex.state.current is StateType.PAUSED and hasattr(self.store, "put_command") \
                and self.store.driver(ex.id) not in (None, self.store.owner):
            if revision not in (None, ex.flow_revision):
                raise IllegalStateError(f"Execution '{ex.id}' is paused in another process: restart it with its "
                                        "own revision, or kill it first")
            if not await self._remote(ex, "restart", {"revision": None}):
                return self._stored(execution_id)
            held = self._driven.get(execution_id)
            ex = held.ex if held is not None else self._stored(execution_id)
        self._driven.pop(execution_id, None)
        if held is not None and held.task is not None:  # paused and driven here: the restart takes over
            held.task.cancel()
        flow, flow_revision = self.load_flow(ex.namespace, ex.flow_id, revision or ex.flow_revision)
        now = utcnow()
        if revision is not None and revision != ex.flow_revision:
            ex = self._copy_execution(ex, new_id())
            ex.flow_revision = flow_revision
        rerun = {StateType.FAILED, StateType.KILLED, StateType.PAUSED, StateType.CANCELLED, StateType.RETRYING}
        again = {t.id for t in flow.walk() if t.id in _error_branch_ids(flow)}
        by_id = {tr.id: tr for tr in ex.task_run_list}
        restart: set[str] = set()
        for tr in ex.task_run_list:
            if tr.state.current in rerun and tr.task_id not in again:
                node: TaskRun | None = tr
                while node is not None and node.id not in restart:
                    restart.add(node.id)
                    node = by_id.get(node.parent_task_run_id) if node.parent_task_run_id else None
        dropped = {tr.id for tr in ex.task_run_list if tr.task_id in again}
        ex.task_run_list = [tr for tr in ex.task_run_list if tr.id not in dropped
                            and tr.parent_task_run_id not in dropped]
        for tr in ex.task_run_list:
            if tr.id in restart:
                tr.state.transition(StateType.RESTARTED, now)
        ex.outputs = None
        ex.metadata.attempt_number += 1
        ex.state.transition(StateType.RESTARTED, now)
        await self.start(flow, ex, command=command)
        return ex

    async def replay_async(self, execution_id: str, task_run_id: str | None = None, revision: int | None = None,
                           inputs: Mapping[str, Any] | None = None, *,
                           new_execution_id: str | None = None) -> Execution:
        """A new execution of the same flow from this one: from the start, or from `task_run_id` on
        (the task runs before it are copied, that one and those after it run again); `new_execution_id`
        is the new execution's id when the caller needs it beforehand (uploaded input files)."""
        source = self._stored(execution_id)
        if not source.state.current.is_terminated():
            raise IllegalStateError(
                f"Execution must be terminated to be replayed, current state is '{source.state.current.value}' !")
        flow, flow_revision = self.load_flow(source.namespace, source.flow_id, revision or source.flow_revision)
        ex = self._copy_execution(source, new_execution_id or new_id())
        ex.flow_revision = flow_revision
        ex.labels = [label for label in ex.labels if label.key != "system.replayed"]
        if inputs is not None:
            ex.inputs = resolve_inputs(flow.inputs, inputs, variables=execution_variables(flow, ex, globals=self.renderer.globals)) \
                if flow.inputs else None
        now = utcnow()
        ex.state = State.new(StateType.CREATED, now)
        ex.outputs = None
        ex.task_run_list = []
        if task_run_id is not None:
            ex.task_run_list = _replayed_task_runs(source, task_run_id, ex.id, now)
            ex.state.transition(StateType.RESTARTED, now)
        source.labels = [label for label in source.labels if label.key != "system.replayed"]
        source.labels.append(Label("system.replayed", "true"))
        self.store.save_execution(source)
        await self.start(flow, ex)
        return ex

    def _copy_execution(self, ex: Execution, execution_id: str) -> Execution:
        copy = Execution.from_dict(ex.to_dict())
        copy.id = execution_id
        copy.parent_id = ex.id
        copy.original_id = ex.original_id
        copy.metadata = ExecutionMetadata(ex.metadata.attempt_number + 1, ex.metadata.original_created_date)
        for tr in copy.task_run_list:
            tr.execution_id = execution_id
        return copy

    def resume(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> Execution:
        """Blocking resume (see resume_async)."""
        return self._call(self.resume_async(execution_id, inputs)).result(30)

    def pause(self, execution_id: str) -> Execution:
        """Blocking manual pause (see pause_async)."""
        return self._call(self.pause_async(execution_id)).result(30)

    def restart(self, execution_id: str, revision: int | None = None, *, wait: bool = True,
                timeout: float | None = None) -> Execution:
        """Restart and (by default) block until the restarted execution has ended."""
        ex = self._call(self.restart_async(execution_id, revision)).result(30)
        return self._call(self.wait_async(ex.id)).result(timeout) if wait else ex

    def replay(self, execution_id: str, task_run_id: str | None = None, revision: int | None = None,
               inputs: Mapping[str, Any] | None = None, *, wait: bool = True,
               timeout: float | None = None) -> Execution:
        """Replay and (by default) block until the new execution has ended."""
        ex = self._call(self.replay_async(execution_id, task_run_id, revision, inputs)).result(30)
        return self._call(self.wait_async(ex.id)).result(timeout) if wait else ex

    ACTIONS = ("kill", "pause", "resume", "restart", "replay")

    def act(self, action: str, execution_id: str, *, inputs: Mapping[str, Any] | None = None,
            task_run_id: str | None = None, wait: bool = False) -> str:
        """One of ACTIONS on an execution, wherever it is driven (the magic's and the CLI's `kill ID` …): the
        id it acted on (restart and replay may make a new one); with `wait`, a restart or replay run here is
        waited for until it ends."""
        if action == "kill":
            self.kill(execution_id)
        elif action == "pause":
            self.pause(execution_id)
        elif action == "resume":
            self.resume(execution_id, inputs=inputs)
        elif action == "restart":
            return self.restart(execution_id, wait=wait).id
        elif action == "replay":
            return self.replay(execution_id, task_run_id, wait=wait).id
        else:
            raise IllegalArgumentError(f"Unknown action '{action}', expected one of {', '.join(self.ACTIONS)}")
        return execution_id

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
        except StoreError as exc:   # a transition could not be committed (disk full…): stop, say so
            self._stop_unstored(d, exc)
        except Exception as exc:  # an engine bug: fail the execution rather than leave it hanging
            log.exception("kestra_nb: execution %s crashed", d.ex.id)
            self._execution_log(d, Level.ERROR, f"Internal error in kestra_nb: {type(exc).__name__}: {exc}")
            self._end_failed(d)
            try:
                self._commit(d)
            except StoreError as unstored:
                self._stop_unstored(d, unstored)
        finally:
            if self._driven.get(d.ex.id) is d:  # a restart may already drive this id anew
                del self._driven[d.ex.id]
            for worker in d.workers.values():
                worker.cancel()
            for timer in d.timers.values():
                timer.cancel()
            while not d.inbox.empty():   # a kill it got as it ended: moot, done (its sender is not left waiting)
                message = d.inbox.get_nowait()
                if isinstance(message, _Kill) and message.command is not None:
                    self._finish_command(message.command, None)
            for waiter in d.waiters:
                if not waiter.done():
                    waiter.set_result(d.ex)
            self._dequeue(d.flow)

    @staticmethod
    def _end_failed(d: _Driven) -> None:
        for tr in d.ex.task_run_list:
            if not tr.state.is_terminated():
                tr.state.transition(StateType.FAILED)
        if not d.ex.state.current.is_terminated():
            d.ex.state.transition(StateType.FAILED)
        d.finished = True
        d.dirty = True

    def _stop_unstored(self, d: _Driven, exc: StoreError) -> None:
        """The store refused a commit of `d`: nothing more of it runs (what it would do could not be kept).
        Its waiters are told (`ExecutionUnstored`: a wait=true client gets an error, not silence); it ends
        FAILED (or as it ended, when its end is what could not be stored), with a log line saying why, in the
        store as soon as the store takes a write again (tried in the background while this engine runs; else
        the next start recovers it from its last commit)."""
        log.error("kestra_nb: execution %s could not be stored, it is stopped: %s", d.ex.id, exc)
        self._end_failed(d)   # (an execution whose last step was what failed to be stored keeps its end)
        message = (f"Execution '{d.ex.id}' could not be stored ({exc.public}): it was stopped and ends "
                   f"{d.ex.state.current.value}, stored once the store takes writes again")
        self._execution_log(d, Level.ERROR, message)
        self.bus.publish(ExecutionUnstored(d.ex.id, message))
        task = asyncio.ensure_future(self._commit_when_possible(d))
        self._unstored.add(task)
        task.add_done_callback(self._unstored.discard)

    async def _commit_when_possible(self, d: _Driven) -> None:
        delay = 0.05
        while True:
            try:
                self._commit(d)
                return
            except StoreError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, UNSTORED_RETRY_MAX)

    def _handle(self, d: _Driven, message: Any) -> None:
        if isinstance(message, _TaskDone):
            self._task_done(d, message)
        elif isinstance(message, _DirectoryDone):
            self._directory_done(d, message)
        elif isinstance(message, _Timer):
            self._timer_fired(d, message)
        elif isinstance(message, _Kill):
            if message.command is not None:
                d.commands.append(message.command)
            if not d.ex.state.current.is_terminated() and d.ex.state.current is not StateType.KILLING:
                d.ex.state.transition(StateType.KILLING)
                d.dirty = True
            self._commit(d)  # KILLING is seen before the task runs end
        elif isinstance(message, _Dequeue):
            if d.ex.state.current is StateType.QUEUED:
                d.ex.state.transition(StateType.RUNNING)
                d.dirty = True

    def _task_done(self, d: _Driven, message: _TaskDone) -> None:
        d.workers.pop(message.task_run_id, None)
        tr = d.runs[message.task_run_id]
        if tr.state.current is not StateType.RUNNING:  # killed (or ended) meanwhile
            return
        spec = d.flow.task(tr.task_id)
        now = utcnow()
        state = message.state
        if tr.attempts:
            tr.attempts[-1].state.transition(state, now)
        if message.outputs is not None:
            tr.outputs = message.outputs
            add_outputs(d.outputs, d.flow, tr, d.runs)
        d.dirty = True
        if state is StateType.FAILED:
            if self._retry(d, tr, spec, now):
                return
            if spec.allow_failure:
                state = StateType.SUCCESS if spec.allow_warning else StateType.WARNING
        elif state is StateType.SUCCESS and len(tr.attempts or ()) > 1:
            policy = self._retry_policy(d, tr, spec)
            if policy and policy.get("warningOnRetry"):
                state = StateType.WARNING
        tr.state.transition(state, now)
        if spec.type == EXIT:  # the Exit task run and its parents take the state it asked for
            parent = tr.parent_task_run_id
            while parent is not None:
                ptr = d.runs[parent]
                if not ptr.state.is_terminated():
                    ptr.state.transition(state, now)
                parent = ptr.parent_task_run_id

    def _timer_fired(self, d: _Driven, message: _Timer) -> None:
        d.timers.pop((message.kind, message.task_run_id), None)
        if message.kind == "sla":
            self._sla_expired(d, message.task_run_id)
            return
        tr = d.runs[message.task_run_id]
        spec = d.flow.task(tr.task_id)
        if message.kind == "retry" and tr.state.current is StateType.RETRYING:
            cls = self.tasks.resolve(spec.type)
            self._new_attempt(d, tr, cls)
        elif message.kind == "iteration" and tr.state.current is StateType.RUNNING:
            outputs = dict(tr.outputs or {})
            outputs["iterationCount"] = int(outputs.get("iterationCount", 1)) + 1
            tr.outputs = outputs
            add_outputs(d.outputs, d.flow, tr, d.runs)
            d.dirty = True
        elif message.kind == "pause" and tr.state.current is StateType.PAUSED:
            behavior = str(spec.props.get("behavior") or "RESUME")
            state = {"RESUME": StateType.SUCCESS, "WARN": StateType.WARNING, "FAIL": StateType.FAILED,
                     "CANCEL": StateType.CANCELLED}.get(behavior, StateType.SUCCESS)
            self._end_pause(d, tr, spec, state, None)
        elif message.kind == "pause-timeout" and tr.state.current is StateType.PAUSED:
            self._task_log(d, tr, Level.ERROR, f"Pause timed out after {spec.props.get('timeout') or spec.timeout}")
            self._end_pause(d, tr, spec, StateType.FAILED, None)

    def _schedule(self, d: _Driven, kind: str, task_run_id: str, delay: float) -> None:
        key = (kind, task_run_id)
        old = d.timers.pop(key, None)
        if old is not None:
            old.cancel()
        d.timers[key] = asyncio.get_running_loop().call_later(
            max(delay, 0.0), d.inbox.put_nowait, _Timer(kind, task_run_id))

    def _cancel_timers(self, d: _Driven, task_run_id: str) -> None:
        for key in [k for k in d.timers if k[1] == task_run_id]:
            d.timers.pop(key).cancel()

    def _step(self, d: _Driven) -> None:
        dispatch: list[tuple[TaskRun, Any]] = []
        asserts = bool(d.flow.sla) and has_assertions(d.flow)
        # instant tasks run inline for at most this long per step, so other executions are not starved
        self._inline_until = time.perf_counter() + INLINE_BUDGET
        for _ in range(1_000_000):
            if asserts and not d.ex.state.current.is_terminated():   # as the execution changes (Kestra)
                self._check_assertions(d)
            actions = next_actions(d.flow, d.ex, d.loop_values, d.index)
            if not actions:
                break
            progressed = False
            ended = d.ex.state.current.is_terminated()
            for action in actions:
                progressed = self._apply(d, action, dispatch) or progressed
                if not ended and d.ex.state.current.is_terminated():
                    break   # (a task retried in a new execution ended this one: the rest of the batch is moot)
            if not progressed:  # e.g. a LoopUntil waiting for its next check: nothing to do until a timer
                break
        else:  # pragma: no cover - the executor always converges; this guards against a bug
            raise RuntimeError("the executor did not converge")
        # is_finished() without another executor pass: nothing left to do was just established
        d.finished = not actions and d.ex.state.current.is_terminated() and all(
            tr.state.current.is_terminated() for tr in d.ex.task_run_list)
        self._commit(d)
        loop = asyncio.get_running_loop()
        for tr, cls in dispatch:
            d.workers[tr.id] = loop.create_task(self._work(d, tr, cls))
        if d.finished:
            for waiter in d.waiters:
                if not waiter.done():
                    waiter.set_result(d.ex)

    def _apply(self, d: _Driven, action: Action, dispatch: list[tuple[TaskRun, Any]]) -> bool:
        """Carry out one action; False when it changed nothing (so the step can stop)."""
        ex = d.ex
        if isinstance(action, NextIteration):
            return self._next_iteration(d, d.runs[action.task_run_id])
        d.dirty = True
        if isinstance(action, StartExecution):
            ex.state.transition(StateType.RUNNING)
        elif isinstance(action, CreateTaskRun):
            tr = TaskRun(
                id=new_id(), execution_id=ex.id, namespace=ex.namespace, flow_id=ex.flow_id,
                task_id=action.task.id, state=State.new(), parent_task_run_id=action.parent_task_run_id,
                value=action.value, iteration=action.iteration, tenant_id=ex.tenant_id)
            ex.task_run_list.append(tr)
            d.runs[tr.id] = tr
            # the executor's next answer would be StartTaskRun: start it now and save a whole pass
            self._start_task_run(d, tr, action.task, dispatch)
        elif isinstance(action, StartTaskRun):
            if action.task_run_id in d.workers:   # a WorkingDirectory being prepared
                return False
            self._start_task_run(d, d.runs[action.task_run_id], action.task, dispatch)
        elif isinstance(action, EndTaskRun):
            tr = d.runs[action.task_run_id]
            state = action.state
            spec = d.flow.task(tr.task_id)
            if spec.type == WORKING_DIRECTORY:
                if tr.id in d.workers:   # being closed
                    return False
                self._directory_worker(d, tr, spec, opened=False, state=state)
                return True
            if state is StateType.FAILED and spec.allow_failure:
                state = StateType.SUCCESS if spec.allow_warning else StateType.WARNING
            tr.state.transition(state)
        elif isinstance(action, KillTaskRun):
            self._stop_task_run(d, d.runs[action.task_run_id], StateType.KILLED)
        elif isinstance(action, EndExecution):
            self._end(d, action.state)
        return True

    def _stop_task_run(self, d: _Driven, tr: TaskRun, state: StateType) -> None:
        """End a task run that has not ended in `state`: its worker and timers stopped, its attempt too."""
        worker = d.workers.pop(tr.id, None)
        if worker is not None:
            worker.cancel()
        self._cancel_timers(d, tr.id)
        now = utcnow()
        if tr.attempts and not tr.attempts[-1].state.is_terminated():
            tr.attempts[-1].state.transition(state, now)
        tr.state.transition(state, now)

    # ------------------------------------------------------------------------------------ SLAs

    def _watch_sla(self, d: _Driven) -> None:
        """Set a timer for each MAX_DURATION SLA of an execution that has not ended (a new one, or one
        recovered: the deadline comes from its stored start date)."""
        if not d.flow.sla or d.ex.state.current.is_terminated():
            return
        now = utcnow()
        for sla, deadline in sla_deadlines(d.flow, d.ex):
            self._schedule(d, "sla", sla.id, (deadline - now).total_seconds())

    def _sla_expired(self, d: _Driven, sla_id: str) -> None:
        if d.ex.state.current.is_terminated():
            return
        sla = next((s for s in d.flow.sla if s.id == sla_id and s.duration is not None), None)
        if sla is None:
            return
        violation = max_duration_violation(sla, d.ex, utcnow())
        if violation is None:   # (a timer a little early): look again when it is due
            self._schedule(d, "sla", sla_id, (d.ex.state.start_date + sla.duration - utcnow()).total_seconds())
            return
        self._violate(d, violation)

    def _check_assertions(self, d: _Driven) -> None:
        """Kestra's handleExecutionChangedSLA, before each step: the first violated EXECUTION_ASSERTION acts,
        the others are logged."""
        variables = execution_variables(d.flow, d.ex, d.outputs)

        def ignored(sla: Any, message: str) -> None:
            self._execution_log(d, Level.ERROR, f"Ignoring SLA '{sla.id}' because of the error: {message}")

        violations = assertion_violations(d.flow, lambda text: self.renderer.render_string(text, variables), ignored)
        if violations:
            self._violate(d, violations[0])
            for other in violations[1:]:
                self._log_violation(d, other)

    def _log_violation(self, d: _Driven, violation: Any) -> None:
        if violation.sla.id not in d.violated:   # (Kestra logs it at each step; once says it)
            d.violated.add(violation.sla.id)
            self._execution_log(d, Level.WARN, f"SLA '{violation.sla.id}' violated: {violation.reason}")

    def _violate(self, d: _Driven, violation: Any) -> None:
        """Kestra's processViolation: FAIL or CANCEL end the execution in that state (the last task run not
        ended takes it too, the others are killed); the SLA's labels are added to the execution."""
        ex, sla = d.ex, violation.sla
        self._log_violation(d, violation)
        state = SLA_ENDS.get(sla.behavior)
        if state is not None:
            if state is StateType.FAILED:
                self._execution_log(d, Level.ERROR, f"Execution failed due to SLA '{sla.id}' violated: "
                                                    f"{violation.reason}")
            pending = [tr for tr in ex.task_run_list if not tr.state.is_terminated()]
            for tr in pending:
                self._stop_task_run(d, tr, state if tr is pending[-1] else StateType.KILLED)
            ex.state.transition(state)
            d.dirty = True
        have = {(label.key, label.value) for label in ex.labels}
        if any((label.key, label.value) not in have for label in sla.labels):
            ex.labels = [*ex.labels, *sla.labels]
            d.dirty = True

    def _start_task_run(self, d: _Driven, tr: TaskRun, spec: Any, dispatch: list[tuple[TaskRun, Any]]) -> None:
        ctx = TaskRunContext(d.flow, d.ex, tr, spec, self.renderer, d.logs.append, d.outputs, d.runs)
        try:
            if spec.run_if is not None and not is_truthy(ctx.render_string(spec.run_if, "runIf")):
                tr.state.transition(StateType.SKIPPED)
                return
            if spec.type in FLOWABLES:
                self._open_flowable(d, tr, spec, ctx)
                return
        except KestraNbError as exc:
            ctx.log(Level.ERROR, exc.message)
            tr.state.transition(StateType.RUNNING)
            tr.state.transition(StateType.FAILED)
            return
        cls = self.tasks.resolve(spec.type)
        if cls is None or cls.flowable:  # parsing refuses unknown types; a plugin may have vanished since
            ctx.log(Level.ERROR, f"Task type {spec.type} cannot be run by this engine")
            tr.state.transition(StateType.RUNNING)
            tr.state.transition(StateType.FAILED)
            return
        self._new_attempt(d, tr, cls, dispatch)

    def _new_attempt(self, d: _Driven, tr: TaskRun, cls: Any,
                     dispatch: list[tuple[TaskRun, Any]] | None = None) -> None:
        now = utcnow()
        attempt = State.new(StateType.CREATED, now)
        attempt.transition(StateType.RUNNING, now)
        tr.attempts = [*(tr.attempts or ()), Attempt(attempt)]
        tr.state.transition(StateType.RUNNING, now)
        d.dirty = True
        if dispatch is not None:
            if cls.instant and tr.attempts and d.flow.task(tr.task_id).timeout is None \
                    and time.perf_counter() < self._inline_until:
                self._run_inline(d, tr, cls)
                return
            dispatch.append((tr, cls))
        else:  # from a timer: commit RUNNING first, then start the worker
            self._commit(d)
            d.workers[tr.id] = asyncio.get_running_loop().create_task(self._work(d, tr, cls))

    def _open_flowable(self, d: _Driven, tr: TaskRun, spec: Any, ctx: TaskRunContext) -> None:
        """Evaluate what a flowable decides once (If, Switch, ForEach values), then run it."""
        kind = spec.type
        if kind == PAUSE:
            self._pause(d, tr, spec, ctx)
            return
        if kind == WORKING_DIRECTORY:   # RUNNING once its directory is ready
            self._directory_worker(d, tr, spec, opened=True)
            return
        if kind == IF:
            tr.outputs = {"evaluationResult": is_truthy(ctx.render_string(spec.props.get("condition"), "condition"))}
        elif kind == SWITCH:
            value = ctx.render_string(spec.props.get("value"), "value")
            tr.outputs = {"value": value, "defaults": value not in spec.child_maps.get("cases", {})}
            if tr.outputs["defaults"] and not spec.children.get("defaults"):  # the executor fails it
                ctx.log(Level.WARN, f"No task found: the value `{value}` matches no case and there is no `defaults`")
        elif kind in LOOPS:
            d.loop_values[tr.id] = loop_values(ctx, spec)
        elif kind == LOOP_UNTIL:
            tr.outputs = {"iterationCount": 1}
            d.loop_started[tr.id] = utcnow()
        add_outputs(d.outputs, d.flow, tr, d.runs)
        tr.state.transition(StateType.RUNNING)

    def _directory_worker(self, d: _Driven, tr: TaskRun, spec: Any, *, opened: bool,
                          state: StateType | None = None) -> None:
        """Prepare (`opened`) or close a WorkingDirectory's directory off the step (engine/workingdir.py)."""
        ctx = TaskRunContext(d.flow, d.ex, tr, spec, self.renderer, d.logs.append, d.outputs, d.runs)

        async def work() -> None:
            error: str | None = None
            outputs: dict[str, Any] | None = None
            try:
                if opened:
                    await workingdir.prepare(ctx)
                else:
                    outputs = await workingdir.close(ctx)
            except asyncio.CancelledError:
                raise
            except KestraNbError as exc:
                error = exc.message
            except Exception as exc:  # noqa: BLE001 - a file error: the task run fails saying so
                error = f"{type(exc).__name__}: {exc}"
            d.inbox.put_nowait(_DirectoryDone(tr.id, opened, error, outputs, state))

        d.workers[tr.id] = asyncio.get_running_loop().create_task(work())

    def _directory_done(self, d: _Driven, message: _DirectoryDone) -> None:
        d.workers.pop(message.task_run_id, None)
        tr = d.runs[message.task_run_id]
        if tr.state.is_terminated():   # killed meanwhile
            return
        d.dirty = True
        if message.error is not None:
            self._task_log(d, tr, Level.ERROR, message.error)
        if message.opened:
            if tr.state.current is not StateType.RUNNING:
                tr.state.transition(StateType.RUNNING)
            if message.error is not None:
                tr.state.transition(StateType.FAILED)
            return
        if message.outputs is not None:
            tr.outputs = message.outputs
            add_outputs(d.outputs, d.flow, tr, d.runs)
        state = StateType.FAILED if message.error is not None else (message.state or StateType.SUCCESS)
        spec = d.flow.task(tr.task_id)
        if state is StateType.FAILED and spec.allow_failure:
            state = StateType.SUCCESS if spec.allow_warning else StateType.WARNING
        tr.state.transition(state)

    def _next_iteration(self, d: _Driven, tr: TaskRun) -> bool:
        """A LoopUntil iteration ended: stop when the condition holds or a limit is reached, else wait."""
        if ("iteration", tr.id) in d.timers:
            return False
        spec = d.flow.task(tr.task_id)
        ctx = TaskRunContext(d.flow, d.ex, tr, spec, self.renderer, d.logs.append, d.outputs, d.runs)
        check = spec.props.get("checkFrequency") or {}
        count = int((tr.outputs or {}).get("iterationCount", 1))
        d.dirty = True
        try:
            done = is_truthy(ctx.render_string(spec.props.get("condition"), "condition"))
            max_iterations = int(check.get("maxIterations", 100))
            max_duration = _seconds(check.get("maxDuration", "PT1H"))
            interval = _seconds(check.get("interval", "PT1S"))
        except (KestraNbError, ValueError, TypeError) as exc:
            ctx.log(Level.ERROR, exc.message if isinstance(exc, KestraNbError) else f"Invalid checkFrequency: {exc}")
            tr.state.transition(StateType.FAILED)
            return True
        if done:
            tr.state.transition(StateType.SUCCESS)
            return True
        started = d.loop_started.get(tr.id) or tr.state.start_date
        elapsed = (utcnow() - started).total_seconds()
        # Kestra stops once iterationCount exceeds maxIterations (LoopUntilCaseTest: 3 -> 4 iterations)
        if count > max_iterations or elapsed + interval > max_duration:
            fail = spec.props.get("failOnMaxReached") in (True, "true")
            ctx.log(Level.WARN if not fail else Level.ERROR,
                    f"Max {'iterations' if count > max_iterations else 'duration'} reached after {count} iterations")
            tr.state.transition(StateType.FAILED if fail else StateType.SUCCESS)
            return True
        self._schedule(d, "iteration", tr.id, interval)
        return True

    def _pause(self, d: _Driven, tr: TaskRun, spec: Any, ctx: TaskRunContext) -> None:
        now = utcnow()
        tr.state.transition(StateType.RUNNING, now)
        tr.state.transition(StateType.PAUSED, now)
        if d.ex.state.current is StateType.RUNNING:
            d.ex.state.transition(StateType.PAUSED, now)
        duration = spec.props.get("pauseDuration") or spec.props.get("delay")
        if duration is not None:
            self._schedule(d, "pause", tr.id, _seconds(ctx.render_string(duration, "pauseDuration")))
        if spec.timeout is not None:
            timeout = spec.timeout if not isinstance(spec.timeout, str) else ctx.render_string(spec.timeout, "timeout")
            self._schedule(d, "pause-timeout", tr.id, _seconds(timeout))

    def _end_pause(self, d: _Driven, tr: TaskRun, spec: Any, state: StateType, outputs: dict[str, Any] | None) -> None:
        self._cancel_timers(d, tr.id)
        now = utcnow()
        if outputs is not None:
            tr.outputs = outputs
            add_outputs(d.outputs, d.flow, tr, d.runs)
        if state is StateType.SUCCESS and spec.children.get("tasks"):
            tr.state.transition(StateType.RUNNING, now)  # the deprecated children run after the pause
        else:
            tr.state.transition(StateType.RUNNING, now)
            tr.state.transition(state, now)
        if d.ex.state.current is StateType.PAUSED and not any(
                r.state.current is StateType.PAUSED for r in d.ex.task_run_list):
            d.ex.state.transition(StateType.RUNNING, now)
        d.dirty = True

    def _retry_policy(self, d: _Driven, tr: TaskRun, spec: Any) -> dict[str, Any] | None:
        """The retry of a runnable task run, as Kestra finds it: its task's, else that of the nearest flowable
        it is in that has one, else the flow's (the flow's CREATE_NEW_EXECUTION is applied at the end)."""
        if spec.retry:
            return spec.retry
        parent = tr.parent_task_run_id
        while parent is not None:
            ptr = d.runs[parent]
            retry = d.flow.task(ptr.task_id).retry
            if retry:
                return retry
            parent = ptr.parent_task_run_id
        flow_retry = d.flow.retry
        if flow_retry and not _new_execution(flow_retry):
            return flow_retry
        return None

    def _retry(self, d: _Driven, tr: TaskRun, spec: Any, now: Any) -> bool:
        """Retry a FAILED attempt per its retry policy, if not exhausted: a new attempt of the task run after
        the delay (RETRYING), or with CREATE_NEW_EXECUTION a new execution (this one and the task run RETRIED)."""
        policy = self._retry_policy(d, tr, spec)
        if not policy or not tr.attempts:
            return False
        if _new_execution(policy):
            meta = d.ex.metadata
            delay = retry_delay(policy, meta.attempt_number, meta.original_created_date, now)
            if delay is None:
                return False
            self._retried(d, tr, now)
            self._retry_execution_later(d.flow, d.ex, delay)
            return True
        delay = retry_delay(policy, len(tr.attempts), tr.attempts[0].state.start_date, now)
        if delay is None:
            return False
        tr.state.transition(StateType.RETRYING, now)
        self._schedule(d, "retry", tr.id, delay)
        return True

    def _retried(self, d: _Driven, tr: TaskRun, now: Any) -> None:
        """Kestra's markWithTaskRunAs(RETRIED, parents too): the task run, its parents and the execution end
        RETRIED; task runs still under way elsewhere in it are killed."""
        node: TaskRun | None = tr
        while node is not None:
            if not node.state.is_terminated():
                node.state.transition(StateType.RETRIED, now)
            node = d.runs[node.parent_task_run_id] if node.parent_task_run_id else None
        for other in d.ex.task_run_list:
            if not other.state.is_terminated():
                self._stop_task_run(d, other, StateType.KILLED)
        d.ex.state.transition(StateType.RETRIED, now)

    async def _work(self, d: _Driven, tr: TaskRun, cls: Any) -> None:
        # A task on a worker may run for long (a script, a download): its log lines reach the store and the
        # bus every LOG_FLUSH_SECONDS while it runs, not only at the next state change.
        loop = asyncio.get_running_loop()
        flusher = loop.call_later(LOG_FLUSH_SECONDS, self._flush_logs, d)
        try:
            d.inbox.put_nowait(await self._execute(d, tr, cls))
        finally:
            flusher.cancel()

    def _flush_logs(self, d: _Driven) -> None:
        """Store and publish the pending log lines of a running execution, then look again later."""
        if d.finished or d.ex.id not in self._driven:
            return
        if d.logs:
            logs = d.logs[:]  # the same list stays: running tasks' contexts append to it
            d.logs.clear()
            try:
                self.store.append_logs(logs)
            except Exception:  # the store is unwell: keep the lines for the next commit, which will say so
                d.logs[:0] = logs
                log.exception("Cannot store the logs of execution %s", d.ex.id)
            else:
                self.bus.publish(LogsAppended(d.ex.id, tuple(logs)))
        if any(not w.done() for w in d.workers.values()):
            asyncio.get_running_loop().call_later(LOG_FLUSH_SECONDS, self._flush_logs, d)

    async def _execute(self, d: _Driven, tr: TaskRun, cls: Any) -> _TaskDone:
        """Run one attempt of a runnable task; its outcome as a message for the driver."""
        spec = d.flow.task(tr.task_id)
        ctx = TaskRunContext(d.flow, d.ex, tr, spec, self.renderer, d.logs.append, d.outputs, d.runs)
        ctx.executions = self.executions
        outputs: dict[str, Any] | None = None
        timeout: float | None = None
        try:
            if spec.timeout is not None:
                timeout = _seconds(spec.timeout if not isinstance(spec.timeout, str)
                                   else ctx.render_string(spec.timeout, "timeout"))
                result = await asyncio.wait_for(cls(spec).run(ctx), timeout)
            else:
                result = await cls(spec).run(ctx)
            outputs = None if result is None else to_plain(result)
            state = StateType.SUCCESS
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            ctx.log(Level.ERROR, f"Timeout after {_duration_text(timeout)}")
            state = StateType.FAILED
        except ExitRequested as exit_:
            state = StateType(exit_.state)
        except KestraNbError as exc:
            state = StateType(exc.state) if isinstance(exc, TaskFailure) else StateType.FAILED
            ctx.log(Level.WARN if state is StateType.WARNING else Level.ERROR, exc.message)
            if isinstance(exc, TaskFailure) and exc.outputs is not None:  # kept on the failed task run
                outputs = to_plain(exc.outputs)
        except Exception as exc:
            ctx.log(Level.ERROR, f"{type(exc).__name__}: {exc}")
            state = StateType.FAILED
        return _TaskDone(tr.id, state, outputs)

    def _run_inline(self, d: _Driven, tr: TaskRun, cls: Any) -> None:
        """Run an instant task within the step; one that awaits after all finishes on a worker."""
        coro = self._execute(d, tr, cls)
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            self._task_done(d, stop.value)
            return
        d.workers[tr.id] = asyncio.get_running_loop().create_task(self._finish(d, coro, yielded))

    @staticmethod
    async def _finish(d: _Driven, coro: Any, yielded: Any) -> None:
        """Drive a coroutine that was started by hand and suspended (a plugin marked instant by mistake)."""
        try:
            while True:
                if yielded is None:  # a bare yield (asyncio.sleep(0))
                    await asyncio.sleep(0)
                else:  # wait without awaiting the future itself: the coroutine reads its result
                    await asyncio.wait([yielded])
                yielded = coro.send(None)
        except StopIteration as stop:
            d.inbox.put_nowait(stop.value)
        except asyncio.CancelledError:
            coro.close()
            raise

    def _end(self, d: _Driven, state: StateType) -> None:
        ex, flow = d.ex, d.flow
        if WORKING_DIRECTORY in flow.types():   # the directories a kill or a failure left (closing removes its own)
            storage = self.store.storage
            loop = asyncio.get_running_loop()
            for tr in ex.task_run_list:
                if flow.task(tr.task_id).type == WORKING_DIRECTORY:
                    loop.run_in_executor(None, shutil.rmtree, workingdir.shared_dir(storage, tr.id), True)
        if flow.outputs:
            variables = execution_variables(flow, ex, d.outputs)
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
        retry = flow.retry
        if state is StateType.FAILED and retry and _new_execution(retry):
            now = utcnow()
            delay = retry_delay(retry, ex.metadata.attempt_number, ex.metadata.original_created_date, now)
            if delay is not None:  # this one ends RETRIED, a new execution takes the next attempt
                ex.state.transition(StateType.RETRIED, now)
                self._retry_execution_later(flow, ex, delay)

    def _retry_execution_later(self, flow: Flow, source: Execution, delay: float) -> None:
        """The next attempt of a CREATE_NEW_EXECUTION retry: a new execution of the same revision and inputs,
        stored at once as CREATED with the retry's date as its scheduleDate, so that it starts then even if
        this process stops meanwhile (recovery starts a scheduled execution at its date)."""
        ex = self._copy_execution(source, new_id())
        now = utcnow()
        ex.state = State.new(StateType.CREATED, now)
        ex.task_run_list = []
        ex.outputs = None
        ex.schedule_date = now + timedelta(seconds=delay)
        asyncio.get_running_loop().create_task(self.executions.start(flow, ex))

    def _task_log(self, d: _Driven, tr: TaskRun, level: Level, message: str) -> None:
        d.logs.append(LogEntry(
            namespace=tr.namespace, flow_id=tr.flow_id, timestamp=utcnow(), level=level, message=message,
            execution_id=tr.execution_id, task_id=tr.task_id, task_run_id=tr.id,
            attempt_number=len(tr.attempts) - 1 if tr.attempts else 0, tenant_id=tr.tenant_id))

    def _execution_log(self, d: _Driven, level: Level, message: str) -> None:
        ex = d.ex
        d.logs.append(LogEntry(namespace=ex.namespace, flow_id=ex.flow_id, timestamp=utcnow(), level=level,
                               message=message, execution_id=ex.id, tenant_id=ex.tenant_id))

    def _commit(self, d: _Driven) -> None:
        if not d.dirty and not d.logs and not d.commands:
            return
        parts = d.json.update(d.ex)
        logs = d.logs[:]  # the same list stays: running tasks' contexts append to it
        commands = d.commands
        try:
            self.store.save_execution(d.ex, logs, parts=parts, commands=commands)
        except StoreError:
            d.json = ExecutionJson()   # what the store holds is not known: the next commit writes it all
            raise
        del d.logs[:len(logs)]   # (kept if the store refused them: the next commit tries again)
        d.dirty = False
        if commands:   # (kept, as the logs, if the store refused them)
            d.commands = []
            self._applying.difference_update(commands)
        if self.bus.listened(d.ex.id):
            self.bus.publish(ExecutionUpdated(d.ex.id, d.ex.state.current, parts.detach(), d.finished,
                                              started_by(d.ex)))
        if logs:
            self.bus.publish(LogsAppended(d.ex.id, tuple(logs)))


def loop_values(ctx: TaskRunContext, spec: Any) -> list[str]:
    """A ForEach's values: rendered, as strings (maps and lists as JSON), distinct, in order."""
    prop = "values" if spec.type == FOREACH else "value"
    raw = spec.props.get(prop)
    if isinstance(raw, str):
        text = ctx.render_string(raw, prop)
        try:
            items = json.loads(text)
        except ValueError:
            raise TaskFailure(f"`{prop}` must be a list or render to a JSON array, got: {text}") from None
        if not isinstance(items, list):
            raise TaskFailure(f"`{prop}` must be a list or render to a JSON array, got: {text}")
    elif isinstance(raw, list):
        items = [ctx.render(item, prop) for item in raw]
    else:
        raise TaskFailure(f"`{prop}` must be a list or a JSON array, got a {type(raw).__name__}")
    nulls = sum(1 for item in items if item is None)
    if nulls:
        raise TaskFailure(f"Found '{nulls}' null values on Each, with values={json.dumps(items)}")
    out: dict[str, None] = {}
    for item in items:
        out.setdefault(item if isinstance(item, str) else
                       json.dumps(item, separators=(",", ":"), ensure_ascii=False), None)
    return list(out)


def retry_delay(policy: Mapping[str, Any], attempts: int, first: Any, now: Any) -> float | None:
    """Seconds before attempt `attempts + 1` under a Kestra retry policy, or None when it is exhausted."""
    max_attempt = policy.get("maxAttempt")
    max_duration = policy.get("maxDuration")
    if max_attempt is None and max_duration is None:
        return None
    if max_attempt is not None and attempts >= int(max_attempt):
        return None
    kind = str(policy.get("type", "constant")).lower()
    if kind == "random":
        delay = random.uniform(_seconds(policy.get("minInterval")), _seconds(policy.get("maxInterval")))
    else:
        delay = _seconds(policy.get("interval"))
        if kind == "exponential":
            delay *= float(policy.get("delayFactor") or 2) ** (attempts - 1)
            if policy.get("maxInterval") is not None:
                delay = min(delay, _seconds(policy.get("maxInterval")))
    if max_duration is not None and (now - first).total_seconds() + delay > _seconds(max_duration):
        return None
    return delay


def _new_execution(policy: Mapping[str, Any]) -> bool:
    """A retry policy whose next attempt is a new execution (else the failed task run is tried again)."""
    return str(policy.get("behavior", "RETRY_FAILED_TASK")) == "CREATE_NEW_EXECUTION"


def _seconds(value: Any) -> float:
    """A duration property (timedelta, ISO text or seconds) in seconds."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return parse_duration(str(value)).total_seconds()


def _duration_text(seconds: float | None) -> str:
    from ..model.jsonfmt import format_duration

    return format_duration(seconds or 0)


def _error_branch_ids(flow: Flow) -> set[str]:
    """Task ids that run again on a restart: `errors`, `finally` and `afterExecution` branches, at any depth."""
    ids = {t.id for t in (*flow.errors, *flow.finally_, *flow.after_execution)}
    for task in flow.walk():
        for key in ("errors", "finally"):
            ids.update(t.id for t in task.children.get(key, []))
    out = set(ids)
    for task_id in ids:
        out.update(t.id for t in _walk_spec(flow.task(task_id)))
    return out


def _walk_spec(task: Any) -> Iterable[Any]:
    yield task
    for child in task.all_children():
        yield from _walk_spec(child)


def _replayed_task_runs(source: Execution, task_run_id: str, execution_id: str, now: Any) -> list[TaskRun]:
    """Task runs created before `task_run_id` (copied, new ids), its parents reopened, the rest dropped."""
    runs = source.task_run_list
    index = next((i for i, tr in enumerate(runs) if tr.id == task_run_id), None)
    if index is None:
        raise NotFoundError(f"Task run '{task_run_id}' not found in execution '{source.id}'")
    by_id = {tr.id: tr for tr in runs}
    parents: set[str] = set()
    node = by_id[task_run_id]
    while node.parent_task_run_id is not None:
        parents.add(node.parent_task_run_id)
        node = by_id[node.parent_task_run_id]
    ids: dict[str, str] = {}
    copied: list[TaskRun] = []
    for tr in runs[:index]:
        if tr.parent_task_run_id is not None and tr.parent_task_run_id not in ids:
            continue  # a child of something not copied
        copy = TaskRun(
            id=new_id(), execution_id=execution_id, namespace=tr.namespace, flow_id=tr.flow_id, task_id=tr.task_id,
            state=tr.state.copy(), parent_task_run_id=ids.get(tr.parent_task_run_id) if tr.parent_task_run_id else None,
            value=tr.value, attempts=[Attempt(a.state.copy(), a.worker_id, a.log_file) for a in tr.attempts]
            if tr.attempts is not None else None, outputs=tr.outputs, iteration=tr.iteration, dynamic=tr.dynamic,
            tenant_id=tr.tenant_id)
        if tr.id in parents:
            copy.state.transition(StateType.RESTARTED, now)
        ids[tr.id] = copy.id
        copied.append(copy)
    return copied


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
