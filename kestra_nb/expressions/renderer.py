"""The renderer: Kestra's VariableRenderer over the Pebble layer (spec §6.1), with its cache and limits.

`Renderer` owns one sandboxed environment and the compiled-template cache (a string without `{` never
reaches it). String mode prints Java-style (maps and lists as compact JSON, `true`/`false`, null as
nothing, instants in ISO); typed mode returns the native value of a lone `{{ expr }}`. Rendering is
single-pass; `{% raw %}…{% endraw %}` on one line is protected before parsing and its tags dropped from
the final text, as Kestra does, so raw blocks survive `render()`'s recursive passes. Every failure is an
`ExpressionError` whose message says what and where (`Unable to find `x` used in the expression … at
line N`, limits, forbidden access, syntax errors).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from jinja2 import TemplateError
from jinja2.sandbox import SecurityError

from ..errors import ExpressionError
from .environment import KestraEnvironment
from .functions import LOOP_PATH, RuntimeHooks
from .runtime import (
    BUDGET,
    RUNTIME,
    Budget,
    Forbidden,
    LimitExceeded,
    Limits,
    Missing,
    MissingValue,
    OutputTooLarge,
    RenderError,
)
from .syntax import RESULT_NAME, PebbleSyntaxError, parse, parse_expression_template
from .values import to_text

FALSY = frozenset({"false", "0", "-0", ""})
_CACHE_LIMIT = 4096
MAX_RENDERING_AMOUNT = 100
RAW_PATTERN = re.compile(r"(\{%-*\s*raw\s*-*%}(.*?)\{%-*\s*endraw\s*-*%})")
_PLACEHOLDER = "\ue000raw{}\ue001"  # private-use characters: no template holds them by accident


def is_truthy(rendered: Any) -> bool:
    """Kestra's truthiness: false only for exactly "false", "0", "-0" or "" (case-sensitive)."""
    if rendered is None:
        return False
    if isinstance(rendered, bool):
        return rendered
    return to_text(rendered) not in FALSY


class _Compiled:
    """A compiled template and the raw blocks protected out of it."""

    __slots__ = ("template", "raws")

    def __init__(self, template: Any, raws: tuple[str, ...]) -> None:
        self.template = template
        self.raws = raws


