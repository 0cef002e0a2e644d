"""The `text/html` twin of the execution view: what a saved notebook shows where the extension is not.

It must read well everywhere: nbconvert as it is and with `sanitize_html` (whose bleach allow-list keeps
only a, abbr, b, blockquote, code, em, i, li, ol, strong, ul, and drops every attribute but a link's href and
title), nbviewer and GitHub. So it is made of those tags alone; colours and layout are inline `style`
attributes, which a sanitizer drops without a trace, and the timeline is text (bars of block characters in
<code>), which survives them all. No script, no <style>, bounded (see `display.MAX_ROWS`): the first rows,
the error, the flow outputs and the last log lines.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from html import escape
from typing import Any

from .viewmodel import LEVEL_COLORS, STATE_COLORS, badge_text, file_url, format_ms, is_file_uri, text_color

TWIN_ROWS = 40      # timeline rows in the twin (the mime output has more)
TWIN_LOGS = 20      # the last log lines in the twin
TWIN_FILES = 20     # task runs' files linked in the twin
TWIN_TEXT = 300     # characters of one value or message in the twin
BAR = 30            # characters of a timeline bar

_BOX = ("border-left:4px solid {color};margin:4px 0;padding:4px 10px;font-family:system-ui,sans-serif;"
        "font-size:12px;line-height:18px")
_LIST = "list-style:none;margin:2px 0;padding:0"
_MONO = "font-family:monospace;font-size:11px"


def color(state: str) -> str:
    """Kestra's colour for a state (grey for an unknown one)."""
    return STATE_COLORS.get(state, "#918BA9")


def badge(state: str) -> str:
    return (f'<b style="background:{color(state)};color:{badge_text(state)};padding:0 6px;border-radius:3px">'
            f'{escape(state)}</b>')


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= TWIN_TEXT else f"{text[:TWIN_TEXT]}…"


def bar(row: Mapping[str, Any], total: float, now: float) -> str:
    """A row's Gantt bar as text: `·` before it was created, `░` queued, `█` running, `·` after."""
    def cell(ms: float) -> int:
        return max(0, min(BAR, round(ms / total * BAR)))

    end = row["end"] if row["end"] is not None else now
    created = cell(row["created"])
    running = cell(row["running"]) if row["running"] is not None else cell(end)
    stop = max(cell(end), running + 1 if row["running"] is not None else running, created + 1)
    stop = min(stop, BAR)
    running = min(max(running, created), stop)
    return "·" * created + "░" * (running - created) + "█" * (stop - running) + "·" * (BAR - stop)


def twin_html(state: Mapping[str, Any]) -> str:
    """The twin of one view state (display.view_state)."""
    summary = state.get("summary") or {}
    current = summary.get("state", "CREATED")
    now = state.get("now") or 0.0
    runs = state.get("runs") or []
    total = summary["end"] if summary.get("end") is not None else now
    total = max([total, *(r["end"] or 0 for r in runs), 0.001])
    execution_id = str(summary.get("id", ""))
    revision = f" rev {summary['revision']}" if summary.get("revision") else ""
    labels = "".join(f" <em>{escape(label)}</em>" for label in summary.get("labels") or ())
    out = [f'<blockquote style="{_BOX.format(color=color(current))}">',
           f'{badge(current)} <strong>{escape(summary.get("namespace", ""))}.{escape(summary.get("flowId", ""))}'
           f'</strong>{revision} <code>{escape(execution_id)}</code> {format_ms(total)}{labels}']
    notes = []
    if state.get("error"):
        notes.append(f'<li><strong style="color:#AB0009">Error</strong> '
                     f'<code style="white-space:pre-wrap">{escape(_short(state["error"]))}</code></li>')
    if summary.get("hint"):
        notes.append(f"<li><em>{escape(summary['hint'])}</em></li>")
    if notes:
        out.append(f'<ul style="{_LIST}">{"".join(notes)}</ul>')
    out.append(_timeline(runs, total, now, (state.get("hidden") or {}).get("runs", 0)))
    out.append(_outputs(state.get("outputs") or {}, execution_id))
    out.append(_files(state.get("task_outputs") or [], execution_id))
    out.append(_logs(state.get("logs") or [], (state.get("hidden") or {}).get("logs", 0)))
    out.append("</blockquote>")
    return "".join(out)


