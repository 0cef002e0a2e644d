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
WORKING_DIRECTORY = FLOW + "WorkingDirectory"   # a Sequential here; the runner prepares and closes its directory
FOREACH_ITEM = FLOW + "ForEachItem"   # its `tasks` are its parts: `<id>_split`, `<id>_items`, `<id>_merge`
EXIT = "io.kestra.plugin.core.execution.Exit"
LOOPS = frozenset({FOREACH, EACH_SEQUENTIAL, EACH_PARALLEL})
FLOWABLES = frozenset({SEQUENTIAL, PARALLEL, IF, SWITCH, DAG, LOOP_UNTIL, ALLOW_FAILURE, PAUSE, WORKING_DIRECTORY,
                       FOREACH_ITEM, *LOOPS})


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
    return _final_of({tr.state.current for tr in runs})


def _final_of(states: set[StateType]) -> StateType:
    for state in (StateType.KILLED, StateType.FAILED, StateType.WARNING, StateType.PAUSED):
        if state in states:
            return state
    if StateType.CANCELLED in states:
        return StateType.CANCELLED
    return StateType.SUCCESS


Scope = tuple[Union[str, None], Union[str, None], Union[int, None]]


class _Loop:
    """What a ForEach task run has done so far: values start in order, so the started ones are a prefix."""

    __slots__ = ("started", "active", "failed", "ended")

    def __init__(self) -> None:
        self.started = 0                  # values[:started] have been started (or ended at once)
        self.active: list[str] = []       # started values whose children have not all ended, in order
        self.failed = False
        self.ended: set[StateType] = set()  # the states of the ended values' task runs


class Index:
    """An execution's task runs by scope, and memos of what has ended, kept up to date across calls.

    Everything here is derived from the execution alone (a new Index built from a stored execution gives
    the same answers): it only saves the rescans. It relies on two facts of a driven execution: task runs
    are only appended to its list, and an ended task run stays ended (a restart or a recovery drives the
    execution anew, with a new Index).
    """

    __slots__ = ("flow", "scopes", "seen", "list_id", "cursors", "loops", "special", "track_special")

    def __init__(self, flow: Flow, ex: Execution) -> None:
        self.flow = flow
        self.scopes: dict[Scope, dict[str, TaskRun]] = {}
        self.seen = 0
        self.list_id = id(ex.task_run_list)
        self.cursors: dict[tuple[Scope, int], int] = {}    # (scope, id(tasks)) -> how many tasks have passed
        self.loops: dict[str, _Loop] = {}                  # ForEach task run id -> its progress
        self.special: list[TaskRun] = []                   # Exit and Pause task runs (they can end it all)
        types = flow.types()
        self.track_special = EXIT in types or PAUSE in types
        self.sync(ex)

    def sync(self, ex: Execution) -> None:
        """Take in the task runs appended since the last call."""
        runs = ex.task_run_list
        if id(runs) != self.list_id or len(runs) < self.seen:   # replaced: start again
            self.__init__(self.flow, ex)  # type: ignore[misc]
            return
        if len(runs) == self.seen:
            return
        scopes, flow = self.scopes, self.flow
        for tr in runs[self.seen:]:
            key = (tr.parent_task_run_id, tr.value, tr.iteration)
            scope = scopes.get(key)
            if scope is None:
                scope = scopes[key] = {}
            scope[tr.task_id] = tr
            if self.track_special and flow.task(tr.task_id).type in (EXIT, PAUSE):
                self.special.append(tr)
        self.seen = len(runs)


