"""The execution view: view-model rows (Gantt semantics), widget model state, static HTML, Execution reprs."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import ipywidgets
import pytest

from kestra_nb.jupyter.widgets import static
from kestra_nb.jupyter.widgets.view import ExecutionView
from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS, ViewModel
from tests.jupyter.conftest import SEED

WIDGET = "application/vnd.jupyter.widget-view+json"

NESTED = """id: nested
namespace: company.team
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: ["1", "2"]
        tasks:
          - id: leaf
            type: io.kestra.plugin.core.log.Log
            message: "{{ parents[0].taskrun.value }}-{{ taskrun.value }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: done
"""

RETRIED = """id: retried
namespace: company.team
tasks:
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: always
    retry:
      type: constant
      interval: PT0.001S
      maxAttempt: 3
"""


def model_of(engine: Any, source: str, **kwargs: Any) -> tuple[ViewModel, Any]:
    """Run a flow and build the view model of its execution (document and logs from the store)."""
    ex = engine.run(source, **kwargs)
    model = ViewModel()
    model.update(engine.store.get_execution_document(ex.id))
    model.add_logs(engine.store.list_logs(ex.id))
    return model, ex


def test_rows_nest_children_under_parents_ordered_by_start(jengine: Any) -> None:
    model, ex = model_of(jengine, NESTED)
    rows = model.rows()
    labels = [(r["depth"], r["task"], r["value"]) for r in rows]
    assert labels == [
        (0, "outer", None),
        (1, "inner", "a"), (2, "leaf", "1"), (2, "leaf", "2"),
        (1, "inner", "b"), (2, "leaf", "1"), (2, "leaf", "2"),
        (0, "after", None),
    ]
    assert len(rows) == len(ex.task_run_list)  # one row per task run
    for row in rows:
        assert row["state"] == "SUCCESS" and row["end"] is not None
        assert row["created"] <= row["running"] <= row["end"]
    starts = [r["created"] for r in rows if r["depth"] == 0]
    assert starts == sorted(starts)


def test_attempts_marker(jengine: Any) -> None:
    model, _ = model_of(jengine, RETRIED)
    (row,) = model.rows()
    assert row["attempts"] == 3 and row["state"] == "FAILED"
    html = static.timeline_html(model.summary(), model.rows(), model.now())
    assert 'class="kn-attempts" title="3 attempts">&#x21bb;3<' in html
    single, _ = model_of(jengine, SEED)
    assert "kn-attempts" not in static.timeline_html(single.summary(), single.rows(), single.now())


def test_queued_part_is_lighter_and_precedes_the_running_part() -> None:
    doc = {"id": "e", "namespace": "n", "flowId": "f", "flowRevision": 1,
           "state": {"current": "RUNNING", "histories": [{"state": "CREATED", "date": "2026-01-01T00:00:00Z"},
                                                         {"state": "RUNNING", "date": "2026-01-01T00:00:00.1Z"}]},
           "taskRunList": [{"id": "t", "taskId": "work", "state": {"current": "RUNNING", "histories": [
               {"state": "CREATED", "date": "2026-01-01T00:00:00.200Z"},
               {"state": "RUNNING", "date": "2026-01-01T00:00:00.600Z"}]}}]}
    model = ViewModel()
    model.update(doc)
    (row,) = model.rows()
    assert (row["created"], row["running"], row["end"]) == (200.0, 600.0, None)
    html = static.timeline_html(model.summary(), model.rows(), now=1000.0)
    queued = re.search(r'class="kn-queued" data-state="RUNNING" style="left:([\d.]+)%;width:([\d.]+)%', html)
    bar = re.search(r'class="kn-bar" data-state="RUNNING" data-task="work" style="left:([\d.]+)%;width:([\d.]+)%;'
                    r'background:(#\w+)', html)
    assert queued and bar
    assert [float(x) for x in queued.groups()] == [20.0, 40.0]
    assert [float(x) for x in bar.groups()[:2]] == [60.0, 40.0]  # grows up to `now` while running
    assert bar.group(3) == STATE_COLORS["RUNNING"]
    assert ".kn-queued{opacity:.35}" in static.CSS
    later = static.timeline_html(model.summary(), model.rows(), now=2000.0)
    assert 'left:30.000%;width:70.000%' in later  # the running part grew with the clock


def test_kestra_state_colours() -> None:
    # kestra-io/kestra ui/src/utils/state.ts
    assert STATE_COLORS["SUCCESS"] == "#029E73" and STATE_COLORS["FAILED"] == "#AB0009"
    assert STATE_COLORS["RUNNING"] == "#8405FF" and STATE_COLORS["CREATED"] == "#1761FD"
    assert STATE_COLORS["WARNING"] == "#DD5F00" and STATE_COLORS["KILLED"] == "#FCE07C"
    assert STATE_COLORS["PAUSED"] == "#918BA9"
    from kestra_nb.model.state import StateType

    assert set(STATE_COLORS) == {s.value for s in StateType}


def test_widget_model_state(jengine: Any) -> None:
    model, ex = model_of(jengine, SEED)
    view = ExecutionView(model)
    state = view.get_state()
    assert state["summary"]["state"] == "SUCCESS" and state["summary"]["id"] == ex.id
    assert state["summary"]["namespace"] == "company.team" and state["summary"]["flowId"] == "myflow"
    assert state["runs"] == [{**model.rows()[0]}] and state["runs"][0]["task"] == "mytask"
    assert state["outputs"] == {"mydata": "hello from kestra"}
    assert state["task_outputs"] == [{"task": "mytask", "value": None, "outputs": {"value": "hello from kestra"}}]
    assert state["colors"] == STATE_COLORS
    assert state["document"]["id"] == ex.id and state["document"]["state"]["current"] == "SUCCESS"
    assert [log["message"] for log in state["logs"]] == [e.message for e in jengine.store.list_logs(ex.id)]
    assert "export default" in state["_esm"] and "kn-bar" in state["_esm"]
    # ONE widget model for the whole view, whatever the number of task runs
    saved = ipywidgets.Widget.get_manager_state(widgets=[view])["state"]
    assert [m["model_name"] for m in saved.values()] == ["AnyModel"]
    json.dumps(saved)  # what nbclient stores must be JSON


def test_push_sends_only_what_changed(jengine: Any) -> None:
    model, _ = model_of(jengine, NESTED)
    view = ExecutionView(model)
    sent: list[dict[str, Any]] = []
    view.send_state = lambda key=None: sent.append({"keys": key})  # type: ignore[method-assign]
    view.push(model, document=False)
    assert view.updates == 1
    # hold_sync batches the changed traits in one message; only `now` moved
    assert len(sent) == 1 and set(sent[0]["keys"]) <= {"now"}


def test_widget_bundle_carries_the_static_html(jengine: Any) -> None:
    model, ex = model_of(jengine, SEED)
    data, _ = ExecutionView(model)._repr_mimebundle_()
    assert set(data) == {"text/plain", WIDGET, "text/html"}
    assert data["text/plain"] == f"Execution {ex.id} of company.team.myflow: SUCCESS"
    html = data["text/html"]
    assert "<style>" in html and 'class="kn-bar" data-state="SUCCESS"' in html
    assert f"background:{STATE_COLORS['SUCCESS']}" in html and "hello from kestra" in html
    assert "Execution JSON" in html and "Logs (1)" in html


def test_static_html_sections(jengine: Any) -> None:
    model, _ = model_of(jengine, NESTED)
    html = static.render_state(model.state())
    assert html.count('class="kn-row"') == 8
    assert html.count('<tr data-level="INFO">') == 4  # the leaf logs
    assert "a-1" in html and "b-2" in html
    assert '<span class="kn-key">task outputs</span>' in html
    failed, _ = model_of(jengine, RETRIED)
    html = static.render_state(failed.state())
    assert 'data-state="FAILED"' in html and STATE_COLORS["FAILED"] in html
    assert '<tr data-level="ERROR">' in html and "always" in html


def test_json_tree_escapes_and_collapses() -> None:
    html = static.json_tree({"a": {"b": [1, True, None, "<x>"]}}, "outputs")
    assert html.startswith("<details open><summary><span class=\"kn-key\">outputs</span>")
    assert "&lt;x&gt;" in html and "<x>" not in html
    assert '<span class="kn-num">1</span>' in html and '<span class="kn-lit">true</span>' in html


def test_execution_reprs(jengine: Any) -> None:
    ex = jengine.run(SEED)
    html = ex._repr_html_()
    assert 'class="kn-view kn-static"' in html and "hello from kestra" in html and ex.id in html
    bundle = ex._repr_mimebundle_()
    assert bundle["text/plain"] == repr(ex) and bundle["text/html"] == html


def test_the_model_imports_no_jupyter_code() -> None:
    code = ("import sys, kestra_nb, kestra_nb.model.execution, kestra_nb.engine;"
            "bad = [m for m in ('IPython', 'ipywidgets', 'anywidget', 'jupyter_server', 'kestra_nb.jupyter') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("ms, text", [(None, ""), (0.25, "0.2 ms"), (12.4, "12 ms"), (1234, "1.23 s"),
                                      (125_000, "2m 05s")])
def test_format_ms(ms: float | None, text: str) -> None:
    from kestra_nb.jupyter.widgets.viewmodel import format_ms

    assert format_ms(ms) == text


def test_a_paused_execution_says_how_to_resume_it(jengine: Any) -> None:
    from tests.engine.test_commands import PAUSED, _start

    execution_id = _start(jengine, PAUSED)
    model = ViewModel()
    model.update(jengine.store.get_execution_document(execution_id))
    hint = model.summary()["hint"]
    assert f"%flow resume {execution_id}" in hint and f"kestra-nb resume {execution_id}" in hint
    html = static.header_html(model.summary(), model.now())
    assert 'class="kn-hint"' in html and f"%flow resume {execution_id}" in html
    jengine.resume(execution_id, inputs={"reason": "seen"})
    model.update(jengine._call(jengine.wait_async(execution_id)).result(10).to_dict())
    assert model.summary()["hint"] == ""
    assert "kn-hint" not in static.header_html(model.summary(), model.now())
