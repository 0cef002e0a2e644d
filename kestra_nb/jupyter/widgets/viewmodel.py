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
from bisect import insort
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
        self._index: _Runs | None = None          # the shown execution's task runs, kept in timeline order
        self._children: dict[str, _Runs] = {}     # the same, for each child execution
        self.row_total = 0                       # rows(): how many rows there are

    # ---------------------------------------------------------------------------------------- input

    def update(self, doc: Mapping[str, Any]) -> None:
        """Take the latest document (Kestra JSON) of the execution, or of a child execution it started. Only
        the task runs that changed since the previous document cost anything (the engine's documents share
        the dicts of task runs that did not change; others are compared)."""
        if self.doc is not None and doc.get("id") != self.doc.get("id"):
            if self.is_child(doc):
                child_id = str(doc["id"])
                known = child_id in self.children
                self.children[child_id] = dict(doc)
                index = self._children.get(child_id)
                if index is None:
                    index = self._children[child_id] = _Runs(self._rel)
                index.update(doc.get("taskRunList") or [])
                if not known:
                    self._attach(child_id, doc)
            return
        self.doc = dict(doc)
        if self.origin is None:
            self.origin = self._epoch(doc["state"]["histories"][0]["date"])
        if self._index is None:
            self._index = _Runs(self._rel)
        self._index.update(doc.get("taskRunList") or [])

    def _attach(self, child_id: str, doc: Mapping[str, Any]) -> None:
        """List a new child execution under the task run that started it (ForEachItem batches in order)."""
        variables = (doc.get("trigger") or {}).get("variables") or {}
        parent = variables.get("executionId")
        index = self._index if parent == (self.doc or {}).get("id") else self._children.get(parent)
        task_run_id = variables.get("taskRunId")
        if index is not None and isinstance(task_run_id, str):
            insort(index.started.setdefault(task_run_id, []), (self._child_key(doc), child_id))

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
        built (the others are counted: `row_total` is how many there are in all): the cost is that of the rows
        built, whatever the size of the execution (the order is kept up to date by `update`)."""
        rows: list[dict[str, Any]] = []
        index = self._index
        self.row_total = 0 if index is None else self._count(index)
        if index is not None:
            self._task_rows(index, 0, [], rows, None, float("inf") if limit is None else limit)
        return rows

    def _count(self, index: _Runs) -> int:
        """How many rows an execution's task runs and the child executions under them make."""
        total = len(index.runs)
        for task_run_id, child in index.started.items():
            if task_run_id not in index.by_id:   # (a child whose task run the document does not hold yet)
                continue
            for _, child_id in child:
                total += 1 + self._count(self._children[child_id])
        return total

    def _task_rows(self, index: _Runs, depth: int, under: list[str], rows: list[dict[str, Any]],
                   execution: str | None, limit: float) -> None:
        runs, kids, started = index.runs, index.kids, index.started
        stack = [(depth, iter(kids.get(None, ())))]
        while stack and len(rows) < limit:
            level, siblings = stack[-1]
            key = next(siblings, None)
            if key is None:
                stack.pop()
                continue
            tr = runs[key[1]]
            row = self._row(tr, level)
            row["under"] = list(under)
            if execution is not None:
                row["execution"] = execution
            rows.append(row)
            for _, child_id in started.get(tr["id"], ()):
                row["subflow"] = True
                if len(rows) >= limit:
                    break
                child = self.children[child_id]
                nested = [*under, tr["id"]]
                rows.append(self._execution_row(child, level + 1, nested))
                self._task_rows(self._children[child_id], level + 2, nested, rows, str(child["id"]), limit)
            if tr["id"] in kids:
                stack.append((level + 1, iter(kids[tr["id"]])))

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

    @property
    def task_output_total(self) -> int:
        """How many of the shown execution's task runs have outputs."""
        return 0 if self._index is None else len(self._index.with_outputs)

    def task_outputs(self, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The outputs of each task run that has some, in timeline order (the shown execution's own); of the
        task runs of `rows` when given (`task_output_total` counts them all)."""
        index = self._index
        if index is None:
            return []
        out = []
        for row in self.rows() if rows is None else rows:
            position = index.by_id.get(row["id"])
            if position is None:  # a child execution's row
                continue
            outputs = index.runs[position].get("outputs")
            if outputs:
                out.append({"task": row["task"], "value": row["value"], "outputs": outputs})
        return out

    def task_states(self) -> dict[str, str]:
        """The state of each task's latest task run (the topology's colours), the shown execution's own."""
        index = self._index
        return {} if index is None else {task: index.runs[i]["state"]["current"] for task, i in index.last.items()}

    def log_rows(self) -> list[dict[str, Any]]:
        """Log lines with their time relative to the start and the loop value of their task run."""
        index = self._index
        out = []
        for entry in self.logs:
            row = dict(entry)
            row["t"] = self._rel(entry["timestamp"]) if entry.get("timestamp") else None
            position = None if index is None else index.by_id.get(entry.get("taskRunId") or "")
            row["value"] = None if position is None else index.runs[position].get("value")  # type: ignore[union-attr]
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
        return bool(self._index is not None and self._index.open) or any(
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


class _Runs:
    """One execution's task runs, indexed for the timeline and kept up to date document after document: each
    parent's children in start order (a sorted list of (created, position, id)), the task runs not yet
    ended, those with outputs, each task's latest task run, and the child executions each task run started.
    A new document costs what changed in it: an identical dict (the engine shares those of task runs that
    did not change) is skipped, a task run added is inserted where it belongs."""

    __slots__ = ("rel", "runs", "by_id", "kids", "orphans", "open", "with_outputs", "last", "started")

    def __init__(self, rel: Callable[[str], float]) -> None:
        self.rel = rel
        self.runs: list[dict[str, Any]] = []
        self.by_id: dict[str, int] = {}
        self.kids: dict[str | None, list[tuple[float, int, str]]] = {}
        self.orphans: dict[str, list[tuple[float, int, str]]] = {}  # listed first, before their parent
        self.open: set[str] = set()
        self.with_outputs: set[str] = set()
        self.last: dict[str, int] = {}      # task id -> position of its latest task run
        self.started: dict[str, list[tuple[tuple[int, float], str]]] = {}  # task run id -> child executions

    def update(self, runs: list[dict[str, Any]]) -> None:
        old = self.runs
        if len(runs) < len(old) or any(runs[i].get("id") != old[i].get("id") for i in self._moved(runs)):
            started = self.started
            self.__init__(self.rel)   # type: ignore[misc]  # (a different list: index it anew)
            self.started = started
            old = self.runs
        for i in range(len(old)):
            tr = runs[i]
            if tr is not old[i]:
                self._note(i, tr)
        for i in range(len(old), len(runs)):
            self._add(i, runs[i])
        self.runs = runs

    def _moved(self, runs: list[dict[str, Any]]) -> Iterable[int]:
        """The positions to check for a task run replaced by another: the first and the last kept."""
        n = min(len(runs), len(self.runs))
        return (0, n - 1) if n else ()

    def _add(self, i: int, tr: dict[str, Any]) -> None:
        task_run_id = tr["id"]
        self.by_id[task_run_id] = i
        key = (self.rel(tr["state"]["histories"][0]["date"]), i, task_run_id)
        parent = tr.get("parentTaskRunId")
        if parent is not None and parent not in self.by_id:
            self.orphans.setdefault(parent, []).append(key)
            parent = None
        insort(self.kids.setdefault(parent, []), key)
        for orphan in self.orphans.pop(task_run_id, ()):   # its children, listed before it: moved under it
            self.kids[None].remove(orphan)
            insort(self.kids.setdefault(task_run_id, []), orphan)
        task = tr.get("taskId")
        if task is not None and self.last.get(task, -1) < i:
            self.last[task] = i
        self._note(i, tr)

    def _note(self, i: int, tr: dict[str, Any]) -> None:
        task_run_id = tr["id"]
        if tr["state"]["current"] in TERMINATED:
            self.open.discard(task_run_id)
        else:
            self.open.add(task_run_id)
        if tr.get("outputs"):
            self.with_outputs.add(task_run_id)
        else:
            self.with_outputs.discard(task_run_id)



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
