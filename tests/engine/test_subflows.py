"""Subflow and ForEachItem (spec §5.9, §5.10, §8): parent/child link, wait, transmitFailed, labels, kill cascade."""
from __future__ import annotations

import asyncio
import threading

import pytest

from kestra_nb.model.execution import Level
from kestra_nb.tasks import ion

CHILD = """id: child
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: n
    type: INT
    required: false
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.name }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.hello.value }}"
"""

FAILING = """id: failing
namespace: company.team
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""

SLEEPY = """id: sleepy
namespace: company.team
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
"""


def parent(body: str, extra: str = "") -> str:
    return f"id: parent\nnamespace: company.team\n{extra}tasks:\n  - id: sub\n    type: io.kestra.plugin.core.flow.Subflow\n{body}"


def child_of(engine, ex):
    (tr,) = [tr for tr in ex.task_run_list if tr.task_id == "sub"]
    return engine.get_execution(tr.outputs["executionId"])


def logs(engine, ex, level=None):
    return [e.message for e in engine.store.list_logs(ex.id, min_level=level)]


def test_subflow_waits_and_exposes_child_flow_outputs(engine):
    engine.deploy(CHILD)
    ex = engine.run(parent(
        "    namespace: company.team\n    flowId: child\n    inputs:\n      name: \"{{ 'kestra' | upper }}\"\n"
        "  - id: after\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: \"{{ outputs.sub.outputs.greeting }} {{ outputs.sub.state }}\"\n",
        extra="outputs:\n  - id: from_child\n    type: STRING\n    value: \"{{ outputs.sub.outputs.greeting }}\"\n"))
    assert ex.state == "SUCCESS"
    sub = ex.task_run_list[0]
    assert set(sub.outputs) == {"executionId", "state", "outputs"}
    assert sub.outputs["state"] == "SUCCESS"
    assert sub.outputs["outputs"] == {"greeting": "hello KESTRA"}  # flow-level outputs only (gap #8)
    assert ex.task_run_list[1].outputs == {"value": "hello KESTRA SUCCESS"}
    assert ex.outputs == {"from_child": "hello KESTRA"}
    child = child_of(engine, ex)
    assert child.state == "SUCCESS"
    assert child.trigger.id == "sub" and child.trigger.type == "io.kestra.plugin.core.flow.Subflow"
    assert {k: child.trigger.variables[k] for k in ("executionId", "namespace", "flowId", "flowRevision")} == {
        "executionId": ex.id, "namespace": "company.team", "flowId": "parent", "flowRevision": 1}
    assert child.inputs == {"name": "KESTRA", "n": None}
    doc = child.to_dict()
    assert doc["trigger"]["variables"]["executionId"] == ex.id


def test_child_sees_trigger_variables(engine):
    engine.deploy("""id: child
namespace: company.team
tasks:
  - id: who
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.executionId }}/{{ trigger.flowId }}"
outputs:
  - id: who
    type: STRING
    value: "{{ outputs.who.value }}"
