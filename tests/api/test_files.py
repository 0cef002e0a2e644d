"""Internal storage over HTTP: FILE inputs streamed in (multipart), files streamed out (`/file`, `/file/metas`),
the prefix and traversal checks, deletion with the execution, resume/replay/validate with files, metrics."""
from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from kestra_nb.client import KestraClient
from kestra_nb.errors import IllegalArgumentError, NotFoundError
from tests.api.conftest import INPUTS_FLOW

E = "/api/v1/main/executions"
SCRIPT = Path(sys.executable).parent / "kestra-nb"
MB = 1024 * 1024

FILE_FLOW = """id: files
namespace: company.team
inputs:
  - id: doc
    type: FILE
  - id: note
    type: STRING
    required: false
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.doc }}"
outputs:
  - id: doc
    type: STRING
    value: "{{ outputs.ret.value }}"
"""

OTHER_FLOW = FILE_FLOW.replace("id: files", "id: other")

RESUME_FLOW = """id: approve
namespace: company.team
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: report
        type: FILE
      - id: reason
        type: STRING
        required: false
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.hold.onResume.report }}"
"""


def upload(http, flow_id: str = "files", content: bytes = b"a,b\n1,2\n", filename: str = "data.csv") -> dict:
    return http.run("company.team", flow_id, files={"doc": (filename, content), "note": (None, "n")})


def file_url(execution_id: str, uri: str, *, metas: bool = False, tenant: bool = True) -> str:
    base = E if tenant else "/api/v1/executions"
    return f"{base}/{execution_id}/file{'/metas' if metas else ''}?path={quote(uri, safe='')}"


def temp_leftovers(server) -> list[Path]:
    tmp = server.engine.store.storage.root / ".tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


# ------------------------------------------------------------------------------------------------ download


def test_input_file_download_and_metas(http, server):
    http.deploy(FILE_FLOW)
    doc = upload(http, filename="données 1.csv")
    uri = doc["inputs"]["doc"]
    assert uri == (f"kestra:///company/team/files/executions/{doc['id']}/inputs/doc/"
                   f"{quote('données 1.csv')}")
    assert doc["outputs"] == {"doc": uri}
    r = http.get(file_url(doc["id"], uri))
    assert r.status_code == 200 and r.content == b"a,b\n1,2\n"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-length"] == "8"
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"donn_es 1.csv\"; filename*=UTF-8''donn%C3%A9es%201.csv")
    assert http.get(file_url(doc["id"], uri, metas=True)).json() == {"size": 8}
    # tenant-less aliases
    assert http.get(file_url(doc["id"], uri, tenant=False)).content == b"a,b\n1,2\n"
    assert http.get(file_url(doc["id"], uri, metas=True, tenant=False)).json() == {"size": 8}
    assert temp_leftovers(server) == []


def test_task_output_file_download(http, server):
    http.deploy(FILE_FLOW)
    doc = upload(http)
    task_run = doc["taskRunList"][0]
    storage = server.engine.store.storage
    uri = storage.put(storage.task_uri("company.team", "files", doc["id"], "ret", task_run["id"], "out.txt"),
                      b"task output\n")
    assert uri.startswith(f"kestra:///company/team/files/executions/{doc['id']}/tasks/ret/{task_run['id']}/")
    r = http.get(file_url(doc["id"], uri))
    assert r.status_code == 200 and r.content == b"task output\n"
    assert r.headers["content-disposition"] == 'attachment; filename="out.txt"'
    assert http.get(file_url(doc["id"], uri, metas=True)).json() == {"size": 12}
    head = http.request("HEAD", file_url(doc["id"], uri))
    assert head.status_code == 200 and head.headers["content-length"] == "12" and head.content == b""


