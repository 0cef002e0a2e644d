"""Resuming a Pause: the onResume inputs (Kestra's PauseTest) and the execution.Resume task (ResumeTest).

Messages: Kestra 1.x says "Missing required input:<id>" for a missing required onResume input
(PauseTest.runOnResumeMissingInputs) as for a missing required flow input (InputsTest.missingRequired);
0.x said "Invalid input for `<id>`, missing required input, but received `null`" for both.
"""
from __future__ import annotations

import threading
from typing import Any

import pytest

from kestra_nb.errors import InputValidationError
from kestra_nb.model.execution import Level
from kestra_nb.model.state import StateType

ON_RESUME = """id: asks
namespace: company.team
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: STRING
  - id: last
    type: io.kestra.plugin.core.output.OutputValues
    values:
      asked: "{{ outputs.pause.onResume.asked }}"
"""

ON_RESUME_OPTIONAL = """id: asks_maybe
namespace: company.team
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: STRING
        required: false
  - id: last
    type: io.kestra.plugin.core.output.OutputValues
    values:
      asked: "{{ outputs.pause.onResume.asked ?? 'MISSING' }}"
"""

PAUSED = """id: paused
namespace: company.team
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    tasks:
      - id: subtask
        type: io.kestra.plugin.core.log.Log
        message: after the resume
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ task.id }}"
"""

RESUMER = """id: resumer
namespace: company.team
inputs:
  - id: executionId
    type: STRING
tasks:
  - id: resume
    type: io.kestra.plugin.core.execution.Resume
    executionId: "{{ inputs.executionId }}"
"""


def start_until_paused(engine: Any, source: str) -> str:
    """Start `source` (not waiting for its end); its execution id once it is PAUSED."""
    paused = threading.Event()
    ids: list[str] = []

    def listener(event: Any) -> None:
        if getattr(event, "state", None) is StateType.PAUSED and event.execution_id in ids:
            paused.set()

    unsubscribe = engine.subscribe(None, listener)
    try:
        async def go() -> str:
            flow, revision = engine.deploy(source)
            ex = engine.new_execution(flow, revision)
            ids.append(ex.id)
            await engine.start(flow, ex)
            return ex.id

        execution_id = engine._call(go()).result(10)
        assert paused.wait(10), "the execution did not pause"
        return execution_id
    finally:
        unsubscribe()


def wait(engine: Any, execution_id: str) -> Any:
    return engine._call(engine.wait_async(execution_id)).result(15)


def test_resume_without_a_required_on_resume_input_is_refused(engine: Any) -> None:
    # PauseTest.runOnResumeMissingInputs: the resume throws, its message contains "Missing required input:asked"
    execution_id = start_until_paused(engine, ON_RESUME)
    with pytest.raises(InputValidationError, match="Missing required input:asked"):
        engine.resume(execution_id, {})
    assert engine.get_execution(execution_id).state.current is StateType.PAUSED
    engine.resume(execution_id, {"asked": "restarted"})  # PauseTest.runOnResume: then it runs to the end
    ex = wait(engine, execution_id)
    assert ex.state == "SUCCESS"
    assert ex.task_run_list[-1].outputs == {"values": {"asked": "restarted"}}


def test_a_missing_required_flow_input_has_the_same_message(engine: Any) -> None:
    # InputsTest.missingRequired: "Missing required input:string"
    yaml = "id: needs\nnamespace: company.team\ninputs:\n  - id: string\n    type: STRING\ntasks:\n" \
           "  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"
    with pytest.raises(InputValidationError, match="Missing required input:string"):
        engine.run(yaml, inputs={"string": None})


def test_resume_without_an_optional_on_resume_input(engine: Any) -> None:
    # PauseTest.runOnResumeOptionalInputs: SUCCESS, `asked` is "MISSING"
    execution_id = start_until_paused(engine, ON_RESUME_OPTIONAL)
    engine.resume(execution_id)
    ex = wait(engine, execution_id)
    assert ex.state == "SUCCESS"
    assert ex.task_run_list[-1].outputs == {"values": {"asked": "MISSING"}}


def test_resume_task_resumes_another_execution(engine: Any) -> None:
    # ResumeTest.resume (pause.yaml + resume-execution.yaml): the resuming execution is SUCCESS and the
    # paused one then ends (terminated)
    paused_id = start_until_paused(engine, PAUSED)
    ex = engine.run(RESUMER, inputs={"executionId": paused_id})
    assert ex.state == "SUCCESS"
    resumed = wait(engine, paused_id)
    assert resumed.state.current.is_terminated()
    assert [(tr.task_id, tr.state.current.value) for tr in resumed.task_run_list] == [
        ("pause", "SUCCESS"), ("subtask", "SUCCESS"), ("last", "SUCCESS")]


def test_resume_task_passes_on_resume_inputs_and_defaults_to_its_own_execution(engine: Any) -> None:
    # Resume: "By default, the task assumes that you want to resume the current executionId"; `inputs` are
    # the onResume inputs (rendered)
    yaml = """id: self_resume
namespace: company.team
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: gate
        type: io.kestra.plugin.core.flow.Pause
        onResume:
          - id: reason
            type: STRING
      - id: opener
        type: io.kestra.plugin.core.execution.Resume
        inputs:
          reason: "opened by {{ task.id }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.gate.onResume.reason }}"
"""
    ex = engine.run(yaml, timeout=30)
    assert ex.state == "SUCCESS"
    assert ex.task_run_list[-1].outputs == {"value": "opened by opener"}


@pytest.mark.parametrize("props, message", [
    ("    executionId: nope\n", "No execution found for execution id nope"),
    ("    executionId: nope\n    namespace: company.team\n", "Both `namespace` and `flowId` must be set"),
    ("    flowId: paused\n", "`namespace` and `flowId` should only be set when `executionId` is set."),
    ("", "is not paused, can't resume it"),   # its own execution, running
])
def test_resume_task_failures(engine: Any, props: str, message: str) -> None:
    # PluginUtilsService.executionFromTaskParameters and ExecutionService.resume: the task fails with these
    yaml = "id: bad_resume\nnamespace: company.team\ntasks:\n  - id: resume\n" \
           "    type: io.kestra.plugin.core.execution.Resume\n" + props
    ex = engine.run(yaml)
    assert ex.state == "FAILED"
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any(message in m for m in errors), errors


def test_resume_task_with_missing_on_resume_inputs_fails_and_leaves_it_paused(engine: Any) -> None:
    paused_id = start_until_paused(engine, ON_RESUME)
    ex = engine.run(RESUMER.replace("id: resumer", "id: resumer_missing"), inputs={"executionId": paused_id})
    assert ex.state == "FAILED"
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any("Missing required input:asked" in m for m in errors), errors
    assert engine.get_execution(paused_id).state.current is StateType.PAUSED
    engine.kill(paused_id, wait=True)
