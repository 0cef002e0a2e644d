"""`%%flow` and `%flow` on an IPython InteractiveShell: options, namespace bindings, errors without traceback."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.engine.events import ExecutionUpdated
from kestra_nb.model.execution import Execution
from tests.jupyter.conftest import SEED, run_cell

MIME = "application/vnd.kestra.execution+json"

INPUTS_FLOW = """id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
  - id: times
    type: INT
    defaults: 1
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }} x{{ inputs.times }}"
  - id: shout
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}/{{ inputs.times }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.shout.value }}"
"""

ORDERS = """id: orders
namespace: company.team
tasks:
  - id: extract
    type: io.kestra.plugin.core.debug.Return
    format: "42 orders"
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "no warehouse configured"
  - id: load
    type: io.kestra.plugin.core.debug.Return
    format: "loaded {{ outputs.extract.value }}"
outputs:
  - id: loaded
    type: STRING
    value: "{{ outputs.load.value }}"
"""

SLEEPY = """id: sleepy
namespace: company.team
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
"""


def assert_short_error(cell: Any, *fragments: str) -> None:
    """The cell failed with IPython's one-line UsageError display: the message, no traceback."""
    assert not cell.success
    assert type(cell.error).__name__ == "UsageError"
    text = cell.stdout + cell.stderr
    assert "Traceback" not in text and "File " not in text, text
    assert cell.stderr.startswith("UsageError: "), cell.stderr
    for fragment in fragments:
        assert fragment in cell.stderr, (fragment, cell.stderr)


# --------------------------------------------------------------------------------------------- runs

def test_seed_cell_saves_runs_binds_and_shows(shell: Any, jengine: Any) -> None:
    cell = run_cell(shell, "%%flow --out ex\n" + SEED)
    assert cell.success, cell.stderr
    ex = shell.user_ns["ex"]
    assert isinstance(ex, Execution) and ex.state == "SUCCESS"
    assert shell.user_ns["outputs"] == {"mydata": "hello from kestra"}
    record = jengine.store.get_flow("company.team", "myflow")
    assert record is not None and record.source == SEED and record.revision == 1
    assert jengine.store.get_execution(ex.id).state == "SUCCESS"
    # one live view, displayed once, then its output refreshed with the final static HTML
    views = cell.bundles(MIME)
    assert views[-1]["summary"]["state"] == "SUCCESS"   # (the display, then its updates: update_display_data)
    final_html = cell.bundles("text/html")[-1]
    assert "SUCCESS" in final_html and "hello from kestra" in final_html and "mytask" in final_html
    view = shell.kestra_magics.last_view
    assert view.summary["state"] == "SUCCESS" and view.outputs == {"mydata": "hello from kestra"}
    assert [r["task"] for r in view.runs] == ["mytask"] and view.runs[0]["state"] == "SUCCESS"


def test_edited_cell_is_a_new_revision(shell: Any, jengine: Any) -> None:
    assert run_cell(shell, "%%flow --quiet\n" + SEED).success
    assert run_cell(shell, "%%flow --quiet\n" + SEED).success  # identical: same revision
    edited = SEED.replace("hello from kestra", "hello again")
    assert run_cell(shell, "%%flow --quiet --out ex\n" + edited).success
    assert jengine.store.get_flow("company.team", "myflow").revision == 2
    assert shell.user_ns["ex"].flow_revision == 2 and shell.user_ns["outputs"] == {"mydata": "hello again"}


def test_inputs_from_options_and_namespace(shell: Any) -> None:
    shell.user_ns["params"] = {"name": "dict", "times": 3}
    cell = run_cell(shell, "%%flow --inputs params -i name=option --out ex --quiet\n" + INPUTS_FLOW)
    assert cell.success, cell.stderr
    assert shell.user_ns["outputs"] == {"greeting": "option/3"}  # -i wins over --inputs
    assert shell.user_ns["ex"].inputs == {"name": "option", "times": 3}


