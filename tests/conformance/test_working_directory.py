"""io.kestra.plugin.core.flow.WorkingDirectory, following Kestra's WorkingDirectoryTest (its flows of
core/src/test/resources/flows/valids/working-directory*.y*ml, written here as our own) and the validation
of WorkingDirectoryTaskValidator (flows/invalids/workingdirectory-*.yaml)."""
from __future__ import annotations

from typing import Any

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level


def runs(ex: Any, task_id: str) -> list[Any]:
    return [tr for tr in ex.task_run_list if tr.task_id == task_id]


def outputs(ex: Any, task_id: str) -> Any:
    return runs(ex, task_id)[0].outputs


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def wd_leftovers(engine: Any) -> list[str]:
    tmp = engine.store.storage.root / ".tmp"
    return sorted(p.name for p in tmp.glob("wd-*")) if tmp.exists() else []


WORKING_DIRECTORY = """id: working-directory
namespace: io.kestra.tests
inputs:
  - id: failed
    type: STRING
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          out/stay.txt: "{{ inputs.failed == 'true' ? ko: taskrun.id }}"
      - id: second
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - out/*
      - id: disabled
        type: io.kestra.plugin.core.debug.Return
        disabled: true
    errors:
      - id: error-t1
        type: io.kestra.plugin.core.debug.Return
        format: "Error Trigger ! {{task.id}}"
  - id: 2_end
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.second.uris['out/stay.txt'] }}"
"""


# follows WorkingDirectoryTest#success
def test_success(engine: Any) -> None:
    ex = engine.run(WORKING_DIRECTORY, {"failed": "false"})
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 4
    assert ex.task_run_list[3].outputs["value"].startswith("kestra://")
    first = runs(ex, "first")[0]
    assert engine.store.storage.read_bytes(ex.task_run_list[3].outputs["value"]).decode() == first.id
    assert wd_leftovers(engine) == []


# follows WorkingDirectoryTest#failed
def test_failed(engine: Any) -> None:
    ex = engine.run(WORKING_DIRECTORY, {"failed": "true"})
    assert ex.state == "FAILED"
    assert len(ex.task_run_list) == 3
    assert len(runs(ex, "error-t1")) == 1
    assert wd_leftovers(engine) == []


# follows WorkingDirectoryTest#each
def test_each(engine: Any) -> None:
    ex = engine.run("""id: working-directory-each
namespace: io.kestra.tests
tasks:
  - id: 1_each
    type: io.kestra.plugin.core.flow.ForEach
    values: '["s1"]'
    tasks:
    - id: 1-1_each
      type: io.kestra.plugin.core.flow.ForEach
      values: '["s2"]'
      tasks:
        - id: 1-1-1_each
          type: io.kestra.plugin.core.flow.ForEach
          values: '["s3"]'
          tasks:
            - id: 1-1-1-1_return
              type: io.kestra.plugin.core.debug.Return
              format: "{{task.id}} > {{taskrun.value}} > {{taskrun.startDate}}"
            - id: worker
              type: io.kestra.plugin.core.flow.WorkingDirectory
              tasks:
              - id: first
                type: io.kestra.plugin.core.storage.LocalFiles
                inputs:
                  out/stay.txt: "{{ taskrun.id }}"
              - id: second
                type: io.kestra.plugin.core.storage.LocalFiles
                outputs:
                  - out/*
  - id: 2_end
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.second.s1.s2.s3.uris['out/stay.txt'] }}"
""")
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 8
    assert outputs(ex, "2_end")["value"].startswith("kestra://")


# follows WorkingDirectoryTest#outputFiles
def test_output_files(engine: Any) -> None:
    ex = engine.run("""id: working-directory-outputs
namespace: io.kestra.tests
tasks:
  - id: workingDir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - output.txt
    tasks:
      - id: outputFiles
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          output.txt: "Hello World"
""")
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 2
    wd = ex.task_run_list[0]
    assert list(wd.outputs) == ["outputFiles"]
    uri = wd.outputs["outputFiles"]["output.txt"]
    assert f"/tasks/workingdir/{wd.id}/" in uri
    assert engine.store.storage.read_bytes(uri) == b"Hello World"


