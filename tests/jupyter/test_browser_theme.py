"""Every text of the execution view is readable in JupyterLab's light and dark themes (WCAG contrast ≥ 4.5:1
against what is behind it), with Kestra's state colours on the badges and bars; the view has a time axis, and
a click on a row shows that task run's outputs and logs, and a Topology tab shows the flow. Screenshots of both themes are kept in the test's dir.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS
from tests.jupyter.conftest import jupyter_process
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS, rgb

EVERYTHING = """id: everything
namespace: company.team
labels:
  team: data
tasks:
  - id: levels
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: a warning line
  - id: info
    type: io.kestra.plugin.core.log.Log
    message: an info line
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "a string"
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
  - id: soft
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    errorMessage: tolerated
outputs:
  - id: text
    type: STRING
    value: "{{ outputs.value.value }}"
  - id: number
    type: INT
    value: 42
  - id: flag
    type: BOOLEAN
    value: true
"""

FAILING = """id: broken
namespace: company.team
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: not yet
"""

KILLED = """id: stopped
namespace: company.team
tasks:
  - id: stop
    type: io.kestra.plugin.core.execution.Exit
    state: KILLED
"""

# Texts whose contrast with the colour behind them (blended through transparent layers) is under 4.5:1.
LOW_CONTRAST = """() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) out = out.map((v, i) => v * (1 - c[3]) + c[i] * c[3]);
    return out;
  };
  const bad = [];
  let checked = 0;
  for (const el of document.querySelectorAll('.kn-live *')) {
    if (el.tagName === 'OPTION' || !el.getClientRects().length) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
    if (!text) continue;
    checked++;
    const style = getComputedStyle(el);
    const back = behind(el);
    const c = parse(style.color);
    const fore = c.slice(0, 3).map((v, i) => v * c[3] + back[i] * (1 - c[3]));
    const [hi, lo] = [lum(fore), lum(back)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} "${text.slice(0, 30)}" ${style.color} on rgb(${back.map(Math.round)}) ${ratio.toFixed(2)}`);
  }
  return {checked, bad};
}"""


def theme_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "kernel-home"))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kestra_nb"),
        nbformat.v4.new_code_cell("%%flow\n" + EVERYTHING),
        nbformat.v4.new_code_cell("%%flow --allow-failure\n" + FAILING),
        nbformat.v4.new_code_cell("%%flow --allow-failure\n" + KILLED),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    path = root / "theme.ipynb"
    nbformat.write(nb, path)
    return path


def open_everything(page: Any) -> None:
    """Show what the view can show: the first view's detail of a task run, another's logs."""
    page.click(".kn-live >> nth=0 >> .kn-row[data-task=value] .kn-label")
    page.wait_for_selector(".kn-live >> nth=0 >> .kn-detail:not([hidden])")
    page.click(".kn-live >> nth=2 >> [data-tab=logs]")
    page.click(".kn-live >> nth=1 >> [data-tab=topology]")


def test_the_view_is_readable_in_light_and_dark_themes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    path = theme_notebook(tmp_path, monkeypatch)
    with jupyter_process(tmp_path, path.parent, tmp_path / "home", lab=True) as lab, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1800})
            page.goto(f"{lab.url}lab/tree/{path.name}?token={lab.token}")
            page.wait_for_function("() => document.querySelectorAll('.kn-live').length >= 3", timeout=90_000)
            # the time axis and the click on a row
            assert page.locator(".kn-live >> nth=0 >> .kn-axis .kn-tick").count() >= 2
            open_everything(page)
            detail = page.inner_text(".kn-live >> nth=0 >> .kn-detail")
            assert "value" in detail and '"a string"' in detail and "SUCCESS" in detail
            # the flow's topology, its boxes in the states of their task runs
            boxes = page.evaluate("() => [...document.querySelectorAll('.kn-live')[1].querySelectorAll("
                                  "'[data-pane=topology] [data-task]')].map((b) => [b.dataset.task, b.dataset.state])")
            assert boxes == [["fail", "FAILED"]], boxes
            states = page.evaluate("() => [...document.querySelectorAll('.kn-live')].map((v) => "
                                   "[v.querySelector('.kn-badge').dataset.state, "
                                   "getComputedStyle(v.querySelector('.kn-badge')).backgroundColor])")
            assert states == [[s, rgb(STATE_COLORS[s])] for s in ("WARNING", "FAILED", "KILLED")], states
            for theme, light in (("JupyterLab Light", True), ("JupyterLab Dark", False)):
                page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', "
                              f"{{theme: '{theme}'}})")
                page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{str(light).lower()}'",
                                       timeout=30_000)
                # the theme's CSS is in: the view's own background follows it
                page.wait_for_function(
                    "(light) => { const c = getComputedStyle(document.querySelector('.kn-live')).backgroundColor;"
                    " const [r, g, b] = c.match(/\\d+/g).map(Number); return (r + g + b > 382) === light; }",
                    arg=light, timeout=30_000)
                page.wait_for_function("() => !document.querySelector('#jupyterlab-splash')", timeout=30_000)
                result = page.evaluate(LOW_CONTRAST)
                page.screenshot(path=str(tmp_path / f"view-{'light' if light else 'dark'}.png"), full_page=True)
                assert result["checked"] > 60, result
                assert not result["bad"], (theme, result["bad"])
        finally:
            browser.close()
