"""The standalone server: Basic auth (spec §7), the loopback rule, /ping, graceful SIGTERM, the CLI."""
from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kestra_nb.api.auth import BasicAuth, is_loopback
from kestra_nb.cli import main
from kestra_nb.server import InsecureBindError, Server
from tests.api.conftest import SEED, YAML

SCRIPT = Path(sys.executable).with_name("kestra-nb")
USER, PASSWORD = "admin@kestra.io", "Admin1234!"


def test_basic_auth_required_except_ping(auth_server):
    with httpx.Client(base_url=auth_server.url) as c:
        r = c.get("/api/v1/main/executions/search")
        assert r.status_code == 401 and r.content == b""
        assert r.headers["www-authenticate"] == 'Basic realm="Kestra"'
        assert c.get("/api/v1/nothing/here").status_code == 401  # no route discovery without credentials
        assert c.get("/api/v1/main/flows/search", auth=(USER, "wrong")).status_code == 401
        assert c.get("/ping").text == "pong"
        assert c.get("/api/v1/main/flows/search", auth=(USER, PASSWORD)).status_code == 200
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert c.get("/api/v1/flows/search", headers={"Cookie": f"BASIC_AUTH={token}"}).status_code == 200
        r = c.post("/api/v1/main/flows", content=SEED.encode(), headers=YAML, auth=(USER, PASSWORD))
        assert r.status_code == 200
        r = c.post("/api/v1/main/executions/company.team/myflow?wait=true", auth=(USER, PASSWORD))
        assert r.json()["outputs"] == {"mydata": "hello from kestra"}


def test_basic_auth_parsing():
    auth = BasicAuth.parse("me:pa:ss")
    assert auth.username == "me" and auth.password == "pa:ss"
    assert auth.check("Basic " + base64.b64encode(b"me:pa:ss").decode())
    assert not auth.check("Basic !!!") and not auth.check("Bearer x") and not auth.check(None)
    for bad in ("nopassword", ":x", "x:"):
        with pytest.raises(ValueError):
            BasicAuth.parse(bad)


def test_refuses_non_loopback_without_auth(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    with pytest.raises(InsecureBindError):
        Server(tmp_path, host="0.0.0.0", port=0)
    Server(tmp_path, host="0.0.0.0", port=0, auth=BasicAuth(USER, PASSWORD))  # allowed (not started)


def test_cli_refuses_non_loopback_without_auth(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KESTRA_NB_BASIC_AUTH", raising=False)
    assert main(["server", "--host", "0.0.0.0", "--port", "0", "--home", str(tmp_path)]) == 2
    assert "Refusing to listen on 0.0.0.0 without authentication" in capsys.readouterr().err
    assert main(["server", "--basic-auth", "nocolon", "--port", "0", "--home", str(tmp_path)]) == 2


def start_process(home: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    if not SCRIPT.exists():
        pytest.fail(f"the console script is not installed next to {sys.executable}")
    proc = subprocess.Popen([str(SCRIPT), "server", "--port", "0", "--home", str(home), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    m = re.search(r"listening on (http://\S+)", line)
    assert m, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
    return proc, m.group(1)


def test_sigterm_lets_running_executions_end_and_exits_0(tmp_path):
    proc, url = start_process(tmp_path, "--grace", "10")
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            c.post("/api/v1/main/flows", headers=YAML, content=(
                b"id: short\nnamespace: company.team\ntasks:\n  - id: nap\n"
                b"    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.5S\n"))
            answer: dict[str, httpx.Response] = {}
            waiting = threading.Thread(target=lambda: answer.setdefault(
                "r", httpx.post(f"{url}/api/v1/main/executions/company.team/short?wait=true", timeout=30)))
            waiting.start()
            # find the execution (created within milliseconds), then follow it until it runs: SIGTERM mid-run
            execution_id, deadline = None, time.monotonic() + 10
            while execution_id is None and time.monotonic() < deadline:
                found = c.get("/api/v1/main/executions/search").json()["results"]
                execution_id = found[0]["id"] if found else None
            assert execution_id is not None
            with c.stream("GET", f"/api/v1/main/executions/{execution_id}/follow") as r:
                for line in r.iter_lines():
                    if '"current":"RUNNING"' in line:
                        break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        waiting.join(20)
        assert answer["r"].status_code == 200 and answer["r"].json()["state"]["current"] == "SUCCESS"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/ping", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_stops_long_executions_at_their_checkpoint_and_a_restart_recovers_them(tmp_path):
    proc, url = start_process(tmp_path, "--grace", "0.2")
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            c.post("/api/v1/main/flows", headers=YAML, content=(
                b"id: long\nnamespace: company.team\ntasks:\n  - id: nap\n"
                b"    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n"))
            execution_id = c.post("/api/v1/main/executions/company.team/long").json()["id"]
            with c.stream("GET", f"/api/v1/main/executions/{execution_id}/follow") as r:
                for line in r.iter_lines():
                    if '"current":"RUNNING"' in line:
                        break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "stopping" in proc.stdout.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
    proc, url = start_process(tmp_path, "--grace", "0.2")
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            doc = c.get(f"/api/v1/main/executions/{execution_id}").json()
            assert doc["state"]["current"] == "RUNNING"   # as committed, and driven again by this process
            assert "RESUBMITTED" in [h["state"] for h in doc["taskRunList"][0]["state"]["histories"]]
            assert c.delete(f"/api/v1/main/executions/{execution_id}/kill").status_code == 202
            with c.stream("GET", f"/api/v1/main/executions/{execution_id}/follow") as r:
                r.read()
            assert c.get(f"/api/v1/main/executions/{execution_id}").json()["state"]["current"] == "KILLED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_server_with_basic_auth_from_the_environment(tmp_path):
    env_before = os.environ.get("KESTRA_NB_BASIC_AUTH")
    os.environ["KESTRA_NB_BASIC_AUTH"] = f"{USER}:{PASSWORD}"
    try:
        proc, url = start_process(tmp_path)
    finally:
        if env_before is None:
            del os.environ["KESTRA_NB_BASIC_AUTH"]
        else:
            os.environ["KESTRA_NB_BASIC_AUTH"] = env_before
    try:
        assert httpx.get(f"{url}/api/v1/flows/search").status_code == 401
        assert httpx.get(f"{url}/api/v1/flows/search", auth=(USER, PASSWORD)).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
