"""log.PurgeLogs, execution.PurgeExecutions (PurgeLogsTest, PurgeExecutionsTest) and
templating.TemplatedTask (TemplatedTaskTest), on SQLite and memory stores."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.engine import Engine
from kestra_nb.model.execution import Level, LogEntry
from kestra_nb.store import base as store_base
from kestra_nb.store.memory import MemoryStore

UTC = timezone.utc
LATER = "{{ now() | dateAdd(1, 'MINUTES') }}"


@pytest.fixture(params=["sqlite", "memory"])
def eng(request: Any, tmp_path: Path) -> Any:
    e = Engine(tmp_path / "store" if request.param == "sqlite" else MemoryStore())
    yield e
    e.close()


def returning(flow_id: str, namespace: str = "run.namespace") -> str:
    return f"""id: {flow_id}
namespace: {namespace}
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hello
"""


def purger(props: str, namespace: str = "company.team") -> str:
    return f"""id: purger
namespace: {namespace}
tasks:
  - id: purge
    type: io.kestra.plugin.core.execution.PurgeExecutions
    endDate: "{LATER}"
{props}"""


def outputs(ex: Any) -> dict[str, Any]:
    assert ex.state == "SUCCESS", [tr.state.current for tr in ex.task_run_list]
    return ex.task_run_list[0].outputs


def test_purge_executions_of_a_flow(eng: Any) -> None:
    # PurgeExecutionsTest.run: one execution of run.namespace.run-flow-id -> executionsCount 1
    target = eng.run(returning("run-flow-id"))
    other = eng.run(returning("other-flow"))
    out = outputs(eng.run(purger("    namespace: run.namespace\n    flowId: run-flow-id\n")))
    assert out["executionsCount"] == 1 and out["logsCount"] >= 1
    assert set(out) == {"executionsCount", "logsCount", "storagesCount", "metricsCount"}
    assert eng.store.get_execution(target.id) is None
    assert eng.store.list_logs(target.id) == []
    assert eng.store.get_execution(other.id) is not None


def test_purge_executions_namespace_is_a_prefix_without_flow_id_and_keeps_the_running_one(eng: Any) -> None:
    a = eng.run(returning("a", "run.namespace.sub"))
    b = eng.run(returning("b", "run.namespacex"))
    # the purging execution is in the purged namespace: it is never purged (it is running)
    ex = eng.run(purger("    namespace: run.namespace\n", namespace="run.namespace"))
    assert outputs(ex)["executionsCount"] == 1
    assert eng.store.get_execution(a.id) is None and eng.store.get_execution(b.id) is not None
    assert eng.store.get_execution(ex.id) is not None


def test_purge_only_logs_or_only_states(eng: Any) -> None:
    ok = eng.run(returning("ok"))
    failed = eng.run("""id: bad
namespace: run.namespace
tasks:
  - id: f
    type: io.kestra.plugin.core.execution.Fail
""")
    out = outputs(eng.run(purger("    namespace: run.namespace\n    purgeExecution: false\n")))
    assert out["executionsCount"] == 0 and out["logsCount"] >= 2
    assert eng.store.get_execution(ok.id) is not None and eng.store.list_logs(ok.id) == []
    out = outputs(eng.run(purger("    namespace: run.namespace\n    states: [FAILED]\n")))
    assert out["executionsCount"] == 1
    assert eng.store.get_execution(failed.id) is None and eng.store.get_execution(ok.id) is not None
    # a start window in the future matches nothing
    out = outputs(eng.run(purger(f"    namespace: run.namespace\n    startDate: \"{LATER}\"\n")))
    assert out["executionsCount"] == 0


def test_purge_executions_removes_their_files(eng: Any) -> None:
    ex = eng.run("""id: writer
namespace: run.namespace
tasks:
  - id: w
    type: io.kestra.plugin.core.storage.Write
    content: hello
""")
    uri = ex.task_run_list[0].outputs["uri"]
    assert eng.store.storage.exists(uri)
    out = outputs(eng.run(purger("    namespace: run.namespace\n")))
    assert out["executionsCount"] == 1 and out["storagesCount"] == 1
    assert not eng.store.storage.exists(uri)


def test_purge_executions_in_batches(eng: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_base, "PURGE_BATCH", 2)
    import kestra_nb.store.sqlite as sqlite_store
    monkeypatch.setattr(sqlite_store, "PURGE_BATCH", 2)
    ids = [eng.run(returning("many")).id for _ in range(5)]
    assert outputs(eng.run(purger("    namespace: run.namespace\n    flowId: many\n")))["executionsCount"] == 5
    assert all(eng.store.get_execution(i) is None for i in ids)


def log(namespace: str, flow_id: str, level: Level, when: datetime) -> LogEntry:
    return LogEntry(namespace=namespace, flow_id=flow_id, timestamp=when, level=level, message="Hello World")


def test_purge_logs(eng: Any) -> None:
    # PurgeLogsTest.run: one log line (no execution) -> count 1
    now = datetime.now(UTC)
    eng.store.append_logs([log("namespace", "flowId", Level.INFO, now)])
    ex = eng.run(f"""id: purge-logs
