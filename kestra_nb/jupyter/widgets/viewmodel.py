"""What the execution view shows, computed from Kestra's execution JSON: timeline rows, outputs and logs.

Pure Python with no widget library, so the live widget (`view.py`), the static HTML (`static.py`) and
`Execution._repr_html_` all render the same data. Times are milliseconds relative to the execution's
start (its CREATED date); `None` means "not yet" (a running bar grows up to `now`).

Gantt semantics follow Kestra's UI: one row per task run, ordered by start and nested under its parent
task run; the queued part (CREATED -> first RUNNING) drawn lighter than the running part; a marker when a
task run has several attempts. A Subflow or ForEachItem task run expands into the executions it started
(child documents whose `trigger.variables.executionId` is a shown execution): a row per child execution,
then that child's task runs, nested below; such rows carry `execution` (the child's id) and `under` (the
ids of the subflow rows they are nested in, outermost first), so a view can fold them.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from ...model.jsonfmt import parse_instant

# Kestra's state colours, from its UI (kestra-io/kestra ui/src/utils/state.ts, `STATE.*.color`).
STATE_COLORS: dict[str, str] = {
    "CREATED": "#1761FD",
    "RESTARTED": "#1761FD",
    "SUBMITTED": "#1761FD",
    "RUNNING": "#8405FF",
    "KILLING": "#FCE07C",
    "KILLED": "#FCE07C",
    "SUCCESS": "#029E73",
    "WARNING": "#DD5F00",
    "FAILED": "#AB0009",
    "PAUSED": "#918BA9",
    "CANCELLED": "#918BA9",
    "SKIPPED": "#918BA9",
    "QUEUED": "#918BA9",
    "RETRYING": "#918BA9",
    "RETRIED": "#918BA9",
    "BREAKPOINT": "#918BA9",
    "RESUBMITTED": "#918BA9",
}
# Log levels, least severe first; colours chosen to match the state palette (Kestra's are CSS variables).
LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
# Text in a state's colour on a light background, at ≥ 4.5:1 (Kestra's yellow, green, orange and grey are too
# light for text): the same hue, darker. And the text ON a state's colour (a badge): white or near-black.
TEXT_ON_LIGHT: dict[str, str] = {"#FCE07C": "#7a5c00", "#029E73": "#007a55", "#DD5F00": "#a04100",
                                 "#918BA9": "#655f7a", "#1761FD": "#1f5fd1"}
WHITE_TEXT = frozenset({"#1761FD", "#8405FF", "#AB0009"})
LEVEL_COLORS: dict[str, str] = {"TRACE": "#655f7a", "DEBUG": "#655f7a", "INFO": "#1f5fd1", "WARN": "#a04100",
                                "ERROR": "#AB0009"}


def text_color(state: str) -> str:
    """A state's colour for text on a light background."""
    fill = STATE_COLORS.get(state, "#918BA9")
    return TEXT_ON_LIGHT.get(fill, fill)


def badge_text(state: str) -> str:
    """The text colour on a badge of the state's colour."""
    return "#fff" if STATE_COLORS.get(state, "#918BA9") in WHITE_TEXT else "#111"
TERMINATED = frozenset({"FAILED", "WARNING", "SUCCESS", "KILLED", "CANCELLED", "RETRIED", "SKIPPED",
                        "RESUBMITTED"})
MAX_LOGS = 2000  # lines kept in the view (the store keeps them all); more would make every update heavy


