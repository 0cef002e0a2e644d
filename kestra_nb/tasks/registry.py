"""Task type name -> class. Built-in families, Kestra's legacy aliases, and the `kestra_nb.tasks` entry points.

Third-party packages register task types with an entry point in the group `kestra_nb.tasks` whose value
is a `Task` subclass (or a module; every Task subclass with a `type` in it is registered). Entry points
are read once, the first time a name is not found among the built-ins.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from importlib.metadata import entry_points
from types import ModuleType

from .base import Task

log = logging.getLogger(__name__)

BUILTIN_MODULES = ("kestra_nb.tasks.core", "kestra_nb.tasks.execution", "kestra_nb.tasks.flow",
                   "kestra_nb.tasks.storage", "kestra_nb.tasks.subflow", "kestra_nb.tasks.scripts",
                   "kestra_nb.tasks.kv", "kestra_nb.tasks.http", "kestra_nb.tasks.logs", "kestra_nb.tasks.state",
                   "kestra_nb.tasks.files", "kestra_nb.tasks.count", "kestra_nb.tasks.nsfiles",
                   "kestra_nb.tasks.trigger", "kestra_nb.tasks.purge", "kestra_nb.tasks.templating")
ENTRY_POINT_GROUP = "kestra_nb.tasks"

# Kestra's pre-0.17 names (spec §5.0), still accepted; validation reports them as replaced.
LEGACY_ALIASES = {
    "io.kestra.core.tasks.debugs.Return": "io.kestra.plugin.core.debug.Return",
    "io.kestra.core.tasks.debugs.Echo": "io.kestra.plugin.core.debug.Echo",
    "io.kestra.core.tasks.log.Log": "io.kestra.plugin.core.log.Log",
    "io.kestra.core.tasks.log.Fetch": "io.kestra.plugin.core.log.Fetch",
    "io.kestra.core.tasks.executions.Fail": "io.kestra.plugin.core.execution.Fail",
    "io.kestra.core.tasks.executions.Labels": "io.kestra.plugin.core.execution.Labels",
    "io.kestra.core.tasks.executions.Counts": "io.kestra.plugin.core.execution.Count",
    "io.kestra.core.tasks.outputs.OutputValues": "io.kestra.plugin.core.output.OutputValues",
    **{f"io.kestra.core.tasks.flows.{n}": f"io.kestra.plugin.core.flow.{n}" for n in (
        "Sequential", "Parallel", "If", "Switch", "EachSequential", "EachParallel", "Dag", "AllowFailure",
        "Pause", "ForEachItem", "Template", "WorkingDirectory", "Worker", "Subflow", "ForEach", "Sleep")},
    "io.kestra.core.tasks.flows.Flow": "io.kestra.plugin.core.flow.Subflow",
    **{f"io.kestra.core.tasks.storages.{n}": f"io.kestra.plugin.core.storage.{n}" for n in (
        "Concat", "Split", "Size", "Delete", "Reverse", "DeduplicateItems", "FilterItems", "LocalFiles",
        "Purge", "PurgeExecution")},
    "io.kestra.core.tasks.templating.TemplatedTask": "io.kestra.plugin.core.templating.TemplatedTask",
    "io.kestra.plugin.fs.http.Request": "io.kestra.plugin.core.http.Request",
    "io.kestra.plugin.fs.http.Download": "io.kestra.plugin.core.http.Download",
    "io.kestra.plugin.core.flow.WaitFor": "io.kestra.plugin.core.flow.LoopUntil",
}


# Kestra core types that kestra_nb refuses at validation, with the reason (docs/supported-types.md lists all)
_TEMPLATES = ("Templates were removed from Kestra (deprecated since 0.11): call the shared tasks as a Subflow "
              "(io.kestra.plugin.core.flow.Subflow) instead")
REFUSED_TYPES = {
    "io.kestra.plugin.core.flow.Template": _TEMPLATES,
    "io.kestra.core.tasks.flows.Template": _TEMPLATES,
    "io.kestra.plugin.core.runner.Process": "it is a task runner, not a task: write it as a script task's "
                                            "`taskRunner: {type: io.kestra.plugin.core.runner.Process}` (the "
                                            "default here: scripts run as processes on the host)",
}


class Registry:
    """Maps every accepted type name to its task class."""

    def __init__(self, modules: tuple[str, ...] = BUILTIN_MODULES) -> None:
        self._modules = modules
        self._types: dict[str, type[Task]] = {}
        self._aliases: dict[str, str] = {}
        self._builtins_loaded = False
        self._entry_points_loaded = False

    def register(self, cls: type[Task]) -> type[Task]:
        """Register a task class under its type and aliases (usable as a decorator)."""
        if not cls.type:
            raise ValueError(f"{cls.__name__} has no `type`")
        self._types[cls.type] = cls
        for alias in cls.aliases:
            self._aliases[alias] = cls.type
        return cls

    def unregister(self, cls: type[Task]) -> None:
        """Forget a task class (and its aliases)."""
        if self._types.get(cls.type) is cls:
            del self._types[cls.type]
        for alias in cls.aliases:
            if self._aliases.get(alias) == cls.type:
                del self._aliases[alias]

    def register_module(self, module: ModuleType) -> None:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Task) and obj.type and obj.__module__ == module.__name__:
                self.register(obj)

    def _load_builtins(self) -> None:
        self._builtins_loaded = True
        for name in self._modules:
            self.register_module(importlib.import_module(name))

    def _load_entry_points(self) -> None:
        self._entry_points_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the engine
                log.warning("kestra_nb: cannot load task plugin %s (%s): %s", ep.name, ep.value, exc)
                continue
            if inspect.ismodule(obj):
                self.register_module(obj)
            elif inspect.isclass(obj) and issubclass(obj, Task):
                self.register(obj)
            else:
                log.warning("kestra_nb: entry point %s is neither a Task subclass nor a module", ep.name)

    def canonical(self, name: str) -> str | None:
        """The canonical type name for `name` (itself, or what the alias stands for), or None if unknown."""
        if not self._builtins_loaded:
            self._load_builtins()
        for _ in range(2):
            if name in self._types:
                return name
            target = self._aliases.get(name) or LEGACY_ALIASES.get(name)
            if target is not None and target in self._types:
                return target
            if self._entry_points_loaded:
                return None
            self._load_entry_points()
        return None

    def resolve(self, name: str) -> type[Task] | None:
        """The task class for a type name or alias, or None if unknown."""
        canonical = self.canonical(name)
        return None if canonical is None else self._types[canonical]

    def names(self) -> list[str]:
        """The type names a flow may use (internal parts of other tasks left out)."""
        if not self._builtins_loaded:
            self._load_builtins()
        return sorted(name for name, cls in self._types.items() if not cls.internal)


registry = Registry()
