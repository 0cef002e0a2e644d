"""The live execution view: ONE anywidget model for the whole view (header, timeline, outputs, logs, JSON).

The kernel pushes view-model state (`viewmodel.ViewModel.state()`) into synced traits; `view.js` draws it.
Its mime bundle carries, next to the widget view, the static HTML rendition of the current state
(`static.render_state`), so a saved notebook shows the execution where widgets cannot be rendered.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from . import static
from .viewmodel import STATE_COLORS, ViewModel

_ESM = (Path(__file__).with_name("view.js")).read_text(encoding="utf-8")


class ExecutionView(anywidget.AnyWidget):
    """The live view of one execution; `push(model)` applies a view model's state in one message."""

    _esm = _ESM
    _css = static.CSS

    summary = traitlets.Dict().tag(sync=True)
    runs = traitlets.List().tag(sync=True)
    now = traitlets.Float(0.0).tag(sync=True)
    outputs = traitlets.Dict().tag(sync=True)
    task_outputs = traitlets.List().tag(sync=True)
    logs = traitlets.List().tag(sync=True)
    document = traitlets.Dict().tag(sync=True)
    colors = traitlets.Dict(STATE_COLORS).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model: ViewModel | None = None, **kwargs: Any) -> None:
        state = model.state() if model is not None and model.doc is not None else {}
        super().__init__(**state, **kwargs)
        self.updates = 0          # pushes made (each is at most one comm message): what throttling bounds

    def push(self, model: ViewModel, *, document: bool = True, epoch_ms: float | None = None) -> None:
        """Apply the model's state; traits equal to what the front end has are not sent again.

        `document=False` leaves the execution JSON as it was (the biggest trait, refreshed less often).
        """
        state = model.state(epoch_ms)
        if not document:
            state.pop("document")
        with self.hold_sync():
            for name, value in state.items():
                setattr(self, name, value)
        self.updates += 1

    def current_state(self) -> dict[str, Any]:
        """The traits as a view-model state (for the static rendition)."""
        return {"summary": self.summary, "runs": self.runs, "now": self.now, "outputs": self.outputs,
                "task_outputs": self.task_outputs, "logs": self.logs, "document": self.document}

    def to_html(self) -> str:
        """The static HTML of what the widget shows now."""
        return static.render_state(self.current_state(), self.error)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        data = dict(data)
        if self.summary:
            data["text/html"] = self.to_html()
            data["text/plain"] = _plain(self.summary)
        return data, metadata


def _plain(summary: Mapping[str, Any]) -> str:
    return (f"Execution {summary.get('id', '')} of {summary.get('namespace', '')}.{summary.get('flowId', '')}: "
            f"{summary.get('state', '')}")


__all__ = ["ExecutionView"]
