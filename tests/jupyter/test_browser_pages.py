"""The /ui/ pages beyond an execution's view, in a real browser on the standalone server: an execution's logs
(level and task-run filters, live lines through the API's SSE, a cap on the lines kept, the streams closed while
hidden, the download), a flow's edit, validation, save, revision diff and delete, and the namespaces. Every page
reads at ≥ 4.5:1 in light and dark; hostile values stay text."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from kestra_nb.server import serve_in_thread
from tests.api.conftest import Http
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.jupyter.test_browser_theme import LOW_CONTRAST
from tests.jupyter.test_browser_ui import need_chromium

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
        Http(server).wait_state(doc["id"], "PAUSED", timeout=60)
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


EDITED = """id: edited
namespace: company.team
description: "<b>bold?</b>"
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello
"""
BROKEN = """id: edited
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
  - id: nope
    type: io.kestra.plugin.nope.Unknown
    message: "x, y </script><img src=x onerror=window.__pwned=1>"
"""
SECOND = EDITED.replace("    message: hello\n", "    message: hello\n  - id: bye\n    type: io.kestra.plugin.core.log.Log\n"
                        "    message: \"<img src=x onerror=window.__pwned=1>\"\n")


def test_a_flow_is_edited_validated_saved_compared_and_deleted(tmp_path: Path) -> None:
    need_chromium()
    with standalone(tmp_path) as (page, api, server):
        assert api.post("/api/v1/main/flows", content=EDITED.encode(), headers=YAML).status_code == 200
        page.goto(f"{server.url}/ui/main/flows/company.team/edited")
        page.wait_for_selector(".kn-source .kn-key")   # the read view stays highlighted
        assert page.query_selector(".kn-diff-pick") is None   # one revision: nothing to compare
        page.click("[data-edit=edit]")
        page.fill(".kn-editor textarea", BROKEN)
        page.click("[data-edit=validate]")
        # the API's messages, each with its line, the lines marked beside the text; a message's own ", " kept
        page.wait_for_selector(".kn-problems li")
        items = page.eval_on_selector_all(".kn-problems li", "(lis) => lis.map((li) => [li.dataset.line, li.textContent])")
        assert items == [["4", "line 4: tasks[0].message: must not be null"],
                         ["7", "line 7: tasks[1].type: Invalid type: io.kestra.plugin.nope.Unknown"]], items
        assert page.eval_on_selector_all(".kn-gutter .kn-bad", "(s) => s.map((e) => e.dataset.line)") == ["4", "7"]
        page.click(".kn-problems [data-goto='7']")   # to the line
        assert page.evaluate("() => { const a = document.querySelector('.kn-editor textarea');"
                             " return a.value.slice(a.selectionStart, a.selectionEnd); }") == \
            "    type: io.kestra.plugin.nope.Unknown"
        # several YAML documents are not one flow's source
        page.fill(".kn-editor textarea", EDITED + "---\n" + EDITED.replace("id: edited", "id: another"))
        page.click("[data-edit=validate]")
        page.wait_for_selector(".kn-problems li >> text=one flow per source")
        assert "kn-failed" in page.get_attribute(".kn-edit-msg", "class")
        page.fill(".kn-editor textarea", BROKEN)
        page.click("[data-edit=validate]")
        page.wait_for_selector(".kn-problems li[data-line='7']")
        # Save validates first: nothing is stored
        page.click("[data-edit=save]")
        page.wait_for_selector(".kn-edit-msg.kn-failed")
        assert api.get("/api/v1/main/flows/company.team/edited").json()["revision"] == 1
        # a valid source of another flow id: the API refuses it, the page says why
        page.fill(".kn-editor textarea", EDITED.replace("id: edited", "id: renamed"))
        page.click("[data-edit=save]")
        page.wait_for_selector(".kn-problems li >> text=Illegal flow id update")
        assert api.get("/api/v1/main/flows/company.team/edited").json()["revision"] == 1
        # saved: a new revision, the page shows it
        page.fill(".kn-editor textarea", SECOND)
        page.click("[data-edit=save]")
        page.wait_for_selector(".kn-flow-page h2 >> text=rev 2")
        assert api.get("/api/v1/main/flows/company.team/edited?source=true").json()["source"] == SECOND
        # the revisions compared: 1 -> 2 adds the task, 2 -> 1 removes it, a revision with itself is the same
        added = page.eval_on_selector_all(".kn-diff-add code", "(c) => c.map((e) => e.textContent)")
        assert added == ["+   - id: bye", "+     type: io.kestra.plugin.core.log.Log",
                         '+     message: "<img src=x onerror=window.__pwned=1>"'], added
        assert page.eval_on_selector_all(".kn-diff-del", "(r) => r.length") == 0
        assert page.eval_on_selector_all(".kn-diff-same", "(r) => r.length") == 3   # three lines of context
        page.select_option(".kn-diff-pick select[name=from]", "2")
        page.select_option(".kn-diff-pick select[name=to]", "1")
        assert page.eval_on_selector_all(".kn-diff-del", "(r) => r.length") == 3
        contrast(page, tmp_path, "flow-diff")
        page.select_option(".kn-diff-pick select[name=to]", "2")
        assert page.inner_text(".kn-diff-out") == "No difference"
        page.click("[data-edit=edit]")
        page.fill(".kn-editor textarea", BROKEN)
        page.click("[data-edit=validate]")
        page.wait_for_selector(".kn-problems li")
        contrast(page, tmp_path, "flow-edit")
        page.click("[data-edit=cancel]")
        # delete asks first; kept, then deleted: the flows list, and the API has no such flow any more
        page.click("[data-edit=delete]")
        page.click("[data-edit=read]")
        assert api.get("/api/v1/main/flows/company.team/edited").status_code == 200
        page.click("[data-edit=delete]")
        assert "company.team.edited" in page.inner_text(".kn-confirm")
        page.click("[data-edit=confirm-delete]")
        page.wait_for_url("**/ui/main/flows")
        assert api.get("/api/v1/main/flows/company.team/edited").status_code == 404
        assert page.evaluate("() => window.__pwned") is None


# the diff module, in the browser: against an LCS length on random pairs, its budget, its escaping
DIFF_CHECKS = """async () => {
  const { lineDiff, diffHtml } = await import('/ui/static/diff.js');
  const lcs = (a, b) => {
    const t = Array.from({ length: a.length + 1 }, () => new Int32Array(b.length + 1));
    for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--)
      t[i][j] = a[i] === b[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
    return t[0][0];
  };
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const failures = [];
  for (let trial = 0; trial < 2000; trial++) {
    const side = () => Array.from({ length: Math.floor(random() * 14) }, () => 'abcd'[Math.floor(random() * 4)]);
    const a = side(), b = side();
    const script = lineDiff(a, b);
    const old = script.filter((s) => s.op !== '+').map((s) => s.text);
    const now = script.filter((s) => s.op !== '-').map((s) => s.text);
    const kept = script.filter((s) => s.op === ' ').length;
    const numbers = script.every((s) => (s.a === null || a[s.a - 1] === s.text) && (s.b === null || b[s.b - 1] === s.text));
    if (old.join() !== a.join() || now.join() !== b.join() || kept !== lcs(a, b) || !numbers) failures.push([a, b]);
  }
  const many = Array.from({ length: 3000 }, (_, i) => 'a' + i);
  const other = Array.from({ length: 3000 }, (_, i) => 'b' + i);
  return {
    failures: failures.slice(0, 3),
    tooLong: lineDiff(Array(20001).fill('x'), []),
    tooDifferent: lineDiff(many, other),
    withinBudget: lineDiff(many, other, { maxWork: 1e8 }) !== null,
    similar: lineDiff(many, many.map((l, i) => (i === 1500 ? 'changed' : l))).filter((s) => s.op !== ' ').length,
    escaped: diffHtml(lineDiff(['<b>x</b>'], ['<i>y</i>'])),
    none: diffHtml(null),
  };
}"""


def test_the_line_diff_is_minimal_bounded_and_escaped(tmp_path: Path) -> None:
    need_chromium()
    with standalone(tmp_path) as (page, api, server):
        page.goto(f"{server.url}/ui/main/flows")
        result = page.evaluate(DIFF_CHECKS)
        assert result["failures"] == [], result["failures"]
        assert result["tooLong"] is None and result["tooDifferent"] is None and result["withinBudget"]
        assert result["similar"] == 2   # one line changed among 3,000: one removed, one added
        assert "&lt;b&gt;x&lt;/b&gt;" in result["escaped"] and "<b>" not in result["escaped"]
        assert "too large or too different" in result["none"]


OTHER = """id: elsewhere
namespace: other.ns
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"""


def test_the_namespaces_and_a_namespaces_flows_kv_and_executions(tmp_path: Path) -> None:
    need_chromium()
    with standalone(tmp_path) as (page, api, server):
        for source in (EDITED, OTHER):
            assert api.post("/api/v1/main/flows", content=source.encode(), headers=YAML).status_code == 200
        assert api.put("/api/v1/main/namespaces/company.team/kv/my_key", content=b'"<img src=x onerror=window.__pwned=1>"',
                       headers={"Content-Type": "application/json"}).status_code == 200
        mine = api.post("/api/v1/main/executions/company.team/edited?wait=true").json()
        theirs = api.post("/api/v1/main/executions/other.ns/elsewhere?wait=true").json()
        page.goto(f"{server.url}/ui/")
        page.click(".kn-nav a >> text=Namespaces")
        page.wait_for_selector(".kn-list li[data-namespace]")
        listed = page.eval_on_selector_all(".kn-list li[data-namespace]", "(lis) => lis.map((li) => li.dataset.namespace)")
        assert listed == ["company", "company.team", "other", "other.ns"]   # with their parents
        page.fill(".kn-namespaces input[name=q]", "team")
        page.wait_for_function("() => document.querySelectorAll('.kn-list li[data-namespace]').length === 1")
        contrast(page, tmp_path, "namespaces")
        page.click(".kn-list a >> text=company.team")
        page.wait_for_selector(".kn-namespace-page h2 >> text=company.team")
        assert page.eval_on_selector_all(".kn-ns-flows tr[data-flow]", "(r) => r.map((e) => e.dataset.flow)") == ["edited"]
        assert page.eval_on_selector_all(".kn-ns-kv tr[data-key]", "(r) => r.map((e) => e.dataset.key)") == ["my_key"]
        assert "never" in page.inner_text(".kn-ns-kv tr[data-key=my_key]")
        page.wait_for_selector(f'.kn-erow[data-id="{mine["id"]}"]')
        assert page.query_selector(f'.kn-erow[data-id="{theirs["id"]}"]') is None
        contrast(page, tmp_path, "namespace")
        page.click(".kn-ns-flows a >> text=edited")
        page.wait_for_selector(".kn-flow-page")
        page.click(".kn-flow-page h2 a")   # a flow's namespace links to its page
        page.wait_for_selector(".kn-namespace-page h2 >> text=company.team")
        # a namespace without flows or keys says so
        page.goto(f"{server.url}/ui/main/namespaces/empty.ns")
        page.wait_for_selector(".kn-ns-kv >> text=No KV entries")
        assert "No flows" in page.inner_text(".kn-ns-flows")
        assert page.evaluate("() => window.__pwned") is None


LONG = """id: long
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""