""")
    ex = engine.run(parent("    namespace: company.team\n    flowId: child\n"))
    assert ex.task_run_list[0].outputs["outputs"] == {"who": f"{ex.id}/parent"}


@pytest.mark.parametrize("transmit, state", [(True, "FAILED"), (False, "SUCCESS")])
def test_transmit_failed(engine, transmit, state):
    engine.deploy(FAILING)
    ex = engine.run(parent(f"    namespace: company.team\n    flowId: failing\n    transmitFailed: {str(transmit).lower()}\n"))
    assert ex.state == state
    sub = ex.task_run_list[0]
    assert sub.state.current.value == state
    assert sub.outputs["state"] == "FAILED"  # outputs are kept on a failed Subflow task run too
    assert child_of(engine, ex).state == "FAILED"
    if transmit:
        assert any("ended FAILED" in m for m in logs(engine, ex, Level.ERROR))


def test_allow_failure_turns_transmitted_failure_into_warning(engine):
    engine.deploy(FAILING)
    ex = engine.run(parent("    namespace: company.team\n    flowId: failing\n    allowFailure: true\n"))
    assert ex.task_run_list[0].state.current.value == "WARNING"
    assert ex.state == "WARNING"


def test_wait_false_succeeds_right_after_starting_the_child(engine):
    engine.deploy(SLEEPY)
    ex = engine.run(parent("    namespace: company.team\n    flowId: sleepy\n    wait: false\n"), timeout=10)
    assert ex.state == "SUCCESS"
    assert set(ex.task_run_list[0].outputs) == {"executionId"}
    child_id = ex.task_run_list[0].outputs["executionId"]
    assert engine.get_execution(child_id).state.current.value in ("CREATED", "RUNNING")
    killed = engine.kill(child_id, wait=True)
    assert killed.state == "KILLED"


def test_invalid_child_inputs_fail_the_task_with_the_input_message(engine):
    engine.deploy(CHILD)
    ex = engine.run(parent("    namespace: company.team\n    flowId: child\n    inputs:\n      n: notanumber\n"))
    assert ex.state == "FAILED"
    errors = logs(engine, ex, Level.ERROR)
    assert any("n" in m and "notanumber" in m for m in errors), errors
    assert engine.store.search_executions(flow_id="child")[1] == 0


def test_unknown_flow_is_a_clear_task_error(engine):
    ex = engine.run(parent("    namespace: company.team\n    flowId: nope\n"))
    assert ex.state == "FAILED"
    assert "Unable to find flow 'company.team'.'nope' with revision '0'" in logs(engine, ex, Level.ERROR)


def test_labels_inherit_labels_and_correlation_id(engine):
    engine.deploy(CHILD)
    ex = engine.run(parent(
        "    namespace: company.team\n    flowId: child\n    inheritLabels: true\n"
        "    labels:\n      - key: team\n        value: \"{{ flow.id }}\"\n      - key: env\n        value: child-env\n",
        extra="labels:\n  env: prod\n  owner: me\n"), labels={"system.correlationId": "corr-1"})
    child = child_of(engine, ex)
    labels = [(lb.key, lb.value) for lb in child.labels]
    assert ("owner", "me") in labels and ("team", "parent") in labels and ("env", "child-env") in labels
    assert ("env", "prod") not in labels
    assert ("system.correlationId", "corr-1") in labels
    # without inheritLabels only the task's labels and the correlation id
    ex2 = engine.run(parent("    namespace: company.team\n    flowId: child\n", extra="labels:\n  owner: me\n"))
    labels2 = [(lb.key, lb.value) for lb in child_of(engine, ex2).labels]
    assert labels2 == [("system.correlationId", ex2.id)]


def test_system_labels_are_refused(engine):
    engine.deploy(CHILD)
    ex = engine.run(parent("    namespace: company.team\n    flowId: child\n    labels:\n      system.app: x\n"))
    assert ex.state == "FAILED"
    assert any("System labels can only be set by Kestra itself" in m for m in logs(engine, ex, Level.ERROR))


def test_revision_is_honoured(engine):
    engine.deploy(CHILD)
    engine.deploy(CHILD.replace('format: "hello', 'format: "bye'))
    ex = engine.run(parent("    namespace: company.team\n    flowId: child\n    revision: 1\n"))
    assert ex.task_run_list[0].outputs["outputs"] == {"greeting": "hello world"}
    assert child_of(engine, ex).flow_revision == 1
    latest = engine.run(parent("    namespace: company.team\n    flowId: child\n"))
    assert latest.task_run_list[0].outputs["outputs"] == {"greeting": "bye world"}


def test_kill_cascades_to_the_waited_child(engine):
    engine.deploy(SLEEPY)
    source = parent("    namespace: company.team\n    flowId: sleepy\n")
    flow, revision = engine.deploy(source)
    child_running = threading.Event()
    box: dict[str, str] = {}

    def listener(event):
        doc = getattr(event, "document", None)
        if doc and doc.get("flowId") == "sleepy" and doc["state"]["current"] == "RUNNING" and any(
                t["state"]["current"] == "RUNNING" for t in doc.get("taskRunList", ())):
            box["child"] = doc["id"]
            child_running.set()

    engine.subscribe(None, listener)

    async def start():
        ex = engine.new_execution(flow, revision)
        await engine.start(flow, ex)
        return ex.id

    parent_id = asyncio.run_coroutine_threadsafe(start(), engine.loop).result(5)
    assert child_running.wait(10)
    waiting = engine.get_execution(parent_id).task_run_list[0]
    assert waiting.state.current.value == "RUNNING"
    assert waiting.outputs == {"executionId": box["child"]}  # the child is known while the task waits
    killed = engine.kill(parent_id, wait=True, timeout=10)
    assert killed.state == "KILLED"
    assert killed.task_run_list[0].state.current.value == "KILLED"
    child = asyncio.run_coroutine_threadsafe(engine.executions.wait(box["child"]), engine.loop).result(10)
    assert child.state == "KILLED"


def test_closing_the_engine_does_not_kill_children(tmp_path):
    from kestra_nb.engine import Engine

    engine = Engine(tmp_path / "s")
    engine.deploy(SLEEPY)
    flow, revision = engine.deploy(parent("    namespace: company.team\n    flowId: sleepy\n"))
    running = threading.Event()
    engine.subscribe(None, lambda e: running.set() if getattr(e, "document", {}).get("flowId") == "sleepy"
                     and e.state.value == "RUNNING" else None)

    async def start():
        ex = engine.new_execution(flow, revision)
        await engine.start(flow, ex)
        return ex.id

    asyncio.run_coroutine_threadsafe(start(), engine.loop).result(5)
    assert running.wait(10)
    store = engine.store
    engine.close()
    from kestra_nb.store import open_store

    again = open_store(str(tmp_path / "s"))
    try:
        (child,), _ = again.search_executions(flow_id="sleepy")
        assert child.state.current.value == "RUNNING"
    finally:
        again.close()
    assert store is not None


def test_recovered_subflow_task_waits_for_the_existing_child(tmp_path):
    """A Subflow task run re-run after recovery takes over the child its lost attempt had created."""
    from kestra_nb.engine import Engine
    from kestra_nb.model.state import StateType

    engine = Engine(tmp_path / "s")
    engine.deploy(CHILD.replace("tasks:\n  - id: hello", "tasks:\n  - id: wait\n    type: io.kestra.plugin.core.flow.Sleep\n"
                                "    duration: PT0.3S\n  - id: hello"))
    flow, revision = engine.deploy(parent("    namespace: company.team\n    flowId: child\n"))
    running = threading.Event()
    engine.subscribe(None, lambda e: running.set() if getattr(e, "document", {}).get("flowId") == "child"
                     and e.state is StateType.RUNNING else None)

    async def start():
        ex = engine.new_execution(flow, revision)
        await engine.start(flow, ex)
        return ex.id

    parent_id = asyncio.run_coroutine_threadsafe(start(), engine.loop).result(5)
    assert running.wait(10)
    engine.close()  # as if the process died: both stay RUNNING in the store
    from kestra_nb.store import open_store

    store = open_store(str(tmp_path / "s"))
    store.close()
    recovered = Engine(tmp_path / "s")
    try:
        assert parent_id in recovered.recovered
        ex = asyncio.run_coroutine_threadsafe(recovered.executions.wait(parent_id), recovered.loop).result(10)
        assert ex.state == "SUCCESS"
        assert ex.task_run_list[0].outputs["outputs"] == {"greeting": "hello world"}
        children, total = recovered.store.search_executions(flow_id="child")
        assert total == 1 and children[0].id == ex.task_run_list[0].outputs["executionId"]
    finally:
        recovered.close()


FOREACH = """id: batches
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 3
    namespace: company.team
    flowId: counter
    inputs:
      data: "{{ taskrun.items }}"
