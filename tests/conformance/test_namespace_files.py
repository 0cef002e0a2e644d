"""Namespace files in flows, following Kestra's UploadFilesTest, DownloadFilesTest, DeleteFilesTest
(io.kestra.plugin.core.namespace), ReadFileFunctionTest#readNamespaceFile and the `namespaceFiles`
property of script tasks (NamespaceFilesUtils: include, exclude, namespaces, ifExists, folderPerNamespace)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level

NS = "io.kestra.tests"


def flow(tasks: str, namespace: str = NS) -> str:
    return f"id: nsfiles\nnamespace: {namespace}\ntasks:\n{tasks}"


def write(task_id: str, content: str) -> str:
    return (f"  - id: {task_id}\n    type: io.kestra.plugin.core.storage.Write\n    extension: .txt\n"
            f"    content: {json.dumps(content)}\n")


def outputs(ex: Any, task_id: str) -> Any:
    return next(tr.outputs for tr in ex.task_run_list if tr.task_id == task_id)


def state(ex: Any, task_id: str) -> str:
    return next(tr.state.current.value for tr in ex.task_run_list if tr.task_id == task_id)


def logs(engine: Any, ex: Any, level: Level = Level.TRACE) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=level)]


@pytest.fixture
def files(engine: Any) -> Any:
    return engine.store.storage.namespace_files


def upload(map_line: str, conflict: str | None = None, namespace: str = "io.kestra.target") -> str:
    return ("  - id: up\n    type: io.kestra.plugin.core.namespace.UploadFiles\n"
            f"    namespace: {namespace}\n    destination: /folder\n    filesMap: {map_line}\n"
            + (f"    conflict: {conflict}\n" if conflict else ""))


# follows UploadFilesTest#shouldPutFileGivenAlreadyExistingFileWhenConflictOverwrite
def test_upload_files_map_overwrites_by_default(engine: Any, files: Any) -> None:
    ex = engine.run(flow(write("w", "first") + upload('{"/path/file.txt": "{{ outputs.w.uri }}"}')))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    assert files.list("io.kestra.target") == ["/folder/path/file.txt"]
    assert outputs(ex, "up") is None
    ex = engine.run(flow(write("w", "second") + upload('{"/path/file.txt": "{{ outputs.w.uri }}"}')))
    assert ex.state == "SUCCESS"
    assert files.read_bytes("io.kestra.target", "/folder/path/file.txt") == b"second"
    assert files.revisions("io.kestra.target", "/folder/path/file.txt") == [1, 2]


# follows UploadFilesTest#shouldThrowExceptionGivenAlreadyExistingFileWhenConflictError
def test_upload_conflict_error(engine: Any, files: Any) -> None:
    files.put("io.kestra.target", "/folder/path/file.txt", b"there")
    ex = engine.run(flow(write("w", "x") + upload('{"/path/file.txt": "{{ outputs.w.uri }}"}', "ERROR")))
    assert ex.state == "FAILED"
    assert "File '/folder/path/file.txt' already exists in namespace 'io.kestra.target' and conflict is set to " \
           "ERROR" in logs(engine, ex, Level.ERROR)
    assert files.read_bytes("io.kestra.target", "/folder/path/file.txt") == b"there"


# follows UploadFilesTest#shouldPutFileGivenAlreadyExistingFileWhenConflictSkip
def test_upload_conflict_skip(engine: Any, files: Any) -> None:
    files.put("io.kestra.target", "/folder/path/file.txt", b"there")
    ex = engine.run(flow(write("w", "x") + upload('{"/path/file.txt": "{{ outputs.w.uri }}"}', "SKIP")))
    assert ex.state == "SUCCESS"
    assert files.read_bytes("io.kestra.target", "/folder/path/file.txt") == b"there"


def test_upload_needs_files_and_valid_uris(engine: Any) -> None:
    ex = engine.run(flow("  - id: up\n    type: io.kestra.plugin.core.namespace.UploadFiles\n"))
    assert ex.state == "FAILED" and "files or filesMap is required" in logs(engine, ex, Level.ERROR)
    ex = engine.run(flow(upload('{"/a.txt": "/etc/passwd"}')))
    assert ex.state == "FAILED"
    assert any("Invalid `filesMap./a.txt`: expected a kestra:/// (or nsfile://) URI" in m
               for m in logs(engine, ex, Level.ERROR))
    ex = engine.run(flow(upload('"not a map"')))
    assert ex.state == "FAILED" and "filesMap must be a Map<String, String>" in logs(engine, ex, Level.ERROR)
    ex = engine.run(flow(write("w", "x") + upload('{"../../escape.txt": "{{ outputs.w.uri }}"}')))
    assert ex.state == "FAILED"
    assert any("`..` is not allowed" in m for m in logs(engine, ex, Level.ERROR))


# follows DownloadFilesTest#shouldDownloadNamespaceFile
def test_download_files(engine: Any, files: Any) -> None:
    files.put("io.kestra.other", "/a/b/test1.txt", b"1")
    files.put("io.kestra.other", "/a/b/test2.txt", b"2")
    ex = engine.run(flow("""  - id: dl
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: io.kestra.other
    files:
      - "**test1.txt"
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.dl.files['/a/b/test1.txt']) }}"
"""))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    downloaded = outputs(ex, "dl")["files"]
    assert list(downloaded) == ["/a/b/test1.txt"]
    assert downloaded["/a/b/test1.txt"].endswith("/a/b/test1.txt")
    assert outputs(ex, "r")["value"] == "1"


# follows DeleteFilesTest#shouldDeleteNamespaceFilesForMatchingExpression
def test_delete_files(engine: Any, files: Any) -> None:
    files.put(NS, "/a/b/test1.txt", b"1")
    files.put(NS, "/a/b/test2.txt", b"2")
    files.put(NS, "/c/test1.log", b"3")
    ex = engine.run(flow("""  - id: del
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: "{{ flow.namespace }}"
    files: ["**test1*"]
