"""Webhook figures: the seed flow with a `wait: true` Webhook trigger, called on loopback.

The seed flow (examples/myflow.yml) gets a Webhook trigger (`wait: true`, `returnOutputs: true`), and is
called by `POST /api/v1/main/executions/webhook/company.team/myflow/<key>` with a small JSON body, one
client, keep-alive: p50 and p99 end to end (target p50 ≤ 5 ms). The answer is the execution's outputs,
checked. The server runs as `kestra-nb server` in its own process, its store in a temp dir; the client is
bench_api's minimal asyncio HTTP/1.1 client, so that the figures measure the server.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import SEED, Connection, percentile, request, start_server

KEY = "bench-4wjtkzwVGBM9yKnjm3yv8r"
HOOKED = SEED.rstrip("\n") + f"""

triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: {KEY}
    wait: true
    returnOutputs: true
"""


async def deploy(host: str, port: int) -> None:
    """Create the seed flow with its webhook trigger."""
    conn = await Connection.open(host, port)
    status, body = await conn.call(request("POST", "/api/v1/main/flows", f"{host}:{port}", HOOKED.encode(),
                                           "application/x-yaml"))
    assert status == 200, body
    conn.close()


async def sequential(host: str, port: int, n: int, warmup: int) -> list[float]:
    """Latencies (ms) of `n` webhook calls in a row on one connection, after `warmup` ones."""
    conn = await Connection.open(host, port)
    req = request("POST", f"/api/v1/main/executions/webhook/company.team/myflow/{KEY}", f"{host}:{port}",
                  b'{"event": "push", "ref": "main"}', "application/json")
    samples = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        status, body = await conn.call(req)
        elapsed = (time.perf_counter() - t0) * 1000
        assert status == 200, body
        if i >= warmup:
            samples.append(elapsed)
        if i % 100 == 0:
            assert json.loads(body) == {"mydata": "hello from kestra"}, body
    conn.close()
    return samples


def main() -> int:
    """Run the benchmark and print the figures; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="webhook calls timed")
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        proc, host, port = start_server(home)
        try:
            asyncio.run(deploy(host, port))
            samples = asyncio.run(sequential(host, port, args.n, args.warmup))
        finally:
            proc.terminate()
            proc.wait(30)
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(f"seed flow by Webhook (wait: true, returnOutputs: true), POST JSON body, 1 client, keep-alive, "
          f"{args.n} calls: p50 {p50:.3f} ms (target ≤ 5 ms)  p99 {p99:.3f} ms  mean {statistics.fmean(samples):.3f} ms")
    ok = p50 <= 5.0
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
