"""pytest-jupyter's server fixtures (`jp_fetch`, `jp_serverapp`…), for this directory only.

pytest 8 accepts `pytest_plugins` in the root conftest alone, so the plugin's fixtures and its async-test
hooks are imported here instead: they apply to the extension tests and nothing else.
"""
from __future__ import annotations

from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # fixtures and hooks, imported by name

BASE_URL = "/a%40b/"  # pytest-jupyter's default: a base_url that needs escaping, never "/"


@pytest.fixture
def jp_server_config(tmp_path: Any) -> dict[str, Any]:
    """kestra_nb enabled (the shipped JSON is invisible under jp_environ), auth required, no terminals."""
    return {"ServerApp": {"jpserver_extensions": {"kestra_nb": True, "jupyter_server_terminals": False},
                          "allow_unauthenticated_access": False},
            "KestraApp": {"home": str(tmp_path / "kestra-home"), "shutdown_grace": 1.0}}
