"""Store fixtures: a fresh store of each implementation, and the builders of `store_helpers`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from kestra_nb.model.execution import Execution, LogEntry
from kestra_nb.store.memory import MemoryStore
from kestra_nb.store.sqlite import SQLiteStore
from store_helpers import build_execution, build_log


@pytest.fixture
def make_execution() -> Callable[..., Execution]:
    return build_execution


@pytest.fixture
def make_log() -> Callable[..., LogEntry]:
    return build_log


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore | SQLiteStore]:
    """A fresh store of each implementation (SQLite in a temp home)."""
    s: MemoryStore | SQLiteStore = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "home")
    yield s
    s.close()
