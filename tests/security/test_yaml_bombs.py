"""YAML resource bombs: alias bombs, deep nesting and huge sources are refused fast, naming the limit and the
line, wherever YAML enters (flows over HTTP, run(), YAML inputs, the yaml() function); a bomb already in a
store neither slows a server's start nor blows up flows/search. Servers are child processes under a
memory cap (conftest.py), so a regression fails here instead of exhausting the machine."""
from __future__ import annotations

import sqlite3
import time

import pytest

import kestra_nb
from kestra_nb.errors import FlowValidationError
from kestra_nb.parsing import parse_flow
from kestra_nb.parsing.yamlpos import MAX_DEPTH, MAX_NODES, MAX_SOURCE, load

YAML = {"Content-Type": "application/x-yaml"}
ONE_GIB = 1024 ** 3


def bomb(levels: int, flow_id: str = "bomb") -> str:
    """Kestra-shaped flow whose `variables` expand to 9**levels scalars."""
    lines = [f"id: {flow_id}", "namespace: company.team", "variables:",
             "  a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    lines += ["tasks:", "  - id: t", "    type: io.kestra.plugin.core.debug.Return", "    format: x"]
    return "\n".join(lines) + "\n"


def test_the_bombs_are_small():
    assert len(bomb(7)) < 500 and len(bomb(9)) < 650


@pytest.mark.parametrize("levels", [7, 9])
def test_an_alias_bomb_is_refused_naming_the_limit_and_the_line(levels):
    started = time.monotonic()
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(bomb(levels))
    assert time.monotonic() - started < 2
    violation = caught.value.violations[0]
    assert f"more than {MAX_NODES} nodes" in violation.message and "aliases" in violation.message
    assert violation.line == 9   # a5 = 9**6 scalars, the first anchor past 100,000
    assert "line 9" in str(caught.value)


def test_deep_nesting_and_a_huge_source_are_refused():
    deep = load("x: " + "[" * 10_000 + "]" * 10_000).violations
    assert deep and f"nested deeper than {MAX_DEPTH}" in deep[0].message and deep[0].line == 1
    just = load("x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    assert not just.violations
    huge = load("id: x\nnamespace: a\nv: '" + "y" * MAX_SOURCE + "'\n").violations
    assert huge and f"the limit is {MAX_SOURCE}" in huge[0].message


def test_aliases_that_stay_within_the_budget_parse_as_before():
    source = """id: anchors
namespace: company.team
variables:
  common: &common {retries: 3, region: eu}
  copy: *common
  merged:
    <<: *common
    region: us
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"""
    loaded = load(source)
    assert not loaded.violations
    assert loaded.value["variables"] == {"common": {"retries": 3, "region": "eu"},
                                         "copy": {"retries": 3, "region": "eu"},
                                         "merged": {"retries": 3, "region": "us"}}
    assert loaded.positions["variables.merged.region"] == (8, 5)


def test_run_yaml_inputs_and_the_yaml_function_have_the_budget_too():
    with pytest.raises(FlowValidationError, match="nodes"):
        kestra_nb.run(bomb(9))
    nested = "[" * 500 + "]" * 500
    flow = f"""id: yamlfn
namespace: company.team
inputs:
  - id: doc
    type: YAML
    required: false
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ yaml('{nested}') }}}}"
"""
    ex = kestra_nb.run(flow)
    assert ex.state.current.value == "FAILED"
    with pytest.raises(Exception, match="nested deeper than|nodes"):
        kestra_nb.run(flow.replace(f"{{{{ yaml('{nested}') }}}}", "ok"), inputs={"doc": bomb(9)})


def test_bombs_over_http_are_422_and_the_capped_server_lives(capped_server, tmp_path):
    server = capped_server(tmp_path / "home", memory=ONE_GIB)
    for levels in (7, 9):
        started = time.monotonic()
        answer = server.request("POST", "/api/v1/flows", content=bomb(levels), headers=YAML)
        assert answer.status_code == 422, answer.text
        assert "more than 100000 nodes" in answer.json()["message"] and "line 9" in answer.json()["message"]
        assert time.monotonic() - started < 5
        validated = server.request("POST", "/api/v1/flows/validate", content=bomb(levels), headers=YAML)
        assert validated.status_code == 200 and "nodes" in str(validated.json())
    deep = "id: deep\nnamespace: company.team\nx: " + "[" * 10_000 + "]" * 10_000 + "\ntasks: []\n"
    answer = server.request("POST", "/api/v1/flows", content=deep, headers=YAML)
    assert answer.status_code == 422 and "nested deeper than" in answer.json()["message"]
    big = "id: big\nnamespace: company.team\nx: '" + "y" * (MAX_SOURCE + 1) + "'\ntasks: []\n"
    answer = server.request("POST", "/api/v1/flows", content=big, headers=YAML)
    assert answer.status_code == 422 and f"the limit is {MAX_SOURCE}" in answer.json()["message"]
    assert server.alive()
    assert server.request("GET", "/api/v1/flows/search").json()["total"] == 0


def test_a_bomb_already_stored_neither_slows_the_start_nor_search(capped_server, tmp_path):
    home = tmp_path / "home"
    first = capped_server(home, memory=ONE_GIB)
    good = bomb(1, "good").replace("variables:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n", "")
    assert first.request("POST", "/api/v1/flows", content=good, headers=YAML).status_code == 200
    first.stop()
    # written straight into the store, as a version without the budget would have accepted it
    with sqlite3.connect(home / "kestra_nb.db") as db:
        row = db.execute("SELECT * FROM flows WHERE id = 'good'").fetchone()
        columns = [c[1] for c in db.execute("PRAGMA table_info(flows)")]
        record = dict(zip(columns, row))
        record.update(id="bomb", source=bomb(9))
        if "source_sha256" in record:
            record["source_sha256"] = "bomb"
        db.execute(f"INSERT INTO flows ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                   [record[c] for c in columns])
    started = time.monotonic()
    again = capped_server(home, memory=ONE_GIB)
    found = again.request("GET", "/api/v1/flows/search").json()
    assert time.monotonic() - started < 20
    assert found["total"] == 2 and len(again.request("GET", "/api/v1/flows/search").content) < 100_000
    assert again.request("GET", "/api/v1/flows/company.team/bomb").status_code in (200, 422)
    answer = again.request("POST", "/api/v1/executions/company.team/bomb")
    assert answer.status_code == 409 and "nodes" in answer.json()["message"]
    assert again.request("POST", "/api/v1/executions/company.team/good?wait=true").json()["state"]["current"] \
        == "SUCCESS"
    assert again.request("DELETE", "/api/v1/flows/company.team/bomb").status_code == 204
    assert again.alive()
