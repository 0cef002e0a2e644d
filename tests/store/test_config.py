"""kestra_nb.config: the home directory and the Jupyter data dir rules it falls back on."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kestra_nb import config

JUPYTER_VARS = ("KESTRA_NB_HOME", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "XDG_DATA_HOME", "APPDATA")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in JUPYTER_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    return home.resolve()


def test_kestra_nb_home_wins(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jd"))
    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "mine"))
    assert config.home_dir() == tmp_path / "mine"
    assert config.db_path(config.home_dir()) == tmp_path / "mine" / "kestra_nb.db"
    assert config.db_path() == tmp_path / "mine" / "kestra_nb.db"


def test_jupyter_data_dir_env(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jd"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.home_dir() == tmp_path / "jd" / "kestra_nb"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX home layout")
def test_linux_rules(clean_env, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    assert config.jupyter_data_dir() == clean_env / ".local" / "share" / "jupyter"
    assert config.home_dir() == clean_env / ".local" / "share" / "jupyter" / "kestra_nb"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.home_dir() == tmp_path / "xdg" / "jupyter" / "kestra_nb"
    monkeypatch.setenv("XDG_DATA_HOME", "")  # empty counts as unset, as in jupyter_core
    assert config.jupyter_data_dir() == clean_env / ".local" / "share" / "jupyter"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX home layout")
def test_macos_rules(clean_env, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # ignored on macOS
    assert config.home_dir() == clean_env / "Library" / "Jupyter" / "kestra_nb"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX home layout")
def test_windows_rules(clean_env, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert config.home_dir() == (tmp_path / "Roaming" / "jupyter").resolve() / "kestra_nb"
    monkeypatch.delenv("APPDATA")
    assert config.jupyter_data_dir() == clean_env / ".jupyter" / "data"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "cfg"))
    assert config.jupyter_data_dir() == tmp_path / "cfg" / "data"


def test_nothing_is_created(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "not-yet"))
    config.db_path(config.home_dir())
    assert not Path(tmp_path / "not-yet").exists()
