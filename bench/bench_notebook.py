"""Notebook figures of the Jupyter issue.

1. `%%flow` with the seed flow, warm, in a real IPython kernel: the whole cell as the front end sees it
   (execute_request sent -> execute_reply and idle received), the widget included. Target ≤ 30 ms.
   An empty cell in the same kernel, and the seed cell run in-process on an InteractiveShell (no kernel
   messaging), are printed for scale.
2. A 200-task-run ForEach: the widget updates stay throttled (≤ 25 per second of run time, counted as the
   comm messages the kernel sent for the view), and there is ONE widget model for the whole timeline.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = (ROOT / "examples" / "myflow.yml").read_text(encoding="utf-8")
FOREACH_VALUES = 200
FOREACH = f"""id: many
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {list(range(FOREACH_VALUES))}
    concurrencyLimit: 8
    tasks:
      - id: nap
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.05S
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Kernel:
    """A real ipykernel through jupyter_client; `run(code)` times a cell and collects its iopub messages."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")

    def run(self, code: str, timeout: float = 120) -> tuple[float, list[dict[str, Any]]]:
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


def bench_kernel(n: int, warmup: int) -> tuple[list[float], list[float], int, int, float]:
    """Empty and seed cell timings; then the ForEach: widget updates sent, widget models opened, run seconds."""
    kernel = Kernel()
    try:
        kernel.run("%load_ext kestra_nb")
        empty = [kernel.run("pass")[0] for _ in range(n)]
        cell = "%%flow\n" + SEED
        for _ in range(warmup):
            kernel.run(cell)
        samples = [kernel.run(cell)[0] for _ in range(n)]
        _, messages = kernel.run("%%flow --out many\n" + FOREACH)
        opened = [m for m in messages if m["msg_type"] == "comm_open"]
        views = {m["content"]["comm_id"] for m in opened
                 if m["content"]["data"]["state"].get("_model_name") == "AnyModel"}
        updates = sum(1 for m in messages if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] in views
                      and m["content"]["data"].get("method") == "update")
        _, check = kernel.run("print(many.state, len(many.task_run_list), "
                              "(many.state.end_date - many.state.start_date).total_seconds())")
        text = "".join(m["content"].get("text", "") for m in check if m["msg_type"] == "stream").split()
        assert text[0] == "SUCCESS" and int(text[1]) == FOREACH_VALUES + 1, text
        return empty, samples, updates, len(opened), float(text[2])
    finally:
        kernel.close()


def bench_in_process(n: int, warmup: int) -> list[float]:
    """The seed cell on an InteractiveShell in this process (widget built, no kernel messaging)."""
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="timed seed cells")
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    status = 0
    with tempfile.TemporaryDirectory() as home:
        os.environ["KESTRA_NB_HOME"] = home  # the kernel inherits it: its store is this temp dir
        empty, samples, updates, models, seconds = bench_kernel(args.n, args.warmup)
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        ok = p50 <= 30
        status |= 0 if ok else 1
        print(f"%%flow seed cell in a kernel (warm, widget included): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"mean {statistics.fmean(samples):.1f} ms over {len(samples)} (target p50 <= 30 ms) "
              f"{'OK' if ok else 'FAIL'}")
        print(f"  for scale, an empty cell (`pass`) in the same kernel: p50 {percentile(empty, 50):.1f} ms")
        limit = 25 * seconds + 2  # the first and the final push fall outside the rate window
        ok = updates <= limit and models <= 2
        status |= 0 if ok else 1
        print(f"ForEach of {FOREACH_VALUES} task runs over {seconds:.2f} s: {updates} widget updates "
              f"({updates / seconds:.1f}/s, limit {limit:.0f}), {models} widget models opened (1 view + its layout) "
              f"{'OK' if ok else 'FAIL'}")
        in_process = bench_in_process(args.n, args.warmup)
        print(f"%%flow seed cell in-process (InteractiveShell, widget built, no messaging): "
              f"p50 {percentile(in_process, 50):.2f} ms, p99 {percentile(in_process, 99):.2f} ms")
    return status


if __name__ == "__main__":
    sys.exit(main())
