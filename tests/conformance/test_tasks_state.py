"""state.Get / state.Set / state.Delete, following Kestra's io.kestra.plugin.core.flow.StateTest (the flow
state.yaml of core/src/test/resources/flows/valids), io.kestra.plugin.core.state.StateTest and StateNamespaceTest.

Since Kestra 0.19 the state store is kept in the namespace's KV store (io.kestra.core.storages.StateStore):
key `<flow slug>_states_tasks-states_<name>[_<murmur3 of taskrun.value>]`, value the JSON text of the map.
"""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.api.service import ApiService
from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level
from kestra_nb.tasks.state import merge, murmur3_128_hex, slug

# Kestra's flows/valids/state.yaml, as it is
STATE_FLOW = """id: state
namespace: io.kestra.tests

inputs:
  - id: state
    type: STRING

tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.state == 'each' }}"
    then:
      - id: delete1
        type: io.kestra.plugin.core.state.Delete
        name: "{{ inputs.state }}"

      - id: each1
        type: io.kestra.plugin.core.flow.ForEach
        values: '["a", "b"]'
        tasks:
          - id: getEach1
            type: io.kestra.plugin.core.state.Get
            name: "{{ inputs.state }}"

          - id: setEach1
            type: io.kestra.plugin.core.state.Set
            name: "{{ inputs.state }}"
            data:
              value: "{{ (currentEachOutput(outputs.getEach1).data.value ?? 'null') ~ '-' ~ taskrun.value }}"
          - id: regetEach1
            type: io.kestra.plugin.core.state.Get
            name: "{{ inputs.state }}"

      - id: delete2
        type: io.kestra.plugin.core.state.Delete
        name: "{{ inputs.state }}"

      - id: each2
        type: io.kestra.plugin.core.flow.ForEach
        values: '["a", "b"]'
        tasks:
          - id: getEach2
            type: io.kestra.plugin.core.state.Get
            taskrunValue: false
            name: "{{ inputs.state }}"
          - id: setEach2
            type: io.kestra.plugin.core.state.Set
            name: "{{ inputs.state }}"
            taskrunValue: false
            data:
              value: "{{ (currentEachOutput(outputs.getEach2).data.value ?? 'null') ~ '-' ~ taskrun.value }}"
          - id: regetEach2
            type: io.kestra.plugin.core.state.Get
            taskrunValue: false
            name: "{{ inputs.state }}"


    else:
    - id: state
      type: io.kestra.plugin.core.state.Get
      name: "{{ inputs.state }}"

    - id: switch
      type: io.kestra.plugin.core.flow.Switch
      value: "{{ (outputs.state.data.value ?? 0) == 0 ? 'create' : ( outputs.state.data.value == 1 ? 'update' : 'delete') }}"
      cases:
        "create":
          - id: create
            type: io.kestra.plugin.core.state.Set
            name: "{{ inputs.state }}"
            data:
              value: 1
          - id: createGet
            type: io.kestra.plugin.core.state.Get
            name: "{{ inputs.state }}"

        "update":
          - id: update
            type: io.kestra.plugin.core.state.Set
            name: "{{ inputs.state }}"
            data:
              value: "{{ outputs.state.data.value + 1 }}"
          - id: updateGet
            type: io.kestra.plugin.core.state.Get
            name: "{{ inputs.state }}"


        "delete":
          - id: delete
            type: io.kestra.plugin.core.state.Delete
            name: "{{ inputs.state }}"
          - id: deleteGet
            type: io.kestra.plugin.core.state.Get
            name: "{{ inputs.state }}"
"""


def flow(tasks: str, flow_id: str = "states", inputs: str = "") -> str:
    return f"id: {flow_id}\nnamespace: io.kestra.tests\n{inputs}tasks:\n{tasks}"


