"""Where kestra_nb keeps its state: the home directory (`KESTRA_NB_HOME`) and the files in it.

The default home is `<jupyter data dir>/kestra_nb`. The Jupyter data dir is computed here with
jupyter_core's rules (`jupyter_core.paths.jupyter_data_dir`) without importing it, since jupyter_core
is not a dependency of the engine. Nothing here creates directories: the store does that on open.
The home's `config.yml` holds the settings Kestra keeps in its `application.yml` (read by
`engine.configuration`: `kestra.variables.globals`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HOME_ENV = "KESTRA_NB_HOME"
DB_FILE = "kestra_nb.db"
CONFIG_FILE = "config.yml"   # Kestra's application.yml layout: `kestra: variables: globals: {...}`


def _user_home() -> Path:
    # jupyter_core resolves symlinks in the home path (FreeBSD's /home -> /usr/home); so do we.
    return Path(os.path.expanduser("~")).resolve()


def _jupyter_config_dir() -> Path:
    """jupyter_core's `jupyter_config_dir()` for the cases the data dir falls back to it."""
    configured = os.environ.get("JUPYTER_CONFIG_DIR")
    if configured:
        return Path(configured)
    return _user_home() / ".jupyter"


def jupyter_data_dir() -> Path:
    """Jupyter's per-user data directory, as jupyter_core computes it (platformdirs mode aside)."""
    env = os.environ
    configured = env.get("JUPYTER_DATA_DIR")
    if configured:
        return Path(configured)
    if sys.platform == "darwin":
        return _user_home() / "Library" / "Jupyter"
    if sys.platform == "win32":  # jupyter_core tests os.name == "nt": the same on CPython
        appdata = env.get("APPDATA")
        if appdata:
            return Path(appdata, "jupyter").resolve()
        return _jupyter_config_dir() / "data"
    xdg = env.get("XDG_DATA_HOME")
    return Path(xdg) / "jupyter" if xdg else _user_home() / ".local" / "share" / "jupyter"


def home_dir() -> Path:
    """The kestra_nb home: `$KESTRA_NB_HOME`, else `<jupyter data dir>/kestra_nb`."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return jupyter_data_dir() / "kestra_nb"


def db_path(home: str | os.PathLike[str] | None = None) -> Path:
    """The SQLite file of a home directory (the default home when None)."""
    return Path(home if home is not None else home_dir()) / DB_FILE


def config_path(home: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file of a home directory (the default home when None)."""
    return Path(home if home is not None else home_dir()) / CONFIG_FILE


__all__ = ["CONFIG_FILE", "DB_FILE", "HOME_ENV", "config_path", "db_path", "home_dir", "jupyter_data_dir"]
