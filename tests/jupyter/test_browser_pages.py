"""The /ui/ pages beyond an execution's view, in a real browser on the standalone server: an execution's logs
(level and task-run filters, live lines through the API's SSE, a cap on the lines kept, the streams closed while
hidden, the download), a flow's edit, validation, save, revision diff and delete, and the namespaces. Every page
reads at ≥ 4.5:1 in light and dark; hostile values stay text."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kestra_nb.server import serve_in_thread
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.jupyter.test_browser_theme import LOW_CONTRAST

YAML = {"Content-Type": "application/x-yaml"}
CHATTY = """id: chatty
namespace: company.team
tasks:
  - id: debug
    type: io.kestra.plugin.core.log.Log
    level: DEBUG
    message: a debug line
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "<img src=x onerror=window.__pwned=1>"
  - id: many
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - seq 1 2500
  - id: stop
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after the pause
"""
# every EventSource the page opens, and whether it is closed (what "the stream is closed" is checked on)
STREAMS = """(() => {
  const Original = window.EventSource;
  window.__streams = [];
  window.EventSource = class extends Original {
    constructor(url, options) { super(url, options); this.__entry = { url, closed: false }; window.__streams.push(this.__entry); }
    close() { this.__entry.closed = true; super.close(); }
  };
})();"""
OPEN_STREAMS = "() => window.__streams.filter((s) => !s.closed).map((s) => s.url)"
ROWS = "() => document.querySelectorAll('.kn-logs-page tbody tr').length"


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")


@contextmanager
def standalone(tmp_path: Path) -> Iterator[tuple[Any, httpx.Client, Any]]:
    """A standalone server, a client of its API and a browser page on it (page errors fail the test)."""
    from playwright.sync_api import sync_playwright

    server, thread = serve_in_thread(tmp_path / "home", grace=1)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.server_url = server.url   # type: ignore[attr-defined]
                yield page, api, server
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.stop()
        thread.join(15)


def wait_state(api: httpx.Client, execution_id: str, state: str) -> None:
    """Follow the execution's SSE until it is in `state` (an event awaited, no polling)."""
    with api.stream("GET", f"/api/v1/main/executions/{execution_id}/follow", timeout=60) as events:
        for line in events.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("state", {}).get("current") == state:
                return
    raise AssertionError(f"{execution_id} ended without being {state}")


def contrast(page: Any, tmp_path: Path, name: str) -> None:
    """Every text of the page reads at ≥ 4.5:1 in the light and the dark theme."""
    for light in (True, False):
        page.evaluate(f"() => document.documentElement.dataset.jpThemeLight = '{str(light).lower()}'")
        result = page.evaluate(LOW_CONTRAST.replace(".kn-live *", "#kn-page *"))
        page.screenshot(path=str(tmp_path / f"{name}-{'light' if light else 'dark'}.png"))
        assert result["checked"] > 5 and not result["bad"], (name, light, result)


def test_an_executions_logs_filter_follow_cap_and_download(tmp_path: Path) -> None:
    need_chromium()
    with standalone(tmp_path) as (page, api, server):
        assert api.post("/api/v1/main/flows", content=CHATTY.encode(), headers=YAML).status_code == 200
        doc = api.post("/api/v1/main/executions/company.team/chatty").json()
        page.add_init_script(STREAMS)
        page.goto(server.url + doc["url"])
        page.click(".kn-nav .kn-logs-link")
        page.wait_for_url("**/logs")
        wait_state(api, doc["id"], "PAUSED")
        # the default level is INFO and above (Kestra's): the debug line is not there, the warning is, as text
        page.wait_for_function("() => [...document.querySelectorAll('.kn-logs-page td.kn-msg')].some((td) => "
                               "td.textContent === '2500')", timeout=30_000)
        messages = page.eval_on_selector_all(".kn-logs-page td.kn-msg", "(tds) => tds.map((td) => td.textContent)")
        assert "a debug line" not in messages
        # the cap: 2,501 lines came (the warning and 2,500 numbers), the last 2,000 are kept, and the page says so
        assert page.evaluate(ROWS) == 2000 and messages[-1] == "2500" and messages[0] == "501"
        assert "501 earlier lines" in page.inner_text(".kn-logs-page .kn-more")
        assert sorted(page.evaluate(OPEN_STREAMS)) == sorted([
            f"/api/v1/main/executions/{doc['id']}/follow",
            f"/api/v1/main/logs/{doc['id']}/follow?minLevel=INFO"])
        # hidden (the Kestra panel collapsed, as a hidden tab): no stream; seen again: followed from the start
        page.evaluate("() => window.postMessage({type: 'kestra-nb:visible', visible: false}, location.origin)")
        page.wait_for_function(f"() => ({OPEN_STREAMS})().length === 0")
        assert "hidden" in page.inner_text(".kn-log-status")
        page.evaluate("() => window.postMessage({type: 'kestra-nb:visible', visible: true}, location.origin)")
        page.wait_for_function(f"() => ({OPEN_STREAMS})().length === 2")
        page.wait_for_function(f"() => ({ROWS})() === 2000", timeout=30_000)
        # a line written now shows up without a reload; once the execution has ended, nothing is followed
        assert api.post(f"/api/v1/main/executions/{doc['id']}/resume").status_code == 204
        page.wait_for_selector(".kn-logs-page td.kn-msg >> text=after the pause", timeout=30_000)
        page.wait_for_function("() => document.querySelector('.kn-log-status').textContent.includes('ended')",
                               timeout=30_000)
        assert page.evaluate(OPEN_STREAMS) == []
        # the level filter: WARN and above is only the warning, drawn as text
        page.select_option(".kn-logs-page select[name=minLevel]", "WARN")
        page.wait_for_function(f"() => ({ROWS})() === 1")
        assert page.inner_text(".kn-logs-page td.kn-msg") == "<img src=x onerror=window.__pwned=1>"
        assert page.inner_text(".kn-logs-page td.kn-lvl") == "WARN"
        # the task-run filter, at TRACE: the debug task's one line
        page.select_option(".kn-logs-page select[name=minLevel]", "TRACE")
        page.select_option(".kn-logs-page select[name=taskRunId]", label="debug")
        page.wait_for_function(f"() => ({ROWS})() === 1 && document.querySelector('.kn-logs-page td.kn-msg')"
                               ".textContent === 'a debug line'")
        # the download is the API's, with the same filters
        href = page.get_attribute(".kn-logs-page a.kn-download", "href")
        assert "/download?minLevel=TRACE&taskRunId=" in href
        text = page.evaluate("async (url) => (await fetch(url)).text()", href)
        assert text.endswith(" DEBUG a debug line\n") and text.count("\n") == 1
        assert page.evaluate("() => window.__pwned") is None and not page.query_selector("#kn-page img")
        contrast(page, tmp_path, "logs")
        # an unknown execution: the API's message, no stream
        page.goto(f"{server.url}/ui/main/executions/company.team/chatty/nope/logs")
        page.wait_for_selector(".kn-logs-page .kn-error")
        assert "nope" in page.inner_text(".kn-logs-page .kn-error") and page.evaluate(OPEN_STREAMS) == []
