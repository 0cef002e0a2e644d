"""ForEachItem as Kestra's ForEachItemCaseTest asserts it: the parent task run plus `<id>_split`, `<id>_items`
and `<id>_merge`; `<id>_items` counts the children by state; `<id>_merge` gathers their outputs
(`outputs.<id>_merge.subflowOutputs`); the project's budget on the number of batches holds."""
from __future__ import annotations

import re
from typing import Any

import pytest

from kestra_nb.model.execution import CORRELATION_ID, Level
from kestra_nb.parsing import check_flow

NS = "io.kestra.tests"

SUBFLOW = """id: for-each-item-subflow
namespace: io.kestra.tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: per-item
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.items }}"
"""

SUBFLOW_FAILED = """id: for-each-item-subflow-failed
namespace: io.kestra.tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"""

SUBFLOW_OUTPUTS = """id: for-each-item-outputs-subflow
namespace: io.kestra.tests
inputs:
  - id: items
    type: STRING
tasks:
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) }}"
outputs:
  - id: value
    value: "{{ outputs.return.value }}"
    type: STRING
"""


def parent(flow_id: str, child: str, *, wait: bool = True, batch: str = "4", extra: str = "") -> str:
    return f"""id: {flow_id}
namespace: io.kestra.tests
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ inputs.file }}}}"
    batch:
      rows: {batch}
    namespace: io.kestra.tests
    flowId: {child}
    wait: {str(wait).lower()}
    transmitFailed: true
    inputs:
      items: "{{{{ taskrun.items }}}}"
{extra}"""


def upload(engine: Any, rows: int = 102) -> str:
    """ForEachItemCaseTest.storageUpload: 102 lines, each a number left-padded to 20 characters."""
    content = "\n".join(str(i).rjust(20) for i in range(rows)) + ("\n" if rows else "")
    return engine.store.storage.put("kestra:///file/storage/file.txt", content.encode())


def children(engine: Any, flow_id: str) -> list[Any]:
    found, total = engine.store.search_executions(flow_id=flow_id, size=100)
    assert total == len(found)
    return found


def parts(ex: Any) -> list[str]:
    return [tr.task_id for tr in ex.task_run_list]


def test_for_each_item(engine: Any) -> None:
    # ForEachItemCaseTest.forEachItem: 26 subflows, 4 task runs, `each_items` SUCCESS with its counters
    engine.deploy(SUBFLOW)
    ex = engine.run(parent("for-each-item", "for-each-item-subflow"), inputs={"file": upload(engine)}, timeout=60)
    assert ex.state == "SUCCESS"
    assert parts(ex) == ["each", "each_split", "each_items", "each_merge"]
    items = ex.task_run_list[2]
    assert [a.state.current.value for a in items.attempts] == ["SUCCESS"]
    assert items.outputs["numberOfBatches"] == 26
    assert items.outputs["iterations"] == {"CREATED": 0, "RUNNING": 0, "SUCCESS": 26}
    assert ex.task_run_list[3].outputs is None   # the subflow has no outputs: nothing to merge
    runs = children(engine, "for-each-item-subflow")
    assert len(runs) == 26 and {c.state.current.value for c in runs} == {"SUCCESS"}
    last = max(runs, key=lambda c: c.trigger.variables["taskRunIteration"])
    # (Kestra's Slugify makes the task id `each-split` in the path; this project's storage keeps the `_`)
    assert re.fullmatch(r"kestra:///io/kestra/tests/for-each-item/executions/.*/tasks/each[-_]split/.*\.txt",
                        last.inputs["items"])
    assert len(last.task_run_list) == 1
    assert [lb.value for lb in last.labels if lb.key == CORRELATION_ID] == [ex.id]
    assert last.trigger.id == "each_items"
    assert last.trigger.variables["taskRunId"] == items.id


