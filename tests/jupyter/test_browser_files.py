"""JupyterLab in a real browser: a file output of a `%%flow` cell is a link that downloads the file through the
server extension with the page's own session (cookie), following the redirect to the execution that owns it."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.jupyter.conftest import jupyter_process
from tests.jupyter.test_browser import ALL_DONE, CHROMIUM, CHROMIUM_ARGS, KERNEL_READY

FLOW = """id: files
namespace: company.team
inputs:
  - id: uri
    type: STRING
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.uri }}"
outputs:
  - id: report
    type: STRING
    value: "{{ outputs.ret.value }}"
"""

STORE_A_FILE = """import os
from pathlib import Path
from kestra_nb.store.storage import InternalStorage

storage = InternalStorage(Path(os.environ["KESTRA_NB_HOME"]) / "storage")
uri = storage.put(storage.task_uri("company.team", "files", first.id, "ret", first.task_run_list[0].id,
                                   "report.txt"), "a file from the kernel ✓".encode())
values = {"uri": uri}
print(uri)"""

# the link of the second execution's view, and what fetching it with the page's cookie gives
DOWNLOAD = """async () => {
  const links = [...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.kn-live a.kn-file')];
  const link = links[links.length - 1];
  const response = await fetch(link.getAttribute('href'), {credentials: 'same-origin'});
  return {href: link.getAttribute('href'), uri: link.dataset.uri, status: response.status,
          redirected: response.redirected, disposition: response.headers.get('content-disposition'),
          text: await response.text(), links: links.length};
}"""


def test_file_output_link_downloads_in_jupyterlab(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kestra_nb"),
        nbformat.v4.new_code_cell("%%flow --out first -i uri=none\n" + FLOW),
        nbformat.v4.new_code_cell(STORE_A_FILE),
        nbformat.v4.new_code_cell("%%flow --out second --inputs values\n" + FLOW),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "files.ipynb")
    with jupyter_process(tmp_path, root, tmp_path / "home", lab=True) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab.url}lab/tree/files.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(ALL_DONE, timeout=120_000, polling=100)
            page.wait_for_selector(".kn-live a.kn-file", timeout=30_000)
            got = page.evaluate(DOWNLOAD)
        finally:
            browser.close()
    assert got["uri"].startswith("kestra:///company/team/files/executions/") and got["uri"].endswith("/report.txt")
    assert got["href"].startswith("/kestra/api/v1/main/executions/") and "/file?path=kestra%3A%2F%2F%2F" in got["href"]
    assert got["status"] == 200 and got["redirected"], got   # the file belongs to the first execution
    assert got["text"] == "a file from the kernel ✓"
    assert got["disposition"] == 'attachment; filename="report.txt"'
