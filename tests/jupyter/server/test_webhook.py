"""Webhooks through the Jupyter extension: open without a token (the key is the secret), every other route
still behind Jupyter's auth, with `allow_unauthenticated_access=False` (see conftest)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.jupyter.conftest import SEED
from tests.jupyter.server.test_extension import deploy, kestra_app

HOOKED = SEED + """
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: jupyter-key
    wait: true
    returnOutputs: true
"""
NO_TOKEN = {"Authorization": ""}


async def test_webhook_is_open_and_the_rest_needs_the_token(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:   # deploying needs the token
        await jp_fetch("kestra", "api", "v1", "flows", method="POST", body=HOOKED,
                       headers={**NO_TOKEN, "Content-Type": "application/x-yaml"})
    assert caught.value.code == 403
    await deploy(jp_fetch, HOOKED)
    for path in (("main",), ()):   # tenant and tenant-less forms
        response = await jp_fetch("kestra", "api", "v1", *path, "executions", "webhook", "company.team", "myflow",
                                  "jupyter-key", method="POST", body=b"{}", headers=NO_TOKEN)
        assert response.code == 200 and json.loads(response.body) == {"mydata": "hello from kestra"}
    response = await jp_fetch("kestra", "api", "v1", "executions", "webhook", "company.team", "myflow",
                              "jupyter-key", headers=NO_TOKEN)   # GET
    assert response.code == 200
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "executions", "webhook", "company.team", "myflow", "wrong",
                       method="POST", body=b"", headers=NO_TOKEN)
    assert caught.value.code == 404
    assert json.loads(caught.value.response.body)["message"] == "Not Found: Webhook not found"
    with pytest.raises(HTTPClientError) as caught:   # the executions it created are not readable without it
        await jp_fetch("kestra", "api", "v1", "executions", "search", headers=NO_TOKEN)
    assert caught.value.code == 403
    found = await jp_fetch("kestra", "api", "v1", "executions", "search", params={"flowId": "myflow"})
    assert json.loads(found.body)["total"] == 3


async def test_the_extension_runs_the_scheduler(jp_fetch: Any, jp_serverapp: Any) -> None:
    app = kestra_app(jp_serverapp)
    await app.engine.on_loop(lambda: None)   # the scheduler starts on the engine's loop, queued before this
    assert app.scheduler is not None and app.scheduler.leader
    chained = """id: chained
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.executionId }}"
triggers:
  - id: after
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.team
        flowId: myflow
"""
    await deploy(jp_fetch, chained)
    await deploy(jp_fetch, HOOKED)
    await app.engine.on_loop(app.scheduler.tick)   # sees the new flow now instead of at the next poll
    response = await jp_fetch("kestra", "api", "v1", "executions", "webhook", "company.team", "myflow",
                              "jupyter-key", method="POST", body=b"", headers=NO_TOKEN)
    assert response.code == 200
    await app.engine.on_loop(app.scheduler.tick)   # fires now, unless the loop (woken by the end of myflow's execution) did
    search = await jp_fetch("kestra", "api", "v1", "executions", "search", params={"flowId": "chained"})
    assert json.loads(search.body)["total"] == 1


async def test_jupyters_host_and_origin_rules_cover_the_api_and_the_webhooks(jp_fetch: Any) -> None:
    """DNS rebinding (a foreign Host) and a foreign page's POST: Jupyter's own checks answer for its API
    handlers, the webhook routes (not Jupyter handlers) follow the same rules through api.guard."""
    await deploy(jp_fetch, HOOKED)
    hook = ("kestra", "api", "v1", "executions", "webhook", "company.team", "myflow", "jupyter-key")
    for headers in ({"Host": "attacker.example"}, {"Origin": "http://127.0.0.2:8000"}, {"Origin": "null"}):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(*hook, method="POST", body=b"{}", headers={**NO_TOKEN, **headers})
        assert caught.value.code == 403, headers
    with pytest.raises(HTTPClientError) as caught:   # Jupyter's check_host, on the API with a valid token
        await jp_fetch("kestra", "api", "v1", "flows", "search", headers={"Host": "attacker.example"})
    assert caught.value.code == 403
    found = await jp_fetch("kestra", "api", "v1", "executions", "search", params={"flowId": "myflow"})
    assert json.loads(found.body)["total"] == 0
    own = await jp_fetch(*hook, method="POST", body=b"{}", headers=NO_TOKEN)
    assert own.code == 200
