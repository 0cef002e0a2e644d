"""Files through the Jupyter Server extension: FILE inputs uploaded (streamed) and downloaded under
{base_url}kestra/, with Jupyter's auth checked before an upload's body is read."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError

from tests.jupyter.server.test_extension import YAML, DenyKestra, kestra_app

FLOW = """id: files
namespace: company.team
inputs:
  - id: doc
    type: FILE
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.doc }}"
"""
BOUNDARY = "kestra-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(name: str, filename: str, content: bytes) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def leftovers(serverapp: Any) -> list[Path]:
    tmp = kestra_app(serverapp).engine.store.storage.root / ".tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


async def run_with_file(jp_fetch: Any, content: bytes, deploy: bool = True) -> dict[str, Any]:
    if deploy:
        await jp_fetch("kestra", "api", "v1", "flows", method="POST", body=FLOW, headers=dict(YAML))
    response = await jp_fetch("kestra", "api", "v1", "main", "executions", "company.team", "files", method="POST",
                              body=multipart("doc", "data.csv", content), params={"wait": "true"},
                              headers=dict(MULTIPART))
    return json.loads(response.body)


async def test_upload_and_download_through_the_extension(jp_fetch: Any, jp_serverapp: Any,
                                                         jp_base_url: str) -> None:
    content = bytes(range(256)) * 4096   # 1 MiB, every byte value
    doc = await run_with_file(jp_fetch, content)
    uri = doc["inputs"]["doc"]
    assert doc["state"]["current"] == "SUCCESS"
    assert uri == f"kestra:///company/team/files/executions/{doc['id']}/inputs/doc/data.csv"
    response = await jp_fetch("kestra", "api", "v1", "main", "executions", doc["id"], "file", params={"path": uri})
    assert response.body == content
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="data.csv"'
    metas = await jp_fetch("kestra", "api", "v1", "executions", doc["id"], "file", "metas", params={"path": uri})
    assert json.loads(metas.body) == {"size": len(content)}
    assert leftovers(jp_serverapp) == []
    # a file of another execution of the flow: redirected under the same base URL
    other = await run_with_file(jp_fetch, b"other", deploy=False)
    redirect = await jp_fetch("kestra", "api", "v1", "main", "executions", other["id"], "file",
                              params={"path": uri}, follow_redirects=False, raise_error=False)
    assert redirect.code == 302
    assert redirect.headers["Location"] == (f"{jp_base_url}kestra/api/v1/main/executions/{doc['id']}/file"
                                            f"?path={quote(uri, safe='')}")
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "main", "executions", doc["id"], "file",
                       params={"path": "file:///etc/passwd"})
    assert caught.value.code == 422 and b"root:" not in caught.value.response.body


async def test_a_browser_session_downloads_with_its_cookie(jp_fetch: Any, jp_serverapp: Any) -> None:
    """The notebook's download links are plain GETs carrying the login cookie (no XSRF needed to read)."""
    doc = await run_with_file(jp_fetch, b"for the browser")
    token = jp_serverapp.identity_provider.token
    page = await jp_fetch("login", params={"token": token}, headers={"Authorization": ""},
                          follow_redirects=False, raise_error=False)
    cookies = [h.split(";", 1)[0] for h in page.headers.get_list("Set-Cookie")]
    assert any(c.startswith("username-") for c in cookies), cookies
    response = await jp_fetch("kestra", "api", "v1", "main", "executions", doc["id"], "file",
                              params={"path": doc["inputs"]["doc"]},
                              headers={"Authorization": "", "Cookie": "; ".join(cookies)})
    assert response.body == b"for the browser"


async def test_an_unauthenticated_upload_is_refused_before_its_body(jp_fetch: Any, jp_serverapp: Any) -> None:
    await jp_fetch("kestra", "api", "v1", "flows", method="POST", body=FLOW, headers=dict(YAML))
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "executions", "company.team", "files", method="POST",
                       body=multipart("doc", "a.csv", b"x" * 100_000), headers={**MULTIPART, "Authorization": ""})
    assert caught.value.code == 403
    assert leftovers(jp_serverapp) == []


@pytest.mark.parametrize("jp_server_config", [{
    "ServerApp": {"jpserver_extensions": {"kestra_nb": True, "jupyter_server_terminals": False},
                  "allow_unauthenticated_access": True}}])
async def test_unauthenticated_upload_refused_when_jupyter_allows_unauthenticated_access(
        jp_fetch: Any, jp_serverapp: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "executions", "company.team", "files", method="POST",
                       body=multipart("doc", "a.csv", b"x" * 100_000), headers={**MULTIPART, "Authorization": ""})
    assert caught.value.code == 403
    assert leftovers(jp_serverapp) == []


@pytest.mark.parametrize("jp_server_config", [{
    "ServerApp": {"jpserver_extensions": {"kestra_nb": True, "jupyter_server_terminals": False},
                  "allow_unauthenticated_access": False, "authorizer_class": DenyKestra}}])
async def test_an_unauthorized_user_cannot_upload(jp_fetch: Any, jp_serverapp: Any) -> None:
    DenyKestra.asked.clear()
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kestra", "api", "v1", "executions", "company.team", "files", method="POST",
                       body=multipart("doc", "a.csv", b"x" * 100_000), headers=dict(MULTIPART))
    assert caught.value.code == 403
    assert ("write", "kestra") in DenyKestra.asked
    assert leftovers(jp_serverapp) == []


async def test_the_view_s_download_link_serves_the_file(jp_fetch: Any, jp_base_url: str, http_server_client: Any,
                                                        jp_auth_header: Any, monkeypatch: Any) -> None:
    """The href the execution view renders for a file output is this extension's download route."""
    from html import unescape

    from kestra_nb.jupyter.widgets import static
    from kestra_nb.jupyter.widgets.viewmodel import file_url, is_file_uri

    doc = await run_with_file(jp_fetch, b"linked bytes")
    uri = doc["inputs"]["doc"]
    assert is_file_uri(uri)
    monkeypatch.setenv("KESTRA_NB_BASE_URL", jp_base_url)   # what the extension sets for its kernels
    hrefs = [unescape(h) for h in re.findall(r'<a href="([^"]+)"', static._outputs({"doc": uri}, doc["id"]))]
    assert hrefs == [file_url(doc["id"], uri, jp_base_url)]   # view.js builds the same from the page's baseUrl
    assert hrefs[0].startswith(f"{jp_base_url}kestra/api/v1/main/executions/{doc['id']}/file?path=")
    response = await http_server_client.fetch(hrefs[0], headers=jp_auth_header)
    assert response.body == b"linked bytes"
