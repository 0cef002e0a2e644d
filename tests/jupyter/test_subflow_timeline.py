"""The notebook timeline of a flow with subflows: child executions followed live and nested under their task run."""
from __future__ import annotations

import asyncio
import json

from kestra_nb.jupyter.display import MIME, bundle, view_state
from kestra_nb.jupyter.live import family
from kestra_nb.jupyter.widgets import static
from kestra_nb.jupyter.widgets.viewmodel import ViewModel
from tests.engine.test_subflows import CHILD, COUNTER, FOREACH, parent


def follow(engine, source, inputs=None):
    """Run `source` with the magic's subscription (`family`) feeding a view model; return it and the execution."""
    flow, revision = engine.deploy(source)
    model = ViewModel()
    events = []

    async def run():
        ex = engine.new_execution(flow, revision, inputs)
        model.update(ex.to_dict())
        unsubscribe = engine.subscribe(None, family(ex.id, events.append))
        try:
            await engine.start(flow, ex)
            return await engine.wait_async(ex.id)
        finally:
            unsubscribe()

    ex = asyncio.run_coroutine_threadsafe(run(), engine.loop).result(20)
    for event in events:
        if hasattr(event, "document"):
            model.update(event.document)
    return model, ex, events


def test_subflow_row_expands_into_the_child_task_runs(engine):
    engine.deploy(CHILD)
    engine.run("id: other\nnamespace: company.team\ntasks:\n  - id: x\n    type: io.kestra.plugin.core.debug.Return\n"
               "    format: unrelated\n")
    model, ex, events = follow(engine, parent("    namespace: company.team\n    flowId: child\n"
                                              "  - id: last\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"))
    child_id = ex.task_run_list[0].outputs["executionId"]
    assert {e.execution_id for e in events} == {ex.id, child_id}  # unrelated executions are not followed
    rows = model.rows()
    assert [(r["task"], r["depth"]) for r in rows] == [
        ("sub", 0), ("company.team.child", 1), ("hello", 2), ("last", 0)]
    sub, child_row, hello, last = rows
    assert sub["subflow"] is True and sub["under"] == []
    assert child_row["kind"] == "execution" and child_row["execution"] == child_id and child_row["state"] == "SUCCESS"
    assert hello["execution"] == child_id and hello["under"] == [sub["id"]] and hello["state"] == "SUCCESS"
    assert "execution" not in last
    assert [t["task"] for t in model.task_outputs()] == ["sub", "last"]  # the parent's own outputs only
    assert not model.running()
    state = view_state(model)
    html = static.twin_html(state)
    assert "· <code>company.team.child</code>" in html and "· · <code>hello</code>" in html
    shown = json.loads(bundle(state)[MIME]["view"])["runs"]   # what the renderer folds by
    assert shown[1]["execution"] == child_id and shown[2]["under"] == [sub["id"]] and shown[0]["subflow"] is True


def test_for_each_item_rows_one_child_per_batch_in_order(engine):
    engine.deploy(COUNTER)
    uri = engine.store.storage.put("kestra:///company/team/batches/in.txt",
                                   "".join(f"l{i}\n" for i in range(7)).encode())
    model, ex, _ = follow(engine, FOREACH, {"file": uri})
    assert ex.state == "SUCCESS"
    rows = model.rows()
    executions = [r for r in rows if r.get("kind") == "execution"]
    assert [r["value"] for r in executions] == ["1", "2", "3"]
    assert [r["task"] for r in rows].count("count") == 3


def test_a_child_document_never_replaces_the_shown_execution():
    model = ViewModel()
    base = {"state": {"current": "RUNNING", "histories": [{"state": "CREATED", "date": "2024-01-01T00:00:00Z"}]},
            "namespace": "n", "flowId": "f"}
    model.update({**base, "id": "root"})
    model.update({**base, "id": "stranger"})
    assert model.doc["id"] == "root" and model.children == {}
    model.update({**base, "id": "kid", "trigger": {"id": "t", "type": "x", "variables": {"executionId": "root"}}})
    model.update({**base, "id": "grandkid", "trigger": {"id": "t", "type": "x", "variables": {"executionId": "kid"}}})
    assert set(model.children) == {"kid", "grandkid"}


def test_flow_magic_follows_the_child_execution(shell):
    from tests.jupyter.conftest import run_cell

    assert run_cell(shell, "%%flow --no-run\n" + CHILD).success
    cell = run_cell(shell, "%%flow --out ex\n" + parent("    namespace: company.team\n    flowId: child\n"))
    assert cell.success, cell.stderr
    model = shell.kestra_magics.live.model
    ex = shell.user_ns["ex"]
    child_id = ex.task_run_list[0].outputs["executionId"]
    assert set(model.children) == {child_id}
    assert [(r["task"], r["depth"]) for r in model.rows()] == [("sub", 0), ("company.team.child", 1), ("hello", 2)]