def task(task_id: str, kind: str, **props: Any) -> str:
    lines = [f"  - id: {task_id}", f"    type: io.kestra.plugin.core.state.{kind}"]
    for key, value in props.items():
        if isinstance(value, dict):
            lines.append(f"    {key}:")
            lines += [f"      {k!r}: {v!r}" if isinstance(v, str) else f"      {k!r}: {v}" for k, v in value.items()]
        else:
            lines.append(f"    {key}: {value!r}" if isinstance(value, str) else
                         f"    {key}: {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


def outputs(ex: Any, task_id: str, value: str | None = None) -> Any:
    return next(tr.outputs for tr in ex.task_run_list
                if tr.task_id == task_id and (value is None or tr.value == value))


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


# follows io.kestra.plugin.core.flow.StateTest#set
def test_state_flow_creates_updates_then_deletes(engine: Any) -> None:
    name = "Xq3RvYm9AbCdEf01"
    ex = engine.run(STATE_FLOW, inputs={"state": name})
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 5
    assert outputs(ex, "createGet")["data"]["value"] == 1

    ex = engine.run(STATE_FLOW, inputs={"state": name})
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 5
    assert outputs(ex, "updateGet")["data"]["value"] == "2"
    assert outputs(ex, "update") == {"count": 1, "key": f"state_states_tasks-states_{name}"}

    ex = engine.run(STATE_FLOW, inputs={"state": name})
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 5
    assert outputs(ex, "deleteGet")["count"] == 0
    assert outputs(ex, "delete") == {"deleted": True}


# follows io.kestra.plugin.core.flow.StateTest#each
def test_state_flow_isolates_by_taskrun_value(engine: Any) -> None:
    ex = engine.run(STATE_FLOW, inputs={"state": "each"})
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 17
    assert outputs(ex, "regetEach1", "b")["data"]["value"] == "null-b"
    assert outputs(ex, "regetEach2", "b")["data"]["value"] == "null-a-b"
    # where Kestra keeps them: the namespace's KV store, the loop value hashed (murmur3_128, as Guava prints it)
    keys = {e.key for e in engine.store.kv_list("io.kestra.tests")}
    assert keys == {"state_states_tasks-states_each",
                    f"state_states_tasks-states_each_{murmur3_128_hex('a')}",
                    f"state_states_tasks-states_each_{murmur3_128_hex('b')}"}
    assert outputs(ex, "setEach1", "a")["key"] == f"state_states_tasks-states_each_{murmur3_128_hex('a')}"


# follows io.kestra.plugin.core.state.StateTest#run
def test_get_set_merge_and_delete(engine: Any) -> None:
    ex = engine.run(flow(
        task("get0", "Get")
        + task("set1", "Set", data={"{{ inputs.key }}": "{{ inputs.inc }}"})
        + task("get1", "Get")
        + task("set2", "Set", data={"{{ inputs.key }}": "2", "test2": "3"})
        + task("get2", "Get")
        + task("delete", "Delete")
        + task("get3", "Get"),
        inputs="inputs:\n  - id: key\n    type: STRING\n  - id: inc\n    type: INT\n"),
        inputs={"key": "test", "inc": 1})
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert outputs(ex, "get0") == {"count": 0, "data": {}}
    assert outputs(ex, "set1") == {"count": 1, "key": "states_states_tasks-states_default"}
    assert outputs(ex, "get1") == {"count": 1, "data": {"test": "1"}}
    assert outputs(ex, "set2")["count"] == 2
    assert outputs(ex, "get2") == {"count": 2, "data": {"test": "2", "test2": "3"}}
    assert outputs(ex, "delete") == {"deleted": True}
    assert outputs(ex, "get3")["count"] == 0


def test_state_is_a_kv_entry_the_rest_api_shows_as_kestra_does(engine: Any) -> None:
    ex = engine.run(flow(task("set", "Set", name="my-state", data={"a": "x", "n": 3})))
    assert ex.state == "SUCCESS", errors(engine, ex)
    got = ApiService(engine).get_kv("io.kestra.tests", "states_states_tasks-states_my-state")
    assert (got["type"], got["value"]) == ("STRING", '{"a":"x","n":3}')


# follows io.kestra.plugin.core.state.StateTest#deleteThrow and #getThrow
@pytest.mark.parametrize("kind, message", [
    ("Delete", "Unable to find the state file 'missing-state'"),
    ("Get", "State states_states_tasks-states_missing-state not found"),
])
def test_error_on_missing(engine: Any, kind: str, message: str) -> None:
    ex = engine.run(flow(task("t", kind, name="missing-state", errorOnMissing=True)))
    assert ex.state == "FAILED"
    assert errors(engine, ex) == [message]
    ex = engine.run(flow(task("t", kind, name="missing-state")))
    assert ex.state == "SUCCESS"
    assert outputs(ex, "t") == ({"deleted": False} if kind == "Delete" else {"count": 0, "data": {}})


# follows io.kestra.plugin.core.state.StateNamespaceTest#run
def test_namespace_state_is_shared_between_flows(engine: Any) -> None:
    ex = engine.run(flow(task("set", "Set", namespace=True, data={"john": "doe"}), "flow1"))
    assert outputs(ex, "set") == {"count": 1, "key": "states_tasks-states_default"}
    ex = engine.run(flow(task("shared", "Get", namespace=True) + task("own", "Get"), "flow2"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert outputs(ex, "shared") == {"count": 1, "data": {"john": "doe"}}
    assert outputs(ex, "own")["count"] == 0


def test_set_merges_maps_deeply_and_concatenates_lists(engine: Any) -> None:
    assert merge({"a": {"x": 1, "l": [1]}, "b": 1, "c": 5}, {"a": {"y": 2, "l": [2]}, "b": 2, "c": None}) == \
        {"a": {"x": 1, "y": 2, "l": [1, 2]}, "b": 2, "c": 5}
    ex = engine.run(flow(
        "  - id: s1\n    type: io.kestra.plugin.core.state.Set\n    data:\n      m: {a: 1}\n      l: [x]\n"
        "  - id: s2\n    type: io.kestra.plugin.core.state.Set\n    data:\n      m: {b: 2}\n      l: [y]\n"
        + task("get", "Get")))
    assert outputs(ex, "get") == {"count": 2, "data": {"m": {"a": 1, "b": 2}, "l": ["x", "y"]}}


def test_helpers_match_kestra() -> None:
    # Guava's Murmur3_128 test vectors (h1, h2 written little-endian, as HashCode.toString prints them)
    assert murmur3_128_hex("") == "0" * 32
    digest = bytes.fromhex(murmur3_128_hex("The quick brown fox jumps over the lazy dog"))
    assert (int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")) == \
        (0xE34BBC7BBC071B6C, 0x7A433CA9C49A9347)
    digest = bytes.fromhex(murmur3_128_hex("hell"))
    assert (int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")) == \
        (0x629942693E10F867, 0x92DB0B82BAEB5347)
    assert slug("My_Flow.Über  x") == "my-flowuber-x"  # Kestra's Slugify.of


@pytest.mark.parametrize("task_yaml, message", [
    ("    type: io.kestra.plugin.core.state.Set\n    data: [1, 2]\n", "tasks[0].data: expected a map"),
    ("    type: io.kestra.plugin.core.state.Get\n    namespace: maybe\n", "tasks[0].namespace: expected a boolean"),
    ("    type: io.kestra.plugin.core.state.Delete\n    errorOnMissing: 3\n",
     "tasks[0].errorOnMissing: expected a boolean"),
    ("    type: io.kestra.plugin.core.state.Get\n    key: k\n", 'tasks[0].key: Unrecognized field "key"'),
])
def test_bad_properties_are_validation_errors(engine: Any, task_yaml: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        engine.run(flow("  - id: t\n" + task_yaml))
    assert message in str(info.value)


def test_runtime_mistakes_fail_the_task_with_a_message(engine: Any) -> None:
    ex = engine.run(flow(task("t", "Set", name="bad name!", data={"a": 1})))
    assert ex.state == "FAILED"
    assert errors(engine, ex)[0].startswith("Invalid `name` `bad name!`")
    ex = engine.run(flow(task("t", "Get", taskrunValue="{{ 'perhaps' }}")))
    assert errors(engine, ex) == ["Invalid `taskrunValue` `perhaps`: expected true or false"]
