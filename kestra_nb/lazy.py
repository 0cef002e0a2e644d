"""Modules imported on first use, so that importing kestra_nb stays fast (spec: a run in a fresh process)."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    """Stands for a module until an attribute is read, then imports it (once) and reads from it."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    """A stand-in for `import name` that imports on first attribute access."""
    return _LazyModule(name)


__all__ = ["lazy_module"]
