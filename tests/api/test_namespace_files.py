"""Namespace files over real HTTP, as Kestra's NamespaceFileControllerTest drives them (and the budgets)."""
from __future__ import annotations

import io
import zipfile

import pytest

from kestra_nb.store import nsfiles

N = "/api/v1/main/namespaces/io.namespace/files"


def upload(http, path, content, filename="f.txt", namespace="io.namespace"):
    return http.post(f"/api/v1/main/namespaces/{namespace}/files", params={"path": path},
                     files={"fileContent": (filename, content)})


def test_create_get_stats_and_revisions(http):
    r = upload(http, "/test.txt", b"Hello")
    assert r.status_code == 200 and r.content == b""
    got = http.get(N, params={"path": "/test.txt"})
    assert got.status_code == 200 and got.content == b"Hello"
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert http.get(N, params={"path": "test.txt"}).content == b"Hello"   # the leading slash is optional
    stats = http.get(N + "/stats", params={"path": "/test.txt"}).json()
    assert stats["fileName"] == "test.txt" and stats["type"] == "File" and stats["size"] == 5
    assert set(stats) == {"fileName", "lastModifiedTime", "creationTime", "type", "size", "metadata"}
    upload(http, "/test.txt", b"Hello again")
    assert http.get(N + "/revisions", params={"path": "/test.txt"}).json() == [{"revision": 1}, {"revision": 2}]
    assert http.get(N, params={"path": "/test.txt", "revision": 1}).content == b"Hello"
    assert http.get(N, params={"path": "/test.txt", "revision": 2}).content == b"Hello again"
    assert http.get(N, params={"path": "/test.txt"}).content == b"Hello again"
    r = http.get(N, params={"path": "/test.txt", "revision": 7})
    assert r.status_code == 404 and r.json()["message"] == "Not Found: File not found: /test.txt (revision 7)"
    r = http.get(N + "/revisions", params={"path": "/nope.txt"})
    assert r.status_code == 404 and r.json()["message"] == "Not Found: File not found: /nope.txt"


def test_root_stats_and_list_without_pre_creation(http):
    stats = http.get(N + "/stats").json()   # NamespaceFileControllerTest.namespaceRootStatsWithoutPreCreation
    assert stats["fileName"] == "_files" and stats["type"] == "Directory"
    assert http.get("/api/v1/main/namespaces/other.ns/files/directory").json() == []


def test_list_search_directory_move_delete(http):
    for path in ("/test/test.txt", "/test/test2.txt", "/file.txt", "/another_file.json", "/folder/sub/script.py"):
        upload(http, path, b"Hello World")
    names = [a["fileName"] for a in http.get(N + "/directory").json()]
    assert names == ["another_file.json", "file.txt", "folder", "test"]
    listed = http.get(N + "/directory", params={"path": "/test"}).json()
    assert [(a["fileName"], a["type"]) for a in listed] == [("test.txt", "File"), ("test2.txt", "File")]
    assert http.get(N + "/directory", params={"path": "/missing"}).status_code == 404
    assert sorted(http.get(N + "/search", params={"q": "file"}).json()) == [
        "/another_file.json", "/file.txt"]
    assert http.get(N + "/search", params={"q": ".py"}).json() == ["/folder/sub/script.py"]

    assert http.post(N + "/directory", params={"path": "/empty"}).status_code == 200
    assert http.get(N + "/stats", params={"path": "/empty"}).json()["type"] == "Directory"
    r = http.put(N, params={"from": "/empty", "to": "/foo"})   # NamespaceFileControllerTest.move
    assert r.status_code == 200
    assert http.get(N + "/stats", params={"path": "/foo"}).json()["fileName"] == "foo"
    assert http.get(N + "/stats", params={"path": "/empty"}).status_code == 404
    http.put(N, params={"from": "/test/test.txt", "to": "/moved/t.txt"})
    assert http.get(N, params={"path": "/moved/t.txt"}).content == b"Hello World"
    r = http.put(N, params={"from": "/moved/t.txt", "to": "/file.txt"})
    assert r.status_code == 422 and "already exists" in r.json()["message"]

    # NamespaceFileControllerTest.delete: the folders a deletion leaves empty go too, the root stays
    assert http.delete(N, params={"path": "/folder/sub/script.py"}).status_code == 200
    assert http.get(N + "/stats", params={"path": "/folder"}).status_code == 404
    assert http.delete(N, params={"path": "/test"}).status_code == 200   # a folder and what it holds
    assert http.get(N, params={"path": "/test/test2.txt"}).status_code == 404
    assert http.get(N + "/stats").json()["type"] == "Directory"
    r = http.delete(N, params={"path": "/test"})
    assert r.status_code == 404 and r.json()["message"] == "Not Found: File not found: /test"


