"""The execution view's actions in a real JupyterLab: through the server extension's REST API with the page's
own auth (token and XSRF cookie), not through the kernel.

A cell blocked on a Pause is resumed from its view with the onResume form; a long one is killed from its
view; an ended, failed one is restarted from its view, and the view follows the restarted execution.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.jupyter.conftest import jupyter_process
from tests.jupyter.test_browser import ALL_DONE, CHROMIUM, CHROMIUM_ARGS, KERNEL_READY

APPROVAL = """id: approval
namespace: company.team
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
        description: why it may go on
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "approved: {{ outputs.approve.onResume.reason }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.after.value }}"
"""

LONG = """id: long
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT120S
"""

BROKEN = """id: broken
namespace: company.team
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: not yet
"""

VIEW = "(i) => document.querySelectorAll('.kn-live')[i]"


def state_of(page, i: int) -> str:
    return page.evaluate(f"(i) => ({VIEW})(i).querySelector('.kn-badge').dataset.state", i)


def test_resume_kill_and_restart_from_the_view(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kestra_nb"),
        nbformat.v4.new_code_cell("%%flow --out approved\n" + APPROVAL),
        nbformat.v4.new_code_cell("%%flow --allow-failure --out long\n" + LONG),
        nbformat.v4.new_code_cell("%%flow --allow-failure --out broken\n" + BROKEN),
        nbformat.v4.new_code_cell("print(approved.state, approved.outputs, long.state, broken.state)"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "actions.ipynb")
    with jupyter_process(tmp_path, root, tmp_path / "home", lab=True) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{lab.url}lab/tree/actions.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            # not awaited: Run All's promise settles only when the paused cell ends
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            # 1. paused: the form of the Pause's onResume inputs, sent to the API
            page.wait_for_function(f"() => ({VIEW})(0) && ({VIEW})(0).querySelector('[data-action=resume]')",
                                   timeout=60_000)
            assert state_of(page, 0) == "PAUSED"
            page.evaluate(f"() => ({VIEW})(0).querySelector('[data-action=resume]').click()")
            page.wait_for_function(f"() => ({VIEW})(0).querySelector('form.kn-resume input[name=reason]')")
            page.evaluate(f"""() => {{
                const form = ({VIEW})(0).querySelector('form.kn-resume');
                form.querySelector('input[name=reason]').value = 'looks good <b>to me</b>';
                form.requestSubmit();
            }}""")
            page.wait_for_function(f"() => ({VIEW})(0).querySelector('.kn-badge').dataset.state === 'SUCCESS'",
                                   timeout=30_000)
            assert "approved: looks good <b>to me</b>" in page.evaluate(f"() => ({VIEW})(0).innerText")
            # 2. running: Kill
            page.wait_for_function(f"() => ({VIEW})(1) && ({VIEW})(1).querySelector('[data-action=kill]')",
                                   timeout=60_000)
            page.evaluate(f"() => ({VIEW})(1).querySelector('[data-action=kill]').click()")
            page.wait_for_function(ALL_DONE, timeout=60_000, polling=200)
            assert state_of(page, 1) == "KILLED" and state_of(page, 2) == "FAILED"
            printed = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[4].node.innerText")
            assert "SUCCESS {'said': 'approved: looks good <b>to me</b>'} KILLED FAILED" in printed, printed
            # 3. ended, with the kernel idle: Restart, then the view follows the restarted execution
            page.wait_for_function(f"() => ({VIEW})(2).querySelector('[data-action=restart]')")
            page.evaluate(f"() => ({VIEW})(2).querySelector('[data-action=restart]').click()")
            page.wait_for_function(
                f"() => /: FAILED$/.test(({VIEW})(2).querySelector('.kn-action-msg').textContent)", timeout=30_000)
            # the buttons follow the state: a killed execution is not resumed or killed again
            assert page.evaluate(f"() => ({VIEW})(1).querySelectorAll('[data-action=resume], [data-action=kill]')"
                                 ".length") == 0
            page.screenshot(path=str(tmp_path / "actions.png"))
        finally:
            browser.close()


GREET = """id: greet
namespace: company.team
inputs:
  - id: name
    type: STRING
  - id: loud
    type: BOOLEAN
    defaults: false
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.name }} {{ inputs.loud }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.say.value }}"
"""


def test_a_flow_form_runs_the_flow_and_shows_its_view(tmp_path: Path) -> None:
    """`%flow form`: ipywidgets in JupyterLab; Run draws the execution's view (the mime renderer) in the form."""
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kestra_nb"),
        nbformat.v4.new_code_cell("%%flow --no-run\n" + GREET),
        nbformat.v4.new_code_cell("%flow form company.team.greet --out ex"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "form.ipynb")
    with jupyter_process(tmp_path, root, tmp_path / "home", lab=True) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{lab.url}lab/tree/form.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            page.wait_for_function(ALL_DONE, timeout=60_000, polling=200)
            page.wait_for_selector(".widget-button", timeout=30_000)
            page.click(".widget-button")   # the required name is missing: the engine says so, in the form
            page.wait_for_selector("text=Missing required input:name", timeout=30_000)
            page.fill(".widget-text input", "Ada")
            page.check(".widget-checkbox input")
            page.click(".widget-button")
            page.wait_for_function("() => { const b = document.querySelector('.jp-OutputArea .kn-live .kn-badge');"
                                   " return b && b.dataset.state === 'SUCCESS'; }", timeout=30_000)
            assert "hello Ada true" in page.inner_text(".kn-live")
            page.screenshot(path=str(tmp_path / "form.png"))
        finally:
            browser.close()
