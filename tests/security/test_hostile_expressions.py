"""Expressions that would stall or kill the process: catastrophic regular expressions (filters, input
validators) run on `regex` with a time limit, jq programs in a child process bounded in time and memory.
Each hostile execution ends FAILED naming the task and the limit; a server running them keeps answering."""
from __future__ import annotations

import threading
import time

import pytest

import kestra_nb
from kestra_nb.engine import get_engine
from kestra_nb.errors import InputValidationError
from kestra_nb.expressions.jqworker import JqLimit, JqWorker, worker
from kestra_nb.parsing.javaregex import REGEX_TIMEOUT, RegexTimeout, compile_java

YAML = {"Content-Type": "application/x-yaml"}
EVIL = "(a|aa)+$"                 # backtracks exponentially on a run of a's that does not end the text
VICTIM = "a" * 60 + "!"


def flow(expression: str, flow_id: str = "hostile") -> str:
    return f"""id: {flow_id}
namespace: company.team
tasks:
  - id: evil
    type: io.kestra.plugin.core.debug.Return
    format: "{expression}"
"""


def failure(ex) -> str:
    assert ex.state.current.value == "FAILED"
    run = ex.task_run_list[0]
    assert run.task_id == "evil" and run.state.current.value == "FAILED"
    return "\n".join(entry.message for entry in get_engine().store.list_logs(ex.id))


@pytest.mark.parametrize("expression", [
    f"{{{{ '{VICTIM}' | replace({{'{EVIL}': 'x'}}, regexp=true) }}}}",
    f"{{{{ '{VICTIM}' | split('{EVIL}') }}}}",
])
def test_a_catastrophic_regex_fails_the_task_naming_the_limit(expression):
    started = time.monotonic()
    ex = kestra_nb.run(flow(expression))
    assert time.monotonic() - started < 20 * REGEX_TIMEOUT
    logs = failure(ex)
    assert EVIL in logs and f"longer than {REGEX_TIMEOUT:g} s (the limit)" in logs, logs


def test_a_catastrophic_input_validator_is_refused_not_hung():
    source = f"""id: validated
namespace: company.team
inputs:
  - id: name
    type: STRING
    validator: "{EVIL}"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.name }}}}"
"""
    with pytest.raises(InputValidationError, match="the limit"):
        kestra_nb.run(source, inputs={"name": VICTIM})
    assert kestra_nb.run(source, inputs={"name": "aaaa"}).state.current.value == "SUCCESS"


def test_java_semantics_of_the_bounded_patterns():
    assert compile_java("a*+a").search("aaaa") is None          # possessive: gives nothing back
    assert compile_java("(?>a+)b").fullmatch("aab")              # atomic group
    assert compile_java(r"\p{Alpha}+\p{Digit}").fullmatch("abc1")
    assert compile_java(r"\Q(a+)\E").fullmatch("(a+)")
    assert compile_java(r"a\z").search("a") and not compile_java(r"a\z").search("a\n")
    assert compile_java(r"[\h]x").fullmatch("\u00a0x")
    with pytest.raises(RegexTimeout, match="the limit"):
        compile_java(EVIL).search(VICTIM)
    out = kestra_nb.run(flow("{{ 'a1b22' | replace({'(\\\\d+)': '<$1>'}, regexp=true) }}", "java"))
    assert out.task_run_list[0].outputs["value"] == "a<1>b<22>"
    split = kestra_nb.run(flow("{{ 'a,b,,c,,' | split(',') }}", "jsplit"))
    assert split.task_run_list[0].outputs["value"] == '["a","b","","c"]'   # trailing empties dropped, as Java


def test_jq_past_its_time_and_memory_limits_fails_the_task(monkeypatch):
    monkeypatch.setattr(worker(), "timeout", 0.5)
    slow = kestra_nb.run(flow("{{ 1 | jq('last(range(1e12))') }}"))
    assert "0.5 s time limit" in failure(slow)
    monkeypatch.setattr(worker(), "timeout", 60.0)   # the memory limit comes first, however loaded the machine
    hungry = kestra_nb.run(flow("{{ 1 | jq('reduce range(1e7) as $i (\\\"x\\\"; . + .)') }}"))
    # its memory limit, normally within a fraction of a second; on a machine loaded enough to slow the
    # doubling copies past the time limit, that one: bounded either way
    logs = failure(hungry)
    assert "memory limit (512 MiB)" in logs or "60 s time limit" in logs, logs
    fine = kestra_nb.run(flow("{{ {'a': [1, 2]} | jq('.a | add') }}", "fine"))   # the worker is back
    assert fine.state.current.value == "SUCCESS" and fine.task_run_list[0].outputs["value"] == "[3]"


def test_the_jq_worker_is_safe_from_threads_and_comes_back():
    jq = JqWorker(timeout=0.5)
    try:
        results: list[object] = []
        threads = [threading.Thread(target=lambda i=i: results.append(jq.run(".a", f'{{"a": {i}}}', 10, 1000)))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(r[0] for r in results) == list(range(8))
        with pytest.raises(JqLimit, match="time limit"):
            jq.run("last(range(1e12))", "1", 10, 1000)
        assert jq.run(". + 1", "1", 10, 1000) == [2]
        with pytest.raises(JqLimit, match="more than 10 elements"):
            jq.run("range(100)", "null", 10, 1000)
    finally:
        jq.close()


def test_a_server_running_hostile_flows_keeps_answering(capped_server, tmp_path):
    server = capped_server(tmp_path / "home")
    for flow_id, expression in [("slowjq", "{{ 1 | jq('last(range(1e12))') }}"),
                                ("badregex", f"{{{{ '{VICTIM}' | replace({{'{EVIL}': 'x'}}, regexp=true) }}}}")]:
        assert server.request("POST", "/api/v1/flows", content=flow(expression, flow_id), headers=YAML
                              ).status_code == 200
    ids = [server.request("POST", f"/api/v1/executions/company.team/{f}").json()["id"] for f in ("slowjq", "badregex")]
    slowest, deadline = 0.0, time.monotonic() + 60
    states = {}
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert server.request("GET", "/ping").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        states = {i: server.request("GET", f"/api/v1/executions/{i}").json()["state"]["current"] for i in ids}
        if all(s == "FAILED" for s in states.values()):
            break
    assert all(s == "FAILED" for s in states.values()), states
    assert slowest < 1.0, slowest   # generous: the figure that matters is bench/bench_hostile.py's p99
    logs = str(server.request("GET", f"/api/v1/logs/{ids[0]}").json())
    assert "5 s time limit" in logs
    assert server.alive()
