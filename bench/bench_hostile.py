"""A server running hostile flows keeps answering: /ping p99 while they run, and the seed figure after.

A `kestra-nb server` child process (memory-capped with prlimit, a store in a temp dir) is given a corpus of
hostile flows: a catastrophic regex in `replace` and `split`, a catastrophic input validator, jq programs
that run forever or eat memory, a 2 MB template, a YAML alias bomb. Each runs (wait=true, one after another) while
this process pings the server every 5 ms. Printed, with their targets:
- /ping p99 while the hostile executions run (target ≤ 50 ms);
- every hostile execution FAILED (or refused with a 4xx) naming the limit;
- the seed flow by `POST …?wait=true` p50 afterwards (target ≤ 3 ms, as bench_api.py), and the server's
  peak RSS (target ≤ 1 GiB).
Exit status 1 if a target is missed.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SEED = (ROOT / "examples" / "myflow.yml").read_text()
YAML = {"Content-Type": "application/x-yaml"}
VICTIM = "a" * 60 + "!"
EVIL = "(a|aa)+$"


def flow(flow_id: str, expression: str) -> str:
    return (f"id: {flow_id}\nnamespace: bench.hostile\ntasks:\n  - id: evil\n"
            f"    type: io.kestra.plugin.core.debug.Return\n    format: \"{expression}\"\n")


CORPUS = {
    "regex_replace": flow("regex_replace", f"{{{{ '{VICTIM}' | replace({{'{EVIL}': 'x'}}, regexp=true) }}}}"),
    "regex_split": flow("regex_split", f"{{{{ '{VICTIM}' | split('{EVIL}') }}}}"),
    "jq_forever": flow("jq_forever", "{{ 1 | jq('last(range(1e12))') }}"),
    "jq_memory": flow("jq_memory", "{{ 1 | jq('reduce range(1e7) as $i (\\\"x\\\"; . + .)') }}"),
    "big_template": flow("big_template", "{{ range(1, 300000) | join(',') | length }}" * 4),
    "validator": ("id: validator\nnamespace: bench.hostile\ninputs:\n  - id: name\n    type: STRING\n"
                  f"    defaults: \"{VICTIM}\"\n    validator: \"{EVIL}\"\n"
                  "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"),
}
BOMB = ("id: bomb\nnamespace: bench.hostile\nvariables:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
        + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")


def start(home: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(["prlimit", f"--as={2 * 1024 ** 3}", "--", sys.executable, "-m", "kestra_nb.cli",
                                "server", "--port", "0", "--home", home, "--grace", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # drain
            return process, found.group(1)
    raise SystemExit("the server did not start")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    failed = False
    with tempfile.TemporaryDirectory() as home:
        process, url = start(home)
        client = httpx.Client(base_url=url, timeout=60)
        try:
            bomb = client.post("/api/v1/flows", content=BOMB, headers=YAML)
            print(f"alias bomb deploy: {bomb.status_code} ({bomb.json()['message'][:90]}…)  target: 422")
            failed |= bomb.status_code != 422
            for source in CORPUS.values():
                assert client.post("/api/v1/flows", content=source, headers=YAML).status_code == 200
            pings: list[float] = []
            stop = threading.Event()

            def ping() -> None:
                with httpx.Client(base_url=url, timeout=60) as pinger:
                    while not stop.is_set():
                        started = time.perf_counter()
                        pinger.get("/ping")
                        pings.append((time.perf_counter() - started) * 1000)
                        time.sleep(0.005)

            pinger = threading.Thread(target=ping)
            pinger.start()
            started = time.monotonic()
            answers = {name: client.post(f"/api/v1/executions/bench.hostile/{name}?wait=true") for name in CORPUS}
            elapsed = time.monotonic() - started
            stop.set()
            pinger.join()
            for name, answer in answers.items():
                state = answer.json().get("state", {}).get("current") if answer.status_code == 200 else None
                ok = state == "FAILED" or (answer.status_code == 200 and name == "big_template") or \
                    400 <= answer.status_code < 500
                print(f"  {name:14s} {answer.status_code} {state or answer.json().get('message', '')[:80]}")
                failed |= not ok
            p99 = statistics.quantiles(pings, n=100)[98]
            print(f"/ping while hostile flows ran ({len(pings)} pings over {elapsed:.1f} s): p50 "
                  f"{statistics.median(pings):.2f} ms, p99 {p99:.2f} ms  target: p99 ≤ 50 ms")
            failed |= p99 > 50
            assert client.post("/api/v1/flows", content=SEED, headers=YAML).status_code == 200
            times = []
            for _ in range(300):
                t0 = time.perf_counter()
                doc = client.post("/api/v1/executions/company.team/myflow?wait=true").json()
                times.append((time.perf_counter() - t0) * 1000)
                assert doc["state"]["current"] == "SUCCESS"
            seed = statistics.median(times)
            print(f"seed wait=true p50 after the hostile corpus: {seed:.2f} ms  target: ≤ 3 ms")
            failed |= seed > 3
            rss = peak_rss_mib(process.pid)
            print(f"server peak RSS: {rss:.0f} MiB  target: ≤ 1024 MiB")
            failed |= rss > 1024
        finally:
            client.close()
            process.terminate()
            process.wait(30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
