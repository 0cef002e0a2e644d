"""Run notebooks as the suite does: a copy in a temp root, next to a real Jupyter server with the kestra_nb
extension (its store is the kernel's), executed top to bottom by nbclient on a fresh home.

`python -m tests.jupyter.notebook_run [NOTEBOOK…]` (what `make notebooks` runs) writes each notebook back WITH
its outputs, so GitHub and nbviewer show the execution views (their HTML twin) without running anything.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.jupyter.conftest import NOTEBOOKS, jupyter_process

TIMEOUT = 180   # seconds for one cell
SERVER_ENV = ("KESTRA_NB_HOME", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR")


@contextmanager
def _environ(env: MutableMapping[str, str], values: dict[str, str]) -> Iterator[None]:
    saved = {key: env.get(key) for key in values}
    env.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value


def execute(path: Path, tmp_path: Path, env: MutableMapping[str, str] = os.environ) -> nbformat.NotebookNode:
    """Run a copy of the notebook in `tmp_path`/root, served by a Jupyter server with the extension; the kernel
    inherits the server's store and runtime dir through `env` (restored afterwards)."""
    root = tmp_path / "root"
    root.mkdir()
    copy = root / path.name
    shutil.copy(path, copy)
    with jupyter_process(tmp_path, root, tmp_path / "home") as server:
        with _environ(env, {key: server.env[key] for key in SERVER_ENV}):
            nb = nbformat.read(copy, as_version=4)
            NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT,
                           resources={"metadata": {"path": str(root)}}).execute()
    for cell in nb.cells:   # what changes on every run and says nothing to a reader
        cell.metadata.pop("execution", None)
    return nb


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            nb = execute(path, Path(tmp))
        nbformat.write(nb, path)
        print(f"{path}: {sum(c.cell_type == 'code' for c in nb.cells)} cells run, outputs saved")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
