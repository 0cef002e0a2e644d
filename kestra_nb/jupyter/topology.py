"""A flow's topology (its tasks as a DAG of groups) for the execution view, and its static HTML twin.

`topology(flow)` is a compact, JSON-serialisable tree; `ui/static/topology.js` draws it in the live view and
`topology_html` draws the same boxes, in the same order, for saved notebooks (nbconvert, nbviewer, GitHub).

A node is `{"id", "t", "k"}` plus, when it has any, `"c"` (its groups) and `"more"`; the root (the flow)
also has `"ns"`. `t` is the short type (last dotted part); `k` says how its children run: "seq" (one after
the other), "par" (side by side), "branch" (one group is taken: If, Switch) or "dag"; None for a task
without children. `"off": true` marks a disabled task. A group is `{"n": label, "k": "seq"|"par"|"dag",
"tasks": [nodes]}`; a dag group also has `"edges"` ([dependency, task] pairs between its shown tasks) and
`"cols"` (its tasks are ordered by column, as soon as their dependencies ran: how many in each). `"more"`
counts the tasks (nested ones included) left out of a group, or of a node whose groups were left out:
at most MAX_NODES nodes are drawn, breadth first (the top of the flow first), MAX_DEPTH levels deep.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from html import escape
from typing import Any

from ..model.flow import Flow, TaskSpec

MAX_NODES = 300     # nodes in a tree, the root included
MAX_DEPTH = 12      # levels of tasks below the root

_FLOW = "io.kestra.plugin.core.flow."
_LOOPS = {_FLOW + "ForEach": ("concurrencyLimit", 1), _FLOW + "EachSequential": (None, 1),
          _FLOW + "EachParallel": ("concurrent", 0)}
_BRANCHES = frozenset({_FLOW + "If", _FLOW + "Switch"})
_MAIN = ("tasks", "then", "else")          # children keys drawn first, in this order (then maps, defaults)
_LAST = ("errors", "finally")              # and these last

# --------------------------------------------------------------------------------------------- tree


def topology(flow: Flow | str) -> dict[str, Any]:
    """The tree of a parsed flow (or of a flow's YAML source), bounded by MAX_NODES and MAX_DEPTH."""
    if isinstance(flow, str):
        from ..parsing import parse_flow
        flow = parse_flow(flow)
    root: dict[str, Any] = {"id": flow.id, "ns": flow.namespace, "t": "Flow", "k": "seq"}
    phases = [("tasks", flow.tasks), ("errors", flow.errors), ("finally", flow.finally_),
              ("afterExecution", flow.after_execution)]
    budget = MAX_NODES - 1
    queue: deque[tuple[dict[str, Any], list[tuple[str, str, list[tuple[TaskSpec, list[str]]]]], int]] = deque(
        [(root, [(name, "seq", [(t, []) for t in tasks]) for name, tasks in phases if tasks], 0)])
    while queue:
        node, groups, depth = queue.popleft()
        hidden = 0
        drawn: list[dict[str, Any]] = []
        for name, kind, tasks in groups:
            if depth >= MAX_DEPTH or budget <= 0:
                hidden += sum(_count(t) for t, _ in tasks)
                continue
            if kind == "dag":
                tasks, cols = _columns(tasks)
            shown, rest = tasks[:budget], tasks[budget:]
            budget -= len(shown)
            group: dict[str, Any] = {"n": name, "k": kind, "tasks": []}
            for spec, _ in shown:
                child = _node(spec)
                group["tasks"].append(child)
                queue.append((child, _groups(spec), depth + 1))
            if kind == "dag":
                ids = {spec.id for spec, _ in shown}
                group["edges"] = [[dep, spec.id] for spec, deps in shown for dep in deps if dep in ids]
                group["cols"] = _cut(cols, len(shown))
            if rest:
                group["more"] = sum(_count(t) for t, _ in rest)
            drawn.append(group)
        if drawn:
            node["c"] = drawn
        if hidden:
            node["more"] = hidden
    return root


def _node(spec: TaskSpec) -> dict[str, Any]:
    node: dict[str, Any] = {"id": spec.id, "t": spec.type.rsplit(".", 1)[-1], "k": _kind(spec)}
    if spec.disabled:
        node["off"] = True
    return node


def _kind(spec: TaskSpec) -> str | None:
    if not (spec.children or spec.child_maps or spec.dag):
        return None
    if spec.dag:
        return "dag"
    if spec.type in _BRANCHES:
        return "branch"
    if spec.type == _FLOW + "Parallel":
        return "par"
    if spec.type in _LOOPS:   # the values' iterations: side by side unless one at a time
        prop, default = _LOOPS[spec.type]
        return "seq" if _int(spec.props.get(prop) if prop else None, default) == 1 else "par"
    return "seq"


def _groups(spec: TaskSpec) -> list[tuple[str, str, list[tuple[TaskSpec, list[str]]]]]:
    """A task's groups in drawing order: its main tasks (or branches), then errors and finally."""
    main_kind = "par" if spec.type == _FLOW + "Parallel" else "seq"
    groups: list[tuple[str, str, list[tuple[TaskSpec, list[str]]]]] = []
    if spec.dag:
        groups.append(("tasks", "dag", list(spec.dag)))
    keys = [k for k in _MAIN if k in spec.children]
    for key in keys:
        groups.append((key, main_kind if key == "tasks" else "seq", [(t, []) for t in spec.children[key]]))
    for key, cases in spec.child_maps.items():
        label = "case" if key == "cases" else key
        groups.extend((f"{label} {case}", "seq", [(t, []) for t in tasks]) for case, tasks in cases.items())
    others = [k for k in spec.children if k not in _MAIN and k not in _LAST]   # defaults, other task lists
    for key in [*others, *(k for k in _LAST if k in spec.children)]:
        groups.append((key, "seq", [(t, []) for t in spec.children[key]]))
    return [g for g in groups if g[2]]


def _columns(tasks: list[tuple[TaskSpec, list[str]]]) -> tuple[list[tuple[TaskSpec, list[str]]], list[int]]:
    """Dag tasks ordered by column (0: no dependency; else one more than its latest dependency), written
    order within a column; and how many tasks each column has. A cycle or unknown id counts as none."""
    by_id = {spec.id: deps for spec, deps in tasks}
    column: dict[str, int] = {}

    def col(task_id: str, seen: frozenset[str]) -> int:
        if task_id not in column:
            deps = [d for d in by_id.get(task_id, ()) if d in by_id and d not in seen]
            column[task_id] = 1 + max((col(d, seen | {task_id}) for d in deps), default=-1)
        return column[task_id]

    order = sorted(range(len(tasks)), key=lambda i: (col(tasks[i][0].id, frozenset()), i))
    ordered = [tasks[i] for i in order]
    counts: list[int] = []
    for spec, _ in ordered:
        c = column[spec.id]
        while len(counts) <= c:
            counts.append(0)
        counts[c] += 1
    return ordered, [n for n in counts if n]


def _cut(cols: list[int], shown: int) -> list[int]:
    out = []
    for n in cols:
        if shown <= 0:
            break
        out.append(min(n, shown))
        shown -= n
    return out


def _count(spec: TaskSpec) -> int:
    return 1 + sum(_count(child) for child in spec.all_children())


def _int(value: object, default: int) -> int:
    try:
        return int(value) if value is not None else default   # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------------------------- HTML

NO_STATE = "#d0d7de"      # the bar of a task that has not run
UNKNOWN = "#918BA9"       # the bar of a state without a colour
_HEX = re.compile(r"#[0-9A-Fa-f]{3,8}")

# Only tags nbconvert's sanitizer keeps (see widgets/static.py), and valid nesting: once sanitized (styles
# dropped) it reads as nested lists, a sequence numbered, side-by-side tasks bulleted. Each list item is a
# task's box; the arrow before it sits in the gap left of the box. No colour on text: it stays the page's.
_ROOT = ("font-family:system-ui,sans-serif;font-size:12px;line-height:18px;margin:4px 0;padding:4px 8px;"
         "border-left:4px solid #d0d7de;overflow-x:auto")
_BOX = ("position:relative;margin:2px 0 2px {gap}px;padding:2px 6px;border:1px solid #d0d7de;"
        "border-left:4px solid {color};border-radius:4px;white-space:nowrap")
_CELL = "position:relative;margin:0 0 0 {gap}px"
_ROW = "display:flex;flex-wrap:wrap;align-items:flex-start;list-style:none;margin:0;padding:0"
_STACK = "display:flex;flex-direction:column;align-items:flex-start;list-style:none;margin:0;padding:0"
_COLUMN = _STACK + ";padding-left:4px;border-left:1px dashed #d0d7de"
_ARROW = "position:absolute;left:-15px;top:4px;font-weight:normal"
_LABEL = "font-size:11px"
_GROUPS = "list-style:none;margin:2px 0 0;padding:0"
GAP = 20    # px between two boxes of a sequence, where the arrow is


def _color(colors: Mapping[str, str], state: str | None) -> str:
    if state is None:
        return NO_STATE
    value = str(colors.get(state, UNKNOWN))
    return value if _HEX.fullmatch(value) else UNKNOWN


def topology_html(tree: Mapping[str, Any], states: Mapping[str, str] | None = None,
                  colors: Mapping[str, str] | None = None) -> str:
    """The tree as static HTML: each task a box (id, short type, state and a bar of its colour);
    a sequence left to right with arrows, side-by-side tasks stacked, branches labelled, a Dag in columns."""
    states = states or {}
    colors = colors or {}
    head = f"<strong>{escape(str(tree.get('ns', '')))}.{escape(str(tree.get('id', '')))}</strong>"
    return (f'<blockquote style="{_ROOT}">{head}{_groups_html(tree, states, colors)}'
            f'{_more_html(tree.get("more"))}</blockquote>')


def _groups_html(node: Mapping[str, Any], states: Mapping[str, str], colors: Mapping[str, str]) -> str:
    """The main tasks as they are, the labelled groups (branches, errors, finally) as a list of them."""
    out, labelled = [], []
    for group in node.get("c") or ():
        if group["n"] == "tasks":
            out.append(_tasks_html(group, states, colors))
        else:
            labelled.append(f'<li><em style="{_LABEL}">{escape(str(group["n"]))}</em>'
                            f'{_tasks_html(group, states, colors)}</li>')
    if labelled:
        out.append(f'<ul style="{_GROUPS}">{"".join(labelled)}</ul>')
    return "".join(out)


def _tasks_html(group: Mapping[str, Any], states: Mapping[str, str], colors: Mapping[str, str]) -> str:
    tasks = group.get("tasks") or []
    more = _more_html(group.get("more"))
    if group["k"] == "par":
        items = [_box(t, states, colors, 0) for t in tasks] + ([f"<li>{more}</li>"] if more else [])
        return f'<ul style="{_STACK}">{"".join(items)}</ul>'
    if group["k"] == "dag":
        after: dict[str, list[str]] = {}
        for dep, task in group.get("edges") or ():
            after.setdefault(task, []).append(dep)
        columns, i = [], 0
        for n in group.get("cols") or [len(tasks)]:
            boxes = "".join(_box(t, states, colors, 0, after.get(t["id"])) for t in tasks[i:i + n])
            columns.append(_cell(f'<ul style="{_COLUMN}">{boxes}</ul>', bool(columns)))
            i += n
        if more:
            columns.append(_cell(more, bool(columns)))
        return f'<ol style="{_ROW}">{"".join(columns)}</ol>'
    items = [_box(t, states, colors, GAP if i else 0) for i, t in enumerate(tasks)]
    if more:
        items.append(_cell(more, bool(items)))
    return f'<ol style="{_ROW}">{"".join(items)}</ol>'


def _arrow(shown: bool) -> str:
    return f'<b style="{_ARROW}">→</b> ' if shown else ""


def _cell(content: str, arrow: bool) -> str:
    return f'<li style="{_CELL.format(gap=GAP if arrow else 0)}">{_arrow(arrow)}{content}</li>'


def _box(node: Mapping[str, Any], states: Mapping[str, str], colors: Mapping[str, str], gap: int,
         after: list[str] | None = None) -> str:
    task_id = str(node["id"])
    state = states.get(task_id)
    parts = [_arrow(bool(gap)), f"<code>{escape(task_id)}</code> <em>{escape(str(node.get('t', '')))}</em>"]
    if state is not None:
        parts.append(f" <b>{escape(str(state))}</b>")
    if node.get("off"):
        parts.append(" <i>disabled</i>")
    if after:
        parts.append(f' <i style="{_LABEL}">after {escape(", ".join(after))}</i>')
    parts.append(_groups_html(node, states, colors))
    parts.append(_more_html(node.get("more")))
    style = _BOX.format(gap=gap, color=_color(colors, state))
    return f'<li style="{style}">{"".join(parts)}</li>'


def _more_html(more: Any) -> str:
    return f'<em style="{_LABEL}">+{int(more)} more</em>' if more else ""


__all__ = ["MAX_DEPTH", "MAX_NODES", "topology", "topology_html"]
