"""`%flow form`: a stored flow's inputs, or a paused execution's onResume inputs, as ipywidgets that run or
resume it; values typed as the engine types `-i` values; mistakes shown in the form, not as tracebacks."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.jupyter.conftest import run_cell

MIME = "application/vnd.kestra.execution+json"

TYPED = """id: typed
namespace: company.team
description: every kind of field
inputs:
  - id: name
    type: STRING
    description: who to greet
  - id: times
    type: INT
    defaults: 2
  - id: loud
    type: BOOLEAN
    defaults: false
  - id: colour
    type: SELECT
    values: [red, green]
  - id: tags
    type: MULTISELECT
    values: [a, b, c]
    required: false
  - id: config
    type: JSON
    defaults: {"k": 1}
  - id: data
    type: FILE
    required: false
  - id: when
    type: DATETIME
    defaults: "{{ now() }}"
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }} x{{ inputs.times }} {{ inputs.loud }} {{ inputs.colour }} {{ inputs.tags }} {{ inputs.config.k }}"
  - id: size
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.data is defined and inputs.data != null ? fileSize(inputs.data) : 'none' }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.say.value }}"
  - id: bytes
    type: STRING
    value: "{{ outputs.size.value }}"
"""

APPROVAL = """id: approval
namespace: company.team
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
      - id: ok
        type: BOOLEAN
        defaults: true
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.approve.onResume.reason }} {{ outputs.approve.onResume.ok }}"
"""


def fields(form: Any) -> dict[str, Any]:
    return {inp.id: widget for inp, widget in zip(form.inputs, form.fields)}


def shown(form: Any) -> dict[str, Any]:
    """The view drawn in the form's Output (decoded)."""
    (output,) = form.output.outputs
    data = output["data"][MIME]
    return {**data, "view": json.loads(data["view"])}


def test_a_flow_form_has_a_widget_per_input_and_runs_it(shell: Any, jengine: Any) -> None:
    import ipywidgets as w

    assert run_cell(shell, "%%flow --no-run\n" + TYPED).success
    form = shell.kestra_magics.form("company.team.typed --out ex")
    f = fields(form)
    assert [type(f[k]) for k in ("name", "times", "loud", "colour", "tags", "config", "data", "when")] == [
        w.Text, w.Text, w.Checkbox, w.Dropdown, w.SelectMultiple, w.Textarea, w.FileUpload, w.Text]
    assert f["name"].description == "name *" and f["times"].description == "times"   # required, no default
    assert f["times"].value == "2" and f["config"].value == '{"k": 1}'   # defaults shown as the text to send
    assert f["when"].value == ""   # an expression default is left to the engine
    assert f["colour"].value == "" and list(f["colour"].options) == [("—", ""), ("red", "red"), ("green", "green")]
    assert "who to greet" in form.widget.children[2].value   # the description under its field
    # the required ones left empty: the engine's messages, in the form, nothing started
    form.run()
    assert "Missing required input:name" in form.status.value and not form.output.outputs
    assert jengine.store.search_executions(namespace="company.team")[1] == 0
    f["name"].value, f["times"].value, f["loud"].value = "Ada", "3", True
    f["colour"].value, f["tags"].value = "green", ("a", "c")
    f["data"].value = ({"name": "d.csv", "type": "text/csv", "size": 5, "content": memoryview(b"a,b\n1"),
                        "last_modified": datetime.now(timezone.utc)},)
    form.run()
    assert form.status.value == "", form.status.value
    ex = shell.user_ns["ex"]
    assert ex.state == "SUCCESS"
    assert ex.outputs == {"said": 'Ada x3 true green ["a","c"] 1', "bytes": "5"}
    assert shell.user_ns["outputs"] == ex.outputs
    assert ex.inputs["data"].startswith(f"kestra:///company/team/typed/executions/{ex.id}/inputs/data/d.csv")
    view = shown(form)
    assert view["summary"]["state"] == "SUCCESS" and view["summary"]["id"] == ex.id
    # a bad value: the engine's message in red, the previous view left alone
    f["times"].value = "three"
    form.run()
    assert "Invalid value for input `times`" in form.status.value and "#b42318" in form.status.value
    assert shown(form)["summary"]["id"] == ex.id


def test_a_failed_run_from_the_form_says_why_in_the_form(shell: Any) -> None:
    flow = "id: broken\nnamespace: company.team\ntasks:\n  - id: fail\n" \
           "    type: io.kestra.plugin.core.execution.Fail\n    errorMessage: not yet\n"
    assert run_cell(shell, "%%flow --no-run\n" + flow).success
    form = shell.kestra_magics.form("company.team.broken")
    form.run()
    assert "FAILED: fail: not yet" in form.status.value
    assert shown(form)["summary"]["state"] == "FAILED"
    assert not form.button.disabled   # usable again


def test_the_form_magic_displays_the_widget(shell: Any) -> None:
    assert run_cell(shell, "%%flow --no-run\n" + TYPED).success
    cell = run_cell(shell, "%flow form company.team.typed -i name=Bob")
    assert cell.success, cell.stderr
    assert any("application/vnd.jupyter.widget-view+json" in output for output in cell.outputs)


@pytest.mark.parametrize("line, fragment", [
    ("form company.team.nope", "Flow company.team.nope is not in the store"),
    ("form company.team.typed -i nme=x", "did you mean"),
    ("form nope", "Execution 'nope' not found (a flow is named NAMESPACE.ID)"),
    ("form", "the following arguments are required"),
])
def test_form_mistakes(shell: Any, line: str, fragment: str) -> None:
    assert run_cell(shell, "%%flow --no-run\n" + TYPED).success
    cell = run_cell(shell, f"%flow {line}")
    assert not cell.success and fragment in cell.stderr, cell.stderr
    assert "Traceback" not in cell.stderr


def test_a_paused_executions_form_resumes_it(shell: Any, jengine: Any) -> None:
    from kestra_nb.model.state import StateType
    from tests.engine.test_commands import _finished, _start

    paused = _start(jengine, APPROVAL)
    cell = run_cell(shell, f"%flow form {paused} -i nope=1")
    assert not cell.success and "not an onResume input of the paused task; its inputs: ok, reason" in cell.stderr
    form = shell.kestra_magics.form(f"{paused} -i reason=fine")
    f = fields(form)
    assert f["reason"].value == "fine" and f["ok"].value is True and form.button.description == "Resume"
    f["ok"].value = False
    form.run()
    assert form.status.value == f"Execution {paused} resumed"
    done = _finished(jengine, paused)
    assert done.state.current is StateType.SUCCESS and done.task_run_list[-1].outputs == {"value": "fine false"}
    cell = run_cell(shell, f"%flow form {paused}")
    assert not cell.success and f"Execution {paused} is SUCCESS, not PAUSED" in cell.stderr
