"""Commands through the store (issue 14): any engine sharing a home can kill, pause and resume an execution
another one drives; the driver applies them, or the sender takes the execution over when its driver died.

Two engines on one home in this process have two stores, two owners (two OS locks), as two processes do; the
tests that need a dead driver run it in a child process and kill it with SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from kestra_nb.engine import Engine
from kestra_nb.errors import IllegalStateError, InputValidationError
from kestra_nb.model.state import StateType

PAUSED = """id: approval
namespace: company.team
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
      - id: count
        type: INT
        required: false
  - id: after
    type: io.kestra.plugin.core.output.OutputValues
    values:
      reason: "{{ outputs.approve.onResume.reason }}"
"""

LONG = """id: long
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT60S
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""

TWO_STEPS = """id: two_steps
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.3S
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def _start(engine: Engine, source: str, state: StateType = StateType.PAUSED):
    """Start `source` on `engine` (not waiting for its end); its id once it has reached `state`."""
    reached = threading.Event()
    seen: list[str] = []

    def listener(event):
        if getattr(event, "state", None) is state and event.execution_id in seen:
            reached.set()

    unsubscribe = engine.subscribe(None, listener)
    try:
        async def go():
            from kestra_nb.parsing import parse_flow
            flow = parse_flow(source)
            engine.deploy(source)
            ex = engine.new_execution(flow, 1)
            seen.append(ex.id)
            await engine.start(flow, ex)
            return ex.id

        execution_id = engine._call(go()).result(10)
        assert reached.wait(10), f"{execution_id} did not reach {state.value}"
    finally:
        unsubscribe()
    return execution_id


def _finished(engine: Engine, execution_id: str):
    return engine._call(engine.wait_async(execution_id)).result(15)


@pytest.fixture
def pair(tmp_path: Path):
    home = tmp_path / "home"
    driver, other = Engine(home), Engine(home)
    yield driver, other
    other.close()
    driver.close()


def test_resume_from_another_engine_with_on_resume_inputs(pair) -> None:
    driver, other = pair
    execution_id = _start(driver, PAUSED)
    resumed = other.resume(execution_id, inputs={"reason": "from elsewhere", "count": "3"})
    assert resumed.id == execution_id and resumed.state.current is not StateType.PAUSED
    ex = _finished(driver, execution_id)
    assert ex.state == "SUCCESS"
    approve = next(tr for tr in ex.task_run_list if tr.task_id == "approve")
    assert approve.outputs["onResume"] == {"reason": "from elsewhere", "count": 3}
    assert driver.store.pending_commands() == []   # done, in the commit that resumed it


def test_a_refusal_in_the_driver_reaches_the_sender_as_the_same_error(pair) -> None:
    driver, other = pair
    execution_id = _start(driver, PAUSED)
    with pytest.raises(InputValidationError) as info:
        other.resume(execution_id, inputs={"count": "3"})   # the required `reason` is missing
    assert "reason" in info.value.message
    assert driver.get_execution(execution_id).state.current is StateType.PAUSED
    assert other.store.pending_commands() == []
    other.resume(execution_id, inputs={"reason": "ok"})
    assert _finished(driver, execution_id).state == "SUCCESS"


def test_kill_from_another_engine(pair) -> None:
    driver, other = pair
    execution_id = _start(driver, LONG)
    other.kill(execution_id)
    ex = _finished(driver, execution_id)
    assert ex.state == "KILLED"
    assert [tr.state.current.value for tr in ex.task_run_list] == ["KILLED"]
    with pytest.raises(IllegalStateError, match="already finished"):
        other.kill(execution_id)


def test_pause_then_resume_from_another_engine(pair) -> None:
    driver, other = pair
    execution_id = _start(driver, TWO_STEPS, StateType.RUNNING)
    paused = other.pause(execution_id)
    assert paused.state.current is StateType.PAUSED
    with pytest.raises(IllegalStateError, match="is not running, can't pause it"):
        other.pause(execution_id)
    other.resume(execution_id)
    assert _finished(driver, execution_id).state == "SUCCESS"


def test_an_unknown_id_is_not_found_anywhere(pair) -> None:
    from kestra_nb.errors import NotFoundError
    _, other = pair
    for call in (lambda: other.kill("nope"), lambda: other.resume("nope"), lambda: other.pause("nope")):
        with pytest.raises(NotFoundError):
            call()


CHILD = textwrap.dedent("""
    import sys, time
    from kestra_nb.engine import Engine
    engine = Engine(sys.argv[1])
    source = open(sys.argv[2]).read()
    from kestra_nb.parsing import parse_flow
    flow = parse_flow(source)
    engine.deploy(source)
    ex = engine.new_execution(flow, 1)
    done = engine._call(engine.start(flow, ex)).result(10)
    while engine.get_execution(ex.id).state.current.value != "PAUSED":
        time.sleep(0.01)
    print(ex.id, flush=True)
    time.sleep(600)
