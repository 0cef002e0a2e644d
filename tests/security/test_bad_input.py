"""Bad input is a 4xx in Kestra's envelope, never a 500 (what fuzzing and hand tries found), and small leaks:
webhook 404s that tell flows apart, namespaces whose files could not be reached."""
from __future__ import annotations

import httpx
import pytest

from kestra_nb.model.ids import namespace_problem
from kestra_nb.server import serve_in_thread

YAML = {"Content-Type": "application/x-yaml"}
JSON = {"Content-Type": "application/json"}
FLOW = """id: victim
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: hello
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    server, thread = serve_in_thread(tmp_path_factory.mktemp("home"), port=0, grace=1)
    http = httpx.Client(base_url=server.url, timeout=30)
    assert http.post("/api/v1/flows", content=FLOW, headers=YAML).status_code == 200
    try:
        yield http
    finally:
        http.close()
        server.stop()
        thread.join(30)


@pytest.fixture(scope="module")
def execution_id(client):
    return client.post("/api/v1/executions/company.team/victim?wait=true").json()["id"]


def envelope(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert body["_links"]["self"]["href"].startswith("/api/v1/")
    assert "Error:" not in body["message"].split(":")[0] and "Traceback" not in answer.text
    return body["message"]


@pytest.mark.parametrize("body", ["null", "", "{}", '"text"', "[1]", "1"])
def test_labels_latest_and_kv_delete_take_any_json_body(client, execution_id, body):
    for method, path in [("POST", f"/api/v1/executions/{execution_id}/labels"), ("POST", "/api/v1/executions/latest"),
                         ("DELETE", "/api/v1/namespaces/company.team/kv")]:
        answer = client.request(method, path, content=body, headers=JSON)
        assert answer.status_code in (200, 400, 422), (method, path, body, answer.text)
        if answer.status_code != 200:
            assert "Invalid json" in envelope(answer, answer.status_code) or "Illegal argument" in answer.json()["message"]


@pytest.mark.parametrize("query", ["page=99999999999999999999999", "size=99999999999999999999", "page=2147483648",
                                   "size=-99999999999999999999", "timeRange=PT99999999999999999H",
                                   "timeRange=PT99999999999999999999999S", "startDate=99999-01-01T00:00:00Z"])
def test_huge_query_values_are_400(client, query):
    message = envelope(client.get(f"/api/v1/executions/search?{query}"), 400)
    assert message.startswith("Bad Request: Failed to convert argument")


def test_huge_revision_and_timeout_are_400(client):
    envelope(client.get("/api/v1/flows/company.team/victim?revision=999999999999999999999999"), 400)
    envelope(client.post("/api/v1/executions/company.team/victim?wait=true&timeout=PT99999999999999999999S"), 400)
    assert client.get("/api/v1/executions/search").status_code == 200


def test_a_non_latin1_id_in_logs_download(client):
    answer = client.get("/api/v1/logs/%C3%A9%E2%82%AC/download")
    assert answer.status_code in (200, 404), answer.text
    if answer.status_code == 200:
        assert "filename*=UTF-8''" in answer.headers["Content-Disposition"]


def test_the_logs_of_an_execution_that_exists_download_under_its_id(client, execution_id):
    answer = client.get(f"/api/v1/logs/{execution_id}/download")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{execution_id}.log"'


def test_following_the_logs_of_an_unknown_execution_is_404(client):
    message = envelope(client.get("/api/v1/logs/nope/follow", timeout=10), 404)
    assert "nope" in message


def test_a_json_body_nested_10000_deep_is_400(client, execution_id):
    deep = "[" * 10_000 + "]" * 10_000
    answer = client.post(f"/api/v1/executions/{execution_id}/labels", content=deep, headers=JSON)
    message = envelope(answer, 400)
    assert message.startswith("Invalid json: nested deeper than")


# ------------------------------------------------------------------------------------------ namespaces

@pytest.mark.parametrize("namespace", ["rt..x", "rt.", "company.team.", "Company", ".x", "-x", "a" * 151])
def test_namespaces_kestra_would_refuse_are_refused_where_things_are_written(client, namespace):
    assert namespace_problem(namespace) is not None
    answer = client.put(f"/api/v1/namespaces/{namespace}/kv/key", content='"v"', headers=JSON)
    assert "namespace" in envelope(answer, 422).lower()
    answer = client.post(f"/api/v1/executions/{namespace}/victim")
    envelope(answer, 422)


@pytest.mark.parametrize("namespace", ["company", "company.team", "a-b_c.d9", "0.1", "x" * 150, "a._b", "a.-b"])
def test_good_namespaces_pass(namespace):
    assert namespace_problem(namespace) is None


@pytest.mark.parametrize("namespace", ["rt..x", "rt."])
def test_a_flow_in_a_namespace_with_an_empty_part_is_refused(client, namespace):
    answer = client.post("/api/v1/flows", content=FLOW.replace("company.team", namespace), headers=YAML)
    message = envelope(answer, 422)
    assert "namespace: must not have an empty part between dots" in message and "line 2" in message
