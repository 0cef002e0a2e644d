"""notebooks/pause-and-resume.ipynb: a Pause that resumes itself, one resumed from a background thread with its
onResume inputs while the `%%flow` cell waits, and a failed execution restarted after a fix (same id)."""
from __future__ import annotations

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of


def check(nb: nbformat.NotebookNode) -> None:
    timed, _ = view_of(nb, cell_by_start(nb, "%%flow --out timed"))
    assert timed["summary"]["state"] == "SUCCESS" and timed["summary"]["flowId"] == "pause_timer"
    runs = {r["task"]: r for r in timed["runs"]}
    assert [r["task"] for r in timed["runs"]] == ["extract", "cool_down", "load"]
    assert all(r["state"] == "SUCCESS" for r in timed["runs"])
    assert runs["cool_down"]["end"] - runs["cool_down"]["running"] >= 1000   # paused PT1S
    assert runs["load"]["running"] >= runs["cool_down"]["end"]               # load waited for the pause

    cell = cell_by_start(nb, "%%flow --out approval")
    approval, html = view_of(nb, cell)
    assert approval["summary"]["state"] == "SUCCESS"
    assert approval["outputs"] == {"approved": True, "reason": "numbers checked"}
    assert {r["task"]: r["state"] for r in approval["runs"]} == {
        "prepare": "SUCCESS", "review": "SUCCESS", "publish": "SUCCESS", "published": "SUCCESS"}
    review = next(t for t in approval["task_outputs"] if t["task"] == "review")
    assert review["outputs"] == {"onResume": {"approved": True, "reason": "numbers checked"}}
    assert any(log["message"] == "published 3 new customers (numbers checked)" for log in approval["logs"])
    assert "reviewer: pause_approval is paused, resuming it with" in stdout(cell)
    assert stdout(cell_by_start(nb, "print(approval.state")).startswith(
        "SUCCESS {'approved': True, 'reason': 'numbers checked'}")

    failed, _ = view_of(nb, cell_by_start(nb, "%%flow --allow-failure --out failed"))
    assert failed["summary"]["state"] == "FAILED"
    assert {r["task"]: r["state"] for r in failed["runs"]} == {"reset": "SUCCESS", "connect": "FAILED"}
    assert "pause_warehouse" in failed["error"]

    assert stdout(cell_by_start(nb, "restarted = engine.restart")).startswith("True SUCCESS attempt 2")
    shown, _ = view_of(nb, cell_by_start(nb, "%flow show"))
    assert shown["summary"]["id"] == failed["summary"]["id"] and shown["summary"]["state"] == "SUCCESS"
    assert {r["task"]: r["state"] for r in shown["runs"]} == {
        "reset": "SUCCESS", "connect": "SUCCESS", "load": "SUCCESS"}
    before = {r["task"]: r for r in failed["runs"]}
    after = {r["task"]: r for r in shown["runs"]}
    assert after["reset"]["id"] == before["reset"]["id"] and after["reset"]["end"] == before["reset"]["end"]
    assert after["connect"]["id"] == before["connect"]["id"]   # the same task run, run again
    assert any(log["message"] == "loading into main" for log in shown["logs"])
