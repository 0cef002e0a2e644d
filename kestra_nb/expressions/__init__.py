"""Kestra (Pebble) expressions rendered on a sandboxed Jinja2 environment (spec §6).

`render_string` is Kestra's string mode, `render_typed` its typed mode, `render_value` renders maps
and lists recursively (keys too), `is_truthy` is Kestra's truthiness of a rendered string, `to_text`
prints a value as a template would. Modules: `syntax` (Pebble grammar → Jinja2 nodes), `environment`
(sandbox and code generation), `runtime` (operators, attribute access, limits), `filters`, `functions`
(and tests), `dates` (Java date patterns), `values` (Java printing and JSON), `renderer` (cache, modes).
"""
from .renderer import (
    Limits,
    Renderer,
    RuntimeHooks,
    default_renderer,
    is_truthy,
    render_string,
    render_typed,
    render_value,
    to_text,
)

from . import files  # noqa: F401,E402 - registers read(), fileSize(), fileExists(), isFileEmpty()

__all__ = ["Limits", "Renderer", "RuntimeHooks", "default_renderer", "is_truthy", "render_string", "render_typed",
           "render_value", "to_text"]
