"""Loop values as Kestra gives them: only a loop (ForEach, EachSequential, EachParallel) gives its own
children a `taskrun.value`; the children of a Sequential, Parallel, If, Dag or LoopUntil (and the `errors`
of any flowable) have none and find the loop's up their parents (FlowableUtils.resolveTasks;
IfTest.ifInFlowable, EachSequentialTest.sequentialNested, Execution.findParentsValues)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.lookups import by_values, parents_values


def test_if_in_a_foreach(engine: Any) -> None:
    # IfTest.ifInFlowable (if-in-flowable.yaml): 8 task runs, after_if SUCCESS, the execution SUCCESS
    yaml = """id: if-in-flowable
namespace: io.kestra.tests
tasks:
  - id: for_each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["value 1", "value 2", "value 3"]
    tasks:
      - id: before_if
        type: io.kestra.plugin.core.debug.Return
        format: "Before if: {{ taskrun.value }}"
      - id: if
        type: io.kestra.plugin.core.flow.If
        condition: "{{ taskrun.value equals 'value 2' }}"
        then:
          - id: after_if
            type: io.kestra.plugin.core.debug.Return
            format: "After if: {{ parent.taskrun.value }}"
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "SUCCESS"
    assert len(ex.task_run_list) == 8
    (after,) = [tr for tr in ex.task_run_list if tr.task_id == "after_if"]
    assert after.state.current.value == "SUCCESS" and after.value is None
    assert after.outputs == {"value": "After if: value 2"}
    assert parents_values(ex, after) == ["value 2"]


def test_sequential_nested_eaches(engine: Any) -> None:
    # EachSequentialTest.sequentialNested (each-sequential-nested.yaml): 23 task runs, SUCCESS, lookups by values
    yaml = """id: each-sequential-nested
namespace: io.kestra.tests
tasks:
  - id: 1_each
    type: io.kestra.plugin.core.flow.EachSequential
    value: ["s1", "s2", "s3"]
    tasks:
      - id: 1-1_return
        type: io.kestra.plugin.core.debug.Return
        format: "{{task.id}} > {{taskrun.value}} > {{taskrun.startDate}}"
      - id: 1-2_each
        type: io.kestra.plugin.core.flow.EachSequential
        value: '["a a", "b b"]'
        tasks:
          - id: 1-2-1_return
            type: io.kestra.plugin.core.debug.Return
            format: "{{task.id}} > {{taskrun.value}} > {{taskrun.startDate}}"
          - id: 1-2-2_return
            type: io.kestra.plugin.core.debug.Return
            format: "{{task.id}} > {{ outputs['1-2-1_return'].s1[taskrun.value].value }} >> get {{ outputs['1-2-1_return']['s1'][taskrun.value].value }} > {{taskrun.startDate}}"
      - id: 1-3_return
        type: io.kestra.plugin.core.debug.Return
        format: "{{task.id}} > {{ outputs['1-1_return'][taskrun.value].value }} > {{taskrun.startDate}}"
  - id: 2_return
    type: io.kestra.plugin.core.debug.Return
    format: "{{task.id}} > {{outputs['1-2-1_return'].s1['a a'].value}}"
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "SUCCESS"
    assert len(ex.task_run_list) == 23
    (last,) = [tr for tr in ex.task_run_list if tr.task_id == "2_return"]
    assert by_values(ex, "1-2-1_return", ["s1", "a a"]).outputs["value"] in last.outputs["value"]
    assert by_values(ex, "1-1_return", ["s1"]).outputs["value"] in by_values(ex, "1-3_return", ["s1"]).outputs["value"]
    looked_up = by_values(ex, "1-2-1_return", ["s1", "a a"]).outputs["value"]
    assert "get " + looked_up in by_values(ex, "1-2-2_return", ["s1", "a a"]).outputs["value"]


FLOWABLES = {
    "Sequential": "    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n",
    "Parallel": "    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n",
    "If": "    type: io.kestra.plugin.core.flow.If\n    condition: \"{{ true }}\"\n    then:\n",
    "Dag": None,
}


@pytest.mark.parametrize("kind", sorted(FLOWABLES))
def test_children_of_a_flowable_in_a_loop_have_no_value(engine: Any, kind: str) -> None:
    inner = ("      - id: child\n        type: io.kestra.plugin.core.debug.Return\n"
             "        format: \"{{ parent.taskrun.value }} {{ parents[0].taskrun.value }}\"\n")
    if kind == "Dag":
        body = ("    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n      - task:\n"
                "          id: child\n          type: io.kestra.plugin.core.debug.Return\n"
                "          format: \"{{ parent.taskrun.value }} {{ parents[0].taskrun.value }}\"\n")
    else:
        body = FLOWABLES[kind] + inner
    body = "\n".join("    " + line if line else line for line in body.split("\n"))
    yaml = ("id: in_loop\nnamespace: io.kestra.tests\ntasks:\n  - id: each\n"
            "    type: io.kestra.plugin.core.flow.ForEach\n    values: [a, b]\n    tasks:\n      - id: inner\n"
            + body)
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "SUCCESS", [tr.state.current.value for tr in ex.task_run_list]
    inners = [tr for tr in ex.task_run_list if tr.task_id == "inner"]
    children = [tr for tr in ex.task_run_list if tr.task_id == "child"]
    assert sorted(tr.value for tr in inners) == ["a", "b"]
    assert [tr.value for tr in children] == [None, None]
    assert sorted(tr.outputs["value"] for tr in children) == ["a a", "b b"]
    assert sorted(parents_values(ex, tr)[0] for tr in children) == ["a", "b"]


def test_taskrun_value_of_a_child_of_a_sequential_in_a_loop_is_undefined(engine: Any) -> None:
    # RunVariables puts `taskrun.value` only for a task run with a value: undefined is an error (strict)
    yaml = """id: no_value
namespace: io.kestra.tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a]
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: child
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    (child,) = [tr for tr in ex.task_run_list if tr.task_id == "child"]
    assert child.state.current.value == "FAILED"


def test_errors_of_a_nested_loop_and_loop_until_children_have_no_value(engine: Any) -> None:
    yaml = """id: errors_no_value
namespace: io.kestra.tests
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.ForEach
    values: [o]
    tasks:
      - id: until
        type: io.kestra.plugin.core.flow.LoopUntil
        condition: "{{ true }}"
        tasks:
          - id: in_until
            type: io.kestra.plugin.core.debug.Return
            format: "{{ parent.taskrun.value }}"
      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: [i]
        tasks:
          - id: boom
            type: io.kestra.plugin.core.execution.Fail
        errors:
          - id: on_boom
            type: io.kestra.plugin.core.debug.Return
            format: "{{ parents[0].taskrun.value }}"
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    runs = {tr.task_id: tr for tr in ex.task_run_list}
    assert runs["until"].value == "o" and runs["in_until"].value is None
    assert runs["in_until"].outputs == {"value": "o"}
    assert runs["inner"].value == "o" and runs["boom"].value == "i"
    assert runs["on_boom"].value is None and runs["on_boom"].outputs == {"value": "o"}
