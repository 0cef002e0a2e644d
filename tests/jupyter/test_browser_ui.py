"""An execution JSON's `url` in a real browser: on the standalone server (its page, the view following the
execution without a reload, Kill from the page through the API) and in Jupyter (behind its login, the page's
actions with Jupyter's XSRF cookie). Hostile values stay text."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kestra_nb.server import serve_in_thread
from tests.jupyter.conftest import jupyter_process
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS

LONG = """id: long
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "<img src=x onerror=window.__pwned=1>"
  - id: branches
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT60S
      - id: quick
        type: io.kestra.plugin.core.log.Log
        message: quick
"""
YAML = {"Content-Type": "application/x-yaml"}
BADGE = "() => (document.querySelector('#kn-page .kn-badge') || {dataset: {}}).dataset.state"


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")


def test_the_url_opens_a_live_view_on_the_standalone_server(tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    server, thread = serve_in_thread(tmp_path / "home", grace=1)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client, sync_playwright() as playwright:
            assert client.post("/api/v1/main/flows", content=LONG.encode(), headers=YAML).status_code == 200
            doc = client.post("/api/v1/main/executions/company.team/long").json()
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(server.url + doc["url"])
                # the page follows the execution: RUNNING once `wait` sleeps, without a reload
                page.wait_for_function(f"() => ({BADGE})() === 'RUNNING' && "
                                       "document.querySelector('#kn-page .kn-row[data-task=wait]')", timeout=30_000)
                page.click("#kn-page .kn-row[data-task=first] .kn-label")   # its outputs: a value, as text
                page.wait_for_selector("#kn-page .kn-detail:not([hidden])")
                assert "<img src=x" in page.inner_text("#kn-page .kn-detail")
                page.click("#kn-page [data-tab=topology]")
                boxes = page.evaluate("() => [...document.querySelectorAll('#kn-page [data-pane=topology] "
                                      "[data-task]')].map((b) => b.dataset.task)")
                assert boxes == ["first", "branches", "wait", "quick"], boxes
                page.screenshot(path=str(tmp_path / "ui-running.png"))
                page.click("#kn-page [data-action=kill]")
                # the rows follow too (the page polls the view until the execution has ended)
                page.wait_for_function("() => document.querySelector('#kn-page .kn-row[data-task=wait]')"
                                       ".dataset.state === 'KILLED'", timeout=30_000)
                assert page.evaluate(BADGE) == "KILLED"
                assert client.get(f"/api/v1/main/executions/{doc['id']}").json()["state"]["current"] == "KILLED"
                assert page.evaluate("() => window.__pwned") is None and not page.query_selector("#kn-page img")
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.stop()
        thread.join(15)


def test_the_url_opens_the_page_in_jupyter_and_its_actions_pass_xsrf(tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    with jupyter_process(tmp_path, root, tmp_path / "home") as jupyter, sync_playwright() as playwright:
        auth = {"Authorization": f"token {jupyter.token}"}
        with httpx.Client(base_url=jupyter.url, timeout=30, headers=auth) as client:
            assert client.post("kestra/api/v1/flows", content=LONG.encode(), headers=YAML).status_code == 200
            doc = client.post("kestra/api/v1/main/executions/company.team/long").json()
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            origin = jupyter.url.split("/", 3)[:3]
            page.goto("/".join(origin) + doc["url"])   # no login yet: Jupyter's login page
            assert "/login" in page.url
            page.goto("/".join(origin) + doc["url"] + f"?token={jupyter.token}")
            page.wait_for_function(f"() => ({BADGE})() === 'RUNNING'", timeout=30_000)
            page.click("#kn-page [data-action=kill]")   # a cookie request: it must carry the XSRF token
            page.wait_for_function(f"() => ({BADGE})() === 'KILLED'", timeout=30_000)
            message = page.query_selector("#kn-page .kn-action-msg")
            assert "kn-failed" not in (message.get_attribute("class") or ""), message.inner_text()
            with httpx.Client(base_url=jupyter.url, timeout=30, headers=auth) as client:
                ended = client.get(f"kestra/api/v1/main/executions/{doc['id']}").json()
            assert ended["state"]["current"] == "KILLED"
        finally:
            browser.close()


CHILD = """id: ui_child
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: from the child
"""
PARENT = """id: ui_parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: ui_child
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""


def test_the_page_pauses_labels_links_children_and_deletes(tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    server, thread = serve_in_thread(tmp_path / "home", grace=1)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client, sync_playwright() as playwright:
            for source in (CHILD, PARENT):
                assert client.post("/api/v1/main/flows", content=source.encode(), headers=YAML).status_code == 200
            doc = client.post("/api/v1/main/executions/company.team/ui_parent").json()
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(server.url + doc["url"])
                page.wait_for_function(f"() => ({BADGE})() === 'RUNNING' && "
                                       "document.querySelector('#kn-page .kn-row[data-task=wait]')", timeout=30_000)
                page.click("#kn-page [data-action=pause]")
                page.wait_for_function(f"() => ({BADGE})() === 'PAUSED'", timeout=30_000)
                page.click("#kn-page [data-action=kill]")
                page.wait_for_function(f"() => ({BADGE})() === 'KILLED'", timeout=30_000)
                page.click("#kn-page [data-action=labels]")
                page.fill("#kn-page form.kn-labels input[name=labels]", "team:data, stage:test")
                page.click("#kn-page form.kn-labels button[type=submit]")
                page.wait_for_selector("#kn-page .kn-label-chip >> text=stage:test")
                labels = client.get(f"/api/v1/main/executions/{doc['id']}").json()["labels"]
                assert {"key": "team", "value": "data"} in labels and {"key": "stage", "value": "test"} in labels
                assert any(label["key"] == "system.correlationId" for label in labels)   # kept
                # the subflow's child execution is a link to its own page
                page.click("#kn-page a.kn-child")
                page.wait_for_function(f"() => ({BADGE})() === 'SUCCESS'", timeout=30_000)
                assert "company.team.ui_child" in page.inner_text("#kn-page .kn-head")
                page.go_back()
                page.wait_for_function(f"() => ({BADGE})() === 'KILLED'", timeout=30_000)
                page.click("#kn-page [data-action=delete]")
                page.wait_for_url("**/ui/main/executions", timeout=30_000)
                assert client.get(f"/api/v1/main/executions/{doc['id']}").status_code == 404
            finally:
                browser.close()
    finally:
        server.stop()
        thread.join(15)
