"""notebooks/webhooks.ipynb: a flow deployed with a Webhook trigger, called over HTTP on the Jupyter server
(open, the key is the secret; `wait: true` answers with the outputs), the execution it started shown from the
store, a wrong key's 404, and the Executions API's `?wait=true` with and without the token."""
from __future__ import annotations

import re

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of


def check(nb: nbformat.NotebookNode) -> None:
    assert stdout(cell_by_start(nb, "%%flow --no-run")) == "company.team.hook_orders revision 1 saved\n"

    called = stdout(cell_by_start(nb, "from pathlib import Path"))
    assert called == ("200 SUCCESS {'confirmation': 'order of 3 for ACME confirmed'}\n"
                      "trigger new_order with the body {'customer': 'ACME', 'quantity': 3}\n"), called

    shown, html = view_of(nb, cell_by_start(nb, "%flow show {hook_id}"))
    assert shown["summary"]["state"] == "SUCCESS" and shown["summary"]["flowId"] == "hook_orders"
    assert shown["outputs"] == {"confirmation": "order of 3 for ACME confirmed"}
    assert [(r["task"], r["state"]) for r in shown["runs"]] == [("received", "SUCCESS"), ("confirm", "SUCCESS")]
    assert any(log["message"] == "3 boxes ordered by ACME" for log in shown["logs"])
    assert "order of 3 for ACME confirmed" in html

    assert stdout(cell_by_start(nb, "wrong = ")) == "404 Not Found: Webhook not found\n"
    api = stdout(cell_by_start(nb, "token = "))
    assert api == ("without the token: 403\n"
                   "with it: 200 SUCCESS {'confirmation': 'order of 5 for Globex confirmed'}\n"), api

    for cell in nb.cells:   # no token of the server (hex, as Jupyter's) in what the notebook saved
        for output in cell.get("outputs", []):
            assert not re.search(r"[0-9a-f]{32}", str(output)), output
