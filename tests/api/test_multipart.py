"""The streaming multipart parser: any chunking gives the same form; files go to disk; problems are errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from kestra_nb.api.errors import ApiError
from kestra_nb.api.multipart import MultipartSink, PayloadTooLarge, boundary_of

BODY = (b'--b\r\nContent-Disposition: form-data; name="filename"\r\n\r\nv1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nW\xc3\xb6rld\r\n'
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nsecond\r\n'
        b'--b\r\nContent-Disposition: form-data; name="empty"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"doc\"; filename*=UTF-8''%C3%A9t%C3%A9.csv\r\n"
        b"Content-Type: text/csv\r\n\r\n"
        b"a\r\n--bb\r\n--b-\r\nlooks like a boundary\r\n\r\n"
        b"\r\n--b--\r\n")
DATA = b"a\r\n--bb\r\n--b-\r\nlooks like a boundary\r\n\r\n"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, len(BODY)])
def test_any_chunking_gives_the_same_form(tmp_path: Path, chunk: int) -> None:
    sink = MultipartSink('multipart/form-data; boundary="b"', lambda: tmp_path / "up")
    (tmp_path / "up").mkdir()
    for i in range(0, len(BODY), chunk):
        sink.feed(BODY[i:i + chunk])
    form = sink.form()
    assert form.fields == {"filename": ["v1"], "name": ["Wörld", "second"]}
    (upload,) = form.files   # the empty file field of a browser form is no upload
    assert (upload.name, upload.filename, upload.size, upload.content_type) == ("doc", "été.csv", len(DATA), "text/csv")
    assert upload.path.read_bytes() == DATA
    sink.close()
    assert not (tmp_path / "up").exists()


def test_no_temporary_directory_without_a_file(tmp_path: Path) -> None:
    made: list[Path] = []
    sink = MultipartSink("multipart/form-data; boundary=b", lambda: made.append(tmp_path) or tmp_path)
    sink.feed(b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--b--\r\n')
    assert sink.form().fields == {"x": ["y"]} and made == []


def test_an_empty_body_is_an_empty_form_and_problems_are_errors(tmp_path: Path) -> None:
    assert MultipartSink("multipart/form-data; boundary=b", lambda: tmp_path).form().fields == {}
    assert boundary_of('multipart/form-data; charset=utf-8; boundary="a b"') == "a b"
    assert boundary_of("multipart/form-data") is None
    with pytest.raises(ApiError, match="without a boundary"):
        MultipartSink("multipart/form-data", lambda: tmp_path).form()
    sink = MultipartSink("multipart/form-data; boundary=b", lambda: tmp_path, field_limit=4)
    sink.feed(b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n12345\r\n--b--\r\n')
    with pytest.raises(PayloadTooLarge):
        sink.form()
    sink = MultipartSink("multipart/form-data; boundary=b", lambda: tmp_path)
    sink.feed(b"--b\r\n" + b"X-Header: v\r\n" * 20 + b"\r\n")
    with pytest.raises(ApiError, match="malformed multipart/form-data body"):
        sink.form()
