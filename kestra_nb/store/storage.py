"""Internal storage: the files of executions (inputs, task outputs) behind `kestra:///` URIs (spec §2.12).

Files live under one root directory (`<home>/storage` for the SQLite store, a temporary directory for
the memory store), laid out as Kestra lays them out:

    kestra:///<ns as path>/<flowId slug>/executions/<execId>/inputs/<inputId>/<filename>
    kestra:///<ns as path>/<flowId slug>/executions/<execId>/tasks/<taskId slug>/<taskRunId>/<filename>

`path(uri)` is the one gate from a URI to a local path: it refuses other schemes and anything that
would leave the root (`..`, absolute parts, NUL bytes), so no caller can be talked into reading or
writing outside the storage. Writes go to a temporary file renamed into place, so a reader never sees
half a file and a crash leaves no truncated one.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Iterable
from urllib.parse import quote, unquote

from ..errors import IllegalArgumentError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from .nsfiles import NamespaceFiles

SCHEME = "kestra://"
UPLOAD_LIMIT = 10 * 1024 ** 3   # bytes of one uploaded file (a multipart body, a namespace file)
_COPY_CHUNK = 1 << 20


def slugify(text: str) -> str:
    """Kestra's slug of a flow or task id in storage paths: lower case, runs of other characters as `-`."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "flow"


def safe_filename(name: str | None) -> str:
    """The last path component of a file name, without anything that could escape its folder."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    return "" if base in (".", "..") else base


def execution_prefix(namespace: str, flow_id: str, execution_id: str) -> str:
    """The storage prefix of an execution's files, `/<ns as path>/<flowId slug>/executions/<id>/`."""
    return "/" + "/".join([*namespace.split("."), slugify(flow_id), "executions", execution_id]) + "/"


def _uri(path: str) -> str:
    return SCHEME + quote(path, safe="/._-~=+,;:@!$&'()*")


class InternalStorage:
    """The `kestra:///` files of one store, under `root`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -------------------------------------------------------------------------------------- URIs

    @staticmethod
    def input_uri(namespace: str, flow_id: str, execution_id: str, input_id: str, filename: str) -> str:
        """The URI of a FILE input's upload."""
        name = safe_filename(filename) or input_id
        return _uri(f"{execution_prefix(namespace, flow_id, execution_id)}inputs/{input_id}/{name}")

    @staticmethod
    def task_uri(namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str,
                 filename: str) -> str:
        """The URI of a file a task run produced."""
        name = safe_filename(filename) or "file"
        return _uri(f"{execution_prefix(namespace, flow_id, execution_id)}tasks/{slugify(task_id)}/"
                    f"{task_run_id}/{name}")

    @staticmethod
    def uri_path(uri: str) -> str:
        """The storage path of a `kestra:///` URI (`/a/b/c`); IllegalArgumentError for anything else."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise IllegalArgumentError(f"Invalid internal storage URI `{uri}`: expected `kestra:///…`")
        raw = unquote(uri[len(SCHEME):])
        if "\x00" in raw or "\\" in raw:
            raise IllegalArgumentError(f"Invalid internal storage URI `{uri}`")
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise IllegalArgumentError(f"Invalid internal storage URI `{uri}`: it must name a file inside the storage")
        return "/" + "/".join(parts)

    def path(self, uri: str) -> Path:
        """The local file behind a URI, guaranteed to be inside the root."""
        rel = PurePosixPath(self.uri_path(uri).lstrip("/"))
        local = self.root.joinpath(*rel.parts)
        root = self.root.resolve()
        resolved = local.resolve()
        if resolved != root and root not in resolved.parents:
            raise IllegalArgumentError(f"Invalid internal storage URI `{uri}`: it leaves the storage")
        return local

    # ------------------------------------------------------------------------------------- files

    def put(self, uri: str, source: bytes | str | os.PathLike[str] | BinaryIO) -> str:
        """Store bytes, a local file (by path) or a readable binary stream at `uri`; returns the URI."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, (bytes, bytearray, memoryview)):
                    out.write(source)
                elif isinstance(source, (str, os.PathLike)):
                    with open(source, "rb") as src:
                        shutil.copyfileobj(src, out, _COPY_CHUNK)
                else:
                    shutil.copyfileobj(source, out, _COPY_CHUNK)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return uri

    def move_in(self, uri: str, local: str | os.PathLike[str]) -> str:
        """Move a local file (e.g. a finished upload) to `uri` without copying when on the same disk."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, target)
        except OSError:
            self.put(uri, local)
            Path(local).unlink(missing_ok=True)
        return uri

    def open(self, uri: str) -> BinaryIO:
        """Open the file for reading; NotFoundError when there is none."""
        path = self.path(uri)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"File not found: {uri}") from None

    def read_bytes(self, uri: str) -> bytes:
        """The whole file (for small files: expressions, tasks that need the content)."""
        with self.open(uri) as f:
            return f.read()

    def exists(self, uri: str) -> bool:
        """Whether a file is stored at `uri`."""
        return self.path(uri).is_file()

    def size(self, uri: str) -> int:
        """The file's size in bytes; NotFoundError when there is none."""
        path = self.path(uri)
        try:
            if path.is_file():
                return path.stat().st_size
        except OSError:
            pass
        raise NotFoundError(f"File not found: {uri}")

    def delete(self, uri: str) -> bool:
        """Delete the file; False when there was none."""
        path = self.path(uri)
        try:
            path.unlink()
            return True
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False

    def list(self, prefix_uri: str) -> Iterable[str]:
        """The URIs of the files under a prefix, sorted."""
        base = self.path(prefix_uri)
        if not base.is_dir():
            return []
        root = self.root
        return sorted(_uri("/" + p.relative_to(root).as_posix()) for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(".put-"))

    def delete_execution(self, namespace: str, flow_id: str, execution_id: str) -> int:
        """Remove every file of an execution (its inputs and its task runs' files); how many there were."""
        prefix = execution_prefix(namespace, flow_id, execution_id)
        base = self.root.joinpath(*prefix.strip("/").split("/"))
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base, ignore_errors=True)
        return count

    @property
    def namespace_files(self) -> NamespaceFiles:
        """The namespace files kept on this storage (`store.nsfiles`)."""
        from .nsfiles import NamespaceFiles

        return NamespaceFiles(self)

    def temp_dir(self, prefix: str = "work-") -> Path:
        """A new private directory on the storage's disk (uploads in progress, task working dirs)."""
        tmp = self.root / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))


__all__ = ["InternalStorage", "SCHEME", "UPLOAD_LIMIT", "execution_prefix", "safe_filename", "slugify"]
