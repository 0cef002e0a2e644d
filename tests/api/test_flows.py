"""Flows API over real HTTP: create/update/get/delete, revisions, list, search, validate, namespaces."""
from __future__ import annotations

import json

import pytest

from tests.api.conftest import INPUTS_FLOW, SEED, YAML

F = "/api/v1/main/flows"


def test_create_returns_flow_with_source(http):
    r = http.post(F, content=SEED.encode(), headers=YAML)
    assert r.status_code == 200
    doc = r.json()
    assert doc["id"] == "myflow" and doc["namespace"] == "company.team" and doc["revision"] == 1
    assert doc["tenantId"] == "main" and doc["disabled"] is False and doc["deleted"] is False
    assert doc["source"] == SEED
    assert doc["tasks"] == [{"id": "mytask", "type": "io.kestra.plugin.core.debug.Return",
                             "format": "hello from kestra"}]
    assert doc["outputs"] == [{"id": "mydata", "type": "STRING", "value": "{{ outputs.mytask.value }}",
                               "description": "return some data"}]
    assert list(doc)[:4] == ["id", "namespace", "revision", "tenantId"]


def test_create_existing_is_422_with_constraint(http):
    http.deploy(SEED)
    r = http.post(F, content=SEED.encode(), headers=YAML)
    assert r.status_code == 422
    body = r.json()
    assert body["message"] == "Invalid entity: flow.id: Flow id already exists"
    assert body["_embedded"]["errors"] == [{"message": "Flow id already exists", "path": "flow.id"}]
    assert body["_links"]["self"]["href"] == F


def test_invalid_flow_is_422_with_path_and_line(http):
    source = "id: bad\nnamespace: company.team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
    r = http.post(F, content=source.encode(), headers=YAML)
    assert r.status_code == 422
    body = r.json()
    assert body["message"].startswith("Invalid entity: tasks[0].message: must not be null (line 4, column ")
    [error] = body["_embedded"]["errors"]
    assert error["path"] == "tasks[0].message" and error["line"] == 4
    r = http.post(F, content=b"id: [unclosed\n", headers=YAML)
    assert r.status_code == 422 and "Invalid YAML" in r.json()["message"] and "(line 1, column 5)" in r.json()["message"]
    assert http.post(F, content=b"", headers=YAML).status_code == 422


