"""The executor: a pure function from (flow, execution) to the next actions. No I/O, no clock, no state.

Because it reads nothing but the execution, any process can pick up a stored execution and carry on.
Order (spec §8): `tasks` in sequence; on a failure, `errors`; then `finally`; then the final state
(the runner renders the flow outputs there); then `afterExecution`, whose failures never change it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

from ..model.execution import Execution, TaskRun
from ..model.flow import Flow, TaskSpec
from ..model.state import CREATED, StateType


@dataclass(frozen=True, slots=True)
class StartExecution:
    """Move a CREATED execution to RUNNING."""


@dataclass(frozen=True, slots=True)
class CreateTaskRun:
    """Create the task run of `task` (in scope `parent_task_run_id`/`value`)."""

    task: TaskSpec
    parent_task_run_id: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class StartTaskRun:
    """Start a CREATED task run: evaluate runIf, then run it on a worker."""

    task_run_id: str
    task: TaskSpec


@dataclass(frozen=True, slots=True)
class KillTaskRun:
    """Stop a task run that has not ended (the execution is KILLING)."""

    task_run_id: str


@dataclass(frozen=True, slots=True)
class EndExecution:
    """Give the execution its final state (the runner computes flow outputs first)."""

    state: StateType


Action = Union[StartExecution, CreateTaskRun, StartTaskRun, KillTaskRun, EndExecution]

_FAILED = (StateType.FAILED, StateType.KILLED)


def final_state(runs: Iterable[TaskRun]) -> StateType:
    """Kestra's guessFinalState: KILLED, else FAILED, else WARNING, else PAUSED, else SUCCESS."""
    states = {tr.state.current for tr in runs}
    for state in (StateType.KILLED, StateType.FAILED, StateType.WARNING, StateType.PAUSED):
        if state in states:
            return state
    return StateType.SUCCESS


def _scope(ex: Execution, parent_task_run_id: str | None, value: str | None) -> dict[str, TaskRun]:
    return {tr.task_id: tr for tr in ex.task_run_list
            if tr.parent_task_run_id == parent_task_run_id and tr.value == value}


def _sequence(tasks: list[TaskSpec], runs: dict[str, TaskRun], parent: str | None,
              value: str | None) -> tuple[list[Action], StateType | None]:
    """Next actions of a sequence of tasks, or (no actions, its outcome) once it has ended."""
    for task in tasks:
        if task.disabled:
            continue
        tr = runs.get(task.id)
        if tr is None:
            return [CreateTaskRun(task, parent, value)], None
        current = tr.state.current
        if current in CREATED:
            return [StartTaskRun(tr.id, task)], None
        if not current.is_terminated():
            return [], None
        if current in _FAILED:
            return [], StateType.FAILED
    return [], StateType.SUCCESS


def resolve_scope(tasks: list[TaskSpec], errors: list[TaskSpec], finally_: list[TaskSpec],
                  runs: dict[str, TaskRun], parent: str | None = None,
                  value: str | None = None) -> tuple[list[Action], StateType | None]:
    """Next actions of a block with `errors` and `finally`, or its final state once it has ended."""
    actions, outcome = _sequence(tasks, runs, parent, value)
    if outcome is None:
        return actions, None
    if outcome is StateType.FAILED and errors:
        actions, errors_outcome = _sequence(errors, runs, parent, value)
        if errors_outcome is None:
            return actions, None
    if finally_:
        actions, finally_outcome = _sequence(finally_, runs, parent, value)
        if finally_outcome is None:
            return actions, None
    block = {t.id for t in (*tasks, *errors, *finally_)}
    return [], final_state(tr for task_id, tr in runs.items() if task_id in block)


def next_actions(flow: Flow, ex: Execution) -> list[Action]:
    """What to do next for this execution; empty when there is nothing to do until something ends."""
    current = ex.state.current
    if current in CREATED:
        return [StartExecution()]
    if current is StateType.KILLING:
        pending = [KillTaskRun(tr.id) for tr in ex.task_run_list if not tr.state.is_terminated()]
        return pending or [EndExecution(StateType.KILLED)]
    if current is StateType.RUNNING:
        main = {t.id for t in (*flow.tasks, *flow.errors, *flow.finally_)}
        runs = {k: v for k, v in _scope(ex, None, None).items() if k in main}
        actions, outcome = resolve_scope(flow.tasks, flow.errors, flow.finally_, runs)
        if outcome is not None:
            return [EndExecution(outcome)]
        return actions
    if current.is_terminated() and current is not StateType.KILLED and flow.after_execution:
        after = {t.id for t in flow.after_execution}
        runs = {k: v for k, v in _scope(ex, None, None).items() if k in after}
        actions, _ = _sequence(flow.after_execution, runs, None, None)
        return actions
    return []


def is_finished(flow: Flow, ex: Execution) -> bool:
    """Terminal, every task run terminal and nothing left to run (what `wait=true` waits for)."""
    if not ex.state.current.is_terminated():
        return False
    if any(not tr.state.current.is_terminated() for tr in ex.task_run_list):
        return False
    return not next_actions(flow, ex)
