"""notebooks/subflows.ipynb: a parent passing inputs to a Subflow and reading its outputs back, the child nested
in the parent's view and shown on its own, and a ForEachItem running one child per batch of a file."""
from __future__ import annotations

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of


def check(nb: nbformat.NotebookNode) -> None:
    saved = [stdout(c) for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%flow --no-run")]
    assert saved == ["company.team.sub_greet revision 1 saved\n", "company.team.sub_count revision 1 saved\n"]

    parent, html = view_of(nb, cell_by_start(nb, "%%flow --out parent"))
    assert parent["summary"]["state"] == "SUCCESS" and parent["summary"]["flowId"] == "sub_parent"
    assert parent["outputs"] == {"greeting": "HELLO NOTEBOOK!"}
    rows = [(r.get("depth", 0), r["task"], r["state"]) for r in parent["runs"]]
    assert rows == [(0, "call", "SUCCESS"), (1, "company.team.sub_greet", "SUCCESS"), (2, "hello", "SUCCESS"),
                    (0, "shout", "SUCCESS")]
    call = next(t for t in parent["task_outputs"] if t["task"] == "call")["outputs"]
    child_row = parent["runs"][1]
    assert child_row["kind"] == "execution" and child_row["execution"] == call["executionId"]
    assert call["state"] == "SUCCESS" and call["outputs"] == {"greeting": "Hello notebook!"}
    assert stdout(cell_by_start(nb, "call = next(")) == (
        "SUCCESS {'greeting': 'Hello notebook!'}\n{'greeting': 'HELLO NOTEBOOK!'}\n")

    child, _ = view_of(nb, cell_by_start(nb, "%flow show {child_id}"))
    assert child["summary"]["id"] == call["executionId"] and child["summary"]["flowId"] == "sub_greet"
    assert child["summary"]["state"] == "SUCCESS" and child["outputs"] == {"greeting": "Hello notebook!"}

    batches, _ = view_of(nb, cell_by_start(nb, "%%flow --out batches"))
    assert batches["summary"]["state"] == "SUCCESS" and batches["outputs"] == {
        "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 3}}
    children = [r for r in batches["runs"] if r.get("kind") == "execution"]
    assert [(r["task"], r["value"], r["state"]) for r in children] == [
        ("company.team.sub_count", str(i), "SUCCESS") for i in (1, 2, 3)]
    assert [r["task"] for r in batches["runs"]].count("count") == 3
    assert any(log["message"] == '3 batches {"CREATED":0,"RUNNING":0,"SUCCESS":3}: {orders:2}, {orders:2}, {orders:1}'
               for log in batches["logs"])
    assert stdout(cell_by_start(nb, "each = next(")) == "3 batches: {'CREATED': 0, 'RUNNING': 0, 'SUCCESS': 3}\n"
