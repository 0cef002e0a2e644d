"""Engine figures of the foundation issue.

1. The seed flow through `kestra_nb.run()`, warm, on the SQLite store: p50 and p99 (targets 1 ms / 5 ms).
2. `python -c "import kestra_nb; kestra_nb.run(SEED)"` as a whole process (target ≤ 0.5 s).
For scale: Kestra reports 546 ms for this flow in the seed document.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = (Path(__file__).resolve().parent.parent / "examples" / "myflow.yml").read_text()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench_run(n: int, warmup: int) -> list[float]:
    import kestra_nb

    for _ in range(warmup):
        assert kestra_nb.run(SEED).state == "SUCCESS"
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        ex = kestra_nb.run(SEED)
        samples.append((time.perf_counter() - t0) * 1000)
        assert ex.state == "SUCCESS"
    return samples


def bench_process(n: int, home: str) -> list[float]:
    code = f"import kestra_nb; assert kestra_nb.run({SEED!r}).state == 'SUCCESS'"
    env = {**os.environ, "KESTRA_NB_HOME": home}
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3000, help="timed runs")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--processes", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["KESTRA_NB_HOME"] = home
        samples = bench_run(args.n, args.warmup)
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        print(f"seed flow via run(), warm, SQLite store, {args.n} runs: "
              f"p50 {p50:.3f} ms (target ≤ 1 ms)  p99 {p99:.3f} ms (target ≤ 5 ms)  "
              f"mean {statistics.fmean(samples):.3f} ms")
        print(f"  vs Kestra's 546 ms in the seed document: {546 / p50:.0f}x faster at p50")
        fresh = [bench_process(1, tempfile.mkdtemp(dir=home))[0] for _ in range(args.processes)]
        warm = bench_process(args.processes, home)
        print(f"whole process `python -c \"import kestra_nb; kestra_nb.run(SEED)\"` (target ≤ 0.5 s): "
              f"new store median {statistics.median(fresh):.3f} s max {max(fresh):.3f} s; "
              f"existing store median {statistics.median(warm):.3f} s max {max(warm):.3f} s")
        ok = p50 <= 1.0 and p99 <= 5.0 and max(fresh + warm) <= 0.5
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
