"""Kestra's published Python clients, each in its own virtual environment, driving a real kestra_nb server.

The environments live in `<repo>/.venv-clients/<name>` (gitignored) and are created once, by the first
session that needs them, with pip from PyPI; later sessions reuse them (a marker file records what was
installed). Each test runs a script of `tests/clients/scripts/` with the client's interpreter; the script
asserts what the client got back and prints `OK`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestra_nb.api.auth import BasicAuth, Credentials
from kestra_nb.server import Server
from tests.api.conftest import serving

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / ".venv-clients"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
USER, PASSWORD = "admin@kestra.io", "Admin1234!"
TOKEN = "kestra-api-token-0123456789abcdef"

# every kestrapy imports `regex` without declaring it (kestra-clients.md §1)
ENVIRONMENTS = {
    "kestrapy-1.0.10": ["kestrapy==1.0.10", "regex"],
    "kestrapy-1.3.1": ["kestrapy==1.3.1", "regex"],
    "kestrapy-2.0.3": ["kestrapy==2.0.3", "regex", "kestra==2.0.0"],
}
MARKER = ".kestra_nb-ready"


def _python(name: str) -> Path:
    return CACHE / name / "bin" / "python"


def _ready(name: str) -> bool:
    marker = CACHE / name / MARKER
    return _python(name).exists() and marker.exists() and marker.read_text() == " ".join(ENVIRONMENTS[name])


@pytest.fixture(scope="session")
def client_envs() -> dict[str, Path]:
    """name -> interpreter of each client environment, created (in parallel) when missing."""
    CACHE.mkdir(exist_ok=True)
    missing = [name for name in ENVIRONMENTS if not _ready(name)]
    procs = {}
    for name in missing:
        target = CACHE / name
        script = (f'"{sys.executable}" -m venv --clear "{target}" && '
                  f'"{target}/bin/python" -m pip install --quiet --disable-pip-version-check '
                  + " ".join(f'"{spec}"' for spec in ENVIRONMENTS[name]))
        procs[name] = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"cannot create the {name} environment:\n{output}")
        (CACHE / name / MARKER).write_text(" ".join(ENVIRONMENTS[name]))
    return {name: _python(name) for name in ENVIRONMENTS}


@pytest.fixture
def kestra(tmp_path: Path) -> Iterator[Server]:
    """A server with Basic auth on, as Kestra ≥ 0.24 always has."""
    with serving(tmp_path / "home", auth=BasicAuth(USER, PASSWORD)) as srv:
        yield srv


@pytest.fixture
def token_kestra(tmp_path: Path) -> Iterator[Server]:
    """A server that takes a bearer token (`kestra-nb server --token`), as Kestra takes its API tokens."""
    with serving(tmp_path / "home", auth=Credentials(token=TOKEN)) as srv:
        yield srv


def run_script(python: Path, script: str, server: Server, **env: str) -> str:
    """Run a client script against the server; fail with its output unless it printed OK."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("KESTRA_", "PYTHON"))}
    environment.update(KESTRA_URL=server.url, KESTRA_TEST_USER=USER, KESTRA_TEST_PASSWORD=PASSWORD, **env)
    done = subprocess.run([str(python), str(SCRIPTS / script)], capture_output=True, text=True, timeout=180,
                          env=environment, cwd=str(SCRIPTS))
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), (
        f"{script} with {python.parent.parent.name} failed (exit {done.returncode}):\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    return done.stdout
