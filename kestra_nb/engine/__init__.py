"""The engine: a pure executor, a runner that drives it on an asyncio loop, the run context and events."""
from .runner import Engine, get_engine

__all__ = ["Engine", "get_engine"]
