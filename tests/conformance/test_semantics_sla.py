"""Flow SLAs as Kestra's tests assert them (SLATestCase, MaxDurationSLATest, ExecutionAssertionSLATest):
MAX_DURATION ends a slow execution per its behavior, EXECUTION_ASSERTION is checked as the execution
changes, NONE only adds the SLA's labels; the deadline is a timer that a recovery sets again."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.model.execution import Label, Level
from kestra_nb.parsing import check_flow


def messages(engine: Any, ex: Any, level: Level = Level.WARN) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=level)]


MAX_DURATION = """id: sla-max-duration
namespace: io.kestra.tests
sla:
  - id: maxDuration
    type: MAX_DURATION
    behavior: {behavior}
    duration: {duration}
    labels:
      sla: late
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: {sleep}
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: after
"""


def test_max_duration_sla_fails_a_slow_execution(engine: Any) -> None:
    # SLATestCase.maxDurationSLAShouldFail (sla-max-duration-fail.yaml): FAILED
    ex = engine.run(MAX_DURATION.format(behavior="FAIL", duration="PT0.2S", sleep="PT60S"), timeout=30)
    assert ex.state == "FAILED"
    assert [(tr.task_id, tr.state.current.value) for tr in ex.task_run_list] == [("sleep", "FAILED")]
    assert Label("sla", "late") in ex.labels
    warned = messages(engine, ex)
    # MaxDurationSLATest: the reason names the elapsed time and the maximum
    assert any(m.startswith("SLA 'maxDuration' violated: execution duration of ")
               and m.endswith("exceed the maximum duration of PT0.2S.") for m in warned)
    assert any(m.startswith("Execution failed due to SLA 'maxDuration' violated: ")
               for m in messages(engine, ex, Level.ERROR))
    assert ex.outputs is None


def test_max_duration_sla_cancels_and_kills_the_other_running_task_runs(engine: Any) -> None:
    yaml = """id: sla-cancel
namespace: io.kestra.tests
sla:
  - id: late
    type: MAX_DURATION
    behavior: CANCEL
    duration: PT0.2S
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: one
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT60S
      - id: two
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT60S
"""
    ex = engine.run(yaml, timeout=30)
    assert ex.state == "CANCELLED"
    # Kestra's markAs: the last task run not ended takes the state, the kill stops the others
    assert [(tr.task_id, tr.state.current.value) for tr in ex.task_run_list] == [
        ("both", "KILLED"), ("one", "KILLED"), ("two", "CANCELLED")]


def test_max_duration_sla_with_behavior_none_only_labels(engine: Any) -> None:
    ex = engine.run(MAX_DURATION.format(behavior="NONE", duration="PT0.1S", sleep="PT0.4S"), timeout=30)
    assert ex.state == "SUCCESS"
    assert [tr.task_id for tr in ex.task_run_list] == ["sleep", "after"]
    assert Label("sla", "late") in ex.labels


def test_max_duration_sla_not_reached_passes(engine: Any) -> None:
    # SLATestCase.maxDurationSLAShouldPass (sla-max-duration-ok.yaml): SUCCESS
    ex = engine.run(MAX_DURATION.format(behavior="FAIL", duration="PT10S", sleep="PT0.1S"), timeout=30)
    assert ex.state == "SUCCESS"
    assert Label("sla", "late") not in ex.labels
    assert not any("SLA" in m for m in messages(engine, ex))


CONDITION = """id: sla-execution-condition
namespace: io.kestra.tests
inputs:
  - id: string
    type: SELECT
    values:
      - PASS
      - CANCEL
      - LABEL
    defaults: PASS
sla:
  - id: condition
    type: EXECUTION_ASSERTION
    behavior: CANCEL
    assert: "{{inputs.string != 'CANCEL'}}"
  - id: condition
    type: EXECUTION_ASSERTION
    behavior: NONE
    assert: "{{inputs.string != 'LABEL'}}"
    labels:
      sla: violated
tasks:
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: "true"
"""


@pytest.mark.parametrize("choice, state, labelled, runs", [
    ("PASS", "SUCCESS", False, 1),     # SLATestCase.executionConditionSLAShouldPass
    ("CANCEL", "CANCELLED", False, 0),  # SLATestCase.executionConditionSLAShouldCancel
    ("LABEL", "SUCCESS", True, 1),     # SLATestCase.executionConditionSLAShouldLabel
])
def test_execution_assertion_sla(engine: Any, choice: str, state: str, labelled: bool, runs: int) -> None:
    ex = engine.run(CONDITION, inputs={"string": choice}, timeout=30)
    assert ex.state == state
    assert (Label("sla", "violated") in ex.labels) is labelled
    assert len(ex.task_run_list) == runs
    if choice != "PASS":   # ExecutionAssertionSLATest: the reason quotes the assertion
        expected = "{{inputs.string != '%s'}}" % choice
        assert f"SLA 'condition' violated: assertion is false: {expected}." in messages(engine, ex)


def test_execution_assertion_is_checked_as_the_execution_changes(engine: Any) -> None:
    yaml = """id: sla-outputs
