"""The README's picture: a `%%flow` cell and its view in JupyterLab, taken by this test so it stays true.

`make notebooks` runs it with KESTRA_NB_UPDATE_DOCS=1, which writes docs/view.png; otherwise the picture is
taken in the test's temp dir and the committed one is only checked to be a PNG of the same width.
"""
from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import nbformat
import pytest

from tests.jupyter.conftest import ROOT, jupyter_process
from tests.jupyter.test_browser import ALL_DONE, CHROMIUM, CHROMIUM_ARGS, KERNEL_READY

PICTURE = ROOT / "docs" / "view.png"
WIDTH = 1000   # CSS pixels of the page (the picture is the flow's cell: its YAML and its view)

FLOW = """%%flow --out ex -i region=north
id: daily_report
namespace: company.team
inputs:
  - id: region
    type: STRING
tasks:
  - id: extract
    type: io.kestra.plugin.core.debug.Return
    format: "orders of {{ inputs.region }}"
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["mon", "tue", "wed"]
    concurrencyLimit: 3
    tasks:
      - id: day
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.3S
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.extract.value }}: 3 days"
outputs:
  - id: summary
    type: STRING
    value: "{{ outputs.extract.value }}"
"""


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_the_readmes_picture(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%load_ext kestra_nb"),
                                         nbformat.v4.new_code_cell(FLOW)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "report.ipynb")
    with jupyter_process(tmp_path, root, tmp_path / "home", lab=True) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1600})
            page.goto(f"{lab.url}lab/tree/report.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            page.wait_for_function(ALL_DONE, timeout=60_000, polling=200)
            page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
            page.click(".kn-live .kn-row[data-task=extract] .kn-label")
            page.wait_for_selector(".kn-live .kn-detail:not([hidden])")
            assert page.evaluate("() => document.querySelector('.kn-live .kn-badge').dataset.state") == "SUCCESS"
            shot = tmp_path / "view.png"
            page.locator(".jp-Notebook .jp-Cell >> nth=1").screenshot(path=str(shot))
        finally:
            browser.close()
    width, height = png_size(shot)
    assert width > WIDTH * 0.8 and height > 600, (width, height)   # the whole cell: its YAML and its view
    if os.environ.get("KESTRA_NB_UPDATE_DOCS") == "1":
        PICTURE.parent.mkdir(exist_ok=True)
        shutil.copy(shot, PICTURE)
    assert png_size(PICTURE)[0] == width, "run `make notebooks` to take the README's picture again"
