"""kestra_nb.client.KestraClient against our server (tenant and tenant-less paths, Basic auth), and the CLI's
`run --server` and `deploy --server`."""
from __future__ import annotations

import json
import threading

import pytest

from kestra_nb.cli import main
from kestra_nb.client import AuthenticationError, KestraClient, ServerUnreachableError
from kestra_nb.errors import (
    ExecutionTimeoutError,
    FlowValidationError,
    IllegalArgumentError,
    IllegalStateError,
    InputValidationError,
    NotFoundError,
)
from tests.api.conftest import INPUTS_FLOW, PAUSE_FLOW, SEED, SLEEP_FLOW
from tests.api.test_server import PASSWORD, USER


@pytest.fixture(params=["main", None], ids=["tenant", "tenant-less"])
def client(server, request):
    with KestraClient(server.url, tenant=request.param) as c:
        yield c


def test_deploy_creates_then_updates(client):
    assert client.deploy(SEED)["revision"] == 1
    assert client.deploy(SEED)["revision"] == 1  # identical: unchanged
    assert client.deploy(SEED.replace("hello from kestra", "v2"))["revision"] == 2
    assert client.flow("company.team", "myflow")["source"].endswith("description: return some data\n")
    with pytest.raises(FlowValidationError) as info:
        client.deploy("id: bad\nnamespace: company.team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n")
    [violation] = info.value.violations
    assert violation.path == "tasks[0].message" and violation.line == 4


def test_execute_wait_inputs_and_errors(client):
    client.deploy(INPUTS_FLOW)
    ex = client.execute("company.team", "inputs", inputs={"name": "Wörld ✓", "count": 3, "doc": b"bytes"},
                        labels={"team": "data"})
    assert ex["state"]["current"] == "SUCCESS" and ex["outputs"] == {"greeting": "Wörld ✓/3"}
    assert {"key": "team", "value": "data"} in ex["labels"]
    assert ex["inputs"]["doc"].startswith("kestra:///company/team/inputs/executions/")
    assert client.get(ex["id"])["id"] == ex["id"]
    with pytest.raises(InputValidationError) as info:
        client.execute("company.team", "inputs", inputs={"count": "x"})
    assert "Missing required input:name" in info.value.errors
    with pytest.raises(NotFoundError):
        client.execute("company.team", "nope")
    with pytest.raises(NotFoundError):
        client.get("nope")
    with pytest.raises(IllegalArgumentError):
        client.execute("company.team", "inputs", inputs={"name": "x"}, labels={"system.app": "x"})


def test_execute_follow_with_callbacks_and_resume(client):
    client.deploy(PAUSE_FLOW)
    states: list[str] = []

    def on_update(doc: dict) -> None:
        states.append(doc["state"]["current"])
        if doc["state"]["current"] == "PAUSED" and states.count("PAUSED") == 1:
            threading.Thread(target=client.resume, args=(doc["id"],)).start()

    final = client.execute("company.team", "paused", on_update=on_update)
    assert final["state"]["current"] == "SUCCESS" and final["outputs"] == {"out": "resumed"}
    assert "PAUSED" in states and states[-1] == "SUCCESS"
    assert client.logs(final["id"]) == [] or isinstance(client.logs(final["id"]), list)


def test_execute_no_wait_search_kill_and_timeout(client):
    client.deploy(SLEEP_FLOW)
    started = client.execute("company.team", "sleepy", wait=False)
    assert started["state"]["current"] == "CREATED"
    found = client.search(namespace="company.team", flow_id="sleepy")
    assert found["total"] == 1 and found["results"][0]["id"] == started["id"]
    client.kill(started["id"])
    assert client.follow(started["id"])["state"]["current"] == "KILLED"
    assert client.search(state=["KILLED"])["total"] == 1
    with pytest.raises(IllegalStateError):
        client.resume(started["id"])
    with pytest.raises(ExecutionTimeoutError) as info:
        client.execute("company.team", "sleepy", timeout=0.3)
    assert info.value.execution is not None and info.value.execution.state.current.value in ("KILLING", "KILLED")


def test_logs(client):
    client.deploy(INPUTS_FLOW)
    ex = client.execute("company.team", "inputs", inputs={"name": "x"})
    assert any(e["message"] == "Hello x x1" for e in client.logs(ex["id"]))
    assert client.logs(ex["id"], min_level="ERROR") == []
    assert "INFO Hello x x1" in client.logs_text(ex["id"])


def test_basic_auth_and_unreachable(auth_server):
    with KestraClient(auth_server.url, username=USER, password=PASSWORD) as c:
        assert c.deploy(SEED)["revision"] == 1
        assert c.execute("company.team", "myflow")["outputs"] == {"mydata": "hello from kestra"}
    with KestraClient(auth_server.url, username=USER, password="nope") as c, pytest.raises(AuthenticationError):
        c.get("x")
    with KestraClient("http://127.0.0.1:9", timeout=2) as c, pytest.raises(ServerUnreachableError):
        c.get("x")


