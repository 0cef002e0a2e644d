"""Spec §6.2 through the engine: the variables a task sees, errors naming task and property, kv(),
secret() masking, errorLogs(), tasksWithState(), render() of flow variables."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kestra_nb.model.execution import Level


def outputs(ex: Any) -> dict[str, Any]:
    return {tr.task_id + (f"[{tr.value}]" if tr.value else ""): (tr.outputs or {}).get("value")
            for tr in ex.task_run_list}


def ret(task_id: str, fmt: str) -> str:
    return f"  - id: {task_id}\n    type: io.kestra.plugin.core.debug.Return\n    format: {json.dumps(fmt)}\n"


def log_messages(engine: Any, ex: Any, level: Level | None = None) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=level)]


FLOW = "id: vars_flow\nnamespace: company.team\n"


def test_flow_execution_task_and_taskrun_variables(engine: Any) -> None:
    tasks = (ret("ids", "{{ flow.id }}|{{ flow.namespace }}|{{ flow.revision }}|{{ flow.tenantId }}")
             + ret("ex", "{{ execution.id }}|{{ execution.state }}|{{ execution.startDate | date('yyyy') > '2000' }}")
             + ret("task", "{{ task.id }}|{{ task.type }}")
             + ret("run", "{{ taskrun.id | length > 10 }}|{{ taskrun.attemptsCount }}|{{ taskrun.startDate is defined }}")
             + ret("parents", "{{ parents | length }}|{{ parent ?? 'no parent' }}|{{ taskrun.value ?? 'no value' }}"))
    ex = engine.run(FLOW + "tasks:\n" + tasks)
    assert ex.state == "SUCCESS", log_messages(engine, ex)
    out = outputs(ex)
    assert out["ids"] == f"vars_flow|company.team|{ex.flow_revision}|main"
    assert out["ex"] == f"{ex.id}|RUNNING|true"
    assert out["task"] == "task|io.kestra.plugin.core.debug.Return"
    assert out["run"] == "true|0|true"
    assert out["parents"] == "0|no parent|no value"


def test_inputs_outputs_vars_labels_and_tasks(engine: Any) -> None:
    yaml = (FLOW
            + "inputs:\n  - id: who\n    type: STRING\n    defaults: world\n"
            + "  - id: payload\n    type: JSON\n    defaults: '{\"score\": {\"a\": 2, \"b\": 3}}'\n"
            + "labels:\n  team: data\n"
            + "variables:\n  greeting: hello\n  deferred: \"{{ inputs.who | upper }}\"\n"
            + "tasks:\n"
            + ret("first", "{{ vars.greeting }} {{ inputs.who }}")
            + ret("second", "{{ outputs.first.value }}!")
            + ret("json", "{{ inputs.payload.score.a + inputs.payload.score.b }}")
            + ret("labels", "{{ labels.team }}|{{ labels.system.correlationId == execution.id }}")
            + ret("states", "{{ tasks.first.state }}")
            + ret("single_pass", "{{ vars.deferred }}")
            + ret("rendered", "{{ render(vars.deferred) }}"))
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", log_messages(engine, ex)
    out = outputs(ex)
    assert out["first"] == "hello world"
    assert out["second"] == "hello world!"
    assert out["json"] == "5"
    assert out["labels"] == "data|true"
    assert out["states"] == "SUCCESS"
    assert out["single_pass"] == "{{ inputs.who | upper }}"
    assert out["rendered"] == "WORLD"


def test_trigger_envs_globals_and_kestra(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV_MY_SETTING", "on")
    monkeypatch.setattr("kestra_nb.engine.context._ENVS", None)  # envs are read once per process
    monkeypatch.setenv("KESTRA_NB_URL", "http://localhost:8080/")
    tasks = (ret("trigger", "{{ trigger.date ?? 'not triggered' }}|{{ trigger is defined }}")
             + ret("envs", "{{ envs.my_setting }}|{{ globals | length }}")
             + ret("kestra", "{{ kestra.url }}|{{ kestra.environment ?? 'no environment' }}"))
    ex = engine.run(FLOW + "tasks:\n" + tasks)
    assert ex.state == "SUCCESS", log_messages(engine, ex)
    assert outputs(ex) == {"trigger": "not triggered|false", "envs": "on|0",
                           "kestra": "http://localhost:8080/|no environment"}


def test_parent_and_parents_inside_loops(engine: Any) -> None:
    yaml = (FLOW + "tasks:\n"
            + "  - id: outer\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [\"a\", \"b\"]\n    tasks:\n"
            + "      - id: inner\n        type: io.kestra.plugin.core.flow.ForEach\n        values: [1, 2]\n"
            + "        tasks:\n"
            + "          - id: cell\n            type: io.kestra.plugin.core.debug.Return\n"
            + "            format: \"{{ parent.taskrun.value }}{{ taskrun.value }}|{{ parents | length }}|"
            + "{{ parent.outputs ?? 'none' }}\"\n"
            + "      - id: after\n        type: io.kestra.plugin.core.debug.Return\n"
            + "        format: \"{{ outputs.cell[taskrun.value]['2'].value }}\"\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", log_messages(engine, ex)
    # the outer ForEach run has neither a value nor outputs: Kestra leaves it out of `parents`
    cells = sorted(tr.outputs["value"] for tr in ex.task_run_list if tr.task_id == "cell")
    assert cells == ["a1|1|none", "a2|1|none", "b1|1|none", "b2|1|none"]
    assert sorted(tr.outputs["value"] for tr in ex.task_run_list if tr.task_id == "after") == ["a2|1|none", "b2|1|none"]


def test_undefined_variable_fails_the_task_naming_task_and_property(engine: Any) -> None:
    ex = engine.run(FLOW + "tasks:\n" + ret("broken", "value: {{ nope.x }}"))
    assert ex.state == "FAILED"
    errors = log_messages(engine, ex, Level.ERROR)
    assert any("Unable to find `nope` used in the expression `value: {{ nope.x }}` at line 1" in m
               and "task `broken`" in m and "property `format`" in m for m in errors), errors


def test_run_if_with_pebble_syntax(engine: Any) -> None:
    tasks = ("  - id: skipped\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"
             "    runIf: \"{{ execution.state isIn ['SUCCESS', 'KILLED'] }}\"\n"
             "  - id: ran\n    type: io.kestra.plugin.core.debug.Return\n    format: y\n"
             "    runIf: \"{{ (missing ?? 'FAILED') equals 'FAILED' ? true : false }}\"\n")
    ex = engine.run(FLOW + "tasks:\n" + tasks)
    assert {tr.task_id: tr.state.current.value for tr in ex.task_run_list} == {"skipped": "SKIPPED", "ran": "SUCCESS"}


def test_kv_reads_the_store_of_the_engine(engine: Any) -> None:
    engine.store.kv_put("company.team", "my_key", {"answer": 42}, "JSON")
    tasks = (ret("found", "{{ kv('my_key').answer }}")
             + ret("fallback", "{{ kv('missing_key', errorOnMissing=false) ?? 'fallback' }}")
             + ret("missing", "{{ kv('missing_key') }}"))
    ex = engine.run(FLOW + "tasks:\n" + tasks)
    assert outputs(ex) == {"found": "42", "fallback": "fallback", "missing": None}
    assert any("The key 'missing_key' does not exist in the namespace 'company.team'." in m
               for m in log_messages(engine, ex, Level.ERROR))


def test_secret_values_are_masked_in_task_logs(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(b"hunter2-hunter2").decode())
    tasks = ("  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
             "    message: \"password is {{ secret('DB_PASSWORD') }}\"\n"
             + ret("value", "{{ secret('db_password') | length }}"))
    ex = engine.run(FLOW + "tasks:\n" + tasks)
    assert ex.state == "SUCCESS", log_messages(engine, ex)
    messages = log_messages(engine, ex)
    assert "password is **masked*******" in messages  # 15 stars, the first nine spelling **masked*
    assert not any("hunter2" in m for m in messages)
    assert outputs(ex)["value"] == "15"


def test_missing_secret_fails_the_task(engine: Any) -> None:
    ex = engine.run(FLOW + "tasks:\n" + ret("s", "{{ secret('DOES_NOT_EXIST') }}"))
    assert ex.state == "FAILED"
    assert any("Cannot find secret for key 'DOES_NOT_EXIST'." in m for m in log_messages(engine, ex, Level.ERROR))


def test_error_logs_and_tasks_with_state_in_the_errors_branch(engine: Any) -> None:
    yaml = (FLOW + "tasks:\n"
            + "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"
            + "    errorMessage: Something went wrong\n"
            + "errors:\n"
            + ret("alert", "{{ errorLogs() | length > 0 }}|{{ (errorLogs() | first).message }}|"
                           "{{ (errorLogs() | first).taskId }}")
            + ret("failed", "{{ tasksWithState('failed') }}"))
    ex = engine.run(yaml)
    assert ex.state == "FAILED"
    out = outputs(ex)
    assert out["alert"] == "true|Something went wrong|boom"
    assert out["failed"] == '[{"state":"FAILED","taskId":"boom"}]'


def test_flow_outputs_render_with_pebble(engine: Any) -> None:
    yaml = (FLOW + "tasks:\n" + ret("t", "abc")
            + "outputs:\n  - id: shout\n    type: STRING\n    value: \"{{ outputs.t.value | upper ~ '!' }}\"\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    assert ex.outputs == {"shout": "ABC!"}
