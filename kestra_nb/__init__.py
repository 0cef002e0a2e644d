"""kestra_nb: Kestra's workflow engine and Executions API, in-process, for Jupyter.

    from kestra_nb import run
    ex = run(FLOW_YAML, inputs={"name": "x"})
    ex.state, ex.outputs, ex.to_dict()

Exports are resolved lazily so that importing a submodule (`kestra_nb.model…`) loads no engine.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .model.execution import Execution
    from .model.flow import Flow

__version__ = "0.1.0"
__all__ = ["Engine", "Execution", "Flow", "run", "__version__"]

_LAZY = {"Engine": ("engine", "Engine"), "Execution": ("model.execution", "Execution"),
         "Flow": ("model.flow", "Flow")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kestra_nb' has no attribute {name!r}")


def run(flow: str | os.PathLike[str] | Flow, inputs: Mapping[str, Any] | None = None,
        labels: Mapping[str, Any] | None = None, timeout: float | None = None) -> Execution:
    """Run a Kestra flow (YAML text, a .yml path or a Flow) on the process's engine; block until it ends."""
    from .engine import get_engine

    return get_engine().run(flow, inputs=inputs, labels=labels, timeout=timeout)
