"""`%%flow --server URL`: a real `kestra-nb server` (bearer token, tenant) runs the cell's flow; the cell's view
follows it live through the server's SSE route, ends with the outputs, and the cell fails as a local one does."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kestra_nb.api.auth import Credentials
from kestra_nb.jupyter.live import LiveRun
from kestra_nb.server import Server
from tests.api.conftest import serving
from tests.jupyter.conftest import run_cell
from tests.jupyter.test_magic import assert_short_error

TOKEN = "notebook-token-0123456789"
STEPS = """id: steps
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: step one is done
  - id: second
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.2S
  - id: third
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }} and three"
outputs:
  - id: result
    type: STRING
    value: "{{ outputs.third.value }}"
"""
FAILING = """id: boom
namespace: company.team
tasks:
  - id: f
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: it broke
"""


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path / "remote", auth=Credentials(token=TOKEN)) as server:
        yield server


def test_the_view_follows_the_remote_run_and_ends_with_its_outputs(shell: Any, remote: Server, monkeypatch: Any) -> None:
    monkeypatch.delenv("KESTRA_API_TOKEN", raising=False)
    documents: list[dict[str, str]] = []
    order: list[str] = []   # what the view was given, in turn: the execution's state, or a log message
    put, put_logs = LiveRun.put, LiveRun.put_logs

    def recording(self: LiveRun, event: Any) -> None:
        if isinstance(event, Mapping):
            documents.append({tr["taskId"]: tr["state"]["current"] for tr in event.get("taskRunList") or ()})
            order.append(event["state"]["current"])
        put(self, event)

    def recording_logs(self: LiveRun, entries: Any) -> None:
        entries = list(entries)
        order.extend(entry["message"] for entry in entries)
        put_logs(self, entries)

    monkeypatch.setattr(LiveRun, "put", recording)
    monkeypatch.setattr(LiveRun, "put_logs", recording_logs)
    shell.user_ns["tok"] = TOKEN
    cell = run_cell(shell, f"%%flow --server {remote.url} --token $tok --tenant main --out ex\n" + STEPS)
    assert cell.success, cell.stderr
    assert shell.user_ns["outputs"] == {"result": "one and three"}
    assert shell.user_ns["ex"].state == "SUCCESS"
    # the view saw the run as it went: `first` done while `second` was still running, before the end
    assert any(d.get("first") == "SUCCESS" and d.get("second") == "RUNNING" for d in documents), documents
    assert documents[-1] == {"first": "SUCCESS", "say": "SUCCESS", "second": "SUCCESS", "third": "SUCCESS"}
    # its log line came while it ran (the logs follow stream), once
    assert order.index("step one is done") < order.index("SUCCESS"), order
    view = shell.kestra_magics.last_view
    assert [log["message"] for log in view.logs].count("step one is done") == 1
    assert view.summary["state"] == "SUCCESS" and [r["task"] for r in view.runs] == ["first", "say", "second",
                                                                                     "third"]
    assert view.updates >= 2


def test_a_failed_remote_run_fails_the_cell_with_its_error(shell: Any, remote: Server, monkeypatch: Any) -> None:
    monkeypatch.setenv("KESTRA_API_TOKEN", TOKEN)
    cell = run_cell(shell, f"%%flow --server {remote.url}\n" + FAILING)
    assert_short_error(cell, "FAILED: f: it broke", "--allow-failure")
    assert shell.kestra_magics.last_view.summary["state"] == "FAILED"
    assert run_cell(shell, f"%%flow --server {remote.url} --allow-failure\n" + FAILING).success


def test_credentials_and_tenant_mistakes_are_short_errors(shell: Any, remote: Server, monkeypatch: Any) -> None:
    monkeypatch.delenv("KESTRA_API_TOKEN", raising=False)
    monkeypatch.delenv("KESTRA_NB_BASIC_AUTH", raising=False)
    assert_short_error(run_cell(shell, f"%%flow --server {remote.url}\n" + FAILING), "Authentication failed (401)")
    assert_short_error(run_cell(shell, f"%%flow --server {remote.url} --token 'two words'\n" + FAILING),
                       "one word of printable characters")
    assert_short_error(run_cell(shell, "%%flow --token x\n" + FAILING), "--token and --tenant go with --server")
    assert_short_error(run_cell(shell, f"%%flow --server {remote.url} --token {TOKEN} --tenant acme --no-run\n"
                                + FAILING), "Tenant 'acme' does not exist")
    saved = run_cell(shell, f"%%flow --server {remote.url} --token {TOKEN} --tenant '' --no-run\n" + FAILING)
    assert saved.success and "company.team.boom revision 1 saved on" in saved.stdout


def test_plugins_this_engine_lacks_are_left_to_the_cluster(shell: Any, remote: Server) -> None:
    """A type outside Kestra's core that this engine does not have goes to the server, which judges it; a
    mistake in a core type is still caught here, before anything is sent."""
    plugin = ("id: load\nnamespace: company.team\ntasks:\n  - id: q\n"
              "    type: io.kestra.plugin.jdbc.postgres.Query\n    sql: select 1\n")
    unreachable = "http://127.0.0.1:9"
    assert_short_error(run_cell(shell, f"%%flow --server {unreachable}\n" + plugin), "cannot reach the server")
    typo = plugin.replace("io.kestra.plugin.jdbc.postgres.Query", "io.kestra.plugin.core.log.Lg")
    assert_short_error(run_cell(shell, f"%%flow --server {unreachable}\n" + typo),
                       "line 6, column 5: tasks[0].type: Invalid type: io.kestra.plugin.core.log.Lg")
    # this server lacks the plugin too: its refusal points at the cell's line
    assert_short_error(run_cell(shell, f"%%flow --server {remote.url} --token {TOKEN}\n" + plugin),
                       "line 6, column 5: tasks[0].type: Invalid type: io.kestra.plugin.jdbc.postgres.Query")