"""

COUNTER = """id: counter
namespace: company.team
inputs:
  - id: data
    type: FILE
tasks:
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.data }}"
outputs:
  - id: lines
    type: STRING
    value: "{{ outputs.count.value }}"
"""


def test_for_each_item_runs_one_child_per_batch(engine):
    engine.deploy(COUNTER)
    uri = engine.store.storage.put("kestra:///company/team/batches/input.txt",
                                   "".join(f"line{i}\n" for i in range(1, 11)).encode())
    ex = engine.run(FOREACH, inputs={"file": uri})
    assert ex.state == "SUCCESS", logs(engine, ex)
    assert [tr.task_id for tr in ex.task_run_list] == ["each", "each_split", "each_items", "each_merge"]
    out = ex.task_run_list[2].outputs
    assert out["numberOfBatches"] == 4
    assert out["iterations"] == {"CREATED": 0, "RUNNING": 0, "SUCCESS": 4}
    merged = ex.task_run_list[3].outputs["subflowOutputs"]
    lines = engine.store.storage.read_bytes(merged).decode().splitlines()
    batches = [engine.store.storage.read_bytes(ion.loads(line)["lines"]).decode() for line in lines]
    assert batches == ["line1\nline2\nline3\n", "line4\nline5\nline6\n", "line7\nline8\nline9\n", "line10\n"]
    children, total = engine.store.search_executions(flow_id="counter", size=10)
    assert total == 4
    assert all(c.trigger.variables["executionId"] == ex.id for c in children)
    assert {c.trigger.type for c in children} == {"io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable"}
    assert sorted(c.trigger.variables["taskRunIteration"] for c in children) == [1, 2, 3, 4]


def test_a_flow_calling_itself_is_a_violation_with_its_line():
    from kestra_nb.errors import FlowValidationError
    from kestra_nb.parsing import parse_flow

    source = """id: loop
namespace: company.team
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: again
        type: io.kestra.plugin.core.flow.Subflow
        namespace: company.team
        flowId: loop
