"""The Jupyter Server extension: the REST route table under {base_url}kestra/, behind Jupyter's auth."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from tests.jupyter.conftest import SEED
from tests.kestra_json import assert_kestra_shape

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures"
YAML = {"Content-Type": "application/x-yaml"}
SLEEPY = """id: sleepy
namespace: company.team
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""


def kestra_app(serverapp: Any) -> Any:
    """The running KestraApp of a server."""
    (app,) = serverapp.extension_manager.extension_apps["kestra_nb"]
    return app


async def execute(jp_fetch: Any, namespace: str, flow_id: str, wait: bool = True) -> Any:
    """POST an execution with an empty form (tornado's client would label an empty body as urlencoded)."""
    return await jp_fetch("kestra", "api", "v1", "executions", namespace, flow_id, method="POST",
                          body=b"--kestra--\r\n",
                          params={"wait": "true"} if wait else None,
                          headers={"Content-Type": "multipart/form-data; boundary=kestra"})


async def deploy(jp_fetch: Any, source: str) -> dict[str, Any]:
    response = await jp_fetch("kestra", "api", "v1", "flows", method="POST", body=source, headers=dict(YAML))
    return json.loads(response.body)


async def test_seed_runs_through_the_extension(jp_fetch: Any) -> None:
    flow = await deploy(jp_fetch, SEED)
    assert (flow["namespace"], flow["id"], flow["revision"]) == ("company.team", "myflow", 1)
    response = await execute(jp_fetch, "company.team", "myflow")
    assert response.code == 200 and response.headers["Content-Type"] == "application/json"
    doc = json.loads(response.body)
    assert doc["state"]["current"] == "SUCCESS" and doc["outputs"] == {"mydata": "hello from kestra"}
    kestra = json.loads((FIXTURES / "seed_wait_response.json").read_text())
    assert_kestra_shape(doc, kestra, extra={"tenantId", "labels", "url"})
    # the same document through the tenant path, as stored
    stored = await jp_fetch("kestra", "api", "v1", "main", "executions", doc["id"])
    assert json.loads(stored.body) == {k: v for k, v in doc.items() if k != "url"}


async def test_a_flow_saved_by_a_kernel_runs_through_the_api(jp_fetch: Any, jp_serverapp: Any) -> None:
    """A kernel's engine and the server's share the SQLite file of the home (a `%%flow` cell saves there)."""
    from kestra_nb.engine import Engine

    home = kestra_app(jp_serverapp).home
    kernel_engine = Engine(home)
    try:
        kernel_engine.deploy(SEED)
    finally:
        kernel_engine.close()
    response = await execute(jp_fetch, "company.team", "myflow")
    assert json.loads(response.body)["outputs"] == {"mydata": "hello from kestra"}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_no_token_is_forbidden(jp_fetch: Any, method: str) -> None:
    kwargs: dict[str, Any] = {"method": method, "headers": {"Authorization": ""}}
    if method == "POST":
        kwargs.update(body=SEED, headers={"Authorization": "", **YAML})
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "flows" if method == "POST" else "executions/search", **kwargs)
    assert caught.value.code == 403


async def test_wrong_token_is_forbidden(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "ping", headers={"Authorization": "token wrong"})
    assert caught.value.code == 403


async def test_bearer_and_query_tokens(jp_fetch: Any, jp_serverapp: Any) -> None:
    token = jp_serverapp.identity_provider.token
    response = await jp_fetch("kestra", "ping", headers={"Authorization": f"Bearer {token}"})
    assert response.code == 200 and response.body == b"pong"
    assert response.headers["Content-Type"].startswith("text/plain")  # the route's type, not forced JSON
    response = await jp_fetch("kestra", "ping", headers={"Authorization": ""}, params={"token": token})
    assert response.body == b"pong"
    # a token-authenticated POST needs no XSRF token (Kestra clients send none)
    await deploy(jp_fetch, SEED)


async def test_cookie_requests_need_xsrf(jp_fetch: Any, jp_serverapp: Any) -> None:
    """A browser session (login cookie) may read, but must send the XSRF token to write."""
    token = jp_serverapp.identity_provider.token
    jar: dict[str, str] = {}
    for params in ({}, {"token": token}):  # the login page sets `_xsrf`; the token login sets the session
        page = await jp_fetch("login", params=params, headers={"Authorization": ""}, follow_redirects=False,
                              raise_error=False)
        for header in page.headers.get_list("Set-Cookie"):
            name, _, value = header.split(";", 1)[0].partition("=")
            jar[name] = value
    assert "_xsrf" in jar and any(name.startswith("username-") for name in jar), jar
    browser = {"Authorization": "", "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    assert (await jp_fetch("kestra", "ping", headers=dict(browser))).body == b"pong"
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "flows", method="POST", body=SEED, headers={**browser, **YAML})
    assert caught.value.code == 403
    response = await jp_fetch("kestra", "api", "v1", "flows", method="POST", body=SEED,
                              headers={**browser, **YAML, "X-XSRFToken": jar["_xsrf"]})
    assert json.loads(response.body)["id"] == "myflow"


