"""Every notebook in notebooks/ runs headless with nbclient (a real kernel), next to a real Jupyter server with
the kestra_nb extension, and its saved outputs are checked: each execution view is ONE output in its final
state (the cell replaced it with update_display_data), with no widget state to lose with the kernel."""
from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kestra_nb.jupyter.display import saved_size
from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS, TERMINATED
from tests.jupyter.conftest import NOTEBOOKS
from tests.jupyter.notebook_run import execute as run_notebook

MIME = "application/vnd.kestra.execution+json"


def execute(path: Path, tmp_path: Path) -> nbformat.NotebookNode:
    """Run a copy of the notebook next to a Jupyter server with the extension (notebook_run.execute)."""
    nb = run_notebook(path, tmp_path)
    nbformat.write(nb, tmp_path / f"executed-{path.name}")
    return nb


def decoded(data: dict[str, Any]) -> dict[str, Any]:
    """The view state a saved execution output holds (display.bundle: the summary, the rest as JSON text)."""
    return {**json.loads(data[MIME]["view"]), "summary": data[MIME]["summary"]}


def check_generic(nb: nbformat.NotebookNode) -> None:
    """No cell errored; every execution view was saved once, in its final state, with its HTML twin."""
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata   # nothing that needs the kernel's widget models to render
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, cell.source
        assert sum(MIME in o.get("data", {}) for o in cell.outputs) <= 1, cell.source
        for output in cell.outputs:
            assert output.output_type != "error", (cell.source, output)
            data = output.get("data", {})
            if MIME in data:
                state = decoded(data)
                assert state["summary"]["state"] in TERMINATED, state["summary"]
                assert all(run["state"] in TERMINATED for run in state["runs"])
                html = data["text/html"]  # the twin, of the FINAL state
                assert f'>{state["summary"]["state"]}</b>' in html and state["summary"]["id"] in html
                assert saved_size(data) < 60_000


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = execute(path, tmp_path)
    check_generic(nb)
    if path.name == "quickstart.ipynb":
        check_quickstart(nb)
    module = f"tests.jupyter.checks.{path.stem.replace('-', '_')}"
    if importlib.util.find_spec(module) is not None:
        importlib.import_module(module).check(nb)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_with_their_outputs(path: Path) -> None:
    """`make notebooks` saved them run: GitHub and nbviewer show every view (its HTML twin), nothing failed."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert (raw["nbformat"], raw["nbformat_minor"]) == (4, 5) and all(cell.get("id") for cell in raw["cells"])
    code = [cell for cell in raw["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["execution_count"] for cell in code), "run `make notebooks`"
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1)), "run top to bottom"
    outputs = [output for cell in code for output in cell["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    views = [o for o in outputs if MIME in o.get("data", {})]
    assert views and all("text/html" in o["data"] for o in views)


def cell_by_start(nb: nbformat.NotebookNode, start: str) -> nbformat.NotebookNode:
    """The code cell whose source starts with `start`."""
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start))


def view_of(nb: nbformat.NotebookNode, cell: nbformat.NotebookNode) -> tuple[dict[str, Any], str]:
    """(saved view state, HTML twin) of the cell's execution view."""
    (output,) = [o for o in cell.outputs if MIME in o.get("data", {})]
    return decoded(output.data), output.data["text/html"]


def stdout(cell: nbformat.NotebookNode) -> str:
    """The cell's printed text."""
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def check_quickstart(nb: nbformat.NotebookNode) -> None:
    seed, html = view_of(nb, cell_by_start(nb, "%%flow --out seed"))
    assert seed["summary"]["state"] == "SUCCESS" and seed["summary"]["flowId"] == "myflow"
    assert seed["outputs"] == {"mydata": "hello from kestra"}
    assert [(r["task"], r["state"]) for r in seed["runs"]] == [("mytask", "SUCCESS")]
    assert seed["colors"]["SUCCESS"] == STATE_COLORS["SUCCESS"]
    assert f"background:{STATE_COLORS['SUCCESS']}" in html and "hello from kestra" in html
    assert stdout(cell_by_start(nb, 'print(outputs["mydata"])')).startswith("hello from kestra\nSUCCESS ")

    hello, _ = view_of(nb, cell_by_start(nb, "%%flow -i name=Jupyter"))
    assert hello["outputs"] == {"greeting": "JUPYTER!"} and "team:data" in hello["summary"]["labels"]
    assert any(log["message"] == "Hello Jupyter, 2 times" for log in hello["logs"])
    (result,) = [o for o in cell_by_start(nb, "params = ").outputs if o.output_type == "execute_result"]
    assert result.data["text/plain"] == "{'greeting': 'NOTEBOOK!'}"

    failed, html = view_of(nb, cell_by_start(nb, "%%flow --allow-failure --out failed"))
    assert failed["summary"]["state"] == "FAILED"
    assert {r["task"]: r["state"] for r in failed["runs"]} == {"extract": "SUCCESS", "check": "FAILED"}
    assert any(log["level"] == "ERROR" and log["message"] == "no warehouse configured" for log in failed["logs"])
    assert f"background:{STATE_COLORS['FAILED']}" in html

    fixed, _ = view_of(nb, cell_by_start(nb, "%%flow --from check"))
    assert fixed["summary"]["state"] == "SUCCESS" and fixed["summary"]["revision"] == 2
    assert fixed["summary"]["parentId"] == failed["summary"]["id"]
    assert fixed["outputs"] == {"loaded": "42 orders"}
    assert stdout(cell_by_start(nb, "print(failed.state")).startswith("FAILED -> SUCCESS {'loaded': '42 orders'}")

    regions, _ = view_of(nb, cell_by_start(nb, "%%flow --out regions"))
    rows = [(r.get("depth", 0), r["task"], r.get("value"), r["state"]) for r in regions["runs"]]
    assert rows[0] == (0, "each", None, "SUCCESS") and len(rows) == 7
    assert sorted(r[1:3] for r in rows[1:]) == sorted(
        (task, value) for task in ("nap", "report") for value in ("north", "south", "east"))
    naps = [r for r in regions["runs"] if r["task"] == "nap"]
    assert all(r["end"] - r["running"] >= 1000 for r in naps)  # Sleep PT1S ran

    listed = cell_by_start(nb, "%flow list").outputs[0].data["text/plain"]
    for flow in ("company.team.myflow", "company.team.hello", "company.team.orders", "company.team.regions"):
        assert flow in listed
    shown, _ = view_of(nb, cell_by_start(nb, "%flow show"))
    assert shown["summary"]["id"] == seed["summary"]["id"]

    # the API of the Jupyter server ran the flow the kernel had saved, in the same store
    api = stdout(cell_by_start(nb, "# the Kestra API"))
    assert api.strip() == "200 SUCCESS {'mydata': 'hello from kestra'}", api


def test_quickstart_holds_the_seed_and_the_api_call() -> None:
    raw = json.loads((NOTEBOOKS / "quickstart.ipynb").read_text(encoding="utf-8"))
    seed = (NOTEBOOKS.parent / "examples" / "myflow.yml").read_text(encoding="utf-8").rstrip("\n")
    assert any("".join(c["source"]) == "%%flow --out seed\n" + seed for c in raw["cells"])
    markdown = "\n".join("".join(c["source"]) for c in raw["cells"] if c["cell_type"] == "markdown")
    assert 'curl -X POST -H "Authorization: token $TOKEN"' in markdown
    assert "/kestra/api/v1/executions/company.team/myflow?wait=true" in markdown
