"""Kestra task types: the base class, the registry and the built-in families."""
from .base import Prop, Task, TaskContext
from .registry import registry

__all__ = ["Prop", "Task", "TaskContext", "registry"]