class DenyKestra(Authorizer):
    """Records what is asked and refuses the `kestra` resource (what JupyterHub RBAC could do)."""

    asked: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        DenyKestra.asked.append((action, resource))
        return resource != "kestra"


@pytest.fixture
def jp_server_config(tmp_path: Any) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"kestra_nb": True, "jupyter_server_terminals": False},
                          "allow_unauthenticated_access": False},
            "KestraApp": {"home": str(tmp_path / "kestra-home"), "shutdown_grace": 1.0}}


@pytest.mark.parametrize("jp_server_config", [{
    "ServerApp": {"jpserver_extensions": {"kestra_nb": True, "jupyter_server_terminals": False},
                  "allow_unauthenticated_access": False, "authorizer_class": DenyKestra}}])
async def test_authorization_uses_the_kestra_resource(jp_fetch: Any) -> None:
    DenyKestra.asked.clear()
    for method, parts, body in (("GET", ("kestra", "ping"), None), ("POST", ("kestra", "api", "v1", "flows"), SEED)):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(*parts, method=method, body=body, headers=dict(YAML) if body else None)
        assert caught.value.code == 403
    assert ("read", "kestra") in DenyKestra.asked and ("write", "kestra") in DenyKestra.asked
    assert (await jp_fetch("api", "status")).code == 200  # the rest of Jupyter is untouched


async def test_mounted_under_base_url_only(jp_fetch: Any, http_server_client: Any, jp_auth_header: Any) -> None:
    assert (await jp_fetch("kestra", "ping")).body == b"pong"  # /a%40b/kestra/ping
    with pytest.raises(HTTPClientError) as caught:
        await http_server_client.fetch("/kestra/ping", headers=jp_auth_header)
    assert caught.value.code == 404


async def test_errors_and_streams_are_kestra_s(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "executions", "nope")
    assert caught.value.code == 404
    body = json.loads(caught.value.response.body)
    assert body["message"] == "Not Found: Execution 'nope' not found."
    assert body["_links"]["self"]["href"] == "/a%40b/kestra/api/v1/executions/nope"
    await deploy(jp_fetch, SEED)
    created = await execute(jp_fetch, "company.team", "myflow")
    execution_id = json.loads(created.body)["id"]
    follow = await jp_fetch("kestra", "api", "v1", "executions", execution_id, "follow")
    assert follow.headers["Content-Type"].startswith("text/event-stream")
    assert b'"current":"SUCCESS"' in follow.body and follow.body.startswith(b"id: start")
    logs = await jp_fetch("kestra", "api", "v1", "logs", execution_id, "download")
    assert logs.headers["Content-Type"].startswith("text/plain") and b"hello from kestra" in logs.body


def test_home_trait_and_no_auth_warning(recwarn: Any, jp_serverapp: Any, tmp_path: Path) -> None:
    import os

    app = kestra_app(jp_serverapp)
    assert app.home == str(tmp_path / "kestra-home")
    assert Path(app.engine.store.path).parent == tmp_path / "kestra-home"
    assert os.environ["KESTRA_NB_HOME"] == app.home  # kernels started by this server share the store
    # the engine runs on its own loop thread: no execution holds up Jupyter's loop
    assert app.engine.loop is not jp_serverapp.io_loop.asyncio_loop and app.engine.loop.is_running()
    warned = [str(w.message) for w in recwarn.list if "kestra" in str(w.message).lower()]
    assert warned == []  # every kestra route is @authenticated: fine with allow_unauthenticated_access=False


async def test_stops_cleanly(jp_fetch: Any, jp_serverapp: Any) -> None:
    await deploy(jp_fetch, SLEEPY)
    created = await execute(jp_fetch, "company.team", "sleepy", wait=False)
    execution_id = json.loads(created.body)["id"]
    app = kestra_app(jp_serverapp)
    engine = app.engine
    store_path = engine.store.path
    driver = engine._driven[execution_id].task
    await app.stop_extension()  # what the server's shutdown calls
    assert app.engine is None and driver.done()
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "_drive" in repr(t)]
    from kestra_nb.store import open_store

    store = open_store(str(Path(store_path).parent))
    try:  # left as last committed, for the next engine to recover
        assert store.get_execution(execution_id).state.current.value in ("CREATED", "RUNNING")
    finally:
        store.close()


async def test_the_openapi_document_describes_jupyters_token(jp_fetch: Any) -> None:
    doc = json.loads((await jp_fetch("kestra", "api", "v1", "openapi.json")).body)
    assert doc["security"] == [{"jupyterToken": []}]
    scheme = doc["components"]["securitySchemes"]["jupyterToken"]
    assert scheme["type"] == "apiKey" and scheme["name"] == "Authorization"
    assert "basicAuth" not in doc["components"]["securitySchemes"]
