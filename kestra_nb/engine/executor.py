"""The executor: a pure function from (flow, execution) to the next actions. No I/O, no clock.

It reads nothing but the execution (plus the rendered ForEach values, passed in as data), so any
process can pick up a stored execution and carry on. Order (spec §8): `tasks` in sequence; on a
failure, `errors`; then `finally`; then the final state (the runner renders the flow outputs
there); then `afterExecution`, whose failures never change it. Flowable tasks resolve their
children the same way, in the scope (parent task run, loop value, iteration) of their own run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

from ..model.execution import Execution, TaskRun
from ..model.flow import Flow, TaskSpec
from ..model.state import CREATED, StateType

FLOW = "io.kestra.plugin.core.flow."
SEQUENTIAL, PARALLEL, IF, SWITCH = FLOW + "Sequential", FLOW + "Parallel", FLOW + "If", FLOW + "Switch"
FOREACH, EACH_SEQUENTIAL, EACH_PARALLEL = FLOW + "ForEach", FLOW + "EachSequential", FLOW + "EachParallel"
DAG, LOOP_UNTIL, ALLOW_FAILURE, PAUSE = FLOW + "Dag", FLOW + "LoopUntil", FLOW + "AllowFailure", FLOW + "Pause"
EXIT = "io.kestra.plugin.core.execution.Exit"
LOOPS = frozenset({FOREACH, EACH_SEQUENTIAL, EACH_PARALLEL})
FLOWABLES = frozenset({SEQUENTIAL, PARALLEL, IF, SWITCH, DAG, LOOP_UNTIL, ALLOW_FAILURE, PAUSE, *LOOPS})


@dataclass(frozen=True, slots=True)
class StartExecution:
    """Move a CREATED (or RESTARTED) execution to RUNNING."""


@dataclass(frozen=True, slots=True)
class CreateTaskRun:
    """Create the task run of `task` in the scope (parent task run, loop value, iteration)."""

    task: TaskSpec
    parent_task_run_id: str | None = None
    value: str | None = None
    iteration: int | None = None


@dataclass(frozen=True, slots=True)
class StartTaskRun:
    """Start a CREATED task run: evaluate runIf, then run it (runnable) or open it (flowable)."""

    task_run_id: str
    task: TaskSpec


@dataclass(frozen=True, slots=True)
class EndTaskRun:
    """Every child of a flowable task run has ended: give it its derived state."""

    task_run_id: str
    state: StateType


@dataclass(frozen=True, slots=True)
class NextIteration:
    """An iteration of a LoopUntil ended: evaluate its condition, then end it or loop again."""

    task_run_id: str


@dataclass(frozen=True, slots=True)
class KillTaskRun:
    """Stop a task run that has not ended (the execution is KILLING, or an Exit ended it)."""

    task_run_id: str


@dataclass(frozen=True, slots=True)
class EndExecution:
    """Give the execution its final state (the runner computes flow outputs first)."""

    state: StateType


Action = Union[StartExecution, CreateTaskRun, StartTaskRun, EndTaskRun, NextIteration, KillTaskRun, EndExecution]
Outcome = tuple[list[Action], Union[StateType, None]]
_FAILED = (StateType.FAILED, StateType.KILLED)
_WAIT: Outcome = ([], None)


def final_state(runs: list[TaskRun]) -> StateType:
    """Kestra's guessFinalState: KILLED, else FAILED, else WARNING, else PAUSED, else SUCCESS."""
    states = {tr.state.current for tr in runs}
    for state in (StateType.KILLED, StateType.FAILED, StateType.WARNING, StateType.PAUSED):
        if state in states:
            return state
    if StateType.CANCELLED in states:
        return StateType.CANCELLED
    return StateType.SUCCESS


