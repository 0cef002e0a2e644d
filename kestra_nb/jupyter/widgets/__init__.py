"""The execution view: a view model computed from Kestra JSON (`viewmodel`), its `text/html` twin
(`static`); the ES module and style every host draws it with are in kestra_nb/ui/static (`view.js`,
`view.css`: the JupyterLab extension in js/ bundles them). Nothing here imports a widget library.
"""
from __future__ import annotations

from .viewmodel import LEVELS, STATE_COLORS, ViewModel

__all__ = ["LEVELS", "STATE_COLORS", "ViewModel"]