def _timeline(runs: list[Mapping[str, Any]], total: float, now: float, hidden: int) -> str:
    if not runs:
        return f'<ul style="{_LIST}"><li><em>No task run yet</em></li></ul>'
    items = []
    for row in runs[:TWIN_ROWS]:
        state = row["state"]
        value = f" <em>{escape(_short(row['value']))}</em>" if row.get("value") is not None else ""
        attempts = f" ({row['attempts']} attempts)" if row.get("attempts", 0) > 1 else ""
        end = row["end"] if row["end"] is not None else now
        items.append(
            f'<li><code style="{_MONO};color:{text_color(state)}">{bar(row, total, now)}</code> '
            f'<b style="color:{text_color(state)}">{escape(state)}</b> {"· " * row["depth"]}'
            f'<code>{escape(row["task"])}</code>{value}{attempts} {format_ms(end - row["created"])}</li>')
    more = len(runs) - TWIN_ROWS + hidden if len(runs) > TWIN_ROWS else hidden
    if more > 0:
        items.append(f"<li><em>{more} more task runs (open the notebook in JupyterLab, or `%flow show`)</em></li>")
    return f'<ul style="{_LIST}">{"".join(items)}</ul>'


def _outputs(outputs: Mapping[str, Any], execution_id: str) -> str:
    if not outputs:
        return ""
    items = []
    for key, value in list(outputs.items())[:50]:
        if is_file_uri(value) and execution_id:
            shown = f'<a href="{escape(file_url(execution_id, value))}">{escape(value)}</a>'
        else:
            shown = f"<code>{escape(_short(value))}</code>"
        items.append(f"<li><code>{escape(str(key))}</code>: {shown}</li>")
    return f'<strong>Outputs</strong><ul style="{_LIST}">{"".join(items)}</ul>'


def _file_uris(value: Any, depth: int = 0) -> Iterator[str]:
    if is_file_uri(value):
        yield value
    elif depth < 8 and isinstance(value, Mapping):
        for item in value.values():
            yield from _file_uris(item, depth + 1)
    elif depth < 8 and isinstance(value, (list, tuple)):
        for item in value:
            yield from _file_uris(item, depth + 1)


def _files(task_outputs: list[Mapping[str, Any]], execution_id: str) -> str:
    """The files the task runs wrote (`kestra:///` URIs in their outputs) as download links."""
    if not execution_id:
        return ""
    seen: dict[str, str] = {}
    for entry in task_outputs:
        task = str(entry.get("task", "")) + (f"[{entry['value']}]" if entry.get("value") is not None else "")
        for uri in _file_uris(entry.get("outputs")):
            seen.setdefault(uri, task)
    if not seen:
        return ""
    items = [f'<li><a href="{escape(file_url(execution_id, uri))}">{escape(uri.rstrip("/").rsplit("/", 1)[-1])}'
             f'</a> <code>{escape(task)}</code></li>' for uri, task in list(seen.items())[:TWIN_FILES]]
    if len(seen) > TWIN_FILES:
        items.append(f"<li><em>{len(seen) - TWIN_FILES} more files</em></li>")
    return f'<strong>Files</strong><ul style="{_LIST}">{"".join(items)}</ul>'


def _logs(logs: list[Mapping[str, Any]], hidden: int) -> str:
    if not logs:
        return ""
    shown = logs[-TWIN_LOGS:]
    earlier = len(logs) - len(shown) + hidden
    items = []
    for line in shown:
        level = str(line.get("level", "INFO"))
        task = str(line.get("task") or "")
        if line.get("value") is not None:
            task += f"[{line['value']}]"
        items.append(f'<li><code style="{_MONO}">{format_ms(line.get("t"))}</code> '
                     f'<b style="color:{LEVEL_COLORS.get(level, LEVEL_COLORS["TRACE"])}">{escape(level)}</b> '
                     f'<code>{escape(task)}</code> {escape(_short(str(line.get("message", ""))))}</li>')
    heading = f"Logs (the last {len(shown)} of {len(shown) + earlier})" if earlier else "Logs"
    return f'<strong>{heading}</strong><ul style="{_LIST}">{"".join(items)}</ul>'


__all__ = ["BAR", "badge", "bar", "color", "twin_html"]
