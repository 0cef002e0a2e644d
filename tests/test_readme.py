"""Every command block of the README runs as written, so what a newcomer copies works.

- `text`: the two set-up commands (`make run`, `make test`), exactly those (they are what runs this suite).
- `ipython`: the notebook cells, executed in order in a real kernel (nbclient) on a fresh store.
- `python`: run in a fresh interpreter on a fresh store.
- `shell`: run by bash from the repository's root, in order, with the console scripts of this venv:
  `kestra-nb server …` is started as written (a free port added, its home in a temp dir) and the blocks
  calling `localhost:8080` go to it; the blocks calling the Jupyter server (`127.0.0.1:8888`, `$TOKEN`) go to a
  real Jupyter server with the extension, started by the test. Each block's output is checked for what it
  promises.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.jupyter.conftest import free_port, jupyter_process

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, re.S | re.M)
BIN = Path(sys.executable).parent


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def test_every_block_says_how_it_runs() -> None:
    assert {lang for lang, _ in BLOCKS} <= {"text", "ipython", "python", "shell"}, [lang for lang, _ in BLOCKS]
    (setup,) = blocks("text")
    assert [line.split("#")[0].strip() for line in setup.splitlines()] == ["make run", "make test"]
    assert "![" in README and (ROOT / "docs" / "view.png").exists()


def test_the_notebook_cells_run_in_a_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTRA_NB_HOME", str(tmp_path / "home"))
    cells = [nbformat.v4.new_code_cell(body.rstrip("\n")) for body in blocks("ipython")]
    assert cells and cells[0].source == "%load_ext kestra_nb"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()   # an assertion that fails raises here
    views = [o for cell in nb.cells for o in cell.outputs if "application/vnd.kestra.execution+json" in o.get("data", {})]
    assert len(views) == 1 and views[0]["data"]["application/vnd.kestra.execution+json"]["summary"]["state"] == "SUCCESS"


def test_the_python_snippets_run(tmp_path: Path) -> None:
    for body in blocks("python"):
        done = subprocess.run([sys.executable, "-c", body], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "KESTRA_NB_HOME": str(tmp_path / "home")})
        assert done.returncode == 0, done.stderr


def bash(body: str, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, (body, done.stdout, done.stderr)
    return done.stdout


def test_the_shell_blocks_run_against_real_servers(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "KESTRA_NB_HOME": str(tmp_path / "cli-home")}
    shell = blocks("shell")
    (start,) = [body for body in shell if body.startswith("kestra-nb server")]
    port = free_port()
    command = start.split("#")[0].split() + ["--port", str(port)]
    command[command.index("--home") + 1] = str(tmp_path / "server-home")
    server = subprocess.Popen([str(BIN / command[0]), *command[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert f"listening on http://127.0.0.1:{port}" in line, (line, server.stderr.read() if server.poll() else "")
        seen: list[str] = []
        root = tmp_path / "root"
        root.mkdir()
        with jupyter_process(tmp_path, root, tmp_path / "jupyter-home") as jupyter:
            for body in shell:
                if body is start:
                    continue
                text = body.replace("http://localhost:8080", f"http://127.0.0.1:{port}")
                text = text.replace("http://127.0.0.1:8888/", jupyter.url)
                out = bash(text, {**env, "TOKEN": jupyter.token})
                seen.append(out)
                if "executions/company.team/myflow?wait=true" in body:
                    assert '"outputs":{"mydata":"hello from kestra"}' in out, out   # the finished execution
                    assert '/ui/main/executions/company.team/myflow/' in out, out     # its page
                if "webhook" in body:
                    assert "ref main" in out, out
                if body.startswith("kestra-nb run"):
                    assert out.count("Hello ADA!") == 2 and "valid (company.team.greet)" in out, out
                    assert '"mydata": "hello from kestra"' in out, out
        assert len(seen) == len(shell) - 1
    finally:
        server.terminate()
        server.wait(30)
