"""An execution in a notebook: ONE display output, replaced while the flow runs, that outlives the kernel.

The output is a mimebundle: the execution's view state under its own mimetype (drawn by the JupyterLab /
Notebook 7 extension from js/, with the shared module ui/static/view.js), a `text/html` twin for the places
that have no extension (nbconvert with or without sanitizing, nbviewer, GitHub; `widgets/static.py`), and
`text/plain`. The cell replaces it with `update_display_data` (no comm), so nbclient and papermill save the
last state and a reopened notebook shows it with no kernel.

Everything in the bundle is bounded, whatever the execution's size: timeline rows, log lines, the length of
each text and of the outputs (the API and `%flow show` have it all). The widgets (ipywidgets) stay for what
needs a live kernel: forms.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from .widgets import static
from .widgets.viewmodel import STATE_COLORS, ViewModel, _log_fields as log_fields

MIME = "application/vnd.kestra.execution+json"
VERSION = 1            # of the state's shape: the renderer reads what it knows
MAX_ROWS = 250         # timeline rows in one output
MAX_LOG_LINES = 200    # the latest log lines in one output
MAX_TEXT = 2_000       # characters of one string value
MAX_MESSAGE = 500      # characters of one log message (the logs API has them whole)
MAX_TASK_OUTPUTS = 50  # task runs whose outputs are shown
MAX_OUTPUTS = 20_000   # characters of the outputs' JSON in one output (past it, a note says where they are)
MAX_VIEW = 42_000      # bytes of the view's JSON text as saved: with the HTML twin, an output stays under 60 KB


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _bounded_value(value: Any, budget: list[int], depth: int = 0) -> Any:
    """A JSON value with long strings cut, deep or long containers shortened; `budget` counts characters."""
    if budget[0] <= 0:
        return "…"
    if isinstance(value, str):
        value = _cut(value)
        budget[0] -= len(value)
        return value
    if isinstance(value, Mapping):
        if depth >= 8:
            return "{…}"
        out = {}
        for i, (key, item) in enumerate(value.items()):
            if budget[0] <= 0 or i >= 200:
                out["…"] = f"{len(value) - i} more entries"
                break
            budget[0] -= len(str(key))
            out[str(key)] = _bounded_value(item, budget, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        if depth >= 8:
            return ["…"]
        items = []
        for i, item in enumerate(value):
            if budget[0] <= 0 or i >= 200:
                items.append(f"… {len(value) - i} more items")
                break
            items.append(_bounded_value(item, budget, depth + 1))
        return items
    budget[0] -= 8
    return value


def view_state(model: ViewModel, error: str = "", epoch_ms: float | None = None,
               graph: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What one output holds: the view model's state, bounded (see the module's docstring); with the flow's
    `graph` (topology.topology, bounded itself), its tasks' states for the Topology tab."""
    # only the rows shown are built: a push of a 10,000-task-run ForEach costs what 250 rows cost
    state = model.state(epoch_ms, limit=MAX_ROWS)
    state.pop("document", None)
    logs = state["logs"]
    state["logs"] = [dict(line, message=_cut(str(line.get("message", "")), MAX_MESSAGE))
                     for line in logs[-MAX_LOG_LINES:]]
    budget = [MAX_OUTPUTS]
    state["outputs"] = _bounded_value(state["outputs"], budget)
    state["task_outputs"] = [dict(t, outputs=_bounded_value(t["outputs"], budget))
                             for t in state["task_outputs"][:MAX_TASK_OUTPUTS] if budget[0] > 0]
    state.update(v=VERSION, colors=STATE_COLORS, error=_cut(error or first_error(model)))
    if graph:
        shown = set(graph_ids(graph))
        state["graph"] = graph
        state["task_states"] = {task: value for task, value in model.task_states().items() if task in shown}
    runs_total, outputs_total = state.pop("runs_total"), state.pop("task_outputs_total")
    logs_total = len(logs) + model.dropped_logs
    # the whole view within MAX_VIEW bytes: fewer rows, log lines and task outputs until it fits
    while True:
        state["hidden"] = {"runs": runs_total - len(state["runs"]), "logs": logs_total - len(state["logs"]),
                           "task_outputs": outputs_total - len(state["task_outputs"])}
        if _saved_bytes(view_text(state)) <= MAX_VIEW or not (state["runs"] or state["logs"] or state["task_outputs"]):
            return state
        for key in ("runs", "task_outputs"):
            state[key] = state[key][:len(state[key]) * 4 // 5]
        state["logs"] = state["logs"][len(state["logs"]) // 5 or len(state["logs"]):]


def graph_ids(node: Mapping[str, Any]) -> Iterator[str]:
    """The task ids of a topology tree."""
    for group in node.get("c") or ():
        for task in group.get("tasks") or ():
            yield str(task.get("id"))
            yield from graph_ids(task)


def flow_graph(engine: Any, document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The topology of an execution's flow revision, None if it cannot be read."""
    from ..errors import KestraNbError
    from .topology import topology

    try:
        flow, _ = engine.load_flow(document["namespace"], document["flowId"], document.get("flowRevision"))
    except (KestraNbError, KeyError):
        return None
    return topology(flow)


def first_error(model: ViewModel) -> str:
    """What went wrong, for a failed execution: its first ERROR log line, with the task it came from."""
    doc = model.doc or {}
    if (doc.get("state") or {}).get("current") not in ("FAILED", "KILLED", "WARNING"):
        return ""
    return first_error_line(model.logs)


def first_error_line(logs: Any) -> str:
    """The first ERROR line among log entries (LogEntry objects or their view fields), with its task."""
    for entry in logs:
        line = entry if isinstance(entry, Mapping) else log_fields(entry)
        if line.get("level") == "ERROR":
            task = line.get("task")
            return f"{task}: {line.get('message', '')}" if task else str(line.get("message", ""))
    return ""


def plain(state: Mapping[str, Any]) -> str:
    summary = state.get("summary") or {}
    text = (f"Execution {summary.get('id', '')} of {summary.get('namespace', '')}.{summary.get('flowId', '')}: "
            f"{summary.get('state', '')}")
    return f"{text}\n{state['error']}" if state.get("error") else text


_ROW_DEFAULTS: dict[str, Any] = {"value": None, "running": None, "end": None, "attempts": 1, "under": [], "depth": 0}
_LOG_FIELDS = ("t", "level", "task", "value", "message")


def _ms(value: Any) -> Any:
    return round(value, 1) if isinstance(value, float) else value


def _compact(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state as the output carries it: rows without their default fields, log lines with the fields the
    view shows, times to 0.1 ms."""
    out = {k: v for k, v in state.items() if k not in ("summary", "runs", "logs", "now")}
    out["now"] = _ms(state.get("now"))
    out["runs"] = [{k: _ms(v) for k, v in row.items() if _ROW_DEFAULTS.get(k, out) != v}
                   for row in state.get("runs") or ()]
    out["logs"] = [{k: _ms(line.get(k)) for k in _LOG_FIELDS if line.get(k) is not None}
                   for line in state.get("logs") or ()]
    return out


def _saved_bytes(text: str) -> int:
    """Bytes a string takes in a saved notebook (a JSON string: quotes and backslashes escaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode())


def view_text(state: Mapping[str, Any]) -> str:
    """The view as the bundle holds it: one compact JSON text."""
    return json.dumps(_compact(state), ensure_ascii=False, separators=(",", ":"))


def bundle(state: Mapping[str, Any]) -> dict[str, Any]:
    """The output's mimebundle for a view state.

    Under the execution mimetype: the version, the summary (id, flow, state: what a tool reading the saved
    notebook looks for) and the rest of the view as ONE compact JSON text. A notebook is saved indented,
    one line per value: as objects, the rows and log lines of a 150-item ForEach took 116 KB; as a text,
    they take a line."""
    return {MIME: {"v": VERSION, "summary": state.get("summary") or {}, "view": view_text(state)},
            "text/html": static.twin_html(state), "text/plain": plain(state)}


class ExecutionDisplay:
    """The display of one execution in a cell: `show()` once, then `push(model)` replaces it in place."""

    def __init__(self, model: ViewModel | None = None, *, into: Any = None,
                 graph: Mapping[str, Any] | None = None) -> None:
        self.error = ""
        self.into = into          # an ipywidgets Output to draw in (a form's), instead of the cell's output
        self.graph = graph        # the flow's topology (built once: the flow does not change while it runs)
        self.updates = 0          # pushes made (each is one update_display_data message): what throttling bounds
        self.handle: Any = None
        self.state: dict[str, Any] = view_state(model, graph=graph) if model is not None and model.doc is not None \
            else {}
        self._model = model

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.state.get("summary") or {})

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self.state.get("runs") or ())

    @property
    def logs(self) -> list[dict[str, Any]]:
        return list(self.state.get("logs") or ())

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.state.get("outputs") or {})

    def show(self) -> ExecutionDisplay:
        """Display it (an output with a display id, for the updates)."""
        if self.into is not None:
            self._draw()
            return self
        from IPython.display import display

        self.handle = display(self._bundle(), raw=True, display_id=True)
        return self

    def _draw(self) -> None:
        # an Output widget ignores update_display_data (jupyter-widgets/ipywidgets#1844): its outputs are replaced
        self.into.outputs = ({"output_type": "display_data", "data": self._bundle(), "metadata": {}},)

    def push(self, model: ViewModel, *, epoch_ms: float | None = None) -> None:
        """Replace the output with the model's current state."""
        self._model = model
        self.state = view_state(model, self.error, epoch_ms, self.graph)
        if self.into is not None:
            self._draw()
        elif self.handle is not None:
            self.handle.update(self._bundle(), raw=True)
        self.updates += 1

    def refresh(self) -> None:
        """Push again (after `error` was set)."""
        if self._model is not None and self._model.doc is not None:
            self.push(self._model)

    def _bundle(self) -> dict[str, Any]:
        if not self.state:
            return {"text/plain": "Execution starting…"}
        return bundle(self.state)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self._bundle()

    def size(self) -> int:
        """Bytes of the output as a notebook saves it (nbformat: indented JSON, texts split in lines)."""
        return saved_size(self._bundle())


def execution_bundle(document: Mapping[str, Any], logs: Any = (), graph: Mapping[str, Any] | None = None,
                     children: Any = ()) -> dict[str, Any]:
    """The mimebundle of one execution document (and its logs, its flow's topology, the documents of the child
    executions its subflow tasks started), as it ended or now."""
    model = ViewModel()
    model.update(document)
    for child in children:
        model.update(child)
    model.add_logs(logs or ())
    # an ended execution is drawn as it ended; a running one as of now (its bars reach the present)
    epoch_ms = None if model.running() else (model.origin or 0) + model.latest()
    return bundle(view_state(model, epoch_ms=epoch_ms, graph=graph))


def saved_size(data: Mapping[str, Any]) -> int:
    """Bytes a display output with `data` adds to a saved notebook."""
    import nbformat

    def notebook(outputs: list[Any]) -> int:
        cell = nbformat.v4.new_code_cell("", outputs=outputs)
        return len(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])).encode())

    return notebook([nbformat.v4.new_output("display_data", data=dict(data))]) - notebook([])


def execution_html(document: Mapping[str, Any], logs: Any = ()) -> str:
    """The `text/html` twin of one execution document."""
    return execution_bundle(document, logs)["text/html"]


def register_formatter(ipython: Any) -> None:
    """Show an `Execution` (what `run()` returns) as this view in IPython's rich display."""
    from ..model.execution import Execution

    formatter = ipython.display_formatter.mimebundle_formatter
    formatter.for_type(Execution, lambda execution: execution_bundle(execution.to_dict()))


__all__ = ["MIME", "ExecutionDisplay", "bundle", "execution_bundle", "execution_html", "first_error",
           "register_formatter", "view_state"]
