"""The execution view: a view model computed from Kestra JSON, the live widget and its static HTML.

`viewmodel` and `static` need nothing beyond the standard library; `view` (the widget) imports anywidget,
so it is only imported when a live view is built.
"""
from __future__ import annotations

from .static import execution_html
from .viewmodel import LEVELS, STATE_COLORS, ViewModel

__all__ = ["LEVELS", "STATE_COLORS", "ViewModel", "execution_html"]
