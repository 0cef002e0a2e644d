"""Switch as Kestra's tests assert it: the branch taken, its outputs, a value matching no case without
`defaults` (FAILED), and the values of task runs in a branch (only loops give their children one)."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.model.execution import Level
from tests.conformance.lookups import parents_values

ROUTE = """id: route
namespace: company.team
inputs:
  - id: choice
    type: STRING
  - id: extra
    type: STRING
    defaults: great
tasks:
  - id: pick
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.choice }}"
    cases:
      ONE:
        - id: one
          type: io.kestra.plugin.core.debug.Return
          format: "{{ task.id }}"
      TWO:
        - id: two
          type: io.kestra.plugin.core.debug.Return
          format: "{{ task.id }}"
        - id: two_more
          type: io.kestra.plugin.core.debug.Return
          format: "{{ task.id }}"
      THREE:
        - id: three
          type: io.kestra.plugin.core.flow.Sequential
          tasks:
            - id: boom
              type: io.kestra.plugin.core.execution.Fail
          errors:
            - id: on_boom
              type: io.kestra.plugin.core.debug.Return
              format: "handled {{ task.id }}"
    defaults:
      - id: fallback
        type: io.kestra.plugin.core.debug.Return
        format: "{{ task.id }} {{ inputs.extra }}"
"""


def only(ex: Any, task_id: str) -> Any:
    (tr,) = [tr for tr in ex.task_run_list if tr.task_id == task_id]
    return tr


@pytest.mark.parametrize("choice, second, third, defaults", [
    ("ONE", "one", None, False),                 # SwitchTest.switchFirst
    ("TWO", "two", "two_more", False),           # SwitchTest.switchSecond
    ("THREE", "three", "boom", False),           # SwitchTest.switchThird (then error-t1: on_boom)
    ("OTHER", "fallback", None, True),           # SwitchTest.switchDefault
])
def test_switch_takes_the_matching_branch(engine: Any, choice: str, second: str, third: str | None,
                                          defaults: bool) -> None:
    ex = engine.run(ROUTE, inputs={"choice": choice})
    order = [tr.task_id for tr in ex.task_run_list]
    assert order[1] == second
    if third is not None:
        assert order[2] == third
    pick = only(ex, "pick")
    assert pick.outputs["value"] == choice
    assert pick.outputs["defaults"] is defaults
    if choice == "THREE":
        assert order[3] == "on_boom" and ex.state == "FAILED"
    if choice == "OTHER":
        assert only(ex, "fallback").outputs == {"value": "fallback great"}


def test_switch_without_a_matching_case_or_defaults_fails(engine: Any) -> None:
    # SwitchTest.switchImpossible (switch-impossible.yaml: `defaults: null`): the execution is FAILED;
    # FailTest.failOnSwitch: one task run, the switch FAILED, the execution FAILED
    yaml = """id: nowhere
namespace: company.team
inputs:
  - id: choice
    type: STRING
tasks:
  - id: pick
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.choice }}"
    cases:
      "NO":
        - id: never
          type: io.kestra.plugin.core.debug.Return
          format: never
    defaults: null
    errors:
      - id: not_run_either
        type: io.kestra.plugin.core.debug.Return
        format: x
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: after
"""
    ex = engine.run(yaml, inputs={"choice": "impossible"})
    assert ex.state == "FAILED"
    assert [tr.task_id for tr in ex.task_run_list] == ["pick"]
    assert only(ex, "pick").state.current.value == "FAILED"
    assert only(ex, "pick").outputs == {"value": "impossible", "defaults": True}
    warnings = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.WARN)]
    assert any("matches no case" in m for m in warnings)


def test_switch_without_a_match_under_allow_failure_warns(engine: Any) -> None:
    # FlowableUtils.resolveState: no task list found -> FAILED, or WARNING with allowFailure
    yaml = """id: nowhere_allowed