"""))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    assert files.list(NS) == ["/a/b/test2.txt"]
    assert files.exists(NS, "/c")   # deleteParentFolder is false by default
    ex = engine.run(flow("""  - id: del
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: io.kestra.tests
    files: "regex:/a/.*"
    deleteParentFolder: true
"""))
    assert ex.state == "SUCCESS"
    assert files.list(NS) == [] and not files.exists(NS, "/a")


def test_namespace_tasks_validation(engine: Any) -> None:
    with pytest.raises(FlowValidationError) as info:
        engine.deploy(flow("  - id: del\n    type: io.kestra.plugin.core.namespace.DeleteFiles\n"))
    assert "tasks[0].namespace: must not be null" in str(info.value)
    assert "tasks[0].files: must not be null" in str(info.value)
    with pytest.raises(FlowValidationError) as info:
        engine.deploy(flow(upload('{"/a": "kestra:///x"}', "MAYBE")))
    assert "tasks[0].conflict" in str(info.value)


# follows ReadFileFunctionTest#readNamespaceFile
def test_read_namespace_file_in_a_flow(engine: Any, files: Any) -> None:
    files.put(NS, "/test/hello.txt", b"Hello from io.kestra.tests")
    ex = engine.run(flow("""  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('test/hello.txt') }} / {{ read('nsfile:///test/hello.txt') }}"
