"""`kestra-nb deploy DIR`: a folder of flows in one request (Kestra's `flows/{namespace}` and `flows/bulk`) and
its namespace files, against a real server; every bad input named by file and line, nothing sent then."""
from __future__ import annotations

import email.parser
import email.policy
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kestra_nb import deploy
from kestra_nb.cli import main
from kestra_nb.client import KestraClient

FLOW = "id: {id}\nnamespace: {ns}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: {fmt}\n"
NO_MESSAGE = "id: {id}\nnamespace: {ns}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def flows_of(server: Any, namespace: str) -> dict[str, int]:
    with KestraClient(server.url) as c:
        return {f["id"]: f["revision"] for f in c._request("GET", c._path("flows", namespace)).json()}


def test_a_folder_deploys_in_one_request_then_again_without_new_revisions(server, tmp_path, capsys):
    root = tree(tmp_path / "flows", {
        "a.yml": FLOW.format(id="a", ns="company.team", fmt="one"),
        "sub/deeper/b.yaml": FLOW.format(id="b", ns="company.team", fmt="two") + "---\n"
                             + FLOW.format(id="c", ns="company.team", fmt="three"),
        ".git/config.yml": "not: a flow",        # hidden: skipped
        "README.md": "# not YAML",              # not a flow file
        "files/data.yml": "not: a flow either",  # the namespace files folder: not walked for flows
    })
    assert main(["deploy", str(root), "--namespace", "company.team", "--server", server.url, "--files",
                 str(tmp_path / "none")]) == 1
    assert f"{tmp_path / 'none'}: not a folder" in capsys.readouterr().err
    for _ in range(2):
        with KestraClient(server.url) as c:
            bundle = deploy.collect([root], namespace="company.team")
            assert [(d.file.name, d.line, d.id) for d in bundle.documents] == [
                ("a.yml", 1, "a"), ("b.yaml", 1, "b"), ("b.yaml", 8, "c")]
            assert [p for _, p in bundle.files] == ["/data.yml"]
            docs = c.deploy_flows(bundle.body(), namespace="company.team")
        assert [(f["id"], f["revision"]) for f in docs] == [("a", 1), ("b", 1), ("c", 1)]
    assert flows_of(server, "company.team") == {"a": 1, "b": 1, "c": 1}
    (root / "files").rename(tmp_path / "elsewhere")   # (the server in this clone has no namespace files route)
    (root / "a.yml").write_text(FLOW.format(id="a", ns="company.team", fmt="uno"))
    (root / "sub/deeper/b.yaml").write_text(FLOW.format(id="b", ns="company.team", fmt="two"))
    assert main(["deploy", str(root), "--namespace", "company.team", "--server", server.url]) == 0
    out = capsys.readouterr().out
    assert f"{root / 'a.yml'}: deployed company.team.a revision 2" in out
    assert f"{root / 'sub/deeper/b.yaml'}: deployed company.team.b revision 1" in out
    assert flows_of(server, "company.team") == {"a": 2, "b": 1, "c": 1}   # c kept: no --delete
    assert main(["deploy", str(root), "--namespace", "company.team", "--delete", "--server", server.url]) == 0
    assert flows_of(server, "company.team") == {"a": 2, "b": 1}


def test_without_a_namespace_the_bulk_route_takes_any_namespaces(server, tmp_path, capsys):
    root = tree(tmp_path / "flows", {"one.yml": FLOW.format(id="x", ns="team.one", fmt="1"),
                                     "two.yml": FLOW.format(id="x", ns="team.two", fmt="2")})
    other = tree(tmp_path / "other", {"old.yml": FLOW.format(id="old", ns="team.three", fmt="3")})
    assert main(["deploy", str(other), "--server", server.url]) == 0
    assert main(["deploy", str(root), "--server", server.url]) == 0
    assert flows_of(server, "team.one") == {"x": 1} and flows_of(server, "team.three") == {"old": 1}
    capsys.readouterr()
    assert main(["deploy", str(root), "--delete", "--server", server.url]) == 0   # the tenant's others go
    assert flows_of(server, "team.three") == {} and flows_of(server, "team.two") == {"x": 1}


def test_the_servers_refusal_names_the_file_and_its_line(server, tmp_path, capsys):
    root = tree(tmp_path / "flows", {
        "a.yml": FLOW.format(id="a", ns="company.team", fmt="one"),
        "b.yml": "# two flows\n" + FLOW.format(id="b", ns="company.team", fmt="x") + "---\n"
                 + NO_MESSAGE.format(id="c", ns="company.team")})
    assert main(["deploy", str(root), "--namespace", "company.team", "--server", server.url]) == 1
    err = capsys.readouterr().err
    # c starts on line 9 of b.yml; its task's missing `message` is at line 4, column 5 of that document
    assert f"{root / 'b.yml'}:12:5: tasks[0].message: " in err, err
    assert flows_of(server, "company.team") == {}   # nothing stored