def test_missing_execution_file_or_path_is_an_error(http):
    http.deploy(FILE_FLOW)
    doc = upload(http)
    uri = doc["inputs"]["doc"]
    r = http.get(file_url("nope", uri))
    assert r.status_code == 404 and r.json()["message"] == "Not Found: Execution 'nope' not found."
    missing = uri.rsplit("/", 1)[0] + "/missing.csv"
    r = http.get(file_url(doc["id"], missing))
    assert r.status_code == 404 and r.json()["message"].startswith("Not Found: File not found")
    assert http.get(file_url(doc["id"], missing, metas=True)).status_code == 404
    r = http.get(f"{E}/{doc['id']}/file")
    assert r.status_code == 400 and r.json()["message"] == "Bad Request: Required QueryValue [path] not specified"


def test_file_of_another_execution_of_the_same_flow_redirects(http):
    http.deploy(FILE_FLOW)
    first, second = upload(http, content=b"first"), upload(http, content=b"second")
    uri = first["inputs"]["doc"]
    r = http.get(file_url(second["id"], uri))
    assert r.status_code == 302
    assert r.headers["location"] == file_url(first["id"], uri)
    r = http.get(file_url(second["id"], uri, metas=True))
    assert r.status_code == 302 and r.headers["location"] == file_url(first["id"], uri, metas=True)
    r = http.get(file_url(second["id"], uri, tenant=False))
    assert r.headers["location"] == file_url(first["id"], uri, tenant=False)
    assert http.get(file_url(second["id"], uri), follow_redirects=True).content == b"first"


def test_file_of_another_flow_is_an_invalid_prefix(http):
    http.deploy(FILE_FLOW)
    http.deploy(OTHER_FLOW)
    mine, foreign = upload(http), upload(http, "other", content=b"foreign")
    r = http.get(file_url(mine["id"], foreign["inputs"]["doc"]))
    assert r.status_code == 422
    assert r.json() == {"message": "Illegal argument: Invalid prefix path",
                        "_links": {"self": {"href": f"{E}/{mine['id']}/file", "templated": False}}}
    assert b"foreign" not in r.content


def traversals(execution_id: str) -> list[str]:
    """`path` values (already URL-encoded as they go on the wire) that try to leave the execution's files."""
    prefix = f"kestra:///company/team/files/executions/{execution_id}/inputs/doc"
    return [quote(v, safe="") for v in [
        f"{prefix}/../../../../../../../secret.txt",
        f"{prefix}/../../../../../../../../../../../../etc/passwd",
        f"{prefix}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        f"{prefix}/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
        f"{prefix}/..\\..\\..\\..\\..\\..\\..\\secret.txt",
        f"{prefix}/data.csv%00.txt",
        f"{prefix}/data.csv\x00",
        "file:///etc/passwd",
        "/etc/passwd",
        "../../secret.txt",
        "http://127.0.0.1/secret.txt",
        "kestra:///etc/passwd",
        "kestra:////etc/passwd",
        "kestra://../../secret.txt",
        "kestra:///",
        f"kestra:///company/team/files/executions/{execution_id}/",
        "",
    ]] + [
        # encoded twice on the wire: the server's own decoding must not turn them into a traversal
        (f"{quote(prefix, safe='')}%2F%252e%252e%2F%252e%252e%2F%252e%252e%2F%252e%252e%2F%252e%252e%2F"
         f"%252e%252e%2F%252e%252e%2Fsecret.txt"),
    ]


