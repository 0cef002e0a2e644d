"""`kv()` with `??` / `???` as Kestra's KvFunctionTest asserts it (kv.yaml): a missing key read through
`?? null` gives null (the task succeeds with ""), while without a coalescing operator, or with
`errorOnMissing=true`, a missing key fails the task with Kestra's message."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.expressions import Renderer
from kestra_nb.errors import ExpressionError
from kestra_nb.model.execution import Level

KV = """id: kv_read
namespace: company.team
inputs:
  - id: namespace
    type: STRING
    required: false
    defaults: company.team
  - id: errorOnMissing
    type: BOOLEAN
    required: false
    defaults: false
tasks:
  - id: get
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('my-key').field ?? null }}"
  - id: getWithArgs
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('my-key', inputs.namespace, inputs.errorOnMissing).field }}"
"""


def test_kv_reads_a_field_of_a_stored_value(engine: Any) -> None:
    # KvFunctionTest.get: both tasks output "value"
    engine.store.kv_put("company.team", "my-key", {"field": "value"}, "JSON")
    ex = engine.run(KV)
    assert ex.state == "SUCCESS"
    assert [tr.outputs for tr in ex.task_run_list] == [{"value": "value"}, {"value": "value"}]


def test_kv_missing_key_through_coalescing_is_null_but_fails_with_error_on_missing(engine: Any) -> None:
    # KvFunctionTest.getKeyNotFound (errorOnMissing=true): the first task SUCCESS with "", the second FAILED
    # with "The key 'my-key' does not exist in the namespace 'io.kestra.tests'." in its logs
    ex = engine.run(KV, inputs={"errorOnMissing": True})
    first, second = ex.task_run_list
    assert first.outputs == {"value": ""} and first.state.current.value == "SUCCESS"
    assert second.state.current.value == "FAILED"
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR) if e.task_run_id == second.id]
    assert any("The key 'my-key' does not exist in the namespace 'company.team'." in m for m in errors), errors


class _Entry:
    def __init__(self, value: Any) -> None:
        self.value = value


class _Store:
    def kv_get(self, namespace: str, key: str, *, tenant: str = "main") -> _Entry | None:
        return _Entry({"field": "value"}) if key == "there" else None


VARIABLES = {"flow": {"namespace": "company.team", "tenantId": "main"}}


@pytest.mark.parametrize("template, expected", [
    ("{{ kv('gone').field ?? null }}", ""),            # KvFunctionTest.getKeyNotFound, task `get`
    ("{{ kv('gone').field ??? null }}", ""),           # ??? also takes a missing attribute as undefined
    ("{{ kv('gone') ?? 'fallback' }}", "fallback"),
    ("{{ kv('gone') ??? 'fallback' }}", "fallback"),
    ("{{ kv('gone', errorOnMissing=false) ?? 'fallback' }}", "fallback"),
    ("{{ kv('gone', errorOnMissing=false).field ?? 'fallback' }}", "fallback"),
    ("{{ kv('gone') | default('d') }}", "d"),
    ("{{ kv('gone') is defined }}", "false"),
    ("{{ kv('there').field ?? null }}", "value"),      # KvFunctionTest.get, task `get`
])
def test_kv_coalescing(template: str, expected: str) -> None:
    assert Renderer(store=_Store()).render_string(template, VARIABLES) == expected


def test_kv_coalescing_to_null_in_typed_mode() -> None:
    assert Renderer(store=_Store()).render_typed("{{ kv('gone').field ?? null }}", VARIABLES) is None


@pytest.mark.parametrize("template", [
    "{{ kv('gone') }}",                                # KvFunctionTest.shouldFailGivenNonExistingKeyUsingDefaults
    "{{ kv('gone').field }}",
    "{{ kv('gone', errorOnMissing=true) }}",  # KvFunctionTest.shouldFailGivenNonExistingKeyAndErrorOnMissingTrue
    "{{ kv('gone', errorOnMissing=true) ?? 'x' }}",    # a PebbleException: `??` does not catch it
])
def test_kv_missing_key_fails_without_coalescing(template: str) -> None:
    with pytest.raises(ExpressionError, match="The key 'gone' does not exist in the namespace 'company.team'."):
        Renderer(store=_Store()).render_string(template, VARIABLES)
