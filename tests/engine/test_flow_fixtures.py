"""Flow fixtures: every `tests/fixtures/flows/<name>.expected.yml` runs a flow and checks the result;
below them, explicit tests for what running a flow alone cannot drive (resume, kill, restart, replay,
concurrency between executions, crash recovery across processes).

Fixture format
==============
`tests/fixtures/flows/<name>.yml` is a complete Kestra flow (namespace `io.kestra.tests`).
`tests/fixtures/flows/<name>.expected.yml` describes one run of it. Several expected files may run the
same flow with other inputs: `<name>.<case>.expected.yml` with `flow: <name>.yml`. Keys (all optional
but `state`; unknown keys are an error, so a typo cannot make an expectation silently pass):

  description       what the fixture shows, and the Kestra test that settled it
  flow              the flow file (default `<name>.yml`)
  inputs            inputs passed to `Engine.run`
  runLabels         labels passed to `Engine.run`
  timeout           seconds given to `Engine.run` (default 30)
  state             final execution state (SUCCESS, WARNING, FAILED, KILLED, CANCELLED, ...)
  stateHistory      states that must appear, in this order, in the execution's state history (subsequence)
  outputs           flow outputs, subset match (maps may hold more keys; lists and scalars equal, typed)
  executionLabels   labels on the execution (first value per key), subset match
  taskRunCount      total number of task runs
  order             task runs in creation order, restricted to the task ids named: `id` matches any run of
                    the task, `id[value]` the run with that loop value; the restricted list must equal it
  before            [[a, b], ...]: every run of a had ended before any run of b was created
  concurrency       [{taskIds: [...], min: n, max: m}]: peak number of those task runs RUNNING at once
                    (from their first RUNNING transition to their end)
  allowNonTerminal  skip the default check that a terminated execution has no unfinished task run
  taskRuns          a map `taskId: {...}` or a list of `{taskId: ..., ...}`. Each entry selects the task
                    runs of `taskId`, narrowed by the selectors `value` (loop value, compared as a string),
                    `iteration` and `parentValue` (the loop value of the parent task run), then asserts:
                      count          number of selected task runs (`count: 0` = never ran; without
                                     `count` at least one must exist)
                      state          current state of each selected run
                      outputs        subset match on each run's outputs
                      attempts       a number, a list of attempt states, or {count, states}
                      histories      states appearing in this order in the run's state history
                      parentTaskId   task id of the parent task run (null for top level)
                      values         the selected runs' loop values, as a multiset
                      minDuration    seconds from creation to end, at least
                      startsAfterExecutionEnd  created at or after the execution's final transition
  logs              [{message | contains | icontains, level, taskId, count, absent}]: a log entry matching
                    all given fields exists (`count`: exactly that many; `absent: true`: none)

The checks live in `fixture_runner.py`; every failed expectation is reported, not only the first.
"""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import Case, check, load_cases, validate_case

from kestra_nb.engine import Engine
from kestra_nb.engine.events import ExecutionUpdated
from kestra_nb.errors import (
    FlowValidationError,
    IllegalStateError,
    InputValidationError,
    KestraNbError,
)
from kestra_nb.model.state import StateType
from kestra_nb.store import open_store

ROOT = Path(__file__).resolve().parents[2]
CASES = load_cases()
NS = "io.kestra.tests"