def test_for_each_item_empty_items(engine: Any) -> None:
    # ForEachItemCaseTest.forEachItemEmptyItems: 4 task runs, SUCCESS, no outputs on `each_items`
    engine.deploy(SUBFLOW)
    ex = engine.run(parent("for-each-item", "for-each-item-subflow"), inputs={"file": upload(engine, 0)}, timeout=60)
    assert ex.state == "SUCCESS"
    assert parts(ex) == ["each", "each_split", "each_items", "each_merge"]
    assert ex.task_run_list[2].outputs is None
    assert children(engine, "for-each-item-subflow") == []


def test_for_each_item_failed(engine: Any) -> None:
    # ForEachItemCaseTest.forEachItemFailed: 3 task runs (no merge), `each_items` FAILED, 26 FAILED children
    engine.deploy(SUBFLOW_FAILED)
    ex = engine.run(parent("for-each-item-failed", "for-each-item-subflow-failed"), inputs={"file": upload(engine)},
                    timeout=60)
    assert ex.state == "FAILED"
    assert parts(ex) == ["each", "each_split", "each_items"]
    items = ex.task_run_list[2]
    assert [a.state.current.value for a in items.attempts] == ["FAILED"]
    assert items.outputs["numberOfBatches"] == 26
    assert items.outputs["iterations"] == {"CREATED": 0, "RUNNING": 0, "FAILED": 26}
    assert len(children(engine, "for-each-item-subflow-failed")) == 26


def test_for_each_item_with_subflow_outputs(engine: Any) -> None:
    # ForEachItemCaseTest.forEachItemWithSubflowOutputs: 5 task runs; `each_merge.subflowOutputs` has one
    # line per subflow, and the next task reads it as `outputs.each_merge.subflowOutputs`
    engine.deploy(SUBFLOW_OUTPUTS)
    after = ("  - id: return\n    type: io.kestra.plugin.core.debug.Return\n"
             "    format: \"{{ outputs.each_merge.subflowOutputs }}\"\n")
    ex = engine.run(parent("for-each-item-outputs", "for-each-item-outputs-subflow", extra=after),
                    inputs={"file": upload(engine)}, timeout=60)
    assert ex.state == "SUCCESS"
    assert parts(ex) == ["each", "each_split", "each_items", "each_merge", "return"]
    assert ex.task_run_list[2].outputs["iterations"] == {"CREATED": 0, "RUNNING": 0, "SUCCESS": 26}
    merged = ex.task_run_list[3].outputs["subflowOutputs"]
    assert ex.task_run_list[4].outputs == {"value": merged}
    lines = engine.store.storage.read_bytes(merged).decode().splitlines()
    assert len(lines) == 26
    assert lines[0].startswith("{value:") and "0" in lines[0] and "3" in lines[0]   # iteration order


def test_for_each_item_no_wait(engine: Any) -> None:
    # ForEachItemCaseTest.forEachItemNoWait: 4 task runs, SUCCESS at once, 26 batches
    engine.deploy(SUBFLOW)
    ex = engine.run(parent("for-each-item-no-wait", "for-each-item-subflow", wait=False),
                    inputs={"file": upload(engine)}, timeout=60)
    assert ex.state == "SUCCESS"
    assert parts(ex) == ["each", "each_split", "each_items", "each_merge"]
    assert ex.task_run_list[2].outputs["numberOfBatches"] == 26
    # (ExecutorService.handleExecutableTask: without `wait` each child counts as ended at once)
    assert ex.task_run_list[2].outputs["iterations"] == {"RUNNING": 0, "SUCCESS": 26}
    assert ex.task_run_list[3].outputs is None


def test_for_each_item_in_a_foreach_finds_its_parts_by_loop_value(engine: Any) -> None:
    engine.deploy(SUBFLOW_OUTPUTS)
    first = engine.store.storage.put("kestra:///file/storage/a.txt", b"a1\na2\na3\n")
    second = engine.store.storage.put("kestra:///file/storage/b.txt", b"b1\n")
    yaml = f"""id: nested
namespace: io.kestra.tests
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: ["{first}", "{second}"]
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEachItem
        items: "{{{{ parent.taskrun.value }}}}"   # (as Kestra's own example: the parts have no value)
        batch:
          rows: 2
        namespace: io.kestra.tests
        flowId: for-each-item-outputs-subflow
        inputs:
          items: "{{{{ taskrun.items }}}}"
"""
    ex = engine.run(yaml, timeout=60)
    assert ex.state == "SUCCESS"
    batches = sorted(tr.outputs["numberOfBatches"] for tr in ex.task_run_list if tr.task_id == "each_items")
    assert batches == [1, 2]
    merged = {tr.id: tr.outputs["subflowOutputs"] for tr in ex.task_run_list if tr.task_id == "each_merge"}
    assert sorted(len(engine.store.storage.read_bytes(u).decode().splitlines()) for u in merged.values()) == [1, 2]