"""
    with pytest.raises(FlowValidationError) as info:
        parse_flow(source)
    (violation,) = info.value.violations
    assert violation.path == "tasks[0].tasks[0].flowId"
    assert violation.line == 10
    assert "Recursive call to flow [company.team.loop]" in violation.message
    # another flow, or a rendered name, is fine
    parse_flow(source.replace("flowId: loop", "flowId: other"))
    parse_flow(source.replace("flowId: loop", "flowId: \"{{ flow.id }}\""))


def test_for_each_item_partitions_and_transmit_failed(engine):
    engine.deploy(FAILING)
    uri = engine.store.storage.put("kestra:///company/team/batches/input.txt", b"a\nb\nc\nd\ne\n")
    source = FOREACH.replace("rows: 3", "partitions: 2").replace("flowId: counter", "flowId: failing").replace(
        "    inputs:\n      data: \"{{ taskrun.items }}\"\n", "")
    ex = engine.run(source, inputs={"file": uri})
    assert ex.state == "FAILED"
    assert [tr.task_id for tr in ex.task_run_list] == ["each", "each_split", "each_items"]   # no merge after a failure
    out = ex.task_run_list[2].outputs
    assert out["numberOfBatches"] == 2 and out["iterations"] == {"CREATED": 0, "RUNNING": 0, "FAILED": 2}
    relaxed = engine.run(source.replace("    flowId: failing\n", "    flowId: failing\n    transmitFailed: false\n"),
                         inputs={"file": uri})
    assert relaxed.state == "SUCCESS"


MISSING_ITEMS = FOREACH.replace('items: "{{ inputs.file }}"', 'items: "kestra:///company/team/batches/nope.txt"').replace(
    "inputs:\n  - id: file\n    type: FILE\n", "")


def test_for_each_item_missing_items_file_fails_the_task(engine):
    engine.deploy(COUNTER)
    ex = engine.run(MISSING_ITEMS)
    assert ex.state == "FAILED"
    errors = logs(engine, ex, Level.ERROR)
    assert any("Cannot split `items` kestra:///company/team/batches/nope.txt" in m for m in errors), errors
    assert engine.store.search_executions(flow_id="counter", size=10)[1] == 0


@pytest.mark.parametrize("batch, message", [
    ("rows: many", "`rows` and `partitions` are integers"),
    ("rows: 0", "Cannot split `items`"),
])
def test_for_each_item_bad_batch_fails_the_task(engine, batch, message):
    engine.deploy(COUNTER)
    uri = engine.store.storage.put("kestra:///company/team/batches/input.txt", b"a\nb\n")
    ex = engine.run(FOREACH.replace("rows: 3", batch), inputs={"file": uri})
    assert ex.state == "FAILED"
    errors = logs(engine, ex, Level.ERROR)
    assert any(message in m for m in errors), errors
    assert engine.store.search_executions(flow_id="counter", size=10)[1] == 0


def test_schedule_date_delays_the_child(engine):
    from datetime import datetime, timedelta, timezone

    engine.deploy(CHILD)
    at = datetime.now(timezone.utc) + timedelta(seconds=0.4)
    ex = engine.run(parent(f"    namespace: company.team\n    flowId: child\n    scheduleDate: \"{at.isoformat()}\"\n"),
                    timeout=10)
    assert ex.state == "SUCCESS"
    child = child_of(engine, ex)
    assert child.schedule_date is not None and child.state.histories[0].date < at
    running = next(h.date for h in child.state.histories if h.state.value == "RUNNING")
    assert running >= at


def _start_and_wait_for_running_child(engine, source):
    flow, revision = engine.deploy(source)
    child_running = threading.Event()
    box: dict[str, str] = {}

    def listener(event):
        doc = getattr(event, "document", None)
        if doc and doc.get("flowId") == "sleepy" and any(
                t["state"]["current"] == "RUNNING" for t in doc.get("taskRunList", ())):
            box["child"] = doc["id"]
            child_running.set()

    unsubscribe = engine.subscribe(None, listener)

    async def start():
        ex = engine.new_execution(flow, revision)
        await engine.start(flow, ex)
        return ex.id

    parent_id = asyncio.run_coroutine_threadsafe(start(), engine.loop).result(5)
    assert child_running.wait(10)
    unsubscribe()
    return parent_id, box["child"]


def test_kill_cascades_to_children_not_waited_for(engine):
    engine.deploy(SLEEPY)
    source = parent("    namespace: company.team\n    flowId: sleepy\n    wait: false\n") + (
        "  - id: hold\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT30S\n")
    parent_id, child_id = _start_and_wait_for_running_child(engine, source)
    killed = engine.kill(parent_id, wait=True, timeout=10)
    assert killed.state == "KILLED"
    assert killed.task_run_list[0].state.current.value == "SUCCESS"
    child = asyncio.run_coroutine_threadsafe(engine.executions.wait(child_id), engine.loop).result(10)
    assert child.state == "KILLED"


def test_kill_without_cascade_leaves_children_not_waited_for_running(engine):
    engine.deploy(SLEEPY)
    source = parent("    namespace: company.team\n    flowId: sleepy\n    wait: false\n") + (
        "  - id: hold\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT30S\n")
    parent_id, child_id = _start_and_wait_for_running_child(engine, source)
    asyncio.run_coroutine_threadsafe(engine.kill_async(parent_id, cascade=False), engine.loop).result(5)
    killed = asyncio.run_coroutine_threadsafe(engine.wait_async(parent_id), engine.loop).result(10)
    assert killed.state == "KILLED"
    assert engine.get_execution(child_id).state == "RUNNING"
    engine.kill(child_id, wait=True, timeout=10)


def test_restart_runs_a_new_child(engine):
    engine.deploy(FAILING)
    ex = engine.run(parent("    namespace: company.team\n    flowId: failing\n"))
    assert ex.state == "FAILED"
    first = ex.task_run_list[0].outputs["executionId"]
    engine.deploy(FAILING.replace("io.kestra.plugin.core.execution.Fail", "io.kestra.plugin.core.debug.Return"))
    again = engine.restart(ex.id, timeout=10)
    assert again.state == "SUCCESS"
    assert again.task_run_list[0].outputs["executionId"] != first
    assert engine.store.search_executions(flow_id="failing")[1] == 2


def test_the_task_ends_as_the_child_did_when_transmitting(engine):
    engine.deploy(FAILING.replace("id: failing", "id: warns").replace(
        "execution.Fail\n", "execution.Fail\n    allowFailure: true\n"))
    ex = engine.run(parent("    namespace: company.team\n    flowId: warns\n"))
    sub = ex.task_run_list[0]
    assert sub.outputs["state"] == "WARNING"
    assert sub.state.current.value == "WARNING" and ex.state == "WARNING"
    assert any("ended WARNING" in m for m in logs(engine, ex, Level.WARN))
    ok = engine.run(parent("    namespace: company.team\n    flowId: warns\n    allowWarning: true\n"))
    assert ok.state == "SUCCESS"
    quiet = engine.run(parent("    namespace: company.team\n    flowId: warns\n    transmitFailed: false\n"))
    assert quiet.state == "SUCCESS"


def test_a_child_killed_on_its_own_kills_the_waiting_task(engine):
    engine.deploy(SLEEPY)
    flow, revision = engine.deploy(parent("    namespace: company.team\n    flowId: sleepy\n"))
    seen = threading.Event()
    box: dict[str, str] = {}

    def listener(event):
        doc = getattr(event, "document", None)
        if doc and doc.get("flowId") == "sleepy" and any(
                t["state"]["current"] == "RUNNING" for t in doc.get("taskRunList", ())):
            box["child"] = doc["id"]
            seen.set()

    engine.subscribe(None, listener)

    async def start():
        ex = engine.new_execution(flow, revision)
        await engine.start(flow, ex)
        return ex.id

    parent_id = asyncio.run_coroutine_threadsafe(start(), engine.loop).result(5)
    assert seen.wait(10)
    engine.kill(box["child"])
    ex = asyncio.run_coroutine_threadsafe(engine.executions.wait(parent_id), engine.loop).result(10)
    assert ex.task_run_list[0].state.current.value == "KILLED"
    assert ex.task_run_list[0].outputs["state"] == "KILLED"
    assert ex.state == "KILLED"


def test_trigger_variables_name_the_task_run(engine):
    engine.deploy(CHILD)
    ex = engine.run(parent("    namespace: company.team\n    flowId: child\n"))
    variables = child_of(engine, ex).trigger.variables
    assert variables["taskRunId"] == ex.task_run_list[0].id and variables["taskId"] == "sub"


def test_inherited_labels_yield_to_the_child_flows_own(engine):
    engine.deploy(CHILD.replace("inputs:", "labels:\n  env: child\ninputs:", 1))
    ex = engine.run(parent("    namespace: company.team\n    flowId: child\n    inheritLabels: true\n",
                           extra="labels:\n  env: prod\n  owner: me\n"))
    labels = [(lb.key, lb.value) for lb in child_of(engine, ex).labels]
    assert labels == [("env", "child"), ("owner", "me"), ("system.correlationId", ex.id)]