namespace: company.team
tasks:
  - id: purge
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: namespace
    endDate: "{LATER}"
""")
    assert outputs(ex) == {"count": 1}
    # levels and dates
    eng.store.append_logs([log("ns", "f", Level.INFO, now), log("ns", "f", Level.ERROR, now),
                           log("ns", "g", Level.INFO, now - timedelta(days=3))])
    ex = eng.run(f"""id: purge-logs
namespace: company.team
tasks:
  - id: levels
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: ns
    logLevels: [ERROR]
    endDate: "{LATER}"
  - id: dates
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: ns
    startDate: "{{{{ now() | dateAdd(-1, 'DAYS') }}}}"
    endDate: "{LATER}"
  - id: flow
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: ns
    flowId: g
    endDate: "{LATER}"
""")
    assert [tr.outputs for tr in ex.task_run_list] == [{"count": 1}, {"count": 1}, {"count": 1}]


@pytest.mark.parametrize("task,message", [
    ("    type: io.kestra.plugin.core.log.PurgeLogs\n    endDate: yesterday\n",
     "Invalid `endDate` `yesterday`: expected an ISO-8601 date-time with an offset"),
    ("    type: io.kestra.plugin.core.log.PurgeLogs\n    endDate: \"2024-01-01T00:00:00Z\"\n    logLevels: [LOUD]\n",
     "Invalid `logLevels[0]` `LOUD`: expected one of ERROR, WARN, INFO, DEBUG, TRACE"),
    ("    type: io.kestra.plugin.core.execution.PurgeExecutions\n    endDate: \"2024-01-01T00:00:00Z\"\n"
     "    states: [DONE]\n", "Invalid `states[0]` `DONE`"),
])
def test_bad_purge_properties_fail_the_task(eng: Any, task: str, message: str) -> None:
    ex = eng.run("id: p\nnamespace: company.team\ntasks:\n  - id: t\n" + task)
    assert ex.state == "FAILED"
    errors = [e.message for e in eng.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any(message in m for m in errors), errors


def test_purge_without_end_date_is_refused_at_validation() -> None:
    from kestra_nb.parsing import check_flow

    for kind in ("io.kestra.plugin.core.log.PurgeLogs", "io.kestra.plugin.core.execution.PurgeExecutions"):
        result = check_flow(f"id: p\nnamespace: n\ntasks:\n  - id: t\n    type: {kind}\n")
        assert [(v.path, v.message) for v in result.violations] == [("tasks[0].endDate", "must not be null")]


# ---------------------------------------------------------------------------------------- TemplatedTask

def templated(spec: str, extra: str = "") -> str:
    return f"""id: templated
namespace: company.team
variables:
  type: io.kestra.plugin.core.debug.Return
tasks:
  - id: template
    type: io.kestra.plugin.core.templating.TemplatedTask
    spec: |
{spec}
{extra}"""


def task_error(eng: Any, ex: Any) -> list[str]:
    assert ex.state == "FAILED"
    return [e.message for e in eng.store.list_logs(ex.id, min_level=Level.ERROR)]


def test_templated_type(eng: Any) -> None:
    # TemplatedTaskTest.templatedType
    ex = eng.run(templated("      type: \"{{ vars.type }}\"\n      format: It's alive!"))
    assert ex.state == "SUCCESS" and ex.task_run_list[0].outputs == {"value": "It's alive!"}


def test_templated_flowable_and_templated_templated_are_refused(eng: Any) -> None:
    # TemplatedTaskTest.templatedFlowable, templatedTemplated
    errors = task_error(eng, eng.run(templated("      type: io.kestra.plugin.core.flow.Pause\n      delay: PT10S")))
    assert any("The templated task must be a runnable task" in m for m in errors), errors
    errors = task_error(eng, eng.run(templated(
        "      type: io.kestra.plugin.core.templating.TemplatedTask\n      spec: whatever")))
    assert any("The templated task cannot be of type 'io.kestra.plugin.core.templating.TemplatedTask'" in m
               for m in errors), errors


@pytest.mark.parametrize("spec,message", [
    ("      type: io.kestra.plugin.core.debug.Return\n      colour: red", 'spec.colour: Unrecognized field "colour"'),
    ("      type: io.kestra.plugin.core.debug.Nope", "spec.type: Invalid type: io.kestra.plugin.core.debug.Nope"),
    ("      - just\n      - a list", "the rendered text must be a task"),
    ("      type: [", "the rendered text is not a task's YAML"),
])
def test_a_bad_rendered_spec_fails_the_task_naming_the_property(eng: Any, spec: str, message: str) -> None:
    errors = task_error(eng, eng.run(templated(spec)))
    assert any(message in m for m in errors), errors
