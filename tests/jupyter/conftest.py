"""Fixtures of the Jupyter tests: an IPython shell with the magics on a temp engine, captured cells, and a
real Jupyter server (or JupyterLab) subprocess on a free loopback port with a token and temp dirs."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = ROOT / "notebooks"
SEED = (ROOT / "examples" / "myflow.yml").read_text(encoding="utf-8")


@dataclass
class Cell:
    """What running one cell produced: success, the error raised, stdout/stderr and the display bundles."""

    success: bool
    error: BaseException | None
    stdout: str
    stderr: str
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def bundles(self, mime: str) -> list[Any]:
        """The payloads of one MIME type among the displayed outputs, in order."""
        return [o[mime] for o in self.outputs if mime in o]


@pytest.fixture
def jengine(tmp_path: Path) -> Iterator[Any]:
    """An engine on a fresh SQLite store in a temp dir."""
    from kestra_nb.engine import Engine

    engine = Engine(tmp_path / "store")
    yield engine
    engine.close()


@pytest.fixture
def shell(jengine: Any) -> Iterator[Any]:
    """IPython's InteractiveShell with `%%flow` on `jengine`; the namespace is reset afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    from kestra_nb.jupyter.magic import FlowMagics

    ip = InteractiveShell.instance()
    magics = FlowMagics(ip, engine=jengine)
    ip.register_magics(magics)
    ip.kestra_magics = magics  # type: ignore[attr-defined]
    yield ip
    ip.reset(new_session=False)


def run_cell(ip: Any, code: str) -> Cell:
    """Run a cell as a front end would, capturing stdout, stderr and the rich outputs."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ip.run_cell(code)
    error = result.error_in_exec or result.error_before_exec
    return Cell(result.success, error, captured.stdout, captured.stderr,
                [dict(o.data) for o in captured.outputs])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class JupyterProcess:
    """A running Jupyter server: its base URL (with base_url), token, root dir and environment."""

    url: str
    token: str
    root: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def jupyter_process(tmp: Path, root: Path, home: Path, *, lab: bool = False, notebook: bool = False,
                    base_url: str = "/", timeout: float = 60) -> Iterator[JupyterProcess]:
    """Start `jupyter server` (or JupyterLab, or Notebook 7) with kestra_nb enabled, on 127.0.0.1, a token and
    temp dirs.

    Readiness is the server's own "is running at" line, read from its output (no polling).
    """
    port, token = free_port(), secrets.token_hex(16)
    config, runtime, data = tmp / "jupyter-config", tmp / "jupyter-runtime", tmp / "jupyter-data"
    for directory in (config, runtime, data):
        directory.mkdir(parents=True, exist_ok=True)
    # the shipped config JSON lives in the venv; enabling here keeps the test independent of how it was installed
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"kestra_nb": True, "jupyter_server_terminals": False}}}))
    # JupyterLab's "get news?" toast would sit on top of screenshots
    notification = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "KESTRA_NB_HOME": str(home), "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    app = "jupyterlab" if lab else "notebook" if notebook else "jupyter_server"
    args = [sys.executable, "-m", app, "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            f"--ServerApp.base_url={base_url}", "--ServerApp.allow_unauthenticated_access=False"]
    if lab:
        args.append("--LabApp.expose_app_in_browser=True")  # lets the test wait for the kernel (spec §7.1)
    if notebook:
        args.append("--JupyterNotebookApp.expose_app_in_browser=True")
    log = tmp / f"{app}.log"
    process = subprocess.Popen(args, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = threading.Event()
    marker = f"127.0.0.1:{port}"

    def drain() -> None:
        """Copy the server's output to its log file; signal readiness on its "running at" URL line."""
        assert process.stdout is not None
        seen_running = False
        with log.open("wb") as out:
            for raw in process.stdout:
                out.write(raw)
                out.flush()
                text = raw.decode("utf-8", "replace")
                seen_running = seen_running or "is running at" in text
                if seen_running and marker in text:
                    ready.set()
        ready.set()  # the process ended: stop waiting (the check below reports it)

    threading.Thread(target=drain, name="jupyter-log", daemon=True).start()
    try:
        if not ready.wait(timeout) or process.poll() is not None:
            raise RuntimeError(f"Jupyter did not start; its log:\n{log.read_text(errors='replace')}")
        yield JupyterProcess(f"http://{marker}{base_url}", token, root, env, log, process)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
