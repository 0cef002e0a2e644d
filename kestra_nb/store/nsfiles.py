"""Namespace files: the files a namespace holds (scripts, SQL, configuration), on the internal storage.

Laid out as Kestra lays them out, so `kestra:///<ns as path>/_files/<path>` is the latest content of the
namespace file `<path>`; older revisions are kept beside it, under `/<ns as path>/_files.revisions/<path>/<n>`
(the newest `MAX_REVISIONS`), as Kestra 1.x versions namespace files. A path is written as Kestra's API and
tasks write it (`/scripts/etl.py`, or `scripts/etl.py`): relative to the namespace's root, whatever the
leading slash; `..`, NUL and control characters, backslashes, over-long names and paths nested too deep are
refused (`InvalidPathError`, which the API answers 400), and `/_flows` is Kestra's forbidden folder.

Every write holds the namespace's lock (`fcntl.flock` on a file beside its files), so the processes sharing a
home never interleave the moves of one namespace's revisions; content goes to a temporary file first and is
renamed into place, so a reader never sees half a file.

Budgets: `MAX_FILE_BYTES` per file (the API's upload limit), `MAX_FILES` per namespace, `MAX_PATH_LENGTH`,
`MAX_NAME_LENGTH` per path component and `MAX_DEPTH` components; a ZIP import also stops at `MAX_FILES`
entries and `MAX_FILE_BYTES` of uncompressed content in all.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from ..errors import IllegalArgumentError, NotFoundError
from ..model.ids import RESERVED_PART, namespace_problem
from .storage import SCHEME, UPLOAD_LIMIT, InternalStorage, _uri

FILES = "_files"
REVISIONS = "_files.revisions"
NSFILE = "nsfile://"
FLOWS_FOLDER = "_flows"
MAX_FILE_BYTES = UPLOAD_LIMIT
MAX_FILES = 10_000
MAX_PATH_LENGTH = 1024
MAX_NAME_LENGTH = 255        # bytes of one component, as Kestra's controller (ext4's limit)
MAX_DEPTH = 32
MAX_REVISIONS = 50
_LOCK = ".nsfiles.lock"
_CHUNK = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidPathError(IllegalArgumentError):
    """A namespace file path that cannot name a file of the namespace (HTTP 400)."""


class FileTooLargeError(IllegalArgumentError):
    """Content over `MAX_FILE_BYTES`, or a namespace over `MAX_FILES` files (HTTP 413 at the API)."""


@dataclass(frozen=True, slots=True)
class FileAttributes:
    """Kestra's FileAttributes of a namespace file or directory."""

    file_name: str
    last_modified_time: int      # epoch milliseconds
    creation_time: int
    type: str                    # "File" | "Directory"
    size: int

    def to_json(self) -> dict[str, Any]:
        """As Kestra's API writes it."""
        return {"fileName": self.file_name, "lastModifiedTime": self.last_modified_time,
                "creationTime": self.creation_time, "type": self.type, "size": self.size, "metadata": {}}


def normalize(path: str, *, allow_root: bool = False) -> str:
    """A namespace file path as `/a/b.txt`; InvalidPathError (saying why) for one that is not acceptable."""
    if not isinstance(path, str):
        raise InvalidPathError(f"Invalid namespace file path: expected a string, got {type(path).__name__}")
    shown = _CONTROL.sub("?", path[:200])
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPathError(f"Invalid namespace file path `{shown}…`: longer than {MAX_PATH_LENGTH} characters")
    if _CONTROL.search(path):
        raise InvalidPathError(f"Invalid namespace file path `{shown}`: it contains a NUL or control character")
    if "\\" in path:
        raise InvalidPathError(f"Invalid namespace file path `{shown}`: use `/` to separate folders, not `\\`")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidPathError(f"Invalid namespace file path `{shown}`: `..` is not allowed (paths are relative "
                               "to the namespace's root)")
    if len(parts) > MAX_DEPTH:
        raise InvalidPathError(f"Invalid namespace file path `{shown}`: nested deeper than {MAX_DEPTH} folders")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_NAME_LENGTH:
            raise InvalidPathError(f"Invalid namespace file path `{shown}`: a file or folder name exceeds the maximum "
                                   f"length of {MAX_NAME_LENGTH} characters")
    if not parts and not allow_root:
        raise InvalidPathError(f"Invalid namespace file path `{shown}`: it names no file")
    return "/" + "/".join(parts)