def test_path_traversal_is_refused_and_never_leaks_a_byte(http, server, tmp_path):
    http.deploy(FILE_FLOW)
    doc = upload(http)
    secret = b"TOPSECRET-" + os.urandom(8).hex().encode()
    (tmp_path / "secret.txt").write_bytes(secret)                      # next to the home
    (tmp_path / "home" / "secret.txt").write_bytes(secret)             # next to the store
    (server.engine.store.storage.root / "secret.txt").write_bytes(secret)  # at the storage root
    for value in traversals(doc["id"]):
        for metas in (False, True):
            r = http.get(f"{E}/{doc['id']}/file{'/metas' if metas else ''}?path={value}")
            assert r.status_code == 422, (value, r.status_code, r.text)
            assert secret not in r.content and b"root:" not in r.content, value
            assert r.headers["content-type"] == "application/json"
            assert r.json()["message"].startswith("Illegal argument: ")
    # nsfile:// names a namespace file: the storage root's file is not one
    r = http.get(file_url(doc["id"], "nsfile:///secret.txt"))
    assert r.status_code == 404 and secret not in r.content
    # a link inside the execution's folder that points outside the storage is refused too
    link_uri = doc["inputs"]["doc"].rsplit("/", 1)[0] + "/link.txt"
    server.engine.store.storage.path(link_uri).symlink_to(tmp_path / "secret.txt")
    r = http.get(file_url(doc["id"], link_uri))
    assert r.status_code == 422 and secret not in r.content


# ------------------------------------------------------------------------------------ lifecycle of files


def test_deleting_an_execution_removes_its_files(http, server):
    http.deploy(FILE_FLOW)
    doc, kept = upload(http), upload(http, content=b"kept")
    storage = server.engine.store.storage
    task_uri = storage.put(storage.task_uri("company.team", "files", doc["id"], "ret",
                                            doc["taskRunList"][0]["id"], "out.txt"), b"x")
    files = [doc["inputs"]["doc"], task_uri]
    assert all(storage.exists(uri) for uri in files)
    assert http.delete(f"{E}/{doc['id']}").status_code == 204
    assert not any(storage.exists(uri) for uri in files)
    assert not (storage.root / "company" / "team" / "files" / "executions" / doc["id"]).exists()
    assert http.get(file_url(doc["id"], files[0])).status_code == 404
    assert http.get(file_url(kept["id"], kept["inputs"]["doc"])).content == b"kept"


def test_rejected_inputs_leave_no_file_behind(http, server):
    http.deploy(FILE_FLOW)
    r = http.post(f"{E}/company.team/files", params={"kind": "BOGUS"}, files={"doc": ("a.txt", b"abc")})
    assert r.status_code == 400
    flow = INPUTS_FLOW.replace("    type: FILE\n    required: false\n",
                               "    type: FILE\n    required: false\n    allowedFileExtensions: [.csv]\n")
    http.deploy(flow)
    r = http.post(f"{E}/company.team/inputs", files={"name": (None, "x"), "doc": ("a.txt", b"abc")})
    assert r.status_code == 422 and "File type not allowed" in r.json()["message"]
    storage = server.engine.store.storage
    assert [p for p in storage.root.rglob("*") if p.is_file() and ".tmp" not in p.parts] == []
    assert temp_leftovers(server) == []


def test_legacy_files_part_is_stored_and_served(http):
    http.deploy(FILE_FLOW)
    doc = http.run("company.team", "files", files={"files": ("doc", b"legacy 0.x")})
    uri = doc["inputs"]["doc"]
    assert uri == f"kestra:///company/team/files/executions/{doc['id']}/inputs/doc/doc"
    assert http.get(file_url(doc["id"], uri)).content == b"legacy 0.x"


def test_resume_with_a_file_input(http, server):
    http.deploy(RESUME_FLOW)
    doc = http.start("company.team", "approve")
    http.wait_state(doc["id"], "PAUSED")
    r = http.post(f"{E}/{doc['id']}/resume", files={"report": ("report.pdf", b"%PDF-1.7 fake"),
                                                      "reason": (None, "ok"), "stray": ("x.bin", b"x")})
    assert r.status_code == 204, r.text
    final = http.wait_state(doc["id"], "SUCCESS", "FAILED")
    assert final["state"]["current"] == "SUCCESS"
    uri = f"kestra:///company/team/approve/executions/{doc['id']}/inputs/report/report.pdf"
    hold = next(tr for tr in final["taskRunList"] if tr["taskId"] == "hold")
    assert hold["outputs"] == {"onResume": {"report": uri, "reason": "ok"}}
    assert http.get(file_url(doc["id"], uri)).content == b"%PDF-1.7 fake"
    storage = server.engine.store.storage
    assert storage.list(f"kestra:///company/team/approve/executions/{doc['id']}/") == [uri]  # `stray` dropped
    assert temp_leftovers(server) == []


