"""The flow topology: its tree (kestra_nb/jupyter/topology.py), the static HTML twin, and topology.js (run by node)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.jupyter.topology import MAX_DEPTH, MAX_NODES, topology, topology_html
from kestra_nb.jupyter.widgets.viewmodel import STATE_COLORS
from kestra_nb.parsing import parse_flow

JS = Path(__file__).resolve().parents[2] / "kestra_nb" / "ui" / "static" / "topology.js"
CSS = JS.with_name("topology.css")
HEAD = "id: topo\nnamespace: company.team\n"


def log(task_id: str, indent: int = 2) -> str:
    pad = " " * indent
    return f"{pad}- id: {task_id}\n{pad}  type: io.kestra.plugin.core.log.Log\n{pad}  message: hi\n"


ALL = HEAD + """tasks:
  - id: start
    type: io.kestra.plugin.core.debug.Return
    format: "{{ flow.id }}"
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: p1
        type: io.kestra.plugin.core.debug.Return
        format: one
      - id: p2
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
""" + log("s1", 10) + log("s2", 10) + """  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ true }}"
    then:
""" + log("yes", 6) + """    else:
""" + log("no", 6) + """    errors:
""" + log("if_failed", 6) + """  - id: sw
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ 'a' }}"
    cases:
      a:
""" + log("ca", 8) + """      "<img src=x onerror=alert(1)>":
""" + log("cb", 8) + """    defaults:
""" + log("dflt", 6) + """  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2, 3]
    concurrencyLimit: 0
    tasks:
""" + log("e1", 6) + log("e2", 6) + """  - id: one_by_one
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2]
    tasks:
""" + log("o1", 6) + """  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task:
          id: d3
          type: io.kestra.plugin.core.log.Log
          message: x
        dependsOn: [d1, d2]
      - task:
          id: d1
          type: io.kestra.plugin.core.log.Log
          message: x
      - task:
          id: d2
          type: io.kestra.plugin.core.log.Log
          message: x
        dependsOn: [d1]
      - task:
          id: d0
          type: io.kestra.plugin.core.log.Log
          message: x
  - id: skipped
    type: io.kestra.plugin.core.log.Log
    message: off
    disabled: true
errors:
""" + log("oops") + """finally:
""" + log("bye") + """afterExecution:
""" + log("after")

STATES = {"start": "SUCCESS", "par": "RUNNING", "p1": "SUCCESS", "p2": "RUNNING", "s1": "FAILED",
          "check": "SUCCESS", "yes": "KILLED", "d1": "WARNING", "bye": "CREATED"}


def ids(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["id"] for n in nodes]


def group(node: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in node["c"] if g["n"] == name)


def task(tree: dict[str, Any], task_id: str) -> dict[str, Any]:
    for g in tree.get("c", []):
        for n in g["tasks"]:
            if n["id"] == task_id:
                return n
            try:
                return task(n, task_id)
            except KeyError:
                pass
    raise KeyError(task_id)


def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node, depth first in drawing order (the root first)."""
    out = [node]
    for g in node.get("c", []):
        for n in g["tasks"]:
            out.extend(walk(n))
    return out


@pytest.fixture(scope="module")
def tree() -> dict[str, Any]:
    return topology(parse_flow(ALL))


def test_the_flow_is_the_root_with_its_phases(tree: dict[str, Any]) -> None:
    assert (tree["id"], tree["ns"], tree["t"], tree["k"]) == ("topo", "company.team", "Flow", "seq")
    assert [(g["n"], g["k"]) for g in tree["c"]] == [("tasks", "seq"), ("errors", "seq"), ("finally", "seq"),
                                                    ("afterExecution", "seq")]
    assert ids(group(tree, "tasks")["tasks"]) == ["start", "par", "check", "sw", "each", "one_by_one", "dag",
                                                  "skipped"]
    assert ids(group(tree, "errors")["tasks"]) == ["oops"]
    assert ids(group(tree, "finally")["tasks"]) == ["bye"] and ids(group(tree, "afterExecution")["tasks"]) == ["after"]
    assert task(tree, "start") == {"id": "start", "t": "Return", "k": None}   # a leaf: no groups, no more
    assert task(tree, "skipped")["off"] is True
    assert "more" not in tree and json.loads(json.dumps(tree)) == tree