class Renderer:
    """Render Kestra templates; one per engine (compiled templates are cached in it)."""

    def __init__(self, store: Any = None, *, limits: Limits | None = None,
                 globals: Mapping[str, Any] | None = None) -> None:
        self.store = store          # for kv() and errorLogs() when the engine gives no task-run hooks
        # Kestra's global variables (`kestra.variables.globals`): `{{ globals.x }}` in every expression
        self.globals: Mapping[str, Any] = dict(globals or {})
        self.limits = limits or Limits()
        self.env = KestraEnvironment()
        self.env.kestra_renderer = self
        self._cache: dict[str, _Compiled] = {}
        self._typed: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------- compiling
    def _compile(self, template: str) -> _Compiled:
        compiled = self._cache.get(template)
        if compiled is not None:
            return compiled
        source, raws = template, ()
        if "raw" in template:
            found: list[str] = []

            def protect(m: re.Match[str]) -> str:
                found.append(m.group(1))
                return _PLACEHOLDER.format(len(found) - 1)

            source = RAW_PATTERN.sub(protect, template)
            raws = tuple(found)
        compiled = _Compiled(self._from_nodes(source, template, parse), raws)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[template] = compiled
        return compiled

    def _from_nodes(self, source: str, template: str, parser: Any) -> Any:
        try:
            tree = parser(source)
        except PebbleSyntaxError as exc:
            raise ExpressionError(
                f"Syntax error in the expression `{template}` at line {exc.line}: {exc.message}",
                template, exc.line) from None
        except RecursionError:
            raise ExpressionError(f"Syntax error in the expression `{template}`: expression nested too deep",
                                  template) from None
        if tree is None:
            return None
        tree.set_environment(self.env)
        env = self.env
        try:
            code = env.compile(tree, filename="<template>")
        except (TemplateError, RecursionError) as exc:
            raise ExpressionError(f"Syntax error in the expression `{template}`: {exc}", template) from None
        return env.template_class.from_code(env, code, env.make_globals(None), None)

    # ---------------------------------------------------------------------------------- rendering
    def _run(self, compiled: Any, template: str, variables: Mapping[str, Any]) -> Any:
        if "globals" not in variables:
            variables = {**variables, "globals": self.globals}
        elif type(variables) is not dict and not isinstance(variables, dict):
            variables = dict(variables)
        context = compiled.new_context(variables, shared=True)
        try:
            return context, "".join(compiled.root_render_func(context))
        except Exception as exc:  # translated into a user-facing ExpressionError
            if isinstance(exc, RenderError) and exc.line is None:
                exc.line = _template_line(exc, compiled)
            raise self._error(exc, template) from None

    def _render_once(self, template: str, variables: Mapping[str, Any]) -> str:
        compiled = self._compile(template)
        _, out = self._run(compiled.template, template, variables)
        if len(out) > self.limits.max_output:
            raise ExpressionError(f"Rendering limit exceeded: the output is longer than {self.limits.max_output} "
                                  f"characters (in the expression `{template}`)", template)
        for i, raw in enumerate(compiled.raws):
            out = out.replace(_PLACEHOLDER.format(i), raw)
        return out

    def render_string(self, template: Any, variables: Mapping[str, Any]) -> str:
        """Render in string mode; a non-string is printed, a string without `{` is returned as is."""
        if not isinstance(template, str):
            return to_text(template)
        if "{" not in template:
            return template
        out = self._render_once(template, variables)
        return RAW_PATTERN.sub(r"\2", out) if "{%" in out else out

    def render_typed(self, template: Any, variables: Mapping[str, Any]) -> Any:
        """Render in typed mode: a lone `{{ expr }}` yields the native value, anything else text."""
        if not isinstance(template, str) or "{" not in template:
            return template
        compiled = self._typed.get(template, self._typed)
        if compiled is self._typed:
            compiled = None if "raw" in template else self._from_nodes(template, template, parse_expression_template)
            if len(self._typed) >= _CACHE_LIMIT:
                self._typed.clear()
            self._typed[template] = compiled
        if compiled is None:
            return self.render_string(template, variables)
        context, _ = self._run(compiled, template, variables)
        return context.vars.get(RESULT_NAME)

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Render strings in a structure (map keys and values, list items); other values kept."""
        if isinstance(value, str):
            return self.render_string(value, variables)
        if isinstance(value, dict):
            result: dict[Any, Any] = {}
            for k, v in value.items():  # Kestra's putIfAbsent: the first key rendering to a name wins
                result.setdefault(self.render_string(k, variables) if isinstance(k, str) else k,
                                  self.render_value(v, variables))
            return result
        if isinstance(value, list):
            return [self.render_value(v, variables) for v in value]
        return value

    def render_object(self, value: Any, variables: Mapping[str, Any], *, recursive: bool = False) -> Any:
        """What `render()` does: strings rendered (until stable when recursive), maps and lists walked."""
        budget = variables.get(BUDGET)
        if isinstance(budget, Budget):
            budget.depth += 1
            if budget.depth > budget.limits.max_depth:
                budget.depth -= 1
                raise LimitExceeded(f"Rendering limit exceeded: render() nested more than {budget.limits.max_depth} deep")
        try:
            return self._render_object(value, variables, recursive, [0])
        finally:
            if isinstance(budget, Budget):
                budget.depth -= 1

    def _render_object(self, value: Any, variables: Mapping[str, Any], recursive: bool, visited: list[int]) -> Any:
        visited[0] += 1
        if visited[0] > self.limits.max_collection:
            raise LimitExceeded(f"Rendering limit exceeded: render() of a value with more than "
                                f"{self.limits.max_collection} elements")
        if isinstance(value, str):
            if "{" not in value:
                return value
            if not recursive:
                out = self._render_once(value, variables)
            else:
                out, attempts = value, 0
                while True:
                    if attempts > MAX_RENDERING_AMOUNT:
                        raise RenderError("Too many rendering attempts")
                    rendered = self._render_once(out, variables) if "{" in out else out
                    attempts += 1
                    if rendered == out:
                        break
                    out = rendered
            return RAW_PATTERN.sub(r"\2", out) if "{%" in out else out
        if isinstance(value, dict):
            result: dict[Any, Any] = {}
            for k, v in value.items():
                key = self.render_string(k, variables) if isinstance(k, str) else k
                result.setdefault(key, self._render_object(v, variables, recursive, visited))
            return result
        if isinstance(value, (list, tuple, set)):
            return [self._render_object(v, variables, recursive, visited) for v in value]
        return value

    # ---------------------------------------------------------------------------------- errors
    @staticmethod
    def _error(exc: BaseException, template: str) -> ExpressionError:
        if isinstance(exc, ExpressionError):
            return exc
        if isinstance(exc, MissingValue):  # nothing caught it: the function's own failure
            at = f" at line {exc.line}" if exc.line else ""
            return ExpressionError(f"Unable to render the expression `{template}`{at}: {exc.message}", template,
                                   exc.line)
        if isinstance(exc, Missing):
            line = exc.line or 1
            return ExpressionError(
                f"Unable to find `{exc.name}` used in the expression `{template}` at line {line}", template, line)
        at = f" at line {exc.line}" if isinstance(exc, RenderError) and exc.line else ""
        line = exc.line if isinstance(exc, RenderError) else None
        if isinstance(exc, LimitExceeded):
            return ExpressionError(f"{exc.message} (in the expression `{template}`{at})", template, line)
        if isinstance(exc, OutputTooLarge):
            return ExpressionError(f"Rendering limit exceeded: {exc} (in the expression `{template}`)", template)
        if isinstance(exc, Forbidden):
            return ExpressionError(f"Forbidden in the expression `{template}`{at}: {exc.message}", template, line)
        if isinstance(exc, RenderError):
            return ExpressionError(f"Unable to render the expression `{template}`{at}: {exc.message}", template, line)
        if isinstance(exc, RecursionError):
            return ExpressionError(
                f"Rendering limit exceeded: the expression `{template}` nests calls too deep", template)
        if isinstance(exc, SecurityError):
            return ExpressionError(f"Forbidden in the expression `{template}`: {exc}", template)
        if isinstance(exc, TemplateError):
            return ExpressionError(f"Unable to render the expression `{template}`: {exc}", template)
        return ExpressionError(
            f"Unable to render the expression `{template}`: {type(exc).__name__}: {exc}", template)


def _template_line(exc: BaseException, compiled: Any) -> int | None:
    """The template line an error was raised from (Jinja2 maps generated code lines back to it)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = compiled.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


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


__all__ = [
    "FALSY", "LOOP_PATH", "RUNTIME", "Limits", "Renderer", "RuntimeHooks", "default_renderer", "is_truthy",
    "render_string", "render_typed", "render_value", "to_text",
]