"""))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    assert outputs(ex, "r")["value"] == "Hello from io.kestra.tests / Hello from io.kestra.tests"


def script(namespace_files: str, command: str = "find . -type f | sort | xargs") -> str:
    return (f"  - id: s\n    type: io.kestra.plugin.scripts.shell.Commands\n    namespaceFiles:\n{namespace_files}"
            f"    commands:\n      - 'echo \"::{{\\\"outputs\\\":{{\\\"files\\\":\\\"$({command})\\\"}}}}::\"'\n")


def listed(ex: Any) -> list[str]:
    return outputs(ex, "s")["vars"]["files"].split()


def test_script_namespace_files_include_exclude(engine: Any, files: Any) -> None:
    for path in ("/main.py", "/lib/util.py", "/lib/data.csv", "/ignore/x.py"):
        files.put(NS, path, b"x")
    ex = engine.run(flow(script("      include:\n        - '**.py'\n      exclude:\n        - /ignore/**\n")))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    assert listed(ex) == ["./lib/util.py", "./main.py"]
    assert any(m.startswith(f"Loaded 2 namespace files from '{NS}' in 00:00:") for m in logs(engine, ex))
    metrics = {m["name"]: m for m in engine.store.list_metrics(ex.id)}
    assert metrics["namespacefiles.count"]["value"] == 2
    ex = engine.run(flow(script("      include: [main.py]\n")))   # a bare name matches in any folder
    assert listed(ex) == ["./main.py"]
    ex = engine.run(flow(script("      enabled: false\n")))
    assert ex.state == "SUCCESS" and outputs(ex, "s")["vars"]["files"] == ""


def test_script_namespace_files_namespaces_and_folders(engine: Any, files: Any) -> None:
    files.put("company", "/conf.yml", b"parent")
    files.put("company.team", "/conf.yml", b"child")
    ex = engine.run(flow(script("      namespaces: [company, company.team]\n", "cat conf.yml"), "company.team"))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    assert outputs(ex, "s")["vars"]["files"] == "child"   # the later namespace's file wins
    ex = engine.run(flow(script("      namespaces: [company, company.team]\n      folderPerNamespace: true\n"),
                         "company.team"))
    assert listed(ex) == ["./company.team/conf.yml", "./company/conf.yml"]


@pytest.mark.parametrize("if_exists, state_, content", [
    ("OVERWRITE", "SUCCESS", "from ns"), ("IGNORE", "SUCCESS", "from inputFiles"),
    ("WARN", "SUCCESS", "from inputFiles"), ("FAIL", "FAILED", None)])
def test_script_namespace_files_if_exists(engine: Any, files: Any, if_exists: str, state_: str, content: Any) -> None:
    files.put(NS, "/a.txt", b"from ns")
    source = flow("""  - id: w
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      a.txt: from inputFiles
    tasks:
""" + "\n".join("    " + line if line else line for line in script(
        f"      ifExists: {if_exists}\n", "cat a.txt").splitlines()) + "\n")
    ex = engine.run(source)
    assert state(ex, "s") == state_, logs(engine, ex, Level.ERROR)
    if content is not None:
        assert outputs(ex, "s")["vars"]["files"] == content
    else:
        assert "File 'a.txt' already exists in the working directory" in logs(engine, ex, Level.ERROR)
    if if_exists == "WARN":
        assert "File 'a.txt' already exists in the working directory, it is kept" in logs(engine, ex, Level.WARN)


def test_script_namespace_files_bad_config(engine: Any) -> None:
    ex = engine.run(flow(script("      includes: ['*']\n")))
    assert ex.state == "FAILED"
    assert any("`namespaceFiles`: unknown property includes" in m for m in logs(engine, ex, Level.ERROR))
    ex = engine.run(flow(script("      namespaces: ['../x']\n")))
    assert ex.state == "FAILED"
    assert any("`namespaceFiles.namespaces`: Invalid namespace" in m for m in logs(engine, ex, Level.ERROR))
    ex = engine.run(flow(script("      include: ['regex:[']\n")))
    assert ex.state == "FAILED"
    assert any("invalid regular expression" in m for m in logs(engine, ex, Level.ERROR))


def test_input_files_take_nsfile_uris(engine: Any, files: Any) -> None:
    files.put(NS, "/sql/q.sql", b"select 1")
    ex = engine.run(flow("""  - id: s
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      q.sql: nsfile:///sql/q.sql
    commands:
      - 'echo "::{\\"outputs\\":{\\"q\\":\\"$(cat q.sql)\\"}}::"'
"""))
    assert ex.state == "SUCCESS", logs(engine, ex, Level.ERROR)
    assert outputs(ex, "s")["vars"]["q"] == "select 1"
