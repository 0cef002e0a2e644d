"""Kestra's file functions (spec §6.5): read(path), fileSize(path), fileExists(path), isFileEmpty(path).

They reach `kestra:///` files of the internal storage of the engine's store, and only the files of the
current execution (those under its storage prefix; for a subflow, also those of the execution that
triggered it, whose FILE inputs it receives), as Kestra's checks allow. Namespace files are not kept
by kestra_nb, so a path that is not a `kestra:///` URI is refused with a message saying so.
"""
from __future__ import annotations

from typing import Any

from ..errors import IllegalArgumentError
from ..store.storage import SCHEME, InternalStorage, execution_prefix
from .filters import Bound
from .functions import FUNCTIONS, TESTS, _hooks, _renderer, pebble_function
from .runtime import RenderError
from .syntax import register_callables


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


def _checked_uri(context: Any, a: Bound, function: str) -> tuple[InternalStorage, str]:
    """The `path` argument as a `kestra:///` URI of a file the current execution may read."""
    path = a.get("path")
    if path is None:
        raise RenderError(f"The '{function}' function expects an argument 'path'.")
    if not isinstance(path, str):
        raise RenderError(f"The '{function}' function expects an argument 'path' with type string.")
    uri = path.strip()
    if not uri.startswith(SCHEME):
        raise RenderError(f"The '{function}' function expects a kestra:/// internal storage URI, got '{path}': "
                          "local paths and namespace files are not allowed")
    try:
        storage_path = InternalStorage.uri_path(uri)
    except IllegalArgumentError as exc:
        raise RenderError(f"The '{function}' function: {exc.message}") from None
    prefixes = _allowed_prefixes(context)
    if not prefixes:
        raise RenderError(f"The '{function}' function can only be used while running an execution")
    if not any(storage_path.startswith(prefix) for prefix in prefixes):
        raise RenderError(f"Unable to read the file '{uri}' as it doesn't belong to the current execution")
    return _storage(context, function), uri


def _missing(uri: str) -> RenderError:
    return RenderError(f"Unable to find the file '{uri}': it does not exist in the internal storage")


@pebble_function("read", ("path",))
def _read(context: Any, a: Bound, line: int) -> Any:
    storage, uri = _checked_uri(context, a, "read")
    if not storage.exists(uri):
        raise _missing(uri)
    data = storage.read_bytes(uri)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError(f"The file '{uri}' is not UTF-8 text; the 'read' function only reads text files") from None


@pebble_function("fileSize", ("path",))
def _file_size(context: Any, a: Bound, line: int) -> Any:
    storage, uri = _checked_uri(context, a, "fileSize")
    if not storage.exists(uri):
        raise _missing(uri)
    return storage.size(uri)


@pebble_function("fileExists", ("path",))
def _file_exists(context: Any, a: Bound, line: int) -> Any:
    storage, uri = _checked_uri(context, a, "fileExists")
    return storage.exists(uri)


def _file_empty(function: str) -> Any:
    def impl(context: Any, a: Bound, line: int) -> Any:
        storage, uri = _checked_uri(context, a, function)
        if not storage.exists(uri):
            raise _missing(uri)
        return storage.size(uri) == 0
    return impl


for _name in ("isFileEmpty", "fileEmpty"):
    pebble_function(_name, ("path",))(_file_empty(_name))

register_callables(set(FUNCTIONS), set(TESTS))

__all__: list[str] = []
