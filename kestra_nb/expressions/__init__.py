"""Kestra (Pebble) expressions rendered on a sandboxed Jinja2 environment.

`render_string` is Kestra's string mode, `render_typed` its typed mode, `render_value` renders maps
and lists recursively (keys too), `is_truthy` is Kestra's truthiness of a rendered string.
"""
from .renderer import Renderer, default_renderer, is_truthy, render_string, render_typed, render_value

__all__ = ["Renderer", "default_renderer", "is_truthy", "render_string", "render_typed", "render_value"]
