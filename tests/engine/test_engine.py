"""Engine semantics: order of tasks/errors/finally/afterExecution, final-state rules, outputs, logs,
labels, kill, timeout, events and task plugins."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from kestra_nb.errors import ExecutionTimeoutError, IllegalArgumentError, InputValidationError
from kestra_nb.model.execution import Level
from kestra_nb.tasks import Prop, Task, registry


def flow(tasks: str, extra: str = "") -> str:
    return f"id: f\nnamespace: company.team\n{extra}tasks:\n{tasks}"


RET = "  - id: {id}\n    type: io.kestra.plugin.core.debug.Return\n    format: {fmt}\n"
FAIL = "  - id: {id}\n    type: io.kestra.plugin.core.execution.Fail\n"


def states(ex) -> dict[str, str]:
    return {tr.task_id: tr.state.current.value for tr in ex.task_run_list}


def order(ex) -> list[str]:
    return [tr.task_id for tr in ex.task_run_list]


def logs(engine, ex, level: Level | None = None) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=level)]


def test_tasks_run_in_order_and_outputs_chain(engine):
    ex = engine.run(flow(RET.format(id="a", fmt="one") + RET.format(id="b", fmt='"{{ outputs.a.value }}-two"')))
    assert ex.state == "SUCCESS"
    assert order(ex) == ["a", "b"]
    assert ex.task_run_list[1].outputs == {"value": "one-two"}
    a, b = ex.task_run_list
    assert a.state.end_date <= b.state.start_date


def test_failure_stops_sequence_runs_errors_then_finally_and_stays_failed(engine):
    yaml = flow(RET.format(id="a", fmt="x") + FAIL.format(id="boom") + RET.format(id="never", fmt="x"),
                ) + "errors:\n" + RET.format(id="on_error", fmt="e") + "finally:\n" + RET.format(id="fin", fmt="f")
    ex = engine.run(yaml)
    assert ex.state == "FAILED"
    assert order(ex) == ["a", "boom", "on_error", "fin"]
    assert states(ex) == {"a": "SUCCESS", "boom": "FAILED", "on_error": "SUCCESS", "fin": "SUCCESS"}
    assert "Task failure" in logs(engine, ex, Level.ERROR)


def test_errors_do_not_run_on_success_and_finally_does(engine):
    yaml = flow(RET.format(id="a", fmt="x")) + "errors:\n" + RET.format(id="on_error", fmt="e") \
        + "finally:\n" + RET.format(id="fin", fmt="f")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS" and order(ex) == ["a", "fin"]


def test_failing_finally_fails_the_execution(engine):
    ex = engine.run(flow(RET.format(id="a", fmt="x")) + "finally:\n" + FAIL.format(id="fin"))
    assert ex.state == "FAILED" and states(ex) == {"a": "SUCCESS", "fin": "FAILED"}


def test_after_execution_runs_after_final_state_and_never_changes_it(engine):
    yaml = flow(FAIL.format(id="boom")) + "afterExecution:\n" \
        + RET.format(id="after", fmt='"{{ execution.state }}"') + FAIL.format(id="after_fail")
    ex = engine.run(yaml)
    assert ex.state == "FAILED"
    assert order(ex) == ["boom", "after", "after_fail"]
    # afterExecution sees the final state; its task runs start after the execution ended
    assert ex.task_run_list[1].outputs == {"value": "FAILED"}
    assert ex.task_run_list[1].state.start_date >= ex.state.end_date
    ok = engine.run(flow(RET.format(id="a", fmt="x")) + "afterExecution:\n" + FAIL.format(id="after_fail"))
    assert ok.state == "SUCCESS" and states(ok)["after_fail"] == "FAILED"


def test_allow_failure_gives_warning_and_allow_warning_success(engine):
    ex = engine.run(flow(FAIL.format(id="soft") + "    allowFailure: true\n" + RET.format(id="next", fmt="x")))
    assert ex.state == "WARNING" and states(ex) == {"soft": "WARNING", "next": "SUCCESS"}
    assert ex.task_run_list[0].attempts[-1].state == "FAILED"
    ex = engine.run(flow(FAIL.format(id="soft") + "    allowFailure: true\n    allowWarning: true\n"))
    assert ex.state == "SUCCESS" and states(ex) == {"soft": "SUCCESS"}


def test_run_if_false_skips_and_disabled_creates_no_task_run(engine):
    yaml = flow(RET.format(id="skipped", fmt="x") + '    runIf: "{{ 1 == 2 }}"\n'
                + RET.format(id="off", fmt="x") + "    disabled: true\n"
                + RET.format(id="ran", fmt="x") + '    runIf: "{{ 1 == 1 }}"\n')
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    assert states(ex) == {"skipped": "SKIPPED", "ran": "SUCCESS"}
    assert ex.task_run_list[0].attempts is None


def test_run_if_render_error_fails_the_task(engine):
    ex = engine.run(flow(RET.format(id="a", fmt="x") + '    runIf: "{{ nope }}"\n'))
    assert ex.state == "FAILED" and states(ex) == {"a": "FAILED"}
    assert any("Unable to find `nope`" in m and "runIf" in m for m in logs(engine, ex, Level.ERROR))


def test_fail_condition(engine):
    yaml = flow(FAIL.format(id="maybe") + '    condition: "{{ inputs.go }}"\n    errorMessage: "stop {{ inputs.go }}"\n',
                "inputs:\n  - id: go\n    type: STRING\n")
    assert engine.run(yaml, inputs={"go": "false"}).state == "SUCCESS"
    ex = engine.run(yaml, inputs={"go": "yes"})
    assert ex.state == "FAILED" and "stop yes" in logs(engine, ex, Level.ERROR)


def test_outputs_are_computed_after_a_failure(engine):
    yaml = flow(RET.format(id="a", fmt="kept") + FAIL.format(id="boom")) + \
        "outputs:\n  - id: o\n    type: STRING\n    value: \"{{ outputs.a.value }}\"\n"
    ex = engine.run(yaml)
    assert ex.state == "FAILED" and ex.outputs == {"o": "kept"}


def test_output_expression_failure_fails_execution_with_error_log(engine):
    yaml = flow(RET.format(id="a", fmt="x")) + \
        "outputs:\n  - id: o\n    type: STRING\n    value: \"{{ outputs.missing.value }}\"\n"
    ex = engine.run(yaml)
    assert ex.state == "FAILED"
    assert ex.outputs is None and "outputs" not in ex.to_dict()
    assert states(ex) == {"a": "SUCCESS"}
    errors = logs(engine, ex, Level.ERROR)
    assert len(errors) == 1 and errors[0].startswith("Failed to render output values: ")
    assert "Unable to find `missing`" in errors[0]


def test_typed_outputs(engine):
    yaml = flow("  - id: v\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      n: \"42\"\n"
                "      obj: '{\"a\": [1, 2]}'\n") + \
        "outputs:\n  - id: n\n    type: INT\n    value: \"{{ outputs.v.values.n }}\"\n" \
        "  - id: obj\n    type: JSON\n    value: \"{{ outputs.v.values.obj }}\"\n"
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    assert ex.outputs == {"n": 42, "obj": {"a": [1, 2]}}
    assert ex.task_run_list[0].outputs == {"values": {"n": "42", "obj": '{"a": [1, 2]}'}}


def test_log_task_levels_lists_and_log_level_filter(engine):
    yaml = flow("  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message:\n      - first {{ flow.id }}\n"
                "      - second\n    level: WARN\n"
                "  - id: quiet\n    type: io.kestra.plugin.core.log.Log\n    message: hidden\n    level: DEBUG\n"
                "    logLevel: INFO\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    entries = engine.store.list_logs(ex.id)
    assert [(e.task_id, e.level.value, e.message) for e in entries] == [("l", "WARN", "first f"), ("l", "WARN", "second")]
    assert entries[0].task_run_id == ex.task_run_list[0].id and entries[0].attempt_number == 0
    assert ex.task_run_list[0].outputs is None and "outputs" in ex.to_dict()["taskRunList"][0]


def test_context_variables(engine):
    yaml = flow(RET.format(id="a", fmt='"{{ flow.namespace }}|{{ flow.revision }}|{{ execution.id }}|'
                           '{{ task.id }}|{{ taskrun.id }}|{{ vars.v }}|{{ inputs.who }}|{{ labels.team }}|'
                           '{{ labels.system.correlationId }}"'),
                "inputs:\n  - id: who\n    type: STRING\n    defaults: world\nvariables:\n  v: var\n")
    ex = engine.run(yaml, labels={"team": "data"})
    tr = ex.task_run_list[0]
    assert tr.outputs["value"] == f"company.team|1|{ex.id}|a|{tr.id}|var|world|data|{ex.id}"


def test_inputs_typed_on_execution(engine):
    yaml = flow(RET.format(id="a", fmt='"{{ inputs.n + 1 }}"'),
                "inputs:\n  - id: n\n    type: INT\n  - id: opt\n    type: STRING\n    required: false\n")
    ex = engine.run(yaml, inputs={"n": "41"})
    assert ex.inputs == {"n": 41, "opt": None} and ex.to_dict()["inputs"] == {"n": 41, "opt": None}
    assert ex.task_run_list[0].outputs == {"value": "42"}
    with pytest.raises(InputValidationError, match="Missing required input:n"):
        engine.run(yaml)


def test_labels_order_and_system_labels(engine):
    yaml = flow(RET.format(id="a", fmt="x"), "labels:\n  env: prod\n")
    ex = engine.run(yaml, labels={"team": "data", "system.correlationId": "abc"})
    assert [(label.key, label.value) for label in ex.labels] == [
        ("env", "prod"), ("team", "data"), ("system.correlationId", "abc")]
    with pytest.raises(IllegalArgumentError, match="System labels can only be set by Kestra itself, offending label: system.app=x"):
        engine.run(yaml, labels={"system.app": "x"})


def test_expression_error_names_task_property_and_line(engine):
    ex = engine.run(flow(RET.format(id="a", fmt='"{{ inputs.nope }}"')))
    assert ex.state == "FAILED"
    [message] = logs(engine, ex, Level.ERROR)
    assert message.startswith("Unable to find `nope` used in the expression `{{ inputs.nope }}` at line 1")
    assert "task `a`" in message and "property `format`" in message and "tasks[0].format, line 6" in message


# ---------------------------------------------------------------------------------------------- kill


class Block(Task):
    """Test-only: waits until released (or cancelled)."""

    type = "tests.Block"
    props = (Prop("name", "string"),)
    started: dict[str, threading.Event] = {}
    release: dict[str, asyncio.Event] = {}

    async def run(self, ctx) -> dict[str, Any]:
        name = self.prop("name")
        gate = Block.release[name] = asyncio.Event()
        Block.started[name].set()
        await gate.wait()
        return {"released": name}


@pytest.fixture
def block_task():
    registry.register(Block)
    yield Block
    registry.unregister(Block)


BLOCK = "  - id: {id}\n    type: tests.Block\n    name: {id}\n"


def test_kill_a_running_execution(engine, block_task):
    block_task.started["k1"] = threading.Event()
    seen: list[str] = []
    result: dict[str, Any] = {}

    def runner() -> None:
        result["ex"] = engine.run(flow(BLOCK.format(id="k1") + RET.format(id="after", fmt="x")))

    engine.subscribe(None, lambda ev: seen.append(getattr(ev, "state", None) and ev.state.value))
    thread = threading.Thread(target=runner)
    thread.start()
    assert block_task.started["k1"].wait(10)
    [exec_id] = {ev for ev in engine._driven}
    killed = engine.kill(exec_id, wait=True)
    thread.join(10)
    ex = result["ex"]
    assert ex.state == "KILLED" and killed.state == "KILLED"
    assert [h.state.value for h in ex.state.histories] == ["CREATED", "RUNNING", "KILLING", "KILLED"]
    assert states(ex) == {"k1": "KILLED"}
    assert ex.task_run_list[0].attempts[0].state == "KILLED"
    assert engine.store.get_execution(ex.id).state == "KILLED"
    assert "KILLING" in seen and seen[-1] == "KILLED"


def test_run_timeout_kills_and_raises(engine, block_task):
    block_task.started["t1"] = threading.Event()
    with pytest.raises(ExecutionTimeoutError) as info:
        engine.run(flow(BLOCK.format(id="t1")), timeout=0.2)
    assert info.value.execution.state == "KILLED"
    assert "did not end within 0.2s" in str(info.value)


def test_events_are_published_in_order_after_commit(engine, seed_flow):
    seen: list[tuple[str, bool, bool]] = []

    def listener(event) -> None:
        if hasattr(event, "document"):
            stored = engine.store.get_execution_document(event.execution_id)
            seen.append((event.state.value, event.finished, stored == event.document))

    engine.subscribe(None, listener)
    ex = engine.run(seed_flow)
    assert seen[0] == ("CREATED", False, True)
    assert all(committed for *_, committed in seen)
    assert seen[-1] == ("SUCCESS", True, True)
    assert [s for s, *_ in seen] == sorted([s for s, *_ in seen], key=["CREATED", "RUNNING", "SUCCESS"].index)
    assert ex.state == "SUCCESS"


def test_unknown_task_type_is_a_validation_error(engine):
    from kestra_nb.errors import FlowValidationError

    with pytest.raises(FlowValidationError, match="Invalid type: io.kestra.plugin.core.debug.UnknownTask"):
        engine.run(flow("  - id: a\n    type: io.kestra.plugin.core.debug.UnknownTask\n"))


def test_legacy_type_names_run(engine):
    ex = engine.run(flow("  - id: a\n    type: io.kestra.core.tasks.debugs.Return\n    format: old\n"))
    assert ex.state == "SUCCESS" and ex.task_run_list[0].outputs == {"value": "old"}


def test_kill_and_wait_errors(engine, seed_flow):
    from kestra_nb.errors import IllegalStateError, NotFoundError
    from kestra_nb.model.state import StateType
    from kestra_nb.parsing import parse_flow

    with pytest.raises(NotFoundError, match="Execution 'nope' not found."):
        engine.kill("nope")
    done = engine.run(seed_flow)
    with pytest.raises(IllegalStateError, match="Execution is already finished, can't kill it"):
        engine.kill(done.id)
    # an execution another process drives: stored RUNNING, unknown to this engine
    other = engine.new_execution(parse_flow(seed_flow), 1)
    other.state.transition(StateType.RUNNING)
    engine.store.save_execution(other)
    with pytest.raises(IllegalStateError, match="is not driven by this process"):
        engine.kill(other.id)
    with pytest.raises(IllegalStateError, match="is not driven by this process"):
        engine._call(engine.wait_async(other.id)).result(5)


def test_blocking_run_on_the_engine_loop_is_refused(engine, seed_flow):
    import asyncio

    from kestra_nb.errors import IllegalStateError

    async def inside():
        with pytest.raises(IllegalStateError, match="await engine.run_async"):
            engine.run(seed_flow)
        return (await engine.run_async(seed_flow)).state.current.value

    assert asyncio.run_coroutine_threadsafe(inside(), engine.loop).result(10) == "SUCCESS"


def test_disabled_flow_is_refused(engine):
    from kestra_nb.errors import IllegalStateError

    with pytest.raises(IllegalStateError, match="Requested Flow is disabled."):
        engine.run(flow(RET.format(id="a", fmt="x"), "disabled: true\n"))


class AwaitsAfterAll(Task):
    """Test-only: declared instant, but awaits (a plugin's mistake the engine must survive)."""

    type = "tests.AwaitsAfterAll"
    instant = True

    async def run(self, ctx) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        return {"slept": True}


def test_task_marked_instant_that_awaits_still_completes(engine):
    registry.register(AwaitsAfterAll)
    try:
        ex = engine.run(flow("  - id: a\n    type: tests.AwaitsAfterAll\n" + RET.format(id="b", fmt='"{{ outputs.a.slept }}"')),
                        timeout=10)
    finally:
        registry.unregister(AwaitsAfterAll)
    assert ex.state == "SUCCESS" and ex.task_run_list[1].outputs == {"value": "true"}


def test_outputs_inside_a_sequential_in_a_foreach_nest_once_per_loop_value(engine):
    yaml = flow("  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [x, y]\n    tasks:\n"
                "      - id: seq\n        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n"
                "          - id: r\n            type: io.kestra.plugin.core.debug.Return\n"
                "            format: \"{{ parent.taskrun.value }}!\"\n"
                "          - id: again\n            type: io.kestra.plugin.core.debug.Return\n"
                "            format: \"{{ outputs.r[parent.taskrun.value].value }}\"\n") + \
        "outputs:\n  - id: all\n    type: JSON\n    value: \"{{ outputs.r }}\"\n"
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS"
    assert ex.outputs == {"all": {"x": {"value": "x!"}, "y": {"value": "y!"}}}
    assert [tr.outputs for tr in ex.task_run_list if tr.task_id == "again"] == [{"value": "x!"}, {"value": "y!"}]
    # only the loop's own children (the Sequential runs) have its value; the Sequential's children have none
    # (Kestra's FlowableUtils.resolveTasks) and find it up their parents: `parent.taskrun.value`
    seqs = {tr.id: tr.value for tr in ex.task_run_list if tr.task_id == "seq"}
    assert sorted(seqs.values()) == ["x", "y"]
    assert all(tr.parent_task_run_id in seqs and tr.value is None for tr in ex.task_run_list if tr.task_id == "r")


def test_tasks_variable_is_computed_on_use(engine):
    yaml = flow(RET.format(id="a", fmt="x") + RET.format(id="b", fmt='"{{ tasks.a.state }} {{ tasks }}"'))
    ex = engine.run(yaml)
    value = ex.task_run_list[1].outputs["value"]
    assert value.startswith("SUCCESS {") and '"a":{"state":"SUCCESS"}' in value and '"b":{"state":"RUNNING"}' in value


def test_manual_pause_holds_new_tasks_until_resumed(engine, block_task):
    block_task.started["mp"] = threading.Event()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "ex", engine.run(flow(BLOCK.format(id="mp") + RET.format(id="after", fmt="x")), timeout=30)))
    thread.start()
    assert block_task.started["mp"].wait(10)
    [exec_id] = list(engine._driven)
    assert engine.pause(exec_id).state == "PAUSED"
    engine.loop.call_soon_threadsafe(block_task.release["mp"].set)
    # the blocked task ends, but nothing new starts while paused
    deadline = time.monotonic() + 10
    while engine.get_execution(exec_id).task_run_list[0].state != "SUCCESS" and time.monotonic() < deadline:
        time.sleep(0.01)
    paused = engine.get_execution(exec_id)
    assert paused.state == "PAUSED" and [tr.task_id for tr in paused.task_run_list] == ["mp"]
    engine.resume(exec_id)
    thread.join(10)
    ex = result["ex"]
    assert ex.state == "SUCCESS" and [tr.task_id for tr in ex.task_run_list] == ["mp", "after"]
    assert [h.state.value for h in ex.state.histories] == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]


