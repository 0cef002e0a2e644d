"""JupyterLab in a real browser: quickstart.ipynb runs, its timelines and outputs are in the page.

JupyterLab listens on 127.0.0.1 (free port, token, temp root and Jupyter dirs); Playwright (PyPI) drives
Debian's /usr/bin/chromium headless - never `playwright install`. The recipe and its gotchas are in
../shared/spec/jupyter-testing.md (§7: expose the app, wait for the kernel, scope queries to the notebook).
Chromium missing is a FAILURE, not a skip: `make test` installs it (`apt-get install -y chromium`).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS
from tests.jupyter.conftest import NOTEBOOKS, jupyter_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# the notebook panel, once its kernel is connected and idle (the toolbar says idle too early: §7.1)
KERNEL_READY = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const context = panel && panel.sessionContext;
  const kernel = context && context.session && context.session.kernel;
  return !!(context && context.isReady && kernel && kernel.connectionStatus === 'connected'
            && kernel.status === 'idle' && panel.content && panel.content.widgets.length);
}"""

# every state a `nap` bar shows, in order, recorded on each DOM change of the notebook (no polling)
RECORD = """() => {
  const node = window.jupyterapp.shell.currentWidget.node;
  const seen = window.__knSeen = [];
  const record = () => {
    for (const bar of node.querySelectorAll('.kn-bar[data-task="nap"]')) {
      if (seen[seen.length - 1] !== bar.dataset.state) seen.push(bar.dataset.state);
    }
  };
  new MutationObserver(record).observe(node, {subtree: true, childList: true, attributes: true});
}"""

ALL_DONE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter((cell) => cell.model.type === 'code');
  return kernel.status === 'idle' && cells.every((cell) => cell.model.executionCount !== null);
}"""

BARS = """() => [...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.kn-live .kn-bar')].map(
  (bar) => [bar.dataset.task, bar.dataset.state, getComputedStyle(bar).backgroundColor])"""


def rgb(color: str) -> str:
    """`#029E73` as the browser computes it: `rgb(2, 158, 115)`."""
    value = color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(value[i:i + 2], 16) for i in (0, 2, 4)))


def test_quickstart_in_jupyterlab(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", root / "quickstart.ipynb")
    with jupyter_process(tmp_path, root, tmp_path / "home", lab=True) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab.url}lab/tree/quickstart.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            page.evaluate(RECORD)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(ALL_DONE, timeout=120_000, polling=100)
            check_page(page, tmp_path)
        finally:
            browser.close()


def check_page(page: Any, tmp_path: Path) -> None:
    # a bar was seen RUNNING (growing) before it turned SUCCESS
    seen = page.evaluate("() => window.__knSeen")
    assert "RUNNING" in seen and "SUCCESS" in seen, seen
    assert seen.index("RUNNING") < len(seen) - 1 - seen[::-1].index("SUCCESS"), seen
    # the timelines' bars are drawn live, in Kestra's state colours
    bars = [tuple(bar) for bar in page.evaluate(BARS)]
    assert ("mytask", "SUCCESS", rgb(STATE_COLORS["SUCCESS"])) in bars, bars
    assert ("check", "FAILED", rgb(STATE_COLORS["FAILED"])) in bars, bars
    assert sum(1 for task, state, _ in bars if task == "nap" and state == "SUCCESS") >= 3, bars
    node_text = page.evaluate("() => window.jupyterapp.shell.currentWidget.node.innerText")
    # the outputs: the seed's flow output in its view, the bound `outputs`, and the API call of the last cell
    assert '"hello from kestra"' in node_text
    assert "FAILED -> SUCCESS {'loaded': '42 orders'}" in node_text
    assert "200 SUCCESS {'mydata': 'hello from kestra'}" in node_text
    views = page.evaluate("() => window.jupyterapp.shell.currentWidget.node.querySelectorAll('.kn-live').length")
    assert views >= 6  # the widget views (not the static fallback) rendered
    errors = page.evaluate("() => window.jupyterapp.shell.currentWidget.node.querySelectorAll("
                           "'.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]').length")
    assert errors == 0
    page.evaluate("() => window.jupyterapp.shell.currentWidget.node.querySelector("
                  "'.kn-bar[data-task=\"nap\"]').scrollIntoView({block: 'center'})")
    screenshot = tmp_path / "quickstart.png"
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000
