"""A web page on another origin cannot make the standalone server do anything, in a real browser.

The server listens on 127.0.0.1; the attacker's page is served from 127.0.0.2 (another origin, still
loopback). The page tries what worked before the guard: a `no-cors` fetch POSTing a flow whose shell
task touches a marker file, and a `FormData` POST running a deployed flow that does the same. Nothing
may be created and no command run; the same page, once its origin is allowed with `--allow-origin`,
does run the deployed flow (so the refusal is the guard's, not the browser's). DNS rebinding is played
with chromium's host resolver mapping `attacker.example` to 127.0.0.1: the page at that name reads
nothing. The server's own origin keeps working. Playwright drives Debian's /usr/bin/chromium headless
(see ../shared/spec/jupyter-testing.md); chromium missing is a failure, not a skip.
"""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kestra_nb.server import serve_in_thread
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS

YAML = {"Content-Type": "application/x-yaml"}
PAGE = b"<!doctype html><html><body><h1>cute cats</h1></body></html>"

ATTACK = """async ({target, planted}) => {
  const results = {};
  try {
    await fetch(target + '/api/v1/flows', {method: 'POST', mode: 'no-cors', body: planted});
    results.flow = 'sent';
  } catch (e) { results.flow = String(e); }
  const form = new FormData();
  form.append('note', 'from a foreign page');
  try {
    await fetch(target + '/api/v1/executions/company.team/victim?wait=true',
                {method: 'POST', mode: 'no-cors', body: form});
    results.run = 'sent';
  } catch (e) { results.run = String(e); }
  return results;
}"""

OWN = """async () => {
  const form = new FormData();
  form.append('note', 'from the server itself');
  const answer = await fetch('/api/v1/executions/company.team/victim?wait=true', {method: 'POST', body: form});
  return [answer.status, (await answer.json()).state.current];
}"""


def shell_flow(flow_id: str, marker: Path) -> str:
    return f"""id: {flow_id}
namespace: company.team
tasks:
  - id: touch
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - touch {marker}
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def attacker_site() -> Iterator[str]:
    site = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@contextmanager
def kestra(home: Path, marker: Path, **options: Any) -> Iterator[tuple[str, httpx.Client]]:
    server, thread = serve_in_thread(home, port=0, grace=1, **options)
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        assert client.post("/api/v1/flows", content=shell_flow("victim", marker), headers=YAML).status_code == 200
        yield server.url, client
    finally:
        client.close()
        server.stop()
        thread.join(30)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP attacker.example 127.0.0.1"])
        try:
            yield launched
        finally:
            launched.close()


def test_a_foreign_page_gets_nothing_done(browser: Any, tmp_path: Path) -> None:
    ran, planted = tmp_path / "ran", tmp_path / "planted"
    with attacker_site() as site, kestra(tmp_path / "home", ran) as (target, client):
        page = browser.new_page()
        page.goto(site)
        results = page.evaluate(ATTACK, {"target": target, "planted": shell_flow("planted", planted)})
        assert results == {"flow": "sent", "run": "sent"}   # the browser sent both (opaque answers)
        assert client.get("/api/v1/flows/company.team/planted").status_code == 404
        assert client.get("/api/v1/executions/search").json()["total"] == 0
        assert not ran.exists() and not planted.exists()

        # DNS rebinding: the attacker's name now resolves to the server; as "same origin" it reads nothing
        port = target.rsplit(":", 1)[1]
        answer = page.goto(f"http://attacker.example:{port}/api/v1/flows/search")
        assert answer is not None and answer.status == 403
        assert "victim" not in page.content() and "touch" not in page.content()

        # the server's own origin works
        own = browser.new_page()
        own.goto(f"{target}/ping")
        assert own.evaluate(OWN) == [200, "SUCCESS"]
        assert ran.exists()


def test_the_same_page_works_once_its_origin_is_allowed(browser: Any, tmp_path: Path) -> None:
    ran, planted = tmp_path / "ran", tmp_path / "planted"
    with attacker_site() as site, kestra(tmp_path / "home", ran, allow_origins=(site,)) as (target, client):
        page = browser.new_page()
        page.goto(site)
        assert page.evaluate(ATTACK, {"target": target, "planted": shell_flow("planted", planted)}) == {
            "flow": "sent", "run": "sent"}
        assert ran.exists()     # the allowed origin ran the deployed flow
        # a flow sent as text/plain (what a no-cors fetch can send) is still not taken as YAML: 415
        assert client.get("/api/v1/flows/company.team/planted").status_code == 404
        assert not planted.exists()