def test_resume_rejecting_the_file_keeps_nothing(http, server):
    http.deploy(RESUME_FLOW.replace("type: FILE\n", "type: FILE\n        allowedFileExtensions: [.pdf]\n"))
    doc = http.start("company.team", "approve")
    http.wait_state(doc["id"], "PAUSED")
    r = http.post(f"{E}/{doc['id']}/resume", files={"report": ("report.exe", b"MZ")})
    assert r.status_code == 422 and "File type not allowed" in r.json()["message"]
    storage = server.engine.store.storage
    assert storage.list(f"kestra:///company/team/approve/executions/{doc['id']}/") == []


def test_replay_with_inputs_stores_the_file_under_the_new_execution(http):
    http.deploy(FILE_FLOW)
    source = upload(http, content=b"original")
    r = http.post(f"{E}/{source['id']}/replay-with-inputs", files={"doc": ("data.csv", b"replayed")})
    assert r.status_code == 200, r.text
    replay = http.wait_state(r.json()["id"], "SUCCESS")
    uri = replay["inputs"]["doc"]
    assert uri == f"kestra:///company/team/files/executions/{replay['id']}/inputs/doc/data.csv"
    assert http.get(file_url(replay["id"], uri)).content == b"replayed"
    assert http.get(file_url(source["id"], source["inputs"]["doc"])).content == b"original"


def test_validate_with_a_file_part(http, server):
    http.deploy(FILE_FLOW)
    r = http.post(f"{E}/company.team/files/validate", files={"doc": ("data.csv", b"x")})
    assert r.status_code == 200
    item = next(i for i in r.json()["inputs"] if i["input"]["id"] == "doc")
    assert item["errors"] == [] and item["value"] == "kestra:///upload/data.csv"
    assert temp_leftovers(server) == []


# ------------------------------------------------------------------------------------ malformed multipart

MALFORMED = [
    ("multipart/form-data; boundary=xyz", b"garbage", "malformed multipart/form-data body"),
    ("multipart/form-data", b"--x\r\nbroken", "multipart/form-data without a boundary"),
    ("multipart/form-data; boundary=xyz",
     b'--xyz\r\nContent-Disposition: form-data; name="doc"; filename="a.csv"\r\n\r\nunfinished',
     "it ends before the closing boundary"),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Type: text/plain\r\n\r\nv\r\n--xyz--\r\n",
     "a part has no Content-Disposition"),
    ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data\r\n\r\nv\r\n--xyz--\r\n',
     "a part has no name"),
]


