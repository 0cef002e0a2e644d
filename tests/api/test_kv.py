"""KV endpoints with the bodies each client sends: text/plain (kestrapy), application/json (generated clients)."""
from __future__ import annotations

import pytest

N = "/api/v1/main/namespaces"
TEXT = {"Content-Type": "text/plain"}


@pytest.mark.parametrize("body, content_type, kind, value", [
    ("hello", "text/plain", "STRING", "hello"),
    ("hello world", "text/plain", "STRING", "hello world"),
    ('"hello"', "application/json", "STRING", "hello"),
    ('{"a": 1}', "text/plain", "JSON", {"a": 1}),
    ("[1, 2]", "application/json", "JSON", [1, 2]),
    ("42", "text/plain", "NUMBER", 42),
    ("1.5", "text/plain", "NUMBER", 1.5),
    ("true", "text/plain", "BOOLEAN", True),
    ("2024-01-02T03:04:05Z", "text/plain", "DATETIME", "2024-01-02T03:04:05Z"),
    ("2024-01-02", "text/plain", "DATE", "2024-01-02"),
    ("Wörld ✓", "text/plain", "STRING", "Wörld ✓"),
])
def test_put_then_get_typed(http, body, content_type, kind, value):
    r = http.put(f"{N}/company.team/kv/k", content=body.encode(), headers={"Content-Type": content_type})
    assert r.status_code == 200 and r.content == b""
    got = http.get(f"{N}/company.team/kv/k")
    assert got.status_code == 200
    doc = got.json()
    assert doc["type"] == kind and doc["value"] == value and doc["revision"] == 1 and doc["updated"].endswith("Z")


def test_kv_revision_list_inheritance_delete(http):
    http.put(f"{N}/company/kv/shared", content=b"parent", headers=TEXT)
    http.put(f"{N}/company/kv/only_parent", content=b"p", headers=TEXT)
    http.put(f"{N}/company.team/kv/shared", content=b"child", headers=TEXT)
    http.put(f"{N}/company.team/kv/shared", content=b"child2", headers=TEXT)
    assert http.get(f"{N}/company.team/kv/shared").json()["revision"] == 2
    listed = http.get(f"{N}/company.team/kv").json()
    assert [e["key"] for e in listed] == ["shared"] and listed[0]["namespace"] == "company.team"
    assert listed[0]["version"] == 2 and "creationDate" in listed[0] and "updateDate" in listed[0]
    inherited = http.get(f"{N}/company.team/kv/inheritance").json()
    assert {(e["namespace"], e["key"]) for e in inherited} == {("company.team", "shared"), ("company", "only_parent")}
    r = http.delete(f"{N}/company.team/kv/shared")
    assert r.status_code == 200 and r.json() is True
    assert http.delete(f"{N}/company.team/kv/shared").json() is False
    r = http.get(f"{N}/company.team/kv/shared")
    assert r.status_code == 404
    assert r.json()["message"] == "Not Found: No value found for key 'shared' in namespace 'company.team'"
    r = http.request("DELETE", f"{N}/company/kv", json={"keys": ["shared", "missing"]})
    assert r.status_code == 200 and r.json() == {"keys": ["shared"]}


def test_kv_ttl_and_bad_bodies(http):
    r = http.put(f"{N}/company.team/kv/t", content=b"x", headers={**TEXT, "ttl": "PT1H"})
    assert r.status_code == 200
    assert "expirationDate" in http.get(f"{N}/company.team/kv").json()[0]
    assert http.put(f"{N}/company.team/kv/t", content=b"x", headers={**TEXT, "ttl": "soon"}).status_code == 400
    assert http.put(f"{N}/company.team/kv/t", content=b"", headers=TEXT).status_code == 422
    assert http.put(f"{N}/company.team/kv/t", content=b"x", headers={"Content-Type": "image/png"}).status_code == 415
