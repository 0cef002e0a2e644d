"""The view model kept up to date document after document (issue 13: a push costs what changed, not the size of
the execution) draws exactly what a model built once from the final documents draws."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from kestra_nb.jupyter.live import family
from kestra_nb.jupyter.widgets.viewmodel import ViewModel
from kestra_nb.model.execution import Execution
from kestra_nb.model.jsonfmt import ExecutionJson
from tests.engine.test_subflows import CHILD, COUNTER, FOREACH, parent
from tests.jupyter.test_widgets import NESTED, RETRIED

PARALLEL = """id: wide
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2, 3, 4, 5, 6]
    concurrencyLimit: 3
    tasks:
      - id: pair
        type: io.kestra.plugin.core.flow.Parallel
        tasks:
          - id: a
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
          - id: b
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.001S
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: done
"""
SUBFLOW = parent("    namespace: company.team\n    flowId: child\n"
                 "  - id: last\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n")


def every_document(engine: Any, source: str, inputs: Any = None) -> tuple[list[dict[str, Any]], Any]:
    """Every document the engine publishes for an execution and the executions it starts, in order."""
    flow, revision = engine.deploy(source)
    documents: list[dict[str, Any]] = []

    async def run() -> Any:
        ex = engine.new_execution(flow, revision, inputs)
        documents.append(ex.to_dict())
        unsubscribe = engine.subscribe(None, family(ex.id, lambda event: documents.append(event.document)
                                                    if hasattr(event, "document") else None))
        try:
            await engine.start(flow, ex)
            return await engine.wait_async(ex.id)
        finally:
            unsubscribe()

    return documents, asyncio.run_coroutine_threadsafe(run(), engine.loop).result(30)


def drawn(model: ViewModel) -> dict[str, Any]:
    state = model.state(epoch_ms=4_000_000_000_000.0)
    state.pop("document")
    return {**state, "task_states": model.task_states(), "running": model.running(), "limited": model.rows(3),
            "limited_total": model.row_total}


def built_once(engine: Any, ex: Any) -> ViewModel:
    """The model of the final documents, given once each (the execution, then the executions it started)."""
    model = ViewModel()
    model.update(engine.store.get_execution_document(ex.id))
    pending = [ex.id]
    while pending:
        children, _ = engine.store.search_execution_documents(size=100)
        for child in children:
            variables = (child.get("trigger") or {}).get("variables") or {}
            if variables.get("executionId") == pending[0]:
                model.update(child)
                pending.append(child["id"])
        pending.pop(0)
    return model


@pytest.mark.parametrize("name", ["nested", "retried", "parallel", "subflow", "foreach_item"])
def test_each_document_applied_in_turn_draws_what_the_final_documents_draw(engine: Any, name: str) -> None:
    engine.deploy(CHILD)
    engine.deploy(COUNTER)
    inputs = None
    if name == "foreach_item":
        inputs = {"file": engine.store.storage.put("kestra:///company/team/batches/in.txt",
                                                   "".join(f"l{i}\n" for i in range(7)).encode())}
    source = {"nested": NESTED, "retried": RETRIED, "parallel": PARALLEL, "subflow": SUBFLOW,
              "foreach_item": FOREACH}[name]
    documents, ex = every_document(engine, source, inputs)
    assert len(documents) >= 3
    live, copied = ViewModel(), ViewModel()
    for document in documents:
        live.update(document)
        copied.update(json.loads(json.dumps(document)))   # documents from HTTP share nothing
    expected = drawn(built_once(engine, ex))
    assert expected["runs_total"] >= len(ex.task_run_list)
    assert drawn(live) == expected
    assert drawn(copied) == expected


def test_a_task_run_listed_before_its_parent_moves_under_it_when_the_parent_comes() -> None:
    def run(task_run_id: str, task: str, parent: str | None, date: str) -> dict[str, Any]:
        return {"id": task_run_id, "taskId": task, "parentTaskRunId": parent,
                "state": {"current": "SUCCESS", "histories": [{"state": "SUCCESS", "date": date}]}}

    head = {"id": "e1", "namespace": "n", "flowId": "f",
            "state": {"current": "RUNNING", "histories": [{"state": "CREATED", "date": "2026-01-01T00:00:00Z"}]}}
    kid = run("k", "kid", "p", "2026-01-01T00:00:02Z")
    model = ViewModel()
    model.update({**head, "taskRunList": [kid]})
    assert [(r["task"], r["depth"]) for r in model.rows()] == [("kid", 0)]   # no parent yet: at the top
    model.update({**head, "taskRunList": [kid, run("p", "parent", None, "2026-01-01T00:00:01Z")]})
    assert [(r["task"], r["depth"]) for r in model.rows()] == [("parent", 0), ("kid", 1)]
    assert model.row_total == 2


def test_the_engine_documents_share_the_dicts_of_task_runs_that_did_not_change(engine: Any) -> None:
    """What lets a view skip them: consecutive documents of one writer hold the same dict for an ended task run
    and a new one for a task run that changed."""
    ex = engine.run(NESTED)
    runs = ex.task_run_list
    writer = ExecutionJson()
    growing = Execution.from_dict({**ex.to_dict(), "taskRunList": []})
    growing.task_run_list = runs[:2]
    first = writer.update(growing).detach()()
    growing.task_run_list.extend(runs[2:4])
    second = writer.update(growing).detach()()
    assert [a is b for a, b in zip(first["taskRunList"], second["taskRunList"])] == [True, True]
    assert [tr["id"] for tr in second["taskRunList"]] == [tr.id for tr in runs[:4]]
