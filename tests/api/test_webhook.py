"""Webhook triggers over real HTTP (spec §2.13): a standalone server on a loopback port, its store in a temp dir."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kestra_nb.api.auth import BasicAuth
from kestra_nb.api.webhook import parse_body
from kestra_nb.server import Server, serve_in_thread
from tests.api.conftest import SEED, Http

HOOK = "/api/v1/main/executions/webhook/company.team"

ECHO = """id: echo
namespace: company.team
labels:
  team: data
variables:
  secret: s3cr3t
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.name ?? trigger.body ?? '' }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.ret.value }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: plainkey
  - id: waiting
    type: io.kestra.plugin.core.trigger.Webhook
    key: "wait-{{ vars.secret }}"
    wait: true
    returnOutputs: true
  - id: full
    type: io.kestra.plugin.core.trigger.Webhook
    key: full
    wait: true
  - id: picky
    type: io.kestra.plugin.core.trigger.Webhook
    key: picky
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.body.ok == true }}"
  - id: off
    type: io.kestra.plugin.core.trigger.Webhook
    key: off
    disabled: true
  - id: text
    type: io.kestra.plugin.core.trigger.Webhook
    key: text
    wait: true
    returnOutputs: true
    responseContentType: text/plain
    responseCode: 201
"""

FAILING = """id: failing
namespace: company.team
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: no
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
    wait: true
  - id: coded
    type: io.kestra.plugin.core.trigger.Webhook
    key: coded
    wait: true
    responseCode: 202
"""


@pytest.fixture
def hooks(http: Http) -> Http:
    http.deploy(ECHO)
    http.deploy(FAILING)
    return http


def test_wait_return_outputs(hooks):
    r = hooks.post(f"{HOOK}/echo/wait-s3cr3t", json={"name": "Ada"})   # a templated key, rendered
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"said": "Ada"}


def test_answer_without_wait_is_kestra_1x_webhook_response(hooks):
    r = hooks.post(f"{HOOK}/echo/plainkey?x=1&x=2&y=z", content=b"just text", headers={"X-Custom": "v"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"tenantId", "id", "namespace", "flowId", "flowRevision", "trigger", "labels", "state", "url"}
    assert body["tenantId"] == "main" and body["flowId"] == "echo" and body["flowRevision"] == 1
    assert body["state"]["current"] == "CREATED"
    assert body["url"].endswith(f"/ui/main/executions/company.team/echo/{body['id']}")
    trigger = body["trigger"]
    assert trigger["id"] == "hook" and trigger["type"] == "io.kestra.plugin.core.trigger.Webhook"
    variables = trigger["variables"]
    assert variables["body"] == "just text"
    assert variables["parameters"] == {"x": ["1", "2"], "y": ["z"]}
    assert variables["headers"]["X-Custom"] == ["v"]
    labels = {label["key"]: label["value"] for label in body["labels"]}
    assert labels["team"] == "data" and labels["system.from"] == "trigger"   # flow labels applied
    done = hooks.wait_state(body["id"], "SUCCESS")
    assert done["outputs"] == {"said": "just text"} and done["trigger"] == trigger


def test_get_with_parameters_and_full_answer_when_waiting(hooks):
    r = hooks.get(f"{HOOK}/echo/full", params={"name": "q"})
    assert r.status_code == 200
    body = r.json()
    assert body["state"]["current"] == "SUCCESS" and body["outputs"] == {"said": ""}
    assert body["trigger"]["variables"]["parameters"] == {"name": ["q"]}
    assert "body" not in body["trigger"]["variables"]   # no body: none in the variables
    r = hooks.put(f"{HOOK}/echo/full", json=[1, 2])
    assert r.status_code == 200 and r.json()["trigger"]["variables"]["body"] == [1, 2]


def test_unknown_flow_key_disabled_trigger_and_methods(hooks):
    unknown = hooks.post(f"{HOOK}/nope/plainkey")   # an unknown flow and a wrong key are the same answer
    assert unknown.status_code == 404 and unknown.json()["message"] == "Not Found: Webhook not found"
    r = hooks.post(f"{HOOK}/echo/wrong")
    assert r.status_code == 404 and r.json()["message"] == "Not Found: Webhook not found"
    assert r.headers.keys() == unknown.headers.keys() and len(r.content) - len(unknown.content) == len("echo/wrong") - len(
        "nope/plainkey")   # only the path in `_links` differs
    r = hooks.post(f"{HOOK}/echo/off")   # a disabled trigger has no webhook
    assert r.status_code == 404 and r.json()["message"] == "Not Found: Webhook not found"
    r = hooks.post(f"{HOOK}/echo/wait-{{{{ vars.secret }}}}")   # the written template is not the key
    assert r.status_code == 404
    assert hooks.delete(f"{HOOK}/echo/plainkey").status_code == 405
    r = hooks.post("/api/v1/other/executions/webhook/company.team/echo/plainkey")
    assert r.status_code == 400 and "Tenant 'other'" in r.json()["message"]
    assert hooks.post("/api/v1/executions/webhook/company.team/echo/wait-s3cr3t", json={"name": "B"}).json() == {
        "said": "B"}   # the tenant-less form


def test_conditions_not_met_answer_204_without_execution(hooks):
    before = hooks.get("/api/v1/main/executions/search", params={"flowId": "echo"}).json()["total"]
    r = hooks.post(f"{HOOK}/echo/picky", json={"ok": False})
    assert r.status_code == 204 and r.content == b""
    r = hooks.post(f"{HOOK}/echo/picky", content=b"not json")
    assert r.status_code == 204
    assert hooks.get("/api/v1/main/executions/search", params={"flowId": "echo"}).json()["total"] == before
    r = hooks.post(f"{HOOK}/echo/picky", json={"ok": True})
    assert r.status_code == 200 and r.json()["trigger"]["id"] == "picky"


def test_failed_execution_with_wait_is_500_unless_response_code(hooks):
    r = hooks.post(f"{HOOK}/failing/k")
    assert r.status_code == 500
    assert r.json()["state"]["current"] == "FAILED"
    r = hooks.post(f"{HOOK}/failing/coded")
    assert r.status_code == 202 and r.json()["state"]["current"] == "FAILED"


def test_text_response_and_code(hooks):
    r = hooks.post(f"{HOOK}/echo/text", json={"name": "T"})
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == '{"said":"T"}'


def test_disabled_flow_is_409(hooks):
    r = hooks.put("/api/v1/main/flows/company.team/echo", content=ECHO.replace("labels:", "disabled: true\nlabels:"),
                  headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200, r.text
    r = hooks.post(f"{HOOK}/echo/plainkey")
    assert r.status_code == 409 and r.json()["message"] == "Illegal state: Requested Flow is disabled."
    r = hooks.post(f"{HOOK}/echo/wrong")   # without its key, a disabled flow is not told apart from no flow
    assert r.status_code == 404 and r.json()["message"] == "Not Found: Webhook not found"


def test_inputs_rendered_from_the_request(http):
    http.deploy("""id: withinputs
