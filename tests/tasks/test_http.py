"""http.Request and http.Download (spec §5.19) against a real HTTP server on the loopback interface."""
from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kestra_nb.model.execution import Level
from kestra_nb.tasks.http import download_filename
from kestra_nb.tasks.registry import registry

BIG = b"".join(f"line {i:08d}\n".encode() for i in range(200_000))  # 2.8 MB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass

    def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == "/json":
            self._send(200, b'{"a": 1, "b": [true, null]}', "application/json", {"X-Multi": "one"})
        elif path == "/multi":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.end_headers()
            self.wfile.write(b"ok")
        elif path == "/echo":
            self._send(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"),
            }).encode(), "application/json")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"nope")
        elif path == "/binary":
            self._send(200, b"\xff\xfe\x00\x80binary", "application/octet-stream")
        elif path == "/latin1":
            self._send(200, "café".encode("latin-1"), "text/plain; charset=ISO-8859-1")
        elif path == "/empty":
            self._send(200, b"")
        elif path == "/report":
            self._send(200, b"a,b\n1,2\n", "text/csv", {"Content-Disposition": 'attachment; filename="report.csv"'})
        elif path == "/files/data.bin":
            self._send(200, b"\x00\x01\x02")
        elif path == "/big":
            self._send(200, BIG, "text/plain")
        elif path == "/redirect":
            self._send(302, b"", headers={"Location": "/json"})
        elif path == "/auth":
            basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
            if self.headers.get("Authorization") in (basic, "Bearer tok3n"):
                self._send(200, b"welcome")
            else:
                self._send(401, b"who are you", headers={"WWW-Authenticate": 'Basic realm="x"'})
        elif path == "/slow":
            self.release.wait(30)  # until the module is done: the client's read timeout fires first
            self._send(200, b"late")
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    release = threading.Event()
    handler = type("H", (Handler,), {"release": release})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused, deterministically."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def flow(task: str) -> str:
    return "id: http_flow\nnamespace: company.team\ntasks:\n  - id: t\n" + task


def errors(engine: Any, ex: Any) -> list[str]:
    return [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]


def out(ex: Any, task_id: str = "t") -> dict[str, Any]:
    return next(tr.outputs for tr in ex.task_run_list if tr.task_id == task_id)


REQ = "    type: io.kestra.plugin.core.http.Request\n"
DL = "    type: io.kestra.plugin.core.http.Download\n"


def test_get_returns_the_body_as_text_and_headers_as_lists(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/json\n")
                    + "  - id: use\n    type: io.kestra.plugin.core.debug.Return\n"
                      "    format: \"{{ json(outputs.t.body).b[0] }}\"\n")
    assert ex.state == "SUCCESS", errors(engine, ex)
    o = out(ex)
    assert o["uri"] == f"{server}/json"
    assert o["code"] == 200
    assert o["body"] == '{"a": 1, "b": [true, null]}'  # text, never decoded
    assert o["headers"]["x-multi"] == ["one"]
    assert o["headers"]["content-type"] == ["application/json"]
    assert out(ex, "use") == {"value": "true"}


