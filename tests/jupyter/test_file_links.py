"""File outputs in the execution view: `kestra:///` values become download links through the server extension."""
from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest

from kestra_nb.jupyter.widgets import static
from kestra_nb.jupyter.widgets.view import ExecutionView
from kestra_nb.jupyter.widgets.viewmodel import (
    ViewModel,
    base_url,
    file_url,
    is_file_uri,
)

FLOW = """id: files
namespace: company.team
inputs:
  - id: doc
    type: FILE
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.doc }}"
outputs:
  - id: report
    type: STRING
    value: "{{ outputs.ret.value }}"
  - id: title
    type: STRING
    value: "kestra:/// is not a file on its own"
"""


@pytest.fixture(autouse=True)
def no_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KESTRA_NB_BASE_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)


def run(engine: Any, uri: str) -> tuple[ViewModel, Any]:
    ex = engine.run(FLOW, inputs={"doc": uri})
    model = ViewModel()
    model.update(engine.store.get_execution_document(ex.id))
    return model, ex


def links(html: str) -> list[dict[str, str]]:
    return [{k: unescape(v) for k, v in re.findall(r'(\w[\w-]*)="([^"]*)"', tag)}
            for tag in re.findall(r'<a class="kn-file"[^>]*>', html)]


def test_file_outputs_link_to_the_extension_download_route(jengine: Any) -> None:
    uri = "kestra:///company/team/files/executions/abc/inputs/doc/my%20report.csv"
    model, ex = run(jengine, uri)
    html = static.render_state(model.state())
    found = links(html)
    expected = f"/kestra/api/v1/main/executions/{ex.id}/file?path={quote(uri, safe='')}"
    # the flow output and the task output (collapsed), nothing else: a bare `kestra:///` is no file
    assert [a["href"] for a in found] == [expected, expected]
    assert found[0]["data-uri"] == uri and found[0]["download"] == "my%20report.csv"
    assert found[0]["target"] == "_blank" and found[0]["rel"] == "noopener"
    assert "kestra:/// is not a file on its own" in html and html.count('class="kn-file"') == 2
    # the live widget shows the same (its HTML fallback is this static rendition)
    data, _ = ExecutionView(model)._repr_mimebundle_()
    assert [a["href"] for a in links(data["text/html"])] == [expected, expected]


def test_the_base_url_comes_from_the_server_extension_or_jupyterhub(jengine: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert base_url() == "/"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert base_url() == "/user/ada/"
    monkeypatch.setenv("KESTRA_NB_BASE_URL", "/jl")
    assert base_url() == "/jl/"
    model, ex = run(jengine, "kestra:///company/team/files/executions/abc/inputs/doc/a.csv")
    (href, _) = [a["href"] for a in links(static.render_state(model.state()))]
    assert href.startswith(f"/jl/kestra/api/v1/main/executions/{ex.id}/file?path=kestra%3A%2F%2F%2F")
    assert file_url("id/1", "kestra:///a b", "/x") == "/x/kestra/api/v1/main/executions/id%2F1/file?path=kestra%3A%2F%2F%2Fa%20b"


def test_hostile_uris_are_escaped() -> None:
    uri = 'kestra:///a/"><script>alert(1)</script>.csv'
    html = static.outputs_html({"f": uri}, [], "EX")
    assert "<script>" not in html and "&lt;script&gt;" in html
    (link,) = links(html)
    assert link["data-uri"] == uri and link["href"].endswith(quote(uri, safe=""))
    assert static.outputs_html({"f": uri}, []).count("kn-file") == 0   # no execution id: no link
    assert not is_file_uri("kestra:///") and not is_file_uri(42) and is_file_uri("kestra:///x")
    assert not is_file_uri("kestra:/// is not a file") and not is_file_uri("see kestra:///x")


def test_the_live_view_builds_the_same_links_from_the_page_config() -> None:
    js = ExecutionView._esm
    assert 'document.getElementById("jupyter-config-data")' in js and "baseUrl" in js
    assert "kestra/api/v1/main/executions/${encodeURIComponent(executionId)}/file?path=${encodeURIComponent(uri)}" in js
    assert 'class="kn-file"' in js and r"/^kestra:\/\/\/\S+$/.test(value)" in js
