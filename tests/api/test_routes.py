"""The route table: both path forms, Micronaut's precedence, and the OpenAPI document matching it both ways."""
from __future__ import annotations

import httpx

from kestra_nb.api.openapi import document
from kestra_nb.api.routes import ROUTES, Match, Router, expand, served_routes


class _FullEngine:
    """An engine with every optional operation, to serve the whole table."""

    async def restart_async(self, *a): ...
    async def replay_async(self, *a): ...
    async def resume_async(self, *a): ...
    async def pause_async(self, *a): ...


def test_every_tenant_route_has_a_tenant_less_alias():
    routes = expand(ROUTES)
    keys = {(r.method, r.path) for r in routes}
    for route in ROUTES:
        if "{tenant}" in route.path:
            assert (route.method, route.path.replace("/{tenant}", "")) in keys
    assert len(keys) == len(routes), "a route is declared twice"


def test_precedence_literal_beats_variable():
    router = Router(expand(ROUTES))
    m = router.match("POST", "/api/v1/main/executions/abc/restart")
    assert isinstance(m, Match) and m.route.operation == "restart_execution" and m.variables["executionId"] == "abc"
    m = router.match("POST", "/api/v1/main/executions/company.team/myflow")
    assert isinstance(m, Match) and m.route.operation == "create_execution"
    assert m.variables == {"tenant": "main", "namespace": "company.team", "id": "myflow"}
    m = router.match("GET", "/api/v1/executions/search")
    assert isinstance(m, Match) and m.route.operation == "search_executions" and "tenant" not in m.variables
    m = router.match("GET", "/api/v1/flows/search")
    assert m.route.operation == "search_flows"
    m = router.match("GET", "/api/v1/main/flows/company.team")
    assert m.route.operation == "list_flows" and m.variables["namespace"] == "company.team"
    m = router.match("GET", "/api/v1/main/namespaces/a.b/kv/inheritance")
    assert m.route.operation == "list_kv_inheritance"
    m = router.match("GET", "/api/v1/main/namespaces/a.b/kv/my%20key")
    assert m.route.operation == "get_kv" and m.variables["key"] == "my key"
    # a POST to /{id}/kill is not "create an execution of flow `kill`": kill exists for DELETE only
    assert router.match("POST", "/api/v1/main/executions/abc/kill").route.operation == "create_execution"
    assert router.match("PATCH", "/api/v1/main/executions/search") == "method"
    assert router.match("GET", "/api/v1/main/nothing/here/at/all") is None


def test_routes_needing_engine_operations_are_served_only_when_the_engine_has_them():
    class Bare:
        pass

    bare = {r.operation for r in served_routes(Bare())}
    assert "restart_execution" not in bare and "resume_execution" not in bare and "kill_execution" in bare
    full = {r.operation for r in served_routes(_FullEngine())}
    assert {"restart_execution", "replay_execution", "resume_execution", "pause_execution"} <= full


def test_openapi_has_every_route_and_only_them():
    routes = served_routes(_FullEngine())
    doc = document(routes)
    in_table = {(r.method.lower(), r.path) for r in routes}
    in_doc = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert in_table == in_doc
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    assert doc["openapi"].startswith("3.")


def test_openapi_is_served_and_matches_the_table(http, server):
    r = http.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    served = {(rt.method.lower(), rt.path) for rt in served_routes(server.engine)}
    paths = r.json()["paths"]
    assert {(m, p) for p, ops in paths.items() for m in ops} == served
    # every documented path answers (no 404/405 from the router) — a cheap probe of each GET without variables
    for path, ops in paths.items():
        if "get" in ops and "{" not in path.replace("{tenant}", "main") and not path.endswith("follow"):
            probe = path.replace("{tenant}", "main")
            assert http.get(probe).status_code not in (404, 405), probe


def test_the_table_mounts_under_a_prefix_as_in_jupyter(tmp_path):
    """The Jupyter extension mounts the same table under `{base_url}kestra`: paths keep working there."""
    import asyncio
    import threading

    import httpx
    import tornado.httpserver
    import tornado.netutil

    from kestra_nb.api.service import ApiService
    from kestra_nb.engine import Engine
    from kestra_nb.server import make_app
    from tests.api.conftest import SEED

    ready = threading.Event()
    box: dict = {}

    def main() -> None:
        async def serve() -> None:
            engine = Engine(tmp_path / "home", loop=asyncio.get_running_loop())
            service = ApiService(engine)
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            server = tornado.httpserver.HTTPServer(make_app(service, prefix="/user/me/kestra"))
            server.add_sockets(sockets)
            box["port"] = sockets[0].getsockname()[1]
            box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await box["stop"].wait()
            server.stop()
            service.close()
            engine.close()

        asyncio.run(serve())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10)
    base = f"http://127.0.0.1:{box['port']}/user/me/kestra"
    try:
        r = httpx.post(f"{base}/api/v1/main/flows", content=SEED.encode(), headers={"Content-Type": "application/x-yaml"})
        assert r.status_code == 200
        r = httpx.post(f"{base}/api/v1/executions/company.team/myflow?wait=true")
        assert r.json()["outputs"] == {"mydata": "hello from kestra"}
        assert httpx.get(f"{base}/ping").text == "pong"
        assert httpx.get(f"http://127.0.0.1:{box['port']}/api/v1/flows/search").status_code == 404
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


def test_openapi_describes_the_auth_actually_served(http, auth_server):
    """No credentials on loopback by default: no security scheme. With --basic-auth: Basic, every route
    but the open ones (ping)."""
    open_doc = http.get("/api/v1/openapi.json").json()
    assert "security" not in open_doc and "securitySchemes" not in open_doc["components"]
    assert all("401" not in op["responses"] for ops in open_doc["paths"].values() for op in ops.values())
    assert all("403" in op["responses"] for ops in open_doc["paths"].values() for op in ops.values())
    with httpx.Client(base_url=auth_server.url, timeout=30, auth=("admin@kestra.io", "Admin1234!")) as client:
        basic = client.get("/api/v1/openapi.json").json()
    assert basic["security"] == [{"basicAuth": []}]
    assert basic["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"
    assert basic["paths"]["/ping"]["get"]["security"] == []
    assert "401" in basic["paths"]["/api/v1/{tenant}/flows"]["post"]["responses"]
