"""Kestra task types: the base class, the registry and the built-in families."""
from .base import ExitRequested, Prop, Task, TaskContext
from .registry import registry

__all__ = ["ExitRequested", "Prop", "Task", "TaskContext", "registry"]