def forbidden_guard(path: str) -> None:
    """Kestra's guard: `/_flows` and what is under it are not namespace files."""
    if path == "/" + FLOWS_FOLDER or path.startswith("/" + FLOWS_FOLDER + "/"):
        raise IllegalArgumentError(f"Forbidden path: {path}")


def parse_nsfile_uri(uri: str, default_namespace: str) -> tuple[str, str]:
    """`nsfile:///path` (the default namespace) or `nsfile://namespace/path` -> (namespace, `/path`)."""
    if not uri.startswith(NSFILE):
        raise InvalidPathError(f"Invalid namespace file URI `{uri[:200]}`: expected nsfile:///path or "
                               "nsfile://namespace/path")
    rest = uri[len(NSFILE):]
    authority, _, path = rest.partition("/")
    return (authority or default_namespace), normalize(unquote(path))


def is_fetchable(text: str) -> bool:
    """Whether a value is a URI `open_uri` reads (`kestra://`, `nsfile://`), as Kestra's URIFetcher.supports."""
    return text.startswith((SCHEME, NSFILE))


def open_uri(storage: InternalStorage, uri: str, namespace: str) -> BinaryIO:
    """Open a `kestra:///` file or an `nsfile://` namespace file (of `namespace` when it names none)."""
    if uri.startswith(NSFILE):
        ns, path = parse_nsfile_uri(uri, namespace)
        return storage.namespace_files.open(ns, path)
    return storage.open(uri)


def _ns_parts(namespace: str) -> list[str]:
    parts = namespace.split(".")
    if not namespace or any(not p or p in (".", "..", RESERVED_PART) or "/" in p or "\x00" in p for p in parts):
        raise InvalidPathError(f"Invalid namespace `{namespace[:200]}`")
    return parts


def _millis(seconds: float) -> int:
    return int(seconds * 1000)


KESTRA_IGNORE = ".kestraignore"
MAX_IGNORE_BYTES = 64 * 1024   # of a .kestraignore file


def kestra_ignore(root: Path) -> Callable[[str], bool]:
    """Whether a path relative to folder `root` (posix) is left out by its `.kestraignore` (gitignore rules,
    as Kestra's CLI reads it: the file itself is left out too); nothing is without one."""
    import pathspec

    rules = root / KESTRA_IGNORE
    if not rules.is_file() or rules.is_symlink():
        return lambda relative: False
    if rules.stat().st_size > MAX_IGNORE_BYTES:
        raise IllegalArgumentError(f"{rules}: more than {MAX_IGNORE_BYTES} bytes of ignore rules")
    spec = pathspec.GitIgnoreSpec.from_lines(rules.read_text(encoding="utf-8", errors="replace").splitlines())
    return lambda relative: relative == KESTRA_IGNORE or spec.match_file(relative)


def upload_plan(sources: list[str | os.PathLike[str]], to: str = "/") -> list[tuple[Path, str]]:
    """Where local files, and folders with what they hold (symbolic links left out), go as namespace files
    under the folder `to`: `(local file, namespace file path)`, every path checked (and at most MAX_FILES)
    before anything is written. A file keeps its name, a folder its tree less what its `.kestraignore`
    leaves out, as Kestra's CLI uploads."""
    base = normalize(to, allow_root=True).rstrip("/")
    plan: list[tuple[Path, str]] = []
    for source in sources:
        local = Path(source)
        if local.is_symlink() or not local.exists():
            raise NotFoundError(f"No such file or folder: {source}")
        if local.is_file():
            plan.append((local, normalize(f"{base}/{local.name}")))
            continue
        if not local.is_dir():
            raise IllegalArgumentError(f"Not a file or a folder: {source}")
        root = local.resolve()
        ignored = kestra_ignore(root)
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not Path(folder, d).is_symlink())
            for name in sorted(names):
                path = Path(folder, name)
                if path.is_file() and not path.is_symlink():
                    rel = path.relative_to(root).as_posix()
                    if ignored(rel):
                        continue
                    plan.append((path, normalize(f"{base}/{root.name}/{rel}")))
                    if len(plan) > MAX_FILES:
                        raise FileTooLargeError(f"More than {MAX_FILES} files to upload")
    for _, path in plan:
        forbidden_guard(path)
    return plan