def test_sequential_and_parallel(tree: dict[str, Any]) -> None:
    par = task(tree, "par")
    assert (par["t"], par["k"]) == ("Parallel", "par")
    assert [(g["n"], g["k"], ids(g["tasks"])) for g in par["c"]] == [("tasks", "par", ["p1", "p2"])]
    p2 = task(tree, "p2")
    assert (p2["t"], p2["k"], p2["c"]) == ("Sequential", "seq", [
        {"n": "tasks", "k": "seq", "tasks": [{"id": "s1", "t": "Log", "k": None},
                                             {"id": "s2", "t": "Log", "k": None}]}])


def test_branches(tree: dict[str, Any]) -> None:
    check = task(tree, "check")
    assert (check["t"], check["k"]) == ("If", "branch")
    assert [(g["n"], g["k"], ids(g["tasks"])) for g in check["c"]] == [
        ("then", "seq", ["yes"]), ("else", "seq", ["no"]), ("errors", "seq", ["if_failed"])]
    sw = task(tree, "sw")
    assert (sw["t"], sw["k"]) == ("Switch", "branch")
    assert [(g["n"], ids(g["tasks"])) for g in sw["c"]] == [
        ("case a", ["ca"]), ("case <img src=x onerror=alert(1)>", ["cb"]), ("defaults", ["dflt"])]


def test_loops_run_their_tasks_in_order_and_their_values_side_by_side_or_not(tree: dict[str, Any]) -> None:
    each, one = task(tree, "each"), task(tree, "one_by_one")
    assert (each["t"], each["k"], one["k"]) == ("ForEach", "par", "seq")   # concurrencyLimit 0 / default 1
    assert [(g["n"], g["k"], ids(g["tasks"])) for g in each["c"]] == [("tasks", "seq", ["e1", "e2"])]


def test_a_dag_is_in_columns_with_its_edges(tree: dict[str, Any]) -> None:
    dag = task(tree, "dag")
    assert (dag["t"], dag["k"]) == ("Dag", "dag")
    [g] = dag["c"]
    assert (g["n"], g["k"]) == ("tasks", "dag")
    assert ids(g["tasks"]) == ["d1", "d0", "d2", "d3"] and g["cols"] == [2, 1, 1]   # by column, then as written
    assert g["edges"] == [["d1", "d2"], ["d1", "d3"], ["d2", "d3"]]


def test_nested_blocks_and_other_flowables() -> None:
    flow = HEAD + """tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: tolerant
        type: io.kestra.plugin.core.flow.AllowFailure
        tasks:
          - id: inner
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
""" + log("x", 14) + log("y", 14) + """    errors:
""" + log("outer_err", 6) + """    finally:
""" + log("outer_fin", 6) + """  - id: old
    type: io.kestra.plugin.core.flow.EachParallel
    value: [1, 2]
    tasks:
""" + log("ep", 6) + """  - id: until
    type: io.kestra.plugin.core.flow.LoopUntil
    condition: "{{ true }}"
    tasks:
""" + log("lu", 6)
    tree = topology(flow)      # the YAML source is parsed too
    outer = task(tree, "outer")
    assert [(g["n"], ids(g["tasks"])) for g in outer["c"]] == [
        ("tasks", ["tolerant"]), ("errors", ["outer_err"]), ("finally", ["outer_fin"])]
    assert task(tree, "tolerant")["k"] == "seq" and task(tree, "inner")["k"] == "par"
    assert ids(task(tree, "inner")["c"][0]["tasks"]) == ["x", "y"]
    assert task(tree, "old")["k"] == "par" and task(tree, "until")["k"] == "seq"
    assert ids(walk(tree)) == ["topo", "outer", "tolerant", "inner", "x", "y", "outer_err",
                               "outer_fin", "old", "ep", "until", "lu"]


