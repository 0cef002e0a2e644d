"""`/ui/` on the standalone server: an execution JSON's `url` opens its page (the notebook's view, embedded as
JSON that no value can break out of), the page polls its view, and the assets are served; read-only, behind the
server's guard and Basic auth."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kestra_nb.server import serve_in_thread
from tests.api.conftest import SEED, SLEEP_FLOW, Http

MIME = "application/vnd.kestra.execution+json"

HOSTILE = """id: hostile
namespace: company.team
tasks:
  - id: evil
    type: io.kestra.plugin.core.debug.Return
    format: "</script><script>window.__pwned=1</script><!--"
outputs:
  - id: out
    type: STRING
    value: "{{ outputs.evil.value }}"
"""


def embedded(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="kn-state">(.*?)</script>', page, re.S)
    assert found, page
    return json.loads(found.group(1))


def test_the_url_of_an_execution_opens_its_page(http: Http) -> None:
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    r = http.get(doc["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=UTF-8"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    state = embedded(r.text)
    assert state["summary"]["id"] == doc["id"] and state["summary"]["state"] == "SUCCESS"
    view = json.loads(state["view"])
    assert view["outputs"] == doc["outputs"] and [row["task"] for row in view["runs"]] == ["mytask"]
    assert view["graph"]["c"][0]["tasks"][0]["id"] == "mytask"   # the flow's topology
    assert view["task_states"] == {"mytask": "SUCCESS"}
    assert '<script type="module" src="/ui/static/page.js">' in r.text
    # what the page polls while the execution runs: the same view
    polled = http.get(f"/ui/main/executions/{doc['id']}/view")
    assert polled.status_code == 200 and polled.json()["summary"] == state["summary"]
    assert polled.headers["cache-control"] == "no-store"


def test_the_assets_are_the_shared_modules(http: Http) -> None:
    root = Path(__file__).resolve().parents[2] / "kestra_nb" / "ui" / "static"
    for name, media in (("view.js", "text/javascript"), ("page.js", "text/javascript"), ("logs.js", "text/javascript"),
                        ("diff.js", "text/javascript"), ("flowedit.js", "text/javascript"),
                        ("topology.js", "text/javascript"), ("view.css", "text/css"), ("topology.css", "text/css")):
        r = http.get(f"/ui/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), name
        assert r.content == (root / name).read_bytes()
    for bad in ("/ui/static/../pages.py", "/ui/static/pages.py", "/ui/static/", "/ui/static/view.d.ts"):
        assert http.get(bad).status_code == 404, bad


def test_values_cannot_break_out_of_the_embedded_state(http: Http) -> None:
    http.deploy(HOSTILE)
    doc = http.run("company.team", "hostile")
    page = http.get(doc["url"]).text
    assert page.count("</script>") == 2 and "<!--" not in page   # the JSON's own and the module's
    assert "window.__pwned=1</script>" not in page
    view = json.loads(embedded(page)["view"])
    assert view["outputs"]["out"] == "</script><script>window.__pwned=1</script><!--"


@pytest.mark.parametrize("path, status", [
    ("/ui/main/executions/company.team/myflow/nope", 404),
    ("/ui/main/executions/nope/view", 404),
    ("/ui/main/executions/other.ns/myflow/{id}", 404),   # not that flow's
    ("/ui/main/somewhere", 404),
    ("/ui/main/namespaces/company.team/more", 404),
    ("/ui/other/executions/changes", 404),
    ("/ui/main/executions/company.team/myflow/{id}/logs/more", 404),
])
def test_unknown_pages_are_404_json(http: Http, path: str, status: int) -> None:
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    r = http.get(path.format(id=doc["id"]))
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    assert "Traceback" not in r.text


def test_the_ui_is_read_only(http: Http) -> None:
    http.deploy(SEED)
    doc = http.run("company.team", "myflow")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert http.request(method, doc["url"]).status_code == 405


def test_the_ui_follows_the_servers_guard_and_auth(tmp_path: Path) -> None:
    from kestra_nb.api.auth import BasicAuth

    server, thread = serve_in_thread(tmp_path / "home", grace=1, auth=BasicAuth.parse("ada:secret"))
    try:
        with httpx.Client(base_url=server.url, timeout=30, auth=("ada", "secret")) as client:
            assert client.post("/api/v1/main/flows", content=SLEEP_FLOW.encode(),
                               headers={"Content-Type": "application/x-yaml"}).status_code == 200
            doc = client.post("/api/v1/main/executions/company.team/sleepy").json()
            assert client.get(doc["url"]).status_code == 200
            # a page whose name resolves to 127.0.0.1 (DNS rebinding) reads nothing
            assert client.get(doc["url"], headers={"Host": "evil.example"}).status_code == 403
            client.delete(f"/api/v1/main/executions/{doc['id']}/kill")
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            r = anonymous.get(doc["url"])
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
            assert anonymous.get("/ui/static/view.js").status_code == 401
    finally:
        server.stop()
        thread.join(15)


SCHEDULED = """id: nightly
namespace: company.team
triggers:
  - id: every_night
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"""


def test_the_app_pages_and_a_flows_graph(http: Http) -> None:
    for path in ("/ui/", "/ui/main", "/ui/main/executions", "/ui/main/flows", "/ui/main/flows/company.team/nightly",
                 "/ui/main/namespaces", "/ui/main/namespaces/company.team",
                 "/ui/main/executions/company.team/nightly/anid/logs"):
        r = http.get(path)
        assert r.status_code == 200 and '<script type="module" src="/ui/static/app.js">' in r.text, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert embedded(r.text)["colors"]["SUCCESS"] == "#029E73"
    http.deploy(SCHEDULED)
    graph = http.get("/ui/main/flows/company.team/nightly/graph").json()
    assert graph["revision"] == 1 and graph["graph"]["c"][0]["tasks"][0]["id"] == "t"
    (trigger,) = graph["triggers"]
    assert trigger["id"] == "every_night" and re.fullmatch(r"\d{4}-\d\d-\d\dT02:00:00Z", trigger["next"]), trigger
    r = http.get("/ui/main/flows/company.team/nope/graph")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert http.get("/ui/other/flows").status_code == 404   # one tenant is served


def _next_event(lines: Iterator[str]) -> str:
    """The id of the stream's next event (Kestra's framing: `id:` then `data:`)."""
    for line in lines:
        if line.startswith("id: "):
            return line[4:]
    raise AssertionError("the stream ended")


def test_the_executions_lists_stream_says_when_something_changed(http: Http, tmp_path: Path) -> None:
    from kestra_nb import Engine

    http.deploy(SEED)
    # a change committed by another process sharing the store (a kernel's engine): seen through the store
    with http.client.stream("GET", "/ui/main/executions/changes", timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        lines = r.iter_lines()
        assert _next_event(lines) == "start"
        other = Engine(tmp_path / "home")
        try:
            assert other.run(SEED).state == "SUCCESS"
        finally:
            other.close()
        assert _next_event(lines) == "changed"
    # a change this server's engine commits: seen through its events
    with http.client.stream("GET", "/ui/main/executions/changes", timeout=30) as r:
        lines = r.iter_lines()
        assert _next_event(lines) == "start"
        http.run("company.team", "myflow")
        assert _next_event(lines) == "changed"
