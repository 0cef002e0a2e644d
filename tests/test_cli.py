"""The kestra-nb command: run (summary, --json, inputs, exit codes) and validate (line:column)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kestra_nb.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "myflow.yml"


def write(tmp_path: Path, text: str, name: str = "flow.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_prints_state_outputs_and_timeline(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "company.team.myflow (revision 1) execution" in out and ": SUCCESS in " in out
    assert 'mydata: "hello from kestra"' in out
    assert any(line.split()[:2] == ["mytask", "SUCCESS"] and line.rstrip().endswith("ms")
               for line in out.splitlines())


def test_run_json_is_kestra_json(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--json", "--home", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["state"]["current"] == "SUCCESS" and doc["outputs"] == {"mydata": "hello from kestra"}


def test_run_with_inputs_and_labels(tmp_path, capsys):
    flow = write(tmp_path, "id: hi\nnamespace: demo\ninputs:\n  - id: name\n    type: STRING\n  - id: n\n    type: INT\n"
                 "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n"
                 "    format: \"{{ inputs.name }} {{ inputs.n * 2 }} {{ labels.team }}\"\n"
                 "outputs:\n  - id: o\n    type: STRING\n    value: \"{{ outputs.t.value }}\"\n")
    assert main(["run", str(flow), "-i", "name=a=b", "-i", "n=21", "-l", "team:data", "--home", str(tmp_path)]) == 0
    assert 'o: "a=b 42 data"' in capsys.readouterr().out


def test_failed_run_exits_1_and_prints_the_error(tmp_path, capsys):
    flow = write(tmp_path, "id: bad\nnamespace: demo\ntasks:\n  - id: boom\n"
                 "    type: io.kestra.plugin.core.execution.Fail\n    errorMessage: it broke\n")
    assert main(["run", str(flow), "--home", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert ": FAILED in " in out and "error: it broke" in out


def test_input_error_exits_1_with_kestra_message(tmp_path, capsys):
    flow = write(tmp_path, "id: hi\nnamespace: demo\ninputs:\n  - id: n\n    type: INT\n"
                 "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
    assert main(["run", str(flow), "--home", str(tmp_path)]) == 1
    assert "Missing required input:n" in capsys.readouterr().err


def test_an_undeclared_input_is_refused_with_what_the_flow_declares(tmp_path, capsys):
    flow = write(tmp_path, "id: hi\nnamespace: demo\ninputs:\n  - id: name\n    type: STRING\n"
                 "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
    assert main(["run", str(flow), "-i", "nmae=x", "--home", str(tmp_path)]) == 1
    assert "Input `nmae` is not declared by demo.hi: did you mean `name`? (its inputs: name)" in capsys.readouterr().err
    assert main(["run", str(EXAMPLE), "-i", "name=value", "--home", str(tmp_path)]) == 1
    assert "Input `name` is not declared by company.team.myflow (its inputs: none)" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`kestra-nb run --json | head -1`: no BrokenPipeError traceback when the reader stops early."""
    script = Path(sys.executable).with_name("kestra-nb")
    big = write(tmp_path, "id: big\nnamespace: demo\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n"
                "    format: \"{{ range(0, 50000) | join(',') }}\"\n")   # more JSON than a pipe holds
    done = subprocess.run(f"'{script}' run '{big}' --json --home '{tmp_path}' | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout == "{\n" and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_validate_prints_each_violation_with_line_and_column(tmp_path, capsys):
    flow = write(tmp_path, "id: bad\nnamespace: Demo\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
                 "  - id: a\n    type: io.kestra.plugin.core.debug.Nope\n")
    assert main(["validate", str(flow)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{flow}:2:") and "namespace" in line for line in err)
    assert any(line.startswith(f"{flow}:4:") and "tasks[0].message: must not be null" in line for line in err)
    assert any(f"{flow}:7:" in line and "Invalid type: io.kestra.plugin.core.debug.Nope" in line for line in err)
    assert len(err) >= 3


def test_validate_good_flow_exits_0(capsys):
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid (company.team.myflow)" in capsys.readouterr().out


def test_missing_file_exits_1(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yml"), "--home", str(tmp_path)]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nope.yml")]) == 1


def test_console_script_end_to_end(tmp_path):
    script = Path(sys.executable).with_name("kestra-nb")
    if not script.exists():
        pytest.fail(f"the console script is not installed next to {sys.executable}")
    done = subprocess.run([str(script), "run", str(EXAMPLE), "--home", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout


def test_kill_pause_resume_act_on_what_another_process_drives(tmp_path, capsys):
    """`kestra-nb resume|pause|kill ID` on the local home: the execution runs in another engine (a kernel)."""
    from kestra_nb.engine import Engine
    from kestra_nb.model.state import StateType
    from tests.engine.test_commands import PAUSED, TWO_STEPS, _finished, _start

    home = tmp_path / "home"
    kernel = Engine(home)
    try:
        paused = _start(kernel, PAUSED)
        assert main(["resume", paused, "-i", "reason=from a terminal", "--home", str(home)]) == 0
        assert f"Execution {paused}: resume done" in capsys.readouterr().out
        ex = _finished(kernel, paused)
        assert ex.state == "SUCCESS"
        assert ex.task_run_list[0].outputs["onResume"]["reason"] == "from a terminal"

        assert main(["resume", paused, "--home", str(home)]) == 1
        assert "is not paused, can't resume it" in capsys.readouterr().err

        running = _start(kernel, TWO_STEPS, StateType.RUNNING)
        assert main(["pause", running, "--home", str(home)]) == 0
        assert "now PAUSED" in capsys.readouterr().out
        assert main(["kill", running, "--home", str(home)]) == 0
        assert _finished(kernel, running).state == "KILLED"
        capsys.readouterr()
        assert main(["restart", running, "--home", str(home)]) == 0   # runs here, to its end
        assert f"Execution {running}: restart done, now SUCCESS" in capsys.readouterr().out
        assert main(["kill", "nope", "--home", str(home)]) == 1
        assert "Execution 'nope' not found." in capsys.readouterr().err
    finally:
        kernel.close()


def test_kill_and_resume_on_a_server(tmp_path, capsys):
    from kestra_nb.engine import Engine
    from tests.api.test_server import start_process
    from tests.engine.test_commands import LONG, PAUSED, _finished, _start

    home = tmp_path / "home"
    kernel = Engine(home)
    proc, url = start_process(home)
    try:
        paused = _start(kernel, PAUSED)
        assert main(["resume", paused, "-i", "reason=remote", "--server", url]) == 0
        assert _finished(kernel, paused).state == "SUCCESS"
        long = _start(kernel, LONG)
        assert main(["kill", long, "--server", url]) == 0
        assert _finished(kernel, long).state == "KILLED"
        capsys.readouterr()
        assert main(["resume", long, "--server", url]) == 1
        assert "not paused" in capsys.readouterr().err
        assert main(["restart", long, "--server", url]) == 0
        assert "restart done" in capsys.readouterr().out
    finally:
        proc.terminate()
        proc.wait(10)
        kernel.close()


def test_help_lists_every_command_and_option_with_examples(capsys) -> None:
    from kestra_nb.cli import EXAMPLES, _parser

    parser = _parser()
    text = parser.format_help()
    assert "examples:" in text and "kestra-nb run examples/greet.yml -i name=Ada" in text and "KESTRA_NB_HOME" in text
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert name in text
        for action in command._actions:
            assert action.help, (name, action.dest)   # every option says what it does
    for line in EXAMPLES.splitlines():
        if line.startswith("  kestra-nb "):
            assert line.split()[1].split("|")[0] in sub.choices, line


def test_namespace_files_upload_list_delete_then_a_flow_reads_them(tmp_path, capsys):
    home = str(tmp_path / "home")
    src = tmp_path / "project"
    (src / "sql").mkdir(parents=True)
    (src / "sql" / "q.sql").write_text("select 1")
    (src / "main.py").write_text("print(1)")
    assert main(["namespace", "files", "upload", "company.team", str(src / "main.py"), str(src / "sql"),
                 "--to", "/app", "--home", home]) == 0
    out = capsys.readouterr().out
    assert f"{src / 'main.py'} -> nsfile://company.team/app/main.py (revision 1)" in out
    assert "-> nsfile://company.team/app/sql/q.sql (revision 1)" in out
    assert main(["namespace", "files", "list", "company.team", "--home", home]) == 0
    assert capsys.readouterr().out.splitlines() == ["/app/main.py\t8", "/app/sql/q.sql\t8"]
    flow = write(tmp_path, "id: r\nnamespace: company.team\ntasks:\n  - id: r\n"
                           "    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ read('app/sql/q.sql') }}\"\n"
                           "outputs:\n  - id: q\n    type: STRING\n    value: \"{{ outputs.r.value }}\"\n")
    assert main(["run", str(flow), "--home", home, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {"q": "select 1"}
    assert main(["namespace", "files", "delete", "company.team", "app/sql", "--home", home]) == 0
    assert capsys.readouterr().out.strip() == "Deleted /app/sql from company.team"
    assert main(["namespace", "files", "list", "company.team", "--home", home]) == 0
    assert capsys.readouterr().out.splitlines() == ["/app/main.py\t8"]


def test_namespace_files_mistakes_exit_1_with_a_clear_message(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert main(["namespace", "files", "upload", "company.team", str(tmp_path / "none"), "--home", home]) == 1
    assert "kestra-nb namespace files upload: No such file or folder:" in capsys.readouterr().err
    (tmp_path / "a.txt").write_text("x")
    assert main(["namespace", "files", "upload", "company.team", str(tmp_path / "a.txt"), "--to", "/../x",
                 "--home", home]) == 1
    assert "`..` is not allowed" in capsys.readouterr().err
    assert main(["namespace", "files", "upload", "Bad NS", str(tmp_path / "a.txt"), "--home", home]) == 1
    assert "Invalid namespace 'Bad NS'" in capsys.readouterr().err
    assert main(["namespace", "files", "delete", "company.team", "/nope", "--home", home]) == 1
    assert "no file or folder /nope in company.team" in capsys.readouterr().err


def test_namespace_files_on_a_server_upload_list_delete_and_a_flow_there_reads_them(tmp_path, capsys, monkeypatch):
    """`--server URL`: the same commands through Kestra's namespace-files API of a real `kestra-nb server`."""
    from kestra_nb.api.auth import Credentials
    from kestra_nb.server import serve_in_thread

    token = "a-token-of-16-chars-or-more"
    srv, thread = serve_in_thread(tmp_path / "server-home", auth=Credentials.configure(None, token), grace=1)
    try:
        src = tmp_path / "project"
        (src / "sql").mkdir(parents=True)
        (src / "sql" / "q.sql").write_text("select 2")
        remote = ["--server", srv.url, "--token", token]
        assert main(["namespace", "files", "upload", "company.team", str(src / "sql"), "--to", "/app", *remote]) == 0
        assert f"{src / 'sql' / 'q.sql'} -> nsfile://company.team/app/sql/q.sql on {srv.url}" in capsys.readouterr().out
        assert main(["namespace", "files", "list", "company.team", *remote]) == 0
        assert capsys.readouterr().out.splitlines() == ["/app/sql/q.sql\t8"]
        flow = write(tmp_path, "id: r\nnamespace: company.team\ntasks:\n  - id: r\n"
                               "    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ read('app/sql/q.sql') }}\"\n")
        assert main(["run", str(flow), *remote, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["taskRunList"][0]["outputs"]["value"] == "select 2"
        assert main(["namespace", "files", "delete", "company.team", "/app", *remote]) == 0
        assert main(["namespace", "files", "delete", "company.team", "/app", *remote]) == 1
        assert f"no file or folder /app in company.team on {srv.url}" in capsys.readouterr().err
        for name in ("KESTRA_API_TOKEN", "KESTRA_NB_BASIC_AUTH"):
            monkeypatch.delenv(name, raising=False)
        assert main(["namespace", "files", "list", "company.team", "--server", srv.url]) == 1   # no credentials
        assert "kestra-nb namespace files list:" in capsys.readouterr().err
    finally:
        srv.stop()
        thread.join(15)


def test_a_folders_kestraignore_leaves_files_out_of_an_upload(tmp_path, capsys):
    """As Kestra's `kestra namespace files update`: gitignore rules in the folder's .kestraignore (which is left
    out itself); an oversized one is refused with its name."""
    home = str(tmp_path / "home")
    src = tmp_path / "app"
    (src / "build").mkdir(parents=True)
    (src / "main.py").write_text("print(1)")
    (src / "debug.log").write_text("noise")
    (src / "keep.log").write_text("kept")
    (src / "build" / "out.bin").write_text("artefact")
    (src / ".kestraignore").write_text("*.log\n!keep.log\nbuild/\n")
    assert main(["namespace", "files", "upload", "company.team", str(src), "--home", home]) == 0
    capsys.readouterr()
    assert main(["namespace", "files", "list", "company.team", "--home", home]) == 0
    assert capsys.readouterr().out.splitlines() == ["/app/keep.log\t4", "/app/main.py\t8"]
    (src / ".kestraignore").write_text("#" * (64 * 1024 + 1))
    assert main(["namespace", "files", "upload", "company.team", str(src), "--home", home]) == 1
    assert "more than 65536 bytes of ignore rules" in capsys.readouterr().err