def test_the_executions_list_follows_changes_and_asks_nothing_while_idle_or_hidden(tmp_path: Path) -> None:
    need_chromium()
    with standalone(tmp_path) as (page, api, server):
        assert api.post("/api/v1/main/flows", content=LONG.encode(), headers=YAML).status_code == 200
        page.add_init_script(STREAMS)
        searches: list[str] = []
        page.on("request", lambda request: searches.append(request.url) if "executions/search" in request.url else None)
        page.goto(f"{server.url}/ui/main/executions")
        page.wait_for_selector(".kn-executions .kn-ebody >> text=No executions")
        page.wait_for_function(f"() => ({OPEN_STREAMS})().length === 1")
        assert page.evaluate(OPEN_STREAMS) == ["/ui/main/executions/changes"]
        # a new execution, then its end: shown without a reload
        started = api.post("/api/v1/main/executions/company.team/long").json()
        row = f'.kn-erow[data-id="{started["id"]}"]'
        page.wait_for_selector(f'{row}[data-state="RUNNING"]', timeout=30_000)
        assert api.delete(f"/api/v1/main/executions/{started['id']}/kill").status_code == 202
        page.wait_for_selector(f'{row}[data-state="KILLED"]', timeout=30_000)
        # nothing changes: nothing is asked (a window of time longer than the stream's look at the store and gap)
        searches.clear()
        page.wait_for_timeout(3_000)
        assert searches == [], searches
        # hidden: the stream is closed; what changed meanwhile is fetched once seen again
        page.evaluate("() => window.postMessage({type: 'kestra-nb:visible', visible: false}, location.origin)")
        page.wait_for_function(f"() => ({OPEN_STREAMS})().length === 0")
        again = api.post("/api/v1/main/executions/company.team/long").json()
        api.delete(f"/api/v1/main/executions/{again['id']}/kill")
        Http(server).wait_state(again["id"], "KILLED")
        assert page.query_selector(f'.kn-erow[data-id="{again["id"]}"]') is None
        page.evaluate("() => window.postMessage({type: 'kestra-nb:visible', visible: true}, location.origin)")
        page.wait_for_selector(f'.kn-erow[data-id="{again["id"]}"][data-state="KILLED"]', timeout=30_000)
        assert page.evaluate(OPEN_STREAMS) == ["/ui/main/executions/changes"]


