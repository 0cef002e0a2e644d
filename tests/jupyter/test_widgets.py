"""The execution view: view-model rows (Gantt semantics), widget model state, static HTML, Execution reprs."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from kestra_nb.jupyter.display import MIME, ExecutionDisplay, bundle, execution_bundle, view_state
from kestra_nb.jupyter.widgets import static
from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS, ViewModel
from tests.jupyter.conftest import SEED

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
    assert view_state(model)["runs"][0]["attempts"] == 3          # the renderer draws ↻3 from it
    assert "<code>flaky</code> (3 attempts)" in static.twin_html(view_state(model))
    single, _ = model_of(jengine, SEED)
    assert "attempts)" not in static.twin_html(view_state(single))


def test_the_twin_draws_queued_then_running_and_grows_with_the_clock() -> None:
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
    assert static.bar(row, 1000.0, 1000.0) == "·" * 6 + "░" * 12 + "█" * 12
    assert static.bar(row, 2000.0, 2000.0) == "·" * 3 + "░" * 6 + "█" * 21   # the running part grew
    ended = dict(row, end=700.0, state="SUCCESS")
    assert static.bar(ended, 1000.0, 1000.0) == "·" * 6 + "░" * 12 + "█" * 3 + "·" * 9
    instant = dict(row, created=0.0, running=0.0, end=0.0)
    assert static.bar(instant, 1000.0, 1000.0) == "█" + "·" * 29           # a task run is never invisible
    html = static.twin_html(view_state(model, epoch_ms=model.origin + 1000))
    assert f'color:{STATE_COLORS["RUNNING"]}">{"·" * 6}{"░" * 12}{"█" * 12}</code>' in html


def test_kestra_state_colours() -> None:
    # kestra-io/kestra ui/src/utils/state.ts
    assert STATE_COLORS["SUCCESS"] == "#029E73" and STATE_COLORS["FAILED"] == "#AB0009"
    assert STATE_COLORS["RUNNING"] == "#8405FF" and STATE_COLORS["CREATED"] == "#1761FD"
    assert STATE_COLORS["WARNING"] == "#DD5F00" and STATE_COLORS["KILLED"] == "#FCE07C"
    assert STATE_COLORS["PAUSED"] == "#918BA9"
    from kestra_nb.model.state import StateType

    assert set(STATE_COLORS) == {s.value for s in StateType}


def test_the_display_state_is_the_view_bounded_without_the_document(jengine: Any) -> None:
    model, ex = model_of(jengine, SEED)
    view = ExecutionDisplay(model)
    state = view.state
    assert state["v"] == 1 and "document" not in state
    assert state["summary"]["state"] == "SUCCESS" and state["summary"]["id"] == ex.id
    assert state["summary"]["namespace"] == "company.team" and state["summary"]["flowId"] == "myflow"
    assert state["runs"] == model.rows() and state["runs"][0]["task"] == "mytask"
    assert state["outputs"] == {"mydata": "hello from kestra"}
    assert state["task_outputs"] == [{"task": "mytask", "value": None, "outputs": {"value": "hello from kestra"}}]
    assert state["colors"] == STATE_COLORS and state["error"] == ""
    assert state["hidden"] == {"runs": 0, "logs": 0, "task_outputs": 0}
    assert [log["message"] for log in state["logs"]] == [e.message for e in jengine.store.list_logs(ex.id)]
    data = view._repr_mimebundle_()
    assert set(data) == {MIME, "text/html", "text/plain"}
    assert data["text/plain"] == f"Execution {ex.id} of company.team.myflow: SUCCESS"
    json.dumps(data)   # what the notebook saves is JSON


class Handle:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update(self, data: dict[str, Any], raw: bool = False) -> None:
        assert raw
        self.updates.append(data)


def test_push_replaces_the_display_with_the_current_state(jengine: Any) -> None:
    model, _ = model_of(jengine, NESTED)
    view = ExecutionDisplay(model)
    view.handle = Handle()
    view.push(model)
    view.error = "it broke"
    view.refresh()
    assert view.updates == 2 and len(view.handle.updates) == 2
    last = view.handle.updates[-1]
    assert json.loads(last[MIME]["view"])["error"] == "it broke" and "it broke" in last["text/html"]
    assert last["text/plain"].endswith("\nit broke")


def test_a_failed_execution_shows_its_error_first(jengine: Any) -> None:
    failed, _ = model_of(jengine, RETRIED)
    state = view_state(failed)
    assert state["error"] == "flaky: always"
    html = static.twin_html(state)
    assert html.index("always") < html.index("<code>flaky</code>")   # before the timeline
    assert f"background:{STATE_COLORS['FAILED']}" in html


def test_twin_sections(jengine: Any) -> None:
    model, _ = model_of(jengine, NESTED)
    html = static.twin_html(view_state(model))
    assert html.count("<li><code") == 8 + 5   # the 8 task runs' rows, then the 4 leaf logs and Return's
    assert "<em>a</em>" in html and "<code>leaf</code> <em>2</em>" in html and "· · <code>leaf</code>" in html
    assert "<strong>Logs</strong>" in html and "a-1" in html and "b-2" in html
    seed, _ = model_of(jengine, SEED)
    assert "<code>mydata</code>: <code>hello from kestra</code>" in static.twin_html(view_state(seed))


def test_the_twin_reads_the_same_once_sanitized(jengine: Any) -> None:
    """nbconvert's sanitize_html keeps only a few tags and escapes the others (they would show as text):
    the twin uses those tags alone, and loses only its inline styles."""
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    model, _ = model_of(jengine, NESTED)
    html = static.twin_html(view_state(model))
    clean = SanitizeHTML().sanitize_html_tags(html)
    assert "&lt;" not in clean and "style=" not in clean
    assert clean.count("<li>") == html.count("<li>") and "█" in clean and "SUCCESS" in clean


def test_values_are_escaped_everywhere(jengine: Any) -> None:
    flow = """id: hostile
