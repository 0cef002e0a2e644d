"""File tasks over the internal storage: storage.LocalFiles, storage.Reverse, storage.DeduplicateItems,
storage.FilterItems.

LocalFiles writes `inputs` into a private working directory of its task run and sends the files matching
`outputs` (globs) to the internal storage; Kestra shares that directory with the other tasks of an
enclosing WorkingDirectory, which kestra_nb does not have, so here the directory is the task's own.
DeduplicateItems and FilterItems read a row file (one Ion value per line, Kestra's FileSerde format),
render their expression with each row's fields as variables, and write the kept rows as they were.
Every URI goes through `InternalStorage.path` (storage.check_uri); file work runs in a thread.
"""
from __future__ import annotations

import asyncio
import codecs
import json
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator

from ..errors import ExpressionError, KestraNbError, TaskFailure
from ..expressions import is_truthy
from ..model.ids import id_from, new_id
from ..store.nsfiles import is_fetchable, open_uri
from .base import Prop, Task, TaskContext
from .ion import IonError, loads as ion_loads
from .scripts import glob_regex, matches_any
from .storage import check_uri

_CHUNK = 1 << 16


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return "a text"


def _source(ctx: TaskContext, raw: Any) -> tuple[str, Path]:
    if raw is None:
        raise TaskFailure("`from` is required")
    uri = ctx.render_string(raw, "from").strip()
    path = check_uri(ctx, uri, "from")
    if not path.is_file():
        raise TaskFailure(f"Invalid `from`: file not found: {uri}")
    return uri, path


def _render_with(ctx: TaskContext, template: str, prop: str, extra: dict[str, Any]) -> str:
    """Render `template` with the task's variables plus `extra` (a row's fields: they win), in string mode."""
    try:
        return ctx.renderer.render_string(template, {**ctx.variables, **extra})  # type: ignore[attr-defined]
    except ExpressionError as exc:
        where = getattr(ctx, "_where", None)
        raise (where(prop, exc) if where is not None else exc) from None


# -------------------------------------------------------------------------------------------- LocalFiles

def _relative(name: str) -> Path:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not name or name.startswith(("/", "\\")) or ".." in parts or "\x00" in name or not parts:
        raise TaskFailure(f"Invalid `inputs`: invalid file name `{name}`: expected a path relative to the working "
                          "directory, without `..`")
    return Path(*parts)


