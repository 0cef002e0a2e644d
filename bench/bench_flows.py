"""Flow-control figures of issue 4, on the SQLite store, warm.

1. ForEach over 100 values with 2 tasks each (Kestra's benchmark 3, ~5 s on Kestra OSS): target ≤ 100 ms.
2. 40 sequential Return tasks (Windmill's cross-engine shape; Kestra ~150 ms a task): engine overhead
   per task, target ≤ 0.5 ms.
3. ForEach over 10,000 values with concurrencyLimit 0: completes; peak memory growth target ≤ 200 MB.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time


def foreach(n: int, limit: int) -> str:
    return f"""id: foreach_{n}_{limit}
namespace: bench
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: {list(range(n))}
    concurrencyLimit: {limit}
    tasks:
      - id: first
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
      - id: second
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ outputs.first[taskrun.value].value }}}}"
"""


def sequential(n: int) -> str:
    tasks = "".join(f"  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: v{i}\n" for i in range(n))
    return f"id: seq_{n}\nnamespace: bench\ntasks:\n{tasks}"


def timed(engine, source: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ex = engine.run(source)
        samples.append((time.perf_counter() - t0) * 1000)
        assert ex.state == "SUCCESS", ex.state
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()
    from kestra_nb.engine import Engine

    ok = True
    with tempfile.TemporaryDirectory() as home:
        engine = Engine(os.path.join(home, "store"))
        source = foreach(100, 1)
        timed(engine, source, 3)
        samples = timed(engine, source, args.runs)
        p50 = statistics.median(samples)
        ok &= p50 <= 100
        print(f"ForEach 100 values x 2 tasks (sequential): median {p50:.1f} ms, max {max(samples):.1f} ms "
              f"(target ≤ 100 ms; Kestra OSS ~5 s: {5000 / p50:.0f}x)")
        source = foreach(100, 0)
        timed(engine, source, 2)
        print(f"ForEach 100 values x 2 tasks (concurrencyLimit 0): median "
              f"{statistics.median(timed(engine, source, args.runs)):.1f} ms")

        seq40, seq1 = sequential(40), sequential(1)
        timed(engine, seq40, 3)
        timed(engine, seq1, 3)
        t40 = statistics.median(timed(engine, seq40, args.runs))
        t1 = statistics.median(timed(engine, seq1, args.runs))
        per_task = (t40 - t1) / 39
        ok &= per_task <= 0.5
        print(f"40 sequential Return tasks: {t40:.1f} ms in all, {per_task:.3f} ms per task over a 1-task flow "
              f"(target ≤ 0.5 ms; Kestra ~150 ms a task)")

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        ex = engine.run(foreach(args.big, 0))
        elapsed = time.perf_counter() - t0
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
        done = ex.state == "SUCCESS" and len(ex.task_run_list) == 2 * args.big + 1
        ok &= done and grown <= 200
        print(f"ForEach {args.big} values x 2 tasks, concurrencyLimit 0: {ex.state.current.value} with "
              f"{len(ex.task_run_list)} task runs in {elapsed:.1f} s; peak memory grew {grown:.0f} MB (target ≤ 200 MB)")
        engine.close()
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