namespace: io.kestra.tests
sla:
  - id: small
    type: EXECUTION_ASSERTION
    behavior: FAIL
    assert: "{{ (outputs.first.value ?? 'none') != 'big' }}"
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: big
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: never
"""
    ex = engine.run(yaml, timeout=30)
    assert ex.state == "FAILED"
    assert [(tr.task_id, tr.state.current.value) for tr in ex.task_run_list] == [("first", "SUCCESS")]


def test_an_assertion_that_cannot_be_rendered_is_ignored(engine: Any) -> None:
    # ExecutionAssertionSLATest.shouldFailToEvaluate: the rendering fails; SLAService logs and ignores it
    yaml = """id: sla-broken
namespace: io.kestra.tests
sla:
  - id: broken
    type: EXECUTION_ASSERTION
    behavior: FAIL
    assert: "{{ condition == 'true' }}"
tasks:
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: ok
"""
    ex = engine.run(yaml, timeout=30)
    assert ex.state == "SUCCESS"
    assert any(m.startswith("Ignoring SLA 'broken' because of the error: ")
               for m in messages(engine, ex, Level.ERROR))


def test_a_max_duration_sla_survives_a_recovery(tmp_path: Path) -> None:
    from kestra_nb.engine import Engine
    from kestra_nb.engine.events import ExecutionUpdated
    from kestra_nb.model.state import StateType

    first = Engine(tmp_path / "store")
    flow, revision = first.deploy(MAX_DURATION.format(behavior="FAIL", duration="PT0.5S", sleep="PT60S"))
    running = threading.Event()
    first.subscribe(None, lambda e: isinstance(e, ExecutionUpdated) and e.state is StateType.RUNNING
                    and running.set())

    async def start() -> str:
        ex = first.new_execution(flow, revision)
        await first.start(flow, ex)
        return ex.id

    execution_id = asyncio.run_coroutine_threadsafe(start(), first.loop).result(5)
    assert running.wait(10)
    first.close()   # the process "dies" before the deadline: the execution stays RUNNING in the store

    second = Engine(tmp_path / "store")
    try:
        assert second.recovered == [execution_id]
        ex = asyncio.run_coroutine_threadsafe(second.wait_async(execution_id), second.loop).result(30)
        assert ex.state == "FAILED"
        assert Label("sla", "late") in ex.labels
    finally:
        second.close()


def test_a_restarted_execution_has_no_max_duration_sla(engine: Any) -> None:
    # Kestra sets the SLA monitors of an execution when it is CREATED, not when it is restarted
    ex = engine.run(MAX_DURATION.format(behavior="FAIL", duration="PT0.2S", sleep="PT0.4S"), timeout=30)
    assert ex.state == "FAILED"
    again = engine.restart(ex.id, timeout=30)
    assert again.state == "SUCCESS"


@pytest.mark.parametrize("sla, problem", [
    ("  - id: s\n    type: MAX_DURATION\n    duration: PT1S\n", ("sla[0].behavior", "must not be null")),
    ("  - id: s\n    type: MAX_DURATION\n    behavior: LOUD\n    duration: PT1S\n",
     ("sla[0].behavior", 'expected one of [FAIL, CANCEL, NONE], found the string "LOUD"')),
    ("  - id: s\n    type: MAX_DURATION\n    behavior: FAIL\n    duration: soon\n", ("sla[0].duration", None)),
    ("  - id: s\n    type: EXECUTION_ASSERTION\n    behavior: NONE\n    assert: x\n    labels:\n"
     "      system.foo: bar\n",
     ("sla[0].labels", "System labels can only be set by Kestra itself, offending label: system.foo=bar")),
    ("  - id: s\n    type: EXECUTION_ASSERTION\n    behavior: NONE\n    assert: x\n    labels: 3\n",
     ("sla[0].labels", None)),
])
def test_invalid_slas_are_refused(sla: str, problem: tuple[str, str | None]) -> None:
    source = ("id: bad_sla\nnamespace: io.kestra.tests\nsla:\n" + sla +
              "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
    result = check_flow(source)
    assert result.flow is None
    found = [(v.path, v.message) for v in result.violations]
    path, message = problem
    assert any(p == path and (message is None or m == message) for p, m in found), found
