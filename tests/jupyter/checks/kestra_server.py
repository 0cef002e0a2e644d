"""notebooks/kestra-server.ipynb: a standalone server started from the notebook; `%%flow --server` runs there
and is followed in the view, `--no-run --server` deploys there, KestraClient runs, reads logs and searches
there (the kernel's own store holds none of it); the server stops at the end."""
from __future__ import annotations

import re

import nbformat

from tests.jupyter.test_notebooks import cell_by_start, stdout, view_of


def check(nb: nbformat.NotebookNode) -> None:
    assert stdout(cell_by_start(nb, "import tempfile")) == "listening: True\n"

    remote, html = view_of(nb, cell_by_start(nb, "%%flow --server {url} --out remote"))
    assert remote["summary"]["state"] == "SUCCESS" and remote["summary"]["flowId"] == "server_hello"
    assert remote["outputs"] == {"greeting": "Hello Ada, from the server"}
    runs = {r["task"]: r for r in remote["runs"]}
    assert [r["task"] for r in remote["runs"]] == ["warm_up", "greet"]
    assert all(r["state"] == "SUCCESS" for r in remote["runs"])
    assert runs["warm_up"]["end"] - runs["warm_up"]["running"] >= 500   # followed while it ran there
    assert any(log["message"] == "Hello Ada, from the server" for log in remote["logs"])  # the server's logs
    assert stdout(cell_by_start(nb, "print(remote.state")) == "SUCCESS {'greeting': 'Hello Ada, from the server'}\n"
    assert stdout(cell_by_start(nb, "from kestra_nb.engine import get_engine")) == "in this kernel's store: False\n"

    deployed = stdout(cell_by_start(nb, "%%flow --no-run --server {url}"))
    assert re.fullmatch(r"company\.team\.server_report revision 1 saved on http://127\.0\.0\.1:\d+\n", deployed)

    client = stdout(cell_by_start(nb, "from kestra_nb.client import KestraClient"))
    assert client == ("SUCCESS {'report': 'report of 42 rows'}\n"
                      "['42 rows to report']\n"
                      "[('server_hello', 'SUCCESS'), ('server_report', 'SUCCESS')]\n"), client

    assert stdout(cell_by_start(nb, "server.stop()")) == "stopped: True\n"