namespace: company.team
inputs:
  - id: n
    type: INT
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.n * 2 }}"
outputs:
  - id: twice
    type: STRING
    value: "{{ outputs.ret.value }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
    wait: true
    returnOutputs: true
    inputs:
      n: "{{ trigger.body.n }}"
""")
    assert http.post(f"{HOOK}/withinputs/k", json={"n": 21}).json() == {"twice": "42"}
    r = http.post(f"{HOOK}/withinputs/k", json={"n": "x"})   # a bad input: 422, as a create would answer
    assert r.status_code == 422 and "`n`" in r.json()["message"]


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[Server]:
    srv, thread = serve_in_thread(tmp_path / "home", auth=BasicAuth("admin@kestra.io", "Admin1234!"), grace=1)
    yield srv
    srv.stop()
    thread.join(15)


def test_webhook_is_open_while_the_api_needs_basic_auth(auth_server):
    creds = ("admin@kestra.io", "Admin1234!")
    with httpx.Client(base_url=auth_server.url, timeout=30) as c:
        hooked = SEED + """
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: open
    wait: true
    returnOutputs: true
"""
        assert c.post("/api/v1/main/flows", content=hooked.encode(),
                      headers={"Content-Type": "application/x-yaml"}).status_code == 401
        assert c.post("/api/v1/main/flows", content=hooked.encode(), headers={"Content-Type": "application/x-yaml"},
                      auth=creds).status_code == 200
        r = c.post("/api/v1/main/executions/webhook/company.team/myflow/open")
        assert r.status_code == 200 and r.json() == {"mydata": "hello from kestra"}
        assert c.get("/api/v1/main/executions/search").status_code == 401


def test_parse_body():
    assert parse_body(b"") is None
    assert parse_body(b'{"a": 1}') == {"a": 1}
    assert parse_body(b"[1]") == [1]
    assert parse_body(b"42") == "42" and parse_body(b'"s"') == '"s"'   # not an object or array: the text
    assert parse_body(b"\xff") == "\ufffd"
