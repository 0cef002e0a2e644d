"""A multipart/form-data body parsed as it streams in: file parts go to temporary files, text fields stay in memory.

The handlers feed the request body chunk by chunk (tornado's `stream_request_body`) to a `MultipartSink`,
which runs python-multipart's incremental parser: a file part of any size costs one chunk of memory, its
bytes written to a file under a private directory of the internal storage's disk (so the service can move
it into place with a rename once the execution id is known). Text fields are small by nature and are
capped (`FIELD_LIMIT` in total). A malformed body never raises while it streams: the first problem is
kept and raised by `form()` once the body is complete, as a 400 (or 413) JsonError.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from .errors import ApiError, BadRequest
from .service import Form, Upload

FIELD_LIMIT = 16 * 1024 * 1024     # bytes of text fields in one body; files are not counted


class PayloadTooLarge(ApiError):
    """413: the text fields of a multipart body are larger than the server keeps in memory."""

    status = 413
    reason = "Payload Too Large"


def boundary_of(content_type: str) -> str | None:
    """The `boundary` parameter of a multipart Content-Type (None when there is none)."""
    message = Message()
    message["content-type"] = content_type
    value = message.get_param("boundary")
    if isinstance(value, tuple):   # an RFC 2231 encoded parameter
        value = value[2]
    return str(value) if value else None


def _disposition(raw: bytes) -> tuple[str | None, str | None]:
    """(name, filename) of a part's Content-Disposition header (filename None for a text field)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    message = Message()
    message["content-disposition"] = text
    name = message.get_param("name", header="content-disposition")
    if isinstance(name, tuple):
        name = name[2]
    filename = message.get_filename()
    if filename is None and any(key.lower() in ("filename", "filename*")
                                for key, _ in (message.get_params(header="content-disposition") or [])[1:]):
        filename = ""   # `filename=""`: a file part whose client gave no name
    return (None if name is None else str(name)), filename


class MultipartSink:
    """Receives a multipart/form-data body chunk by chunk; `form()` is the parsed Form once it is complete."""

    def __init__(self, content_type: str, temp_dir: Callable[[], Path], field_limit: int = FIELD_LIMIT) -> None:
        self._temp_dir_factory = temp_dir
        self._dir: Path | None = None
        self._field_limit = field_limit
        self._fields_size = 0
        self._form = Form()
        self._error: ApiError | None = None
        self._received = 0
        self._ended = False
        self._parser: MultipartParser | None = None
        # the part being read
        self._headers: dict[str, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._name: str | None = None
        self._filename: str | None = None
        self._content_type: str | None = None
        self._field: bytearray | None = None
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self._file_size = 0
        boundary = boundary_of(content_type)
        if not boundary:
            self._error = BadRequest("Bad Request: multipart/form-data without a boundary")
            return
        callbacks: Any = {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end}
        try:
            self._parser = MultipartParser(boundary, callbacks)
        except (ValueError, MultipartParseError) as exc:
            self._error = BadRequest(f"Bad Request: invalid multipart/form-data boundary: {exc}")

    # ------------------------------------------------------------------------------------------ feeding

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body (after the first problem, the rest is ignored)."""
        self._received += len(chunk)
        if self._error is not None or self._parser is None:
            return
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            self._fail(BadRequest(f"Bad Request: malformed multipart/form-data body: {exc}"))
        except ApiError as exc:
            self._fail(exc)
        except OSError as exc:
            self._fail(ApiError(f"Internal server error: cannot store the uploaded file ({exc.strerror or exc})",
                                status=500))

    def form(self) -> Form:
        """The parsed body; the first problem found as an ApiError (400 malformed, 413 fields too large)."""
        if self._error is not None:
            raise self._error
        if self._received == 0:
            return Form()   # an empty body is an empty form
        if not self._ended:
            raise BadRequest("Bad Request: malformed multipart/form-data body: it ends before the closing "
                             "boundary")
        return self._form

    def close(self) -> None:
        """Remove the temporary files (those the service moved into the storage are gone already)."""
        self._close_file()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _fail(self, error: ApiError) -> None:
        self._error = error
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # ---------------------------------------------------------------------------------------- callbacks

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = self._filename = self._content_type = None
        self._field = None
        self._file_path = None
        self._file_size = 0

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").strip().lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition")
        if disposition is None:
            raise BadRequest("Bad Request: malformed multipart/form-data body: a part has no Content-Disposition")
        self._name, self._filename = _disposition(disposition)
        if not self._name:
            raise BadRequest("Bad Request: malformed multipart/form-data body: a part has no name")
        content_type = self._headers.get("content-type")
        self._content_type = content_type.decode("latin-1").strip() if content_type else None
        if self._filename is None:
            self._field = bytearray()
            return
        if self._dir is None:
            self._dir = self._temp_dir_factory()
        self._file_path = self._dir / f"part-{len(self._form.files)}"
        self._file = open(self._file_path, "wb")  # noqa: SIM115 - closed by _part_end or close()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            self._file_size += end - start
        elif self._field is not None:
            self._fields_size += end - start
            if self._fields_size > self._field_limit:
                raise PayloadTooLarge(
                    f"Payload too large: the text fields of a multipart body are limited to "
                    f"{self._field_limit // (1024 * 1024)} MB in total; send large values as file parts")
            self._field += data[start:end]

    def _part_end(self) -> None:
        name = self._name or ""
        if self._file is not None and self._file_path is not None:
            self._close_file()
            if self._filename or self._file_size:   # (a browser form's file field left empty sends neither)
                self._form.files.append(Upload(name, self._filename or "", self._file_path, self._file_size,
                                               self._content_type))
        elif self._field is not None:
            try:
                value = self._field.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(f"Invalid entity: the form field `{name}` is not UTF-8 text", status=422) from None
            self._form.fields.setdefault(name, []).append(value)
        self._field = None

    def _end(self) -> None:
        self._ended = True


__all__ = ["FIELD_LIMIT", "MultipartSink", "PayloadTooLarge", "boundary_of"]
