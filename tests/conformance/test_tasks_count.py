"""execution.Count, following Kestra's Count task over ExecutionRepository.executionCounts (its repository test
AbstractExecutionRepositoryTest#executionsCount: one count per listed flow, 0 for a flow without executions)."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level


def simple(flow_id: str, fail: bool = False) -> str:
    task = "io.kestra.plugin.core.execution.Fail" if fail else "io.kestra.plugin.core.debug.Return"
    return f"id: {flow_id}\nnamespace: company.team\ntasks:\n  - id: t\n    type: {task}\n"


def counter(props: str) -> str:
    return ("id: counter\nnamespace: company.other\ntasks:\n  - id: count\n"
            "    type: io.kestra.plugin.core.execution.Count\n" + props)


def outputs(ex: Any) -> Any:
    return ex.task_run_list[0].outputs


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


FLOWS = """    flows:
      - namespace: company.team
        flowId: first
      - namespace: company.team
        flowId: second
      - namespace: company.team
        flowId: third
      - namespace: company.team
        flowId: missing
"""


@pytest.fixture
def executions(engine: Any) -> Any:
    for i in range(6):
        engine.run(simple("first" if i < 2 else "second" if i < 5 else "third", fail=i == 5))
    return engine


# follows io.kestra.core.repositories.AbstractExecutionRepositoryTest#executionsCount
def test_count_per_flow_with_zero_for_missing_flows(executions: Any) -> None:
    ex = executions.run(counter(FLOWS + "    startDate: \"{{ now() | dateAdd(-10, 'DAYS') }}\"\n"
                                        "    expression: \"{{ count >= 0 }}\"\n"))
    assert ex.state == "SUCCESS", errors(executions, ex)
    assert outputs(ex) == {"results": [
        {"namespace": "company.team", "flowId": "first", "count": 2},
        {"namespace": "company.team", "flowId": "second", "count": 3},
        {"namespace": "company.team", "flowId": "third", "count": 1},
        {"namespace": "company.team", "flowId": "missing", "count": 0}], "total": 6}


def test_count_filters_by_state_expression_and_namespace(executions: Any) -> None:
    ex = executions.run(counter(FLOWS + "    states: [SUCCESS]\n    startDate: \"2000-01-01T00:00:00Z\"\n"
                                        "    expression: \"{{ count > 1 }}\"\n"))
    assert ex.state == "SUCCESS", errors(executions, ex)
    assert outputs(ex) == {"results": [{"namespace": "company.team", "flowId": "first", "count": 2},
                                       {"namespace": "company.team", "flowId": "second", "count": 3}], "total": 5}
    # namespaces: one result per namespace that has executions (the flow id left out)
    ex = executions.run(counter("    namespaces: [company.team, company.none]\n"
                                "    startDate: \"2000-01-01T00:00:00+02:00[Europe/Paris]\"\n"
                                "    endDate: \"{{ now() }}\"\n    expression: \"{{ count == 6 }}\"\n"))
    assert ex.state == "SUCCESS", errors(executions, ex)
    assert outputs(ex) == {"results": [{"namespace": "company.team", "count": 6}], "total": 6}
    # a window before every execution
    ex = executions.run(counter(FLOWS + "    startDate: \"2000-01-01T00:00:00Z\"\n"
                                        "    endDate: \"2000-01-02T00:00:00Z\"\n    expression: \"{{ count == 0 }}\"\n"))
    assert outputs(ex)["total"] == 0 and len(outputs(ex)["results"]) == 4


@pytest.mark.parametrize("props, message", [
    ("    startDate: \"2000-01-01T00:00:00Z\"\n    expression: x\n", "You must provide a list of flows or namespaces"),
    ("    namespaces: [a]\n    startDate: yesterday\n    expression: x\n",
     "Invalid `startDate` `yesterday`: expected an ISO-8601 date-time with an offset"),
    ("    namespaces: [a]\n    startDate: \"2000-01-01T00:00:00\"\n    expression: x\n",
     "Invalid `startDate` `2000-01-01T00:00:00`"),
    ("    flows: [{namespace: a}]\n    startDate: \"2000-01-01T00:00:00Z\"\n    expression: x\n",
     "Invalid `flows[0]`: expected a map with `namespace` and `flowId`"),
    ("    namespaces: [a]\n    states: [DONE]\n    startDate: \"2000-01-01T00:00:00Z\"\n    expression: x\n",
     "Invalid `states[0]` `DONE`: expected one of CREATED"),
])
def test_bad_values_fail_the_task_clearly(engine: Any, props: str, message: str) -> None:
    ex = engine.run(counter(props))
    assert ex.state == "FAILED"
    assert errors(engine, ex)[0].startswith(message), errors(engine, ex)


@pytest.mark.parametrize("props, message", [
    ("    namespaces: [a]\n    expression: x\n", "tasks[0].startDate: must not be null"),
    ("    namespaces: [a]\n    startDate: \"2000-01-01T00:00:00Z\"\n", "tasks[0].expression: must not be null"),
    ("    namespaces: a\n    startDate: \"2000-01-01T00:00:00Z\"\n    expression: x\n",
     "tasks[0].namespaces: expected a list"),
])
def test_bad_properties_are_validation_errors(engine: Any, props: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        engine.run(counter(props))
    assert message in str(info.value)


def test_legacy_name(engine: Any) -> None:
    ex = engine.run(counter("    namespaces: [company.other]\n    startDate: \"2000-01-01T00:00:00Z\"\n"
                            "    expression: \"{{ count == 1 }}\"\n").replace(
        "io.kestra.plugin.core.execution.Count", "io.kestra.core.tasks.executions.Counts"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert outputs(ex) == {"results": [{"namespace": "company.other", "count": 1}], "total": 1}  # itself, running
