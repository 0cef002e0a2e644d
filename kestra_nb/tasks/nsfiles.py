"""Namespace files in tasks: the `namespaceFiles` property (script tasks, WorkingDirectory) and Kestra's
`io.kestra.plugin.core.namespace.UploadFiles`, `DownloadFiles` and `DeleteFiles`.

Patterns follow Kestra's PathMatcherPredicate: `regex:…` is a regular expression, `glob:…` or a bare
pattern a glob (`*` within a folder, `**` across), matched against the file's path with its leading `/`; a
bare pattern starting with a word character matches in any folder (`main.py` is `**/main.py`).
File copies run in a worker thread, never on the engine's loop.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import IllegalArgumentError, KestraNbError, NotFoundError, TaskFailure, describe
from ..model.execution import Level
from ..store.nsfiles import NamespaceFiles, is_fetchable, normalize, open_uri
from .base import Prop, Task, TaskContext, render_bool
from ..parsing.javaregex import compile_java
from .scripts import MAX_GLOB, glob_regex, matches_any

NAMESPACE_FILES_KEYS = frozenset({"enabled", "include", "exclude", "namespaces", "ifExists", "folderPerNamespace"})
IF_EXISTS = ("OVERWRITE", "FAIL", "WARN", "IGNORE")
CONFLICTS = ("OVERWRITE", "ERROR", "SKIP")
MAX_PATTERNS = 1000
MAX_NAMESPACES = 100


def path_matcher(patterns: list[str], prop: str, *, rooted: bool = False) -> Callable[[str], bool]:
    """Kestra's PathMatcherPredicate of `patterns`, over paths like `/a/b.txt`; `rooted`: patterns are relative
    to the root (a working directory's files), not matched in any folder."""
    if len(patterns) > MAX_PATTERNS:
        raise TaskFailure(f"`{prop}`: {len(patterns)} patterns; at most {MAX_PATTERNS} are allowed")
    regexes = []
    for pattern in patterns:
        if pattern.startswith("regex:"):
            if len(pattern) > MAX_GLOB:
                raise TaskFailure(f"`{prop}`: a pattern of {len(pattern)} characters; at most {MAX_GLOB} are allowed")
            try:   # Java's syntax, each match bounded in time (parsing/javaregex), as every user pattern
                regexes.append(compile_java(pattern[6:]))
            except re.error as exc:
                raise TaskFailure(f"`{prop}`: invalid regular expression `{pattern[6:]}`: {exc.msg}") from None
            continue
        if pattern.startswith("glob:"):
            glob = pattern[5:]
        elif rooted:
            glob = "/" + pattern.lstrip("/")
        else:
            glob = "**/" + pattern if re.match(r"\w", pattern) else pattern
        regexes.append(glob_regex(glob.replace("\\", "/"), prop))
    return lambda path: matches_any(regexes, path, prop)


def _texts(ctx: TaskContext, raw: Any, prop: str) -> list[str]:
    """A property holding a text or a list of texts (or an expression rendering to a JSON array)."""
    rendered = ctx.render(raw, prop)
    if isinstance(rendered, str):
        text = rendered.strip()
        if text.startswith("["):
            try:
                rendered = json.loads(text)
            except ValueError:
                raise TaskFailure(f"`{prop}`: invalid JSON array `{text[:200]}`") from None
        else:
            rendered = [rendered]
    if not isinstance(rendered, list) or any(isinstance(v, (dict, list)) or v is None for v in rendered):
        raise TaskFailure(f"`{prop}` must be a text or a list of texts, found {describe(rendered)}")
    return [str(v) for v in rendered]


def _choice(ctx: TaskContext, raw: Any, prop: str, choices: tuple[str, ...], default: str) -> str:
    value = default if raw is None else ctx.render_string(raw, prop).strip().upper()
    if value not in choices:
        raise TaskFailure(f"Invalid `{prop}` `{value}`: expected one of {', '.join(choices)}")
    return value


def _namespace(ctx: TaskContext, raw: Any, prop: str = "namespace") -> str:
    namespace = ctx.flow.namespace if raw is None else ctx.render_string(raw, prop).strip()
    if not namespace:
        raise TaskFailure(f"`{prop}` must name a namespace")
    return namespace


def _files(ctx: TaskContext) -> NamespaceFiles:
    return ctx.storage.namespace_files  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------- namespaceFiles property


async def load_namespace_files(ctx: TaskContext, raw: Any, wd: Path, prop: str = "namespaceFiles") -> int:
    """Copy the namespace files `raw` (a `namespaceFiles` value) selects into `wd`; how many (0: not enabled).

    Kestra's NamespaceFilesUtils: every namespace of `namespaces` in order (a later one's file replaces an
    earlier one's), `ifExists` for files already in the directory, `folderPerNamespace`; then the
    `namespacefiles.count` and `namespacefiles.duration` metrics and the `Loaded N namespace files` line.
    """
    if raw is None:
        return 0
    if not isinstance(raw, dict):
        raise TaskFailure(f"`{prop}` must be a map (enabled, include, exclude, namespaces, ifExists, "
                          f"folderPerNamespace), found {describe(raw)}")
    unknown = sorted(set(raw) - NAMESPACE_FILES_KEYS)
    if unknown:
        raise TaskFailure(f"`{prop}`: unknown propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                          f"expected {', '.join(sorted(NAMESPACE_FILES_KEYS))}")
    if not render_bool(ctx, raw.get("enabled"), f"{prop}.enabled", True):
        return 0
    started = time.monotonic()
    include = _texts(ctx, raw["include"], f"{prop}.include") if raw.get("include") is not None else []
    exclude = _texts(ctx, raw["exclude"], f"{prop}.exclude") if raw.get("exclude") is not None else []
    namespaces = (_texts(ctx, raw["namespaces"], f"{prop}.namespaces") if raw.get("namespaces") is not None
                  else [ctx.flow.namespace])
    if len(namespaces) > MAX_NAMESPACES:
        raise TaskFailure(f"`{prop}.namespaces`: at most {MAX_NAMESPACES} namespaces")
    if_exists = _choice(ctx, raw.get("ifExists"), f"{prop}.ifExists", IF_EXISTS, "OVERWRITE")
    per_namespace = render_bool(ctx, raw.get("folderPerNamespace"), f"{prop}.folderPerNamespace", False)
    accept_in = path_matcher(include, f"{prop}.include") if include else None
    accept_out = path_matcher(exclude, f"{prop}.exclude") if exclude else None

    def accept(path: str) -> bool:
        return (accept_in is None or accept_in(path)) and (accept_out is None or not accept_out(path))

    files = _files(ctx)
    warnings: list[str] = []

    def copy() -> int:
        count = 0
        for namespace in namespaces:
            try:
                matched = files.matching(namespace, accept)
            except IllegalArgumentError as exc:
                raise TaskFailure(f"`{prop}.namespaces`: {exc.message}") from None
            for path in matched:
                rel = (namespace + path) if per_namespace else path.lstrip("/")
                target = wd.joinpath(*rel.split("/"))
                if target.exists():
                    if if_exists == "FAIL":
                        raise TaskFailure(f"File '{rel}' already exists in the working directory")
                    if if_exists == "WARN":
                        warnings.append(f"File '{rel}' already exists in the working directory, it is kept")
                        continue
                    if if_exists == "IGNORE":
                        continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with files.open(namespace, path) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                count += 1
        return count

    count = await asyncio.to_thread(copy)
    for line in warnings:
        ctx.log(Level.WARN, line)
    elapsed = time.monotonic() - started
    metric = getattr(ctx, "metric", None)
    if metric is not None:
        metric("namespacefiles.count", "counter", count)
        metric("namespacefiles.duration", "timer", elapsed)
    ms = int(elapsed * 1000)
    ctx.log(Level.INFO, f"Loaded {count} namespace files from '{', '.join(namespaces)}' in "
                        f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}")
    return count


# ------------------------------------------------------------------------------------------- the tasks


class UploadFiles(Task):
    """Upload files of the working directory (`files` patterns) or of the storage (`filesMap`: target path →
    URI) to a namespace's files under `destination`."""

    type = "io.kestra.plugin.core.namespace.UploadFiles"
    props = (Prop("namespace", "string"), Prop("files", "any"), Prop("filesMap", "any"),
             Prop("destination", "string", default="/"), Prop("conflict", "enum", default="OVERWRITE",
                                                              choices=CONFLICTS))

    async def run(self, ctx: TaskContext) -> None:
        namespace = _namespace(ctx, self.prop("namespace"))
        destination = ctx.render_string(self.prop("destination"), "destination") or "/"
        if not destination.startswith("/"):
            destination = "/" + destination
        conflict = _choice(ctx, self.prop("conflict"), "conflict", CONFLICTS, "OVERWRITE")
        if self.prop("files") is None and self.prop("filesMap") is None:
            raise TaskFailure("files or filesMap is required")
        sources: list[tuple[str, Any]] = []   # (namespace file path, local path or URI)
        wd: Path | None = None
        owned = False
        if self.prop("files") is not None:
            accept = path_matcher(_texts(ctx, self.prop("files"), "files"), "files", rooted=True)
            wd, owned = ctx.task_working_dir()  # type: ignore[attr-defined]
            for folder, dirs, names in os.walk(wd):
                dirs.sort()
                for name in sorted(names):
                    local = Path(folder, name)
                    rel = "/" + local.relative_to(wd).as_posix()
                    if local.is_file() and not local.is_symlink() and accept(rel):
                        sources.append((destination.rstrip("/") + rel, local))
        if self.prop("filesMap") is not None:
            mapping = ctx.render(self.prop("filesMap"), "filesMap")
            if isinstance(mapping, str):
                try:
                    mapping = json.loads(mapping)
                except ValueError:
                    raise TaskFailure("filesMap must be a Map<String, String>") from None
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise TaskFailure("filesMap must be a Map<String, String>")
            for target, uri in mapping.items():
                if not is_fetchable(uri):
                    raise TaskFailure(f"Invalid `filesMap.{target}`: expected a kestra:/// (or nsfile://) URI, "
                                      f"got {uri[:200]!r}")
                sources.append((destination.rstrip("/") + "/" + str(target).lstrip("/"), uri))
        files = _files(ctx)
        storage = ctx.storage  # type: ignore[attr-defined]

        def upload() -> tuple[dict[str, str], list[str]]:
            done: dict[str, str] = {}
            skipped: list[str] = []
            for target, source in sources:
                try:
                    path = normalize(target)
                    if files.is_file(namespace, path):
                        if conflict == "ERROR":
                            raise TaskFailure(f"File '{path}' already exists in namespace '{namespace}' and "
                                              "conflict is set to ERROR")
                        if conflict == "SKIP":
                            skipped.append(f"File '{path}' already exists in namespace '{namespace}' and "
                                           "conflict is set to SKIP. Skipping.")
                            continue
                    if isinstance(source, Path):
                        files.put(namespace, path, source)
                    else:
                        try:
                            with open_uri(storage, source, ctx.flow.namespace) as src:
                                files.put(namespace, path, src)
                        except NotFoundError:
                            continue   # as Kestra: a map entry whose file does not exist is passed over
                except KestraNbError as exc:
                    if isinstance(exc, TaskFailure):
                        raise
                    raise TaskFailure(f"Cannot upload {target}: {exc.message}") from None
                done[path] = files.nsfile_uri(namespace, path)
            return done, skipped

        try:
            done, skipped = await asyncio.to_thread(upload)
        finally:
            if owned and wd is not None:
                shutil.rmtree(wd, ignore_errors=True)
        for line in skipped:
            ctx.log(Level.INFO, line)
        for path, uri in done.items():
            ctx.log(Level.DEBUG, f"Uploaded {uri}")
        return None   # as Kestra's: its Output is never filled


class DownloadFiles(Task):
    """Copy the namespace files matching `files` into this task run's storage; `files`: path → kestra:/// URI."""

    type = "io.kestra.plugin.core.namespace.DownloadFiles"
    props = (Prop("namespace", "string", required=True), Prop("files", "any", required=True),
             Prop("destination", "string", default=""))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        namespace = _namespace(ctx, self.prop("namespace"))
        accept = path_matcher(_texts(ctx, self.prop("files"), "files"), "files")
        destination = ctx.render_string(self.prop("destination"), "destination").strip("/")
        files = _files(ctx)

        storage = ctx.storage  # type: ignore[attr-defined]
        tr = ctx.task_run
        base = storage.task_uri(tr.namespace, tr.flow_id, tr.execution_id, tr.task_id, tr.id, "f")[:-1]

        def download() -> dict[str, str]:
            out: dict[str, str] = {}
            for path in _matching(files, namespace, accept):
                name = (destination + path) if destination else path.lstrip("/")
                with files.open(namespace, path) as src:   # (the task run's files, folders kept, as Kestra)
                    out[path] = storage.put(base + quote(name, safe="/._-~"), src)
            return out

        out = await asyncio.to_thread(download)
        metric = getattr(ctx, "metric", None)
        if metric is not None:
            metric("downloaded", "counter", len(out))
        return {"files": out}


class DeleteFiles(Task):
    """Delete the namespace files matching `files` (and, with `deleteParentFolder`, the folders left empty)."""

    type = "io.kestra.plugin.core.namespace.DeleteFiles"
    props = (Prop("namespace", "string", required=True), Prop("files", "any", required=True),
             Prop("deleteParentFolder", "bool", default=False))

    async def run(self, ctx: TaskContext) -> None:
        namespace = _namespace(ctx, self.prop("namespace"))
        accept = path_matcher(_texts(ctx, self.prop("files"), "files"), "files")
        files = _files(ctx)

        prune = render_bool(ctx, self.prop("deleteParentFolder"), "deleteParentFolder", False)

        def delete() -> list[str]:
            return [path for path in _matching(files, namespace, accept)
                    if files.delete(namespace, path, prune=prune)]

        deleted = await asyncio.to_thread(delete)
        for path in deleted:
            ctx.log(Level.DEBUG, f"Deleted {path}")
        metric = getattr(ctx, "metric", None)
        if metric is not None:
            metric("deleted", "counter", len(deleted))
        return None   # as Kestra's: its Output is never filled


def _matching(files: NamespaceFiles, namespace: str, accept: Callable[[str], bool]) -> list[str]:
    try:
        return files.matching(namespace, accept)
    except IllegalArgumentError as exc:
        raise TaskFailure(f"`namespace`: {exc.message}") from None


__all__ = ["DeleteFiles", "DownloadFiles", "UploadFiles", "load_namespace_files", "path_matcher"]
