"""The static HTML rendition of an execution: what viewers without widgets (nbconvert, GitHub) show.

It is the same markup and CSS classes as the live widget's (`view.py` draws it in JavaScript from the same
view-model state), with every section laid out one after another instead of tabs: header, timeline,
Outputs (collapsible JSON), Logs, and the execution JSON (collapsed).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from .viewmodel import (
    LEVEL_COLORS,
    STATE_COLORS,
    ViewModel,
    file_url,
    format_ms,
    is_file_uri,
)

CSS = """
.kn-view{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:12px;
  color:var(--jp-ui-font-color1,#1f2328);border:1px solid var(--jp-border-color2,#d0d7de);border-radius:6px;
  padding:8px 10px;max-width:100%;box-sizing:border-box;background:var(--jp-layout-color1,#fff)}
.kn-view *{box-sizing:border-box}
.kn-head{display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin-bottom:6px;line-height:18px}
.kn-badge{color:#fff;border-radius:4px;padding:1px 7px;font-weight:600;font-size:11px}
.kn-flow{font-weight:600}
.kn-hint{margin:0 0 6px;padding:3px 6px;border-left:3px solid #918BA9;background:var(--jp-layout-color2,#f6f8fa);
  font-family:var(--jp-code-font-family,monospace);font-size:11px;overflow-wrap:anywhere}
.kn-muted{color:var(--jp-ui-font-color2,#656d76)}
.kn-label-chip{border:1px solid var(--jp-border-color2,#d0d7de);border-radius:10px;padding:0 6px;font-size:11px}
.kn-tl{max-height:420px;overflow-y:auto;border-top:1px solid var(--jp-border-color3,#eaeef2)}
.kn-row{display:grid;grid-template-columns:minmax(120px,28%) 1fr 70px;align-items:center;height:20px;
  line-height:18px;border-bottom:1px solid var(--jp-border-color3,#eaeef2)}
.kn-label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding-right:6px}
.kn-value{color:var(--jp-ui-font-color2,#656d76)}
.kn-attempts{margin-left:4px;font-size:10px;font-weight:600;color:#DD5F00}
.kn-track{position:relative;height:12px;background:var(--jp-layout-color2,#f6f8fa);border-radius:2px}
.kn-queued,.kn-bar{position:absolute;top:0;height:12px;min-width:2px;border-radius:2px}
.kn-queued{opacity:.35}
.kn-dur{text-align:right;color:var(--jp-ui-font-color2,#656d76);font-variant-numeric:tabular-nums}
.kn-empty{padding:6px 0;color:var(--jp-ui-font-color2,#656d76)}
.kn-tabs{display:flex;gap:2px;margin-top:8px;border-bottom:1px solid var(--jp-border-color2,#d0d7de)}
.kn-tab{border:0;background:none;padding:3px 10px;cursor:pointer;color:var(--jp-ui-font-color2,#656d76);
  font:inherit;border-bottom:2px solid transparent}
.kn-tab.kn-active{color:var(--jp-ui-font-color1,#1f2328);border-bottom-color:#8405FF}
.kn-pane{padding:6px 0;max-height:360px;overflow:auto}
.kn-section>summary{cursor:pointer;font-weight:600;margin-top:6px}
.kn-json{font-family:var(--jp-code-font-family,monospace);font-size:11px;line-height:16px}
.kn-json details>summary{cursor:pointer;list-style:none}
.kn-json details>summary::before{content:'\\25B8 ';color:var(--jp-ui-font-color2,#656d76)}
.kn-json details[open]>summary::before{content:'\\25BE '}
.kn-json .kn-children{padding-left:14px}
.kn-key{color:#8405FF}.kn-str{color:#029E73}.kn-num{color:#1761FD}.kn-lit{color:#DD5F00}
a.kn-file{text-decoration:underline dotted;cursor:pointer}a.kn-file::after{content:' \2913';color:#1761FD}
.kn-logs{border-collapse:collapse;width:100%;font-family:var(--jp-code-font-family,monospace);font-size:11px}
.kn-logs td{padding:1px 6px;vertical-align:top;border-bottom:1px solid var(--jp-border-color3,#eaeef2)}
.kn-logs td.kn-msg{white-space:pre-wrap;word-break:break-word}
.kn-filters{display:flex;gap:8px;align-items:center;margin-bottom:4px}
.kn-filters select{font:inherit;font-size:11px}
.kn-pre{font-family:var(--jp-code-font-family,monospace);font-size:11px;white-space:pre;margin:0}
"""


def color(state: str) -> str:
    """Kestra's colour for a state (grey for an unknown one)."""
    return STATE_COLORS.get(state, "#918BA9")


def header_html(summary: Mapping[str, Any], now: float) -> str:
    """The badge, flow, revision, execution id, labels and total duration."""
    state = summary.get("state", "CREATED")
    total = summary["end"] if summary.get("end") is not None else now
    labels = "".join(f'<span class="kn-label-chip">{escape(text)}</span>' for text in summary.get("labels") or ())
    revision = f' <span class="kn-muted">rev {summary["revision"]}</span>' if summary.get("revision") else ""
    return (f'<div class="kn-head"><span class="kn-badge" data-state="{escape(state)}" '
            f'style="background:{color(state)}">{escape(state)}</span>'
            f'<span class="kn-flow">{escape(summary.get("namespace", ""))}.{escape(summary.get("flowId", ""))}'
            f'</span>{revision}<span class="kn-muted kn-exid">{escape(summary.get("id", ""))}</span>{labels}'
            f'<span class="kn-total" title="total duration">{format_ms(total)}</span></div>'
            + (f'<div class="kn-hint">{escape(summary["hint"])}</div>' if summary.get("hint") else ""))


def timeline_html(summary: Mapping[str, Any], rows: list[Mapping[str, Any]], now: float) -> str:
    """The Gantt rows: a lighter queued part, the running part in the state's colour, the duration."""
    if not rows:
        return '<div class="kn-tl"><div class="kn-empty">No task run yet</div></div>'
    total = summary["end"] if summary.get("end") is not None else now
    total = max(total, *(r["end"] or 0 for r in rows), 0.001)
    out = ['<div class="kn-tl">']
    for row in rows:
        state = row["state"]
        fill = color(state)
        end = row["end"] if row["end"] is not None else now
        running = row["running"]
        queued_to = running if running is not None else end
        value = f' <span class="kn-value">{escape(str(row["value"]))}</span>' if row.get("value") is not None else ""
        attempts = (f'<span class="kn-attempts" title="{row["attempts"]} attempts">&#x21bb;{row["attempts"]}</span>'
                    if row["attempts"] > 1 else "")
        label = f'{escape(row["task"])}{value}{attempts}'
        if row.get("subflow"):
            label = f'<span class="kn-fold">&#x25BE;</span>{label}'
        nested = ""
        if row.get("execution"):  # a row of a child execution (subflow), folded under `under`
            nested = (f' data-execution="{escape(row["execution"])}" data-under="{escape(" ".join(row["under"]))}"'
                      + (' data-kind="execution"' if row.get("kind") == "execution" else ""))
        bar = ""
        if running is not None:
            bar = (f'<div class="kn-bar" data-state="{state}" data-task="{escape(row["task"])}" '
                   f'style="left:{_pct(running, total)}%;width:{_pct(end - running, total)}%;background:{fill}">'
                   f'</div>')
        out.append(
            f'<div class="kn-row" data-id="{escape(row["id"])}" data-task="{escape(row["task"])}" '
            f'data-state="{state}"{nested} title="{escape(row["task"])} {state}">'
            f'<div class="kn-label" style="padding-left:{row["depth"] * 14}px">{label}</div>'
            f'<div class="kn-track"><div class="kn-queued" data-state="{state}" '
            f'style="left:{_pct(row["created"], total)}%;width:{_pct(queued_to - row["created"], total)}%;'
            f'background:{fill}"></div>{bar}</div>'
            f'<div class="kn-dur">{format_ms(end - row["created"])}</div></div>')
    out.append("</div>")
    return "".join(out)


def _pct(value: float, total: float) -> str:
    return f"{max(0.0, min(100.0, value / total * 100)):.3f}"


Link = Callable[[str], str]   # a `kestra:///` URI -> the URL that downloads it


def json_tree(value: Any, key: str | None = None, depth: int = 0, open_depth: int = 1,
              link: Link | None = None) -> str:
    """A value as nested collapsible <details> (maps and lists), open down to `open_depth`; with `link`,
    `kestra:///` file URIs are download links."""
    name = f'<span class="kn-key">{escape(key)}</span>: ' if key is not None else ""
    if isinstance(value, Mapping) and value:
        items = "".join(json_tree(v, str(k), depth + 1, open_depth, link) for k, v in value.items())
        opened = " open" if depth < open_depth else ""
        return (f'<details{opened}><summary>{name}<span class="kn-muted">{{{len(value)}}}</span></summary>'
                f'<div class="kn-children">{items}</div></details>')
    if isinstance(value, list) and value:
        items = "".join(json_tree(v, str(i), depth + 1, open_depth, link) for i, v in enumerate(value))
        opened = " open" if depth < open_depth else ""
        return (f'<details{opened}><summary>{name}<span class="kn-muted">[{len(value)}]</span></summary>'
                f'<div class="kn-children">{items}</div></details>')
    return f"<div>{name}{_scalar(value, link)}</div>"


def _scalar(value: Any, link: Link | None = None) -> str:
    if isinstance(value, str):
        text = f'<span class="kn-str">{escape(json.dumps(value, ensure_ascii=False))}</span>'
        if link is not None and is_file_uri(value):
            name = escape(value.rstrip("/").rsplit("/", 1)[-1])
            return (f'<a class="kn-file" href="{escape(link(value))}" data-uri="{escape(value)}" '
                    f'target="_blank" rel="noopener" download="{name}" title="Download {name}">{text}</a>')
        return text
    if isinstance(value, bool) or value is None:
        return f'<span class="kn-lit">{json.dumps(value)}</span>'
    if isinstance(value, (int, float)):
        return f'<span class="kn-num">{json.dumps(value)}</span>'
    if isinstance(value, Mapping):
        return '<span class="kn-muted">{}</span>'
    if isinstance(value, list):
        return '<span class="kn-muted">[]</span>'
    return f'<span class="kn-str">{escape(str(value))}</span>'


def outputs_html(outputs: Mapping[str, Any], task_outputs: list[Mapping[str, Any]],
                 execution_id: str | None = None, base_url: str | None = None) -> str:
    """Flow outputs, then each task run's outputs, as collapsible JSON; with the execution's id, file URIs
    link to their download through the Jupyter server extension (under `base_url`, see viewmodel.base_url)."""
    link: Link | None = None
    if execution_id:
        def link(uri: str) -> str:
            return file_url(execution_id, uri, base_url)
    parts = ['<div class="kn-json kn-outputs">']
    parts.append(json_tree(dict(outputs), "outputs", 0, 2, link) if outputs else
                 '<div class="kn-muted">No flow outputs</div>')
    if task_outputs:
        tasks = {f'{t["task"]}' + (f'[{t["value"]}]' if t.get("value") is not None else ""): t["outputs"]
                 for t in task_outputs}
        parts.append(json_tree(tasks, "task outputs", 0, 0, link))
    parts.append("</div>")
    return "".join(parts)


def logs_html(logs: list[Mapping[str, Any]]) -> str:
    """Every log line: time since start, level, task run, message."""
    if not logs:
        return '<div class="kn-muted">No logs</div>'
    rows = []
    for entry in logs:
        level = entry.get("level", "INFO")
        task = entry.get("task") or ""
        if entry.get("value") is not None:
            task += f'[{entry["value"]}]'
        rows.append(
            f'<tr data-level="{escape(level)}"><td class="kn-muted">{format_ms(entry.get("t"))}</td>'
            f'<td style="color:{LEVEL_COLORS.get(level, "#918BA9")};font-weight:600">{escape(level)}</td>'
            f'<td>{escape(task)}</td><td class="kn-msg">{escape(entry.get("message", ""))}</td></tr>')
    return f'<table class="kn-logs">{"".join(rows)}</table>'


def render_state(state: Mapping[str, Any], error: str = "") -> str:
    """The whole static view of a view-model state (see ViewModel.state)."""
    summary, now = state["summary"], state["now"]
    logs = state["logs"]
    document = json.dumps(state["document"], indent=2, ensure_ascii=False)
    problem = f'<div class="kn-error" style="color:#AB0009">{escape(error)}</div>' if error else ""
    return (f'<div class="kn-view kn-static"><style>{CSS}</style>{header_html(summary, now)}{problem}'
            f'{timeline_html(summary, state["runs"], now)}'
            f'<details class="kn-section" open><summary>Outputs</summary>'
            f'{outputs_html(state["outputs"], state["task_outputs"], summary.get("id"))}</details>'
            f'<details class="kn-section"{" open" if logs else ""}><summary>Logs ({len(logs)})</summary>'
            f'{logs_html(logs)}</details>'
            f'<details class="kn-section"><summary>Execution JSON</summary>'
            f'<pre class="kn-pre">{escape(document)}</pre></details></div>')


def execution_html(document: Mapping[str, Any], logs: list[Any] | None = None) -> str:
    """The static view of one execution document (and its logs, when given)."""
    model = ViewModel()
    model.update(document)
    model.add_logs(logs or ())
    return render_state(model.state(epoch_ms=(model.origin or 0) + model.latest()))


__all__ = ["CSS", "color", "execution_html", "header_html", "json_tree", "logs_html", "outputs_html",
           "render_state", "timeline_html"]
