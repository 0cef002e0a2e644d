"""A `%%flow` cell blocked on a Pause in a real kernel (nbclient) is resumed from another process sharing
its home (issue 14): its view said how, and the cell then finishes with the resumed execution."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kestra_nb.engine import Engine
from kestra_nb.model.state import StateType
from tests.engine.test_commands import PAUSED

CELL = "%%flow --out approved\n" + PAUSED


def _paused_execution(engine: Engine, deadline: float) -> str:
    """The id of the kernel's execution once it is PAUSED (another process: watched through the store)."""
    while time.monotonic() < deadline:
        found, _ = engine.store.search_executions(namespace="company.team", flow_id="approval",
                                                  states=[StateType.PAUSED])
        if found:
            return found[0].id
        time.sleep(0.02)   # another process's commits: nothing in this one to wait on
    pytest.fail("the kernel's execution did not pause in time")


def test_a_cell_blocked_on_a_pause_is_resumed_from_another_process(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("KESTRA_NB_HOME", str(home))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kestra_nb"),
        nbformat.v4.new_code_cell(CELL),
        nbformat.v4.new_code_cell("print(approved.state, approved.task_run_list[-1].outputs['values']['reason'])"),
    ])
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.execute()
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)

    kernel = threading.Thread(target=run)
    kernel.start()
    engine = Engine(home, recover=False)
    try:
        execution_id = _paused_execution(engine, time.monotonic() + 90)
        resumed = engine.resume(execution_id, inputs={"reason": "from another process"})
        assert resumed.state.current is not StateType.PAUSED
    finally:
        kernel.join(120)
        engine.close()
    assert not kernel.is_alive() and not errors, errors
    assert nb.cells[2].outputs[0]["text"] == "SUCCESS from another process\n"
    view = nb.cells[1].outputs[-1]["data"]["text/html"]
    assert "SUCCESS" in view


def test_the_jupyter_servers_api_resumes_and_kills_what_a_kernel_drives(tmp_path: Path) -> None:
    """The issue's first finding: POST …/resume and …/kill on the Jupyter server answered 409 "not driven
    by this process" for a kernel's execution. Here an engine of this process plays the kernel."""
    import httpx

    from tests.engine.test_commands import LONG, _finished, _start
    from tests.jupyter.conftest import jupyter_process

    home, root = tmp_path / "home", tmp_path / "root"
    root.mkdir()
    kernel = Engine(home)
    try:
        with jupyter_process(tmp_path, root, home) as server:
            headers = {"Authorization": f"token {server.token}"}
            with httpx.Client(base_url=server.url + "kestra/api/v1/main", headers=headers, timeout=30) as http:
                paused = _start(kernel, PAUSED)
                r = http.post(f"/executions/{paused}/resume", files={"reason": (None, "from JupyterLab")})
                assert r.status_code == 204, r.text
                assert _finished(kernel, paused).state == "SUCCESS"
                long = _start(kernel, LONG)
                assert http.delete(f"/executions/{long}/kill").status_code == 202
                assert _finished(kernel, long).state == "KILLED"
                assert http.post(f"/executions/{long}/resume").status_code == 409
    finally:
        kernel.close()