""")


def _driver_in_a_child(home: Path, source: str, tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    flow_file = tmp_path / "flow.yml"
    flow_file.write_text(source)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(home), str(flow_file)], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline().strip()   # type: ignore[union-attr]
    assert line, "the child did not start its execution"
    return proc, line


def test_the_sender_takes_over_when_the_driver_has_died(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, execution_id = _driver_in_a_child(home, PAUSED, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    engine = Engine(home, recover=False)   # (no start-up recovery: the command itself finds the dead driver)
    try:
        engine.resume(execution_id, inputs={"reason": "taken over"})
        ex = _finished(engine, execution_id)
        assert ex.state == "SUCCESS"
        assert next(tr for tr in ex.task_run_list if tr.task_id == "approve").outputs["onResume"]["reason"] \
            == "taken over"
    finally:
        engine.close()


def test_a_command_stored_for_a_driver_that_died_is_applied_once_by_the_recovering_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, execution_id = _driver_in_a_child(home, PAUSED, tmp_path)
    os.kill(proc.pid, signal.SIGSTOP)   # alive but not applying: the command waits in the store
    sender = Engine(home, recover=False)
    seq = sender.store.put_command(execution_id, "resume", {"inputs": {"reason": "queued"}})
    sender.close()
    os.kill(proc.pid, signal.SIGKILL)   # the driver dies between the command being stored and applied
    proc.wait()
    engine = Engine(home)               # start-up recovery adopts it; its watcher applies the command
    try:
        ex = _finished(engine, execution_id)
        assert ex.state == "SUCCESS"
        assert next(tr for tr in ex.task_run_list if tr.task_id == "approve").outputs["onResume"]["reason"] \
            == "queued"
        assert engine.store.command_outcome(seq) == (True, None)
        assert engine.store.pending_commands() == []
        assert [h.state.value for h in ex.state.histories].count("SUCCESS") == 1
    finally:
        engine.close()


def test_a_command_stored_without_a_ring_is_still_applied(pair) -> None:
    """The doorbell only hurries the driver: a command in the store is found by its periodic look too."""
    driver, other = pair
    execution_id = _start(driver, LONG)
    seq = other.store.put_command(execution_id, "kill", {"cascade": True})   # stored, no ring
    assert _finished(driver, execution_id).state == "KILLED"
    assert other.store.command_outcome(seq) == (True, None)


def test_ringing_a_process_without_a_doorbell_is_harmless() -> None:
    from kestra_nb.engine.runner import ring
    ring("no-such-owner")


def test_the_standalone_server_resumes_and_kills_what_a_kernel_drives(tmp_path: Path) -> None:
    """Kestra's routes on `kestra-nb server` act on executions another process (here: this test's engine,
    as a kernel's would be) drives: resume with onResume inputs, 2.0's kill answering the execution."""
    import httpx
    from tests.api.test_server import start_process

    home = tmp_path / "home"
    engine = Engine(home)
    proc, url = start_process(home)
    try:
        paused = _start(engine, PAUSED)
        with httpx.Client(base_url=url, timeout=20) as client:
            r = client.post(f"/api/v1/main/executions/{paused}/resume", files={"reason": (None, "over http")})
            assert r.status_code == 204, r.text
            assert _finished(engine, paused).state == "SUCCESS"
            r = client.post(f"/api/v1/main/executions/{paused}/resume")
            assert r.status_code == 409 and "is not paused" in r.text, r.text
            long = _start(engine, LONG)
            r = client.delete(f"/api/v1/main/executions/{long}/actions/kill")
            assert r.status_code == 200, r.text
            assert r.json()["state"]["current"] in ("KILLING", "KILLED")
            assert _finished(engine, long).state == "KILLED"
            assert client.delete("/api/v1/main/executions/nope/kill").status_code == 404

            from tests.api.test_files import RESUME_FLOW   # a FILE onResume input, stored by the server
            holding = _start(engine, RESUME_FLOW)
            r = client.post(f"/api/v1/main/executions/{holding}/actions/resume",
                            files={"report": ("report.pdf", b"%PDF-1.7 fake"), "reason": (None, "ok")})
            assert r.status_code == 200 and r.json()["state"]["current"] != "PAUSED", r.text
            ex = _finished(engine, holding)
            uri = f"kestra:///company/team/approve/executions/{holding}/inputs/report/report.pdf"
            assert ex.state == "SUCCESS" and ex.task_run_list[0].outputs == {"onResume": {"report": uri, "reason": "ok"}}
            with engine.store.storage.open(uri) as stored:
                assert stored.read() == b"%PDF-1.7 fake"
    finally:
        proc.terminate()
        proc.wait(10)
        engine.close()


def test_restart_a_paused_execution_another_engine_drives(pair) -> None:
    """A restart of a paused execution goes to its driver (two drivers of one execution would corrupt it)."""
    driver, other = pair
    execution_id = _start(driver, PAUSED)
    restarted = other.restart(execution_id, wait=False)
    assert restarted.id == execution_id and restarted.metadata.attempt_number == 2
    assert execution_id in driver._driven and execution_id not in other._driven
    other.resume(execution_id, inputs={"reason": "after restart"})
    ex = _finished(driver, execution_id)
    assert ex.state == "SUCCESS" and ex.metadata.attempt_number == 2
    with pytest.raises(IllegalStateError, match="must be terminated to be restarted"):
        running = _start(driver, TWO_STEPS, StateType.RUNNING)
        other.restart(running, wait=False)


def test_a_kill_cascades_to_children_another_engine_drives(pair) -> None:
    from kestra_nb.model.execution import ExecutionTrigger
    from kestra_nb.parsing import parse_flow

    driver, other = pair
    parent = _start(driver, LONG)
    flow = parse_flow(LONG.replace("id: long", "id: child"))
    other.deploy(flow.source)
    child = other.new_execution(flow, 1)
    child.trigger = ExecutionTrigger("call", "io.kestra.plugin.core.flow.Subflow",
                                     {"executionId": parent, "namespace": "company.team", "flowId": "long"})

    async def go():
        await other.start(flow, child)

    other._call(go()).result(10)
    driver.kill(parent)
    assert _finished(driver, parent).state == "KILLED"
    assert _finished(other, child.id).state == "KILLED"


def test_a_command_the_driver_does_not_apply_in_time_is_withdrawn(tmp_path: Path, monkeypatch) -> None:
    """A sender that stops waiting takes its command back: it is never applied later, unexpectedly."""
    from kestra_nb.engine import runner

    home = tmp_path / "home"
    proc, execution_id = _driver_in_a_child(home, PAUSED, tmp_path)
    try:
        os.kill(proc.pid, signal.SIGSTOP)   # alive (its lock held) but not applying anything
        monkeypatch.setattr(runner, "COMMAND_WAIT", 0.3)
        sender = Engine(home, recover=False)
        try:
            with pytest.raises(IllegalStateError, match="did not apply the resume within 0.3 s; the command "
                                                        "was withdrawn"):
                sender.resume(execution_id, inputs={"reason": "too late"})
            assert sender.store.pending_commands() == []
        finally:
            sender.close()
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        engine = Engine(home)   # recovers the execution: still PAUSED, the withdrawn resume not applied
        try:
            assert engine.get_execution(execution_id).state.current is StateType.PAUSED
            engine.resume(execution_id, inputs={"reason": "now"})
            assert _finished(engine, execution_id).state == "SUCCESS"
        finally:
            engine.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SENDER = textwrap.dedent("""
    import os, signal, sys
    from kestra_nb.engine import Engine
    from kestra_nb.store.sqlite import SQLiteStore
    when = sys.argv[3]
    put = SQLiteStore.put_command

    def dying_put(self, *args, **kwargs):   # the receiver dies on one side or the other of storing the command
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        seq = put(self, *args, **kwargs)
        print(seq, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    SQLiteStore.put_command = dying_put
    Engine(sys.argv[1], recover=False).resume(sys.argv[2], inputs={"reason": "sent by the dead"})
""")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_receiver_killed_around_storing_a_command_loses_it_or_has_it_applied_once(pair, tmp_path: Path,
                                                                                      when: str) -> None:
    """kill -9 of the process that received a resume: before it stored the command, nothing happened (the
    caller got no answer, and retrying applies it once); after, the driver applies it exactly once."""
    driver, other = pair
    execution_id = _start(driver, PAUSED)
    proc = subprocess.run([sys.executable, "-c", SENDER, str(tmp_path / "home"), execution_id, when], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if when == "before":
        assert proc.stdout == ""
        assert other.store.pending_commands() == []
        assert driver.get_execution(execution_id).state.current is StateType.PAUSED
        other.resume(execution_id, inputs={"reason": "retried"})   # the caller's retry
    ex = _finished(driver, execution_id)
    assert ex.state == "SUCCESS"
    approve = next(tr for tr in ex.task_run_list if tr.task_id == "approve")
    assert approve.outputs["onResume"]["reason"] == ("retried" if when == "before" else "sent by the dead")
    assert [h.state.value for h in ex.state.histories].count("PAUSED") == 1   # resumed once
    assert [h.state.value for h in approve.state.histories].count("PAUSED") == 1
    if when == "after":
        assert driver.store.command_outcome(int(proc.stdout)) == (True, None)
    assert driver.store.pending_commands() == []


def test_delete_an_execution_another_engine_drives(pair) -> None:
    """The API's delete kills it through its driver first, so the driver's last commit cannot bring it back."""
    from kestra_nb.api.service import ApiService

    driver, other = pair
    execution_id = _start(driver, LONG)
    service = ApiService(other)
    other._call(service.delete_execution(execution_id)).result(20)
    assert execution_id not in driver._driven
    assert driver.get_execution(execution_id) is None and other.get_execution(execution_id) is None
    assert driver.store.pending_commands() == []


def test_act_names_the_actions_it_knows(pair) -> None:
    from kestra_nb.errors import IllegalArgumentError

    driver, _ = pair
    with pytest.raises(IllegalArgumentError, match="Unknown action 'stop', expected one of kill, pause, resume"):
        driver.act("stop", "any")
