"""`/ui/` in Jupyter: an execution's `url` is its page under {base_url}kestra/ui/, behind Jupyter's login (a
browser without one is sent to it), with the `_xsrf` cookie the page's actions send back."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest
from tornado.httpclient import HTTPClientError

from tests.jupyter.conftest import SEED
from tests.jupyter.server.test_extension import deploy, execute


async def test_the_url_of_an_execution_is_its_page_in_jupyter(jp_fetch: Any, jp_base_url: str) -> None:
    await deploy(jp_fetch, SEED)
    doc = json.loads((await execute(jp_fetch, "company.team", "myflow")).body)
    assert unquote(doc["url"]) == unquote(f"{jp_base_url}kestra/ui/main/executions/company.team/myflow/{doc['id']}")
    parts = doc["url"][len(jp_base_url):].split("/")
    page = await jp_fetch(*parts)
    assert page.code == 200 and page.headers["Content-Type"] == "text/html; charset=UTF-8"
    text = page.body.decode()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert f'src="{jp_base_url.rstrip("/")}/kestra/ui/static/page.js"' in text and doc["id"] in text
    assert any(c.startswith("_xsrf=") for c in page.headers.get_list("Set-Cookie"))
    view = await jp_fetch("kestra", "ui", "main", "executions", doc["id"], "view")
    assert json.loads(view.body)["summary"]["state"] == "SUCCESS"
    asset = await jp_fetch("kestra", "ui", "static", "view.js")
    assert asset.headers["Content-Type"].startswith("text/javascript") and b"export function mount" in asset.body


async def test_without_a_login_the_page_is_not_shown(jp_fetch: Any) -> None:
    await deploy(jp_fetch, SEED)
    doc = json.loads((await execute(jp_fetch, "company.team", "myflow")).body)
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "ui", "main", "executions", doc["id"], "view", headers={"Authorization": ""},
                       follow_redirects=False)
    assert caught.value.code in (302, 403)
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "ui", "static", "view.js", headers={"Authorization": ""}, follow_redirects=False)
    assert caught.value.code in (302, 403)