def test_export_and_zip_import_with_flows(http):
    src = "/api/v1/main/namespaces/io.kestra.tests/files"
    for path, content in (("/file.txt", b"file"), ("/another_file.txt", b"another_file"),
                          ("/folder/file.txt", b"folder_file")):
        upload(http, path, content, namespace="io.kestra.tests")
    r = http.get(src + "/export")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == 'attachment; filename="io.kestra.tests_files.zip"'
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(archive.namelist()) == ["another_file.txt", "file.txt", "folder/file.txt"]

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in archive.namelist():
            z.writestr(name, archive.read(name))
        z.writestr("_flows/task-flow.yml", "id: task-flow\nnamespace: io.kestra.tests\ntasks:\n"
                   "  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n")
    r = upload(http, "/files.zip", buf.getvalue(), filename="files.zip")   # createFile_ExtractZip
    assert r.status_code == 200
    assert http.get(N, params={"path": "/folder/file.txt"}).content == b"folder_file"
    assert http.get(N, params={"path": "/files.zip"}).status_code == 404
    flow = http.get("/api/v1/main/flows/io.namespace/task-flow").json()
    assert flow["namespace"] == "io.namespace"
    assert http.get(N, params={"path": "/_flows/task-flow.yml"}).status_code == 422

    # createFile_AddFlow: a `_flows/<id>.yml` upload is a flow of the namespace, not a file
    source = "id: added\nnamespace: somewhere.else\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n" \
             "    format: x\n"
    assert upload(http, "/_flows/added.yml", source.encode(), filename="added.yml").status_code == 200
    assert http.get("/api/v1/main/flows/io.namespace/added").status_code == 200


@pytest.mark.parametrize("method, path, params", [
    ("GET", N, {"path": "/_flows/test.yml"}),
    ("GET", N + "/stats", {"path": "/_flows/test.yml"}),
    ("GET", N + "/directory", {"path": "/_flows"}),
    ("PUT", N, {"from": "/_flows/test", "to": "/foo"}),
    ("PUT", N, {"from": "/foo", "to": "/_flows/test"}),
    ("DELETE", N, {"path": "/_flows/test.txt"}),
])
def test_forbidden_paths(http, method, path, params):
    r = http.request(method, path, params=params)   # NamespaceFileControllerTest.forbiddenPaths
    assert r.status_code == 422 and r.json()["message"].startswith("Illegal argument: Forbidden path: ")


def test_create_file_flow_exception(http):
    r = upload(http, "/_flows", b"Hello", filename="_flows")   # NamespaceFileControllerTest.createFileFlowException
    assert r.status_code == 422 and r.json()["message"] == "Illegal argument: Forbidden path: /_flows"
    assert upload(http, "/abc/_flows2/_flows", b"Hello").status_code == 200   # only the root's `_flows` is Kestra's
    r = upload(http, "/_flows/a/b.yml", b"x", filename="b.yml")
    assert r.status_code == 422 and r.json()["message"] == "Illegal argument: Invalid flow file path: /_flows/a/b.yml"


@pytest.mark.parametrize("path, why", [
    ("/a/../../etc/passwd", "`..` is not allowed"),
    ("../x", "`..` is not allowed"),
    ("/a\x00b", "NUL or control character"),
    ("/a\\b", "use `/` to separate folders"),
    ("/" + "x" * 256, "exceeds the maximum length of 255"),
    ("/" + "/".join(["d"] * (nsfiles.MAX_DEPTH + 1)) + "/f", f"nested deeper than {nsfiles.MAX_DEPTH}"),
    ("/" + "/".join(["abcdefgh"] * 120), f"longer than {nsfiles.MAX_PATH_LENGTH}"),
    ("/", "it names no file"),
])
def test_bad_paths_are_400(http, path, why):
    for method, kwargs in (("GET", {}), ("DELETE", {})):
        r = http.request(method, N, params={"path": path}, **kwargs)
        assert r.status_code == 400, (method, r.text)
        assert r.json()["message"].startswith("Bad Request: Invalid namespace file path") and why in r.json()["message"]
    r = upload(http, path, b"x")
    assert r.status_code == 400 and why in r.json()["message"]


def test_bad_uploads(http, tmp_path):
    r = http.post(N, params={"path": "/x.txt"}, files={"other": ("f.txt", b"x")})
    assert r.status_code == 400 and r.json()["message"] == "Bad Request: Required Part [fileContent] not specified"
    r = http.post(N, files={"fileContent": ("f.txt", b"x")})
    assert r.status_code == 400 and "[path]" in r.json()["message"]
    r = upload(http, "/bad.zip", b"not a zip", filename="bad.zip")
    assert r.status_code == 422 and r.json()["message"].startswith("Illegal argument: Invalid ZIP archive")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../escape.txt", "no")
    r = upload(http, "/evil.zip", buf.getvalue(), filename="evil.zip")
    assert r.status_code == 400 and "`..` is not allowed" in r.json()["message"]
    assert http.get(N, params={"path": "/ok.txt"}).status_code == 404   # nothing of a refused archive is written
    upload(http, "/a-file", b"x")
    r = upload(http, "/a-file/inside.txt", b"x")
    assert r.status_code == 422 and "/a-file is a file" in r.json()["message"]
    assert http.post(N + "/directory", params={"path": "/a-file"}).status_code == 422


