"""Notebook figures of the Jupyter issue (run by `make bench`, never by `make test`).

1. `%%flow` with the seed flow, warm, in a real IPython kernel (jupyter_client): the whole cell as the front
   end sees it (execute_request sent -> execute_reply and idle received), the view included. Target p50 ≤ 30 ms.
   An empty cell in the same kernel, and the seed cell run in-process on an InteractiveShell (no kernel
   messaging), are printed for scale.
2. A ForEach of 10,000 task runs in the same kernel: the view is ONE display output
   (application/vnd.kestra.execution+json), shown with `display_data` and replaced with `update_display_data`.
   Those messages stay throttled (≤ 25 per second of run time, +2 for the first and the final push), their
   sizes are printed, and the output as a notebook saves it stays ≤ 60 KB. The execution ends SUCCESS with
   10,001 task runs.
3. The same cell in JupyterLab in headless Debian chromium (Playwright, /usr/bin/chromium, never a downloaded
   browser): after Run All, the tab's memory - the JS heap (CDP Performance.getMetrics) and the renderer
   process's private memory (USS; its RSS and PSS are printed beside) - stays ≤ 200 MB, sampled while the flow
   runs and at the end; the view's DOM node count is printed.

Each figure is printed with its target and OK/FAIL; the exit status is non-zero only if a target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # kestra_nb, and tests.jupyter.conftest for the JupyterLab process

SEED = (ROOT / "examples" / "myflow.yml").read_text(encoding="utf-8")
MIME = "application/vnd.kestra.execution+json"
MAX_RATE = 25           # display updates per second (kestra_nb/jupyter/live.py MAX_RATE)
SAVED_LIMIT = 60_000    # bytes of the saved output
TAB_LIMIT = 200 * 2**20  # bytes of the browser tab
MB = 2**20


def foreach_flow(values: int) -> str:
    """A ForEach of `values` values (Pebble's range is inclusive), one Return child each, all at once."""
    return f"""id: many
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(0, {values - 1}) }}}}"
    concurrencyLimit: 0
    tasks:
      - id: one
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def verdict(ok: bool) -> str:
    return "OK" if ok else "FAIL"


class Kernel:
    """A real ipykernel through jupyter_client; `run(code)` times a cell and collects its iopub messages."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")

    def run(self, code: str, timeout: float = 300) -> tuple[float, list[dict[str, Any]]]:
        """Execute `code`; (milliseconds until the reply and idle, iopub messages of the cell)."""
        client = self.client
        t0 = time.perf_counter()
        msg_id = client.execute(code)
        reply = client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = client.get_shell_msg(timeout=timeout)
        messages = []
        while True:
            msg = client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        elapsed = (time.perf_counter() - t0) * 1000
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed: {reply['content']}")
        return elapsed, messages

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def data_bytes(data: dict[str, Any]) -> int:
    """Bytes of a message's `data` as JSON on the wire."""
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def bench_kernel(n: int, warmup: int, values: int, in_process: list[float]) -> int:
    """Figures 1 and 2 (`in_process`: the seed cell's in-process timings, printed with 1); the status."""
    from kestra_nb.jupyter.display import saved_size

    status = 0
    kernel = Kernel()
    try:
        kernel.run("%load_ext kestra_nb")
        empty = [kernel.run("pass")[0] for _ in range(n)]
        cell = "%%flow\n" + SEED
        for _ in range(warmup):
            kernel.run(cell)
        samples = [kernel.run(cell)[0] for _ in range(n)]
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        ok = p50 <= 30
        status |= not ok
        print(f"%%flow seed cell in a kernel (warm, view included): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"mean {statistics.fmean(samples):.1f} ms over {len(samples)} (target p50 <= 30 ms) {verdict(ok)}")
        print(f"  for scale, an empty cell (`pass`) in the same kernel: p50 {percentile(empty, 50):.1f} ms; "
              f"the seed cell in-process (InteractiveShell, view built, no messaging): "
              f"p50 {percentile(in_process, 50):.2f} ms, p99 {percentile(in_process, 99):.2f} ms")

        wall, messages = kernel.run("%%flow --out many\n" + foreach_flow(values))
        views = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")
                 and MIME in m["content"].get("data", {})]
        ids = {m["content"].get("transient", {}).get("display_id") for m in views}
        sizes = [data_bytes(m["content"]["data"]) for m in views]
        _, check = kernel.run("print(many.state, len(many.task_run_list), "
                              "(many.state.end_date - many.state.start_date).total_seconds())")
        text = "".join(m["content"].get("text", "") for m in check if m["msg_type"] == "stream").split()
        ended = text[:2] == ["SUCCESS", str(values + 1)]
        seconds = float(text[2]) if len(text) > 2 else float("nan")
        status |= not ended
        print(f"ForEach of {values:,} task runs in the kernel: {' '.join(text[:2])} task runs "
              f"(target SUCCESS {values + 1:,}) {verdict(ended)}; run {seconds:.2f} s, cell {wall / 1000:.2f} s")
        limit = MAX_RATE * seconds + 2  # the first and the final push fall outside the rate window
        ok = len(views) <= limit and len(ids) == 1
        status |= not ok
        print(f"  view messages (display_data + update_display_data with {MIME}): {len(views)} "
              f"({len(views) / seconds:.1f}/s; target <= {MAX_RATE}/s: {limit:.0f}), {len(ids)} display id "
              f"(target 1) {verdict(ok)}")
        if views:
            largest = max(views, key=lambda m: data_bytes(m["content"]["data"]))["content"]["data"]
            parts = ", ".join(f"{mime} {data_bytes({mime: value}) / 1000:.1f}" for mime, value in largest.items())
            print(f"  their data: largest {max(sizes) / 1000:.1f} KB ({parts} KB), total {sum(sizes) / 1e6:.2f} MB, "
                  f"mean {statistics.fmean(sizes) / 1000:.1f} KB")
            saved = saved_size(views[-1]["content"]["data"])
            last_view = json.loads(views[-1]["content"]["data"][MIME]["view"])
            ok = saved <= SAVED_LIMIT and views[-1]["content"]["data"][MIME]["summary"].get("state") == "SUCCESS"
            status |= not ok
            print(f"  the final output as saved: {saved / 1000:.1f} KB (target <= {SAVED_LIMIT / 1000:.0f} KB), "
                  f"state {views[-1]['content']['data'][MIME]['summary'].get('state')}, "
                  f"{len(last_view.get('runs', []))} rows shown, hidden {last_view.get('hidden')} {verdict(ok)}")
        else:
            status = 1
            print("  no view message at all FAIL")
    finally:
        kernel.close()
    return status


