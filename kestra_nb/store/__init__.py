"""Persistence: flows with revisions, executions, logs and KV. `open_store()` picks the implementation."""
from .base import FlowRecord, KVEntry, Store

__all__ = ["FlowRecord", "KVEntry", "Store", "open_store"]


def open_store(url: str | None = None) -> Store:
    """Open a store: `memory:` for an ephemeral one, a path (or None for the default home) for SQLite."""
    if url == "memory:":
        from .memory import MemoryStore

        return MemoryStore()
    from .sqlite import SQLiteStore

    return SQLiteStore(url)
