"""The task registry: built-ins, Kestra's legacy aliases and third-party plugins by entry point."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


from kestra_nb.tasks.registry import Registry, registry

PLUGIN = textwrap.dedent('''
    from kestra_nb.tasks import Prop, Task

    class Shout(Task):
        type = "acme.plugin.Shout"
        aliases = ("acme.Shout",)
        props = (Prop("text", "string", required=True),)

        async def run(self, ctx):
            return {"value": ctx.render_string(self.prop("text"), "text").upper()}
''')


def make_plugin(root: Path, entry: str = "shout = acme_kestra:Shout") -> Path:
    (root / "acme_kestra.py").write_text(PLUGIN)
    info = root / "acme_kestra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-kestra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kestra_nb.tasks]\n{entry}\n")
    return root


def test_builtins_and_legacy_aliases():
    assert registry.canonical("io.kestra.plugin.core.debug.Return") == "io.kestra.plugin.core.debug.Return"
    assert registry.canonical("io.kestra.core.tasks.debugs.Return") == "io.kestra.plugin.core.debug.Return"
    assert registry.canonical("io.kestra.core.tasks.log.Log") == "io.kestra.plugin.core.log.Log"
    assert registry.canonical("io.kestra.core.tasks.executions.Fail") == "io.kestra.plugin.core.execution.Fail"
    assert registry.resolve("io.kestra.plugin.core.output.OutputValues").__name__ == "OutputValues"
    assert registry.resolve("no.such.Task") is None


def test_entry_point_plugin_is_registered(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(make_plugin(tmp_path)))
    fresh = Registry()
    assert fresh.resolve("acme.plugin.Shout").__name__ == "Shout"
    assert fresh.canonical("acme.Shout") == "acme.plugin.Shout"


def test_broken_entry_point_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.syspath_prepend(str(make_plugin(tmp_path, "broken = acme_missing_module:Nope")))
    fresh = Registry()
    assert fresh.resolve("acme.plugin.Shout") is None
    assert fresh.resolve("io.kestra.plugin.core.debug.Return") is not None
    assert any("cannot load task plugin broken" in r.getMessage() for r in caplog.records)


def test_plugin_task_runs_in_a_flow(tmp_path):
    make_plugin(tmp_path)
    flow = ("id: p\nnamespace: acme\ntasks:\n  - id: s\n    type: acme.Shout\n    text: hi {{ flow.id }}\n"
            "outputs:\n  - id: out\n    type: STRING\n    value: \"{{ outputs.s.value }}\"\n")
    code = f"import json, kestra_nb; ex = kestra_nb.run({flow!r}); print(json.dumps([ex.state.current.value, ex.outputs]))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "KESTRA_NB_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["SUCCESS", {"out": "HI P"}]
