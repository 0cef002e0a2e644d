"""Installing the package enables the server extension (its config JSON ships as shared data) and the
JupyterLab extension (built from js/ by the install, shipped under share/jupyter/labextensions)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = ROOT / "jupyter-config" / "jupyter_server_config.d" / "kestra_nb.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_config_json_and_its_shared_data_mapping() -> None:
    assert json.loads(CONFIG.read_text()) == {"ServerApp": {"jpserver_extensions": {"kestra_nb": True}}}
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+; the project supports 3.10)
    section = pyproject.split("[tool.hatch.build.targets.wheel.shared-data]", 1)[1].split("\n[", 1)[0]
    assert '"jupyter-config/jupyter_server_config.d" = "etc/jupyter/jupyter_server_config.d"' in section


def test_installed_package_enables_the_extension(tmp_path: Path) -> None:
    """`jupyter server extension list` (as installed in this environment) shows it enabled and OK."""
    installed = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "kestra_nb.json"
    assert installed.exists(), "reinstall the package (pip install -e .) to get the shared data"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_PLATFORM_DIRS": "1"}
    # captured first, then searched: grep on a pipe would SIGPIPE jupyter (spec jupyter-testing.md §7.15)
    done = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    text = ANSI.sub("", done.stdout + done.stderr)
    assert re.search(r"^\s*kestra_nb enabled\s*$", text, re.MULTILINE), text
    assert re.search(r"^\s*kestra_nb \S+ OK\s*$", text, re.MULTILINE), text


def test_installed_package_enables_the_labextension(tmp_path: Path) -> None:
    """The mime renderer is built, installed and enabled: `jupyter labextension list` says OK."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "kestra-nb"
    assert (installed / "package.json").exists(), "reinstall the package (pip install -e .): it builds js/"
    assert json.loads((installed / "install.json").read_text())["packageName"] == "kestra_nb"
    built = json.loads((installed / "package.json").read_text())
    assert built["jupyterlab"]["mimeExtension"] and built["jupyterlab"]["_build"]["load"].startswith("static/")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_PLATFORM_DIRS": "1"}
    done = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    text = ANSI.sub("", done.stdout + done.stderr)
    assert re.search(r"^\s*kestra-nb v\S+ enabled OK \(python, kestra_nb\)\s*$", text, re.MULTILINE), text


def test_the_built_bundle_is_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "kestra_nb/labextension/" in ignored and "js/node_modules/" in ignored
    assert (ROOT / "js" / "package-lock.json").exists()   # the lock file is


def test_extension_points_are_lazy() -> None:
    code = ("import sys, kestra_nb; points = kestra_nb._jupyter_server_extension_points(); "
            "print('jupyter_server' in sys.modules, points[0]['module'], points[0]['app'].name)")
    before = subprocess.run([sys.executable, "-c", "import sys, kestra_nb; print('jupyter_server' in sys.modules)"],
                            capture_output=True, text=True, check=True).stdout.split()
    after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert before == ["False"]
    assert after == ["True", "kestra_nb.jupyter.extension", "kestra_nb"]