def test_fixture_files_are_well_formed() -> None:
    assert CASES, "no fixtures found"
    problems = [f"{case.name}: {p}" for case in CASES for p in validate_case(case)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_flow_fixture(case: Case, tmp_path: Path) -> None:
    problems = validate_case(case)
    assert not problems, "\n".join(problems)
    engine = Engine(tmp_path / "store")
    try:
        ex = engine.run(case.source, inputs=case.inputs, labels=case.labels, timeout=case.timeout)
        logs = engine.store.list_logs(ex.id)
    finally:
        close(engine)
    failures = check(case.expected, ex, logs)
    assert not failures, (
        f"{case.name}: {case.expected.get('description', '').strip()}\n  - " + "\n  - ".join(failures))


def test_the_checker_reports_every_mismatch(tmp_path: Path) -> None:
    """The fixture checker is not vacuous: wrong expectations of each kind are reported."""
    case = next(c for c in CASES if c.name == "sequential_errors")
    engine = Engine(tmp_path / "store")
    try:
        ex = engine.run(case.source, timeout=30)
        logs = engine.store.list_logs(ex.id)
    finally:
        close(engine)
    wrong = {
        "state": "SUCCESS", "stateHistory": ["SUCCESS", "CREATED"], "taskRunCount": 1,
        "order": ["first", "outer"], "before": [["flow_error", "outer"]], "outputs": {"missing": 1},
        "executionLabels": {"nope": "x"}, "concurrency": [{"taskIds": ["first"], "min": 2}],
        "taskRuns": [
            {"taskId": "boom", "state": "SUCCESS", "attempts": 2, "parentTaskId": "outer",
             "histories": ["SUCCESS", "RUNNING"], "outputs": {"value": "x"}, "minDuration": 60},
            {"taskId": "never_inner", "count": 1},
            {"taskId": "first", "value": "nothing"},
            {"taskId": "flow_error", "startsAfterExecutionEnd": True},
        ],
        "logs": [{"message": "inner failure", "absent": True}, {"contains": "no such log"},
                 {"message": "inner failure", "level": "DEBUG"}],
    }
    failures = check(wrong, ex, logs)
    text = "\n".join(failures)
    for fragment in ("execution state is FAILED", "state history", "7 task runs, expected 1",
                     "created in the order", "before ['flow_error', 'outer']", "outputs.missing",
                     "labels.nope", "ran at the same time", "boom (boom", "state FAILED, expected SUCCESS",
                     "1 attempts", "parent task is inner", "does not contain ['SUCCESS', 'RUNNING']",
                     "): outputs", "expected at least 60", "never_inner: 0 task runs",
                     "first value='nothing': no such task run", "before the execution ended",
                     "should not exist", "no log matching {'contains': 'no such log'}",
                     "no log matching {'message': 'inner failure', 'level': 'DEBUG'}"):
        assert fragment in text, f"{fragment!r} not reported in:\n{text}"
    assert check(case.expected, ex, logs) == []


# ============================================================================================ helpers

def close(engine: Engine) -> None:
    """Close an engine and collect now: coroutines it left behind are finalized here, inside the test,
    not at a random later point (CPython 3.11.7 can then fail pytest's own source parsing)."""
    engine.close()
    gc.collect()


def flow(flow_id: str, body: str) -> str:
    return f"id: {flow_id}\nnamespace: {NS}\n\n" + textwrap.dedent(body).lstrip("\n")


class Events:
    """Every ExecutionUpdated of an engine, kept in order; wait for one matching a predicate."""

    def __init__(self, engine: Engine) -> None:
        self.items: list[ExecutionUpdated] = []
        self._cond = threading.Condition()
        self._unsubscribe = engine.subscribe(None, self._on)

    def _on(self, event: Any) -> None:
        if isinstance(event, ExecutionUpdated):
            with self._cond:
                self.items.append(event)
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[ExecutionUpdated], bool], timeout: float = 10,
                 what: str = "an event") -> ExecutionUpdated:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for event in self.items[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.items)
                left = deadline - time.monotonic()
                if left <= 0:
                    states = [(e.execution_id[:6], e.state.value, e.finished) for e in self.items[-15:]]
                    raise AssertionError(f"timed out waiting for {what}; last events: {states}")
                self._cond.wait(left)

    def of(self, execution_id: str) -> list[ExecutionUpdated]:
        with self._cond:
            return [e for e in self.items if e.execution_id == execution_id]

    def close(self) -> None:
        self._unsubscribe()