def test_a_big_flow_is_cut_breadth_first() -> None:
    flow = HEAD + "tasks:\n" + """  - id: big
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
""" + "".join(log(f"n{i}", 6) for i in range(1000)) + log("last")
    tree = topology(flow)
    nodes = walk(tree)
    assert len(nodes) <= MAX_NODES
    assert ids(tree["c"][0]["tasks"]) == ["big", "last"]      # the top of the flow first
    inner = task(tree, "big")["c"][0]
    assert inner["more"] == 1000 - len(inner["tasks"]) and len(nodes) == MAX_NODES
    flat = topology(HEAD + "tasks:\n" + "".join(log(f"n{i}") for i in range(1000)))
    assert len(walk(flat)) == MAX_NODES and flat["c"][0]["more"] == 1000 - (MAX_NODES - 1)
    html = topology_html(flat, {}, STATE_COLORS)
    assert html.count("<code>") == MAX_NODES - 1 and f"+{1000 - MAX_NODES + 1} more" in html
    assert len(html) < 200_000


def test_left_out_groups_count_their_nested_tasks() -> None:
    cases = "".join(f"      c{i}:\n" + log(f"a{i}", 8) + log(f"b{i}", 8) for i in range(400))
    tree = topology(HEAD + "tasks:\n  - id: sw\n    type: io.kestra.plugin.core.flow.Switch\n    value: x\n"
                    "    cases:\n" + cases)
    sw = task(tree, "sw")
    shown = sum(len(g["tasks"]) for g in sw["c"])
    assert len(walk(tree)) == MAX_NODES and shown == MAX_NODES - 2
    assert sw["more"] + sum(g.get("more", 0) for g in sw["c"]) == 800 - shown


def test_nesting_is_capped() -> None:
    depth = MAX_DEPTH + 5
    text, pad = HEAD + "tasks:\n", 2
    for i in range(depth):
        text += " " * pad + f"- id: l{i}\n" + " " * pad + "  type: io.kestra.plugin.core.flow.Sequential\n"
        text += " " * pad + "  tasks:\n"
        pad += 4
    text += log("leaf", pad)
    tree = topology(text)
    chain = ids(walk(tree))[1:]
    assert chain == [f"l{i}" for i in range(MAX_DEPTH)]
    deepest = task(tree, f"l{MAX_DEPTH - 1}")
    assert "c" not in deepest and deepest["more"] == depth - MAX_DEPTH + 1   # the Sequentials below, and leaf


# ------------------------------------------------------------------------------------------------ HTML


def html_ids(html: str) -> list[str]:
    return re.findall(r"<code>([^<]*)</code>", html)


def test_the_twin_draws_every_task_in_order_with_its_state(tree: dict[str, Any]) -> None:
    html = topology_html(tree, STATES, STATE_COLORS)
    assert html_ids(html) == ids(walk(tree))[1:]
    assert "<strong>company.team.topo</strong>" in html
    assert "<code>s1</code> <em>Log</em> <b>FAILED</b>" in html and "<code>s2</code> <em>Log</em><" in html
    assert f"border-left:4px solid {STATE_COLORS['FAILED']}" in html
    assert "<em style=\"font-size:11px\">then</em>" in html and "<i style=\"font-size:11px\">after d1, d2</i>" in html
    assert html.count("→") == 7 + 1 + 1 + 2   # top level (8 tasks), p2, e1 -> e2, the dag's 3 columns
    assert "<script" not in html and "<svg" not in html and "class=" not in html


def test_the_twin_reads_the_same_once_sanitized(tree: dict[str, Any]) -> None:
    """nbconvert's sanitize_html keeps only a few tags: the twin uses those alone and loses only its styles."""
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    html = topology_html(tree, STATES, STATE_COLORS)
    clean = SanitizeHTML().sanitize_html_tags(html)
    assert clean == re.sub(r' style="[^"]*"', "", html)
    assert set(re.findall(r"<(\w+)", html)) <= {"blockquote", "ul", "ol", "li", "b", "i", "em", "strong", "code"}