PAUSING = """id: pausing
namespace: company.team
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: before the pause
  - id: stop
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after the pause
"""


def test_in_jupyter_the_pages_stream_and_change_with_its_login_and_xsrf(tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import sync_playwright

    from tests.jupyter.conftest import jupyter_process

    root = tmp_path / "root"
    root.mkdir()
    with jupyter_process(tmp_path, root, tmp_path / "home") as jupyter, sync_playwright() as playwright, \
            httpx.Client(base_url=jupyter.url, timeout=30, headers={"Authorization": f"token {jupyter.token}"}) as api:
        for source in (EDITED, PAUSING):
            assert api.post("kestra/api/v1/flows", content=source.encode(), headers=YAML).status_code == 200
        doc = api.post("kestra/api/v1/main/executions/company.team/pausing").json()
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # the logs, followed through the API's SSE with the login cookie: a line written later comes live
            page.goto(f"{jupyter.url}kestra/ui/main/executions/company.team/pausing/{doc['id']}/logs?token={jupyter.token}")
            page.wait_for_selector(".kn-logs-page td.kn-msg >> text=before the pause", timeout=30_000)
            with api.stream("GET", f"kestra/api/v1/main/executions/{doc['id']}/follow", timeout=60) as events:
                for line in events.iter_lines():
                    if line.startswith("data:") and '"current":"PAUSED"' in line.replace(" ", ""):
                        break
            assert api.post(f"kestra/api/v1/main/executions/{doc['id']}/resume").status_code == 204
            page.wait_for_selector(".kn-logs-page td.kn-msg >> text=after the pause", timeout=30_000)
            # a flow saved (PUT) and deleted (DELETE) from its page: cookie requests carrying Jupyter's XSRF token
            page.goto(f"{jupyter.url}kestra/ui/main/flows/company.team/edited")
            page.click("[data-edit=edit]")
            page.fill(".kn-editor textarea", SECOND)
            page.click("[data-edit=save]")
            page.wait_for_selector(".kn-flow-page h2 >> text=rev 2", timeout=30_000)
            page.click("[data-edit=delete]")
            page.click("[data-edit=confirm-delete]")
            page.wait_for_url("**/kestra/ui/main/flows", timeout=30_000)
            assert api.get("kestra/api/v1/main/flows/company.team/edited").status_code == 404
            assert not errors, errors
        finally:
            browser.close()