def test_repeated_response_headers_are_kept_as_a_list(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/multi\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["headers"]["set-cookie"] == ["a=1", "b=2"]


def test_post_body_defaults_to_json_content_type_and_sends_headers(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/echo?x=1\n    method: POST\n"
                         "    body: '{{ {\"k\": 1 + 1} | toJson }}'\n"
                         "    headers:\n      X-Token: abc\n      X-Flow: '{{ flow.id }}'\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    echo = json.loads(out(ex)["body"])
    assert echo["method"] == "POST" and echo["path"] == "/echo?x=1"
    assert echo["body"] == '{"k":2}'
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["x-token"] == "abc"
    assert echo["headers"]["x-flow"] == "http_flow"


def test_put_with_explicit_content_type(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/echo\n    method: put\n    contentType: text/plain\n"
                         "    body: hello\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    echo = json.loads(out(ex)["body"])
    assert (echo["method"], echo["body"], echo["headers"]["content-type"]) == ("PUT", "hello", "text/plain")


def test_form_data_urlencoded(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/echo\n    method: POST\n"
                         "    formData:\n      name: a b\n      n: 3\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    echo = json.loads(out(ex)["body"])
    assert echo["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert echo["body"] == "name=a+b&n=3"


def test_form_data_multipart_uploads_storage_files(engine: Any, server: str) -> None:
    yaml = ("id: http_flow\nnamespace: company.team\ntasks:\n"
            "  - id: w\n    type: io.kestra.plugin.core.storage.Write\n    content: file-content\n"
            "    extension: .txt\n"
            "  - id: t\n" + REQ + f"    uri: {server}/echo\n    method: POST\n    contentType: multipart/form-data\n"
            "    formData:\n      field: value\n      upload: '{{ outputs.w.uri }}'\n"
            "      named:\n        name: renamed.csv\n        content: '{{ outputs.w.uri }}'\n")
    ex = engine.run(yaml)
    assert ex.state == "SUCCESS", errors(engine, ex)
    echo = json.loads(out(ex)["body"])
    assert echo["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    body = echo["body"]
    assert 'name="field"\r\n\r\nvalue' in body
    assert 'name="upload"; filename="' in body and ".txt\"" in body
    assert 'name="named"; filename="renamed.csv"' in body
    assert body.count("file-content") == 2


def test_multipart_with_fields_only_is_still_multipart(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/echo\n    method: POST\n    contentType: multipart/form-data\n"
                         "    formData:\n      a: '1'\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    echo = json.loads(out(ex)["body"])
    assert echo["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="a"\r\n\r\n1' in echo["body"]


def test_status_over_400_fails_unless_allowed(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/status/404\n"))
    assert ex.state == "FAILED"
    assert any("Failed http request with response code '404'" in m for m in errors(engine, ex)), errors(engine, ex)
    ex = engine.run(flow(REQ + f"    uri: {server}/status/503\n    options:\n      allowFailed: true\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert (out(ex)["code"], out(ex)["body"]) == (503, "nope")
    ex = engine.run(flow(REQ + f"    uri: {server}/status/500\n    allowFailed: true\n"))  # deprecated switch
    assert ex.state == "SUCCESS", errors(engine, ex)


def test_allowed_response_codes(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/status/404\n    options:\n      allowedResponseCodes: [200, 404]\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    ex = engine.run(flow(REQ + f"    uri: {server}/status/201\n    options:\n      allowedResponseCodes: [200]\n"))
    assert ex.state == "FAILED"
    assert any("response code '201' (allowed: 200)" in m for m in errors(engine, ex)), errors(engine, ex)


def test_binary_body_fails_and_points_to_download(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/binary\n"))
    assert ex.state == "FAILED"
    assert any("Illegal unicode" in m and "io.kestra.plugin.core.http.Download" in m for m in errors(engine, ex))


def test_charset_of_the_response_is_used(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/latin1\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["body"] == "café"


def test_empty_body_has_no_body_output(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/empty\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex).get("body") is None and out(ex)["code"] == 200


def test_redirects_are_followed_unless_disabled(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/redirect\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["code"] == 200 and out(ex)["body"].startswith('{"a"')
    ex = engine.run(flow(REQ + f"    uri: {server}/redirect\n    options:\n      followRedirects: false\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["code"] == 302 and out(ex)["headers"]["location"] == ["/json"]


def test_basic_and_bearer_auth(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/auth\n    options:\n      auth:\n        type: BASIC\n"
                         "        username: alice\n        password: s3cret\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["body"] == "welcome"
    ex = engine.run(flow(REQ + f"    uri: {server}/auth\n    options:\n      auth:\n        type: BEARER\n"
                         "        token: tok3n\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    ex = engine.run(flow(REQ + f"    uri: {server}/auth\n"))
    assert ex.state == "FAILED"
    assert any("'401'" in m for m in errors(engine, ex))


def test_read_timeout(engine: Any, server: str) -> None:
    ex = engine.run(flow(REQ + f"    uri: {server}/slow\n    options:\n      readTimeout: PT0.2S\n"))
    assert ex.state == "FAILED"
    assert any("timed out" in m and "options.readTimeout" in m for m in errors(engine, ex)), errors(engine, ex)
    ex = engine.run(flow(REQ + f"    uri: {server}/slow\n"
                         "    options:\n      timeout:\n        readIdleTimeout: PT0.2S\n"))
    assert ex.state == "FAILED"  # Kestra's older nested form
    assert any("timed out" in m for m in errors(engine, ex)), errors(engine, ex)


def test_refused_connection_is_a_clear_error(engine: Any, refused_port: int) -> None:
    ex = engine.run(flow(REQ + f"    uri: http://127.0.0.1:{refused_port}/x\n"))
    assert ex.state == "FAILED"
    assert any(f"Unable to connect to `http://127.0.0.1:{refused_port}/x`" in m for m in errors(engine, ex)), \
        errors(engine, ex)


@pytest.mark.parametrize("props, message", [
    ("    uri: ftp://127.0.0.1/x\n", "Invalid `uri` `ftp://127.0.0.1/x`: expected an http:// or https:// URL"),
    ("    uri: not a url\n", "Invalid `uri` `not a url`"),
    ("    uri: 'http://[::1/x'\n", "Invalid `uri` `http://[::1/x`: expected an http:// or https:// URL"),
    ("    uri: 'http://127.0.0.1:99999/x'\n", "Invalid `uri` `http://127.0.0.1:99999/x`"),
    ("    uri: '{server}/json'\n    method: FETCH\n", "Invalid `method` `FETCH`: expected one of GET, POST"),
    ("    uri: '{server}/json'\n    options:\n      readTimeout: soon\n",
     "Invalid `options.readTimeout` `soon`: expected an ISO-8601 duration"),
    ("    uri: '{server}/json'\n    options:\n      connectTimeout: PT0S\n",
     "Invalid `options.connectTimeout` `PT0S`: expected a positive duration"),
    ("    uri: '{server}/json'\n    options:\n      allowFailed: maybe\n",
     "Invalid `options.allowFailed` `maybe`: expected true or false"),
    ("    uri: '{server}/json'\n    options:\n      followRedirects: often\n",
     "Invalid `options.followRedirects` `often`: expected true or false"),
    ("    uri: '{server}/json'\n    options:\n      auth:\n        type: DIGEST\n",
     "Invalid `options.auth`: expected {type: BASIC"),
    ("    uri: '{server}/json'\n    options:\n      auth:\n        type: BASIC\n",
     "Invalid `options.auth`: BASIC authentication needs a `username`"),
    ("    uri: '{server}/json'\n    options:\n      proxy: {{}}\n", "Invalid `options`: unsupported option(s) proxy"),
    ("    uri: '{server}/json'\n    options:\n      timeout:\n        writeTimeout: PT1S\n",
     "Invalid `options.timeout`: expected a map of connectTimeout and readIdleTimeout"),
    ("    uri: '{server}/json'\n    sslOptions:\n      keyStore: x\n",
     "Invalid `sslOptions`: only `insecureTrustAllCertificates` is supported"),
    ("    uri: '{server}/json'\n    options:\n      defaultCharset: klingon\n",
     "Invalid `options.defaultCharset` `klingon`"),
    ("    uri: '{server}/json'\n    options:\n      allowedResponseCodes: [ok]\n",
     "Invalid `options.allowedResponseCodes`"),
    ("    uri: '{server}/echo'\n    method: POST\n    body: x\n    formData:\n      a: b\n",
     "set either `body` or `formData`, not both"),
    ("    uri: '{server}/echo'\n    method: POST\n    contentType: multipart/form-data\n    formData:\n"
     "      f: kestra:///company/team/other/x.txt\n", "Invalid `formData.f`: file not found"),
    ("    uri: '{server}/echo'\n    method: POST\n    contentType: multipart/form-data\n    formData:\n"
     "      f: kestra:///../../etc/passwd\n", "Invalid `formData.f`: Invalid internal storage URI"),
])
def test_bad_inputs_fail_with_a_clear_message(engine: Any, server: str, props: str, message: str) -> None:
    ex = engine.run(flow(REQ + props.format(server=server)))
    assert ex.state == "FAILED"
    assert any(message in m for m in errors(engine, ex)), errors(engine, ex)


# ------------------------------------------------------------------------------------------- Download


def test_download_streams_to_storage_with_the_disposition_name(engine: Any, server: str) -> None:
    ex = engine.run(flow(DL + f"    uri: {server}/report\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    o = out(ex)
    assert o["code"] == 200 and o["length"] == 8
    assert o["uri"].startswith(f"kestra:///company/team/http_flow/executions/{ex.id}/tasks/t/")
    assert o["uri"].endswith("/report.csv")
    assert o["headers"]["content-type"] == ["text/csv"]
    assert engine.store.storage.read_bytes(o["uri"]) == b"a,b\n1,2\n"


def test_download_names_the_file_after_the_url_and_keeps_binary_bytes(engine: Any, server: str) -> None:
    ex = engine.run(flow(DL + f"    uri: {server}/files/data.bin\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["uri"].endswith("/data.bin")
    assert engine.store.storage.read_bytes(out(ex)["uri"]) == b"\x00\x01\x02"
    ex = engine.run(flow(DL + f"    uri: {server}/files/data.bin\n    saveAs: ../mine.bin\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["uri"].endswith("/mine.bin")


def test_download_big_file(engine: Any, server: str) -> None:
    ex = engine.run(flow(DL + f"    uri: {server}/big\n")
                    + "  - id: size\n    type: io.kestra.plugin.core.storage.Size\n    uri: '{{ outputs.t.uri }}'\n")
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["length"] == len(BIG) == out(ex, "size")["size"]
    assert engine.store.storage.read_bytes(out(ex)["uri"]) == BIG


def test_download_failures(engine: Any, server: str, refused_port: int) -> None:
    ex = engine.run(flow(DL + f"    uri: {server}/status/404\n"))
    assert ex.state == "FAILED"
    assert any("Failed http request with response code '404'" in m for m in errors(engine, ex))
    ex = engine.run(flow(DL + f"    uri: {server}/empty\n"))
    assert ex.state == "FAILED"
    assert any("No response from server" in m for m in errors(engine, ex))
    ex = engine.run(flow(DL + f"    uri: {server}/empty\n    failOnEmptyResponse: false\n"))
    assert ex.state == "SUCCESS", errors(engine, ex)
    assert out(ex)["length"] == 0
    ex = engine.run(flow(DL + f"    uri: {server}/big\n    options:\n      maxContentLength: 1000\n"))
    assert ex.state == "FAILED"
    assert any("bigger than options.maxContentLength (1000 bytes)" in m for m in errors(engine, ex))
    ex = engine.run(flow(DL + f"    uri: http://127.0.0.1:{refused_port}/f\n"))
    assert ex.state == "FAILED"
    assert any("Unable to connect" in m for m in errors(engine, ex))


def test_download_filename() -> None:
    assert download_filename('attachment; filename="a b.csv"', "http://h/x") == "a b.csv"
    assert download_filename("attachment; filename*=UTF-8''caf%C3%A9.txt", "http://h/x") == "café.txt"
    assert download_filename('attachment; filename="../../etc/passwd"', "http://h/x") == "passwd"
    assert download_filename(None, "http://h/dir/file%20name.zip?x=1") == "file name.zip"
    assert download_filename(None, "http://h/") == "download"


def test_legacy_names_resolve() -> None:
    assert registry.canonical("io.kestra.plugin.fs.http.Request") == "io.kestra.plugin.core.http.Request"
    assert registry.canonical("io.kestra.plugin.fs.http.Download") == "io.kestra.plugin.core.http.Download"