def task_runs(document: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [tr for tr in document.get("taskRunList") or () if tr["taskId"] == task_id]


def task_state(document: dict[str, Any], task_id: str) -> str | None:
    runs = task_runs(document, task_id)
    return runs[-1]["state"]["current"] if runs else None


def only(ex: Any, task_id: str) -> Any:
    runs = [tr for tr in ex.task_run_list if tr.task_id == task_id]
    assert len(runs) == 1, f"expected one task run of {task_id}, got {[(t.task_id, t.state.current) for t in ex.task_run_list]}"
    return runs[0]


def history(state: Any) -> list[str]:
    return [h.state.value for h in state.histories]


def is_subsequence(wanted: list[str], actual: list[str]) -> bool:
    it = iter(actual)
    return all(any(w == a for a in it) for w in wanted)


def start_in_background(pool: ThreadPoolExecutor, engine: Engine, events: Events, source: str,
                        inputs: dict[str, Any] | None = None, timeout: float = 30) -> tuple[Future[Any], str]:
    """Run a flow on a worker thread; return its future and the execution id (from its first event).

    The engine must not have run this flow before: the first event of the flow id is taken as its own.
    """
    flow_id = source.split("\n", 1)[0].removeprefix("id:").strip()
    future = pool.submit(engine.run, source, inputs, None, timeout)
    event = events.wait_for(lambda e: e.document.get("flowId") == flow_id,
                            what=f"the first event of a {flow_id} execution")
    return future, event.execution_id


def finished_execution(engine: Engine, events: Events, execution_id: str,
                       extra: Callable[[ExecutionUpdated], bool] = lambda e: True, timeout: float = 15) -> Any:
    """Wait for the `finished` event of an execution (and `extra`), then read it from the store."""
    events.wait_for(lambda e: e.execution_id == execution_id and e.finished and extra(e), timeout,
                    what=f"execution {execution_id} to finish")
    ex = engine.get_execution(execution_id)
    assert ex is not None
    return ex


@pytest.fixture
def engine(tmp_path: Path):
    eng = Engine(tmp_path / "store")
    yield eng
    close(eng)


@pytest.fixture
def events(engine: Engine):
    ev = Events(engine)
    yield ev
    ev.close()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


# ============================================================================================ events

def test_every_transition_is_published_in_order(engine: Engine, events: Events) -> None:
    source = flow("events_order", """
        tasks:
          - id: a
            type: io.kestra.plugin.core.debug.Return
            format: a
          - id: par
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - id: b
                type: io.kestra.plugin.core.debug.Return
                format: b
              - id: c
                type: io.kestra.plugin.core.debug.Return
                format: c
        """)
    ex = engine.run(source, timeout=30)
    published = events.of(ex.id)
    assert published, "no event was published"
    # each document is a later version of the previous one: histories only grow
    lengths = [len(e.document["state"]["histories"]) for e in published]
    assert lengths == sorted(lengths), f"execution histories shrank between events: {lengths}"
    rank = {"CREATED": 0, "RUNNING": 1, "SUCCESS": 2}
    for task_id in ("a", "par", "b", "c"):
        seen = [task_state(e.document, task_id) for e in published if task_state(e.document, task_id)]
        assert seen and seen[-1] == "SUCCESS", f"{task_id}: published states {seen}"
        ranks = [rank[s] for s in seen]
        assert ranks == sorted(ranks), f"{task_id}: states went backwards across events: {seen}"
    # `finished` comes once everything is done, and stays
    first_finished = next(i for i, e in enumerate(published) if e.finished)
    assert all(e.finished for e in published[first_finished:])
    assert published[first_finished].state is StateType.SUCCESS
    assert published[-1].document == engine.store.get_execution_document(ex.id), \
        "the last event is not what the store holds"


# ============================================================================================ pause / resume

PAUSE_ON_RESUME = flow("pause_on_resume", """
    tasks:
      - id: before
        type: io.kestra.plugin.core.debug.Return
        format: ready
      - id: approve
        type: io.kestra.plugin.core.flow.Pause
        onResume:
          - id: reason
            type: STRING
          - id: count
            type: INT
            required: false
      - id: after
        type: io.kestra.plugin.core.output.OutputValues
        values:
          reason: "{{ outputs.approve.onResume.reason }}"
          count: "{{ outputs.approve.onResume.count }}"
    """)


def test_pause_then_resume_with_on_resume_inputs(engine, events, pool) -> None:
    future, ex_id = start_in_background(pool, engine, events, PAUSE_ON_RESUME)
    paused = events.wait_for(lambda e: e.execution_id == ex_id and e.state is StateType.PAUSED,
                             what="the execution to pause")
    # paused: the Pause task run and the execution are PAUSED (endDate set), nothing after it started
    assert task_state(paused.document, "approve") == "PAUSED"
    assert task_state(paused.document, "before") == "SUCCESS"
    assert not task_runs(paused.document, "after")
    assert "endDate" in paused.document["state"], "a PAUSED execution has an endDate (spec 1.5)"
    assert not future.done(), "Engine.run returned while the execution is PAUSED"

    # onResume inputs are validated like flow inputs: the required `reason` is missing
    with pytest.raises(InputValidationError):
        engine.resume(ex_id, inputs={"count": "3"})
    assert engine.get_execution(ex_id).state.current is StateType.PAUSED

    engine.resume(ex_id, inputs={"reason": "approved", "count": "3"})
    ex = finished_execution(engine, events, ex_id)
    assert ex.state == "SUCCESS", history(ex.state)
    assert is_subsequence(["RUNNING", "PAUSED", "RUNNING", "SUCCESS"], history(ex.state)), history(ex.state)
    approve = only(ex, "approve")
    assert approve.state == "SUCCESS"
    assert is_subsequence(["PAUSED", "RUNNING", "SUCCESS"], history(approve.state)), history(approve.state)
    assert approve.outputs["onResume"] == {"reason": "approved", "count": 3}
    assert only(ex, "after").outputs == {"values": {"reason": "approved", "count": "3"}}
    assert future.result(10).state == "SUCCESS"


def test_resume_refused_when_not_paused(engine) -> None:
    ex = engine.run(flow("not_paused", """
        tasks:
          - id: a
            type: io.kestra.plugin.core.debug.Return
            format: a
        """), timeout=30)
    with pytest.raises(IllegalStateError):
        engine.resume(ex.id)


# ============================================================================================ kill

def test_kill_during_a_parallel(engine, events, pool) -> None:
    source = flow("kill_parallel", """
        tasks:
          - id: par
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - id: s1
                type: io.kestra.plugin.core.flow.Sleep
                duration: PT5S
              - id: s2
                type: io.kestra.plugin.core.flow.Sleep
                duration: PT5S
              - id: quick
                type: io.kestra.plugin.core.debug.Return
                format: quick
          - id: after
            type: io.kestra.plugin.core.debug.Return
            format: never
        """)
    future, ex_id = start_in_background(pool, engine, events, source)
    events.wait_for(lambda e: e.execution_id == ex_id and task_state(e.document, "s1") == "RUNNING"
                    and task_state(e.document, "s2") == "RUNNING", what="both sleeps to run")
    started = time.monotonic()
    engine.kill(ex_id, wait=True)
    ex = finished_execution(engine, events, ex_id)
    took = time.monotonic() - started

    assert ex.state == "KILLED"
    assert is_subsequence(["RUNNING", "KILLING", "KILLED"], history(ex.state)), history(ex.state)
    published = [e.state.value for e in events.of(ex_id)]
    assert is_subsequence(["KILLING", "KILLED"], published), f"events: {published}"
    for task_id in ("par", "s1", "s2"):
        assert only(ex, task_id).state == "KILLED", (task_id, history(only(ex, task_id).state))
    assert only(ex, "quick").state.current.value in ("SUCCESS", "KILLED")
    assert not [tr for tr in ex.task_run_list if tr.task_id == "after"]
    assert all(tr.state.current.is_terminated() for tr in ex.task_run_list)
    assert took < 4, f"the kill waited {took:.1f}s: the running sleeps were not stopped"
    assert future.result(10).state == "KILLED"


# ============================================================================================ restart / replay

RESTARTABLE = flow("restartable", """
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.id }}"
      - id: b
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{ taskrun.attemptsCount == 0 }}"
      - id: c
        type: io.kestra.plugin.core.debug.Return
        format: c
    errors:
      - id: on_error
        type: io.kestra.plugin.core.debug.Return
        format: handled
    """)


def test_restart_after_a_failure(engine, events) -> None:
    first = engine.run(RESTARTABLE, timeout=30)
    assert first.state == "FAILED"
    assert [tr.task_id for tr in first.task_run_list] == ["a", "b", "on_error"]
    a_before, b_before = only(first, "a"), only(first, "b")

    engine.restart(first.id)
    ex = finished_execution(engine, events, first.id,
                            lambda e: e.document["metadata"]["attemptNumber"] == 2)

    # same execution, one more attempt; FAILED then RESTARTED in its history
    assert ex.id == first.id and ex.parent_id is None
    assert ex.metadata.attempt_number == 2
    assert ex.state == "SUCCESS", history(ex.state)
    assert is_subsequence(["FAILED", "RESTARTED", "RUNNING", "SUCCESS"], history(ex.state)), history(ex.state)
    # the successful task run is kept as is; the failed one is the same task run with one more attempt
    a = only(ex, "a")
    assert a.id == a_before.id and a.outputs == {"value": a_before.id} and len(a.attempts) == 1
    b = only(ex, "b")
    assert b.id == b_before.id
    assert [at.state.current.value for at in b.attempts] == ["FAILED", "SUCCESS"]
    assert "RESTARTED" in history(b.state) and b.state == "SUCCESS"
    assert only(ex, "c").state == "SUCCESS"
    # the errors branch of the failed run is removed (spec 2.7; Kestra RestartCaseTest)
    assert not [tr for tr in ex.task_run_list if tr.task_id == "on_error"]


REPLAYABLE = flow("replayable", """
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.id }}"
      - id: b
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.id }}"
      - id: c
        type: io.kestra.plugin.core.debug.Return
        format: c
    """)


def _replayed_id(result: Any) -> str:
    return result if isinstance(result, str) else result.id


def test_replay_a_whole_execution(engine, events) -> None:
    source = engine.run(REPLAYABLE, timeout=30)
    assert source.state == "SUCCESS"
    new_id = _replayed_id(engine.replay(source.id))
    assert new_id != source.id
    ex = finished_execution(engine, events, new_id)

    assert ex.state == "SUCCESS"
    assert ex.parent_id == source.id and ex.original_id == source.original_id == source.id
    assert ex.metadata.attempt_number == source.metadata.attempt_number + 1
    assert [tr.task_id for tr in ex.task_run_list] == ["a", "b", "c"]
    a = only(ex, "a")
    assert a.id != only(source, "a").id and a.outputs == {"value": a.id}, "task a was not run again"
    assert {(label.key, label.value) for label in engine.get_execution(source.id).labels} >= \
        {("system.replayed", "true")}


def test_replay_from_a_task_run(engine, events) -> None:
    source = engine.run(REPLAYABLE, timeout=30)
    b_source = only(source, "b")
    new_id = _replayed_id(engine.replay(source.id, task_run_id=b_source.id))
    ex = finished_execution(engine, events, new_id)

    assert ex.state == "SUCCESS" and ex.parent_id == source.id
    assert [tr.task_id for tr in ex.task_run_list] == ["a", "b", "c"]
    # before the chosen task run: copied with a new id, not run again (its output names the old run)
    a = only(ex, "a")
    assert a.id != only(source, "a").id
    assert a.outputs == {"value": only(source, "a").id} and a.state == "SUCCESS"
    # the chosen one and its successors run again
    b = only(ex, "b")
    assert b.id != b_source.id and b.outputs == {"value": b.id}
    assert only(ex, "c").state == "SUCCESS"


# ============================================================================================ concurrency

def concurrency_flow(behavior: str) -> str:
    return flow(f"concurrency_{behavior.lower()}", f"""
        concurrency:
          limit: 1
          behavior: {behavior}
        tasks:
          - id: hold
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.15S
        """)


@pytest.mark.parametrize("behavior, refused", [("CANCEL", "CANCELLED"), ("FAIL", "FAILED")])
def test_concurrency_limit_refuses_a_second_execution(engine, events, pool, behavior, refused) -> None:
    source = concurrency_flow(behavior)
    future, first_id = start_in_background(pool, engine, events, source)
    events.wait_for(lambda e: e.execution_id == first_id and e.state is StateType.RUNNING,
                    what="the first execution to run")
    second = engine.run(source, timeout=30)
    assert second.id != first_id
    assert second.state == refused, history(second.state)
    # never ran: CREATED straight to the refusal, no task run (Kestra FlowConcurrencyCaseTest)
    assert history(second.state)[0] == "CREATED" and "RUNNING" not in history(second.state), \
        history(second.state)
    assert second.task_run_list == []
    assert future.result(10).state == "SUCCESS"


def test_concurrency_limit_queues_a_second_execution(engine, events, pool) -> None:
    source = concurrency_flow("QUEUE")
    future, first_id = start_in_background(pool, engine, events, source)
    events.wait_for(lambda e: e.execution_id == first_id and e.state is StateType.RUNNING,
                    what="the first execution to run")
    second = engine.run(source, timeout=30)
    first = future.result(10)
    assert first.state == "SUCCESS" and second.state == "SUCCESS"
    # CREATED, QUEUED, RUNNING... (Kestra FlowConcurrencyCaseTest.flowConcurrencyQueue)
    assert history(second.state)[:3] == ["CREATED", "QUEUED", "RUNNING"], history(second.state)
    second_running = next(h.date for h in second.state.histories if h.state is StateType.RUNNING)
    assert second_running >= first.state.end_date, "the queued execution ran before the first one ended"


# ============================================================================================ validation

def test_disabled_flow_is_refused(engine) -> None:
    with pytest.raises(IllegalStateError):
        engine.run(flow("disabled_flow", """
            disabled: true
            tasks:
              - id: a
                type: io.kestra.plugin.core.debug.Return
                format: a
            """), timeout=30)


@pytest.mark.parametrize("depends, offending", [
    ("first: [second]\n    second: [first]", ["first", "second"]),
    ("first: []\n    second: [nowhere]", ["nowhere"]),
])
def test_dag_cycle_or_unknown_dependency_is_a_validation_error(engine, depends, offending) -> None:
    deps = dict(line.strip().split(": ") for line in depends.split("\n"))
    source = flow("dag_invalid", f"""
        tasks:
          - id: graph
            type: io.kestra.plugin.core.flow.Dag
            tasks:
              - task:
                  id: first
                  type: io.kestra.plugin.core.debug.Return
                  format: first
                dependsOn: {deps['first']}
              - task:
                  id: second
                  type: io.kestra.plugin.core.debug.Return
                  format: second
                dependsOn: {deps['second']}
        """)
    with pytest.raises(FlowValidationError) as info:
        engine.run(source, timeout=30)
    message = str(info.value)
    for task_id in offending:
        assert task_id in message, message


# ============================================================================================ crash recovery

HOLD_TYPE = "tests.fixtures.Hold"

CRASH_FLOW = flow("crash_recovery", f"""
    tasks:
      - id: first
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.id }}}}"
      - id: hold
        type: {HOLD_TYPE}
      - id: third
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ outputs.first.value }}}}"
    """)

# The child process drives the flow; its `hold` task blocks until the process is killed.
CHILD = f"""
import asyncio, sys
from kestra_nb.engine import Engine
from kestra_nb.tasks import Task, registry

class Hold(Task):
    type = {HOLD_TYPE!r}

    async def run(self, ctx):
        await asyncio.sleep(120)
        return {{"ranIn": "child"}}

registry.register(Hold)
engine = Engine(sys.argv[1])
engine.run(open(sys.argv[2], encoding="utf-8").read(), timeout=300)
"""


def _recovery_hold_task() -> Any:
    from kestra_nb.tasks import Task

    class Hold(Task):
        type = HOLD_TYPE

        async def run(self, ctx: Any) -> dict[str, Any]:
            return {"ranIn": "recovery"}

    return Hold


@pytest.fixture
def hold_task():
    from kestra_nb.tasks import registry

    cls = _recovery_hold_task()
    registry.register(cls)
    yield cls
    registry.unregister(cls)


def _start_child(tmp_path: Path, home: Path) -> subprocess.Popen[bytes]:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    flow_file = tmp_path / "crash_recovery.yml"
    flow_file.write_text(CRASH_FLOW, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, str(script), str(home), str(flow_file)], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_until_holding(proc: subprocess.Popen[bytes], home: Path, timeout: float = 30) -> Any:
    """Poll the shared store (another process writes it) until `hold` is RUNNING; return the execution."""
    store = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(f"the child process exited ({proc.returncode}) early:\n{err.decode()}")
            try:
                if store is None:
                    store = open_store(str(home))
                running = store.executions_in_states([StateType.RUNNING])
            except KestraNbError:  # the child may still be creating the store
                running = []
            for ex in running:
                holds = [tr for tr in ex.task_run_list if tr.task_id == "hold"]
                if holds and holds[0].state.current is StateType.RUNNING:
                    return ex
            time.sleep(0.02)
        raise AssertionError("the child process never reached the `hold` task")
    finally:
        if store is not None:
            store.close()


def _kill_child(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()


def _wait_terminated(engine: Engine, execution_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ex = engine.get_execution(execution_id)
        if ex is not None and ex.state.current.is_terminated():
            return ex
        time.sleep(0.02)
    ex = engine.get_execution(execution_id)
    raise AssertionError(f"execution {execution_id} was not recovered: {ex and ex.state.current} "
                         f"{ex and [(t.task_id, t.state.current.value) for t in ex.task_run_list]}")


def _all_histories(tr: Any) -> list[str]:
    states = history(tr.state)
    for attempt in tr.attempts or ():
        states += history(attempt.state)
    return states


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_mid_flow_then_recovery_in_another_process(tmp_path: Path, hold_task: Any) -> None:
    home = tmp_path / "shared"
    proc = _start_child(tmp_path, home)
    try:
        before = _wait_until_holding(proc, home)
    finally:
        _kill_child(proc)
    first_before, hold_before = only(before, "first"), only(before, "hold")
    assert first_before.state == "SUCCESS"

    engine = Engine(home)
    try:
        _ = engine.loop  # the engine is up: its start-up recovery runs now at the latest
        ex = _wait_terminated(engine, before.id)
    finally:
        close(engine)

    assert ex.id == before.id
    assert ex.state == "SUCCESS", (history(ex.state), [(t.task_id, history(t.state)) for t in ex.task_run_list])
    assert history(ex.state).count("CREATED") == 1, history(ex.state)
    # what had finished is kept: same task run, same output, not run again
    first = only(ex, "first")
    assert (first.id, first.outputs, len(first.attempts or ())) == (first_before.id, first_before.outputs, 1)
    # the interrupted task run was marked RESUBMITTED and run again, here
    holds = [tr for tr in ex.task_run_list if tr.task_id == "hold"]
    interrupted = next((tr for tr in holds if tr.id == hold_before.id), None)
    assert interrupted is not None, "the interrupted task run is gone"
    assert "RESUBMITTED" in _all_histories(interrupted), \
        f"RESUBMITTED not recorded on the interrupted task run: {_all_histories(interrupted)}"
    rerun = holds[-1]
    assert rerun.state == "SUCCESS" and rerun.outputs == {"ranIn": "recovery"}
    if rerun.id == interrupted.id:  # Kestra: same task run, the lost attempt RESUBMITTED, a new attempt
        assert len(rerun.attempts) >= 2, [history(a.state) for a in rerun.attempts]
    else:
        assert interrupted.state == "RESUBMITTED" and len(holds) == 2
    third = only(ex, "third")
    assert third.state == "SUCCESS" and third.outputs == {"value": first_before.id}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_an_execution_driven_by_a_live_process_is_not_taken_over(tmp_path: Path, hold_task: Any) -> None:
    home = tmp_path / "shared"
    proc = _start_child(tmp_path, home)
    try:
        before = _wait_until_holding(proc, home)
        engine = Engine(home)
        try:
            _ = engine.loop
            # absence of a take-over can only be observed over time: give a wrong recovery time to act
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                ex = engine.get_execution(before.id)
                assert ex.state == "RUNNING", f"the live child's execution was taken over: {ex.state.current}"
                assert only(ex, "hold").state == "RUNNING"
                time.sleep(0.05)
        finally:
            close(engine)
        assert proc.poll() is None, "the child process died"
    finally:
        _kill_child(proc)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_kept_index_answers_as_a_fresh_one(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver keeps the executor's Index from step to step (issue 13); at every step it must give the
    actions a new Index built from the execution alone gives (what a recovering process would build)."""
    from kestra_nb.engine import executor, runner

    calls: list[int] = []

    def checked(flow, ex, loop_values=None, index=None):
        fresh = executor.next_actions(flow, ex, loop_values)
        kept = executor.next_actions(flow, ex, loop_values, index)
        assert kept == fresh, f"step {len(calls)}: kept index {kept} != fresh {fresh}"
        calls.append(1)
        return kept

    monkeypatch.setattr(runner, "next_actions", checked)
    engine = Engine(tmp_path / "store")
    try:
        ex = engine.run(case.source, inputs=case.inputs, labels=case.labels, timeout=case.timeout)
        logs = engine.store.list_logs(ex.id)
    finally:
        close(engine)
    assert calls
    assert not check(case.expected, ex, logs)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_stored_document_is_the_whole_execution_at_every_commit(case: Case, tmp_path: Path) -> None:
    """Commits write only the task runs that changed (issue 13); after each one the store must read back
    exactly the whole execution's JSON, as a full write would have stored it."""
    from kestra_nb.model.jsonfmt import execution_to_dict

    engine = Engine(tmp_path / "store")
    store = engine.store
    save = store.save_execution
    commits: list[str] = []

    def checked(execution, logs=(), **kwargs):
        save(execution, logs, **kwargs)
        stored = store.get_execution_document(execution.id)
        assert stored == execution_to_dict(execution), f"commit {len(commits)} of {execution.id} stored differently"
        commits.append(execution.id)

    store.save_execution = checked
    try:
        ex = engine.run(case.source, inputs=case.inputs, labels=case.labels, timeout=case.timeout)
        logs = engine.store.list_logs(ex.id)
    finally:
        close(engine)
    assert commits
    assert not check(case.expected, ex, logs)