class LocalFiles(Task):
    """Write `inputs` (file name → content or kestra:/// URI) into a working directory, then store the files
    matching `outputs` (globs) → `uris` (relative path → URI)."""

    type = "io.kestra.plugin.core.storage.LocalFiles"
    props = (Prop("inputs", "any"), Prop("outputs", "list"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        files = self._inputs(ctx)
        patterns = self._outputs(ctx)
        regexes = [glob_regex(p.lstrip("/"), "outputs") for p in patterns]
        storage = ctx.storage  # type: ignore[attr-defined]

        # inside a WorkingDirectory, the directory its tasks share (kept when done); else a private one
        wd, owned = ctx.task_working_dir()  # type: ignore[attr-defined]

        def work() -> dict[str, str]:
            try:
                for name, content in files.items():
                    target = wd / _relative(name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if is_fetchable(content):
                        try:
                            with open_uri(storage, content, ctx.flow.namespace) as src, open(target, "wb") as out:
                                shutil.copyfileobj(src, out, 1 << 20)
                        except (KestraNbError, OSError) as exc:
                            raise TaskFailure(f"Invalid `inputs.{name}`: cannot read {content}: {exc}") from None
                    else:
                        target.write_text(content, encoding="utf-8")
                found: dict[str, str] = {}
                if not regexes:
                    return found
                for folder, dirs, names in os.walk(wd):
                    dirs.sort()
                    for fname in sorted(names):
                        path = Path(folder, fname)
                        rel = path.relative_to(wd).as_posix()
                        if path.is_file() and matches_any(regexes, rel, "outputs"):
                            # Kestra's unique name: IdUtils.from(path) + "-" + the file's name
                            found[rel] = ctx.put_file(f"{id_from(rel)}-{fname}", path)  # type: ignore[attr-defined]
                return found
            finally:
                if owned:
                    shutil.rmtree(wd, ignore_errors=True)

        return {"uris": await asyncio.to_thread(work)}

    def _inputs(self, ctx: TaskContext) -> dict[str, str]:
        raw = self.prop("inputs")
        if raw is None:
            return {}
        if isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if v is not None}  # Kestra drops null contents
        rendered = ctx.render(raw, "inputs")
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("Invalid `inputs`: expected a map of file names to contents, or a JSON object "
                                  f"of one; it rendered to: {rendered[:200]}") from None
        if not isinstance(rendered, dict):
            raise TaskFailure(f"Invalid `inputs`: expected a map of file names to contents, found "
                              f"{_describe(rendered)}")
        out: dict[str, str] = {}
        for name, content in rendered.items():
            if isinstance(content, (dict, list)):
                raise TaskFailure(f"Invalid `inputs.{name}`: expected a text or a kestra:/// URI, found "
                                  f"{_describe(content)}")
            _relative(str(name))
            out[str(name)] = "" if content is None else \
                ("true" if content is True else "false" if content is False else str(content))
        return out

    def _outputs(self, ctx: TaskContext) -> list[str]:
        raw = self.prop("outputs")
        if raw is None:
            return []
        rendered = ctx.render(raw, "outputs")
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                rendered = [rendered]
        if not isinstance(rendered, list):
            raise TaskFailure(f"Invalid `outputs`: expected a list of globs, found {_describe(rendered)}")
        for i, item in enumerate(rendered):
            if not isinstance(item, str) or not item:
                raise TaskFailure(f"Invalid `outputs[{i}]`: expected a glob such as `*.txt`, found {_describe(item)}")
        return rendered


# ----------------------------------------------------------------------------------------------- Reverse

_SEPARATORS = re.compile(rb"\r\n|\r|\n")


def _reversed_lines(f: BinaryIO, size: int) -> Iterator[bytes]:
    """The lines of a file (ended by \\n, \\r\\n or \\r) from the last to the first, reading backwards in
    blocks: memory holds one block and one line."""
    if size == 0:
        return
    f.seek(size - 1)
    ends_with_separator = f.read(1) in (b"\n", b"\r")
    pos, rest, first = size, b"", True
    while pos > 0:
        start = max(0, pos - _CHUNK)
        if start > 0:  # never cut a \r\n in two: both bytes go into the same block
            f.seek(start - 1)
            if f.read(2) == b"\r\n":
                start -= 1
        f.seek(start)
        lines = _SEPARATORS.split(f.read(pos - start) + rest)
        pos = start
        if first and ends_with_separator:
            lines.pop()  # the final separator ends the last line; it does not start an empty one
        first = False
        rest = lines[0]
        yield from reversed(lines[1:])
    yield rest


class Reverse(Task):
    """Write the lines of the file `from` in reverse order, each followed by `separator` → `uri`."""

    type = "io.kestra.plugin.core.storage.Reverse"
    props = (Prop("from", "string", required=True), Prop("separator", "string", default="\n"),
             Prop("charset", "string", default="UTF-8"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        uri, path = _source(ctx, self.prop("from"))
        separator = ctx.render_string(self.prop("separator"), "separator")
        charset_name = ctx.render_string(self.prop("charset"), "charset").strip()
        try:
            charset = codecs.lookup(charset_name).name
        except LookupError:
            raise TaskFailure(f"Invalid `charset` `{charset_name}`: unknown charset") from None
        suffix = PurePosixPath(path.name).suffix
        ascii_compatible = "\n".encode(charset, "ignore") == b"\n" and "\r".encode(charset, "ignore") == b"\r" \
            and not charset.startswith(("utf-16", "utf-32"))

        def reverse() -> str:
            wd: Path = ctx.working_dir()  # type: ignore[attr-defined]
            try:
                local = wd / f"reverse{suffix}"
                sep = separator.encode(charset, "replace")
                with open(path, "rb") as src, open(local, "wb") as out:
                    if ascii_compatible:
                        for line in _reversed_lines(src, path.stat().st_size):
                            out.write(line + sep)
                    else:  # separators are not single bytes: decode the whole text
                        text = src.read().decode(charset, "replace")
                        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                        if lines and lines[-1] == "":
                            lines.pop()
                        for line in reversed(lines):
                            out.write(line.encode(charset, "replace") + sep)
                return ctx.put_file(f"{new_id()}{suffix}", local)  # type: ignore[attr-defined]
            finally:
                shutil.rmtree(wd, ignore_errors=True)

        return {"uri": await asyncio.to_thread(reverse)}


# ------------------------------------------------------------------------------------------- row files

def _rows(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, line, fields) of each row of an Ion row file; a clear failure for a row that isn't a map."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        number = 0
        for raw in f:
            number += 1
            line = raw[:-1] if raw.endswith("\n") else raw
            if line.endswith("\r"):
                line = line[:-1]
            try:
                row = ion_loads(line)
            except IonError as exc:
                raise TaskFailure(f"Invalid `from`: line {number} is not an Ion value ({exc}): {line[:200]}") from None
            if not isinstance(row, dict):
                raise TaskFailure(f"Invalid `from`: line {number} is not a map of fields: {line[:200]}")
            yield number, line, row


def _write_rows(ctx: TaskContext, lines: Iterator[str]) -> str:
    wd: Path = ctx.working_dir()  # type: ignore[attr-defined]
    try:
        local = wd / "rows.ion"
        with open(local, "w", encoding="utf-8", newline="\n") as out:
            for line in lines:
                out.write(line + "\n")
        return ctx.put_file(f"{new_id()}.ion", local)  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def _expression(task: Task, name: str) -> str:
    raw = task.prop(name)
    if raw is None:
        raise TaskFailure(f"`{name}` is required")
    return str(raw)


class DeduplicateItems(Task):
    """Keep the last row of each key (`expr` rendered with the row's fields) of the row file `from` → `uri`,
    `numKeys`, `processedItemsTotal`, `droppedItemsTotal`."""

    type = "io.kestra.plugin.core.storage.DeduplicateItems"
    props = (Prop("from", "string", required=True), Prop("expr", "string", required=True))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        _, path = _source(ctx, self.prop("from"))
        expr = _expression(self, "expr")
        ctx.variables  # type: ignore[attr-defined]  # built here, on the engine's thread, not in the worker one

        def dedupe() -> dict[str, Any]:
            last: dict[str, int] = {}
            for number, _, row in _rows(path):
                last[_render_with(ctx, expr, "expr", row)] = number
            kept = set(last.values())
            counts = {"processed": 0, "dropped": 0}

            def lines() -> Iterator[str]:
                for number, line, _ in _rows(path):
                    counts["processed"] += 1
                    if number in kept:
                        yield line
                    else:
                        counts["dropped"] += 1

            uri = _write_rows(ctx, lines())
            return {"uri": uri, "numKeys": len(last), "processedItemsTotal": counts["processed"],
                    "droppedItemsTotal": counts["dropped"]}

        return await asyncio.to_thread(dedupe)


FILTER_TYPES = ("INCLUDE", "EXCLUDE")
ERROR_BEHAVIORS = ("FAIL", "INCLUDE", "EXCLUDE")


class FilterItems(Task):
    """Keep (INCLUDE) or drop (EXCLUDE) the rows of the file `from` for which `filterCondition` is truthy →
    `uri`, `processedItemsTotal`, `droppedItemsTotal`; `errorOrNullBehavior` says what a failing row does."""

    type = "io.kestra.plugin.core.storage.FilterItems"
    props = (Prop("from", "string", required=True), Prop("filterCondition", "string", required=True),
             Prop("filterType", "enum", default="INCLUDE", choices=FILTER_TYPES),
             Prop("errorOrNullBehavior", "enum", default="FAIL", choices=ERROR_BEHAVIORS))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        _, path = _source(ctx, self.prop("from"))
        condition = _expression(self, "filterCondition")
        filter_type = self._choice(ctx, "filterType", FILTER_TYPES)
        on_error = self._choice(ctx, "errorOrNullBehavior", ERROR_BEHAVIORS)
        ctx.variables  # type: ignore[attr-defined]  # built here, on the engine's thread, not in the worker one

        def filter_rows() -> dict[str, Any]:
            counts = {"processed": 0, "dropped": 0}

            def lines() -> Iterator[str]:
                for _, line, row in _rows(path):
                    try:
                        match = is_truthy(_render_with(ctx, condition, "filterCondition", row).strip())
                        action = filter_type if match else ("EXCLUDE" if filter_type == "INCLUDE" else "INCLUDE")
                    except ExpressionError:
                        if on_error == "FAIL":
                            raise
                        action = on_error
                    counts["processed"] += 1
                    if action == "INCLUDE":
                        yield line
                    else:
                        counts["dropped"] += 1

            uri = _write_rows(ctx, lines())
            return {"uri": uri, "processedItemsTotal": counts["processed"], "droppedItemsTotal": counts["dropped"]}

        return await asyncio.to_thread(filter_rows)

    def _choice(self, ctx: TaskContext, name: str, choices: tuple[str, ...]) -> str:
        value = ctx.render_string(self.prop(name), name).strip()
        if value not in choices:
            raise TaskFailure(f"Invalid `{name}` `{value}`: expected one of {', '.join(choices)}")
        return value


__all__ = ["DeduplicateItems", "FilterItems", "LocalFiles", "Reverse"]
