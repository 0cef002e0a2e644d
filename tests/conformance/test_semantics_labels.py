"""execution.Labels as Kestra's RuntimeLabelsTest asserts it: labels from a rendered JSON string, a map and
a list; flow and execution labels kept, same keys overridden, scalar values taken as text."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.model.execution import Level

UPDATE = """id: relabel
namespace: company.team
labels:
  fromFlow: flowValue
  overriddenFlowKey: willBeOverridden
inputs:
  - id: asJson
    type: JSON
  - id: mapKey
    type: STRING
  - id: mapValue
    type: STRING
  - id: listKey
    type: STRING
  - id: listValue
    type: STRING
tasks:
  - id: from_json
    type: io.kestra.plugin.core.execution.Labels
    labels: "{{ inputs.asJson }}"
  - id: from_map
    type: io.kestra.plugin.core.execution.Labels
    labels:
      "{{ inputs.mapKey }}": "{{ inputs.mapValue }}"
  - id: from_list
    type: io.kestra.plugin.core.execution.Labels
    labels:
      - key: "{{ inputs.listKey }}"
        value: "{{ inputs.listValue }}"
  - id: overrides
    type: io.kestra.plugin.core.execution.Labels
    labels:
      overriddenFlowKey: "{{ flow.namespace ~ '.' ~ flow.id }}"
      overriddenExecutionKey: "{{ taskrun.id }}"
"""


def labels(ex: Any) -> set[tuple[str, str]]:
    return {(lb.key, lb.value) for lb in ex.labels}


def only(ex: Any, task_id: str) -> Any:
    (tr,) = [tr for tr in ex.task_run_list if tr.task_id == task_id]
    return tr


def test_labels_from_json_text_a_map_and_a_list(engine: Any) -> None:
    # RuntimeLabelsTest.update (labels-update-task.yml): 4 task runs, SUCCESS, and exactly these labels
    ex = engine.run(UPDATE, inputs={
        "asJson": '{"keyFromJson": "valueFromJson"}', "mapKey": "keyFromMap", "mapValue": "valueFromMap",
        "listKey": "keyFromList", "listValue": "valueFromList",
    }, labels={"fromExecution": "executionValue", "overriddenExecutionKey": "willBeOverridden"})
    assert ex.state == "SUCCESS"
    assert len(ex.task_run_list) == 4
    assert labels(ex) == {
        ("system.correlationId", ex.id),
        ("fromFlow", "flowValue"),
        ("overriddenFlowKey", "company.team.relabel"),
        ("keyFromJson", "valueFromJson"),
        ("keyFromMap", "valueFromMap"),
        ("keyFromList", "valueFromList"),
        ("fromExecution", "executionValue"),
        ("overriddenExecutionKey", only(ex, "overrides").id),
    }


def test_labels_from_to_json_of_a_map(engine: Any) -> None:
    # Labels.update: a `labels` string is rendered then read as a JSON map of label key to value
    yaml = """id: relabel_json
namespace: company.team
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.Labels
    labels: "{{ {'team': 'data', 'count': 3, 'on': true} | toJson }}"
"""
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    assert {("team", "data"), ("count", "3"), ("on", "true")} <= labels(ex)


def test_labels_with_primitive_values_become_text(engine: Any) -> None:
    # RuntimeLabelsTest.primitiveTypeLabels (primitive-labels-flow.yml): INT, FLOAT and BOOLEAN inputs
    yaml = """id: relabel_primitive
namespace: company.team
inputs:
  - id: intLabel
    type: INT
  - id: floatLabel
    type: FLOAT
  - id: boolLabel
    type: BOOLEAN
tasks:
  - id: update
    type: io.kestra.plugin.core.execution.Labels
    labels:
      intValue: "{{ inputs.intLabel }}"
      floatValue: "{{ inputs.floatLabel }}"
      boolValue: "{{ inputs.boolLabel }}"
      taskRunId: "{{ taskrun.id }}"
"""
    ex = engine.run(yaml, inputs={"intLabel": 42, "boolLabel": True, "floatLabel": 3.14},
                    labels={"existingLabel": "someValue"})
    assert ex.state == "SUCCESS" and len(ex.task_run_list) == 1
    assert labels(ex) == {
        ("system.correlationId", ex.id), ("intValue", "42"), ("boolValue", "true"), ("floatValue", "3.14"),
        ("taskRunId", only(ex, "update").id), ("existingLabel", "someValue"),
    }


def test_labels_on_an_execution_without_labels(engine: Any) -> None:
    # RuntimeLabelsTest.noNpeOnNullPreviousExecutionLabels (npe-labels-update-task.yml)
    yaml = """id: relabel_plain
namespace: company.team
tasks:
  - id: labels
    type: io.kestra.plugin.core.execution.Labels
    labels:
      someLabel: "{{ taskrun.id }}"
"""
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS" and len(ex.task_run_list) == 1
    assert ("someLabel", only(ex, "labels").id) in labels(ex)


@pytest.mark.parametrize("text, message", [
    ("not json", "not a JSON object"),
    ("[1, 2]", "not a JSON object"),
    ('{"a": {"b": 1}}', "Label `a` needs a text value"),
    ('{"system.app": "x"}', "System labels can only be set by Kestra itself, offending label: system.app=x"),
])
def test_labels_text_that_is_no_json_object_fails_the_task(engine: Any, text: str, message: str) -> None:
    # Labels.update: unreadable JSON fails the task (IllegalVariableEvaluationException); system labels refused
    yaml = f"""id: relabel_bad
namespace: company.team
inputs:
  - id: text
    type: STRING
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.Labels
    labels: "{{{{ inputs.text }}}}"
"""
    ex = engine.run(yaml, inputs={"text": text})
    assert ex.state == "FAILED"
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any(message in m for m in errors), errors