def test_flow_retry_create_new_execution(engine):
    from kestra_nb.engine.events import ExecutionUpdated

    done: dict[str, Any] = {}
    finished = threading.Event()

    def listener(event) -> None:
        if isinstance(event, ExecutionUpdated) and event.finished:
            done[event.execution_id] = event.document
            if event.document["metadata"]["attemptNumber"] == 2:
                finished.set()

    engine.subscribe(None, listener)
    first = engine.run(flow(FAIL.format(id="boom"),
                            "retry:\n  type: constant\n  interval: PT0.01S\n  maxAttempt: 2\n"
                            "  behavior: CREATE_NEW_EXECUTION\n"))
    assert first.state == "RETRIED"
    assert [h.state.value for h in first.state.histories][-2:] == ["FAILED", "RETRIED"]
    assert finished.wait(10)
    [second] = [d for d in done.values() if d["metadata"]["attemptNumber"] == 2]
    assert second["state"]["current"] == "FAILED"  # maxAttempt 2: no third execution
    assert second["parentId"] == first.id and second["originalId"] == first.original_id
    assert second["id"] != first.id


def test_recovery_starts_a_scheduled_execution_at_its_date_not_before(tmp_path, seed_flow):
    from datetime import timedelta

    from kestra_nb.engine import Engine
    from kestra_nb.engine.events import ExecutionUpdated
    from kestra_nb.model.state import utcnow

    first = Engine(tmp_path / "store")
    flow_, revision = first.deploy(seed_flow)
    ex = first.new_execution(flow_, revision)
    ex.schedule_date = utcnow() + timedelta(seconds=0.5)
    first.store.save_execution(ex)   # stored CREATED, as a server does while waiting for the date
    first.close()                    # its process "dies": the owner lock is released

    finished = threading.Event()
    second = Engine(tmp_path / "store")
    try:
        second.subscribe(ex.id, lambda e: isinstance(e, ExecutionUpdated) and e.finished and finished.set())
        assert second.recovered == [ex.id]
        assert second.get_execution(ex.id).state == "CREATED"
        assert finished.wait(10)
        done = second.get_execution(ex.id)
        assert done.state == "SUCCESS"
        assert done.state.histories[1].date >= ex.schedule_date
    finally:
        second.close()


def test_current_each_output_without_a_sibling_output_is_a_clear_error(engine):
    yaml = flow("  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [a]\n    tasks:\n"
                "      - id: use\n        type: io.kestra.plugin.core.debug.Return\n"
                "        format: \"{{ currentEachOutput({'b': 1}) }}\"\n")
    ex = engine.run(yaml)
    assert ex.state == "FAILED"
    assert any("currentEachOutput: no output for the loop value `a`" in m for m in logs(engine, ex, Level.ERROR))
