"""Shared fixtures: every test runs with KESTRA_NB_HOME in a temp dir; engines on temp stores."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED_FLOW = (ROOT / "examples" / "myflow.yml").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("KESTRA_NB_HOME", str(home))
    return home


@pytest.fixture
def engine(tmp_path: Path):
    """An engine on a fresh SQLite store in a temp dir."""
    from kestra_nb.engine import Engine

    eng = Engine(tmp_path / "store")
    yield eng
    eng.close()


@pytest.fixture
def seed_flow() -> str:
    return SEED_FLOW