def test_labels(shell: Any) -> None:
    cell = run_cell(shell, "%%flow --label team:data -l env:dev --out ex --quiet\n" + SEED)
    assert cell.success, cell.stderr
    labels = shell.user_ns["ex"].label_map()
    assert labels["team"] == "data" and labels["env"] == "dev"


def test_quiet_displays_nothing(shell: Any) -> None:
    cell = run_cell(shell, "%%flow --quiet\n" + SEED)
    assert cell.success and cell.outputs == [] and cell.stdout == ""
    assert shell.user_ns["outputs"] == {"mydata": "hello from kestra"}


def test_no_run_only_saves(shell: Any, jengine: Any) -> None:
    shell.user_ns.pop("outputs", None)
    cell = run_cell(shell, "%%flow --no-run\n" + SEED)
    assert cell.success
    assert cell.stdout.strip() == "company.team.myflow revision 1 saved"
    assert "outputs" not in shell.user_ns
    assert jengine.store.search_executions(namespace="company.team")[1] == 0


def test_a_failed_execution_fails_the_cell_with_its_error(shell: Any) -> None:
    """Under Run All, what went wrong shows at the cell that failed, not as a KeyError cells later."""
    cell = run_cell(shell, "%%flow --out ex\n" + ORDERS)
    assert not cell.success and type(cell.error).__name__ == "UsageError"
    ex = shell.user_ns["ex"]   # bound all the same
    assert str(cell.error) == f"Execution {ex.id} FAILED: check: no warehouse configured (--allow-failure keeps " \
                              "the cell going)"
    assert ex.state == "FAILED" and shell.user_ns["outputs"] == {}
    view = shell.kestra_magics.last_view
    assert {r["task"]: r["state"] for r in view.runs} == {"extract": "SUCCESS", "check": "FAILED"}
    assert any(log["level"] == "ERROR" and "no warehouse" in log["message"] for log in view.logs)
    assert view.state["error"] == "check: no warehouse configured"   # shown above the timeline
    quiet = run_cell(shell, "%%flow --quiet\n" + ORDERS)
    assert not quiet.success and "FAILED: check: no warehouse configured" in str(quiet.error)


def test_allow_failure_makes_a_failed_execution_a_result(shell: Any) -> None:
    cell = run_cell(shell, "%%flow --allow-failure --out ex\n" + ORDERS)
    assert cell.success, cell.stderr
    assert shell.user_ns["ex"].state == "FAILED"


EXITS_KILLED = """id: stopper
namespace: company.team
tasks:
  - id: stop
    type: io.kestra.plugin.core.execution.Exit
    state: KILLED
"""


def test_a_killed_execution_fails_the_cell_unless_allowed(shell: Any) -> None:
    cell = run_cell(shell, "%%flow --out ex --quiet\n" + EXITS_KILLED)
    ex = shell.user_ns["ex"]
    assert ex.state == "KILLED"
    assert not cell.success and str(cell.error) == f"Execution {ex.id} KILLED (--allow-failure keeps the cell going)"
    assert run_cell(shell, "%%flow --allow-failure --quiet\n" + EXITS_KILLED).success


def test_from_task_replays_the_last_execution(shell: Any, jengine: Any) -> None:
    assert run_cell(shell, "%%flow --allow-failure --out first --quiet\n" + ORDERS).success
    first = shell.user_ns["first"]
    fixed = ORDERS.replace("io.kestra.plugin.core.execution.Fail", "io.kestra.plugin.core.log.Log") \
        .replace("errorMessage:", "message:")
    cell = run_cell(shell, "%%flow --from check --out second\n" + fixed)
    assert cell.success, cell.stderr
    second = shell.user_ns["second"]
    assert second.state == "SUCCESS" and second.id != first.id and second.flow_revision == 2
    assert shell.user_ns["outputs"] == {"loaded": "loaded 42 orders"}
    # `extract` was not run again: its task run is a copy of the first execution's
    before = next(first.task_runs_of("extract"))
    after = next(second.task_runs_of("extract"))
    assert after.state.histories[-1].date == before.state.histories[-1].date
    assert [tr.task_id for tr in second.task_run_list] == ["extract", "check", "load"]