class _View:
    """The execution indexed once per call: task runs by scope."""

    __slots__ = ("flow", "ex", "scopes", "loop_values")

    def __init__(self, flow: Flow, ex: Execution, loop_values: Mapping[str, list[str]]) -> None:
        self.flow = flow
        self.ex = ex
        self.loop_values = loop_values
        scopes: dict[tuple[str | None, str | None, int | None], dict[str, TaskRun]] = {}
        for tr in ex.task_run_list:
            scopes.setdefault((tr.parent_task_run_id, tr.value, tr.iteration), {})[tr.task_id] = tr
        self.scopes = scopes

    def scope(self, parent: str | None, value: str | None, iteration: int | None = None) -> dict[str, TaskRun]:
        return self.scopes.get((parent, value, iteration), {})

    # ---------------------------------------------------------------------------------- sequences

    def advance(self, task: TaskSpec, tr: TaskRun | None, parent: str | None, value: str | None,
                iteration: int | None = None) -> Outcome:
        """Next actions of one task in a scope, or (no actions, its state) once it has ended."""
        if tr is None:
            return [CreateTaskRun(task, parent, value, iteration)], None
        current = tr.state.current
        if current in CREATED:
            return [StartTaskRun(tr.id, task)], None
        if current.is_terminated():
            return [], current
        if current is StateType.RUNNING and task.type in FLOWABLES:
            actions, outcome = self.flowable(task, tr)
            return ([EndTaskRun(tr.id, outcome)], None) if outcome is not None else (actions, None)
        return _WAIT

    def sequence(self, tasks: list[TaskSpec], parent: str | None, value: str | None,
                 iteration: int | None = None) -> Outcome:
        """Tasks one after the other; stops at the first failure."""
        runs = self.scope(parent, value, iteration)
        for task in tasks:
            if task.disabled:
                continue
            actions, state = self.advance(task, runs.get(task.id), parent, value, iteration)
            if state is None:
                return actions, None
            if state in _FAILED:
                return [], StateType.FAILED
        return [], StateType.SUCCESS

    def together(self, tasks: list[tuple[TaskSpec, list[str]]], parent: str, value: str | None,
                 limit: int) -> Outcome:
        """Tasks at the same time, each once the tasks it depends on have succeeded (Parallel: none;
        Dag: `dependsOn`), at most `limit` running (0: no limit); nothing new starts after a failure."""
        runs = self.scope(parent, value)
        active = sum(1 for r in runs.values() if not r.state.is_terminated())
        failed = any(r.state.current in _FAILED for r in runs.values())
        actions: list[Action] = []
        pending = False
        for task, depends in tasks:
            if task.disabled:
                continue
            current = runs.get(task.id)
            if current is None:
                if failed:
                    continue
                deps = [runs.get(d) for d in depends]
                if any(d is not None and d.state.current in _FAILED for d in deps):
                    continue
                if any(d is None or not d.state.is_terminated() for d in deps):
                    pending = True
                    continue
                if limit and active >= limit:
                    pending = True
                    continue
                active += 1
            step, state = self.advance(task, current, parent, value)
            if state is None:
                pending = True
                actions.extend(step)
        if pending or actions:
            return actions, None
        return [], StateType.FAILED if failed else StateType.SUCCESS

    def block(self, main: Outcome, errors: list[TaskSpec], finally_: list[TaskSpec], parent: str | None,
              value: str | None, ids: set[str]) -> Outcome:
        """A main part with `errors` (after a failure) and `finally` (always), then its final state."""
        actions, outcome = main
        if outcome is None:
            return actions, None
        if outcome is StateType.FAILED and errors:
            actions, errors_outcome = self.sequence(errors, parent, value)
            if errors_outcome is None:
                return actions, None
        if finally_:
            actions, finally_outcome = self.sequence(finally_, parent, value)
            if finally_outcome is None:
                return actions, None
        runs = self.scope(parent, value)
        block = [tr for task_id, tr in runs.items() if task_id in ids]
        state = final_state(block)
        return [], StateType.FAILED if outcome is StateType.FAILED and state is StateType.SUCCESS else state

    # ---------------------------------------------------------------------------------- flowables

    def flowable(self, task: TaskSpec, tr: TaskRun) -> Outcome:
        """Resolve a RUNNING flowable task run."""
        kind = task.type
        errors = task.children.get("errors", [])
        finally_ = task.children.get("finally", [])
        value = tr.value
        if kind in LOOPS:
            return self.loop(task, tr, errors, finally_)
        if kind == LOOP_UNTIL:
            return self.loop_until(task, tr, errors, finally_)
        if kind == DAG:
            main = self.together(task.dag, tr.id, value, _int(task.props.get("concurrent")))
            branch = [t for t, _ in task.dag]
        else:
            if kind == IF:
                taken = (tr.outputs or {}).get("evaluationResult")
                branch = task.children.get("then" if taken else "else", [])
            elif kind == SWITCH:
                outputs = tr.outputs or {}
                cases = task.child_maps.get("cases", {})
                branch = task.children.get("defaults", []) if outputs.get("defaults") else cases.get(
                    str(outputs.get("value")), [])
            else:  # Sequential, Parallel, AllowFailure, Pause (deprecated children)
                branch = task.children.get("tasks", [])
            if kind == PARALLEL:
                main = self.together([(t, []) for t in branch], tr.id, value, _int(task.props.get("concurrent")))
            else:
                main = self.sequence(branch, tr.id, value)
        ids = {t.id for t in (*branch, *errors, *finally_)}
        actions, outcome = self.block(main, errors, finally_, tr.id, value, ids)
        if kind == ALLOW_FAILURE and outcome is StateType.FAILED:
            outcome = StateType.WARNING
        return actions, outcome

    def loop(self, task: TaskSpec, tr: TaskRun, errors: list[TaskSpec], finally_: list[TaskSpec]) -> Outcome:
        """ForEach (and EachSequential/EachParallel): the children once per value, `limit` values at once.

        Values start in order; after a failure no new value starts, the started ones finish.
        """
        values = self.loop_values.get(tr.id, [])
        if task.type == FOREACH:
            limit = _int(task.props.get("concurrencyLimit"), 1)
        elif task.type == EACH_SEQUENTIAL:
            limit = 1
        else:
            limit = _int(task.props.get("concurrent"))
        children = task.children.get("tasks", [])
        actions: list[Action] = []
        active, failed, pending = 0, False, False
        ended: list[TaskRun] = []
        for v in values:
            runs = self.scope(tr.id, v)
            if not runs:
                if failed:
                    continue
                if limit and active >= limit:
                    pending = True
                    continue
            step, state = self.sequence(children, tr.id, v)
            if state is None:
                active += 1
                pending = True
                actions.extend(step)
            else:
                ended.extend(runs.values())
                failed = failed or state is StateType.FAILED
        if pending:
            return actions, None
        ids = {t.id for t in (*errors, *finally_)}
        actions, state = self.block(([], StateType.FAILED if failed else StateType.SUCCESS),
                                    errors, finally_, tr.id, tr.value, ids)
        if state is None:
            return actions, None
        return [], _worst(state, final_state(ended))

    def loop_until(self, task: TaskSpec, tr: TaskRun, errors: list[TaskSpec], finally_: list[TaskSpec]) -> Outcome:
        """LoopUntil: iteration n runs the children (task runs with iteration n); then NextIteration.

        The runner evaluates the condition and ends the task run, or waits and counts the next iteration.
        """
        iteration = int((tr.outputs or {}).get("iterationCount", 1))
        actions, state = self.sequence(task.children.get("tasks", []), tr.id, tr.value, iteration)
        if state is None:
            return actions, None
        if state is StateType.SUCCESS:
            return [NextIteration(tr.id)], None
        ids = {t.id for t in (*errors, *finally_)}
        return self.block(([], StateType.FAILED), errors, finally_, tr.id, tr.value, ids)


