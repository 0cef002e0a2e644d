"""Task retries as Kestra's RetryCaseTest asserts them: `behavior: CREATE_NEW_EXECUTION` on a task ends the
execution RETRIED and starts the next attempt as a new execution (RETRIED, RETRIED, FAILED); a runnable task
without a retry of its own takes that of the nearest flowable around it (retry-flowable*.yaml)."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from kestra_nb.engine.events import ExecutionUpdated


def attempts_of(ex: Any) -> list[tuple[str, str, int]]:
    return [(tr.task_id, tr.state.current.value, len(tr.attempts or ())) for tr in ex.task_run_list]


def run_all(engine: Any, yaml: str, count: int) -> list[dict[str, Any]]:
    """Run a flow; the documents of the `count` executions it ends up making, by attempt number."""
    done: dict[str, dict[str, Any]] = {}
    finished = threading.Event()

    def listener(event: Any) -> None:
        if isinstance(event, ExecutionUpdated) and event.finished:
            done[event.execution_id] = event.document
            if len(done) >= count:
                finished.set()

    engine.subscribe(None, listener)
    engine.run(yaml, timeout=60)
    assert finished.wait(60), done
    return sorted(done.values(), key=lambda d: d["metadata"]["attemptNumber"])


NEW_EXECUTION = """id: retry-new-execution-task-{kind}
namespace: io.kestra.tests
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      behavior: CREATE_NEW_EXECUTION
      type: constant
{limits}
"""


@pytest.mark.parametrize("kind, limits", [
    # RetryCaseTest.retryNewExecutionTaskAttempts (maxAttempt: 3, interval PT1S there)
    ("attempts", "      maxAttempt: 3\n      interval: PT0.01S"),
    # RetryCaseTest.retryNewExecutionTaskDuration (maxDuration PT6S, interval PT2S there): the third
    # attempt's next date would pass the original creation date plus maxDuration
    ("duration", "      maxDuration: PT2.5S\n      interval: PT1S"),
])
def test_create_new_execution_on_a_task(engine: Any, kind: str, limits: str) -> None:
    docs = run_all(engine, NEW_EXECUTION.format(kind=kind, limits=limits), 3)
    assert [d["state"]["current"] for d in docs] == ["RETRIED", "RETRIED", "FAILED"]
    assert [d["metadata"]["attemptNumber"] for d in docs] == [1, 2, 3]
    first = docs[0]
    # Kestra's markWithTaskRunAs(RETRIED): the task run is RETRIED, its attempt stays FAILED
    assert [(tr["taskId"], tr["state"]["current"], [a["state"]["current"] for a in tr["attempts"]])
            for tr in first["taskRunList"]] == [("fail", "RETRIED", ["FAILED"])]
    assert docs[2]["taskRunList"][0]["state"]["current"] == "FAILED"
    assert docs[1]["parentId"] == first["id"] and docs[2]["parentId"] == docs[1]["id"]
    assert {d["originalId"] for d in docs} == {first["id"]}


def test_create_new_execution_from_a_flowable_marks_its_parents(engine: Any) -> None:
    yaml = """id: retry-new-execution-flowable
namespace: io.kestra.tests
tasks:
  - id: flowable
    type: io.kestra.plugin.core.flow.Parallel
    retry:
      behavior: CREATE_NEW_EXECUTION
      type: constant
      maxAttempt: 2
      interval: PT0.01S
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.5S
      - id: fail
        type: io.kestra.plugin.core.execution.Fail
"""
    docs = run_all(engine, yaml, 2)   # (the last attempt fails and waits for its sibling, as a Parallel does)
    assert [d["state"]["current"] for d in docs] == ["RETRIED", "FAILED"]
    states = {tr["taskId"]: tr["state"]["current"] for tr in docs[0]["taskRunList"]}
    assert states == {"flowable": "RETRIED", "fail": "RETRIED", "slow": "KILLED"}


def test_retry_failed_task_is_unchanged(engine: Any) -> None:
    # RetryCaseTest.retryFailedTaskAttempts (retry-failed-task-attempts.yml): one execution, 4 attempts
    yaml = """id: retry-failed-task-attempts
namespace: io.kestra.tests
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      behavior: RETRY_FAILED_TASK
      type: constant
      maxAttempt: 4
      interval: PT0.01S
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    assert attempts_of(ex) == [("fail", "FAILED", 4)]
    assert ex.metadata.attempt_number == 1


RETRY = """      retry:
        type: constant
        interval: PT0.01S
        maxAttempt: 3
"""


def test_retry_on_a_flowable_applies_to_its_failed_child(engine: Any) -> None:
    # RetryCaseTest.retryFlowable (retry-flowable.yaml): FAILED, taskRunList[1] (the child) has 3 attempts
    yaml = ("id: retry-flowable\nnamespace: io.kestra.tests\ntasks:\n  - id: flowable\n"
            "    type: io.kestra.plugin.core.flow.Sequential\n" + RETRY.replace("      ", "    ", 1)
            .replace("\n        ", "\n      ") +
            "    tasks:\n      - id: child\n        type: io.kestra.plugin.core.execution.Fail\n")
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    assert attempts_of(ex) == [("flowable", "FAILED", 0), ("child", "FAILED", 3)]


