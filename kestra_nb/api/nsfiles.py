"""The namespace-file operations of the API (Kestra's NamespaceFileController), mixed into `ApiService`.

Routes (`api.routes`): `GET|POST|DELETE /namespaces/{namespace}/files?path=` (content, upload of the
multipart part `fileContent` — a `.zip` is extracted, `_flows/<id>.yml` entries imported as flows of the
namespace —, delete with the folders it leaves empty), `PUT …/files?from=&to=` (move), `GET|POST
…/files/directory`, `GET …/files/stats`, `GET …/files/search?q=`, `GET …/files/revisions?path=` and
`GET …/files?path=&revision=` (Kestra 1.x revisions), `GET …/files/export` (a ZIP of every file).

File work runs in a worker thread (`asyncio.to_thread`): a 10 GiB upload being moved in or a ZIP being
written never holds up the engine's loop.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from ..errors import IllegalArgumentError, NotFoundError
from ..store.nsfiles import NamespaceFiles, forbidden_guard, normalize
from .errors import BadRequest

FILE_PART = "fileContent"
_NAMESPACE_LINE = re.compile(r"(?m)^namespace: .*$")


class NamespaceFilesApi:
    """The namespace-file operations; `self.storage`, `self.store`, `self._checked` come from ApiService."""

    storage: Any
    store: Any

    @property
    def nsfiles(self) -> NamespaceFiles:
        """The namespace files of the engine's storage."""
        return self.storage.namespace_files

    @staticmethod
    def _path(path: str | None, *, allow_root: bool = True) -> str:
        norm = normalize(path if path is not None else "/", allow_root=allow_root)
        forbidden_guard(norm)
        return norm

    def search_namespace_files(self, namespace: str, *, q: str) -> list[str]:
        """The file paths of the namespace that contain `q`."""
        return self.nsfiles.search(namespace, q)

    def get_namespace_file(self, namespace: str, *, path: str, revision: int | None = None) -> Any:
        """A namespace file's content (its latest revision, or `revision`), to stream."""
        return self._namespace_file(namespace, self._path(path, allow_root=False), revision)

    def _namespace_file(self, namespace: str, norm: str, revision: int | None = None) -> Any:
        from .service import StoredFile

        with self.nsfiles.open(namespace, norm, revision) as f:   # NotFoundError when there is none
            size = f.seek(0, 2)
            local = Path(f.name)
        return StoredFile(uri="", filename=norm.rsplit("/", 1)[-1], size=size, local=local)

    def namespace_file_stats(self, namespace: str, *, path: str | None = None) -> dict[str, Any]:
        """FileAttributes of a file or folder; of the root (created when missing) without `path`."""
        norm = self._path(path)
        if norm == "/":
            self.nsfiles.create_directory(namespace)
        return self.nsfiles.attributes(namespace, norm).to_json()

    def namespace_file_revisions(self, namespace: str, *, path: str) -> list[dict[str, Any]]:
        """`[{"revision": n}]` of a file, oldest first."""
        return [{"revision": n} for n in self.nsfiles.revisions(namespace, self._path(path, allow_root=False))]

    def list_namespace_directory(self, namespace: str, *, path: str | None = None) -> list[dict[str, Any]]:
        """The FileAttributes of what a folder holds (the root is created when missing)."""
        norm = self._path(path)
        if norm == "/":
            self.nsfiles.create_directory(namespace)
        return [a.to_json() for a in self.nsfiles.children(namespace, norm)]

    def create_namespace_directory(self, namespace: str, *, path: str | None = None) -> None:
        """Create a folder (and its parents)."""
        self.nsfiles.create_directory(namespace, self._path(path))

    async def create_namespace_file(self, namespace: str, *, path: str, form: Any = None) -> None:
        """Write the uploaded `fileContent` at `path`; a `.zip` upload is extracted into the namespace."""
        upload = next((u for u in (form.files if form is not None else ()) if u.name == FILE_PART), None)
        if upload is None:
            raise BadRequest(f"Bad Request: Required Part [{FILE_PART}] not specified")
        norm = normalize(path)
        files = self.nsfiles
        if (upload.filename or "").lower().endswith(".zip"):
            flows: list[str] = []
            await asyncio.to_thread(files.import_zip, namespace, upload.path, flows.append)
            for source in flows:
                self._import_flow(namespace, source)
            return
        if norm.startswith("/_flows/"):
            if norm.count("/") != 2:
                raise IllegalArgumentError(f"Invalid flow file path: {norm}")
            if upload.size > 1 << 20:
                raise IllegalArgumentError(f"The flow file {norm} is larger than {1 << 20} bytes")
            self._import_flow(namespace, upload.path.read_bytes().decode("utf-8", "replace"))
            return
        forbidden_guard(norm)
        await asyncio.to_thread(lambda: files.put(namespace, norm, upload.path, move=True))

    def _import_flow(self, namespace: str, source: str) -> None:
        """Kestra's import of `_flows/<id>.yml`: the flow moved to this namespace, created or updated."""
        source = _NAMESPACE_LINE.sub(lambda _: "namespace: " + namespace, source, count=1)
        flow = self._checked(source)  # type: ignore[attr-defined]
        self.store.save_flow(flow.namespace, flow.id, source)

    async def export_namespace_files(self, namespace: str) -> Any:
        """A ZIP of every file of the namespace, `<namespace>_files.zip`."""
        from .service import StoredFile

        tmp = self.storage.temp_dir("export-")
        target = tmp / "files.zip"

        def write() -> int:
            with open(target, "wb") as out:
                self.nsfiles.export_zip(namespace, out)
            return target.stat().st_size

        size = await asyncio.to_thread(write)
        return StoredFile(uri="", filename=f"{namespace}_files.zip", size=size, local=target, remove=tmp)

    async def move_namespace_file(self, namespace: str, *, source: str, target: str) -> None:
        """Move (rename) a file or folder."""
        await asyncio.to_thread(self.nsfiles.move, namespace, self._path(source, allow_root=False),
                                self._path(target, allow_root=False))

    async def delete_namespace_file(self, namespace: str, *, path: str) -> None:
        """Delete a file or folder (and the folders it leaves empty)."""
        norm = self._path(path, allow_root=False)
        if not await asyncio.to_thread(self.nsfiles.delete, namespace, norm):
            raise NotFoundError(f"File not found: {norm}")


__all__ = ["NamespaceFilesApi"]