def test_from_task_errors(shell: Any) -> None:
    assert_short_error(run_cell(shell, "%%flow --from check --quiet\n" + ORDERS), "no execution to run from")
    assert run_cell(shell, "%%flow --allow-failure --quiet\n" + ORDERS).success
    assert_short_error(run_cell(shell, "%%flow --from nope --quiet\n" + ORDERS),
                       "task `nope` did not run", "extract, check")


def test_timeout_kills_and_reports(shell: Any) -> None:
    cell = run_cell(shell, "%%flow --timeout 0.2 --out ex\n" + SLEEPY)
    assert_short_error(cell, "did not end within 0.2s; it was killed")
    ex = shell.user_ns["ex"]
    assert ex.state == "KILLED" and shell.user_ns["outputs"] == {}
    assert shell.kestra_magics.last_view.summary["state"] == "KILLED"
    assert "did not end" in shell.kestra_magics.last_view.error


def test_ctrl_c_kills_the_execution(shell: Any, jengine: Any) -> None:
    """SIGINT on the main thread (what a kernel interrupt is) while the Sleep runs: the execution is KILLED."""
    magics = shell.kestra_magics
    main = threading.main_thread().ident
    fired = threading.Event()

    def on_event(event: Any) -> None:  # on the engine's loop thread
        if fired.is_set() or not isinstance(event, ExecutionUpdated):
            return
        if any(tr["taskId"] == "nap" and tr["state"]["current"] == "RUNNING"
               for tr in event.document.get("taskRunList") or ()):
            fired.set()
            threading.Thread(target=interrupt, daemon=True).start()

    def interrupt() -> None:
        live = magics.live
        assert live is not None and live.waiting.wait(30)  # the magic is following: Ctrl-C is its to handle
        signal.pthread_kill(main, signal.SIGINT)

    unsubscribe = jengine.subscribe(None, on_event)
    try:
        cell = run_cell(shell, "%%flow --out ex\n" + SLEEPY)
    finally:
        unsubscribe()
    assert fired.is_set()
    assert_short_error(cell, "Interrupted: execution", "was killed")
    assert shell.user_ns["ex"].state == "KILLED"
    assert magics.last_view.summary["state"] == "KILLED"


def test_nothing_in_the_cell_is_python(shell: Any, tmp_path: Path) -> None:
    target = tmp_path / "untouched"
    flow = f"""id: literal
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "open('{target}', 'w').write('x') {{{{ 1 + 1 }}}}"
outputs:
  - id: said
    type: STRING
    value: "{{{{ outputs.say.value }}}}"
"""
    cell = run_cell(shell, "%%flow --quiet\n" + flow)
    assert cell.success, cell.stderr
    assert shell.user_ns["outputs"] == {"said": f"open('{target}', 'w').write('x') 2"}
    assert not target.exists()


# ------------------------------------------------------------------------------------------- errors

def test_invalid_flow_points_at_the_yaml_line(shell: Any, jengine: Any) -> None:
    """Line numbers are the editor's: the cell's first line is `%%flow`, so the flow's line 5 is line 6."""
    shell.user_ns["outputs"] = {"before": 1}
    flow = "id: broken\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.nope\n"
    cell = run_cell(shell, "%%flow\n" + flow)
    assert_short_error(cell, "Invalid flow (1 problem)", "line 6, column 5", "tasks[0].type",
                       "   6 |     type: io.kestra.nope")
    assert shell.user_ns["outputs"] == {"before": 1}  # nothing ran, nothing rebound
    assert jengine.store.get_flow("company.team", "broken") is None


def test_yaml_syntax_error(shell: Any) -> None:
    cell = run_cell(shell, "%%flow\nid: x\nnamespace: a.b\ntasks: [\n")
    assert_short_error(cell, "Invalid flow", "line 4, column 9: Invalid YAML: did not find expected node content",
                       "   4 | tasks: [", "^")


