"""debug.Echo and log.Fetch, following Kestra's tests (io.kestra.core.tasks.FetchTest and the flows
get-log.yaml, get-log-taskid.yaml, get-log-executionid.yaml of core/src/test/resources/flows/valids)."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level
from kestra_nb.tasks.ion import loads as ion_loads

ECHOES = """  - type: io.kestra.plugin.core.debug.Echo
    id: task-1
    format: task 1
  - type: io.kestra.plugin.core.debug.Echo
    id: task-2
    format: task 2
  - type: io.kestra.plugin.core.flow.Sleep
    id: sleep
    duration: PT0.1S
"""


def flow(tasks: str, flow_id: str = "get-log") -> str:
    return f"id: {flow_id}\nnamespace: io.kestra.tests\ntasks:\n{tasks}"


def run(tr_id: str, ex: Any) -> Any:
    return next(tr for tr in ex.task_run_list if tr.task_id == tr_id)


def rows(engine: Any, uri: str) -> list[dict[str, Any]]:
    return [ion_loads(line) for line in engine.store.storage.read_bytes(uri).decode().splitlines()]


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def kestra_lines(engine: Any, ex: Any) -> int:
    """The INFO+ lines of the tasks before Fetch (Kestra's Sleep adds `Waiting for PT0.1S`: 3 in all)."""
    return sum(1 for e in engine.store.list_logs(ex.id, min_level=Level.INFO) if e.task_id != "get-log-task")


# follows io.kestra.core.tasks.FetchTest#fetch
def test_fetch_logs_of_the_current_execution(engine: Any) -> None:
    ex = engine.run(flow(ECHOES + "  - type: io.kestra.plugin.core.log.Fetch\n    id: get-log-task\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 4
    fetch = run("get-log-task", ex)
    assert set(fetch.outputs) == {"size", "uri"}
    assert fetch.outputs["size"] == kestra_lines(engine, ex) >= 2
    assert fetch.outputs["uri"].startswith(
        f"kestra:///io/kestra/tests/get-log/executions/{ex.id}/tasks/get-log-task/{fetch.id}/")
    assert fetch.outputs["uri"].endswith(".ion")
    got = rows(engine, fetch.outputs["uri"])
    assert [(r["taskId"], r["level"], r["message"]) for r in got][:2] == [
        ("task-1", "INFO", "task 1"), ("task-2", "INFO", "task 2")]
    first = got[0]
    assert first["executionId"] == ex.id and first["namespace"] == "io.kestra.tests" and first["flowId"] == "get-log"
    assert first["taskRunId"] == run("task-1", ex).id and first["deleted"] is False
    assert isinstance(first["timestamp"], str) and first["timestamp"].endswith("Z")


def test_fetch_counts_the_sleep_line_as_kestra(engine: Any) -> None:
    ex = engine.run(flow(ECHOES + "  - type: io.kestra.plugin.core.log.Fetch\n    id: get-log-task\n"))
    assert run("get-log-task", ex).outputs["size"] == 3


# follows io.kestra.core.tasks.FetchTest#fetchWithTaskId
def test_fetch_with_task_ids(engine: Any) -> None:
    ex = engine.run(flow(ECHOES + "  - type: io.kestra.plugin.core.log.Fetch\n    id: get-log-task\n"
                                  "    tasksId:\n      - task-1\n", "get-log-taskid"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 4
    fetch = run("get-log-task", ex)
    assert fetch.outputs["size"] == 1
    assert [r["message"] for r in rows(engine, fetch.outputs["uri"])] == ["task 1"]


# follows io.kestra.core.tasks.FetchTest#fetchWithExecutionId
def test_fetch_with_execution_id(engine: Any) -> None:
    ex = engine.run(flow(ECHOES + "  - type: io.kestra.plugin.core.log.Fetch\n    id: get-log-task\n"
                                  '    executionId: "{{execution.id}}"\n', "get-log-executionid"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 4
    assert run("get-log-task", ex).outputs["size"] == kestra_lines(engine, ex)


def test_fetch_filters_by_level_and_reads_another_execution(engine: Any) -> None:
    first = engine.run(flow("  - id: quiet\n    type: io.kestra.plugin.core.debug.Echo\n    format: detail\n"
                            "    level: DEBUG\n"
                            "  - id: loud\n    type: io.kestra.plugin.core.log.Log\n    message: [w1, w2]\n"
                            "    level: WARN\n", "source"))
    assert first.state == "SUCCESS"
    ex = engine.run(flow(
        "  - id: warn\n    type: io.kestra.plugin.core.log.Fetch\n    level: WARN\n"
        f"    executionId: {first.id}\n    namespace: io.kestra.tests\n    flowId: source\n"
        "  - id: debug\n    type: io.kestra.plugin.core.log.Fetch\n    level: DEBUG\n"
        f"    executionId: {first.id}\n    namespace: io.kestra.tests\n    flowId: source\n"
        "    tasksId: [loud, quiet]\n"
        # the execution id alone looks in the current flow, as Kestra does: none of its logs are there
        "  - id: elsewhere\n    type: io.kestra.plugin.core.log.Fetch\n"
        f"    executionId: {first.id}\n", "reader"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert run("warn", ex).outputs["size"] == 2
    debug = run("debug", ex).outputs
    assert debug["size"] == 3
    assert [(r["taskId"], r["message"]) for r in rows(engine, debug["uri"])] == [
        ("loud", "w1"), ("loud", "w2"), ("quiet", "detail")]  # task by task, in `tasksId` order
    assert run("elsewhere", ex).outputs["size"] == 0


def test_fetch_namespace_without_flow_id_fails_with_kestras_message(engine: Any) -> None:
    ex = engine.run(flow("  - id: f\n    type: io.kestra.plugin.core.log.Fetch\n    executionId: abc\n"
                         "    namespace: io.kestra.tests\n"
                         "  - id: g\n    type: io.kestra.plugin.core.log.Fetch\n    flowId: x\n    allowFailure: true\n"))
    assert ex.state == "FAILED"
    assert errors(engine, ex) == ["Both `namespace` and `flowId` must be set when `executionId` is set."]
    ex = engine.run(flow("  - id: g\n    type: io.kestra.plugin.core.log.Fetch\n    flowId: x\n"))
    assert errors(engine, ex) == ["`namespace` and `flowId` should only be set when `executionId` is set."]


# follows the example of io.kestra.plugin.core.debug.Echo (level WARN, a rendered format)
def test_echo_logs_the_rendered_format_at_its_level(engine: Any) -> None:
    ex = engine.run(flow("  - id: echo\n    type: io.kestra.plugin.core.debug.Echo\n    level: WARN\n"
                         '    format: "{{ task.id }} > {{ flow.id }}"\n'
                         "  - id: legacy\n    type: io.kestra.core.tasks.debugs.Echo\n    format: plain\n", "echo_flow"))
    assert ex.state == "SUCCESS"
    assert [(e.task_id, e.level.value, e.message) for e in engine.store.list_logs(ex.id)] == [
        ("echo", "WARN", "echo > echo_flow"), ("legacy", "INFO", "plain")]
    assert all(tr.outputs is None for tr in ex.task_run_list)  # VoidOutput


@pytest.mark.parametrize("task, message", [
    ("    type: io.kestra.plugin.core.debug.Echo\n", "tasks[0].format: must not be null"),
    ("    type: io.kestra.plugin.core.debug.Echo\n    format: x\n    level: LOUD\n",
     "tasks[0].level: expected one of [ERROR, WARN, INFO, DEBUG, TRACE]"),
    ("    type: io.kestra.plugin.core.debug.Echo\n    format: [a, b]\n", "tasks[0].format"),
    ("    type: io.kestra.plugin.core.log.Fetch\n    tasksId: 42\n", "tasks[0].tasksId: expected a list"),
    ("    type: io.kestra.plugin.core.log.Fetch\n    level: NOISY\n", "tasks[0].level: expected one of"),
    ("    type: io.kestra.plugin.core.log.Fetch\n    taskId: [a]\n", 'tasks[0].taskId: Unrecognized field "taskId"'),
])
def test_bad_properties_are_validation_errors(engine: Any, task: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        engine.run(flow("  - id: t\n" + task))
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


def test_blank_echo_format_fails_the_task(engine: Any) -> None:
    ex = engine.run(flow("  - id: t\n    type: io.kestra.plugin.core.debug.Echo\n    format: '  '\n"))
    assert ex.state == "FAILED"
    assert errors(engine, ex) == ["Invalid `format`: must not be blank"]