def test_create_from_deprecated_json_and_415(http):
    flow = {"id": "fromjson", "namespace": "company.team", "revision": 9, "tasks": [
        {"id": "t", "type": "io.kestra.plugin.core.debug.Return", "format": "x"}]}
    r = http.post(F, json=flow)
    assert r.status_code == 200 and r.json()["revision"] == 1 and r.json()["tasks"][0]["format"] == "x"
    r = http.post(F, content=SEED.encode(), headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    assert http.post(F, content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 422


def test_update_bumps_revision_and_identical_source_keeps_it(http):
    http.deploy(SEED)
    changed = SEED.replace("hello from kestra", "hello again")
    r = http.put(f"{F}/company.team/myflow", content=changed.encode(), headers=YAML)
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.json()["source"] == changed
    r = http.put(f"{F}/company.team/myflow", content=changed.encode(), headers=YAML)
    assert r.json()["revision"] == 2
    r = http.put(f"{F}/company.team/other", content=changed.encode(), headers=YAML)
    assert r.status_code == 404
    http.deploy(SEED.replace("id: myflow", "id: other"))
    r = http.put(f"{F}/company.team/other", content=changed.encode(), headers=YAML)
    assert r.status_code == 422 and "Illegal flow id update" in r.json()["message"]
    r = http.put(f"{F}/company.team/myflow", content=changed.replace("company.team", "company.x").encode(),
                 headers=YAML)
    assert r.status_code == 422 and "Illegal namespace update" in r.json()["message"]


def test_get_flow_source_revision_and_404(http):
    http.deploy(SEED)
    http.put(f"{F}/company.team/myflow", content=SEED.replace("hello", "bye").encode(), headers=YAML)
    doc = http.get(f"{F}/company.team/myflow").json()
    assert doc["revision"] == 2 and "source" not in doc
    doc = http.get(f"{F}/company.team/myflow", params={"source": "true", "revision": 1}).json()
    assert doc["revision"] == 1 and doc["source"] == SEED
    # the generated client always sends both parameters
    assert http.get(f"{F}/company.team/myflow?source=true&allowDeleted=false").status_code == 200
    r = http.get(f"{F}/company.team/nope")
    assert r.status_code == 404 and r.json()["message"].startswith("Not Found")
    assert http.get(f"{F}/company.team/myflow", params={"revision": 5}).status_code == 404


def test_delete_is_soft_and_revisions_continue(http):
    http.deploy(SEED)
    r = http.delete(f"{F}/company.team/myflow")
    assert r.status_code == 204 and r.content == b""
    assert http.get(f"{F}/company.team/myflow").status_code == 404
    deleted = http.get(f"{F}/company.team/myflow", params={"allowDeleted": "true"}).json()
    assert deleted["deleted"] is True and deleted["revision"] == 2
    assert http.delete(f"{F}/company.team/myflow").status_code == 404
    assert http.post("/api/v1/main/executions/company.team/myflow").status_code == 404
    assert http.post(F, content=SEED.encode(), headers=YAML).json()["revision"] == 3
    revisions = http.get(f"{F}/company.team/myflow/revisions").json()
    assert [r["revision"] for r in revisions] == [1, 3] and all("source" in r for r in revisions)
    all_revisions = http.get(f"{F}/company.team/myflow/revisions", params={"allowDelete": "true"}).json()
    assert [r["revision"] for r in all_revisions] == [1, 2, 3]
    assert http.get(f"{F}/company.team/nope/revisions").status_code == 404


def test_list_search_and_distinct_namespaces(http):
    http.deploy(SEED)
    http.deploy(SEED.replace("id: myflow", "id: second"))
    http.deploy(SEED.replace("company.team", "company.team.sub").replace("id: myflow", "id: third")
                + "labels:\n  env: prod\n  tier: 1\n")
    listed = http.get(f"{F}/company.team").json()
    assert [f["id"] for f in listed] == ["myflow", "second"] and "source" not in listed[0]
    search = http.get(f"{F}/search", params={"filters[namespace][PREFIX]": "company.team"}).json()
    assert search["total"] == 3 and [f["id"] for f in search["results"]] == ["myflow", "second", "third"]
    third = search["results"][2]
    assert third["labels"] == [{"key": "env", "value": "prod"}, {"key": "tier", "value": "1"}]
    assert http.get(f"{F}/search", params={"filters[namespace][EQUALS]": "company.team"}).json()["total"] == 2
    assert http.get(f"{F}/search", params={"namespace": "company.team"}).json()["total"] == 3
    assert http.get(f"{F}/search", params={"filters[q][EQUALS]": "sec"}).json()["results"][0]["id"] == "second"
    assert http.get(f"{F}/search", params={"filters[labels][EQUALS][env]": "prod"}).json()["total"] == 1
    assert http.get(f"{F}/search", params={"labels": "tier:1"}).json()["total"] == 1
    page = http.get(f"{F}/search", params={"page": 2, "size": 2, "sort": "id:desc"}).json()
    assert page["total"] == 3 and [f["id"] for f in page["results"]] == ["myflow"]
    assert http.get(f"{F}/search", params={"sort": "tasks:asc"}).status_code == 422
    assert http.get(f"{F}/distinct-namespaces").json() == ["company.team", "company.team.sub"]
    assert http.get(f"{F}/distinct-namespaces", params={"q": "sub"}).json() == ["company.team.sub"]


def test_input_defaults_are_strings_in_flow_json(http):
    doc = http.deploy(INPUTS_FLOW)
    count = next(i for i in doc["inputs"] if i["id"] == "count")
    assert count["defaults"] == "1"


def test_validate_several_documents(http):
    http.deploy(SEED)
    body = SEED + "\n---\n" + ("id: bad\nnamespace: company.team\ntasks:\n  - id: a\n"
                               "    type: io.kestra.plugin.core.debug.Nope\n") + "---\n" + (
        "id: myflow\nnamespace: company.team\nrevision: 1\ntasks:\n  - id: old\n"
        "    type: io.kestra.core.tasks.log.Log\n    message: hi\n")
    r = http.post(f"{F}/validate", content=body.encode(), headers=YAML)
    assert r.status_code == 200
    first, second, third = r.json()
    assert first == {"index": 0, "flow": "myflow", "namespace": "company.team", "outdated": False,
                     "deprecationPaths": [], "warnings": [], "infos": []}
    assert second["index"] == 1 and second["flow"] == "bad"
    assert "Invalid type: io.kestra.plugin.core.debug.Nope" in second["constraints"] and "line 5" in \
        second["constraints"]
    assert third["outdated"] is True and third["infos"] and "constraints" not in third
    assert http.post(f"{F}/validate", content=b"", headers=YAML).json() == []


@pytest.mark.parametrize("path", ["/api/v1/flows", "/api/v1/main/flows"])
def test_tenant_less_and_tenant_paths_are_the_same_flows(http, path):
    r = http.post(path, content=SEED.encode(), headers=YAML)
    assert r.status_code == 200
    assert http.get("/api/v1/flows/company.team/myflow").json()["revision"] == 1
    assert http.get("/api/v1/main/flows/company.team/myflow").json()["revision"] == 1
    assert http.get("/api/v1/other/flows/company.team/myflow").status_code == 400
    json.dumps(r.json())


NS_FLOW = "id: {id}\nnamespace: {ns}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: {fmt}\n"


def test_a_namespace_update_creates_or_updates_and_runs_again(http):
    """`POST /flows/{namespace}`: the deploy call a user copies works every time (Kestra's namespace update)."""
    body = NS_FLOW.format(id="a", ns="company.team", fmt="one") + "---\n" + NS_FLOW.format(id="b", ns="company.team",
                                                                                      fmt="two")
    url = F + "/company.team"
    for _ in range(2):   # created, then the same again: no error, no new revision
        r = http.post(url, params={"delete": "false"}, content=body.encode(), headers=YAML)
        assert r.status_code == 200, r.text
        assert [(f["id"], f["revision"]) for f in r.json()] == [("a", 1), ("b", 1)]
        assert "source" not in r.json()[0]
    changed = NS_FLOW.format(id="a", ns="company.team", fmt="uno")
    r = http.post(url, params={"delete": "false"}, content=changed.encode(), headers=YAML)
    assert [(f["id"], f["revision"]) for f in r.json()] == [("a", 2)]
    assert http.get(F + "/company.team/b").status_code == 200   # delete=false keeps the others
    r = http.post(url, content=changed.encode(), headers=YAML)   # delete defaults to true, as in Kestra
    assert r.status_code == 200 and http.get(F + "/company.team/b").status_code == 404
    assert http.get(F + "/company.team/a").json()["revision"] == 2


@pytest.mark.parametrize("body, fragment", [
    (NS_FLOW.format(id="a", ns="other.ns", fmt="x"), "flows[0].namespace: Flow namespace is invalid: `other.ns`"),
    (NS_FLOW.format(id="a", ns="company.team", fmt="x") * 1 + "---\n" + NS_FLOW.format(id="a", ns="company.team",
                                                                                         fmt="y"),
     "flows[1].id: Duplicate flow id `a`"),
    ("id: a\nnamespace: company.team\ntasks: []\n---\nid: b\nnamespace: company.team\n",
     "flows[0].tasks"),
    ("", "flows: must not be empty"),
])
def test_a_bad_namespace_update_stores_nothing(http, body, fragment):
    r = http.post(F + "/company.team", params={"delete": "false"}, content=body.encode(), headers=YAML)
    assert r.status_code == 422 and fragment in r.json()["message"], r.text
    assert http.get(F + "/company.team").json() == []


def test_a_bad_namespace_update_says_where_in_each_document(http):
    body = NS_FLOW.format(id="a", ns="company.team", fmt="x") + "---\n" + \
        "id: b\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
    r = http.post(F + "/company.team", params={"delete": "false"}, content=body.encode(), headers=YAML)
    assert r.status_code == 422
    assert r.json()["_embedded"]["errors"] == [
        {"message": r.json()["_embedded"]["errors"][0]["message"], "path": "flows[1].tasks[0].message",
         "line": 4, "column": 5}]   # (the line in its own document)
    r = http.post(F + "/company.team", content=NS_FLOW.format(id="a", ns="other", fmt="x").encode(), headers=YAML)
    assert r.json()["_embedded"]["errors"][0] | {"message": ""} == {"message": "", "path": "flows[0].namespace",
                                                                      "line": 2, "column": 1}


def test_bulk_update_spans_namespaces_and_deletes_the_tenants_others_by_default(http):
    """`POST /flows/bulk` (Kestra's FlowController.bulkUpdate, what `kestra flow updates DIR` sends)."""
    http.deploy(NS_FLOW.format(id="old", ns="elsewhere", fmt="x"))
    body = NS_FLOW.format(id="a", ns="company.team", fmt="one") + "---\n" + NS_FLOW.format(id="a", ns="other.ns",
                                                                                      fmt="two")
    r = http.post(F + "/bulk", params={"delete": "false"}, content=body.encode(), headers=YAML)
    assert r.status_code == 200, r.text
    assert [(f["namespace"], f["id"], f["revision"]) for f in r.json()] == [("company.team", "a", 1),
                                                                             ("other.ns", "a", 1)]
    assert http.get(F + "/elsewhere/old").status_code == 200
    r = http.post(F + "/bulk", content=body.encode(), headers=YAML)   # delete defaults to true
    assert r.status_code == 200 and http.get(F + "/elsewhere/old").status_code == 404
    twice = body + "---\n" + NS_FLOW.format(id="a", ns="other.ns", fmt="three")
    r = http.post(F + "/bulk", params={"delete": "false"}, content=twice.encode(), headers=YAML)
    assert r.status_code == 422 and "flows[2].id: Duplicate flow id `a`" in r.json()["message"]
    assert http.get(F + "/other.ns/a").json()["revision"] == 1   # nothing stored
