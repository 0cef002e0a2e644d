"""File functions (spec §6.5): read(), fileSize(), fileExists(), isFileEmpty() on the current execution's files."""
from __future__ import annotations

import json
from typing import Any

import pytest

from kestra_nb.model.execution import Level

FLOW = "id: files_flow\nnamespace: company.team\ntasks:\n"


def write(task_id: str, content: str) -> str:
    return (f"  - id: {task_id}\n    type: io.kestra.plugin.core.storage.Write\n    content: {json.dumps(content)}\n"
            "    extension: .txt\n")


def ret(task_id: str, fmt: str) -> str:
    return f"  - id: {task_id}\n    type: io.kestra.plugin.core.debug.Return\n    format: {json.dumps(fmt)}\n"


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def value(ex: Any, task_id: str) -> Any:
    return next(tr.outputs for tr in ex.task_run_list if tr.task_id == task_id)["value"]


def test_read_size_exists_and_empty(engine: Any) -> None:
    own = "'kestra:///company/team/files_flow/executions/' ~ execution.id ~ '/tasks/none/x/missing.txt'"
    ex = engine.run(FLOW + write("w", "héllo\nworld") + write("e", "")
                    + ret("read", "{{ read(outputs.w.uri) }}")
                    + ret("named", "{{ read(path=outputs.w.uri) | upper }}")
                    + ret("size", "{{ fileSize(outputs.w.uri) }}|{{ fileSize(outputs.e.uri) }}")
                    + ret("exists", "{{ fileExists(outputs.w.uri) }}|{{ fileExists(" + own + ") }}")
                    + ret("empty", "{{ isFileEmpty(outputs.w.uri) }}|{{ isFileEmpty(outputs.e.uri) }}"
                                   "|{{ fileEmpty(outputs.e.uri) }}"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert value(ex, "read") == "héllo\nworld"
    assert value(ex, "named") == "HÉLLO\nWORLD"
    assert value(ex, "size") == f"{len('héllo'.encode()) + 6}|0"
    assert value(ex, "exists") == "true|false"
    assert value(ex, "empty") == "false|true|true"


def test_files_of_another_execution_are_refused(engine: Any) -> None:
    first = engine.run(FLOW + write("w", "secret"))
    uri = next(tr.outputs for tr in first.task_run_list)["uri"]
    for fn in ("read", "fileSize", "fileExists", "isFileEmpty"):
        ex = engine.run(FLOW + ret("r", "{{ " + fn + "('" + uri + "') }}"))
        assert ex.state == "FAILED"
        assert any(f"Unable to read the file '{uri}' as it doesn't belong to the current execution" in m
                   for m in errors(engine, ex)), errors(engine, ex)


@pytest.mark.parametrize("template, message", [
    ("{{ read('kestra:///company/team/files_flow/executions/' ~ execution.id ~ '/tasks/t/r/none.txt') }}",
     "Unable to find the file 'kestra:///company/team/files_flow/executions/"),
    ("{{ fileSize('kestra:///company/team/files_flow/executions/' ~ execution.id ~ '/none.txt') }}",
     "Unable to find the file"),
    ("{{ read('/etc/passwd') }}", "The 'read' function expects a kestra:/// internal storage URI, got '/etc/passwd'"),
    ("{{ read('kestra:///company/team/files_flow/executions/' ~ execution.id ~ '/../../../../../../etc/passwd') }}",
     "The 'read' function: Invalid internal storage URI"),
    ("{{ read() }}", "The 'read' function expects an argument 'path'."),
    ("{{ fileExists(42) }}", "The 'fileExists' function expects an argument 'path' with type string."),
])
def test_bad_paths_are_clear_errors(engine: Any, template: str, message: str) -> None:
    ex = engine.run(FLOW + ret("r", template))
    assert ex.state == "FAILED"
    assert any(message in m for m in errors(engine, ex)), errors(engine, ex)


def test_read_refuses_binary_files(engine: Any) -> None:
    ex = engine.run(FLOW + ret("r", "{{ execution.id }}"))
    uri = engine.store.storage.task_uri("company.team", "files_flow", ex.id, "bin", "run", "data.bin")
    engine.store.storage.put(uri, b"\xff\xfe\x00")
    from kestra_nb.expressions.renderer import RUNTIME, RuntimeHooks

    hooks = RuntimeHooks(store=engine.store, namespace="company.team", execution_id=ex.id)
    variables = {"flow": {"id": "files_flow", "namespace": "company.team"}, "execution": {"id": ex.id},
                 RUNTIME: hooks}
    from kestra_nb.errors import ExpressionError

    assert engine.renderer.render_string("{{ fileSize('" + uri + "') }}", variables) == "3"
    with pytest.raises(ExpressionError, match="is not UTF-8 text"):
        engine.renderer.render_string("{{ read('" + uri + "') }}", variables)
