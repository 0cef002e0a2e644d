"""KV tasks (spec §5.20): kv.Set/Get/Delete/GetKeys share their entries and types with the KV REST
endpoints and the `kv()` function."""
from __future__ import annotations

import json
from typing import Any

import pytest

from kestra_nb.api.service import ApiService
from kestra_nb.model.execution import Level
from kestra_nb.store._common import kv_convert, kv_type_of

FLOW = "id: kv_flow\nnamespace: company.team\ntasks:\n"


def task(task_id: str, type_: str, **props: Any) -> str:
    lines = [f"  - id: {task_id}", f"    type: io.kestra.plugin.core.kv.{type_}"]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def ret(task_id: str, fmt: str) -> str:
    return f"  - id: {task_id}\n    type: io.kestra.plugin.core.debug.Return\n    format: {json.dumps(fmt)}\n"


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def out(ex: Any, task_id: str) -> Any:
    return next(tr.outputs for tr in ex.task_run_list if tr.task_id == task_id)


@pytest.fixture
def api(engine: Any) -> Any:
    service = ApiService(engine)
    yield service


def test_set_values_are_read_by_the_rest_api_and_kv_function(engine: Any, api: Any) -> None:
    yaml = (FLOW
            + task("s1", "Set", key="text", value="hello {{ flow.id }}")
            + task("s2", "Set", key="count", value="{{ 40 + 2 }}")
            + "  - id: s3\n    type: io.kestra.plugin.core.kv.Set\n    key: doc\n"
              "    value:\n      a: 1\n      b: [x, y]\n"
            + task("s4", "Set", key="num", value="3.5", kvType="NUMBER")
            + task("s5", "Set", key="flag", value="{{ 1 == 1 }}", kvType="BOOLEAN")
            + task("s6", "Set", key="when", value="2024-01-31T10:00:00Z", kvType="DATETIME")
            + task("s7", "Set", key="day", value="2024-01-31", kvType="DATE")
            + task("s8", "Set", key="wait", value="PT5M", kvType="DURATION")
            + task("s9", "Set", key="json", value='{"k": [1, 2]}', kvType="JSON")
            + task("s10", "Set", key="other", value="elsewhere", namespace="company.other")
            + ret("read", "{{ kv('text') }}|{{ kv('count') + 1 }}|{{ kv('doc').b[1] }}|{{ kv('num') }}"
                          "|{{ kv('json').k[1] }}|{{ kv('other', namespace='company.other') }}"))
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex, "read")["value"] == "hello kv_flow|43|y|3.5|2|elsewhere"
    got = {k: (d["type"], d["value"]) for k in ("text", "count", "doc", "num", "flag", "when", "day", "wait", "json")
           for d in [api.get_kv("company.team", k)]}
    assert got == {
        "text": ("STRING", "hello kv_flow"), "count": ("NUMBER", 42), "doc": ("JSON", {"a": 1, "b": ["x", "y"]}),
        "num": ("NUMBER", 3.5), "flag": ("BOOLEAN", True), "when": ("DATETIME", "2024-01-31T10:00:00Z"),
        "day": ("DATE", "2024-01-31"), "wait": ("DURATION", "PT5M"), "json": ("JSON", {"k": [1, 2]}),
    }
    assert api.get_kv("company.other", "other")["value"] == "elsewhere"


def test_values_set_by_the_rest_api_are_read_by_get(engine: Any, api: Any) -> None:
    api.put_kv("company.team", "n", body="12")
    api.put_kv("company.team", "doc", body='{"a": [1]}')
    api.put_kv("company.team", "word", body="plain words")
    yaml = (FLOW + task("n", "Get", key="n") + task("doc", "Get", key="doc") + task("word", "Get", key="word")
            + task("none", "Get", key="missing")
            + ret("typed", "{{ outputs.n.value + 1 }}|{{ outputs.doc.value.a[0] }}"))
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex, "n") == {"value": 12}
    assert out(ex, "doc") == {"value": {"a": [1]}}
    assert out(ex, "word") == {"value": "plain words"}
    assert (out(ex, "none") or {}).get("value") is None
    assert out(ex, "typed")["value"] == "13|1"