def bench_in_process(n: int, warmup: int) -> list[float]:
    """The seed cell on an InteractiveShell in this process (view built, no kernel messaging)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kestra_nb")
    # the shell's display publisher prints each output; this figure is about the cell, not the terminal
    shell.display_pub.publish = lambda *args, **kwargs: None  # type: ignore[method-assign]
    for _ in range(warmup):
        shell.run_cell_magic("flow", "", SEED)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        shell.run_cell_magic("flow", "", SEED)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


# ------------------------------------------------------------------------------------------ the browser tab

VIEW_NODES = """() => window.jupyterapp.shell.currentWidget.node.querySelectorAll('.kn-live *').length"""
VIEW_STATE = """() => [...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.kn-live .kn-head .kn-badge')]
  .map((badge) => badge.dataset.state)"""
DOCUMENT_NODES = "() => document.getElementsByTagName('*').length"
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"  # not awaited: see below


def renderers() -> dict[int, tuple[int, int, int]]:
    """The chromium renderer processes started under this one: pid -> (RSS, PSS, USS) bytes.

    One page on one origin: the tab's renderer is the largest (checked once by allocating 100 MB in the page:
    only that one grew); the others are chromium's spare renderer and the initial about:blank one."""
    import psutil

    out = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if "--type=renderer" in proc.cmdline():
                info = proc.memory_full_info()
                out[proc.pid] = (info.rss, info.pss, info.uss)
        except psutil.Error:
            continue
    return out


def tab_memory() -> tuple[int, int, int]:
    """(RSS, PSS, USS) of the tab's renderer; zeros when none is found."""
    found = renderers()
    return max(found.values()) if found else (0, 0, 0)