@pytest.mark.parametrize("files, expected", [
    ({"a.yml": "id: a\nnamespace: n\ntasks: [\n"}, "a.yml:3:9: Invalid YAML"),
    ({"a.yml": FLOW.format(id="a", ns="n", fmt="1") + "---\nnamespace: n\ntasks: []\n"},
     "a.yml:8: the flow needs an `id` (text)"),
    ({"a.yml": "id: [1]\nnamespace: n\n"}, "a.yml:1:1: id: expected text, got [1]"),
    ({"a.yml": "- a list\n"}, "a.yml:1: a flow is a YAML mapping"),
    ({"a.yml": FLOW.format(id="a", ns="other.ns", fmt="1")},
     "a.yml:2:1: namespace: `other.ns`, but --namespace is `company.team`"),
    ({"a.yml": FLOW.format(id="a", ns="company.team", fmt="1"), "b/c.yml": FLOW.format(id="a", ns="company.team",
                                                                                       fmt="2")},
     "c.yml:1:1: flow company.team.a is also in"),
    ({"a.yml": b"id: a\nnamespace: company.team\n# caf\xe9\n"}, "a.yml:3:6: not UTF-8 text"),
    ({"files/_flows/x.yml": "id: x", "a.yml": FLOW.format(id="a", ns="company.team", fmt="1")},
     "x.yml: Kestra imports files under `_flows/` as flows"),
])
def test_bad_flows_are_named_by_file_and_line_and_nothing_is_sent(server, tmp_path, capsys, files, expected):
    root = tree(tmp_path / "flows", files)
    assert main(["deploy", str(root), "--namespace", "company.team", "--server", server.url]) == 1
    assert expected in capsys.readouterr().err
    assert flows_of(server, "company.team") == {}


