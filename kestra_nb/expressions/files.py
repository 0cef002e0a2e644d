"""Kestra's file functions (spec §6.5): read(path), fileSize(path), fileExists(path), isFileEmpty(path),
and fileURI(path).

`path` is one of:
- a `kestra:///` URI of the internal storage: only the current execution's files (those under its storage
  prefix; for a subflow, also those of the execution that triggered it, whose FILE inputs it receives) and
  the namespace files of the flow's namespace (`kestra:///<ns>/_files/…`), as Kestra's checks allow;
- an `nsfile:///path` URI (a namespace file of the flow's namespace) or `nsfile://namespace/path`;
- anything else: the path of a namespace file of `namespace` (an argument; the flow's namespace by default),
  as Kestra's read() falls back to namespace files. `read(path, version=n)` reads a revision. Kestra keeps no
  parent-namespace inheritance for namespace files (only for KV and secrets in its Enterprise edition), so
  neither does this.
A file is read whole up to `READ_LIMIT` bytes.
"""
from __future__ import annotations

from typing import Any

from ..errors import IllegalArgumentError, NotFoundError
from ..store.nsfiles import FILES, NSFILE, normalize, parse_nsfile_uri
from ..store.storage import SCHEME, InternalStorage, execution_prefix
from .filters import Bound
from .functions import FUNCTIONS, TESTS, _hooks, _renderer, pebble_function
from .runtime import RenderError
from .syntax import register_callables

READ_LIMIT = 64 * 1024 * 1024   # bytes read() gives a template


def _storage(context: Any, function: str) -> InternalStorage:
    hooks = _hooks(context)
    store = hooks.store if hooks is not None and hooks.store is not None else _renderer(context).store
    storage = getattr(store, "storage", None)
    if storage is None:
        raise RenderError(f"The '{function}' function needs an internal storage, and this renderer has none")
    return storage


def _allowed_prefixes(context: Any) -> list[str]:
    """The storage prefixes the template's execution may read: its own, and its triggering execution's."""
    hooks = _hooks(context)
    flow = context.parent.get("flow") or {}
    execution = context.parent.get("execution") or {}
    namespace = (hooks.namespace if hooks is not None and hooks.namespace else None) or flow.get("namespace")
    execution_id = (hooks.execution_id if hooks is not None and hooks.execution_id else None) or execution.get("id")
    flow_id = flow.get("id")
    out: list[str] = []
    if namespace and flow_id and execution_id:
        out.append(execution_prefix(str(namespace), str(flow_id), str(execution_id)))
    trigger = context.parent.get("trigger")
    if isinstance(trigger, dict) and all(isinstance(trigger.get(k), str) and trigger.get(k)
                                         for k in ("namespace", "flowId", "executionId")):
        out.append(execution_prefix(trigger["namespace"], trigger["flowId"], trigger["executionId"]))
    return out


def _flow_namespace(context: Any) -> str | None:
    hooks = _hooks(context)
    flow = context.parent.get("flow") or {}
    namespace = (hooks.namespace if hooks is not None and hooks.namespace else None) or flow.get("namespace")
    return str(namespace) if namespace else None


class _File:
    """The file a `path` argument names: a `kestra:///` URI, or a namespace file (namespace, path)."""

    __slots__ = ("storage", "uri", "namespace", "path", "shown")

    def __init__(self, storage: InternalStorage, uri: str | None, namespace: str | None = None,
                 path: str | None = None) -> None:
        self.storage, self.uri, self.namespace, self.path = storage, uri, namespace, path
        self.shown = uri if uri is not None else f"{NSFILE}{namespace}{path}"

    def exists(self) -> bool:
        if self.uri is not None:
            return self.storage.exists(self.uri)
        return self.storage.namespace_files.is_file(self.namespace, self.path)

    def size(self) -> int:
        if self.uri is not None:
            return self.storage.size(self.uri)
        return self.storage.namespace_files.attributes(self.namespace, self.path).size

    def read(self, revision: int | None = None) -> bytes:
        if self.uri is not None:
            source = self.storage.open(self.uri)
        else:
            source = self.storage.namespace_files.open(self.namespace, self.path, revision)
        with source:
            data = source.read(READ_LIMIT + 1)
        if len(data) > READ_LIMIT:
            raise RenderError(f"The file '{self.shown}' is larger than {READ_LIMIT} bytes, the most read() reads")
        return data