def test_budgets(http, monkeypatch):
    monkeypatch.setattr(nsfiles, "MAX_FILE_BYTES", 10)
    r = upload(http, "/big.txt", b"x" * 11)
    assert r.status_code == 413 and "larger than 10 bytes" in r.json()["message"]
    assert http.get(N, params={"path": "/big.txt"}).status_code == 404   # nothing half-written is left
    monkeypatch.setattr(nsfiles, "MAX_FILES", 2)
    assert upload(http, "/1.txt", b"1").status_code == 200
    assert upload(http, "/2.txt", b"2").status_code == 200
    assert upload(http, "/2.txt", b"again").status_code == 200   # an update adds no file
    r = upload(http, "/3.txt", b"3")
    assert r.status_code == 413 and "holds 2 files, the most it may hold" in r.json()["message"]


def test_routes_are_in_the_openapi_document(http):
    doc = http.get("/api/v1/openapi.json").json()
    base = "/api/v1/{tenant}/namespaces/{namespace}/files"
    assert set(doc["paths"][base]) == {"get", "post", "put", "delete"}
    for suffix in ("/stats", "/directory", "/export", "/search", "/revisions"):
        assert base + suffix in doc["paths"]
    assert "fileContent" in doc["paths"][base]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
        "properties"]


def test_execution_file_route_serves_nsfile_uris(http):
    """GET /executions/{id}/file?path=nsfile://… (Kestra 1.x validateFile): the execution's namespace by default."""
    from urllib.parse import quote

    http.deploy("id: f\nnamespace: company.team\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
                "    format: x\n")
    doc = http.run("company.team", "f")
    upload(http, "/data/in.csv", b"a,b\n", namespace="company.team")
    upload(http, "/x.txt", b"other", namespace="other.ns")
    base = f"/api/v1/main/executions/{doc['id']}/file"
    r = http.get(f"{base}?path={quote('nsfile:///data/in.csv', safe='')}")
    assert r.status_code == 200 and r.content == b"a,b\n"
    assert r.headers["content-disposition"] == 'attachment; filename="in.csv"'
    assert http.get(f"{base}/metas?path={quote('nsfile://other.ns/x.txt', safe='')}").json() == {"size": 5}
    r = http.get(f"{base}?path={quote('nsfile:///nope.txt', safe='')}")
    assert r.status_code == 404 and r.json()["message"] == "Not Found: File not found: /nope.txt"
    r = http.get(f"{base}?path={quote('nsfile:///../../x', safe='')}")
    assert r.status_code == 400 and "`..` is not allowed" in r.json()["message"]


def test_zip_budgets(http, monkeypatch):
    monkeypatch.setattr(nsfiles, "MAX_FILE_BYTES", 100)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.txt", "0" * 1000)   # 1000 bytes from a few: over the budget
    r = upload(http, "/bomb.zip", buf.getvalue(), filename="bomb.zip")
    assert r.status_code == 413 and "over 100 bytes" in r.json()["message"]
    assert http.get(N, params={"path": "/bomb.txt"}).status_code == 404
    monkeypatch.setattr(nsfiles, "MAX_FILES", 3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(4):
            z.writestr(f"f{i}.txt", "x")
    r = upload(http, "/many.zip", buf.getvalue(), filename="many.zip")
    assert r.status_code == 413 and "holds 4 files; at most 3 are imported" in r.json()["message"]


def test_a_symlink_in_the_storage_is_not_followed(http, server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    root = server.engine.store.storage.namespace_files.local("io.namespace", "/")
    root.mkdir(parents=True, exist_ok=True)
    (root / "link.txt").symlink_to(secret)
    r = http.get(N, params={"path": "/link.txt"})
    assert r.status_code == 400 and b"TOPSECRET" not in r.content
    assert "it leaves the namespace's files" in r.json()["message"]
    assert http.get(N + "/directory").json() == []          # listed nowhere, exported nowhere
    assert zipfile.ZipFile(io.BytesIO(http.get(N + "/export").content)).namelist() == []


def test_a_namespace_with_a_files_part_is_refused_everywhere(http):
    """`a._files` would be stored where `a` keeps its namespace files (`a/_files/…`, beside its flows' execution
    files): a flow of `a` could read and delete its executions' outputs. Refused as a namespace: flows, files."""
    r = http.post("/api/v1/main/namespaces/company._files/files", params={"path": "/x.txt"},
                  files={"fileContent": ("x.txt", b"x")})
    assert r.status_code == 422 and "`_files` is reserved" in r.json()["message"], r.text
    flow = "id: f\nnamespace: company._files\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    r = http.post("/api/v1/main/flows", content=flow.encode(), headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 422 and "`_files` is reserved" in r.text, r.text
    upload(http, "/a.txt", b"mine", namespace="company")   # the parent namespace works as ever
    assert http.get("/api/v1/main/namespaces/company/files", params={"path": "/a.txt"}).content == b"mine"
