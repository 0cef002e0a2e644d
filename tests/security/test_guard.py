"""The standalone server's Host allow-list, Origin check, Content-Type rule and CORS (api.guard), over real
HTTP on loopback; the Jupyter server's webhook routes under Jupyter's own rules."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from kestra_nb.api.guard import Guard, host_name, is_loopback_name
from kestra_nb.server import Server, serve_in_thread

YAML = {"Content-Type": "application/x-yaml"}
FLOW = """id: victim
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hello
"""
HOOK = """id: hooked
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hello
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cr3t
"""
FOREIGN = "http://127.0.0.2:8000"


def start(tmp_path, **options) -> Iterator[tuple[Server, httpx.Client]]:
    server, thread = serve_in_thread(tmp_path / "home", port=0, grace=1, **options)
    client = httpx.Client(base_url=server.url, timeout=30)
    try:
        assert client.post("/api/v1/flows", content=FLOW, headers=YAML).status_code == 200
        assert client.post("/api/v1/flows", content=HOOK, headers=YAML).status_code == 200
        yield server, client
    finally:
        client.close()
        server.stop()
        thread.join(30)


@pytest.fixture
def served(tmp_path):
    yield from start(tmp_path)


def executions(client: httpx.Client) -> int:
    return client.get("/api/v1/executions/search").json()["total"]


# ----------------------------------------------------------------------------------------------- hosts

def test_a_foreign_host_is_refused_on_every_route(served):
    _, client = served
    for method, path in [("GET", "/api/v1/flows/search"), ("GET", "/api/v1/flows/company.team/victim"),
                         ("GET", "/api/v1/executions/search"), ("POST", "/api/v1/executions/company.team/victim"),
                         ("GET", "/api/v1/executions/webhook/company.team/hooked/s3cr3t")]:
        answer = client.request(method, path, headers={"Host": "attacker.example"})
        assert answer.status_code == 403, (method, path, answer.text)
        body = answer.json()
        assert "attacker.example" in body["message"] and "--allow-host" in body["message"]
        assert "io.kestra" not in answer.text and "hello" not in answer.text
    assert executions(client) == 0


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1234", "127.0.0.1", "127.1.2.3:80", "[::1]:8080",
                                  "app.localhost"])
def test_loopback_hosts_are_served(served, host):
    _, client = served
    assert client.get("/api/v1/flows/search", headers={"Host": host}).status_code == 200


def test_allowed_hosts_from_the_option_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KESTRA_NB_ALLOWED_HOSTS", "box.lan, other.lan")
    for _, client in start(tmp_path, allow_hosts=("kestra.internal",)):
        for host in ("kestra.internal:8080", "box.lan", "other.lan"):
            assert client.get("/api/v1/flows/search", headers={"Host": host}).status_code == 200, host
        assert client.get("/api/v1/flows/search", headers={"Host": "evil.lan"}).status_code == 403


def test_a_wildcard_bind_answers_any_host_and_a_specific_one_its_own():
    assert Guard.configure(bind="0.0.0.0", env={}).host_allowed("anything.example")
    assert Guard.configure(bind="::", env={}).host_allowed("anything.example")
    bound = Guard.configure(bind="192.168.1.5", env={})
    assert bound.host_allowed("192.168.1.5:8080") and not bound.host_allowed("evil.example")
    assert not Guard.configure(env={}).host_allowed(None)


def test_host_names_parse_like_browsers_send_them():
    assert host_name("[::1]:8080") == "::1"
    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("127.0.0.1") == "127.0.0.1"
    assert is_loopback_name("127.255.0.1") and is_loopback_name("::1") and is_loopback_name("a.localhost")
    assert not is_loopback_name("localhost.attacker.example") and not is_loopback_name("10.0.0.1")


# --------------------------------------------------------------------------------------------- origins

@pytest.mark.parametrize("headers", [{"Origin": FOREIGN}, {"Origin": "null"},
                                     {"Referer": FOREIGN + "/page.html"},
                                     {"Origin": "http://127.0.0.1:1"}])   # same host, another port
def test_a_state_changing_request_from_a_foreign_page_is_refused(served, headers):
    _, client = served
    files = {"doc": ("a.txt", b"x")}
    answer = client.post("/api/v1/executions/company.team/victim", files=files, headers=headers)
    assert answer.status_code == 403, answer.text
    assert "cross-origin" in answer.json()["message"]
    flow = FLOW.replace("victim", "planted")
    assert client.post("/api/v1/flows", content=flow, headers={**YAML, **headers}).status_code == 403
    assert client.delete("/api/v1/flows/company.team/victim", headers=headers).status_code == 403
    assert client.post("/api/v1/executions/webhook/company.team/hooked/s3cr3t", headers=headers).status_code == 403
    assert client.get("/api/v1/executions/webhook/company.team/hooked/s3cr3t", headers=headers).status_code == 403
    assert executions(client) == 0
    assert client.get("/api/v1/flows/company.team/planted").status_code == 404
    assert client.get("/api/v1/flows/company.team/victim").status_code == 200


def test_the_servers_own_origin_and_clients_without_one_work(served):
    server, client = served
    own = {"Origin": server.url}
    assert client.post("/api/v1/executions/company.team/victim", headers=own).status_code == 200
    assert client.post("/api/v1/executions/company.team/victim", headers={"Referer": server.url + "/x"}
                       ).status_code == 200
    assert client.post("/api/v1/executions/company.team/victim?wait=true").json()["state"]["current"] == "SUCCESS"
    assert client.post("/api/v1/executions/webhook/company.team/hooked/s3cr3t").status_code == 200
    # a cross-origin GET is not state-changing: the page cannot read it without CORS, so it is answered
    assert client.get("/api/v1/flows/search", headers={"Origin": FOREIGN}).status_code == 200
    assert executions(client) == 4


def test_no_cors_headers_unless_an_origin_is_allowed(served):
    _, client = served
    answer = client.get("/api/v1/flows/search", headers={"Origin": FOREIGN})
    assert not any(name.lower().startswith("access-control-") for name in answer.headers)
    preflight = client.options("/api/v1/flows", headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code != 204
    assert "access-control-allow-origin" not in preflight.headers


def test_an_allowed_origin_gets_cors_and_may_change_things(tmp_path, monkeypatch):
    monkeypatch.setenv("KESTRA_NB_ALLOWED_ORIGINS", "https://notebooks.example")
    for _, client in start(tmp_path, allow_origins=(FOREIGN + "/",)):
        answer = client.post("/api/v1/executions/company.team/victim", headers={"Origin": FOREIGN})
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == FOREIGN
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in answer.headers["Vary"]
        preflight = client.options("/api/v1/flows", headers={
            "Origin": "https://notebooks.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://notebooks.example"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
        refused = client.post("/api/v1/executions/company.team/victim", headers={"Origin": "http://127.0.0.3:1"})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_a_malformed_allowed_origin_stops_the_cli_with_a_message(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kestra_nb.cli", "server", "--port", "0", "--home",
                           str(tmp_path / "h"), "--allow-origin", "not an origin"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "origin is scheme://host[:port]" in done.stderr


# ---------------------------------------------------------------------------------------- content type

@pytest.mark.parametrize("path", ["/api/v1/flows", "/api/v1/flows/validate"])
def test_a_body_without_content_type_is_415(served, path):
    _, client = served
    request = client.build_request("POST", path, content=FLOW.replace("victim", "untyped").encode())
    assert "Content-Type" not in request.headers
    answer = client.send(request)
    assert answer.status_code == 415, answer.text
    assert "Content Type [none] not allowed" in answer.json()["message"]
    assert client.get("/api/v1/flows/company.team/untyped").status_code == 404


def test_json_routes_refuse_an_untyped_body_but_take_an_empty_one(served):
    _, client = served
    doc = client.post("/api/v1/executions/company.team/victim?wait=true").json()
    labels = f"/api/v1/executions/{doc['id']}/labels"
    assert client.post(labels, content=b'[{"key":"a","value":"b"}]').status_code == 415
    assert client.post(labels, json=[{"key": "a", "value": "b"}]).status_code == 200
    # the seed's curl calls: a POST without a body (and so without a Content-Type) runs the flow
    assert client.post("/api/v1/executions/company.team/victim").status_code == 200


def test_a_multipart_post_from_a_page_with_text_plain_is_refused(served):
    """What `fetch(url, {mode: 'no-cors', body: text})` sends: text/plain is not a flow's media type."""
    _, client = served
    answer = client.post("/api/v1/flows", content=FLOW.replace("victim", "plain"),
                         headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert answer.status_code == 415
    assert client.get("/api/v1/flows/company.team/plain").status_code == 404
