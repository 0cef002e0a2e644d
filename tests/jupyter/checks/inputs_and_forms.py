"""notebooks/inputs-and-forms.ipynb: typed inputs given with `-i`, defaults, a dict with `--inputs` (`-i` winning),
the messages of invalid values (printed, so Run All goes on), a FILE input uploaded through the server's API and
shown with `%flow show`, and the `%flow form` command (described, not run: widgets would need the kernel)."""
from __future__ import annotations

import ast

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of

LYON = {"city": "Lyon", "zip": "69001"}


def _result(cell: nbformat.NotebookNode) -> object:
    (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    return ast.literal_eval(result.data["text/plain"])


def check(nb: nbformat.NotebookNode) -> None:
    first, html = view_of(nb, cell_by_start(nb, "%%flow --out first"))
    assert first["summary"]["state"] == "SUCCESS" and first["summary"]["flowId"] == "inputs_order"
    assert first["outputs"] == {"order": {"customer": "Ada", "quantity": 3, "gift": True, "size": "L",
                                          "address": LYON}}
    assert any(log["message"] == "3 x L for Ada, to Lyon (gift wrapped)" for log in first["logs"])
    assert "3 x L for Ada" in html
    assert stdout(cell_by_start(nb, "for name, value in first.inputs")).splitlines() == [
        "customer  str   'Ada'", "quantity  int   3", "gift      bool  True", "size      str   'L'",
        "address   dict  {'city': 'Lyon', 'zip': '69001'}"]

    defaults = {"customer": "Grace", "quantity": 1, "gift": False, "size": "M", "address": LYON}
    cell = cell_by_start(nb, "%flow run company.team.inputs_order -i customer=Grace")
    second, _ = view_of(nb, cell)
    assert second["summary"]["state"] == "SUCCESS" and second["outputs"] == {"order": defaults}
    assert second["summary"]["id"] != first["summary"]["id"]
    assert _result(cell) == defaults

    cell = cell_by_start(nb, "order = {")
    assert not [o for o in cell.outputs if "application/vnd.kestra.execution+json" in o.get("data", {})]  # --quiet
    assert _result(cell) == {"customer": "notebook", "quantity": 5, "gift": False, "size": "S",
                             "address": {"city": "Oslo", "zip": "0150"}}   # -i quantity=5 won over the dict

    errors = stdout(cell_by_start(nb, "from IPython.core.error import UsageError"))
    for expected in ("Invalid value for input `quantity`. Cause: it must be less than `10`",
                     "(the input is declared at line 8)\n     8 |   - id: quantity",   # the stored YAML's own lines
                     "Invalid value for input `size`. Cause: it must match the values `[S, M, L]`",
                     "Missing required input:customer",
                     "Input `colour` is not declared by company.team.inputs_order"):
        assert expected in errors, (expected, errors)
    assert errors.count("Invalid inputs:") == 3

    assert stdout(cell_by_start(nb, "%%flow --no-run")) == "company.team.inputs_upload revision 1 saved\n"
    assert stdout(cell_by_start(nb, "import tempfile")) == (
        "SUCCESS orders.csv\ncustomer,quantity\nAda,3\nGrace,1\n\n")
    upload, _ = view_of(nb, cell_by_start(nb, "%flow show {upload_id}"))
    assert upload["summary"]["state"] == "SUCCESS" and upload["summary"]["flowId"] == "inputs_upload"
    assert upload["outputs"] == {"content": "customer,quantity\nAda,3\nGrace,1\n"}
    assert any(log["message"] == "32 bytes received" for log in upload["logs"])

    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "%flow form company.team.inputs_order" in markdown
