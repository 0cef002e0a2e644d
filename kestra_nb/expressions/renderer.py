"""The renderer: one sandboxed Jinja2 environment, strict undefined, compiled-template cache.

Kestra's printing rules apply in string mode: maps and lists print as compact JSON, booleans as
`true`/`false`, null as nothing, instants in ISO form. A string without `{` never reaches Jinja2.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.utils import missing, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..errors import ExpressionError
from ..model.jsonfmt import format_duration, format_instant

FALSY = frozenset({"false", "0", "-0", ""})
_CACHE_LIMIT = 4096
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?:(?!\}\}|\{\{|\{%).)*\}\}\s*$", re.DOTALL)


def is_truthy(rendered: Any) -> bool:
    """Kestra's truthiness: false only for exactly "false", "0", "-0" or "" (case-sensitive)."""
    if rendered is None:
        return False
    if isinstance(rendered, bool):
        return rendered
    return to_text(rendered) not in FALSY


def to_text(value: Any) -> str:
    """Print a value the way Kestra (Java/Jackson) does in string mode."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return format_instant(o)
    if isinstance(o, timedelta):
        return format_duration(o)
    if isinstance(o, date):
        return o.isoformat()
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class _Missing(UndefinedError):
    """A variable or attribute is missing; the message is its name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _KestraUndefined(StrictUndefined):
    """Strict undefined whose error names the missing variable the way Kestra does.

    Jinja2 binds StrictUndefined's operators to the base failure function, which raises
    `self._undefined_exception(self._undefined_message)`: both are steered here. Sandbox refusals
    keep their SecurityError and message.
    """

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None,
                 exc: type[TemplateError] = UndefinedError) -> None:
        super().__init__(hint, obj, name, _Missing if exc is UndefinedError else exc)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_exception is _Missing:
            return self._undefined_name if self._undefined_name is not None else ""
        return self._undefined_hint or f"{self._undefined_name!r} is not allowed"


class _KestraEnvironment(ImmutableSandboxedEnvironment):
    """Pebble reads `a.b` on a map as the key `b`: `outputs.t.values` is the output, not dict.values."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict):
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


LOOP_PATH = "_kestra_loop_path"  # the current task run's loop values, outermost first (set by the engine)


@pass_context
def _current_each_output(context: Any, outputs: Any) -> Any:
    """currentEachOutput(outputs.t): the sibling task's output for the current loop value(s)."""
    for value in context.get(LOOP_PATH) or ():
        if not isinstance(outputs, dict) or value not in outputs:
            raise ExpressionError(f"currentEachOutput: no output for the loop value `{value}`")
        outputs = outputs[value]
    return outputs


class Renderer:
    """Render Kestra templates; one instance per engine (compiled templates are cached in it)."""

    def __init__(self) -> None:
        env = _KestraEnvironment(
            undefined=_KestraUndefined, autoescape=False, keep_trailing_newline=True,
            finalize=to_text, cache_size=0)
        env.globals["null"] = None
        env.globals["currentEachOutput"] = _current_each_output
        self.env = env
        self._cache: dict[str, Any] = {}

    def _compile(self, template: str) -> Any:
        compiled = self._cache.get(template)
        if compiled is None:
            try:
                compiled = self.env.from_string(template)
            except TemplateSyntaxError as exc:
                raise ExpressionError(
                    f"Syntax error in the expression `{template}` at line {exc.lineno}: {exc.message}",
                    template, exc.lineno) from None
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[template] = compiled
        return compiled

    def render_string(self, template: Any, variables: Mapping[str, Any]) -> str:
        """Render in string mode; a non-string is printed, a string without `{` is returned as is."""
        if not isinstance(template, str):
            return to_text(template)
        if "{" not in template:
            return template
        compiled = self._compile(template)
        try:
            return compiled.render(variables)
        except Exception as exc:
            raise self._error(exc, template) from None

    def render_typed(self, template: Any, variables: Mapping[str, Any]) -> Any:
        """Render in typed mode: a lone `{{ expr }}` yields the native value, anything else text."""
        if not isinstance(template, str) or "{" not in template:
            return template
        if not _SINGLE_EXPRESSION.match(template):
            return self.render_string(template, variables)
        inner = template.strip()[2:-2]
        key = "\x00typed\x00" + inner
        compiled = self._cache.get(key)
        if compiled is None:
            try:
                compiled = self.env.compile_expression(inner, undefined_to_none=False)
            except TemplateSyntaxError as exc:
                raise ExpressionError(
                    f"Syntax error in the expression `{template}` at line {exc.lineno}: {exc.message}",
                    template, exc.lineno) from None
            self._cache[key] = compiled
        try:
            value = compiled(**variables)
            if isinstance(value, Undefined):
                Undefined._fail_with_undefined_error(value)
        except Exception as exc:
            raise self._error(exc, template) from None
        return value

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Render strings in a structure (map keys and values, list items); other values kept."""
        if isinstance(value, str):
            return self.render_string(value, variables)
        if isinstance(value, dict):
            return {self.render_string(k, variables) if isinstance(k, str) else k: self.render_value(v, variables)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v, variables) for v in value]
        return value

    @staticmethod
    def _error(exc: BaseException, template: str) -> ExpressionError:
        if isinstance(exc, _Missing):
            name = exc.name
            line = _line_of(template, name)
            return ExpressionError(
                f"Unable to find `{name}` used in the expression `{template}` at line {line}", template, line)
        if isinstance(exc, SecurityError):
            return ExpressionError(f"Forbidden in the expression `{template}`: {exc}", template)
        if isinstance(exc, ExpressionError):
            return exc
        if isinstance(exc, TemplateError):
            return ExpressionError(f"Unable to render the expression `{template}`: {exc}", template)
        return ExpressionError(
            f"Unable to render the expression `{template}`: {type(exc).__name__}: {exc}", template)


def _line_of(template: str, name: str) -> int:
    for i, line in enumerate(template.splitlines() or [template], start=1):
        if name and name in line:
            return i
    return 1


default_renderer = Renderer()


def render_string(template: Any, variables: Mapping[str, Any]) -> str:
    """Render in string mode with the default renderer."""
    return default_renderer.render_string(template, variables)


def render_typed(template: Any, variables: Mapping[str, Any]) -> Any:
    """Render in typed mode with the default renderer."""
    return default_renderer.render_typed(template, variables)


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render a structure recursively with the default renderer."""
    return default_renderer.render_value(value, variables)
