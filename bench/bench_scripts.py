"""Script task overhead: a python Script printing one output vs. a bare interpreter start.

1. A flow with one `io.kestra.plugin.scripts.python.Script` printing `::{"outputs":{"a":1}}::`, warm, on
   the SQLite store: p50 of the task run's own wall time (RUNNING -> SUCCESS in its state history).
2. `sys.executable -c "print(1)"` through `subprocess.run`, in the same process, same count.
The overhead (1 - 2) covers rendering, the working directory, the pipes and the protocol (target ≤ 20 ms).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FLOW = """id: bench_script
namespace: company.team
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    script: print('::{"outputs":{"a":1}}::')
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def task_ms(ex) -> float:
    """RUNNING -> SUCCESS of the script's task run, in milliseconds."""
    [tr] = ex.task_run_list
    dates = {h.state.value: h.date for h in tr.state.histories}
    return (dates["SUCCESS"] - dates["RUNNING"]).total_seconds() * 1000


def one_task() -> float:
    import kestra_nb

    ex = kestra_nb.run(FLOW)
    assert ex.state == "SUCCESS" and ex.task_run_list[0].outputs == {"vars": {"a": 1}, "exitCode": 0}
    return task_ms(ex)


def one_bare() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "print(1)"], check=True, stdout=subprocess.PIPE)
    return (time.perf_counter() - t0) * 1000


def bench(n: int, warmup: int) -> tuple[list[float], list[float]]:
    """Task runs and bare runs interleaved, so a busy machine weighs on both alike."""
    for _ in range(warmup):
        one_task()
        one_bare()
    task, bare = [], []
    for _ in range(n):
        task.append(one_task())
        bare.append(one_bare())
    return task, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=30, help="timed runs of each")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["KESTRA_NB_HOME"] = home
        task, bare = bench(args.n, args.warmup)
    p50_task, p50_bare = percentile(task, 50), percentile(bare, 50)
    overhead = p50_task - p50_bare
    print(f"python Script task, warm, {args.n} runs: p50 {p50_task:.1f} ms  p90 {percentile(task, 90):.1f} ms  "
          f"mean {statistics.fmean(task):.1f} ms (task run RUNNING -> SUCCESS)")
    print(f"bare `{os.path.basename(sys.executable)} -c \"print(1)\"` via subprocess, {args.n} runs: "
          f"p50 {p50_bare:.1f} ms  p90 {percentile(bare, 90):.1f} ms")
    ok = overhead <= 20.0
    print(f"overhead at p50: {overhead:.1f} ms (target ≤ 20 ms) — {'target met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
