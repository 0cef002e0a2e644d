"""`%flow files upload|list|delete` on an IPython shell: a notebook user publishes files a flow then reads."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.jupyter.conftest import run_cell

READER = """id: reader
namespace: company.team
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('scripts/etl.py') }}|{{ read('scripts/sql/q.sql') }}"
outputs:
  - id: text
    type: STRING
    value: "{{ outputs.r.value }}"
"""


def usage_error(cell: Any, text: str) -> None:
    assert not cell.success and type(cell.error).__name__ == "UsageError", cell.error
    assert text in str(cell.error), str(cell.error)


def test_upload_list_read_delete(shell: Any, jengine: Any, tmp_path: Path) -> None:
    (tmp_path / "etl.py").write_text("print('etl')")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "q.sql").write_text("select 1")
    cell = run_cell(shell, f"%flow files upload {tmp_path / 'etl.py'} {tmp_path / 'sql'} --namespace company.team "
                           "--to /scripts")
    assert cell.success, cell.error
    assert f"{tmp_path / 'etl.py'} -> nsfile://company.team/scripts/etl.py (revision 1)" in cell.stdout
    assert "-> nsfile://company.team/scripts/sql/q.sql (revision 1)" in cell.stdout
    cell = run_cell(shell, "%flow files list company.team")
    assert cell.stdout.splitlines() == ["/scripts/etl.py  12 bytes", "/scripts/sql/q.sql  8 bytes"]

    cell = run_cell(shell, "%%flow --out ex\n" + READER)
    assert cell.success, cell.error
    assert shell.user_ns["outputs"] == {"text": "print('etl')|select 1"}

    (tmp_path / "etl.py").write_text("print('v2')")
    cell = run_cell(shell, f"%flow files upload {tmp_path / 'etl.py'} -n company.team --to scripts")
    assert "(revision 2)" in cell.stdout
    cell = run_cell(shell, "%flow files delete company.team /scripts/sql")
    assert cell.success and cell.stdout.strip() == "Deleted /scripts/sql from company.team"
    assert jengine.store.storage.namespace_files.list("company.team") == ["/scripts/etl.py"]
    cell = run_cell(shell, "%flow files list company.team /nowhere")
    assert cell.stdout.strip() == "No namespace files in company.team under /nowhere"


def test_mistakes_are_usage_errors(shell: Any, tmp_path: Path) -> None:
    usage_error(run_cell(shell, "%flow files upload /surely/not/here -n company.team"),
                "%flow files upload: No such file or folder: /surely/not/here")
    usage_error(run_cell(shell, f"%flow files upload {tmp_path}"), "--namespace")
    (tmp_path / "a.txt").write_text("x")
    usage_error(run_cell(shell, f"%flow files upload {tmp_path / 'a.txt'} -n company.team --to ../up"),
                "`..` is not allowed")
    usage_error(run_cell(shell, f"%flow files upload {tmp_path / 'a.txt'} -n 'Not A Namespace'"),
                "Invalid namespace 'Not A Namespace'")
    usage_error(run_cell(shell, "%flow files delete company.team /missing.txt"),
                "no file or folder /missing.txt in company.team")
    usage_error(run_cell(shell, "%flow files rename a b"), "Unknown command `%flow files rename`")
    usage_error(run_cell(shell, "%flow files upload 'unclosed"), "%flow files: No closing quotation")
    assert "%flow files upload LOCAL_PATH..." in run_cell(shell, "%flow help").stdout


def test_with_server_the_commands_act_on_that_servers_namespace_files(shell: Any, jengine: Any, tmp_path: Path,
                                                                      monkeypatch: Any) -> None:
    """`--server URL` (a real `kestra-nb server` with a bearer token): upload, list and delete go through
    Kestra's namespace-files API, and nothing lands in the kernel's own store."""
    from kestra_nb.api.auth import Credentials
    from kestra_nb.server import serve_in_thread

    token = "a-token-of-16-chars-or-more"
    monkeypatch.setenv("KESTRA_API_TOKEN", token)
    srv, thread = serve_in_thread(tmp_path / "server-home", auth=Credentials.configure(None, token), grace=1)
    try:
        (tmp_path / "etl.py").write_text("print('remote')")
        cell = run_cell(shell, f"%flow files upload {tmp_path / 'etl.py'} -n company.team --to /scripts "
                               f"--server {srv.url}")
        assert cell.success, cell.error
        assert cell.stdout.strip() == f"{tmp_path / 'etl.py'} -> nsfile://company.team/scripts/etl.py on {srv.url}"
        assert srv.engine.store.storage.namespace_files.list("company.team") == ["/scripts/etl.py"]
        assert jengine.store.storage.namespace_files.list("company.team") == []
        cell = run_cell(shell, f"%flow files list company.team --server {srv.url}")
        assert cell.stdout.splitlines() == ["/scripts/etl.py  15 bytes"]
        cell = run_cell(shell, f"%flow files delete company.team /scripts --server {srv.url}")
        assert cell.success and cell.stdout.strip() == f"Deleted /scripts from company.team on {srv.url}"
        usage_error(run_cell(shell, f"%flow files delete company.team /scripts --server {srv.url}"),
                    f"no file or folder /scripts in company.team on {srv.url}")
        usage_error(run_cell(shell, "%flow files list company.team --token x"), "go with --server URL")
    finally:
        srv.stop()
        thread.join(15)