class _View:
    """One call's view of the execution, on its (kept) Index."""

    __slots__ = ("flow", "ex", "index", "scopes", "loop_values")

    def __init__(self, flow: Flow, ex: Execution, loop_values: Mapping[str, list[str]], index: Index) -> None:
        self.flow = flow
        self.ex = ex
        self.loop_values = loop_values
        self.index = index
        self.scopes = index.scopes

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
        """Tasks one after the other; stops at the first failure. Those that passed are not looked at again."""
        runs = self.scope(parent, value, iteration)
        cursors = self.index.cursors
        key = ((parent, value, iteration), id(tasks))
        for i in range(cursors.get(key, 0), len(tasks)):
            task = tasks[i]
            if task.disabled:
                continue
            actions, state = self.advance(task, runs.get(task.id), parent, value, iteration)
            if state is None:
                cursors[key] = i
                return actions, None
            if state in _FAILED:
                cursors[key] = i
                return [], StateType.FAILED
        cursors[key] = len(tasks)
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
              value: str | None, main_tasks: list[TaskSpec]) -> Outcome:
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
        ids = {t.id for t in (*main_tasks, *errors, *finally_)}   # (once: the block has ended)
        block = [tr for task_id, tr in runs.items() if task_id in ids]
        state = final_state(block)
        return [], StateType.FAILED if outcome is StateType.FAILED and state is StateType.SUCCESS else state

    # ---------------------------------------------------------------------------------- flowables

    def flowable(self, task: TaskSpec, tr: TaskRun) -> Outcome:
        """Resolve a RUNNING flowable task run."""
        kind = task.type
        errors = task.children.get("errors", [])
        finally_ = task.children.get("finally", [])
        # only a loop gives its children a value (Kestra's FlowableUtils.resolveTasks sets none): the children
        # of a Sequential, Parallel, If, Switch, Dag… in a ForEach have no `taskrun.value` of their own, they
        # find the loop's up their parents (EachSequentialTest.eachSwitch, IfTest.ifInFlowable)
        value = None
        if kind == WORKING_DIRECTORY:   # its tasks run in the worker as one task run's (WorkingDirectoryTest.taskrun)
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
                if outputs.get("defaults"):
                    branch = task.children.get("defaults", [])
                    if not branch:  # Kestra (SwitchTest.switchImpossible): nothing to run is a failure,
                        return [], StateType.FAILED   # decided before `errors` (they do not run)
                else:
                    branch = cases.get(str(outputs.get("value")), [])
            else:  # Sequential, Parallel, AllowFailure, Pause (deprecated children), WorkingDirectory, ForEachItem
                branch = task.children.get("tasks", [])
            if kind == PARALLEL:
                main = self.together([(t, []) for t in branch], tr.id, value, _int(task.props.get("concurrent")))
            else:
                main = self.sequence(branch, tr.id, value)
        actions, outcome = self.block(main, errors, finally_, tr.id, value, branch)
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
        state_of = self.index.loops.get(tr.id)
        if state_of is None:  # first look (or after a recovery): the values that have task runs were started
            state_of = self.index.loops[tr.id] = _Loop()
            started = [i for i, v in enumerate(values) if self.scope(tr.id, v)]
            state_of.started = started[-1] + 1 if started else 0
            state_of.active = values[:state_of.started]
        actions: list[Action] = []
        active: list[str] = []
        for v in state_of.active:
            step, state = self.sequence(children, tr.id, v)
            if state is None:
                active.append(v)
                actions.extend(step)
            else:
                self._loop_ended(state_of, tr.id, v, state)
        while state_of.started < len(values) and not state_of.failed and (not limit or len(active) < limit):
            v = values[state_of.started]
            state_of.started += 1
            step, state = self.sequence(children, tr.id, v)
            if state is None:
                active.append(v)
                actions.extend(step)
            else:
                self._loop_ended(state_of, tr.id, v, state)
        state_of.active = active
        if active:
            return actions, None
        actions, state = self.block(([], StateType.FAILED if state_of.failed else StateType.SUCCESS),
                                    errors, finally_, tr.id, None, [])
        if state is None:
            return actions, None
        return [], _worst(state, _final_of(state_of.ended))

    def _loop_ended(self, loop: _Loop, parent: str, value: str, state: StateType) -> None:
        loop.ended.update(r.state.current for r in self.scope(parent, value).values())
        loop.failed = loop.failed or state is StateType.FAILED

    def loop_until(self, task: TaskSpec, tr: TaskRun, errors: list[TaskSpec], finally_: list[TaskSpec]) -> Outcome:
        """LoopUntil: iteration n runs the children (task runs with iteration n); then NextIteration.

        The runner evaluates the condition and ends the task run, or waits and counts the next iteration.
        """
        iteration = int((tr.outputs or {}).get("iterationCount", 1))
        actions, state = self.sequence(task.children.get("tasks", []), tr.id, None, iteration)
        if state is None:
            return actions, None
        if state is StateType.SUCCESS:
            return [NextIteration(tr.id)], None
        return self.block(([], StateType.FAILED), errors, finally_, tr.id, None, [])


def _int(value: object, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def next_actions(flow: Flow, ex: Execution, loop_values: Mapping[str, list[str]] | None = None,
                 index: Index | None = None) -> list[Action]:
    """What to do next for this execution; empty when there is nothing to do until something ends.

    `index`: the execution's Index kept from the previous call (the driver keeps one), else one is built.
    """
    current = ex.state.current
    if current in CREATED:
        return [StartExecution()]
    if index is None:
        index = Index(flow, ex)
    else:
        index.sync(ex)
    view = _View(flow, ex, loop_values or {}, index)
    if current is StateType.KILLING:
        pending: list[Action] = [KillTaskRun(tr.id) for tr in ex.task_run_list if not tr.state.is_terminated()]
        return pending or [EndExecution(StateType.KILLED)]
    if current in (StateType.RUNNING, StateType.PAUSED):
        if current is StateType.PAUSED and not any(tr.state.current is StateType.PAUSED for tr in ex.task_run_list):
            return []  # paused by hand: nothing new starts until it is resumed
        exited = _exit_state(flow, index)
        if exited is not None:
            pending = [KillTaskRun(tr.id) for tr in ex.task_run_list if not tr.state.is_terminated()]
            return pending or [EndExecution(exited)]
        actions, outcome = view.block(view.sequence(flow.tasks, None, None), flow.errors, flow.finally_, None, None,
                                      flow.tasks)
        if outcome is not None:
            return [EndExecution(outcome)]
        return actions
    if current.is_terminated() and current is not StateType.KILLED and flow.after_execution:
        actions, _ = view.sequence(flow.after_execution, None, None)
        return actions
    return []


def _exit_state(flow: Flow, index: Index) -> StateType | None:
    """The state an ended execution.Exit task run (or a Pause with behavior CANCEL) asks for, if any."""
    for tr in index.special:
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

