"""Script tasks (spec §5.24): python/shell Script and Commands on the host, the `::{…}::` protocol, files,
exit codes, kill/timeout of the process group, and python `dependencies` in a cached venv."""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Level

PY = "io.kestra.plugin.scripts.python.Script"
PYC = "io.kestra.plugin.scripts.python.Commands"
SH = "io.kestra.plugin.scripts.shell.Script"
SHC = "io.kestra.plugin.scripts.shell.Commands"


def flow(tasks: str, extra: str = "") -> str:
    return f"id: f\nnamespace: company.team\n{extra}tasks:\n{tasks}"


def task(id: str, type: str, body: str) -> str:
    lines = [f"  - id: {id}", f"    type: {type}"] + ["    " + line for line in body.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def logs(engine, ex, level: Level | None = None) -> list[tuple[str, str]]:
    return [(e.level.value, e.message) for e in engine.store.list_logs(ex.id, min_level=level)]


def run_task(engine, type: str, body: str, **kw: Any):
    ex = engine.run(flow(task("t", type, body)), **kw)
    return ex, ex.task_run_list[0]


def wait_until(check: Callable[[], bool], timeout: float = 15) -> bool:
    """Wait for a condition another process or thread makes true (no event to await across processes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting for a (foreign) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# ------------------------------------------------------------------------------- protocol and logs


def test_python_script_with_the_kestra_library(engine):
    ex, tr = run_task(engine, PY, """
script: |
  import sys
  from kestra import Kestra
  print("hello out")
  print("hello err", file=sys.stderr)
  Kestra.outputs({"a": 1, "flag": true, "none": null, "name": "{{ flow.id }}"})
  Kestra.outputs({"b": [1, 2]})
  Kestra.counter("rows", 42, {"table": "t"})
  Kestra.timer("dur", 1.5)
  log = Kestra.logger()
  log.debug("dbg")
  log.info("inf")
  log.warning("wrn")
  log.error("err")
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert tr.outputs == {"vars": {"a": 1, "flag": True, "none": None, "name": "f", "b": [1, 2]}, "exitCode": 0}
    got = logs(engine, ex)
    assert ("INFO", "hello out") in got and ("ERROR", "hello err") in got
    by_level = {lvl: msg for lvl, msg in got if msg.endswith(("dbg", "inf", "wrn", "err")) and " - " in msg}
    assert set(by_level) == {"DEBUG", "INFO", "WARN", "ERROR"}
    assert by_level["WARN"].endswith(" - wrn")
    assert not any(msg.startswith("::") for _, msg in got)  # protocol lines are swallowed
    metrics = {m["name"]: m for m in engine.store.list_metrics(ex.id)}
    assert metrics["rows"]["type"] == "counter" and metrics["rows"]["value"] == 42
    assert metrics["rows"]["tags"] == {"table": "t"} and metrics["rows"]["taskRunId"] == tr.id
    assert metrics["dur"]["type"] == "timer" and metrics["dur"]["value"] == 1.5


def test_shell_commands_protocol_and_invalid_json(engine):
    ex, tr = run_task(engine, SHC, """
commands:
  - echo 'plain line'
  - echo '::{"outputs":{"x":"1"},"logs":[{"level":"WARN","message":"from protocol"}]}::'
  - echo '::{not json}::'
  - echo '::{"outputs":{"x":"2","y":true}}::'
  - echo 'to stderr' >&2
""")
    assert ex.state == "SUCCESS"
    assert tr.outputs == {"vars": {"x": "2", "y": True}, "exitCode": 0}
    got = logs(engine, ex)
    assert ("INFO", "plain line") in got and ("WARN", "from protocol") in got and ("ERROR", "to stderr") in got
    [invalid] = [m for lvl, m in got if lvl == "WARN" and "Invalid outputs" in m]
    assert "::{not json}::" in invalid


def test_vars_reachable_from_later_tasks(engine):
    ex = engine.run(flow(task("a", SH, "script: echo '::{\"outputs\":{\"n\":41}}::'")
                         + task("b", "io.kestra.plugin.core.debug.Return",
                                "format: \"{{ outputs.a.vars.n + 1 }} {{ outputs.a.exitCode }}\"")))
    assert ex.state == "SUCCESS" and ex.task_run_list[1].outputs == {"value": "42 0"}


# -------------------------------------------------------------------------------------- exit codes


def test_non_zero_exit_fails_and_keeps_outputs(engine):
    ex, tr = run_task(engine, SHC, """
commands:
  - echo '::{"outputs":{"before":"fail"}}::'
  - exit 7
  - echo never
""")
    assert ex.state == "FAILED" and tr.state.current.value == "FAILED"
    assert tr.outputs == {"vars": {"before": "fail"}, "exitCode": 7}
    got = logs(engine, ex)
    assert ("ERROR", "Command failed with exit code 7") in got
    assert ("INFO", "never") not in got


def test_fail_fast_stops_at_the_first_failing_command_unless_disabled(engine):
    ex, _ = run_task(engine, SHC, "commands:\n  - 'false'\n  - echo after")
    assert ex.state == "FAILED" and ("INFO", "after") not in logs(engine, ex)
    ex, tr = run_task(engine, SHC, "failFast: false\ncommands:\n  - 'false'\n  - echo after")
    assert ex.state == "SUCCESS" and ("INFO", "after") in logs(engine, ex) and tr.outputs["exitCode"] == 0


def test_python_exception_fails_with_its_traceback_logged(engine):
    ex, tr = run_task(engine, PY, "script: |\n  print('::{\"outputs\":{\"k\":1}}::')\n  raise SystemExit(3)")
    assert ex.state == "FAILED" and tr.outputs == {"vars": {"k": 1}, "exitCode": 3}
    ex, _ = run_task(engine, PY, "script: 1 / 0")
    assert any("ZeroDivisionError" in m for lvl, m in logs(engine, ex) if lvl == "ERROR")


# ------------------------------------------------------------------- env, beforeCommands, workingDir


def test_env_before_commands_and_working_dir(engine):
    ex, _ = run_task(engine, SHC, """
env:
  GREETING: "hi {{ flow.namespace }}"
  NUM: 3
beforeCommands:
  - export FROM_BEFORE=yes
commands:
  - echo "$GREETING $NUM $FROM_BEFORE"
  - test "$WORKING_DIR" = "{{ workingDir }}" && test "$(pwd)" = "{{ workingDir }}" && echo same-dir
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    got = [m for _, m in logs(engine, ex)]
    assert "hi company.team 3 yes" in got and "same-dir" in got


def test_shell_script_interpreter_and_python_with_before_commands(engine):
    ex, _ = run_task(engine, SH, """
interpreter: ["/bin/bash", "-c"]
script: |
  arr=(a b c)
  [[ "${arr[2]}" == c ]] && echo "bash $BASH_VERSION"
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert any(m.startswith("bash ") and len(m) > 5 for _, m in logs(engine, ex))
    ex, _ = run_task(engine, PY, """
beforeCommands:
  - echo before > marker.txt
script: |
  import os, sys
  print(open("marker.txt").read().strip(), os.environ["WORKING_DIR"] == os.getcwd(), sys.executable)
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert ("INFO", f"before True {sys.executable}") in logs(engine, ex)


def test_python_commands_resolve_python_to_the_engine_interpreter(engine):
    ex, _ = run_task(engine, PYC, """
inputFiles:
  main.py: |
    import sys
    print("exe", sys.executable)
commands:
  - python main.py
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    [line] = [m for _, m in logs(engine, ex) if m.startswith("exe ")]
    assert Path(line[4:]).parent == Path(sys.executable).parent


def test_docker_runner_is_refused_and_process_runs(engine):
    ex, _ = run_task(engine, SHC, """
taskRunner:
  type: io.kestra.plugin.scripts.runner.docker.Docker
commands: [echo never]
""")
    assert ex.state == "FAILED"
    [err] = [m for lvl, m in logs(engine, ex) if lvl == "ERROR"]
    assert "io.kestra.plugin.scripts.runner.docker.Docker" in err
    assert "taskRunner: {type: io.kestra.plugin.core.runner.Process}" in err
    ex, _ = run_task(engine, PY, "runner: DOCKER\nscript: print(1)")
    assert ex.state == "FAILED"
    assert any("runner: DOCKER" in m and "io.kestra.plugin.core.runner.Process" in m for _, m in logs(engine, ex))
    ex, tr = run_task(engine, PY, """
taskRunner:
  type: io.kestra.plugin.core.runner.Process
containerImage: python:3.13-slim
script: print('::{"outputs":{"ok":true}}::')
""")
    assert ex.state == "SUCCESS" and tr.outputs["vars"] == {"ok": True}


# ------------------------------------------------------------------------------------------- files


def test_output_files_globs_are_stored(engine):
    ex, tr = run_task(engine, SHC, """
outputFiles:
  - "*.csv"
  - "sub/**/*.json"
  - "missing.txt"
commands:
  - printf 'a,b\\n1,2\\n' > data.csv
  - mkdir -p sub/deep && echo '{"k":1}' > sub/deep/x.json && echo other > other.txt
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    files = tr.outputs["outputFiles"]
    assert set(files) == {"data.csv", "sub/deep/x.json"}
    assert engine.store.storage.read_bytes(files["data.csv"]) == b"a,b\n1,2\n"
    assert engine.store.storage.read_bytes(files["sub/deep/x.json"]) == b'{"k":1}\n'
    assert files["data.csv"].startswith("kestra:///company/team/f/executions/")
    _, tr = run_task(engine, SHC, "commands: [echo x]")
    assert "outputFiles" not in tr.outputs


def test_input_files_content_uri_and_json_string(engine):
    yaml = flow(
        task("make", SHC, "outputFiles: [out.txt]\ncommands: [echo stored-content > out.txt]")
        + task("use", SHC, """
inputFiles:
  inline.txt: "inline {{ flow.id }}"
  nested/copied.txt: "{{ outputs.make.outputFiles['out.txt'] }}"
commands:
  - cat inline.txt && echo && cat nested/copied.txt
""")
        + task("json", SHC, """
inputFiles: '{"j.txt": "from json"}'
commands: [cat j.txt]
"""))
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", logs(engine, ex)
    got = [m for _, m in logs(engine, ex)]
    assert "inline f" in got and "stored-content" in got and "from json" in got


def test_invalid_input_files_are_clear_task_errors(engine):
    ex, _ = run_task(engine, SHC, "inputFiles: '{not json'\ncommands: [echo never]")
    assert ex.state == "FAILED"
    [err] = [m for lvl, m in logs(engine, ex) if lvl == "ERROR"]
    assert "`inputFiles` must be a map of file names to contents or a JSON object" in err and "invalid JSON" in err
    ex, _ = run_task(engine, SHC, "inputFiles:\n  ../escape.txt: x\ncommands: [echo never]")
    assert ex.state == "FAILED"
    assert any("invalid file name `../escape.txt`" in m for _, m in logs(engine, ex))


def test_working_directory_is_removed(engine):
    ex, tr = run_task(engine, SHC, "commands: ['echo \"::{\\\"outputs\\\":{\\\"wd\\\":\\\"$WORKING_DIR\\\"}}::\"']")
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert tr.outputs["vars"]["wd"] and not Path(tr.outputs["vars"]["wd"]).exists()


# -------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("type", "prop"), [(PY, "script"), (SH, "script"), (PYC, "commands"), (SHC, "commands")])
def test_missing_script_or_commands_is_a_validation_error(engine, type, prop):
    with pytest.raises(FlowValidationError, match=prop):
        engine.run(flow(task("t", type, "env: {A: b}")))


def test_expression_errors_name_the_property(engine):
    ex, _ = run_task(engine, SHC, "commands: ['echo {{ nope.x }}']")
    assert ex.state == "FAILED"
    assert any("property `commands`" in m for _, m in logs(engine, ex, Level.ERROR))


# -------------------------------------------------------------------- streaming, timeout and kill


def _in_background(engine, yaml: str) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def runner() -> None:
        result["ex"] = engine.run(yaml)

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    return thread, result


def _seen(engine, text: str) -> bool:
    """A log line is emitted: pending in the running execution or already committed."""
    for d in list(engine._driven.values()):
        if any(e.message == text for e in list(d.logs)):
            return True
        if any(e.message == text for e in engine.store.list_logs(d.ex.id)):
            return True
    return False


def test_lines_are_logged_while_the_process_runs(engine, tmp_path):
    go = tmp_path / "go"
    thread, result = _in_background(engine, flow(task("t", SH, f"""
script: |
  echo first
  echo first-err >&2
  while [ ! -f {go} ]; do sleep 0.02; done
  echo second
""")))
    assert wait_until(lambda: _seen(engine, "first") and _seen(engine, "first-err"))
    assert not _seen(engine, "second")
    go.touch()
    thread.join(15)
    ex = result["ex"]
    assert ex.state == "SUCCESS"
    got = [m for _, m in logs(engine, ex)]
    assert sorted(got[:2]) == ["first", "first-err"] and got[2:] == ["second"]  # two pipes: no order between them


def test_lines_reach_the_store_and_the_bus_while_the_process_runs(engine, tmp_path):
    """What the API's log follow and the notebook see: LogsAppended events and stored lines, mid-run."""
    from kestra_nb.engine.events import LogsAppended

    go = tmp_path / "go"
    seen = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, LogsAppended) and any(e.message == "first" for e in event.entries):
            seen.set()

    unsubscribe = engine.subscribe(None, on_event)
    try:
        thread, result = _in_background(engine, flow(task("t", SH, f"""
script: |
  echo first
  while [ ! -f {go} ]; do sleep 0.02; done
""")))
        assert seen.wait(15), "the line was not published while the script ran"
        running = [d.ex.id for d in list(engine._driven.values())]
        assert any(e.message == "first" for ex_id in running for e in engine.store.list_logs(ex_id))
        go.touch()
        thread.join(15)
    finally:
        unsubscribe()
    ex = result["ex"]
    assert ex.state == "SUCCESS" and [m for _, m in logs(engine, ex)] == ["first"]  # stored once


def test_timeout_fails_and_stops_the_process(engine, tmp_path):
    pid_file = tmp_path / "pid"
    ex = engine.run(flow(task("t", SHC, f"""
timeout: PT1S
commands:
  - echo $$ > {pid_file}
  - sleep 60
""")))
    assert ex.state == "FAILED"
    assert any(m.startswith("Timeout after") for _, m in logs(engine, ex, Level.ERROR))
    pid = int(pid_file.read_text())
    assert wait_until(lambda: not alive(pid))


def test_kill_stops_the_whole_process_group(engine, tmp_path):
    pids = tmp_path / "pids"
    thread, result = _in_background(engine, flow(task("t", SH, f"""
script: |
  sleep 60 &
  echo "$$ $!" > {pids}.tmp && mv {pids}.tmp {pids}
  echo started
  wait
""")))
    assert wait_until(pids.exists)
    shell_pid, child_pid = map(int, pids.read_text().split())
    assert alive(shell_pid) and alive(child_pid)
    [exec_id] = list(engine._driven)
    killed = engine.kill(exec_id, wait=True)
    thread.join(15)
    assert killed.state == "KILLED" and result["ex"].state == "KILLED"
    assert result["ex"].task_run_list[0].state.current.value == "KILLED"
    assert wait_until(lambda: not alive(shell_pid) and not alive(child_pid))


# ------------------------------------------------------------------------------------ dependencies


def test_dependencies_install_into_a_cached_venv(engine):
    script = """
dependencies: [toolz]
script: |
  import sys, toolz
  print('::{"outputs":{"exe":"%s","mod":"%s"}}::' % (sys.executable, toolz.__file__))
  import kestra  # the engine's own packages stay visible
"""
    ex, tr = run_task(engine, PY, script)
    assert ex.state == "SUCCESS", logs(engine, ex)
    venvs = engine.store.storage.root.parent / "venvs"
    [venv] = [p for p in venvs.iterdir() if p.is_dir()]
    assert tr.outputs["vars"]["exe"] == str(venv / "bin" / "python")
    assert tr.outputs["vars"]["mod"].startswith(str(venv))
    assert any("Creating a virtual environment" in m for _, m in logs(engine, ex))
    # pip's output is streamed to the task's logs, its summary at INFO
    assert any(lvl == "INFO" and m.startswith("Successfully installed") and "toolz" in m for lvl, m in logs(engine, ex))
    ex2, tr2 = run_task(engine, PY, script)  # reused: no second build
    assert ex2.state == "SUCCESS" and tr2.outputs["vars"] == tr.outputs["vars"]
    assert not any("Creating a virtual environment" in m for _, m in logs(engine, ex2))
    assert [p for p in venvs.iterdir() if p.is_dir()] == [venv]
    ex3, _ = run_task(engine, PYC, "dependencies: [toolz]\ncommands: ['python -c \"import toolz; print(42)\"']")
    assert ex3.state == "SUCCESS" and ("INFO", "42") in logs(engine, ex3)


def test_failed_install_fails_the_task_and_leaves_no_venv(engine):
    ex, _ = run_task(engine, PY, "dependencies: ['not a valid requirement!!']\nscript: print(1)")
    assert ex.state == "FAILED"
    [err] = [m for lvl, m in logs(engine, ex, Level.ERROR) if m.startswith("Failed to install")]
    assert "not a valid requirement!!" in err and "nvalid requirement" in err.split("\n", 1)[1]
    venvs = engine.store.storage.root.parent / "venvs"
    assert [p for p in venvs.iterdir() if p.is_dir()] == []
    assert ("INFO", "1") not in logs(engine, ex)


def test_python_script_without_dependencies_uses_the_engine_interpreter(engine):
    ex, tr = run_task(engine, PY, "script: |\n  import sys\n  print('::{\"outputs\":{\"exe\":\"%s\"}}::' % sys.executable)")
    assert ex.state == "SUCCESS" and tr.outputs["vars"]["exe"] == sys.executable
    assert not (engine.store.storage.root.parent / "venvs").exists()
    assert os.path.exists(tr.outputs["vars"]["exe"])


def test_concurrent_builders_share_one_venv(engine):
    body = "dependencies: [toolz]\nscript: |\n  import toolz\n  print('::{\"outputs\":{\"ok\":1}}::')"
    branches = "".join("      " + line + "\n" for line in (task("a", PY, body) + task("b", PY, body)).splitlines())
    ex = engine.run(flow(f"  - id: par\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{branches}"))
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert {tr.task_id: tr.outputs["vars"] for tr in ex.task_run_list if tr.task_id != "par"} == \
        {"a": {"ok": 1}, "b": {"ok": 1}}
    assert sum("Creating a virtual environment" in m for _, m in logs(engine, ex)) == 1
    venvs = engine.store.storage.root.parent / "venvs"
    assert len([p for p in venvs.iterdir() if p.is_dir()]) == 1


def test_kill_reaches_children_that_ignore_sigterm(engine, tmp_path):
    pid_file = tmp_path / "stubborn"
    thread, _ = _in_background(engine, flow(task("t", SHC, f"""
commands:
  - sh -c 'trap "" TERM; echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; while :; do sleep 1; done' &
  - wait
""")))
    assert wait_until(pid_file.exists)
    pid = int(pid_file.read_text())
    [exec_id] = list(engine._driven)
    assert engine.kill(exec_id, wait=True).state == "KILLED"
    thread.join(15)
    assert wait_until(lambda: not alive(pid))


def test_background_children_do_not_outlive_the_task(engine, tmp_path):
    pid_file = tmp_path / "bg"
    ex, tr = run_task(engine, SHC, f"commands:\n  - sleep 60 &\n  - echo $! > {pid_file}\n  - echo done")
    assert ex.state == "SUCCESS" and tr.outputs["exitCode"] == 0 and ("INFO", "done") in logs(engine, ex)
    assert wait_until(lambda: not alive(int(pid_file.read_text())))


def test_long_lines_and_future_imports(engine):
    ex, tr = run_task(engine, PY, """
script: |
  from __future__ import annotations
  print("x" * 200000)
  print('::{"outputs":{"flag":%s}}::' % ("yes" if true is True and null is None else "no").__repr__().replace("'", '"'))
""")
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert ("INFO", "x" * 200000) in logs(engine, ex)
    assert tr.outputs["vars"] == {"flag": "yes"}
