"""The handle through which a task starts and follows other executions (Subflow, ForEachItem).

A running task sees it as `ctx.executions`; it is the only door from a task into the engine:

* `load_flow(namespace, flow_id, revision)` -> (Flow, revision), NotFoundError if missing;
* `trigger(task_id, task_type, parent, task_run_id, **extra)` -> the child's `trigger` (spec §8);
* `create(flow, revision, inputs, labels, trigger=...)` -> a CREATED execution (inputs typed and checked);
* `await start(flow, execution)` stores it and starts driving it (or schedules it at its `schedule_date`);
* `await wait(execution_id)` -> the execution once finished;
* `render(flow, execution, value)` renders `value` in that execution's context (a Subflow's `outputs`, in
  the child's, once it has ended);
* `running_outputs(execution_id, task_run_id, outputs)` stores outputs of a task run still running;
* `kill(execution_id)` asks it to stop (does nothing when it has ended or the engine is closing);
* `kill_scheduled_children(parent_id)` kills the children not started yet (the engine's kill cascade);
* `children(parent_execution_id, task_run_id=None)` the executions a task run of that execution created,
  oldest first (what a recovered Subflow task looks up instead of starting a second child).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..model.execution import CORRELATION_ID, Execution, ExecutionTrigger
from ..model.flow import Flow
from ..model.state import StateType, utcnow
from .context import add_outputs, execution_variables
from .events import ExecutionUpdated, started_by

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Engine

SUBFLOW = "io.kestra.plugin.core.flow.Subflow"


class Executions:
    """Create, start, wait for and kill executions on behalf of a task (one per engine)."""

    __slots__ = ("_engine", "_scheduled")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._scheduled: dict[str, asyncio.TimerHandle] = {}

    def load_flow(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[Flow, int]:
        return self._engine.load_flow(namespace, flow_id, revision)

    def create(self, flow: Flow, revision: int, inputs: Mapping[str, Any] | None, labels: Iterable[Any],
               *, trigger: ExecutionTrigger | None = None) -> Execution:
        ex = self._engine.new_execution(flow, revision, inputs, list(labels))
        ex.trigger = trigger
        return ex

    async def start(self, flow: Flow, ex: Execution) -> Execution:
        delay = (ex.schedule_date - utcnow()).total_seconds() if ex.schedule_date is not None else 0.0
        if delay <= 0:
            return await self._engine.start(flow, ex)
        self._engine.store.save_execution(ex)  # CREATED until its scheduleDate (recovery knows such ones)
        loop = asyncio.get_running_loop()

        def go() -> None:
            if self._scheduled.pop(ex.id, None) is not None and not self._engine._closed:
                loop.create_task(self._engine.start(flow, ex))
        self._scheduled[ex.id] = loop.call_later(delay, go)
        return ex

    async def wait(self, execution_id: str) -> Execution:
        """The execution once finished: driven here, stored as ended, or driven later (scheduled, recovered)."""
        engine = self._engine
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def listener(event: Any) -> None:
            if isinstance(event, ExecutionUpdated) and event.finished and not done.done():
                done.set_result(None)

        unsubscribe = engine.subscribe(execution_id, listener)
        try:
            if execution_id in engine._driven:
                return await engine.wait_async(execution_id)
            ex = engine._stored(execution_id)
            if ex.state.current.is_terminated():
                return ex
            if execution_id not in self._scheduled and execution_id not in engine.recovered:
                raise engine._elsewhere(ex)
            await done
            return engine._stored(execution_id)
        finally:
            unsubscribe()

    def render(self, flow: Flow, ex: Execution, value: Any) -> Any:
        """`value` rendered with the variables of `ex` (its inputs, its task runs' outputs, its labels…)."""
        return self._engine.renderer.render_value(value, execution_variables(flow, ex))

    @staticmethod
    def trigger(task_id: str, task_type: str, parent: Execution, task_run_id: str, **extra: Any) -> ExecutionTrigger:
        """A child's `trigger` (spec §8): the parent execution and the task run creating it."""
        return subflow_trigger(task_id, task_type, parent, task_run_id, **extra)

    def running_outputs(self, execution_id: str, task_run_id: str, outputs: Mapping[str, Any]) -> None:
        """Store outputs of a task run still RUNNING (a Subflow's `executionId`, seen while it waits)."""
        d = self._engine._driven.get(execution_id)
        tr = d.runs.get(task_run_id) if d is not None else None
        if tr is None or tr.state.current is not StateType.RUNNING:
            return
        tr.outputs = dict(outputs)
        add_outputs(d.outputs, d.flow, tr, d.runs)
        d.dirty = True
        self._engine._commit(d)

    def kill(self, execution_id: str) -> None:
        """Stop the execution if it is still under way here (the kill cascade of a waiting Subflow)."""
        engine = self._engine
        if engine._closed:  # closing the engine is no kill: children stay as stored, for recovery
            return
        timer = self._scheduled.pop(execution_id, None)
        if timer is not None:  # not started yet: it ends KILLED without running
            timer.cancel()
            ex = engine._stored(execution_id)
            ex.state.transition(StateType.KILLED)
            from ..model.jsonfmt import execution_json
            parts = execution_json(ex)
            engine.store.save_execution(ex, parts=parts)
            engine.bus.publish(ExecutionUpdated(ex.id, ex.state.current, parts.detach(), True, started_by(ex)))
            return
        try:
            asyncio.get_running_loop().create_task(engine.kill_async(execution_id)).add_done_callback(
                _ignore_ended)
        except RuntimeError:  # no loop (never the case for a running task): nothing to cancel here
            pass

    def kill_scheduled_children(self, parent_execution_id: str) -> None:
        """Kill the children of `parent_execution_id` still waiting for their `scheduleDate` (kill cascade)."""
        for execution_id in list(self._scheduled):
            ex = self._engine.store.get_execution(execution_id)
            variables = ex.trigger.variables if ex is not None and ex.trigger is not None else None
            if variables and variables.get("executionId") == parent_execution_id:
                self.kill(execution_id)

    def children(self, parent: Execution, task_run_id: str | None = None, *, namespace: str | None = None,
                 flow_id: str | None = None) -> list[Execution]:
        """Executions created by `parent` (by one of its task runs when given), oldest first."""
        correlation = next((lb.value for lb in parent.labels if lb.key == CORRELATION_ID), parent.id)
        out: list[Execution] = []
        page = 1
        while True:
            found, total = self._engine.store.search_executions(
                namespace=namespace, namespace_prefix=False, flow_id=flow_id, labels={CORRELATION_ID: correlation},
                sort=[("state.startDate", True)], page=page, size=500, tenant=parent.tenant_id or "main")
            for ex in found:
                variables = ex.trigger.variables if ex.trigger is not None else None
                if not variables or variables.get("executionId") != parent.id:
                    continue
                if task_run_id is not None and variables.get("taskRunId") != task_run_id:
                    continue
                out.append(ex)
            if page * 500 >= total:
                return out
            page += 1


def _ignore_ended(task: asyncio.Task[None]) -> None:
    """A cascade kill of an execution that had ended meanwhile (IllegalStateError) is no error."""
    if not task.cancelled():
        task.exception()


def subflow_trigger(task_id: str, task_type: str, parent: Execution, task_run_id: str,
                    **extra: Any) -> ExecutionTrigger:
    """The child's `trigger` (spec §8): the parent execution and the task run that created it."""
    variables: dict[str, Any] = {"executionId": parent.id, "namespace": parent.namespace,
                                 "flowId": parent.flow_id, "flowRevision": parent.flow_revision,
                                 "taskRunId": task_run_id, "taskId": task_id, **extra}
    return ExecutionTrigger(task_id, task_type, variables)