namespace: company.team
tasks:
  - id: pick
    type: io.kestra.plugin.core.flow.Switch
    allowFailure: true
    value: "z"
    cases:
      a:
        - id: never
          type: io.kestra.plugin.core.debug.Return
          format: never
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: after
"""
    ex = engine.run(yaml)
    assert ex.state == "WARNING"
    assert [(tr.task_id, tr.state.current.value) for tr in ex.task_run_list] == [("pick", "WARNING"),
                                                                                ("after", "SUCCESS")]


EACH_SWITCH = """id: each_switch
namespace: company.team
tasks:
  - id: start
    type: io.kestra.plugin.core.debug.Return
    format: start
  - id: letters
    type: io.kestra.plugin.core.flow.ForEach
    values: '["a", "b"]'
    tasks:
      - id: by_letter
        type: io.kestra.plugin.core.flow.Switch
        value: "{{ taskrun.value }}"
        cases:
          a:
            - id: letter_a
              type: io.kestra.plugin.core.debug.Return
              format: "{{ task.id }}"
          b:
            - id: letter_b
              type: io.kestra.plugin.core.debug.Return
              format: "{{ task.id }}"
            - id: numbers
              type: io.kestra.plugin.core.flow.ForEach
              values: '["1", "2"]'
              tasks:
                - id: by_number
                  type: io.kestra.plugin.core.flow.Switch
                  value: "{{ taskrun.value }}"
                  cases:
                    1:
                      - id: number_1
                        type: io.kestra.plugin.core.debug.Return
                        format: "{{ parents[0].taskrun.value }}"
                    2:
                      - id: number_2
                        type: io.kestra.plugin.core.debug.Return
                        format: "{{ parents[0].taskrun.value }} {{ parents[1].taskrun.value }}"
  - id: end
    type: io.kestra.plugin.core.debug.Return
    format: end
"""


def test_switch_children_do_not_take_its_value(engine: Any) -> None:
    # EachSequentialTest.eachSwitch (each-switch.yaml): 12 task runs, SUCCESS;
    # findTaskRunByTaskIdAndValue("2-1-1_switch-number-1", ["b", "1"]) has value "1", "...-number-2" has "2 b".
    # The values are found up the parent chain, one per loop: a Switch's children (and the inner ForEach
    # in a branch) have none of their own (Kestra's FlowableUtils.resolveTasks gives them no value).
    ex = engine.run(EACH_SWITCH)
    assert ex.state == "SUCCESS"
    assert len(ex.task_run_list) == 12
    n1, n2 = only(ex, "number_1"), only(ex, "number_2")
    assert parents_values(ex, n1) == ["b", "1"] and n1.outputs == {"value": "1"}
    assert parents_values(ex, n2) == ["b", "2"] and n2.outputs == {"value": "2 b"}
    for task_id in ("letter_a", "letter_b", "numbers", "number_1", "number_2"):
        assert only(ex, task_id).value is None
    assert [tr.value for tr in ex.task_run_list if tr.task_id == "by_letter"] == ["a", "b"]


def test_taskrun_value_is_undefined_in_a_switch_branch_and_outputs_nest_by_loop_value(engine: Any) -> None:
    # RunVariables.of(taskRun) only sets `taskrun.value` when the task run has one; Execution.outputs()
    # nests a task's outputs under the values of its parents (here the ForEach's, on the Switch run)
    yaml = """id: branch_value
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [x, y]
    tasks:
      - id: sw
        type: io.kestra.plugin.core.flow.Switch
        value: "{{ taskrun.value }}"
        cases:
          x:
            - id: inside
              type: io.kestra.plugin.core.debug.Return
              format: "{{ taskrun.value ?? 'none' }}/{{ parent.taskrun.value }}"
          y:
            - id: inside_y
              type: io.kestra.plugin.core.debug.Return
              format: "{{ outputs.inside.x.value }}"
"""
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    assert only(ex, "inside").outputs == {"value": "none/x"}
    assert only(ex, "inside_y").outputs == {"value": "none/x"}