# follows WorkingDirectoryTest#inputFiles
def test_input_files(engine: Any) -> None:
    ex = engine.run("""id: working-directory-inputs
namespace: io.kestra.tests
tasks:
  - id: workingDir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      input.txt: Hello World
    tasks:
      - id: inputFiles
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - input.txt
""")
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 2
    uri = ex.task_run_list[1].outputs["uris"]["input.txt"]
    assert uri.endswith("input.txt") and engine.store.storage.read_bytes(uri) == b"Hello World"


# follows WorkingDirectoryTest#cache
def test_cache(engine: Any) -> None:
    flow = """id: working-directory-cache
namespace: io.kestra.tests
tasks:
  - id: workingDir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    cache:
      ttl: PT5m
      patterns:
        - "*.txt"
    tasks:
      - id: exists
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - hello.txt
      - id: inputFiles
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          hello.txt: |
            HELLO WORLD
"""
    ex = engine.run(flow)
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 3
    assert outputs(ex, "exists") == {"uris": {}}
    cache = "kestra:///io/kestra/tests/working-directory-cache/caches/workingdir/cache/cache.zip"
    assert engine.store.storage.exists(cache)
    ex = engine.run(flow)   # the second run starts from the cache: `exists` finds the file
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert "hello.txt" in outputs(ex, "exists")["uris"]


def in_a_foreach(flow_id: str, tasks: str) -> str:
    """The flows of WorkingDirectoryTest#taskrun and #taskrunNested: `tasks` inside a ForEach of one value."""
    return f"""id: {flow_id}
namespace: io.kestra.tests
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.ForEach
    concurrencyLimit: 0
    values: ["1"]
    tasks:
{tasks}"""


# follows WorkingDirectoryTest#taskrun
def test_taskrun_value(engine: Any) -> None:
    ex = engine.run(in_a_foreach("working-directory-taskrun", """      - id: workingDir
        type: io.kestra.plugin.core.flow.WorkingDirectory
        tasks:
          - id: log-taskrun
            type: io.kestra.plugin.core.debug.Return
            format:  "{{ taskrun.value }}"
"""))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 3
    assert "1" in outputs(ex, "log-taskrun")["value"]


# follows WorkingDirectoryTest#taskrunNested
def test_taskrun_nested(engine: Any) -> None:
    ex = engine.run(in_a_foreach("working-directory-taskrun-nested", """      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: workingDir
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: log-taskrun
                type: io.kestra.plugin.core.debug.Return
                format: "{{ workerTaskrun }}"
              - id: log-workerparents
                type: io.kestra.plugin.core.debug.Return
                format:  "{{ parents }}"
              - id: log-workerparent
                type: io.kestra.plugin.core.debug.Return
                format:  "{{ parent }}"
"""))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert len(ex.task_run_list) == 6
    assert '{"taskrun":{"value":"1"}}' in outputs(ex, "log-workerparent")["value"]
    wd = runs(ex, "workingDir")[0]
    assert f'"id":"{wd.id}"' in outputs(ex, "log-taskrun")["value"]


# follows WorkingDirectoryTest#namespaceFiles: Kestra's test task `io.kestra.core.tasks.test.Read` is a shell
# script here, reading the file from the shared directory
def test_namespace_files(engine: Any) -> None:
    files = engine.store.storage.namespace_files
    for path, content in (("/test/a/b/c/1.txt", "first"), ("/a/b/c/2.txt", "second"), ("/a/b/3.txt", "third"),
                          ("/ignore/4.txt", "4th")):
        files.put("io.kestra.tests", path, content.encode())

    def read(task_id: str, path: str) -> str:
        return (f"          - id: {task_id}\n            type: io.kestra.plugin.scripts.shell.Commands\n"
                f"            commands:\n              - 'printf \"::{{\\\"outputs\\\": {{\\\"value\\\": "
                f"\\\"%s\\\"}}}}::\" \"$(cat .{path})\"'\n              - test -s .{path}\n")
    ex = engine.run("""id: working-directory-namespace-files
namespace: io.kestra.tests
tasks:
  - id: allow
    type: io.kestra.plugin.core.flow.AllowFailure
    tasks:
      - id: worker
        type: io.kestra.plugin.core.flow.WorkingDirectory
        namespaceFiles:
          enabled: true
          exclude:
            - /ignore/**
        tasks:
""" + read("t1", "/test/a/b/c/1.txt") + read("t2", "/a/b/c/2.txt") + read("t3", "/a/b/3.txt")
                    + read("t4", "/ignore/4.txt"))
    assert len(ex.task_run_list) == 6
    assert ex.state == "WARNING", errors(engine, ex)
    assert runs(ex, "t4")[0].state == "FAILED"
    assert [outputs(ex, t)["vars"]["value"] for t in ("t1", "t2", "t3")] == ["first", "second", "third"]
    logs = [e.message for e in engine.store.list_logs(ex.id)]
    assert "Loaded 3 namespace files from 'io.kestra.tests'" in " ".join(logs)
    assert wd_leftovers(engine) == []


