"""The directory of a `io.kestra.plugin.core.flow.WorkingDirectory` task run, shared by its child tasks.

The executor drives a WorkingDirectory as a Sequential (its children one after the other, `errors`,
`finally`); the runner calls `prepare` before the first child is created and `close` once the last has
ended, each as a coroutine off the engine's step (file copies in worker threads), as Kestra's worker runs
`preExecuteTasks` and `postExecuteTasks` around the group:

- `prepare`: a fresh directory `<storage>/.tmp/wd-<task run id>` (named after the task run, so a recovered
  execution finds it again), the `cache` archive unpacked when one younger than its `ttl` exists, then the
  `namespaceFiles` and the `inputFiles`;
- `close`: the files matching `outputFiles` stored as the task run's own (output `outputFiles`: relative
  path -> `kestra:///` URI), the `cache` archive written when a file it holds changed, then the directory
  removed.

Child tasks that work on files (scripts, LocalFiles, UploadFiles) use that directory through
`TaskRunContext.task_working_dir()`; `workerTaskrun` is the WorkingDirectory's `taskrun`, as in Kestra.
The cache lives at `kestra:///<ns as path>/<flow slug>/caches/<task id slug>/<value slug>/cache.zip`.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from ..errors import TaskFailure, describe
from ..model.jsonfmt import parse_duration
from ..store.nsfiles import normalize
from ..store.storage import InternalStorage, _uri, slugify
from ..tasks.nsfiles import load_namespace_files
from ..tasks.scripts import _collect_output_files, _string_list, _write_input_files, glob_regex, matches_any

PREFIX = "wd-"
MAX_CACHE_BYTES = 1024 ** 3      # bytes of a cache archive's content
MAX_CACHE_FILES = 10_000


def shared_dir(storage: InternalStorage, task_run_id: str) -> Path:
    """The directory a WorkingDirectory task run's children share."""
    return storage.root / ".tmp" / (PREFIX + task_run_id)


def _cache_uri(ctx: Any) -> str:
    tr = ctx.task_run
    parts = [*tr.namespace.split("."), slugify(tr.flow_id), "caches", slugify(tr.task_id),
             slugify(tr.value) if tr.value is not None else "cache"]
    return _uri("/" + "/".join(parts) + "/cache.zip")


def _cache(ctx: Any, raw: Any) -> tuple[list[Any], float | None] | None:
    """The cache's glob patterns and ttl (seconds), or None without a cache."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("patterns") is None:
        raise TaskFailure(f"`cache` must be a map with `patterns` (a list of globs) and an optional `ttl`, "
                          f"found {describe(raw)}")
    patterns = [glob_regex(p.lstrip("/"), "cache.patterns")
                for p in _string_list(ctx, raw["patterns"], "cache.patterns", {})]
    ttl = raw.get("ttl")
    seconds = None
    if ttl is not None:
        text = ctx.render_string(ttl, "cache.ttl")
        try:
            seconds = parse_duration(text.upper() if text[:2].lower() == "pt" else text).total_seconds()
        except ValueError:
            raise TaskFailure(f"Invalid `cache.ttl` `{text}`: expected an ISO-8601 duration such as PT1H") from None
    return patterns, seconds


async def prepare(ctx: Any) -> None:
    """Make the task run's directory ready for its children (see the module's docstring)."""
    props = ctx.spec.props
    storage: InternalStorage = ctx.storage
    path = shared_dir(storage, ctx.task_run.id)
    cache = _cache(ctx, props.get("cache"))

    def fresh() -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        if cache is not None:
            _restore_cache(storage, _cache_uri(ctx), path, cache[1])

    await asyncio.to_thread(fresh)
    try:
        await load_namespace_files(ctx, props.get("namespaceFiles"), path)
        _write_input_files(ctx, path, props.get("inputFiles"), {"workingDir": str(path)})
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, path, True)
        raise


async def close(ctx: Any) -> dict[str, Any] | None:
    """Store the output files and the cache, remove the directory; the task run's outputs (or None)."""
    props = ctx.spec.props
    storage: InternalStorage = ctx.storage
    path = shared_dir(storage, ctx.task_run.id)
    try:
        patterns = props.get("outputFiles")
        cache = _cache(ctx, props.get("cache"))
        wanted = _string_list(ctx, patterns, "outputFiles", {"workingDir": str(path)}) if patterns is not None else []
        found: dict[str, str] = {}
        if path.is_dir():
            if wanted:
                found = await asyncio.to_thread(_collect_output_files, ctx, path, wanted, set())
            if cache is not None:
                await asyncio.to_thread(_save_cache, storage, _cache_uri(ctx), path, cache[0])
        return {"outputFiles": found} if found else None
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def _restore_cache(storage: InternalStorage, uri: str, path: Path, ttl: float | None) -> None:
    if not storage.exists(uri):
        return
    local = storage.path(uri)
    mtime = local.stat().st_mtime
    if ttl is not None and time.time() - mtime > ttl:
        storage.delete(uri)   # expired, as Kestra's cache TTL
        return
    try:
        with zipfile.ZipFile(local) as archive:
            entries = [e for e in archive.infolist() if not e.is_dir()]
            if len(entries) > MAX_CACHE_FILES or sum(e.file_size for e in entries) > MAX_CACHE_BYTES:
                return
            for entry in entries:
                target = path.joinpath(*normalize(entry.filename).lstrip("/").split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.utime(target, (mtime, mtime))   # unchanged files do not rewrite the cache
    except (zipfile.BadZipFile, OSError, ValueError):
        storage.delete(uri)   # a broken archive is no cache


def _save_cache(storage: InternalStorage, uri: str, path: Path, patterns: list[Any]) -> None:
    since = storage.path(uri).stat().st_mtime if storage.exists(uri) else 0.0
    matched: list[Path] = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            local = Path(folder, name)
            rel = local.relative_to(path).as_posix()
            if local.is_file() and not local.is_symlink() and matches_any(patterns, rel, "cache.patterns"):
                matched.append(local)
    if not matched or not any(p.stat().st_mtime > since for p in matched):
        return
    matched = matched[:MAX_CACHE_FILES]
    archive_path = path.parent / (path.name + ".cache.zip")
    try:
        total = 0
        with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for local in matched:
                total += local.stat().st_size
                if total > MAX_CACHE_BYTES:
                    break
                archive.write(local, local.relative_to(path).as_posix())
        storage.put(uri, archive_path)
    finally:
        archive_path.unlink(missing_ok=True)


__all__ = ["close", "prepare", "shared_dir"]
