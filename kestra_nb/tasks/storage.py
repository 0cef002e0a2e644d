"""Storage tasks (spec §5.21): storage.Write, Concat, Split, Size, Delete, PurgeCurrentExecutionFiles.

They work on `kestra:///` files of the internal storage only: every URI goes through
`InternalStorage.path`, which refuses other schemes and anything leaving the storage. `split_file` is
the streaming splitter behind `Split` (ForEachItem uses it too): it reads the source in chunks and never
holds more than one batch's worth of a row in memory. File work runs in a thread, off the engine's loop.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ..errors import IllegalArgumentError, NotFoundError, TaskFailure
from ..model.ids import new_id
from ..store.storage import InternalStorage, execution_prefix
from .base import Prop, Task, TaskContext, render_bool

_CHUNK = 1 << 16
_MAX_PIECE = 1 << 20  # rows longer than this are carried in pieces (bounded memory)
_UNITS = {"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)


def parse_size(value: str | int, prop: str = "bytes") -> int:
    """A size in bytes from an int or Kestra's size text (`10MB`, `1KB`, `512B`, 1 KB = 1024 bytes)."""
    if isinstance(value, bool):
        raise IllegalArgumentError(f"Invalid `{prop}` {value!r}: expected a size such as 1024, \"10KB\" or \"5MB\"")
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise IllegalArgumentError(
                f"Invalid `{prop}` `{value}`: expected a size such as 1024, \"10KB\" or \"5MB\"")
        size = int(m.group(1)) * _UNITS[(m.group(2) or "").upper()]
    if size < 1:
        raise IllegalArgumentError(f"Invalid `{prop}` `{value}`: the size must be at least 1 byte")
    return size


def _pieces(f: BinaryIO, sep: bytes, max_piece: int) -> Iterator[tuple[bytes, bool]]:
    """The rows of a stream, separator kept, as (piece, ends_row); rows over `max_piece` come in pieces."""
    buf = b""
    start = 0
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            break
        buf = buf[start:] + chunk
        start = 0
        while True:
            j = buf.find(sep, start)
            if j >= 0 and j + len(sep) - start <= max_piece + len(sep):
                yield buf[start:j + len(sep)], True
                start = j + len(sep)
                continue
            if len(buf) - start >= max_piece + len(sep):  # no separator within reach: cut the row
                yield buf[start:start + max_piece], False
                start += max_piece
                continue
            break
    rest = buf[start:]
    if rest:
        yield rest, True