def test_an_unclosed_quote_points_where_it_opens(shell: Any) -> None:
    cell = run_cell(shell, '%%flow\nid: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n'
                           '    message: "hello\n\n')
    assert_short_error(cell, "line 7, column 14: Invalid YAML: the quoted scalar starting here is never closed",
                       '   7 |     message: "hello')


def test_invalid_inputs_point_at_their_declaration(shell: Any) -> None:
    assert_short_error(run_cell(shell, "%%flow --quiet\n" + INPUTS_FLOW), "Invalid inputs", "name",
                       "declared at line 5", "   5 |   - id: name")
    assert_short_error(run_cell(shell, "%%flow -i name=x -i times=abc\n" + INPUTS_FLOW), "`times`",
                       "declared at line 7")


@pytest.mark.parametrize("line, fragment", [
    ("-i novalue", "expected input as KEY=VALUE"),
    ("--label nocolon", "expected label as KEY:VALUE"),
    ("--bogus", "unrecognized arguments: --bogus"),
    ("--timeout soon", "--timeout"),
    ("--inputs missing", "--inputs missing: no such variable"),
    ('-i name="unclosed', "No closing quotation"),
])
def test_option_errors(shell: Any, line: str, fragment: str) -> None:
    assert_short_error(run_cell(shell, f"%%flow {line}\n" + SEED), fragment)


def test_inputs_must_be_a_dict(shell: Any) -> None:
    shell.user_ns["params"] = [1, 2]
    assert_short_error(run_cell(shell, "%%flow --inputs params\n" + SEED), "expected a dict, got list")


# ------------------------------------------------------------------------------------------ %flow

def test_flow_run_a_stored_flow(shell: Any) -> None:
    assert run_cell(shell, "%%flow --no-run\n" + INPUTS_FLOW).success
    cell = run_cell(shell, "%flow run company.team.hello -i name=stored --out ex")
    assert cell.success, cell.stderr
    assert shell.user_ns["outputs"] == {"greeting": "stored/1"}
    assert shell.user_ns["ex"].state == "SUCCESS"
    assert cell.bundles(MIME)
    assert_short_error(run_cell(shell, "%flow run company.team.nope"), "company.team.nope is not in the store")
    assert_short_error(run_cell(shell, "%flow run nodot"), "expected NAMESPACE.ID")
    assert_short_error(run_cell(shell, "%flow run company.team.hello"), "Invalid inputs")


def test_flow_list_and_show(shell: Any) -> None:
    assert run_cell(shell, "%%flow --out ex --quiet\n" + SEED).success
    assert run_cell(shell, "%%flow --no-run\n" + INPUTS_FLOW).success
    listed = run_cell(shell, "%flow list")
    assert listed.success
    text = listed.bundles("text/plain")[0]
    ex_id = shell.user_ns["ex"].id
    assert "company.team.myflow" in text and "company.team.hello" in text and ex_id in text
    assert "SUCCESS" in listed.bundles("text/html")[0]
    only = run_cell(shell, "%flow list company")
    assert "company.team.hello" in only.bundles("text/plain")[0]
    shown = run_cell(shell, "%flow show {ex.id}")
    assert shown.success and shown.bundles(MIME)
    assert ex_id in shown.bundles("text/html")[0] and "hello from kestra" in shown.bundles("text/html")[0]
    assert_short_error(run_cell(shell, "%flow show nope"), "Execution 'nope' not found")
    assert_short_error(run_cell(shell, "%flow frobnicate"), "Unknown command `%flow frobnicate`")
    assert "%%flow [options]" in run_cell(shell, "%flow").stdout