def test_overwrite_ttl_delete_and_get_keys(engine: Any, api: Any) -> None:
    api.put_kv("company.team", "keep", body='"old"')
    api.put_kv("company.team", "app_b", body="1")
    api.put_kv("company.team", "app_a", body="2")
    yaml = (FLOW
            + "  - id: again\n    type: io.kestra.plugin.core.kv.Set\n    key: keep\n    value: new\n"
              "    overwrite: false\n    allowFailure: true\n"
            + task("ttl", "Set", key="temp", value="x", ttl="PT1H")
            + task("keys", "GetKeys", prefix="app_")
            + task("all", "GetKeys")
            + task("del", "Delete", key="app_a")
            + task("del2", "Delete", key="app_a"))
    ex = engine.run(yaml)
    assert errors(engine, ex) == [
        "Cannot set value for key 'keep'. Key already exists and `overwrite` is set to `false`."]
    assert api.get_kv("company.team", "keep")["value"] == "old"
    assert out(ex, "keys") == {"keys": ["app_a", "app_b"]}
    assert out(ex, "all") == {"keys": ["app_a", "app_b", "keep", "temp"]}
    assert out(ex, "del") == {"deleted": True}
    assert out(ex, "del2") == {"deleted": False}
    temp = next(e for e in api.list_kv("company.team") if e["key"] == "temp")
    assert "expirationDate" in temp
    assert engine.store.kv_get("company.team", "app_a") is None


@pytest.mark.parametrize("tasks, message", [
    (task("t", "Set", key="n", value="abc", kvType="NUMBER"),
     "Invalid `value`: Invalid value `abc` for kvType NUMBER: expected a number"),
    (task("t", "Set", key="n", value="maybe", kvType="BOOLEAN"), "for kvType BOOLEAN: expected true or false"),
    (task("t", "Set", key="n", value="yesterday", kvType="DATETIME"),
     "for kvType DATETIME: expected an ISO-8601 instant"),
    (task("t", "Set", key="n", value="31/01/2024", kvType="DATE"), "for kvType DATE: expected an ISO-8601 date"),
    (task("t", "Set", key="n", value="5 minutes", kvType="DURATION"),
     "for kvType DURATION: expected an ISO-8601 duration"),
    (task("t", "Set", key="n", value="{not json", kvType="JSON"), "for kvType JSON: expected a JSON document"),
    (task("t", "Set", key="n", value="1", kvType="{{ 'TEXT' }}"), "Invalid `kvType` `TEXT`: expected one of BOOLEAN"),
    (task("t", "Set", key="n", value="1", ttl="{{ 'soon' }}"), "Invalid `ttl` `soon`: expected an ISO-8601 duration"),
    (task("t", "Set", key="bad key!", value="1"), "Invalid `key` `bad key!`: a key must start with"),
    (task("t", "Set", key="n", value="{{ null }}"), "Invalid `value`: it rendered to null"),
    (task("t", "Set", key="n", value="1", overwrite="{{ 'perhaps' }}"),
     "Invalid `overwrite` `perhaps`: expected true or false"),
    (task("t", "Get", key="nope", errorOnMissing=True),
     "No value found for key 'nope' in namespace 'company.team' and `errorOnMissing` is set to true"),
    (task("t", "Delete", key="nope", namespace="company.x", errorOnMissing=True),
     "No value found for key 'nope' in namespace 'company.x'"),
    (task("t", "Get", key="k", namespace="{{ '' }}"), "Invalid `namespace`: expected a namespace"),
])
def test_bad_inputs_fail_with_a_clear_message(engine: Any, tasks: str, message: str) -> None:
    ex = engine.run(FLOW + tasks)
    assert ex.state == "FAILED"
    assert any(message in m for m in errors(engine, ex)), errors(engine, ex)


def test_parser_rejects_a_literal_bad_kv_type(engine: Any) -> None:
    from kestra_nb.errors import FlowValidationError

    with pytest.raises(FlowValidationError, match="kvType"):
        engine.run(FLOW + task("t", "Set", key="n", value="1", kvType="TEXT"))


def test_kv_type_helpers() -> None:
    assert [kv_type_of(v) for v in ("x", 1, 2.5, True, {"a": 1}, [1])] == \
        ["STRING", "NUMBER", "NUMBER", "BOOLEAN", "JSON", "JSON"]
    assert kv_convert(12, "STRING") == "12"
    assert kv_convert({"a": 1}, "STRING") == '{"a":1}'
    assert kv_convert("TRUE", "BOOLEAN") is True
    assert kv_convert("2024-01-31T10:00:00+01:00", "DATE").isoformat() == "2024-01-31"
