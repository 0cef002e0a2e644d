"""Poison pills: an execution that takes down every process recovering it ends FAILED, and start-up never
waits on recovery. The servers are real `kestra-nb server` processes under a memory cap."""
from __future__ import annotations

import time

from kestra_nb.engine.runner import MAX_RECOVERIES

# Its one task kills the process that drives it, as a frozen or OOM-killed server would end.
SUICIDE = """id: suicide
namespace: company.team
tasks:
  - id: crash
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - kill -9 $PPID
"""
YAML = {"Content-Type": "application/x-yaml"}


def wait_dead(server, timeout: float = 60) -> None:
    server.process.wait(timeout)
    if server.process.stdout is not None:
        server.process.stdout.close()


def test_an_execution_that_kills_its_server_ends_failed_after_the_recoveries(capped_server, tmp_path):
    home = tmp_path / "home"
    first = capped_server(home)
    assert first.request("POST", "/api/v1/flows", content=SUICIDE, headers=YAML).status_code == 200
    execution_id = first.request("POST", "/api/v1/executions/company.team/suicide").json()["id"]
    wait_dead(first)            # the task killed the server
    for _ in range(MAX_RECOVERIES):
        again = capped_server(home)   # it listens first, then recovers the execution, which kills it again
        wait_dead(again)
    last = capped_server(home)
    deadline = time.monotonic() + 30
    doc = last.request("GET", f"/api/v1/executions/{execution_id}").json()
    while doc["state"]["current"] != "FAILED" and time.monotonic() < deadline and last.alive():
        time.sleep(0.05)
        doc = last.request("GET", f"/api/v1/executions/{execution_id}").json()
    assert doc["state"]["current"] == "FAILED"
    assert last.alive() and last.request("GET", "/ping").status_code == 200
    logs = last.request("GET", f"/api/v1/logs/{execution_id}").json()
    assert any(f"at most {MAX_RECOVERIES} recoveries" in entry["message"] for entry in logs)
    # the operator can still delete it, and it does not come back on the next start
    assert last.request("DELETE", f"/api/v1/executions/{execution_id}").status_code == 204
    assert last.stop() == 0
    final = capped_server(home)
    assert final.request("GET", f"/api/v1/executions/{execution_id}").status_code == 404