def test_load_ext_uses_the_process_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`%load_ext kestra_nb` registers the magics on the default engine (KESTRA_NB_HOME)."""
    from IPython.core.interactiveshell import InteractiveShell

    from kestra_nb.engine import runner

    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(runner, "_default", None)
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("reload_ext", "kestra_nb")
        assert "flow" in ip.magics_manager.magics["cell"] and "flow" in ip.magics_manager.magics["line"]
        cell = run_cell(ip, "%%flow --quiet\n" + SEED)
        assert cell.success, cell.stderr
        engine = runner._default
        assert engine is not None and Path(engine.store.path).parent == tmp_path / "home"
        assert engine.store.get_flow("company.team", "myflow") is not None
    finally:
        if runner._default is not None:
            runner._default.close()
        ip.reset(new_session=False)


# ----------------------------------------------------------------------------------------- --server

def test_server_option_runs_remotely(shell: Any, tmp_path: Path) -> None:
    from kestra_nb.server import serve_in_thread

    server, thread = serve_in_thread(tmp_path / "remote", grace=1)
    try:
        cell = run_cell(shell, f"%%flow --server {server.url} --out ex -i name=remote\n" + INPUTS_FLOW)
        assert cell.success, cell.stderr
        ex = shell.user_ns["ex"]
        assert isinstance(ex, Execution) and ex.state == "SUCCESS"
        assert shell.user_ns["outputs"] == {"greeting": "remote/1"}
        view = shell.kestra_magics.last_view
        assert view.summary["state"] == "SUCCESS" and [r["task"] for r in view.runs] == ["greet", "shout"]
        assert any("Hello remote" in log["message"] for log in view.logs)
        assert server.engine.store.get_execution(ex.id) is not None  # it ran there
        assert_short_error(run_cell(shell, f"%%flow --server {server.url} --quiet\n" + INPUTS_FLOW),
                           "Invalid inputs")
        assert_short_error(run_cell(shell, f"%%flow --server {server.url} --from x\n" + SEED),
                           "--from cannot be used with --server")
        saved = run_cell(shell, f"%%flow --server {server.url} --no-run\n" + SEED)
        assert saved.success and "company.team.myflow revision 1 saved on" in saved.stdout
    finally:
        server.stop()
        thread.join(15)




def test_flow_resume_kill_pause_act_on_what_another_kernel_drives(shell: Any, jengine: Any, tmp_path: Path,
                                                                   capsys: Any) -> None:
    """`%flow resume|kill|pause ID` from this kernel, on executions another kernel's engine (same home)
    drives: the command goes through the store and that engine applies it."""
    from kestra_nb.engine import Engine
    from kestra_nb.model.state import StateType
    from tests.engine.test_commands import PAUSED, _finished, _start

    other = Engine(tmp_path / "store")   # the other kernel
    try:
        paused = _start(other, PAUSED)
        shell.run_line_magic("flow", f"resume {paused} -i reason=approved")
        assert f"Execution {paused}: resume done" in capsys.readouterr().out
        ex = _finished(other, paused)
        assert ex.state == "SUCCESS" and ex.task_run_list[-1].outputs == {"values": {"reason": "approved"}}

        long = _start(other, SLEEPY, StateType.RUNNING)
        shell.run_line_magic("flow", f"pause {long}")
        assert "now PAUSED" in capsys.readouterr().out
        shell.run_line_magic("flow", f"kill {long}")
        assert _finished(other, long).state == "KILLED"
        with pytest.raises(Exception, match=f"%flow kill {long}: Execution is already finished"):
            shell.run_line_magic("flow", f"kill {long}")
        with pytest.raises(Exception, match="Execution 'nope' not found"):
            shell.run_line_magic("flow", "resume nope")
        with pytest.raises(Exception, match="expected input as KEY=VALUE"):
            shell.run_line_magic("flow", f"resume {paused} -i novalue")

        shell.run_line_magic("flow", f"restart {long}")   # killed: its task runs again, same id
        out = capsys.readouterr().out
        assert f"Execution {long}: restart done, now" in out and f"%flow show {long}" in out
        shell.run_line_magic("flow", f"kill {long}")
        shell.run_line_magic("flow", f"replay {paused} --from after")
        out = capsys.readouterr().out
        replayed = out.split(" as execution ", 1)[1].split(",", 1)[0]
        ex = jengine._call(jengine.wait_async(replayed)).result(10)
        assert ex.state == "SUCCESS" and ex.task_run_list[-1].outputs == {"values": {"reason": "approved"}}
        with pytest.raises(Exception, match="has no task run of `nope`; its tasks: approve, after"):
            shell.run_line_magic("flow", f"replay {paused} --from nope")
    finally:
        other.close()


def test_an_undeclared_input_fails_the_cell_with_what_the_flow_declares(shell: Any) -> None:
    cell = run_cell(shell, "%%flow -i nmae=Ada\n" + SEED)
    assert not cell.success and type(cell.error).__name__ == "UsageError"
    assert "Input `nmae` is not declared by company.team.myflow (its inputs: none)" in str(cell.error)
    assert cell.bundles(MIME) == []   # nothing ran


def test_a_variable_of_the_users_named_outputs_is_kept(shell: Any) -> None:
    """`%%flow` binds `outputs` by default, but never replaces a variable of the user's without a word."""
    assert run_cell(shell, "%%flow --quiet\n" + SEED).success
    assert shell.user_ns["outputs"] == {"mydata": "hello from kestra"}   # the default binding
    assert run_cell(shell, "%%flow --quiet\n" + SEED).success             # ours: replaced
    shell.user_ns["outputs"] = ["my", "own"]
    cell = run_cell(shell, "%%flow --quiet --out ex\n" + SEED)
    assert cell.success and shell.user_ns["outputs"] == ["my", "own"]
    assert "`outputs` is a variable of yours, so it was left as it is; the flow's outputs are in ex.outputs" \
        in cell.stderr
    assert shell.user_ns["ex"].outputs == {"mydata": "hello from kestra"}
    again = run_cell(shell, "%%flow --quiet\n" + SEED)
    assert again.success and "variable of yours" not in again.stderr   # said once
    del shell.user_ns["outputs"]
    assert run_cell(shell, "%%flow --quiet\n" + SEED).success and shell.user_ns["outputs"] == {
        "mydata": "hello from kestra"}