def test_scripts_share_the_directory_and_output_files(engine: Any) -> None:
    """Kestra's documented example: a file the first script writes is there for the second."""
    ex = engine.run(f"""id: working_directory
namespace: company.team
tasks:
  - id: working_directory
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles: ["*.txt"]
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
        - 'echo "{{{{ taskrun.id }}}}" > {{{{ workingDir }}}}/stay.txt'
      - id: second
        type: io.kestra.plugin.scripts.python.Script
        script: |
          print('::{{"outputs": {{"stay": "' + open('stay.txt').read().strip() + '"}}}}::')
      - id: third
        type: io.kestra.plugin.core.namespace.UploadFiles
        files: ["stay.txt"]
        destination: /from-wd
""")
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert outputs(ex, "second")["vars"]["stay"] == runs(ex, "first")[0].id
    assert list(runs(ex, "working_directory")[0].outputs["outputFiles"]) == ["stay.txt"]
    assert engine.store.storage.namespace_files.read_bytes("company.team", "/from-wd/stay.txt").decode().strip() \
        == runs(ex, "first")[0].id


# follows WorkingDirectoryTest in core/validations (flows/invalids/workingdirectory-*.yaml)
@pytest.mark.parametrize("tasks, message", [
    ("""    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: Hello World
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
        delay: PT5S
        tasks:
          - id: log-pause
            type: io.kestra.plugin.core.log.Log
            message: Hello World
""", "Only runnable tasks are allowed as children of a WorkingDirectory task"),
    ("", "tasks: must not be empty"),
    ("    tasks: []\n", "The 'tasks' property cannot be empty"),
])
def test_invalid_working_directories(engine: Any, tasks: str, message: str) -> None:
    source = f"""id: workingdirectory-impossible
namespace: io.kestra.tests
tasks:
  - id: impossible
    type: io.kestra.plugin.core.flow.WorkingDirectory
{tasks}"""
    with pytest.raises(FlowValidationError) as info:
        engine.deploy(source)
    assert message in str(info.value)


def test_legacy_worker_alias(engine: Any) -> None:
    ex = engine.run("""id: legacy
namespace: io.kestra.tests
tasks:
  - id: w
    type: io.kestra.core.tasks.flows.Worker
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ workerTaskrun.id }}"
""")
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert outputs(ex, "r")["value"] == runs(ex, "w")[0].id


def test_bad_cache_and_namespace_files_fail_clearly(engine: Any) -> None:
    ex = engine.run("""id: bad
namespace: io.kestra.tests
tasks:
  - id: w
    type: io.kestra.plugin.core.flow.WorkingDirectory
    cache:
      ttl: soon
      patterns: ["*"]
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: x
""")
    assert ex.state == "FAILED"
    assert any("Invalid `cache.ttl` `soon`" in m for m in errors(engine, ex)), errors(engine, ex)
    ex = engine.run("""id: bad2
namespace: io.kestra.tests
tasks:
  - id: w
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      ifExists: SOMETIMES
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: x
""")
    assert ex.state == "FAILED"
    assert any("Invalid `namespaceFiles.ifExists` `SOMETIMES`: expected one of OVERWRITE, FAIL, WARN, IGNORE" in m
               for m in errors(engine, ex)), errors(engine, ex)
    assert wd_leftovers(engine) == []


def test_a_killed_working_directory_ends_killed(engine: Any) -> None:
    from kestra_nb.errors import ExecutionTimeoutError

    with pytest.raises(ExecutionTimeoutError) as info:
        engine.run("""id: killed
namespace: io.kestra.tests
tasks:
  - id: w
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: nap
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT60S
      - id: never
        type: io.kestra.plugin.core.debug.Return
        format: x
""", timeout=0.5)
    ex = info.value.execution
    assert ex.state == "KILLED"
    assert {tr.task_id: tr.state.current.value for tr in ex.task_run_list} == {"w": "KILLED", "nap": "KILLED"}