class NamespaceFiles:
    """The namespace files of every namespace of one internal storage."""

    def __init__(self, storage: InternalStorage) -> None:
        self.storage = storage

    # ---------------------------------------------------------------------------------------- places

    def _root(self, namespace: str) -> Path:
        return self.storage.root.joinpath(*_ns_parts(namespace), FILES)

    def _revisions(self, namespace: str) -> Path:
        return self.storage.root.joinpath(*_ns_parts(namespace), REVISIONS)

    def local(self, namespace: str, path: str) -> Path:
        """The local file (or folder) behind a namespace file path."""
        rel = normalize(path, allow_root=True).lstrip("/")
        root = self._root(namespace)
        local = root.joinpath(*rel.split("/")) if rel else root
        if local.is_symlink() or (local.exists() and self.storage.root.resolve() not in local.resolve().parents):
            raise InvalidPathError(f"Invalid namespace file path `{path[:200]}`: it leaves the namespace's files")
        return local

    def uri(self, namespace: str, path: str) -> str:
        """The `kestra:///` URI of a namespace file's latest content."""
        rel = normalize(path)
        return _uri("/" + "/".join([*_ns_parts(namespace), FILES]) + rel)

    @staticmethod
    def nsfile_uri(namespace: str, path: str) -> str:
        """The `nsfile://namespace/path` URI of a namespace file."""
        return NSFILE + namespace + quote(normalize(path), safe="/._-~=+,;:@!$&'()*")

    @contextmanager
    def _locked(self, namespace: str) -> Iterator[None]:
        problem = namespace_problem(namespace)   # nothing is written under a namespace Kestra would refuse
        if problem is not None:
            raise IllegalArgumentError(f"Invalid namespace '{namespace[:200]}': {problem}")
        base = self.storage.root.joinpath(*_ns_parts(namespace))
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---------------------------------------------------------------------------------------- reading

    def exists(self, namespace: str, path: str) -> bool:
        """Whether `path` is a file or a folder of the namespace."""
        local = self.local(namespace, path)
        return local.exists()

    def is_file(self, namespace: str, path: str) -> bool:
        """Whether `path` is a file of the namespace."""
        return self.local(namespace, path).is_file()

    def open(self, namespace: str, path: str, revision: int | None = None) -> BinaryIO:
        """The content of a namespace file (its latest revision, or `revision`); NotFoundError if none."""
        norm = normalize(path)
        local = self.local(namespace, norm) if revision is None else self._revision_file(namespace, norm, revision)
        if local is None or not local.is_file():
            raise NotFoundError(f"File not found: {norm}" + (f" (revision {revision})" if revision is not None else ""))
        try:
            return open(local, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"File not found: {norm}") from None

    def read_bytes(self, namespace: str, path: str, revision: int | None = None) -> bytes:
        """The whole content (for small files: expressions)."""
        with self.open(namespace, path, revision) as f:
            return f.read()

    def attributes(self, namespace: str, path: str = "/") -> FileAttributes:
        """The FileAttributes of a file or folder (the root is `_files`, as Kestra names it)."""
        norm = normalize(path, allow_root=True)
        local = self.local(namespace, norm)
        try:
            st = local.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"File not found: {norm}") from None
        is_dir = local.is_dir()
        return FileAttributes(local.name, _millis(st.st_mtime), _millis(getattr(st, "st_birthtime", st.st_ctime)),
                              "Directory" if is_dir else "File", 0 if is_dir else st.st_size)

    def children(self, namespace: str, path: str = "/") -> list[FileAttributes]:
        """The files and folders directly in a folder, by name; NotFoundError for a missing folder."""
        norm = normalize(path, allow_root=True)
        local = self.local(namespace, norm)
        if not local.is_dir():
            if norm == "/":
                return []
            raise NotFoundError(f"Directory not found: {norm}")
        out = []
        for child in sorted(local.iterdir(), key=lambda p: p.name):
            if child.name.startswith(".put-") or child.is_symlink():   # (nothing of ours makes links)
                continue
            out.append(self.attributes(namespace, f"{norm.rstrip('/')}/{child.name}"))
        return out

    def list(self, namespace: str, prefix: str = "/") -> list[str]:
        """Every file path under a folder (`/a/b.txt`), sorted; empty when the folder is missing."""
        norm = normalize(prefix, allow_root=True)
        base = self.local(namespace, norm)
        root = self._root(namespace)
        if not base.is_dir():
            return []
        out: list[str] = []
        for folder, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                if not name.startswith(".put-") and not Path(folder, name).is_symlink():
                    out.append("/" + Path(folder, name).relative_to(root).as_posix())
        return out

    def folders(self, namespace: str) -> list[str]:
        """Every folder path of the namespace (`/a`, `/a/b`), sorted."""
        root = self._root(namespace)
        if not root.is_dir():
            return []
        return sorted("/" + Path(folder, d).relative_to(root).as_posix()
                      for folder, dirs, _ in os.walk(root) for d in dirs)

    def search(self, namespace: str, q: str) -> list[str]:
        """The file paths containing `q`."""
        return [p for p in self.list(namespace) if q in p]

    def count(self, namespace: str) -> int:
        """How many files the namespace holds."""
        root = self._root(namespace)
        if not root.is_dir():
            return 0
        return sum(1 for _, _, names in os.walk(root) for n in names if not n.startswith(".put-"))

    def revisions(self, namespace: str, path: str) -> list[int]:
        """The revisions of a file kept, oldest first, the latest last; NotFoundError if it is not a file."""
        norm = normalize(path)
        if not self.local(namespace, norm).is_file():
            raise NotFoundError(f"File not found: {norm}")
        return [*self._old_revisions(namespace, norm), self._latest_revision(namespace, norm)]

    def _revision_dir(self, namespace: str, norm: str) -> Path:
        return self._revisions(namespace).joinpath(*norm.lstrip("/").split("/"))

    def _old_revisions(self, namespace: str, norm: str) -> list[int]:
        folder = self._revision_dir(namespace, norm)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_file())

    def _latest_revision(self, namespace: str, norm: str) -> int:
        old = self._old_revisions(namespace, norm)
        return old[-1] + 1 if old else 1

    def _revision_file(self, namespace: str, norm: str, revision: int) -> Path | None:
        local = self.local(namespace, norm)
        if not local.is_file():
            return None
        if revision == self._latest_revision(namespace, norm):
            return local
        return self._revision_dir(namespace, norm) / str(revision)

    # ---------------------------------------------------------------------------------------- writing

    def _check_room(self, namespace: str, norm: str, adding: int = 1) -> None:
        local = self.local(namespace, norm)
        if local.is_dir():
            raise IllegalArgumentError(f"Cannot write the file {norm}: it is a directory")
        parent = local.parent
        root = self._root(namespace)
        while parent != root and root in parent.parents:
            if parent.is_file():
                raise IllegalArgumentError(f"Cannot write the file {norm}: "
                                           f"/{parent.relative_to(root).as_posix()} is a file")
            parent = parent.parent
        if not local.exists() and self.count(namespace) + adding > MAX_FILES:
            raise FileTooLargeError(f"The namespace {namespace} holds {MAX_FILES} files, the most it may hold")

    def put(self, namespace: str, path: str, source: bytes | str | os.PathLike[str] | BinaryIO, *,
            move: bool = False) -> int:
        """Write a namespace file (bytes, a local file by path, or a binary stream); its new revision. `move`: the
        local file `source` is moved in (a rename on the storage's disk, e.g. a finished upload)."""
        norm = normalize(path)
        forbidden_guard(norm)
        local = self.local(namespace, norm)
        local_parent = local.parent
        with self._locked(namespace):
            self._check_room(namespace, norm)
            local_parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=local_parent, prefix=".put-")
            try:
                with os.fdopen(fd, "wb") as out:
                    if move and isinstance(source, (str, os.PathLike)) and _moved(source, tmp, norm):
                        pass
                    else:
                        _copy_bounded(source, out, norm)
                revision = 1
                if local.is_file():
                    revision = self._latest_revision(namespace, norm)
                    keep = self._revision_dir(namespace, norm)
                    keep.mkdir(parents=True, exist_ok=True)
                    os.replace(local, keep / str(revision))
                    revision += 1
                    for old in self._old_revisions(namespace, norm)[:-MAX_REVISIONS]:
                        (keep / str(old)).unlink(missing_ok=True)
                os.replace(tmp, local)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return revision

    def create_directory(self, namespace: str, path: str = "/") -> None:
        """Create a folder (and its parents); nothing when it exists."""
        norm = normalize(path, allow_root=True)
        forbidden_guard(norm)
        local = self.local(namespace, norm)
        with self._locked(namespace):
            if local.is_file():
                raise IllegalArgumentError(f"Cannot create the directory {norm}: it is a file")
            try:
                local.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise IllegalArgumentError(f"Cannot create the directory {norm}: a parent is a file") from None

    def delete(self, namespace: str, path: str, *, prune: bool = True) -> bool:
        """Delete a file or a folder (with what it holds) and, with `prune`, the folders it leaves empty (the
        root is kept)."""
        norm = normalize(path)
        forbidden_guard(norm)
        local = self.local(namespace, norm)
        root = self._root(namespace)
        with self._locked(namespace):
            if local.is_dir():
                shutil.rmtree(local)
            elif local.exists():
                local.unlink()
            else:
                return False
            shutil.rmtree(self._revision_dir(namespace, norm), ignore_errors=True)
            parent = local.parent
            while prune and parent != root and root in parent.parents and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        return True

    def move(self, namespace: str, source: str, target: str) -> None:
        """Move (rename) a file or a folder, its revisions with it; the target must not exist."""
        src, dst = normalize(source), normalize(target)
        forbidden_guard(src)
        forbidden_guard(dst)
        local_src, local_dst = self.local(namespace, src), self.local(namespace, dst)
        with self._locked(namespace):
            if not local_src.exists():
                raise NotFoundError(f"File not found: {src}")
            if local_dst.exists():
                raise IllegalArgumentError(f"Cannot move {src} to {dst}: {dst} already exists")
            if dst.startswith(src.rstrip("/") + "/"):
                raise IllegalArgumentError(f"Cannot move {src} into itself ({dst})")
            local_dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local_src, local_dst)
            kept = self._revision_dir(namespace, src)
            if kept.exists():
                moved = self._revision_dir(namespace, dst)
                moved.parent.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(moved, ignore_errors=True)
                os.replace(kept, moved)

    def upload_local(self, namespace: str, sources: list[str | os.PathLike[str]], to: str = "/"
                     ) -> list[tuple[Path, str, int]]:
        """Publish local files, and folders with what they hold (symbolic links left out), under the folder
        `to`: `(local file, namespace file path, revision)` of each; every path is checked before any write.
        A file keeps its name (`to/<name>`), a folder its tree (`to/<folder>/…`), as Kestra's CLI uploads."""
        return [(local, path, self.put(namespace, path, local)) for local, path in upload_plan(sources, to)]

    def sizes(self, namespace: str, folder: str = "/") -> list[tuple[str, int]]:
        """Every file under `folder` with its size in bytes."""
        return [(path, self.attributes(namespace, path).size) for path in self.list(namespace, folder)]

    # ---------------------------------------------------------------------------------------- archives

    def export_zip(self, namespace: str, out: BinaryIO) -> int:
        """Write every file of the namespace into a ZIP (paths without the leading `/`); how many."""
        files = self.list(namespace)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(self.local(namespace, path), path.lstrip("/"))
        return len(files)

    def import_zip(self, namespace: str, archive_path: str | os.PathLike[str],
                   on_flow: Any = None) -> list[str]:
        """Write the files of a ZIP (`_flows/<id>.yml` entries go to `on_flow(source)` when given, as
        Kestra imports them); the paths written. Budgets: MAX_FILES entries, MAX_FILE_BYTES uncompressed."""
        written: list[str] = []
        try:
            archive = zipfile.ZipFile(archive_path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise IllegalArgumentError(f"Invalid ZIP archive: {exc}") from None
        with archive:
            entries = [e for e in archive.infolist() if not e.is_dir()]
            if len(entries) > MAX_FILES:
                raise FileTooLargeError(f"The ZIP archive holds {len(entries)} files; at most {MAX_FILES} are imported")
            if sum(e.file_size for e in entries) > MAX_FILE_BYTES:
                raise FileTooLargeError(f"The ZIP archive's content is over {MAX_FILE_BYTES} bytes")
            paths = [normalize(e.filename) for e in entries]   # every name checked before anything is written
            total = 0   # bytes actually written (headers may lie about sizes)
            for entry, path in zip(entries, paths):
                if total > MAX_FILE_BYTES:
                    raise FileTooLargeError(f"The ZIP archive's content is over {MAX_FILE_BYTES} bytes")
                if path.startswith("/" + FLOWS_FOLDER + "/"):
                    if path.count("/") != 2:
                        raise IllegalArgumentError(f"Invalid flow file path: {path}")
                    if on_flow is not None:
                        with archive.open(entry) as src:
                            on_flow(_read_bounded(src, path).decode("utf-8", "replace"))
                    continue
                try:
                    with archive.open(entry) as src:
                        self.put(namespace, path, src)
                except (zipfile.BadZipFile, RuntimeError, OSError) as exc:   # CRC, encryption, truncation
                    raise IllegalArgumentError(f"Invalid ZIP archive entry {path}: {exc}") from None
                total += self.attributes(namespace, path).size
                written.append(path)
        return written

    # ---------------------------------------------------------------------------------------- matching

    def matching(self, namespace: str, accept: Callable[[str], bool]) -> list[str]:
        """The file paths (`/a/b.txt`) that `accept` takes (Kestra's PathMatcherPredicate, built by the caller)."""
        return [path for path in self.list(namespace) if accept(path)]


def _moved(source: str | os.PathLike[str], tmp: str, norm: str) -> bool:
    """Rename `source` onto `tmp` when both are on one disk (False: copy it instead)."""
    if os.path.getsize(source) > MAX_FILE_BYTES:
        raise FileTooLargeError(f"The file {norm} is larger than {MAX_FILE_BYTES} bytes")
    try:
        os.replace(source, tmp)
    except OSError:
        return False
    return True


def _copy_bounded(source: bytes | str | os.PathLike[str] | BinaryIO, out: BinaryIO, norm: str) -> None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > MAX_FILE_BYTES:
            raise FileTooLargeError(f"The file {norm} is larger than {MAX_FILE_BYTES} bytes")
        out.write(source)
        return
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as src:
            _copy_stream(src, out, norm)
        return
    _copy_stream(source, out, norm)


def _copy_stream(src: BinaryIO, out: BinaryIO, norm: str) -> None:
    total = 0
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            return
        total += len(chunk)
        if total > MAX_FILE_BYTES:
            raise FileTooLargeError(f"The file {norm} is larger than {MAX_FILE_BYTES} bytes")
        out.write(chunk)


def _read_bounded(src: BinaryIO, norm: str, limit: int = 1 << 20) -> bytes:
    data = src.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(f"The flow file {norm} is larger than {limit} bytes")
    return data


__all__ = ["FILES", "FileAttributes", "FileTooLargeError", "InvalidPathError", "MAX_DEPTH", "MAX_FILES",
           "MAX_FILE_BYTES", "MAX_NAME_LENGTH", "MAX_PATH_LENGTH", "NSFILE", "NamespaceFiles", "forbidden_guard",
           "is_fetchable", "normalize", "open_uri", "parse_nsfile_uri"]