def test_help_lists_every_option_with_examples(shell: Any) -> None:
    from kestra_nb.jupyter.magic import CELL_PARSER, HELP

    for action in CELL_PARSER._actions:
        for flag in action.option_strings:
            assert flag in HELP, flag
        assert action.help, action.dest
    assert "Examples:" in HELP and "%%flow --out ex" in HELP and "`outputs` is the dict of the flow's outputs" in HELP


FILE_FLOW = """id: reads
namespace: company.team
inputs:
  - id: data
    type: FILE
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.data) }}"
outputs:
  - id: content
    type: STRING
    value: "{{ outputs.read.value }}"
"""


def test_a_file_input_may_be_a_local_file(shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook's own file as a FILE input: stored in the internal storage, as an upload is, then read."""
    (tmp_path / "orders.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    shell.user_ns["params"] = {"data": tmp_path / "orders.csv"}
    for cell in ("%%flow --quiet --out ex -i data=orders.csv\n", "%%flow --quiet --out ex --inputs params\n",
                 f"%%flow --quiet --out ex -i data=file://{tmp_path}/orders.csv\n"):
        result = run_cell(shell, cell + FILE_FLOW)
        assert result.success, result.stderr
        ex = shell.user_ns["ex"]
        assert ex.outputs == {"content": "a,b\n1,2\n"}
        assert ex.inputs["data"] == f"kestra:///company/team/reads/executions/{ex.id}/inputs/data/orders.csv"
    missing = run_cell(shell, f"%%flow --quiet -i data=file://{tmp_path}/nope.csv\n" + FILE_FLOW)
    assert not missing.success and "is not a file" in missing.stderr and "Traceback" not in missing.stderr


def test_a_stored_flows_errors_count_its_own_lines(shell: Any) -> None:
    assert run_cell(shell, "%%flow --no-run\n" + INPUTS_FLOW).success
    cell = run_cell(shell, "%flow run company.team.hello")
    assert not cell.success and "declared at line 4" in cell.stderr and "   4 |   - id: name" in cell.stderr