def test_too_many_batches_fail_the_split(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kestra_nb.tasks import subflow

    monkeypatch.setattr(subflow, "MAX_BATCHES", 5)
    engine.deploy(SUBFLOW)
    ex = engine.run(parent("for-each-item", "for-each-item-subflow"), inputs={"file": upload(engine)}, timeout=60)
    assert ex.state == "FAILED"
    assert parts(ex) == ["each", "each_split"]
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any("more than 5 batches" in m for m in errors), errors
    assert children(engine, "for-each-item-subflow") == []


def test_items_that_are_not_in_the_internal_storage_fail_the_split(engine: Any) -> None:
    # ForEachItemSplit: "Unable to split the items from …, this is not an internal storage URI!"
    engine.deploy(SUBFLOW)
    yaml = parent("for-each-item", "for-each-item-subflow").replace('"{{ inputs.file }}"', "/etc/passwd")
    ex = engine.run(yaml.replace("inputs:\n  - id: file\n    type: FILE\n", ""), timeout=60)
    assert ex.state == "FAILED"
    errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert "Unable to split the items from /etc/passwd, this is not an internal storage URI!" in errors


@pytest.mark.parametrize("task, message", [
    ("  - id: part\n    type: io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit\n    items: x\n",
     "is a part of another task and cannot be used on its own"),
    ("  - id: each_split\n    type: io.kestra.plugin.core.log.Log\n    message: x\n", "each_split"),
])
def test_the_parts_are_not_for_flows_to_name(task: str, message: str) -> None:
    source = parent("for-each-item", "for-each-item-subflow") + task
    result = check_flow(source)
    assert result.flow is None
    assert any(message in v.message for v in result.violations), result.violations


def test_a_recovered_items_part_waits_for_the_children_it_had_started(tmp_path: Any) -> None:
    import asyncio
    import threading

    from kestra_nb.engine import Engine
    from kestra_nb.engine.events import ExecutionUpdated
    from kestra_nb.model.state import StateType

    engine = Engine(tmp_path / "s")
    engine.deploy(SUBFLOW.replace("tasks:\n", "tasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n"
                                              "    duration: PT0.3S\n"))
    flow, revision = engine.deploy(parent("for-each-item", "for-each-item-subflow", batch="50"))
    running = threading.Event()
    engine.subscribe(None, lambda e: isinstance(e, ExecutionUpdated) and e.state is StateType.RUNNING
                     and e.document.get("flowId") == "for-each-item-subflow" and running.set())
    uri = upload(engine)

    async def start() -> str:
        ex = engine.new_execution(flow, revision, {"file": uri})
        await engine.start(flow, ex)
        return ex.id

    parent_id = asyncio.run_coroutine_threadsafe(start(), engine.loop).result(5)
    assert running.wait(10)
    engine.close()   # the process "dies" while `each_items` waits for its children
    recovered = Engine(tmp_path / "s")
    try:
        assert parent_id in recovered.recovered
        ex = asyncio.run_coroutine_threadsafe(recovered.executions.wait(parent_id), recovered.loop).result(30)
        assert ex.state == "SUCCESS"
        assert parts(ex) == ["each", "each_split", "each_items", "each_merge"]
        assert ex.task_run_list[2].outputs["iterations"] == {"CREATED": 0, "RUNNING": 0, "SUCCESS": 3}
        assert len(children(recovered, "for-each-item-subflow")) == 3   # none started twice
    finally:
        recovered.close()
