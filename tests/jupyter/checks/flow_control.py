"""notebooks/flow-control.ipynb: ForEach with concurrencyLimit 2 (two values at a time), Parallel (all at once),
If and Switch picking their branch from inputs, errors and finally after a failing task (FAILED, with
--allow-failure), and a retried task succeeding on its third attempt."""
from __future__ import annotations

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of


def _most_at_once(runs: list[dict]) -> int:
    """The largest number of these task runs running at the same moment."""
    return max(sum(1 for r in runs if r["running"] <= s["running"] < r["end"]) for s in runs)


def check(nb: nbformat.NotebookNode) -> None:
    loop, _ = view_of(nb, cell_by_start(nb, "%%flow --out loop"))
    assert loop["summary"]["state"] == "SUCCESS" and loop["summary"]["flowId"] == "control_foreach"
    values = ["north", "south", "east", "west"]
    assert loop["outputs"] == {"labels": {v: {"value": v.upper()} for v in values}}
    fetches = [r for r in loop["runs"] if r["task"] == "fetch"]
    assert sorted(r["value"] for r in fetches) == sorted(values) and all(r["depth"] == 1 for r in fetches)
    assert all(r["end"] - r["running"] >= 300 for r in fetches)          # Sleep PT0.3S ran
    assert _most_at_once(fetches) == 2                                    # concurrencyLimit: 2
    (result,) = [o for o in cell_by_start(nb, 'loop.outputs["labels"]').outputs if o.output_type == "execute_result"]
    assert "'west': {'value': 'WEST'}" in result.data["text/plain"]

    par, _ = view_of(nb, cell_by_start(nb, "%%flow --out side_by_side"))
    assert par["summary"]["state"] == "SUCCESS"
    sleeps = [r for r in par["runs"] if r["task"] in ("orders", "customers", "products")]
    assert len(sleeps) == 3 and _most_at_once(sleeps) == 3               # all at once
    join = next(r for r in par["runs"] if r["task"] == "join")
    assert join["running"] >= max(r["end"] for r in sleeps)

    big, _ = view_of(nb, cell_by_start(nb, "%%flow --out big"))
    assert big["outputs"] == {"plan": "5000 rows: in batches", "destination": "written to the lake"}
    assert [r["task"] for r in big["runs"]] == ["size", "batch", "route", "to_lake"]
    assert stdout(cell_by_start(nb, "%flow run company.team.control_branch")) == (
        "{'plan': '5000 rows: in batches', 'destination': 'written to the lake'}\n"
        "{'plan': '12 rows: at once', 'destination': 'kept here'}\n")

    failed, html = view_of(nb, cell_by_start(nb, "%%flow --allow-failure --out failed"))
    assert failed["summary"]["state"] == "FAILED"
    assert {r["task"]: r["state"] for r in failed["runs"]} == {
        "extract": "SUCCESS", "load": "FAILED", "alert": "SUCCESS", "cleanup": "SUCCESS"}   # no `report`
    messages = [(log["level"], log["message"]) for log in failed["logs"]]
    assert ("WARN", "load failed: warehouse unreachable") in messages
    assert ("INFO", "cleaning up after 42 rows") in messages
    assert "never logged" not in html
    assert stdout(cell_by_start(nb, "print(failed.state)")).split() == [
        "FAILED", "extract", "SUCCESS", "load", "FAILED", "alert", "SUCCESS", "cleanup", "SUCCESS"]

    retried, _ = view_of(nb, cell_by_start(nb, "%%flow --out retried"))
    assert retried["summary"]["state"] == "SUCCESS"
    flaky = next(r for r in retried["runs"] if r["task"] == "flaky")
    assert flaky["state"] == "SUCCESS" and flaky["attempts"] == 3
    attempts = [log["message"] for log in retried["logs"] if log["task"] == "flaky" and log["level"] == "INFO"]
    assert attempts == ["attempt 1", "attempt 2", "attempt 3"]
    assert any(log["message"] == "flaky passed with exit code 0" for log in retried["logs"])
    assert stdout(cell_by_start(nb, "flaky = next(")) == "SUCCESS ['FAILED', 'FAILED', 'SUCCESS']\n"
