"""A saved notebook shows its execution views with no kernel: in JupyterLab and in Notebook 7 (the
extension's mime renderer), and through nbconvert with and without sanitizing (the HTML twin).

The notebook is executed by nbclient, saved, and its kernel is gone; the browser opens the file (not trusted:
the renderer is safe, a flow's values are data) and nothing is run. What the user saw: the state, the bars,
the outputs, and for a failed execution its error first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS
from tests.jupyter.conftest import SEED, jupyter_process
from tests.jupyter.test_browser import CHROMIUM, CHROMIUM_ARGS, rgb

FAILING = """id: broken
namespace: company.team
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "{{ nme }}"
"""

HOSTILE = """id: hostile
namespace: company.team
tasks:
  - id: evil
    type: io.kestra.plugin.core.debug.Return
    format: "<img src=x onerror=\\"window.__pwned=1\\"><script>window.__pwned=2</script>"
outputs:
  - id: out
    type: STRING
    value: "{{ outputs.evil.value }}"
"""

VIEWS = """() => [...document.querySelectorAll('.kn-live')].map((view) => ({
  state: view.querySelector('.kn-badge').dataset.state,
  bars: [...view.querySelectorAll('.kn-bar')].map((bar) => [bar.dataset.task, getComputedStyle(bar).backgroundColor]),
  error: (view.querySelector('.kn-error') || {}).textContent || '',
  tab: view.querySelector('.kn-tab.kn-active').dataset.tab,
  text: view.innerText,
  images: view.querySelectorAll('img, script').length,
}))"""


def saved_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Execute a notebook of three `%%flow` cells with nbclient and save it; its kernel is shut down."""
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "kernel-home"))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kestra_nb"),
        nbformat.v4.new_code_cell("%%flow\n" + SEED),
        nbformat.v4.new_code_cell("%%flow\n" + FAILING),
        nbformat.v4.new_code_cell("%%flow\n" + HOSTILE),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True).execute()
    path = root / "saved.ipynb"
    nbformat.write(nb, path)
    return path


def wait_for_views(page: Any, count: int) -> list[dict[str, Any]]:
    page.wait_for_function(f"() => document.querySelectorAll('.kn-live').length >= {count}", timeout=90_000)
    return page.evaluate(VIEWS)


def check_views(views: list[dict[str, Any]]) -> None:
    seed, failed, hostile = views
    assert seed["state"] == "SUCCESS" and ["mytask", rgb(STATE_COLORS["SUCCESS"])] in seed["bars"]
    assert '"hello from kestra"' in seed["text"] and seed["tab"] == "outputs"
    # what went wrong, first: the error above the timeline, the view open on the error logs
    assert failed["state"] == "FAILED" and "greet" in failed["error"] and "nme" in failed["error"], failed
    assert failed["tab"] == "logs"
    assert hostile["state"] == "SUCCESS" and hostile["images"] == 0 and "<img src=x" in hostile["text"]


def check_tabs_and_filters(page: Any) -> None:
    """With no kernel, the tabs and the log filters work: they are the view's own (the saved output has it all)."""
    seed = ".kn-live >> nth=0"
    page.click(f"{seed} >> [data-tab=logs]")
    assert page.is_visible(f"{seed} >> [data-pane=logs]") and not page.is_visible(f"{seed} >> [data-pane=outputs]")
    lines = page.locator(f"{seed} >> .kn-logs tr")
    assert lines.count() >= 1 and "hello from kestra" in page.inner_text(f"{seed} >> .kn-logs")
    page.select_option(f"{seed} >> .kn-level", "ERROR")   # nothing that bad in the seed's logs
    assert lines.count() == 0 and "No logs" in page.inner_text(f"{seed} >> .kn-logbody")
    page.select_option(f"{seed} >> .kn-level", "TRACE")
    page.select_option(f"{seed} >> .kn-task", "mytask")
    assert lines.count() >= 1 and all(t == "mytask" for t in page.locator(f"{seed} >> .kn-logs td:nth-child(3)")
                                      .all_inner_texts())
    page.click(f"{seed} >> [data-tab=outputs]")
    assert page.is_visible(f"{seed} >> [data-pane=outputs]")
    # the failed one opened on its ERROR lines; all its lines are one choice away
    failed = ".kn-live >> nth=1"
    assert page.input_value(f"{failed} >> .kn-level") == "ERROR"
    errors = page.locator(f"{failed} >> .kn-logs tr").count()
    page.select_option(f"{failed} >> .kn-level", "TRACE")
    assert page.locator(f"{failed} >> .kn-logs tr").count() >= errors >= 1


def test_a_saved_notebook_renders_its_views_without_a_kernel(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    path = saved_notebook(tmp_path, monkeypatch)
    saved = nbformat.read(path, as_version=4)
    assert "widgets" not in saved.metadata
    with jupyter_process(tmp_path, path.parent, tmp_path / "home", lab=True) as lab, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{lab.url}lab/tree/{path.name}?token={lab.token}")
            check_views(wait_for_views(page, 3))
            check_tabs_and_filters(page)
            assert page.evaluate("() => window.__pwned") is None
            page.screenshot(path=str(tmp_path / "jupyterlab-saved.png"))
            page.goto(f"{lab.url}notebooks/{path.name}?token={lab.token}")   # Notebook 7
            check_views(wait_for_views(page, 3))
            assert page.evaluate("() => window.__pwned") is None
            page.screenshot(path=str(tmp_path / "notebook7-saved.png"))
        finally:
            browser.close()


@pytest.mark.parametrize("sanitize", [False, True])
def test_nbconvert_shows_the_twin_with_and_without_sanitizing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              sanitize: bool) -> None:
    from nbconvert import HTMLExporter

    path = saved_notebook(tmp_path, monkeypatch)
    exporter = HTMLExporter(sanitize_html=sanitize)
    html, _ = exporter.from_filename(str(path))
    body = html[html.index("<body"):]
    assert "company.team.myflow" in body and "hello from kestra" in body and "█" in body
    assert "FAILED" in body and "nme" in body
    assert "&lt;li&gt;" not in body and "&lt;blockquote" not in body and "&lt;ul" not in body   # no tag as text
    assert "<img src=x" not in body and "window.__pwned=2</script>" not in body
