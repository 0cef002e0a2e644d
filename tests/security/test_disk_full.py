"""A full disk: the request that cannot be stored gets a clear error in Kestra's envelope (no hang, no server
path), what was committed stays readable, and the stopped execution ends FAILED once space is back.

The home is on a small tmpfs mounted for the test (`make test` runs as root: it installs chromium with
apt-get); the server is a real `kestra-nb server` process under a memory cap (see conftest.py).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

YAML = {"Content-Type": "application/x-yaml"}
BIG = """id: big
namespace: company.team
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: "{{ range(1, 20000) | join(',') }}"
  - id: b
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.a.value }}"
"""


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_ends_the_request_with_an_error_and_the_execution_failed(capped_server, small_disk):
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (2 * 1024 * 1024))   # freed later: the disk gets space back
    home = small_disk / "home"
    server = capped_server(home)
    assert server.request("POST", "/api/v1/flows", content=BIG, headers=YAML).status_code == 200
    failure = None
    for _ in range(400):
        answer = server.request("POST", "/api/v1/executions/company.team/big?wait=true")   # 30 s client timeout
        if answer.status_code != 200:
            failure = answer
            break
        assert answer.json()["state"]["current"] == "SUCCESS"
    assert failure is not None, "the disk never filled up"
    assert failure.status_code == 500
    body = failure.json()
    message = body["message"]
    assert "disk is full" in message, message
    assert str(small_disk) not in failure.text and "StoreError" not in failure.text and "sqlite3" not in failure.text
    assert body["_links"]["self"]["href"] == "/api/v1/executions/company.team/big"
    if "could not be stored" not in message:
        # the new execution's first commit is what the store refused: the request failed, nothing was created
        assert message == "Internal server error: the store could not be written: database or disk is full"
        ballast.unlink()
        assert server.request("POST", "/api/v1/executions/company.team/big?wait=true").json()["state"][
            "current"] == "SUCCESS"
        return
    found = re.search(r"Execution '(\w+)' could not be stored .*: it was stopped and ends (FAILED|SUCCESS)", message)
    execution_id, end = found.group(1), found.group(2)

    # the server keeps answering; what was committed is readable
    assert server.request("GET", "/ping").status_code == 200
    stored = server.request("GET", f"/api/v1/executions/{execution_id}")
    assert stored.status_code == 200 and stored.json()["state"]["current"] in ("CREATED", "RUNNING", "FAILED")
    again = server.request("POST", "/api/v1/executions/company.team/big?wait=true")   # answered, whatever it is
    assert again.status_code in (200, 500) and "message" in again.json() or again.json()["state"]

    ballast.unlink()   # space is back: the stopped execution's end is stored
    deadline = time.monotonic() + 30
    state = None
    while time.monotonic() < deadline:
        state = server.request("GET", f"/api/v1/executions/{execution_id}").json()["state"]["current"]
        if state == end:
            break
        time.sleep(0.1)   # the engine retries in the background; nothing to await from here but its store
    assert state == end
    logs = server.request("GET", f"/api/v1/logs/{execution_id}").json()
    assert any("could not be stored" in entry["message"] for entry in logs), logs
    assert server.alive()
    assert server.request("POST", "/api/v1/executions/company.team/big?wait=true").json()["state"]["current"] \
        == "SUCCESS"
