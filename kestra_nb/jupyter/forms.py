"""Input forms (ipywidgets) where a live kernel is the point: `%flow form NAMESPACE.ID` shows a stored flow's
inputs as widgets with a Run button, `%flow form EXECUTION_ID` a paused execution's `onResume` inputs with a
Resume button.

A form only gathers what was typed: values go to the engine as text, as `-i NAME=VALUE` would (booleans as
`true`/`false`, multiple choices as a list, an uploaded file as its bytes), so typing and the error messages
are the engine's, one way for every entry point. What the button does is the caller's `submit(values, files)`;
its result (the execution's view) is drawn in the form's own Output, and a mistake is shown in the form in
red instead of a traceback in the log (a button's callback has no cell to fail).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..model.flow import Input

TEXT_AREA = frozenset({"JSON", "YAML", "ARRAY"})
CHOICE = frozenset({"SELECT", "ENUM"})
BOOLEAN = frozenset({"BOOLEAN", "BOOL"})
HINTS = {
    "INT": "an integer", "FLOAT": "a number", "DATETIME": "2026-12-07T10:00:00Z", "DATE": "2026-12-07",
    "TIME": "10:00:00", "DURATION": "PT5M", "EMAIL": "name@example.com", "URI": "https://…",
    "JSON": '{"key": "value"}', "YAML": "key: value", "ARRAY": '["a", "b"]',
}
MAX_UPLOAD = 10 * 1024 * 1024   # bytes of one file: what Jupyter's websocket carries in one message
STYLE = {"description_width": "12em"}
LAYOUT = {"width": "min(40em, 100%)"}

Submit = Callable[[dict[str, Any], dict[str, tuple[str, bytes]]], None]


def _choices(inp: Input) -> list[str]:
    values = inp.props.get("values")
    return [str(v) for v in values] if isinstance(values, list) else []


def _initial(inp: Input) -> Any:
    """What the widget shows first: prefill, else a default that is a value (not a `{{ }}` expression)."""
    value = inp.prefill if inp.prefill is not None else inp.defaults
    if isinstance(value, str) and "{{" in value:
        return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_widget(inp: Input) -> Any:
    """The widget for one input (its `description` names it; required ones end in `*`)."""
    import ipywidgets as w

    label = (inp.display_name or inp.id) + (" *" if inp.required and inp.defaults is None else "")
    kind = inp.type.upper()
    initial = _initial(inp)
    common: dict[str, Any] = {"description": label, "style": STYLE, "layout": LAYOUT,
                              "tooltip": inp.description or inp.id}
    if kind in BOOLEAN:
        return w.Checkbox(value=initial is True or _text(initial).lower() == "true", indent=True,
                          **{k: v for k, v in common.items() if k != "tooltip"})
    if kind in CHOICE:
        options, text = _choices(inp), _text(initial)
        if inp.props.get("allowCustomValue"):
            return w.Combobox(options=options, value=text, ensure_option=False, **common)
        blank = [("—", "")] if not inp.required or text not in options else []   # "" is "not chosen"
        return w.Dropdown(options=blank + [(o, o) for o in options], value=text if text in options else "",
                          **common)
    if kind == "MULTISELECT":
        options = [str(v) for v in inp.props.get("values") or inp.props.get("options") or []]
        chosen = tuple(str(v) for v in initial if str(v) in options) if isinstance(initial, list) else ()
        return w.SelectMultiple(options=options, value=chosen, rows=min(len(options), 6) or 1, **common)
    if kind == "FILE":
        return w.FileUpload(multiple=False, description=label, tooltip=common["tooltip"])
    if kind == "SECRET":
        return w.Password(value=_text(initial), **common)
    if kind in TEXT_AREA:
        return w.Textarea(value=_text(initial), placeholder=HINTS.get(kind, ""), rows=3, **common)
    return w.Text(value=_text(initial), placeholder=HINTS.get(kind, ""), **common)


def field_value(inp: Input, widget: Any) -> Any:
    """The typed text of one field, None when left empty (the engine's default or "missing" applies)."""
    kind = inp.type.upper()
    if kind in BOOLEAN:
        return "true" if widget.value else "false"
    if kind == "MULTISELECT":
        return list(widget.value) or None
    if kind == "FILE":
        return None   # see field_file
    return widget.value if widget.value != "" else None


def field_file(widget: Any) -> tuple[str, bytes] | None:
    """(file name, bytes) of a FileUpload's file, None if none was chosen."""
    for upload in widget.value or ():
        content = upload["content"]
        return str(upload["name"]), content.tobytes() if hasattr(content, "tobytes") else bytes(content)
    return None


class InputsForm:
    """A title, one widget per input, a button, a status line and an Output for what the button shows."""

    def __init__(self, title: str, inputs: list[Input], button: str, submit: Submit) -> None:
        import ipywidgets as w

        self.inputs = list(inputs)
        self.submit = submit
        self.fields = [field_widget(inp) for inp in self.inputs]
        helps = [w.HTML(f'<small style="margin-left:12em">{_escape(inp.description)}</small>')
                 if inp.description else None for inp in self.inputs]
        rows: list[Any] = [w.HTML(f"<b>{_escape(title)}</b>")]
        for widget, help_ in zip(self.fields, helps):
            rows.append(widget)
            if help_ is not None:
                rows.append(help_)
        if not self.inputs:
            rows.append(w.HTML("<small>no inputs</small>"))
        self.button = w.Button(description=button, button_style="primary")
        self.status = w.HTML()
        self.output = w.Output()
        self.button.on_click(lambda _button: self.run())
        self.widget = w.VBox([*rows, w.HBox([self.button, self.status]), self.output])

    def values(self) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        """The typed values and the chosen files, by input id."""
        values: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for inp, widget in zip(self.inputs, self.fields):
            if inp.type.upper() == "FILE":
                chosen = field_file(widget)
                if chosen is not None:
                    if len(chosen[1]) > MAX_UPLOAD:
                        raise ValueError(f"{inp.id}: the file is {len(chosen[1])} bytes; the limit is {MAX_UPLOAD}")
                    files[inp.id] = chosen
                continue
            value = field_value(inp, widget)
            if value is not None:
                values[inp.id] = value
        return values, files

    def run(self) -> None:
        """What the button does: submit the values; the outcome in the Output, a mistake in the status line."""
        self.button.disabled = True
        self.status.value = ""
        try:
            values, files = self.values()
            self.submit(values, files)
        except Exception as exc:  # noqa: BLE001 - a button's callback: shown in the form, never a traceback
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.status.value = f'<pre style="color:#b42318;white-space:pre-wrap;margin:0">{_escape(message)}</pre>'
        finally:
            self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _escape(text: Any) -> str:
    import html

    return html.escape(str(text or ""))


__all__ = ["InputsForm", "field_file", "field_value", "field_widget"]