def _checked_uri(context: Any, a: Bound, function: str) -> _File:
    """The file the `path` argument names, checked to be one the current execution may read."""
    path = a.get("path")
    if path is None:
        raise RenderError(f"The '{function}' function expects an argument 'path'.")
    if not isinstance(path, str):
        raise RenderError(f"The '{function}' function expects an argument 'path' with type string.")
    uri = path.strip()
    if not uri.startswith(SCHEME):
        default = a.get("namespace") if a.get("namespace") is not None else _flow_namespace(context)
        if not default:
            raise RenderError(f"The '{function}' function: '{path}' names a namespace file of the flow's "
                              "namespace, which is not allowed outside a flow")
        try:
            if uri.startswith(NSFILE):
                namespace, ns_path = parse_nsfile_uri(uri, str(default))
            else:
                namespace, ns_path = str(default), normalize(uri)
            storage = _storage(context, function)
            storage.namespace_files.local(namespace, ns_path)   # the namespace is checked too
        except IllegalArgumentError as exc:
            raise RenderError(f"The '{function}' function: {exc.message}") from None
        return _File(storage, None, namespace, ns_path)
    try:
        storage_path = InternalStorage.uri_path(uri)
    except IllegalArgumentError as exc:
        raise RenderError(f"The '{function}' function: {exc.message}") from None
    prefixes = _allowed_prefixes(context)
    if not prefixes:
        raise RenderError(f"The '{function}' function can only be used while running an execution")
    namespace = _flow_namespace(context)
    if namespace:
        prefixes.append("/" + "/".join([*namespace.split("."), FILES]) + "/")
    if not any(storage_path.startswith(prefix) for prefix in prefixes):
        raise RenderError(f"Unable to read the file '{uri}' as it doesn't belong to the current execution")
    return _File(_storage(context, function), uri)


def _missing(file: _File) -> RenderError:
    if file.uri is None:
        return RenderError(f"Unable to find the namespace file '{file.path}' in the namespace '{file.namespace}'")
    return RenderError(f"Unable to find the file '{file.uri}': it does not exist in the internal storage")


@pebble_function("read", ("path", "namespace", "version"))
def _read(context: Any, a: Bound, line: int) -> Any:
    file = _checked_uri(context, a, "read")
    version = a.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (int, str))
                                or not str(version).isdigit()):
        raise RenderError(f"The 'read' function expects an argument 'version' that is a revision number, "
                          f"got '{version}'")
    if not file.exists():
        raise _missing(file)
    try:
        data = file.read(int(version) if version is not None else None)
    except NotFoundError as exc:
        raise RenderError(f"Unable to find the namespace file {exc.message.removeprefix('File not found: ')} "
                          f"in the namespace '{file.namespace}'") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError(f"The file '{file.shown}' is not UTF-8 text; the 'read' function only reads text "
                          "files") from None


@pebble_function("fileSize", ("path", "namespace"))
def _file_size(context: Any, a: Bound, line: int) -> Any:
    file = _checked_uri(context, a, "fileSize")
    if not file.exists():
        raise _missing(file)
    return file.size()


@pebble_function("fileExists", ("path", "namespace"))
def _file_exists(context: Any, a: Bound, line: int) -> Any:
    return _checked_uri(context, a, "fileExists").exists()


def _file_empty(function: str) -> Any:
    def impl(context: Any, a: Bound, line: int) -> Any:
        file = _checked_uri(context, a, function)
        if not file.exists():
            raise _missing(file)
        return file.size() == 0
    return impl


for _name in ("isFileEmpty", "fileEmpty"):
    pebble_function(_name, ("path", "namespace"))(_file_empty(_name))


@pebble_function("fileURI", ("path",))
def _file_uri(context: Any, a: Bound, line: int) -> Any:
    """Kestra's fileURI(path): the `kestra:///` URI of a namespace file of the flow's namespace."""
    path = a.get("path")
    if not isinstance(path, str):
        raise RenderError("The 'fileURI' function expects an argument 'path' with type string.")
    namespace = _flow_namespace(context)
    if not namespace:
        raise RenderError("The 'fileURI' function needs the flow's namespace, and there is no flow here")
    try:
        return SCHEME + "/" + "/".join([*namespace.split("."), FILES]) + normalize(path)
    except IllegalArgumentError as exc:
        raise RenderError(f"The 'fileURI' function: {exc.message}") from None


register_callables(set(FUNCTIONS), set(TESTS))

__all__: list[str] = []
