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
__all__ = ["Engine", "Execution", "Flow", "run", "load_ipython_extension", "unload_ipython_extension",
           "_jupyter_server_extension_points", "__version__"]

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


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext kestra_nb`: register the `%%flow` / `%flow` magics (imports IPython only now)."""
    from .jupyter.magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext kestra_nb`."""
    from .jupyter.magic import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter Server extension (imports jupyter_server only when a server asks)."""
    from .jupyter.extension import KestraApp

    return [{"module": "kestra_nb.jupyter.extension", "app": KestraApp}]


def run(flow: str | os.PathLike[str] | Flow, inputs: Mapping[str, Any] | None = None,
        labels: Mapping[str, Any] | None = None, timeout: float | None = None) -> Execution:
    """Run a Kestra flow (YAML text, a .yml path or a Flow) on the process's engine; block until it ends."""
    from .engine import get_engine

    return get_engine().run(flow, inputs=inputs, labels=labels, timeout=timeout)