@pytest.mark.parametrize("content_type, body, message", MALFORMED)
def test_malformed_multipart_is_a_400_with_a_clear_message(http, server, content_type, body, message):
    http.deploy(FILE_FLOW)
    r = http.post(f"{E}/company.team/files", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("Bad Request: ") and message in r.json()["message"]
    assert temp_leftovers(server) == []
    assert http.get("/ping").text == "pong"   # still serving


def test_a_non_utf8_field_is_422_and_huge_text_fields_are_413(http):
    http.deploy(FILE_FLOW)
    body = b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\n\xff\xfe\r\n--xyz--\r\n'
    r = http.post(f"{E}/company.team/files", content=body,
                  headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 422 and r.json()["message"] == "Invalid entity: the form field `note` is not UTF-8 text"
    r = http.post(f"{E}/company.team/files", files={"note": (None, "x" * (17 * MB))})
    assert r.status_code == 413
    assert r.json()["message"].startswith("Payload too large: the text fields of a multipart body are limited")


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_of_an_execution_paged_and_filtered(http, server):
    http.deploy(FILE_FLOW)
    doc = upload(http)
    tr = doc["taskRunList"][0]
    entries = [{"namespace": "company.team", "flowId": "files", "taskId": task_id, "executionId": doc["id"],
                "taskRunId": task_run_id, "type": "counter", "name": name, "value": value, "tags": {},
                "timestamp": "2026-01-01T00:00:00Z"}
               for task_id, task_run_id, name, value in [("ret", tr["id"], "rows", 3), ("ret", tr["id"], "bytes", 8),
                                                         ("other", "tr2", "rows", 5)]]
    server.engine.store.append_metrics(entries)
    r = http.get(f"/api/v1/main/metrics/{doc['id']}")
    assert r.status_code == 200 and r.json() == {"results": entries, "total": 3}
    assert http.get(f"/api/v1/metrics/{doc['id']}", params={"page": 2, "size": 2}).json() == {
        "results": entries[2:], "total": 3}
    assert http.get(f"/api/v1/main/metrics/{doc['id']}", params={"taskRunId": tr["id"]}).json()["total"] == 2
    assert http.get(f"/api/v1/main/metrics/{doc['id']}", params={"taskId": "other"}).json() == {
        "results": entries[2:], "total": 1}
    sorted_ = http.get(f"/api/v1/main/metrics/{doc['id']}", params={"sort": "value:desc"}).json()["results"]
    assert [m["value"] for m in sorted_] == [8, 5, 3]
    assert http.get("/api/v1/main/metrics/nope").json() == {"results": [], "total": 0}
    assert http.get(f"/api/v1/main/metrics/{doc['id']}", params={"size": 0}).status_code == 422
    assert http.get(f"/api/v1/main/metrics/{doc['id']}", params={"sort": "secret:asc"}).status_code == 422


# ---------------------------------------------------------------------------------------------- client


def test_client_uploads_paths_and_file_objects_and_downloads(server, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"x,y\n")
    with KestraClient(server.url) as kestra:
        kestra.deploy(FILE_FLOW)
        doc = kestra.execute("company.team", "files", inputs={"doc": source, "note": "n"})
        uri = doc["inputs"]["doc"]
        assert uri.endswith(f"/executions/{doc['id']}/inputs/doc/in.csv")
        assert kestra.file_size(doc["id"], uri) == 4
        assert kestra.download_file(doc["id"], uri, tmp_path / "out.csv") == tmp_path / "out.csv"
        assert (tmp_path / "out.csv").read_bytes() == b"x,y\n"
        (tmp_path / "dir").mkdir()
        assert kestra.download_file(doc["id"], uri, tmp_path / "dir") == tmp_path / "dir" / "in.csv"
        with open(source, "rb") as stream:
            second = kestra.execute("company.team", "files", inputs={"doc": stream})
        assert second["inputs"]["doc"].endswith("/inputs/doc/in.csv")
        # a file of the first execution asked through the second: the redirect is followed
        with open(tmp_path / "via.bin", "wb") as out:
            assert kestra.download_file(second["id"], uri, out) is None
        assert (tmp_path / "via.bin").read_bytes() == b"x,y\n"
        with pytest.raises(NotFoundError):
            kestra.download_file(doc["id"], uri + "-missing", tmp_path / "missing")
        assert not (tmp_path / "missing").exists() and not (tmp_path / "missing.part").exists()
        with pytest.raises(IllegalArgumentError, match="Invalid prefix path"):
            kestra.file_size(doc["id"], "kestra:///elsewhere/x")
        with pytest.raises(IllegalArgumentError, match="Cannot read the file of input `doc`"):
            kestra.execute("company.team", "files", inputs={"doc": tmp_path / "absent.csv"})
        with open(source, encoding="utf-8") as text, pytest.raises(IllegalArgumentError, match="binary mode"):
            kestra.execute("company.team", "files", inputs={"doc": text})


# ------------------------------------------------------------------------ a big upload, with bounded memory


def _peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def _reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux `clear_refs` 5); False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_a_100_mb_upload_streams_through_the_server_with_bounded_memory(tmp_path):
    size = 100 * MB
    source, digest = tmp_path / "big.bin", hashlib.sha256()
    with open(source, "wb") as out:
        block = os.urandom(MB)
        for i in range(100):
            chunk = bytes([i]) + block[1:]
            digest.update(chunk)
            out.write(chunk)
    proc = subprocess.Popen([str(SCRIPT), "server", "--port", "0", "--home", str(tmp_path / "home")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, (line, proc.poll())
        with KestraClient(m.group(1), timeout=120) as kestra:
            kestra.deploy(FILE_FLOW)
            kestra.execute("company.team", "files", inputs={"doc": b"warm-up"})   # every code path loaded
            kestra.download_file(*_first_file(kestra), tmp_path / "warm")
            reset = _reset_peak_rss(proc.pid)
            before = _peak_rss(proc.pid) if reset else int(
                re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{proc.pid}/status").read_text()).group(1)) * 1024
            doc = kestra.execute("company.team", "files", inputs={"doc": source})
            uri = doc["inputs"]["doc"]
            assert kestra.file_size(doc["id"], uri) == size
            back = hashlib.sha256()
            with httpx.stream("GET", f"{m.group(1)}{file_url(doc['id'], uri)}", timeout=120) as r:
                assert r.status_code == 200 and r.headers["content-length"] == str(size)
                received = 0
                for chunk in r.iter_bytes():
                    back.update(chunk)
                    received += len(chunk)
            growth = _peak_rss(proc.pid) - before
        assert received == size and back.hexdigest() == digest.hexdigest()
        assert growth < 30 * MB, f"the server's peak RSS grew by {growth / MB:.1f} MB for a 100 MB upload"
        tmp = tmp_path / "home" / "storage" / ".tmp"
        assert not tmp.exists() or [p for p in tmp.rglob("*") if p.is_file()] == []
    finally:
        proc.terminate()
        proc.wait(30)


def _first_file(kestra: KestraClient) -> tuple[str, str]:
    found = kestra.search(namespace="company.team", flow_id="files")["results"][0]
    return found["id"], found["inputs"]["doc"]


def test_uploads_need_credentials_before_the_body_is_read(auth_server):
    """Without credentials the answer is 401 before the body is read (none of it is written to disk)."""
    with socket.create_connection(("127.0.0.1", auth_server.port), timeout=30) as sock:
        head = (f"POST {E}/company.team/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {50 * MB}\r\n\r\n")
        sock.sendall(head.encode())
        sock.sendall(b"--xyz\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a\"\r\n\r\nxxxx")
        answer = sock.recv(65536)   # answered while (nearly) all of the body is still unsent
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"www-authenticate: basic" in answer.lower()
    tmp = auth_server.engine.store.storage.root / ".tmp"
    assert not tmp.exists() or [p for p in tmp.rglob("*") if p.is_file()] == []


def test_a_client_leaving_mid_upload_leaves_no_temporary_file(http, server, monkeypatch):
    import threading

    from kestra_nb.api.multipart import MultipartSink

    closed = threading.Event()
    original = MultipartSink.close

    def close(self: MultipartSink) -> None:
        original(self)
        closed.set()

    monkeypatch.setattr(MultipartSink, "close", close)
    http.deploy(FILE_FLOW)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall((f"POST {E}/company.team/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {10 * MB}\r\n\r\n").encode())
        sock.sendall(b'--xyz\r\nContent-Disposition: form-data; name="doc"; filename="a.bin"\r\n\r\n' + b"x" * MB)
    assert closed.wait(10), "the partial upload was not cleaned up"
    assert temp_leftovers(server) == []
    assert http.get(f"{E}/search").json()["total"] == 0