def bench_browser(tmp: Path, values: int, timeout: float) -> int:
    """Figure 3; the status."""
    import nbformat
    from playwright.sync_api import sync_playwright

    from tests.jupyter.conftest import jupyter_process
    from tests.jupyter.test_browser import ALL_DONE, CHROMIUM, CHROMIUM_ARGS, KERNEL_READY

    if not CHROMIUM.exists():
        print(f"browser tab: {CHROMIUM} is missing (`make chromium`) FAIL")
        return 1
    root = tmp / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%load_ext kestra_nb"),
                                               nbformat.v4.new_code_cell("%%flow\n" + foreach_flow(values))])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "many.ipynb")
    status = 0
    with jupyter_process(tmp, root, tmp / "home", lab=True) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def heap() -> dict[str, float]:
                return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

            page.goto(f"{lab.url}lab/tree/many.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=90_000)
            before, before_tab = heap()["JSHeapUsedSize"], tab_memory()
            # `execute` returns a promise that settles when every cell is done: evaluating it would block here
            page.evaluate(RUN_ALL)
            t0 = time.monotonic()
            peak_heap, peak_tab = 0.0, (0, 0, 0)
            while True:  # sample the tab while the flow runs: the peak counts, not only the end
                peak_heap = max(peak_heap, heap()["JSHeapUsedSize"])
                peak_tab = max(peak_tab, tab_memory())
                if page.evaluate(ALL_DONE) and time.monotonic() - t0 > 0.5:
                    break
                if time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"the notebook did not finish in {timeout:.0f} s")
                time.sleep(0.25)
            seconds = time.monotonic() - t0
            states = page.evaluate(VIEW_STATE)
            nodes, document_nodes = page.evaluate(VIEW_NODES), page.evaluate(DOCUMENT_NODES)
            end, end_tab = heap(), tab_memory()
            cdp.send("HeapProfiler.collectGarbage")
            after_gc = heap()["JSHeapUsedSize"]

            ok = states == ["SUCCESS"]
            status |= not ok
            print(f"browser tab (JupyterLab, headless chromium), Run All of the {values:,}-task-run ForEach: "
                  f"done in {seconds:.1f} s, view state {states} (target ['SUCCESS']) {verdict(ok)}")
            ok = max(peak_heap, end["JSHeapUsedSize"]) <= TAB_LIMIT
            status |= not ok
            print(f"  JS heap used: peak {peak_heap / MB:.1f} MB, at the end {end['JSHeapUsedSize'] / MB:.1f} MB "
                  f"(total {end['JSHeapTotalSize'] / MB:.1f} MB), after a GC {after_gc / MB:.1f} MB; "
                  f"{before / MB:.1f} MB before the run (target <= {TAB_LIMIT / MB:.0f} MB) {verdict(ok)}")
            if end_tab[0]:
                # the tab's own memory is its renderer's private pages (USS: what Chrome's task manager calls the
                # memory footprint); RSS also counts the libraries and buffers shared with the other chromium
                # processes (~100 MB), and an idle JupyterLab tab is ~250 MB RSS before any cell runs
                ok = max(peak_tab[2], end_tab[2]) <= TAB_LIMIT
                status |= not ok
                print(f"  tab renderer private memory (USS): idle {before_tab[2] / MB:.0f} -> peak {peak_tab[2] / MB:.0f}"
                      f" -> end {end_tab[2] / MB:.0f} MB (target <= {TAB_LIMIT / MB:.0f} MB) {verdict(ok)}")
                print(f"    with shared pages: RSS {before_tab[0] / MB:.0f} -> peak {peak_tab[0] / MB:.0f} -> "
                      f"{end_tab[0] / MB:.0f} MB, PSS {before_tab[1] / MB:.0f} -> peak {peak_tab[1] / MB:.0f} -> "
                      f"{end_tab[1] / MB:.0f} MB (idle -> peak -> end)")
            else:
                print("  tab renderer RSS: no renderer process found under this one (not measured)")
            print(f"  DOM nodes in the view (.kn-live *): {nodes:,}; in the whole page: {document_nodes:,}")
        finally:
            browser.close()
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="timed seed cells")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--values", type=int, default=10_000, help="ForEach values (task runs: one more)")
    parser.add_argument("--browser-timeout", type=float, default=300, help="seconds for the notebook in the tab")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser tab (figure 3)")
    args = parser.parse_args()
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "kernel-home"
        home.mkdir()
        os.environ["KESTRA_NB_HOME"] = str(home)  # the kernel inherits it: its store is this temp dir
        status |= bench_kernel(args.n, args.warmup, args.values, bench_in_process(args.n, args.warmup))
        if not args.no_browser:
            browser_tmp = Path(tmp) / "browser"
            browser_tmp.mkdir()
            status |= bench_browser(browser_tmp, args.values, args.browser_timeout)
            shutil.rmtree(browser_tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