def test_the_budgets_and_missing_things(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    for paths, expected in (([empty], "nothing to deploy: no *.yml or *.yaml flow"),
                            ([tmp_path / "nope"], "nope: no such file or folder")):
        with pytest.raises(deploy.DeployError, match=re.escape(expected)):
            deploy.collect(paths)
    root = tree(tmp_path / "flows", {f"f{i}.yml": FLOW.format(id=f"f{i}", ns="n", fmt=i) for i in range(4)})
    monkeypatch.setattr(deploy, "MAX_FLOWS", 3)
    with pytest.raises(deploy.DeployError, match="4 flows; one deploy takes at most 3"):
        deploy.collect([root])
    monkeypatch.setattr(deploy, "MAX_FLOW_BYTES", 50)
    with pytest.raises(deploy.DeployError, match="f0.yml: 96 bytes; a flow file may have at most 50"):
        deploy.collect([root])
    monkeypatch.setattr(deploy, "MAX_FLOW_BYTES", 1000)
    monkeypatch.setattr(deploy, "MAX_FLOWS_BYTES", 200)
    with pytest.raises(deploy.DeployError, match="f2.yml: the flows add up to more than 200 bytes"):
        deploy.collect([root])
    monkeypatch.setattr(deploy, "MAX_FLOWS_BYTES", 10_000)
    monkeypatch.setattr(deploy, "MAX_ENTRIES", 2)
    with pytest.raises(deploy.DeployError, match="more than 2 entries to look at"):
        deploy.collect([root])
    monkeypatch.setattr(deploy, "MAX_ENTRIES", 1000)
    outside = tmp_path / "outside.yml"
    outside.write_text(FLOW.format(id="o", ns="n", fmt="o"))
    os.symlink(outside, root / "link.yml")
    with pytest.raises(deploy.DeployError, match="link.yml: a symbolic link to .*outside.yml, outside"):
        deploy.collect([root])
    (root / "link.yml").unlink()
    tree(root, {"files/big.bin": b"x" * 11, "files/ok.txt": "ok", "g.yml": FLOW.format(id="g", ns="m", fmt="g")})
    monkeypatch.setattr(deploy, "MAX_FILE_BYTES", 10)
    monkeypatch.setattr(deploy, "MAX_FLOWS", 10)
    with pytest.raises(deploy.DeployError) as info:
        deploy.collect([root])
    assert [str(p).replace(str(root), "R") for p in info.value.problems] == [
        "R/files/big.bin: 11 bytes; a namespace file may have at most 10",
        "R/files: give --namespace NS for the namespace files: the flows are in m, n"]
    monkeypatch.setattr(deploy, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(deploy, "MAX_FILES", 1)
    with pytest.raises(deploy.DeployError, match="2 namespace files; one deploy takes at most 1"):
        deploy.collect([root / "f0.yml"], namespace="n", files=root / "files")
    monkeypatch.setattr(deploy, "MAX_FILES", 10)
    monkeypatch.setattr(deploy, "MAX_FILES_BYTES", 12)
    with pytest.raises(deploy.DeployError, match="files: the namespace files add up to more than 12 bytes"):
        deploy.collect([root / "f0.yml"], namespace="n", files=root / "files")


# ------------------------------------------------------------------ namespace files (a recording server)

@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    parts: list[tuple[str, str | None, bytes]] = field(default_factory=list)   # (name, filename, content)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Recorded]]]:
    """A loopback HTTP server that records every request and answers as Kestra does: the namespace-files
    upload with 204, the bulk flows routes with the flows of the body. (This clone's own server has no
    namespace-files route yet; with it, this test moves to the `server` fixture.)"""
    seen: list[Recorded] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record = Recorded("POST", url.path, parse_qs(url.query), dict(self.headers.items()), body)
            if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
                record.parts = [(part.get_param("name", header="content-disposition"), part.get_filename(),
                                 part.get_payload(decode=True)) for part in message.iter_parts()]
            seen.append(record)
            if "/files" in url.path and "refused" in url.query:   # as Kestra refuses a path it cannot store
                self.answer(422, {"message": "Illegal argument: Invalid namespace file path"})
                return
            if url.path.endswith("/flows/validate"):   # Kestra's answer: one result per document
                self.answer(200, [{"index": 0, "flow": "a", "namespace": "company.team", "outdated": False},
                                  {"index": 1, "flow": "c", "namespace": "company.team", "outdated": False,
                                   "constraints": "tasks[0].message: must not be null"}])
                return
            if b"refuse-me" in body:   # Kestra's bulk refusal names no document
                self.answer(422, {"message": "Invalid entity: flow.tasks[0].message: must not be null",
                                  "_embedded": {"errors": [{"message": "must not be null",
                                                            "path": "flow.tasks[0].message"}]}})
                return
            if "/files" in url.path:
                self.send_response(204)
                self.end_headers()
                return
            docs = [doc for doc in body.decode().split("---\n") if doc.strip()]
            import yaml

            self.answer(200, [{**yaml.safe_load(doc), "revision": 1} for doc in docs])

        def answer(self, status: int, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def test_namespace_files_go_to_kestras_files_route_then_the_flows(recorder, tmp_path, capsys, monkeypatch):
    url, seen = recorder
    monkeypatch.delenv("KESTRA_API_TOKEN", raising=False)
    root = tree(tmp_path / "project", {
        "flow.yml": FLOW.format(id="etl", ns="company.team", fmt="x"),
        "files/scripts/etl.py": "print('hello ✓')\n",
        "files/data/rows.csv": b"a,b\n1,2\n",
        "files/.cache/skip.txt": "hidden: skipped",
    })
    assert main(["deploy", str(root), "--server", url, "--tenant", "acme", "--token", "tok-123"]) == 0
    out = capsys.readouterr().out
    assert f"{root / 'files/scripts/etl.py'}: uploaded to company.team as /scripts/etl.py" in out
    assert f"{root / 'flow.yml'}: deployed company.team.etl revision 1" in out
    assert [(r.path, r.query) for r in seen] == [
        ("/api/v1/acme/namespaces/company.team/files", {"path": ["/data/rows.csv"]}),
        ("/api/v1/acme/namespaces/company.team/files", {"path": ["/scripts/etl.py"]}),
        ("/api/v1/acme/flows/bulk", {"delete": ["false"]})]
    assert all(r.headers["Authorization"] == "Bearer tok-123" for r in seen)
    assert seen[0].parts == [("fileContent", "rows.csv", b"a,b\n1,2\n")]
    assert seen[1].parts == [("fileContent", "etl.py", "print('hello ✓')\n".encode())]
    assert seen[2].headers["Content-Type"] == "application/x-yaml"
    assert seen[2].body.decode() == FLOW.format(id="etl", ns="company.team", fmt="x")
    seen.clear()
    elsewhere = tree(tmp_path / "assets", {"report.sql": "select 1"})
    assert main(["deploy", str(root / "flow.yml"), "--files", str(elsewhere), "--namespace", "company.team",
                 "--delete", "--server", url, "--tenant", ""]) == 0
    assert [(r.path, r.query) for r in seen] == [
        ("/api/v1/namespaces/company.team/files", {"path": ["/report.sql"]}),
        ("/api/v1/flows/company.team", {"delete": ["true"]})]
    assert "Authorization" not in seen[0].headers


def test_a_file_the_server_refuses_stops_the_flows(recorder, tmp_path, capsys):
    """Each refused upload is said with its file; the flows, which may need those files, are not deployed."""
    url, seen = recorder
    root = tree(tmp_path / "project", {"flow.yml": FLOW.format(id="etl", ns="company.team", fmt="x"),
                                       "files/a.txt": "a", "files/refused.txt": "b"})
    assert main(["deploy", str(root), "--server", url]) == 1
    captured = capsys.readouterr()
    assert f"{root / 'files/refused.txt'}: Invalid namespace file path" in captured.err
    assert "1 namespace file(s) were not uploaded, so no flow was deployed" in captured.err
    assert f"{root / 'files/a.txt'}: uploaded to company.team as /a.txt" in captured.out
    assert [r.path for r in seen] == ["/api/v1/main/namespaces/company.team/files"] * 2   # no flows request


def test_a_kestra_refusal_without_a_document_is_placed_by_kestras_check(recorder, tmp_path, capsys):
    """Kestra's bulk route refuses without saying which document: its `flows/validate` answer says which,
    and the problem is printed at that file and line."""
    url, seen = recorder
    root = tree(tmp_path / "flows", {"a.yml": FLOW.format(id="a", ns="company.team", fmt="refuse-me"),
                                     "c.yml": "# c\n" + NO_MESSAGE.format(id="c", ns="company.team")})
    assert main(["deploy", str(root), "--server", url]) == 1
    assert capsys.readouterr().err == f"{root / 'c.yml'}:5:5: tasks[0].message: must not be null\n"
    assert [r.path for r in seen] == ["/api/v1/main/flows/bulk", "/api/v1/main/flows/validate"]


def test_a_path_is_placed_at_itself_or_its_nearest_written_parent(tmp_path):
    root = tree(tmp_path / "flows", {"a.yml": "# head\n" + NO_MESSAGE.format(id="a", ns="n")})
    [doc] = deploy.collect([root]).documents
    assert doc.at("tasks[0].type") == (6, 5)
    assert doc.at("tasks[0].message") == (5, 5)        # missing: where its task is
    assert doc.at("flow.namespace") == (3, 1)          # Kestra's `flow.` prefix
    assert doc.at("triggers[3].conditions") == (1, None)   # nothing of it written: where the document starts
    assert doc.at("weird]]") == (1, None) and doc.at("") == (1, None)
    assert doc.at("anything", line=2, column=7) == (2, 7)


def test_a_dash_run_inside_a_flow_is_sent_with_a_warning(server, tmp_path, capsys):
    text = FLOW.format(id="a", ns="company.team", fmt='"a---b"')
    root = tree(tmp_path / "flows", {"a.yml": "# note\n" + text})
    assert main(["deploy", str(root), "--server", server.url]) == 0
    captured = capsys.readouterr()
    assert f"{root / 'a.yml'}:7: holds `---` inside the flow" in captured.err and "(warning)" in captured.err
    with KestraClient(server.url) as c:
        assert c.execute("company.team", "a")["taskRunList"][0]["outputs"] == {"value": "a---b"}


def test_a_folder_with_its_namespace_files_deploys_to_this_server_and_runs(server, tmp_path, capsys):
    """Both halves together: `kestra-nb deploy DIR` sends the files/ folder to the server's namespace-files
    routes, then the flows; the deployed flow reads its namespace file when it runs."""
    root = tree(tmp_path / "project", {
        "etl.yml": """id: etl
namespace: company.team
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('scripts/query.sql') }}"
""",
        "files/scripts/query.sql": "select 1 -- ✓\n",
    })
    assert main(["deploy", str(root), "--server", server.url]) == 0
    out = capsys.readouterr().out
    assert f"{root / 'files/scripts/query.sql'}: uploaded to company.team as /scripts/query.sql" in out
    with KestraClient(server.url) as c:
        listed = c._request("GET", c._path("namespaces", "company.team", "files", "directory"),
                            params={"path": "/scripts"}).json()
        assert [entry["fileName"] for entry in listed] == ["query.sql"]
        ex = c._request("POST", c._path("executions", "company.team", "etl"), params={"wait": "true"}).json()
    assert ex["state"]["current"] == "SUCCESS"
    assert ex["taskRunList"][0]["outputs"]["value"] == "select 1 -- ✓\n"


def test_the_files_folders_kestraignore_is_honoured_by_deploy(server, tmp_path, capsys):
    root = tree(tmp_path / "project", {
        "etl.yml": FLOW.format(id="etl", ns="company.team", fmt="x"),
        "files/scripts/etl.py": "print(1)\n",
        "files/scripts/etl.pyc": b"\x00compiled",
        "files/.kestraignore": "*.pyc\n",
    })
    assert main(["deploy", str(root), "--server", server.url]) == 0
    out = capsys.readouterr().out
    assert "/scripts/etl.py" in out and "etl.pyc" not in out
    assert server.engine.store.storage.namespace_files.list("company.team") == ["/scripts/etl.py"]