def test_the_twin_escapes_everything(tree: dict[str, Any]) -> None:
    states = {**STATES, "start": "<script>alert(1)</script>", "p1": "HOSTILE"}
    colors = {**STATE_COLORS, "HOSTILE": 'red;background:url("x")'}
    html = topology_html(tree, states, colors)
    assert "<img" not in html and "<script" not in html
    assert "case &lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;" in html
    assert 'url(' not in html and "border-left:4px solid #918BA9" in html   # a colour that is not one


# -------------------------------------------------------------------------------------------------- JS


def run_js(*calls: tuple[dict[str, Any], dict[str, str], dict[str, str]]) -> list[str]:
    node = shutil.which("node")
    assert node, "node is needed to test topology.js"
    script = ("import {topology} from " + json.dumps(JS.as_uri()) + ";"
              "const calls = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(calls.map(([t, s, c]) => topology(t, s, c))));")
    done = subprocess.run([node, "--input-type=module", "-e", script, json.dumps(calls)],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def js_boxes(html: str) -> list[tuple[str, str | None]]:
    found = re.findall(r'class="kn-topo-box" data-task="([^"]*)"(?: data-state="([^"]*)")?', html)
    return [(m[0], m[1] or None) for m in found]


def py_boxes(html: str) -> list[tuple[str, str | None]]:
    return [(m[0], m[1] or None) for m in re.findall(r"<code>([^<]*)</code> <em>[^<]*</em>(?: <b>([^<]*)</b>)?", html)]


def test_the_js_draws_the_same_boxes_as_the_twin(tree: dict[str, Any]) -> None:
    flat = topology(HEAD + "tasks:\n" + "".join(log(f"n{i}") for i in range(500)))
    hostile = {**STATES, "start": "<script>alert(1)</script>", "p1": "HOSTILE"}
    colors = {**STATE_COLORS, "HOSTILE": 'red;background:url("x")'}
    calls = [(tree, STATES, STATE_COLORS), (flat, {"n0": "SUCCESS"}, STATE_COLORS), (tree, hostile, colors)]
    out = run_js(*calls)
    for (t, s, c), js in zip(calls, out):
        py = topology_html(t, s, c)
        assert js_boxes(js) == py_boxes(py) and len(js_boxes(js)) == len(walk(t)) - 1
        assert js.count("&#x2192;") == py.count("→")
    js = out[0]
    assert js.startswith('<div class="kn-topo">') and "company.team.topo" in js
    assert f'data-task="s1" data-state="FAILED" style="border-left-color:{STATE_COLORS["FAILED"]}"' in js
    assert 'data-task="s2">' in js                          # not run: no state, the theme's border
    assert '<div class="kn-topo-label">then</div>' in js and "after d1, d2" in js
    assert "+201 more" in out[1]
    hostile_js = out[2]
    assert "<img" not in hostile_js and "<script" not in hostile_js and "url(" not in hostile_js
    assert "case &lt;img src=x onerror=alert(1)&gt;" in hostile_js and "&lt;script&gt;" in hostile_js


def test_the_css_styles_every_class_with_theme_variables() -> None:
    css = CSS.read_text()
    used = set(re.findall(r"kn-topo-[a-z]+", JS.read_text()))
    assert used <= set(re.findall(r"\.(kn-topo-[a-z]+)", css))
    for var in re.findall(r"var\((--[\w-]+)\)", css):
        pytest.fail(f"{var} has no fallback")
    # the light fallbacks: text on the box background reads at 4.5:1 or more
    def luminance(hex_color: str) -> float:
        digits = hex_color[1:] if len(hex_color) == 7 else "".join(c * 2 for c in hex_color[1:])
        rgb = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    background = luminance(re.search(r"--jp-layout-color1,(#\w+)", css)[1])
    for text in set(re.findall(r"--jp-ui-font-color[12],(#\w+)", css)):
        assert (background + 0.05) / (luminance(text) + 0.05) >= 4.5, text