def _int(value: object, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def next_actions(flow: Flow, ex: Execution, loop_values: Mapping[str, list[str]] | None = None) -> list[Action]:
    """What to do next for this execution; empty when there is nothing to do until something ends."""
    current = ex.state.current
    if current in CREATED:
        return [StartExecution()]
    view = _View(flow, ex, loop_values or {})
    if current is StateType.KILLING:
        pending: list[Action] = [KillTaskRun(tr.id) for tr in ex.task_run_list if not tr.state.is_terminated()]
        return pending or [EndExecution(StateType.KILLED)]
    if current in (StateType.RUNNING, StateType.PAUSED):
        if current is StateType.PAUSED and not any(tr.state.current is StateType.PAUSED for tr in ex.task_run_list):
            return []  # paused by hand: nothing new starts until it is resumed
        exited = _exit_state(flow, ex)
        if exited is not None:
            pending = [KillTaskRun(tr.id) for tr in ex.task_run_list if not tr.state.is_terminated()]
            return pending or [EndExecution(exited)]
        ids = {t.id for t in (*flow.tasks, *flow.errors, *flow.finally_)}
        actions, outcome = view.block(view.sequence(flow.tasks, None, None), flow.errors, flow.finally_, None, None, ids)
        if outcome is not None:
            return [EndExecution(outcome)]
        return actions
    if current.is_terminated() and current is not StateType.KILLED and flow.after_execution:
        actions, _ = view.sequence(flow.after_execution, None, None)
        return actions
    return []


def _exit_state(flow: Flow, ex: Execution) -> StateType | None:
    """The state an ended execution.Exit task run (or a Pause with behavior CANCEL) asks for, if any."""
    types = flow.types()
    if EXIT not in types and PAUSE not in types:
        return None
    for tr in ex.task_run_list:
        current = tr.state.current
        if current.is_terminated():
            kind = flow.task(tr.task_id).type
            if kind == EXIT or (kind == PAUSE and current is StateType.CANCELLED):
                return current
    return None


def _worst(*states: StateType) -> StateType:
    for state in (StateType.KILLED, StateType.FAILED, StateType.WARNING, StateType.PAUSED, StateType.CANCELLED):
        if state in states:
            return state
    return StateType.SUCCESS


def is_finished(flow: Flow, ex: Execution, loop_values: Mapping[str, list[str]] | None = None) -> bool:
    """Terminal, every task run terminal and nothing left to run (what `wait=true` waits for)."""
    if not ex.state.current.is_terminated():
        return False
    if any(not tr.state.current.is_terminated() for tr in ex.task_run_list):
        return False
    return not next_actions(flow, ex, loop_values)