def test_cli_deploy_and_run_on_a_server(server, tmp_path, capsys):
    flow = tmp_path / "myflow.yml"
    flow.write_text(SEED)
    assert main(["deploy", str(flow), "--server", server.url]) == 0
    assert "deployed company.team.myflow revision 1" in capsys.readouterr().out
    assert main(["run", str(flow), "--server", server.url]) == 0
    out = capsys.readouterr().out
    assert "company.team.myflow (revision 1) execution" in out and 'mydata: "hello from kestra"' in out
    assert main(["run", str(flow), "--server", server.url, "--json", "--tenant", ""]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {"mydata": "hello from kestra"}
    bad = tmp_path / "bad.yml"
    bad.write_text("id: bad\nnamespace: company.team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n")
    assert main(["deploy", str(bad), "--server", server.url]) == 1
    assert f"{bad}:4:" in capsys.readouterr().err
    failing = tmp_path / "fail.yml"
    failing.write_text("id: boom\nnamespace: company.team\ntasks:\n  - id: f\n"
                       "    type: io.kestra.plugin.core.execution.Fail\n    errorMessage: it broke\n")
    assert main(["run", str(failing), "--server", server.url]) == 1
    assert "error: it broke" in capsys.readouterr().out


def test_cli_with_basic_auth(auth_server, tmp_path, capsys, monkeypatch):
    flow = tmp_path / "myflow.yml"
    flow.write_text(SEED)
    assert main(["deploy", str(flow), "--server", auth_server.url]) == 1
    assert "Authentication failed" in capsys.readouterr().err
    assert main(["deploy", str(flow), "--server", auth_server.url, "--basic-auth", f"{USER}:{PASSWORD}"]) == 0
    monkeypatch.setenv("KESTRA_NB_BASIC_AUTH", f"{USER}:{PASSWORD}")
    assert main(["run", str(flow), "--server", auth_server.url]) == 0


def test_client_speaks_kestra_1x_paths_auth_and_documents():
    """Against a stand-in for a real Kestra 1.x: tenant paths, Basic auth on every call, Kestra's own
    document shapes (nanosecond instants, 202 kill, 422 on an existing flow then PUT)."""
    import base64

    import httpx

    seen: list[tuple[str, str, str | None]] = []
    doc = {"id": "5wbwf6yUxVBcr48AMbz9cb", "namespace": "company.team", "flowId": "myflow", "flowRevision": 1,
           "tenantId": "main", "labels": [{"key": "system.correlationId", "value": "5wbwf6yUxVBcr48AMbz9cb"}],
           "state": {"current": "SUCCESS", "histories": [
               {"state": "CREATED", "date": "2024-07-12T05:13:41.789110427Z"},
               {"state": "RUNNING", "date": "2024-07-12T05:13:42.012Z"},
               {"state": "SUCCESS", "date": "2024-07-12T05:13:42.335Z"}],
               "duration": "PT0.545889573S", "endDate": "2024-07-12T05:13:42.335Z",
               "startDate": "2024-07-12T05:13:41.789110427Z"},
           "originalId": "5wbwf6yUxVBcr48AMbz9cb", "deleted": False, "outputs": {"mydata": "hello from kestra"},
           "metadata": {"attemptNumber": 1, "originalCreatedDate": "2024-07-12T05:13:41.789113302Z"},
           "url": "http://localhost:8080/ui/main/executions/company.team/myflow/5wbwf6yUxVBcr48AMbz9cb"}

    def kestra(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("authorization")))
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/main/flows":
            return httpx.Response(422, json={"message": "Invalid entity: flow.id: Flow id already exists"})
        if request.method == "PUT" and path == "/api/v1/main/flows/company.team/myflow":
            return httpx.Response(200, json={"id": "myflow", "namespace": "company.team", "revision": 2})
        if request.method == "POST" and path == "/api/v1/main/executions/company.team/myflow":
            assert request.url.params["wait"] == "true"
            return httpx.Response(200, json=doc)
        if request.method == "DELETE" and path.endswith("/kill"):
            return httpx.Response(202)
        if path == "/api/v1/main/logs/5wbwf6yUxVBcr48AMbz9cb":
            return httpx.Response(200, json=[])
        return httpx.Response(404, json={"message": "Not Found"})

    with KestraClient("http://kestra:8080", username="admin@kestra.io", password="Admin1234",
                      transport=httpx.MockTransport(kestra)) as c:
        assert c.deploy(SEED)["revision"] == 2
        ex = c.execute("company.team", "myflow")
        assert ex["outputs"] == {"mydata": "hello from kestra"}
        c.kill(ex["id"])
        assert c.logs(ex["id"]) == []
        with pytest.raises(NotFoundError):
            c.get("nope")
    token = "Basic " + base64.b64encode(b"admin@kestra.io:Admin1234").decode()
    assert all(auth == token for _, _, auth in seen)
    assert [(m, p) for m, p, _ in seen][:3] == [("POST", "/api/v1/main/flows"),
                                                ("PUT", "/api/v1/main/flows/company.team/myflow"),
                                                ("POST", "/api/v1/main/executions/company.team/myflow")]
    from kestra_nb.client import _execution

    model = _execution(doc)   # Kestra's nanosecond instants read back
    assert model is not None and model.state.current.value == "SUCCESS"