class _Batches:
    """Writes batch files one after the other into temporary files and moves each to target(i)."""

    def __init__(self, storage: InternalStorage, target: Callable[[int], str], limit: int | None = None) -> None:
        self.storage = storage
        self.target = target
        self.limit = limit
        self.dir = storage.temp_dir(prefix="split-")
        self.uris: list[str] = []
        self.out: BinaryIO | None = None
        self.size = 0
        self.rows = 0

    def write(self, piece: bytes) -> None:
        if self.out is None:
            if self.limit is not None and len(self.uris) >= self.limit:
                raise IllegalArgumentError(f"The split gives more than {self.limit} batches, the most allowed: "
                                           "make the batches larger")
            self.out = open(self.dir / f"{len(self.uris)}.part", "wb")
            self.size = self.rows = 0
        self.out.write(piece)
        self.size += len(piece)

    def close(self) -> None:
        if self.out is None:
            return
        local = self.out.name
        self.out.close()
        self.out = None
        uri = self.target(len(self.uris))
        self.storage.move_in(uri, local)
        self.uris.append(uri)

    def cleanup(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        shutil.rmtree(self.dir, ignore_errors=True)


def split_file(storage: InternalStorage, uri: str, *, rows: int | None = None, bytes: str | int | None = None,
               partitions: int | None = None, separator: str = "\n",
               target: Callable[[int], str], max_batches: int | None = None) -> list[str]:
    """Split a stored file into batches by rows (lines separated by `separator`), by size (`bytes`: an int or
    Kestra's size text like "10MB", "1KB"), or into `partitions` files of about equal rows; store batch i at
    target(i); return the batch URIs in order. Exactly one of rows/bytes/partitions; streaming (bounded
    memory); an empty file gives [].

    Rows keep their separator; a size split never cuts inside a row unless that row alone exceeds the size.
    A file with fewer rows than `partitions` gives one batch per row (no empty batches). More than
    `max_batches` batches is an IllegalArgumentError (the ones written are removed).
    """
    given = [name for name, v in (("rows", rows), ("bytes", bytes), ("partitions", partitions)) if v is not None]
    if len(given) != 1:
        raise IllegalArgumentError(
            "Invalid split: set exactly one of `rows`, `bytes` or `partitions`"
            + (f", got {', '.join(f'`{g}`' for g in given)}" if given else ""))
    for name, value in (("rows", rows), ("partitions", partitions)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise IllegalArgumentError(f"Invalid `{name}` {value!r}: expected an integer of at least 1")
    if not isinstance(separator, str) or not separator:
        raise IllegalArgumentError("Invalid `separator`: expected a non-empty string")
    size = parse_size(bytes) if bytes is not None else None
    sep = separator.encode("utf-8")
    path = storage.path(uri)
    if not path.is_file():
        raise NotFoundError(f"File not found: {uri}")

    base, extra = rows or 0, 0  # batch i holds base rows, one more while i < extra
    if partitions is not None:
        with open(path, "rb") as f:
            total = sum(1 for _, complete in _pieces(f, sep, _MAX_PIECE) if complete)
        base, extra = divmod(total, partitions)

    batches = _Batches(storage, target, max_batches)
    try:
        with open(path, "rb") as f:
            if size is not None:
                at_row_start = True
                for piece, complete in _pieces(f, sep, size):
                    if batches.out is not None and (
                            (at_row_start and batches.size + len(piece) > size)
                            or (not at_row_start and batches.size >= size)):
                        batches.close()
                    batches.write(piece)
                    at_row_start = complete
            else:
                for piece, complete in _pieces(f, sep, _MAX_PIECE):
                    batches.write(piece)
                    if complete:
                        batches.rows += 1
                        if batches.rows >= base + (1 if len(batches.uris) < extra else 0):
                            batches.close()
        batches.close()
        return batches.uris
    except BaseException:
        for done in batches.uris:
            storage.delete(done)
        raise
    finally:
        batches.cleanup()


# ------------------------------------------------------------------------------------------------ tasks


def check_uri(ctx: TaskContext, uri: Any, prop: str) -> Path:
    """The local path of a `kestra:///` URI property; a TaskFailure naming the property otherwise."""
    if not isinstance(uri, str) or not uri.strip():
        raise TaskFailure(f"Invalid `{prop}`: expected a kestra:/// internal storage URI, got {uri!r}")
    try:
        return ctx.storage.path(uri.strip())  # type: ignore[attr-defined]
    except IllegalArgumentError as exc:
        raise TaskFailure(f"Invalid `{prop}`: {exc.message}") from None


def _extension(ctx: TaskContext, raw: Any, default: str) -> str:
    ext = ctx.render_string(raw, "extension") if raw is not None else default
    if ext and not ext.startswith("."):
        ext = "." + ext
    if "/" in ext or "\\" in ext or "\x00" in ext:
        raise TaskFailure(f"Invalid `extension` `{ext}`: expected a file extension such as .txt")
    return ext



def _render_int(ctx: TaskContext, raw: Any, prop: str) -> int | None:
    if raw is None:
        return None
    value = raw if isinstance(raw, int) and not isinstance(raw, bool) else ctx.render_string(raw, prop).strip()
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TaskFailure(f"Invalid `{prop}` `{value}`: expected an integer of at least 1") from None
    if number < 1:
        raise TaskFailure(f"Invalid `{prop}` `{value}`: expected an integer of at least 1")
    return number


class Write(Task):
    """Write `content` to a new internal storage file (name ending with `extension`) → `uri`."""

    type = "io.kestra.plugin.core.storage.Write"
    props = (Prop("content", "string", required=True), Prop("extension", "string", default=".ion"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        raw = self.prop("content")
        if raw is None:
            raise TaskFailure("`content` is required")
        content = ctx.render_string(raw, "content")
        name = new_id() + _extension(ctx, self.prop("extension"), ".ion")
        uri = await asyncio.to_thread(ctx.put_file, name, content.encode("utf-8"))  # type: ignore[attr-defined]
        return {"uri": uri}


class Concat(Task):
    """Concatenate `files` (a list, or a JSON array text, of URIs), `separator` after each → `uri`."""

    type = "io.kestra.plugin.core.storage.Concat"
    props = (Prop("files", "any", required=True), Prop("separator", "string"),
             Prop("extension", "string", default=".tmp"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        files = _uri_list(ctx, self.prop("files"), "files")
        separator = self.prop("separator")
        sep = ctx.render_string(separator, "separator").encode("utf-8") if separator is not None else b""
        paths = [check_uri(ctx, uri, f"files[{i}]") for i, uri in enumerate(files)]
        for uri, path in zip(files, paths):
            if not path.is_file():
                raise TaskFailure(f"Invalid `files`: file not found: {uri}")
        name = "concat" + _extension(ctx, self.prop("extension"), ".tmp")

        def concat() -> str:
            tmp = ctx.working_dir()  # type: ignore[attr-defined]
            try:
                local = tmp / name
                with open(local, "wb") as out:
                    for path in paths:
                        with open(path, "rb") as src:
                            shutil.copyfileobj(src, out, _CHUNK)
                        if sep:
                            out.write(sep)
                return ctx.put_file(name, local)  # type: ignore[attr-defined]
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        return {"uri": await asyncio.to_thread(concat)}


def _uri_list(ctx: TaskContext, raw: Any, prop: str) -> list[str]:
    rendered = ctx.render(raw, prop)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            raise TaskFailure(f"Invalid `{prop}`: expected a list of URIs or a JSON array of URIs, "
                              f"got: {rendered}") from None
    if not isinstance(rendered, list) or not all(isinstance(u, str) for u in rendered):
        raise TaskFailure(f"Invalid `{prop}`: expected a list of URIs or a JSON array of URIs")
    return rendered


class Split(Task):
    """Split the file `from` by `rows`, `bytes` (size text like 10MB) or into `partitions` → `uris`."""

    type = "io.kestra.plugin.core.storage.Split"
    props = (Prop("from", "string", required=True), Prop("bytes", "string"), Prop("partitions", "int"),
             Prop("rows", "int"), Prop("separator", "string", default="\n"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        source = ctx.render_string(self.prop("from"), "from").strip()
        path = check_uri(ctx, source, "from")
        if not path.is_file():
            raise TaskFailure(f"Invalid `from`: file not found: {source}")
        bytes_ = ctx.render_string(self.prop("bytes"), "bytes") if self.prop("bytes") is not None else None
        rows = _render_int(ctx, self.prop("rows"), "rows")
        partitions = _render_int(ctx, self.prop("partitions"), "partitions")
        separator = ctx.render_string(self.prop("separator"), "separator")
        suffix = PurePosixPath(path.name).suffix
        tr = ctx.task_run
        storage: InternalStorage = ctx.storage  # type: ignore[attr-defined]

        def target(i: int) -> str:
            return storage.task_uri(tr.namespace, tr.flow_id, tr.execution_id, tr.task_id, tr.id,
                                    f"split-{i}{suffix}")

        try:
            uris = await asyncio.to_thread(split_file, storage, source, rows=rows, bytes=bytes_,
                                           partitions=partitions, separator=separator, target=target)
        except IllegalArgumentError as exc:
            raise TaskFailure(exc.message) from None
        return {"uris": uris}


class Size(Task):
    """The size in bytes of the file `uri` → `size`."""

    type = "io.kestra.plugin.core.storage.Size"
    instant = True
    props = (Prop("uri", "string", required=True),)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri = ctx.render_string(self.prop("uri"), "uri").strip()
        check_uri(ctx, uri, "uri")
        try:
            return {"size": ctx.storage.size(uri)}  # type: ignore[attr-defined]
        except NotFoundError:
            raise TaskFailure(f"Invalid `uri`: file not found: {uri}") from None


class Delete(Task):
    """Delete the file `uri` → `uri`, `deleted`; a missing file fails only with `errorOnMissing`."""

    type = "io.kestra.plugin.core.storage.Delete"
    instant = True
    props = (Prop("uri", "string", required=True), Prop("errorOnMissing", "bool", default=False))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri = ctx.render_string(self.prop("uri"), "uri").strip()
        check_uri(ctx, uri, "uri")
        deleted = ctx.storage.delete(uri)  # type: ignore[attr-defined]
        if not deleted and render_bool(ctx, self.prop("errorOnMissing"), "errorOnMissing", False):
            raise TaskFailure(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


class PurgeCurrentExecutionFiles(Task):
    """Delete every internal storage file of the current execution (inputs and task files) → `uris`."""

    type = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases = ("io.kestra.plugin.core.storage.PurgeExecution", "io.kestra.core.tasks.storages.PurgeExecution")
    props = ()

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        ex = ctx.execution
        storage: InternalStorage = ctx.storage  # type: ignore[attr-defined]
        prefix = "kestra://" + execution_prefix(ex.namespace, ex.flow_id, ex.id)

        def purge() -> list[str]:
            uris = list(storage.list(prefix))
            return [uri for uri in uris if storage.delete(uri)]

        return {"uris": await asyncio.to_thread(purge)}


__all__ = ["Concat", "Delete", "PurgeCurrentExecutionFiles", "Size", "Split", "Write", "check_uri", "parse_size",
           "split_file"]