class ViewModel:
    """The view's data for one execution, updated from documents and log entries as they arrive."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] | None = None
        self.children: dict[str, dict[str, Any]] = {}  # child executions (subflows) by id, at any depth
        self.logs: list[dict[str, Any]] = []
        self.dropped_logs = 0
        self.origin: float | None = None         # epoch ms of the execution's CREATED date
        self._instants: dict[str, float] = {}    # the same dates come back in every document
        self._limit: float = float("inf")        # rows(): how many rows to build
        self.row_total = 0                       # rows(): how many rows there are
        self.task_output_total = 0               # task_outputs(): how many task runs have outputs

    # ---------------------------------------------------------------------------------------- input

    def update(self, doc: Mapping[str, Any]) -> None:
        """Take the latest document (Kestra JSON) of the execution, or of a child execution it started."""
        if self.doc is not None and doc.get("id") != self.doc.get("id"):
            if self.is_child(doc):
                self.children[str(doc["id"])] = dict(doc)
            return
        self.doc = dict(doc)
        if self.origin is None:
            self.origin = self._epoch(doc["state"]["histories"][0]["date"])

    def is_child(self, doc: Mapping[str, Any]) -> bool:
        """Whether `doc` is an execution started by the shown execution or one of its known children."""
        variables = (doc.get("trigger") or {}).get("variables") or {}
        parent = variables.get("executionId")
        return parent is not None and (parent == (self.doc or {}).get("id") or parent in self.children)

    def add_logs(self, entries: Iterable[Any]) -> None:
        """Append log entries (LogEntry objects or Kestra LogEntry JSON)."""
        for entry in entries:
            if len(self.logs) >= MAX_LOGS:
                self.dropped_logs += 1
                continue
            self.logs.append(_log_fields(entry))

    # --------------------------------------------------------------------------------------- output

    def now(self, epoch_ms: float | None = None) -> float:
        """Milliseconds since the execution started (never before its last known date)."""
        current = (time.time() * 1000.0 if epoch_ms is None else epoch_ms) - (self.origin or 0.0)
        return max(current, self.latest())

    def latest(self) -> float:
        """The latest date of the execution's own history, relative to its start."""
        if self.doc is None:
            return 0.0
        return self._rel(self.doc["state"]["histories"][-1]["date"])

    def summary(self) -> dict[str, Any]:
        """The header: flow, execution id, state, start (epoch ms) and end (relative ms, None while running)."""
        doc = self.doc or {}
        state = doc.get("state") or {"current": "CREATED", "histories": []}
        current = state["current"]
        histories = state.get("histories") or []
        end = self._rel(histories[-1]["date"]) if current in TERMINATED and histories else None
        labels = [f"{label['key']}:{label['value']}" for label in doc.get("labels") or ()
                  if not str(label.get("key", "")).startswith("system.")]
        return {"id": doc.get("id", ""), "namespace": doc.get("namespace", ""), "flowId": doc.get("flowId", ""),
                "revision": doc.get("flowRevision"), "state": current, "start": self.origin, "end": end,
                "labels": labels, "parentId": doc.get("parentId"), "hint": self._hint(doc, current)}

    @staticmethod
    def _hint(doc: Mapping[str, Any], current: str) -> str:
        """What a user can do about the execution's state (a paused one: how to resume it, from anywhere)."""
        if current != "PAUSED" or not doc.get("id"):
            return ""
        execution_id = doc["id"]
        return (f"Paused: resume it with `%flow resume {execution_id} [-i NAME=VALUE]` in another notebook, "
                f"`kestra-nb resume {execution_id}` in a terminal, or POST …/api/v1/main/executions/"
                f"{execution_id}/resume; `%flow kill {execution_id}` stops it")

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The timeline: one row per task run, parents before their children, siblings by start; a subflow
        task run followed by its child executions and their task runs. With `limit`, only the first rows are
        built (the others are counted: `row_total` is how many there are in all)."""
        rows: list[dict[str, Any]] = []
        self._limit = limit if limit is not None else float("inf")
        self.row_total = 0
        self._task_rows(self.doc or {}, 0, [], rows, None)
        return rows

    def _add(self, rows: list[dict[str, Any]], make: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        self.row_total += 1
        if len(rows) >= self._limit:
            return None
        row = make()
        rows.append(row)
        return row

    def _task_rows(self, doc: Mapping[str, Any], depth: int, under: list[str], rows: list[dict[str, Any]],
                   execution: str | None) -> None:
        runs = doc.get("taskRunList") or []
        ids = {tr["id"] for tr in runs}
        children: dict[str | None, list[tuple[float, int, dict[str, Any]]]] = {}
        for index, tr in enumerate(runs):
            parent = tr.get("parentTaskRunId")
            created = self._rel(tr["state"]["histories"][0]["date"])
            children.setdefault(parent if parent in ids else None, []).append((created, index, tr))
        started: dict[str, list[dict[str, Any]]] = {}  # task run id -> the child executions it started
        for child in self.children.values():
            variables = (child.get("trigger") or {}).get("variables") or {}
            if variables.get("executionId") == doc.get("id") and variables.get("taskRunId") in ids:
                started.setdefault(variables["taskRunId"], []).append(child)
        stack: list[tuple[int, dict[str, Any]]] = [
            (depth, tr) for _, _, tr in sorted(children.get(None, ()), key=_start_key, reverse=True)]
        while stack:
            level, tr = stack.pop()
            row = self._add(rows, lambda: self._row(tr, level))
            if row is not None:
                row["under"] = list(under)
                if execution is not None:
                    row["execution"] = execution
            for child in sorted(started.get(tr["id"], ()), key=self._child_key):
                if row is not None:
                    row["subflow"] = True
                nested = [*under, tr["id"]]
                self._add(rows, lambda: self._execution_row(child, level + 1, nested))
                self._task_rows(child, level + 2, nested, rows, str(child["id"]))
            kids = children.get(tr["id"])
            if kids:
                stack.extend((level + 1, kid) for _, _, kid in sorted(kids, key=_start_key, reverse=True))

    def _execution_row(self, doc: Mapping[str, Any], depth: int, under: list[str]) -> dict[str, Any]:
        """The row of a child execution: its flow, its iteration (ForEachItem), its own state bar."""
        state = doc["state"]
        histories = state["histories"]
        current = state["current"]
        running = next((self._rel(h["date"]) for h in histories if h["state"] == "RUNNING"), None)
        end = self._rel(histories[-1]["date"]) if current in TERMINATED else None
        iteration = ((doc.get("trigger") or {}).get("variables") or {}).get("taskRunIteration")
        return {"id": doc["id"], "task": f'{doc.get("namespace", "")}.{doc.get("flowId", "")}',
                "value": None if iteration is None else str(iteration), "depth": depth, "state": current,
                "created": self._rel(histories[0]["date"]), "running": running, "end": end, "attempts": 0,
                "execution": doc["id"], "kind": "execution", "under": under}

    def outputs(self) -> dict[str, Any]:
        """The flow's outputs (empty until the execution ends)."""
        return dict((self.doc or {}).get("outputs") or {})

    def task_outputs(self, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The outputs of each task run that has some, in timeline order (the shown execution's own); of the
        task runs of `rows` when given (`task_output_total` counts them all)."""
        runs = {tr["id"]: tr for tr in (self.doc or {}).get("taskRunList") or ()}
        self.task_output_total = sum(1 for tr in runs.values() if tr.get("outputs"))
        out = []
        for row in self.rows() if rows is None else rows:
            if row["id"] not in runs:  # a child execution's row
                continue
            outputs = runs[row["id"]].get("outputs")
            if outputs:
                out.append({"task": row["task"], "value": row["value"], "outputs": outputs})
        return out

    def task_states(self) -> dict[str, str]:
        """The state of each task's latest task run (the topology's colours), the shown execution's own."""
        return {tr["taskId"]: tr["state"]["current"] for tr in (self.doc or {}).get("taskRunList") or ()}

    def log_rows(self) -> list[dict[str, Any]]:
        """Log lines with their time relative to the start and the loop value of their task run."""
        values = {tr["id"]: tr.get("value") for tr in (self.doc or {}).get("taskRunList") or ()}
        out = []
        for entry in self.logs:
            row = dict(entry)
            row["t"] = self._rel(entry["timestamp"]) if entry.get("timestamp") else None
            row["value"] = values.get(entry.get("taskRunId") or "")
            out.append(row)
        return out

    def state(self, epoch_ms: float | None = None, limit: int | None = None) -> dict[str, Any]:
        """Everything the view renders, as JSON-able traits; with `limit`, the first timeline rows only (and
        the outputs of their task runs): `runs_total` and `task_outputs_total` count them all."""
        rows = self.rows(limit)
        return {"summary": self.summary(), "runs": rows, "runs_total": self.row_total,
                "now": round(self.now(epoch_ms), 3), "outputs": self.outputs(),
                "task_outputs": self.task_outputs(rows), "task_outputs_total": self.task_output_total,
                "logs": self.log_rows(), "document": self.doc or {}}

    def running(self) -> bool:
        """Whether anything is still under way (a bar would grow)."""
        if self.doc is None:
            return True
        if self.doc["state"]["current"] not in TERMINATED:
            return True
        return any(tr["state"]["current"] not in TERMINATED for tr in self.doc.get("taskRunList") or ()) or any(
            child["state"]["current"] not in TERMINATED for child in self.children.values())

    # ------------------------------------------------------------------------------------- helpers

    def _row(self, tr: Mapping[str, Any], depth: int) -> dict[str, Any]:
        state = tr["state"]
        histories = state["histories"]
        current = state["current"]
        running = next((self._rel(h["date"]) for h in histories if h["state"] == "RUNNING"), None)
        end = self._rel(histories[-1]["date"]) if current in TERMINATED else None
        return {"id": tr["id"], "task": tr["taskId"], "value": tr.get("value"), "depth": depth,
                "state": current, "created": self._rel(histories[0]["date"]), "running": running, "end": end,
                "attempts": len(tr.get("attempts") or ())}

    def _child_key(self, doc: Mapping[str, Any]) -> tuple[int, float]:
        """Child executions in iteration order (ForEachItem batches), then by creation."""
        variables = (doc.get("trigger") or {}).get("variables") or {}
        return int(variables.get("taskRunIteration") or 0), self._epoch(doc["state"]["histories"][0]["date"])

    def _epoch(self, text: str) -> float:
        value = self._instants.get(text)
        if value is None:
            value = self._instants[text] = parse_instant(text).timestamp() * 1000.0
        return value

    def _rel(self, text: str) -> float:
        return round(self._epoch(text) - (self.origin or 0.0), 3)


def _start_key(item: tuple[float, int, dict[str, Any]]) -> tuple[float, int]:
    return item[0], item[1]



def _log_fields(entry: Any) -> dict[str, Any]:
    """The few fields of a log entry the view shows, from a LogEntry or Kestra's LogEntry JSON."""
    if isinstance(entry, Mapping):
        return {"timestamp": entry.get("timestamp"), "level": str(entry.get("level", "INFO")),
                "task": entry.get("taskId"), "taskRunId": entry.get("taskRunId"),
                "message": str(entry.get("message", ""))}
    from ...model.jsonfmt import format_instant

    return {"timestamp": format_instant(entry.timestamp), "level": str(entry.level), "task": entry.task_id,
            "taskRunId": entry.task_run_id, "message": entry.message}


FILE_SCHEME = "kestra:///"
_FILE_URI = re.compile(r"kestra:///\S+")   # a URI has no blanks: text that merely starts like one is no file


def is_file_uri(value: Any) -> bool:
    """Whether an output value is a file of the internal storage (shown as a download link)."""
    return isinstance(value, str) and _FILE_URI.fullmatch(value) is not None


def base_url() -> str:
    """The Jupyter server's base URL as a kernel knows it: KESTRA_NB_BASE_URL (set by the server extension for
    the kernels it starts), else JupyterHub's JUPYTERHUB_SERVICE_PREFIX, else `/`."""
    base = os.environ.get("KESTRA_NB_BASE_URL") or os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    return base if base.endswith("/") else base + "/"


def file_url(execution_id: str, uri: str, base: str | None = None) -> str:
    """Where the Jupyter server extension serves a `kestra:///` file of an execution (a GET with the user's
    session cookie or token): `{base_url}kestra/api/v1/main/executions/{id}/file?path=<uri>`."""
    base = base_url() if base is None else (base if base.endswith("/") else base + "/")
    return (f"{base}kestra/api/v1/main/executions/{quote(execution_id, safe='')}/file"
            f"?path={quote(uri, safe='')}")


def format_ms(ms: float | None) -> str:
    """A duration for people: `0.4 ms`, `12 ms`, `1.23 s`, `2m 05s`."""
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes}m {seconds:02d}s"


__all__ = ["LEVELS", "LEVEL_COLORS", "STATE_COLORS", "ViewModel", "badge_text", "text_color", "base_url", "file_url", "format_ms",
           "is_file_uri"]