def test_retry_on_an_outer_flowable_reaches_a_nested_child(engine: Any) -> None:
    # ExecutorService: the nearest parent task with a retry (findParentTasksByTaskId up the tree)
    yaml = """id: retry-flowable-outer
namespace: io.kestra.tests
tasks:
  - id: flowable
    type: io.kestra.plugin.core.flow.Sequential
    retry:
      type: constant
      interval: PT0.01S
      maxAttempt: 2
    tasks:
      - id: flowable2
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: child
            type: io.kestra.plugin.core.execution.Fail
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    assert attempts_of(ex) == [("flowable", "FAILED", 0), ("flowable2", "FAILED", 0), ("child", "FAILED", 2)]


def test_retry_of_a_nested_child_of_its_own(engine: Any) -> None:
    # RetryCaseTest.retryFlowableNestedChild (retry-flowable-nested-child.yaml): taskRunList[2] has 3 attempts
    yaml = ("id: retry-flowable-nested-child\nnamespace: io.kestra.tests\ntasks:\n  - id: flowable\n"
            "    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: flowable2\n"
            "        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n          - id: child\n"
            "            type: io.kestra.plugin.core.execution.Fail\n"
            "            retry:\n              type: constant\n              interval: PT0.01S\n"
            "              maxAttempt: 3\n")
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    assert attempts_of(ex)[2] == ("child", "FAILED", 3)


def test_retry_on_a_foreach_applies_to_each_value(engine: Any) -> None:
    # RetryCaseTest.retryFlowableParallel (retry-flowable-parallel.yaml): FAILED, both children retried
    yaml = """id: retry-flowable-parallel
namespace: io.kestra.tests
tasks:
  - id: flowable
    type: io.kestra.plugin.core.flow.ForEach
    concurrencyLimit: 0
    values: [0, 1]
    retry:
      type: constant
      interval: PT0.01S
      maxAttempt: 3
    tasks:
      - id: child
        type: io.kestra.plugin.core.execution.Fail
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "FAILED"
    runs = attempts_of(ex)
    assert runs[0] == ("flowable", "FAILED", 0)
    assert sorted(runs[1:]) == [("child", "FAILED", 3), ("child", "FAILED", 3)]


def test_the_next_execution_of_a_retry_survives_a_restart(tmp_path: Any) -> None:
    from kestra_nb.engine import Engine

    first = Engine(tmp_path / "store")
    retried = threading.Event()
    first.subscribe(None, lambda e: isinstance(e, ExecutionUpdated) and e.finished
                    and e.state.value == "RETRIED" and retried.set())
    source = NEW_EXECUTION.format(kind="attempts", limits="      maxAttempt: 2\n      interval: PT0.5S")
    ex = first.run(source, timeout=60)
    assert ex.state == "RETRIED" and retried.wait(10)
    # the next attempt is stored at once, to start at the retry's date
    (pending,) = [c for c in first.store.search_executions(flow_id=ex.flow_id, size=10)[0] if c.id != ex.id]
    assert pending.state == "CREATED" and pending.schedule_date is not None and pending.parent_id == ex.id
    first.close()   # the process stops before that date

    finished = threading.Event()
    second = Engine(tmp_path / "store")
    try:
        second.subscribe(pending.id, lambda e: isinstance(e, ExecutionUpdated) and e.finished and finished.set())
        assert pending.id in second.recovered
        assert finished.wait(30)
        done = second.get_execution(pending.id)
        assert done.state == "FAILED" and done.metadata.attempt_number == 2
        assert done.state.histories[1].date >= pending.schedule_date
    finally:
        second.close()


def test_a_flow_retry_retries_a_failed_subflow_task(engine: Any) -> None:
    # RetryCaseTest.retrySubflow (retry-subflow.yaml over failed-first.yaml): FAILED, the Subflow task run has
    # 3 attempts (a new child execution each)
    engine.deploy("""id: failed-first
namespace: io.kestra.tests
tasks:
- id: t1
  type: io.kestra.plugin.core.debug.Return
  format: "{{missingVar}}"
- id: t2
  type: io.kestra.plugin.core.debug.Return
  format: Never Happen
""")
    ex = engine.run("""id: retry-subflow
namespace: io.kestra.tests
retry:
  type: constant
  interval: PT0.01S
  maxAttempt: 3
tasks:
  - id: subflow
    type: io.kestra.plugin.core.flow.Subflow
    namespace: io.kestra.tests
    flowId: failed-first
""", timeout=60)
    assert ex.state == "FAILED"
    assert attempts_of(ex) == [("subflow", "FAILED", 3)]
    assert engine.store.search_executions(flow_id="failed-first", size=10)[1] == 3