namespace: company.team
tasks:
  - id: evil
    type: io.kestra.plugin.core.debug.Return
    format: "<img src=x onerror=alert(1)><script>alert(2)</script>"
outputs:
  - id: out
    type: STRING
    value: "{{ outputs.evil.value }}"
"""
    model, _ = model_of(jengine, flow)
    html = static.twin_html(view_state(model))
    assert "<img" not in html and "<script" not in html and "&lt;script&gt;" in html


def test_an_output_stays_small_whatever_the_execution(jengine: Any) -> None:
    foreach = """id: many
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 150) }}"
    tasks:
      - id: one
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
"""
    model, ex = model_of(jengine, foreach)
    assert len(ex.task_run_list) == 151
    size = ExecutionDisplay(model).size()
    assert size <= 60_000, size          # issue 15: a 150-item ForEach's saved output ≤ 60 KB
    big = ViewModel()
    doc = dict(jengine.store.get_execution_document(ex.id))
    runs = doc["taskRunList"]
    doc["taskRunList"] = [dict(runs[1 + i % 150], id=f"r{i}") for i in range(10_000)]
    big.update(doc)
    big.add_logs({"level": "INFO", "message": "x" * 50_000, "taskId": "one"} for _ in range(3_000))
    state = view_state(big)
    # the view fits its byte budget: fewer rows and lines, each counted as hidden
    shown = len(state["runs"])
    assert 0 < shown <= 250 and state["hidden"]["runs"] == 10_000 - shown
    assert 0 < len(state["logs"]) <= 200 and state["hidden"]["logs"] == 3_000 - len(state["logs"])
    assert len(state["logs"][0]["message"]) < 600
    assert ExecutionDisplay(big).size() <= 60_000
    assert "more task runs" in bundle(state)["text/html"]
    # and only the rows shown are built (what makes a push of a big execution cheap)
    assert big.rows(limit=10) == big.rows()[:10] and big.row_total == 10_000


def test_execution_reprs(jengine: Any) -> None:
    """`%load_ext kestra_nb` registers the rich display of what `run()` returns."""
    from IPython.core.interactiveshell import InteractiveShell

    from kestra_nb.jupyter.display import register_formatter

    ex = jengine.run(SEED)
    ip = InteractiveShell.instance()
    register_formatter(ip)
    data, _ = ip.display_formatter.format(ex)
    assert data[MIME]["summary"]["id"] == ex.id and "hello from kestra" in data["text/html"]
    assert data == {**execution_bundle(ex.to_dict()), "text/plain": data["text/plain"]}
    view = json.loads(data[MIME]["view"])   # the saved view: rows without their defaults, times to 0.1 ms
    assert view["runs"][0]["task"] == "mytask" and "attempts" not in view["runs"][0]
    assert view["outputs"] == {"mydata": "hello from kestra"}


def test_the_model_imports_no_jupyter_code() -> None:
    code = ("import sys, kestra_nb, kestra_nb.model.execution, kestra_nb.engine;"
            "bad = [m for m in ('IPython', 'ipywidgets', 'jupyter_server', 'kestra_nb.jupyter') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("ms, text", [(None, ""), (0.25, "0.2 ms"), (12.4, "12 ms"), (1234, "1.23 s"),
                                      (125_000, "2m 05s")])
def test_format_ms(ms: float | None, text: str) -> None:
    from kestra_nb.jupyter.widgets.viewmodel import format_ms

    assert format_ms(ms) == text


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
    assert f"%flow resume {execution_id}" in static.twin_html(view_state(model))
    jengine.resume(execution_id, inputs={"reason": "seen"})
    model.update(jengine._call(jengine.wait_async(execution_id)).result(10).to_dict())
    assert model.summary()["hint"] == ""
    assert "%flow resume" not in static.twin_html(view_state(model))


def _contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours."""
    def luminance(color: str) -> float:
        hexa = color.lstrip("#")
        hexa = "".join(c * 2 for c in hexa) if len(hexa) == 3 else hexa
        channels = [int(hexa[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        r, g, bl = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_state_and_level_reads_in_the_twin() -> None:
    """Badges keep Kestra's colours with a text that reads on them; coloured texts are dark enough on white."""
    from kestra_nb.jupyter.widgets.viewmodel import LEVEL_COLORS, badge_text, text_color

    assert "color:#111" in static.badge("KILLED") and "color:#fff" in static.badge("FAILED")
    for state, fill in STATE_COLORS.items():
        assert f"background:{fill}" in static.badge(state)
        assert _contrast(badge_text(state), fill) >= 4.5, state
        assert _contrast(text_color(state), "#ffffff") >= 4.5, state
    for level, colour in LEVEL_COLORS.items():
        assert _contrast(colour, "#ffffff") >= 4.5, level
