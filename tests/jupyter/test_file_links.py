"""File outputs in the execution view: `kestra:///` values become download links through the server extension."""
from __future__ import annotations

import json
import re
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest

from pathlib import Path

from kestra_nb.jupyter.display import bundle, view_state
from kestra_nb.jupyter.widgets import static
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
            for tag in re.findall(r'<a [^>]*>', html)]


def twin(model: ViewModel) -> str:
    return static.twin_html(view_state(model))


def test_file_outputs_link_to_the_extension_download_route(jengine: Any) -> None:
    uri = "kestra:///company/team/files/executions/abc/inputs/doc/my%20report.csv"
    model, ex = run(jengine, uri)
    html = twin(model)
    expected = f"/kestra/api/v1/main/executions/{ex.id}/file?path={quote(uri, safe='')}"
    # the flow output, and the task run's output under Files; a bare `kestra:///` is no file
    assert [a["href"] for a in links(html)] == [expected, expected]
    assert "<strong>Files</strong>" in html and "my%20report.csv</a> <code>ret</code>" in html
    assert "kestra:/// is not a file on its own" in html
    # the mime output carries the URI; the renderer links it (view.js, the same route)
    data = bundle(view_state(model))["application/vnd.kestra.execution+json"]
    assert json.loads(data["view"])["outputs"]["report"] == uri and data["summary"]["id"] == ex.id


def test_the_base_url_comes_from_the_server_extension_or_jupyterhub(jengine: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert base_url() == "/"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert base_url() == "/user/ada/"
    monkeypatch.setenv("KESTRA_NB_BASE_URL", "/jl")
    assert base_url() == "/jl/"
    model, ex = run(jengine, "kestra:///company/team/files/executions/abc/inputs/doc/a.csv")
    href, same = [a["href"] for a in links(twin(model))]   # the flow output's and the task run's
    assert href == same and href.startswith(f"/jl/kestra/api/v1/main/executions/{ex.id}/file?path=kestra%3A%2F%2F%2F")
    assert file_url("id/1", "kestra:///a b", "/x") == "/x/kestra/api/v1/main/executions/id%2F1/file?path=kestra%3A%2F%2F%2Fa%20b"


def test_hostile_uris_are_escaped() -> None:
    uri = 'kestra:///a/"><script>alert(1)</script>.csv'
    html = static._outputs({"f": uri}, "EX")
    assert "<script>" not in html and "&lt;script&gt;" in html
    (link,) = links(html)
    assert link["href"].endswith(quote(uri, safe=""))
    assert "<a " not in static._outputs({"f": uri}, "")   # no execution id: no link
    assert not is_file_uri("kestra:///") and not is_file_uri(42) and is_file_uri("kestra:///x")
    assert not is_file_uri("kestra:/// is not a file") and not is_file_uri("see kestra:///x")


def test_the_live_view_builds_the_same_links_from_the_page_config() -> None:
    js = (Path(static.__file__).parents[2] / "ui" / "static" / "view.js").read_text(encoding="utf-8")
    assert 'document.getElementById("jupyter-config-data")' in js and "baseUrl" in js
    assert "kestra/api/v1/main/executions/${encodeURIComponent(executionId)}/file?path=${encodeURIComponent(uri)}" in js
    assert 'class="kn-file"' in js and r"/^kestra:\/\/\/\S+$/.test(value)" in js


def test_files_the_tasks_wrote_are_download_links_in_the_twin(jengine: Any) -> None:
    flow = """id: writes
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: write
        type: io.kestra.plugin.core.storage.Write
        content: "row {{ taskrun.value }}"
        extension: .csv
"""
    ex = jengine.run(flow)
    model = ViewModel()
    model.update(jengine.store.get_execution_document(ex.id))
    html = twin(model)
    uris = [tr.outputs["uri"] for tr in ex.task_run_list if tr.task_id == "write"]
    hrefs = [a["href"] for a in links(html)]
    assert hrefs == [f"/kestra/api/v1/main/executions/{ex.id}/file?path={quote(uri, safe='')}" for uri in uris]
    assert "<code>write[a]</code>" in html and "<code>write[b]</code>" in html
