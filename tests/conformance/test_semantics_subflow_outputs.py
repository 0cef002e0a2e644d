"""The Subflow task's `outputs` as Kestra's FlowCaseTest asserts them (task-flow.yaml calling switch.yaml):
rendered in the child's context once it has ended, exposed as `outputs.outputs` of the Subflow task run; a
value that cannot be rendered FAILS the task; a child flow with `outputs` of its own gives those instead."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.model.execution import Level

SWITCH = """id: switch
namespace: io.kestra.tests
inputs:
  - id: string
    type: STRING
  - id: def
    type: STRING
    defaults: amazing
tasks:
  - id: parent-seq
    type: io.kestra.plugin.core.flow.Switch
    value: "{{inputs.string}}"
    cases:
      FIRST:
        - id: t1
          type: io.kestra.plugin.core.debug.Return
          format: "{{task.id}} > {{taskrun.startDate}}"
      THIRD:
        - id: t3
          type: io.kestra.plugin.core.flow.Sequential
          tasks:
            - id: failed
              type: io.kestra.plugin.core.execution.Fail
          errors:
            - id: error-t1
              type: io.kestra.plugin.core.debug.Return
              format: "Error Trigger ! {{task.id}}"
    defaults:
      - id: default
        type: io.kestra.plugin.core.debug.Return
        format: "{{task.id}} > {{ inputs.def }} > {{taskrun.startDate}}"
"""

TASK_FLOW = """id: task-flow
namespace: io.kestra.tests
inputs:
  - id: string
    type: STRING
tasks:
  - id: launch
    type: io.kestra.plugin.core.flow.Subflow
    namespace: io.kestra.tests
    flowId: switch
    inputs:
      string: "{{ inputs.string }}"
    wait: true
    transmitFailed: true
    outputs:
      extracted: "{{ outputs.default.value ?? outputs['error-t1'].value }}"
"""


@pytest.mark.parametrize("choice, state, child_state, child_runs, extracted", [
    ("OK", "SUCCESS", "SUCCESS", 2, "default > amazing"),           # FlowCaseTest.waitSuccess
    ("THIRD", "FAILED", "FAILED", 4, "Error Trigger ! error-t1"),   # FlowCaseTest.waitFailed
    ("FIRST", "FAILED", "SUCCESS", 2, None),                        # FlowCaseTest.invalidOutputs
])
def test_subflow_outputs_are_rendered_in_the_child(engine: Any, choice: str, state: str, child_state: str,
                                                   child_runs: int, extracted: str | None) -> None:
    engine.deploy(SWITCH)
    ex = engine.run(TASK_FLOW, inputs={"string": choice}, timeout=60)
    assert ex.state == state
    (launch,) = ex.task_run_list
    assert [a.state.current.value for a in launch.attempts] == [state]
    child = engine.get_execution(launch.outputs["executionId"])
    assert child.state == child_state and len(child.task_run_list) == child_runs
    assert child.trigger.type == "io.kestra.plugin.core.flow.Subflow"
    if extracted is not None:
        assert extracted in launch.outputs["outputs"]["extracted"]
        assert launch.outputs["state"] == child_state
    else:
        assert "outputs" not in launch.outputs
        errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
        assert any(m.startswith("Failed to extract outputs with the error: ") for m in errors), errors


def test_the_child_flows_own_outputs_win(engine: Any) -> None:
    engine.deploy("""id: child
namespace: io.kestra.tests
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hello
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.hello.value }}"
""")
    ex = engine.run("""id: parent
namespace: io.kestra.tests
tasks:
  - id: launch
    type: io.kestra.plugin.core.flow.Subflow
    namespace: io.kestra.tests
    flowId: child
    outputs:
      ignored: "{{ outputs.hello.value }} too"
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.launch.outputs.greeting }}"
""", timeout=60)
    assert ex.state == "SUCCESS"
    assert ex.task_run_list[0].outputs["outputs"] == {"greeting": "hello"}
    assert ex.task_run_list[1].outputs == {"value": "hello"}


def test_subflow_outputs_see_the_child_not_the_parent(engine: Any) -> None:
    engine.deploy("""id: child
namespace: io.kestra.tests
inputs:
  - id: n
    type: INT
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "child {{ inputs.n }}"
""")
    ex = engine.run("""id: parent
namespace: io.kestra.tests
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: parent
  - id: launch
    type: io.kestra.plugin.core.flow.Subflow
    namespace: io.kestra.tests
    flowId: child
    inputs:
      n: 7
    outputs:
      value: "{{ outputs.hello.value }}"
      flow: "{{ flow.id }}"
      nested:
        n: "{{ inputs.n }}"
""", timeout=60)
    assert ex.state == "SUCCESS"
    assert ex.task_run_list[1].outputs["outputs"] == {"value": "child 7", "flow": "child", "nested": {"n": "7"}}
