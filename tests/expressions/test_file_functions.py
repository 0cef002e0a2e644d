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
    ("{{ read('/etc/passwd') }}", "Unable to find the namespace file '/etc/passwd' in the namespace 'company.team'"),
    ("{{ read('../../etc/passwd') }}", "The 'read' function: Invalid namespace file path `../../etc/passwd`: `..` is "
     "not allowed"),
    ("{{ read('nsfile://other/a\x00b') }}", "NUL or control character"),
    ("{{ read('a.txt', version='x') }}", "expects an argument 'version' that is a revision number"),
    ("{{ fileURI('../x') }}", "The 'fileURI' function: Invalid namespace file path"),
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


def test_namespace_files(engine: Any) -> None:
    """read() falls back to the flow namespace's files (Kestra's ReadFileFunctionTest.readNamespaceFile), with
    nsfile:// URIs, another `namespace`, revisions, and the kestra:/// URI of fileURI()."""
    files = engine.store.storage.namespace_files
    files.put("company.team", "/sql/q.sql", b"select 1")
    files.put("company.team", "/sql/q.sql", b"select 2")
    files.put("company.team", "/empty.txt", b"")
    files.put("other.ns", "/x.txt", b"from other")
    ex = engine.run(FLOW + ret("plain", "{{ read('sql/q.sql') }}")
                    + ret("slash", "{{ read('/sql/q.sql') }}")
                    + ret("nsfile", "{{ read('nsfile:///sql/q.sql') }}")
                    + ret("other", "{{ read('nsfile://other.ns/x.txt') }}|{{ read('x.txt', namespace='other.ns') }}")
                    + ret("version", "{{ read('sql/q.sql', version=1) }}")
                    + ret("uri", "{{ fileURI('sql/q.sql') }}")
                    + ret("via_uri", "{{ read(fileURI('sql/q.sql')) }}")
                    + ret("meta", "{{ fileSize('sql/q.sql') }}|{{ fileExists('nope') }}|{{ isFileEmpty('empty.txt') }}"
                                  "|{{ fileExists('nsfile://other.ns/x.txt') }}"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert [value(ex, t) for t in ("plain", "slash", "nsfile", "other", "version")] == [
        "select 2", "select 2", "select 2", "from other|from other", "select 1"]
    assert value(ex, "uri") == "kestra:///company/team/_files/sql/q.sql"
    assert value(ex, "via_uri") == "select 2"
    assert value(ex, "meta") == "8|false|true|true"
    ex = engine.run(FLOW + ret("r", "{{ read('kestra:///other/ns/_files/x.txt') }}"))
    assert ex.state == "FAILED"   # another namespace's files by storage URI: not the execution's
    assert any("doesn't belong to the current execution" in m for m in errors(engine, ex))
    ex = engine.run(FLOW + ret("r", "{{ read('sql/q.sql', version=9) }}"))
    assert any("Unable to find the namespace file /sql/q.sql (revision 9)" in m for m in errors(engine, ex))
