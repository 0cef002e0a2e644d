"""Script tasks (spec §5.24): `io.kestra.plugin.scripts.python.Script|Commands` and `shell.Script|Commands`.

They run on the Process task runner only: the script is a child process of the engine, in a private working
directory, with the engine's environment plus `env`. A Docker (or any other) task runner is refused with a
message naming `io.kestra.plugin.core.runner.Process`; with no `taskRunner` the Process runner is used
silently (Kestra's default is Docker) and `containerImage` is accepted and ignored.

Each stdout line is logged at INFO and each stderr line at ERROR as it arrives, except lines that are whole
`::{json}::` messages (Kestra's line protocol, what the `kestra` library prints): their `outputs` are
merged into the `vars` output, their `metrics` recorded and their `logs` emitted at their level.

The child runs in its own session (process group). A kill or a timeout cancels the task's coroutine; the
whole group then gets SIGTERM, SIGKILL after a short grace, and is awaited, so nothing is left behind.

A python `Script` runs with the engine's own interpreter (a notebook's packages are there) unless
`dependencies` are given: those are pip-installed once into a cached virtual environment under
`<store home>/venvs/<hash>` that also sees the engine's site-packages.
"""
from __future__ import annotations

import ast
import asyncio
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import site
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ExpressionError, KestraNbError, TaskFailure, describe
from ..model.execution import Level
from ..store.nsfiles import is_fetchable, open_uri
from ..parsing.javaregex import JavaPattern, RegexTimeout, bounded_regex
from .base import Prop, Task, TaskContext

PROCESS_RUNNERS = frozenset({
    "io.kestra.plugin.core.runner.Process",
    "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner",  # 0.16/0.17 name
})
PROCESS_HINT = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"
DEFAULT_INTERPRETER = ("/bin/sh", "-c")
PROTOCOL = re.compile(r"::(\{.*})::")            # Kestra's ^::(\{.*})::$ on a whole line
KILL_GRACE = 2.0        # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 1.0       # after the process exits, how long children may keep its pipes open
READY = ".kestra_nb-ready"
PYTHON_PRELUDE = "true = True; false = False; null = None\n"
_LEVELS = {"TRACE": Level.TRACE, "DEBUG": Level.DEBUG, "INFO": Level.INFO, "WARN": Level.WARN,
           "WARNING": Level.WARN, "ERROR": Level.ERROR, "CRITICAL": Level.ERROR, "FATAL": Level.ERROR}
_METRIC_TYPES = frozenset({"counter", "timer", "gauge"})

COMMON_PROPS = (
    Prop("taskRunner", "map"),
    Prop("containerImage", "string"),
    Prop("beforeCommands", "list"),
    Prop("env", "map"),
    Prop("interpreter", "list"),
    Prop("failFast", "bool", default=True),
    Prop("warningOnStdErr", "bool", deprecated=True),
    Prop("targetOS", "enum", default="AUTO", choices=("AUTO", "LINUX", "WINDOWS")),
    Prop("inputFiles", "any"),
    Prop("outputFiles", "list"),
    Prop("namespaceFiles", "map"),
    Prop("runner", "enum", choices=("PROCESS", "DOCKER"), deprecated=True),
    Prop("docker", "map", deprecated=True),
)
PYTHON_PROPS = (
    Prop("dependencies", "list"),
    Prop("pythonVersion", "string"),
    Prop("packageManager", "enum", default="PIP", choices=("UV", "PIP")),
    Prop("dependencyCacheEnabled", "bool", default=True),
)


# ------------------------------------------------------------------------------------------ the tasks


class _ScriptTask(Task):
    """What the four script tasks share: runner check, files, env, the process and its outputs."""

    python: bool = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        self._check_runner(ctx)
        # inside a WorkingDirectory, the directory its tasks share (kept when done); else a private one
        wd, owned = ctx.task_working_dir()  # type: ignore[attr-defined]
        extra_dirs: list[Path] = []
        generated: set[Path] = set()
        try:
            extra = {"workingDir": str(wd)}
            env = self._env(ctx, wd, extra)
            from .nsfiles import load_namespace_files   # (it imports this module)

            await load_namespace_files(ctx, self.prop("namespaceFiles"), wd)
            _write_input_files(ctx, wd, self.prop("inputFiles"), extra)
            python = await self._python(ctx, extra_dirs) if self.python else None
            if python is not None:
                bindir = str(Path(python).parent)
                env["PATH"] = bindir + os.pathsep + env.get("PATH", os.defpath)
            argv, written = self._command(ctx, wd, extra, python)
            generated.update(written)
            code, variables = await run_process(ctx, argv, wd, env)
            outputs: dict[str, Any] = {"vars": variables, "exitCode": code}
            if code != 0:
                raise TaskFailure(f"Command failed with exit code {code}", outputs=outputs)
            patterns = self.prop("outputFiles")
            if patterns is not None:
                outputs["outputFiles"] = _collect_output_files(ctx, wd, _string_list(ctx, patterns, "outputFiles",
                                                                                      extra), generated)
            return outputs
        finally:
            if owned:
                shutil.rmtree(wd, ignore_errors=True)
            else:   # the script file this task wrote goes; what the script made stays for the next tasks
                for path in generated:
                    path.unlink(missing_ok=True)
            for d in extra_dirs:
                shutil.rmtree(d, ignore_errors=True)

    # ---------------------------------------------------------------------------------- properties

    def _check_runner(self, ctx: TaskContext) -> None:
        runner = self.prop("taskRunner")
        if runner is not None:
            kind = runner.get("type") if isinstance(runner, dict) else None
            if not isinstance(kind, str) or not kind:
                raise TaskFailure(f"`taskRunner` must be a map with a `type`, found {describe(runner)}; "
                                  f"use `{PROCESS_HINT}`")
            if kind not in PROCESS_RUNNERS:
                what = "Docker task runner" if ".docker." in kind.lower() else "task runner"
                raise TaskFailure(f"The {what} `{kind}` is not supported by kestra_nb: scripts run on the host. "
                                  f"Use `{PROCESS_HINT}` (or omit `taskRunner`)")
        legacy = self.prop("runner")
        if isinstance(legacy, str) and legacy.upper() == "DOCKER":
            raise TaskFailure(f"`runner: DOCKER` is not supported by kestra_nb: scripts run on the host. "
                              f"Use `{PROCESS_HINT}` (or omit `runner`)")

    def _env(self, ctx: TaskContext, wd: Path, extra: dict[str, Any]) -> dict[str, str]:
        env = dict(os.environ)
        # an IPython kernel's inline matplotlib backend cannot load outside the kernel
        if env.get("MPLBACKEND", "").startswith("module://matplotlib_inline"):
            del env["MPLBACKEND"]
        env["PYTHONUNBUFFERED"] = "1"  # so print() lines stream while the script runs
        env["WORKING_DIR"] = str(wd)
        raw = self.prop("env")
        if raw is None:
            return env
        rendered = render(ctx, raw, "env", extra)
        if isinstance(rendered, str):
            rendered = _json_value(rendered, "env", "a map of variable name to value", dict)
        if not isinstance(rendered, dict):
            raise TaskFailure(f"`env` must be a map of variable name to value, found {describe(rendered)}")
        for key, value in rendered.items():
            if isinstance(value, (dict, list)):
                raise TaskFailure(f"`env.{key}` must be a text, found {describe(value)}")
            env[str(key)] = "" if value is None else _text(value)
        return env

    def _shell(self, ctx: TaskContext, extra: dict[str, Any], commands: list[str]) -> list[str]:
        """interpreter + [the before-commands and commands as one text], `set -e` first when failFast."""
        interpreter = self._interpreter(ctx, extra)
        lines: list[str] = []
        if _truthy(self.prop("failFast", True)):
            lines.append("set -e")
        before = self.prop("beforeCommands")
        if before is not None:
            lines.extend(_string_list(ctx, before, "beforeCommands", extra))
        lines.extend(commands)
        return [*interpreter, "\n".join(lines)]

    def _interpreter(self, ctx: TaskContext, extra: dict[str, Any]) -> list[str]:
        raw = self.prop("interpreter")
        if raw is None:
            return list(DEFAULT_INTERPRETER)
        interpreter = _string_list(ctx, raw, "interpreter", extra)
        if not interpreter:
            raise TaskFailure('`interpreter` must not be empty: expected a command such as ["/bin/sh", "-c"]')
        return interpreter

    def _command(self, ctx: TaskContext, wd: Path, extra: dict[str, Any],
                 python: str | None) -> tuple[list[str], set[Path]]:
        raise NotImplementedError

    async def _python(self, ctx: TaskContext, extra_dirs: list[Path]) -> str:
        """The interpreter to run: the engine's, another version's, or a cached venv's with `dependencies`."""
        base = sys.executable
        version = self.prop("pythonVersion")
        if version is not None:
            wanted = ctx.render_string(version, "pythonVersion").strip()
            current = f"{sys.version_info[0]}.{sys.version_info[1]}"
            if wanted and wanted != current and not current.startswith(wanted + ".") and wanted != current[:1]:
                found = shutil.which(f"python{wanted}")
                if found is None:
                    raise TaskFailure(f"`pythonVersion` {wanted} is not available on this host: no `python{wanted}` "
                                      f"on PATH (the engine runs Python {current})")
                base = found
        deps_raw = self.prop("dependencies")
        if deps_raw is None:
            return base
        deps = [d.strip() for d in _string_list(ctx, deps_raw, "dependencies", {}) if d.strip()]
        if not deps:
            return base
        if not _truthy(self.prop("dependencyCacheEnabled", True)):
            scratch = ctx.working_dir()  # type: ignore[attr-defined]
            extra_dirs.append(scratch)
            return await ensure_venv(ctx, base, deps, scratch / "venv", None)
        home = venvs_home(ctx)
        return await ensure_venv(ctx, base, deps, home / venv_key(base, deps), home)


class PythonScript(_ScriptTask):
    """Run an inline Python script with the engine's interpreter (or a cached venv with `dependencies`)."""

    type = "io.kestra.plugin.scripts.python.Script"
    props = (Prop("script", "string", required=True), *COMMON_PROPS, *PYTHON_PROPS)
    python = True

    def _command(self, ctx: TaskContext, wd: Path, extra: dict[str, Any],
                 python: str | None) -> tuple[list[str], set[Path]]:
        script = render(ctx, self.prop("script"), "script", extra)
        if not isinstance(script, str):
            script = _text(script)
        path = wd / f"{ctx.task_run.id}.py"
        path.write_text(python_source(script), encoding="utf-8")
        assert python is not None
        if self.prop("beforeCommands") is None and self.prop("interpreter") is None:
            # no shell in between: one process less, and signals reach Python directly
            return [python, str(path)], {path}
        return self._shell(ctx, extra, [f"{shlex.quote(python)} {shlex.quote(str(path))}"]), {path}


class PythonCommands(_ScriptTask):
    """Run shell commands (`python x.py` resolves to the engine's interpreter or the dependencies' venv)."""

    type = "io.kestra.plugin.scripts.python.Commands"
    props = (Prop("commands", "list", required=True), *COMMON_PROPS, *PYTHON_PROPS)
    python = True

    def _command(self, ctx: TaskContext, wd: Path, extra: dict[str, Any],
                 python: str | None) -> tuple[list[str], set[Path]]:
        return self._shell(ctx, extra, _string_list(ctx, self.prop("commands"), "commands", extra)), set()


class ShellScript(_ScriptTask):
    """Run an inline shell script, written to a temporary `.sh` file sourced by the interpreter."""

    type = "io.kestra.plugin.scripts.shell.Script"
    props = (Prop("script", "string", required=True), *COMMON_PROPS)

    def _command(self, ctx: TaskContext, wd: Path, extra: dict[str, Any],
                 python: str | None) -> tuple[list[str], set[Path]]:
        script = render(ctx, self.prop("script"), "script", extra)
        path = wd / f"{ctx.task_run.id}.sh"
        path.write_text(script if isinstance(script, str) else _text(script), encoding="utf-8")
        return self._shell(ctx, extra, [f". {shlex.quote(str(path))}"]), {path}


class ShellCommands(_ScriptTask):
    """Run shell commands, joined by newlines, in one interpreter."""

    type = "io.kestra.plugin.scripts.shell.Commands"
    props = (Prop("commands", "list", required=True), *COMMON_PROPS)

    def _command(self, ctx: TaskContext, wd: Path, extra: dict[str, Any],
                 python: str | None) -> tuple[list[str], set[Path]]:
        return self._shell(ctx, extra, _string_list(ctx, self.prop("commands"), "commands", extra)), set()


# ------------------------------------------------------------------------------------- rendering


def render(ctx: TaskContext, value: Any, prop: str, extra: dict[str, Any]) -> Any:
    """Render a property with the task's variables plus `extra` (`workingDir`)."""
    try:
        return ctx.renderer.render_value(value, {**ctx.variables, **extra})  # type: ignore[attr-defined]
    except ExpressionError as exc:
        where = getattr(ctx, "_where", None)
        raise (where(prop, exc) if where is not None else exc) from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _json_value(text: str, prop: str, expected: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise TaskFailure(f"`{prop}` must be {expected} or a JSON {'object' if kind is dict else 'array'} of one; "
                          f"it rendered to invalid JSON ({exc}): {text[:200]}") from None
    if not isinstance(value, kind):
        raise TaskFailure(f"`{prop}` must be {expected}; it rendered to a JSON {describe(value)}: {text[:200]}")
    return value


def _string_list(ctx: TaskContext, raw: Any, prop: str, extra: dict[str, Any]) -> list[str]:
    """A list-of-texts property, written as a list or as an expression rendering to a JSON array."""
    rendered = render(ctx, raw, prop, extra)
    if isinstance(rendered, str):
        rendered = _json_value(rendered, prop, "a list of texts", list)
    if not isinstance(rendered, list):
        raise TaskFailure(f"`{prop}` must be a list of texts, found {describe(rendered)}")
    out = []
    for i, item in enumerate(rendered):
        if item is None or isinstance(item, (dict, list)):
            raise TaskFailure(f"`{prop}[{i}]` must be a text, found {describe(item)}")
        out.append(_text(item))
    return out


def python_source(script: str) -> str:
    """The script with Kestra's `true/false/null` prelude, placed after any `from __future__` imports."""
    if "__future__" not in script:
        return PYTHON_PRELUDE + script
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return PYTHON_PRELUDE + script  # Python reports the error itself
    end = 0
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if docstring or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            end = node.end_lineno or end
        else:
            break
    lines = script.splitlines(keepends=True)
    head = "".join(lines[:end])
    if head and not head.endswith("\n"):
        head += "\n"
    return head + PYTHON_PRELUDE + "".join(lines[end:])


# ----------------------------------------------------------------------------------------- files


def _relative(name: str, prop: str) -> Path:
    parts = Path(name.replace("\\", "/")).parts
    if not name or name.startswith("/") or ".." in parts or "\x00" in name or not parts:
        raise TaskFailure(f"`{prop}`: invalid file name `{name}`: expected a path relative to the working "
                          f"directory, without `..`")
    return Path(*parts)


def _write_input_files(ctx: TaskContext, wd: Path, raw: Any, extra: dict[str, Any]) -> None:
    if raw is None:
        return
    files = render(ctx, raw, "inputFiles", extra)
    if isinstance(files, str):
        files = _json_value(files, "inputFiles", "a map of file names to contents", dict)
    if not isinstance(files, dict):
        raise TaskFailure(f"`inputFiles` must be a map of file name to content or kestra:/// (nsfile://) URI, "
                          f"found {describe(files)}")
    storage = ctx.storage  # type: ignore[attr-defined]
    for name, content in files.items():
        target = wd / _relative(str(name), "inputFiles")
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None or isinstance(content, (dict, list)):
            raise TaskFailure(f"`inputFiles.{name}` must be a text or a kestra:/// URI, found {describe(content)}")
        text = _text(content)
        if is_fetchable(text):
            try:
                with open_uri(storage, text, ctx.flow.namespace) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except (KestraNbError, OSError) as exc:  # NotFoundError, IllegalArgumentError, a write error
                raise TaskFailure(f"`inputFiles.{name}`: cannot read {text}: {exc}") from None
        else:
            target.write_text(text, encoding="utf-8")


MAX_GLOB = 1000   # characters of one glob or path regex from a flow


def glob_regex(pattern: str, prop: str = "outputFiles") -> JavaPattern:
    """Java's `glob:` syntax on relative paths: `*` within a folder, `**` across, `?`, `[..]`, `{a,b}`; the
    pattern compiled as every user pattern is (parsing/javaregex: each match bounded in time, off the GIL), so
    a glob that backtracks (`**/**/**…b`) fails its task instead of freezing the process."""
    if len(pattern) > MAX_GLOB:
        raise TaskFailure(f"`{prop}`: a glob of {len(pattern)} characters; at most {MAX_GLOB} are allowed")
    out: list[str] = []
    i, group = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "{":
            out.append("(?:")
            group += 1
        elif c == "}" and group:
            out.append(")")
            group -= 1
        elif c == "," and group:
            out.append("|")
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    if group:
        raise TaskFailure(f"`{prop}`: invalid glob `{pattern}` (unclosed `{{`)")
    try:
        return bounded_regex("".join(out), pattern)
    except re.error as exc:
        raise TaskFailure(f"`{prop}`: invalid glob `{pattern}`: {exc.msg}") from None


def matches_any(patterns: list[JavaPattern], path: str, prop: str) -> bool:
    """Whether `path` matches one of the patterns (a pattern that runs past its time fails the task)."""
    try:
        return any(p.fullmatch(path) for p in patterns)
    except RegexTimeout as exc:
        raise TaskFailure(f"`{prop}`: {exc}") from None


def _collect_output_files(ctx: TaskContext, wd: Path, patterns: list[str], generated: set[Path]) -> dict[str, str]:
    if not patterns:
        return {}
    regexes = [glob_regex(p.lstrip("/")) for p in patterns]
    tr = ctx.task_run
    storage = ctx.storage  # type: ignore[attr-defined]
    base = storage.task_uri(tr.namespace, tr.flow_id, tr.execution_id, tr.task_id, tr.id, "f")[:-1]
    found: dict[str, str] = {}
    for folder, dirs, names in os.walk(wd):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if path in generated or not path.is_file():
                continue
            rel = path.relative_to(wd).as_posix()
            if matches_any(regexes, rel, "outputFiles"):
                found[rel] = storage.put(base + quote(rel, safe="/._-~"), path)
    return found


# --------------------------------------------------------------------------------------- process


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Until the process itself has ended; `proc.wait()` (Python < 3.12) also waits for whoever holds its pipes."""
    if proc.returncode is not None:
        return
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:  # already ended and reaped
        return
    except (AttributeError, OSError):  # no pidfd on this system: the pipes' end will do
        await proc.wait()
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
    try:
        await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period, and reap the process."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        if proc.returncode is None:
            await asyncio.wait_for(_exited(proc), KILL_GRACE)
    except asyncio.TimeoutError:
        pass
    finally:  # also when cancelled again while waiting: nothing of the group may survive
        _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _pump(stream: asyncio.StreamReader, on_line: Callable[[str, bool], None], is_err: bool) -> None:
    buffer = bytearray()
    while True:
        chunk = await stream.read(1 << 16)
        if not chunk:
            break
        buffer += chunk
        end = buffer.rfind(b"\n")
        if end < 0:
            continue
        complete = bytes(buffer[:end])
        del buffer[:end + 1]
        for line in complete.split(b"\n"):
            on_line(line.decode("utf-8", "replace").rstrip("\r"), is_err)
    if buffer:
        on_line(bytes(buffer).decode("utf-8", "replace").rstrip("\r"), is_err)


class LineProtocol:
    """Turns a script's output lines into logs, and `::{json}::` lines into vars, metrics and logs."""

    __slots__ = ("ctx", "vars")

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.vars: dict[str, Any] = {}

    def __call__(self, line: str, is_err: bool) -> None:
        match = PROTOCOL.fullmatch(line) if line.startswith("::") else None
        if match is None:
            self.ctx.log(Level.ERROR if is_err else Level.INFO, line)
            return
        try:
            message = json.loads(match.group(1))
        except ValueError as exc:
            self.ctx.log(Level.WARN, f"Invalid outputs '{exc}' in the line {line[:200]}")
            return
        if not isinstance(message, dict):
            self.ctx.log(Level.WARN, f"Invalid outputs: expected a JSON object in the line {line[:200]}")
            return
        outputs = message.get("outputs")
        if isinstance(outputs, dict):
            self.vars.update(outputs)
        elif outputs is not None:
            self.ctx.log(Level.WARN, f"Invalid outputs: `outputs` must be an object, found {describe(outputs)}")
        self._metrics(message.get("metrics"))
        self._logs(message.get("logs"))

    def _metrics(self, metrics: Any) -> None:
        if metrics is None:
            return
        for metric in metrics if isinstance(metrics, list) else [metrics]:
            name = metric.get("name") if isinstance(metric, dict) else None
            kind = metric.get("type") if isinstance(metric, dict) else None
            value = metric.get("value") if isinstance(metric, dict) else None
            tags = metric.get("tags") if isinstance(metric, dict) else None
            if not isinstance(name, str) or kind not in _METRIC_TYPES or isinstance(value, bool) \
                    or not isinstance(value, (int, float)) or not isinstance(tags, (dict, type(None))):
                self.ctx.log(Level.WARN, "Invalid metric: expected {\"name\": text, \"type\": counter|timer|gauge, "
                                         f"\"value\": number, \"tags\": map}}, found {json.dumps(metric)[:200]}")
                continue
            self.ctx.metric(name, kind, value, tags)  # type: ignore[attr-defined]

    def _logs(self, logs: Any) -> None:
        if logs is None:
            return
        for entry in logs if isinstance(logs, list) else [logs]:
            if not isinstance(entry, dict) or "message" not in entry:
                self.ctx.log(Level.WARN, f"Invalid log: expected {{\"level\", \"message\"}}, found "
                                         f"{json.dumps(entry)[:200]}")
                continue
            level = _LEVELS.get(str(entry.get("level", "INFO")).upper(), Level.INFO)
            message = entry["message"]
            self.ctx.log(level, message if isinstance(message, str) else _text(message))


async def run_process(ctx: TaskContext, argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Run `argv` in its own process group, streaming its lines; its exit code and the `vars` it emitted."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise TaskFailure(f"Cannot start `{argv[0]}`: {exc.strerror or exc}") from None
    protocol = LineProtocol(ctx)
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [asyncio.ensure_future(_pump(proc.stdout, protocol, False)),
             asyncio.ensure_future(_pump(proc.stderr, protocol, True))]
    try:
        await _exited(proc)
        _, pending = await asyncio.wait(pumps, timeout=DRAIN_GRACE)
        if pending:  # background children still hold the pipes: the task is over, so are they
            _signal_group(proc.pid, signal.SIGKILL)
            await asyncio.wait(pending)
        for pump in pumps:
            pump.result()
        code = await proc.wait()
    except BaseException:
        for pump in pumps:
            pump.cancel()
        await terminate(proc)
        raise
    return code, protocol.vars


# ---------------------------------------------------------------------------------- dependencies


def venvs_home(ctx: TaskContext) -> Path:
    """Where cached venvs live: `<home>/venvs` for the SQLite store, inside the storage root otherwise."""
    store = ctx.renderer.store  # type: ignore[attr-defined]
    storage = ctx.storage  # type: ignore[attr-defined]
    if isinstance(getattr(store, "path", None), Path):
        return storage.root.parent / "venvs"
    return storage.root / ".tmp" / "venvs"


def venv_key(python: str, deps: list[str]) -> str:
    """The cache key of a venv: sorted requirements, Python version and base interpreter."""
    version = sys.version.split()[0] if python == sys.executable else python
    text = json.dumps({"deps": sorted(deps), "python": version, "base": python})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


async def _capture(argv: list[str], env: dict[str, str] | None = None,
                   emit: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run argv (stderr into stdout); its exit code and output, each line passed to `emit` as it comes."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True, env=env)
    lines: list[str] = []

    def on_line(line: str, is_err: bool) -> None:
        lines.append(line)
        if emit is not None:
            emit(line)

    assert proc.stdout is not None
    try:
        await _pump(proc.stdout, on_line, False)
        code = await proc.wait()
    except BaseException:
        await terminate(proc)
        raise
    return code or 0, "\n".join(lines)


def _pip_line(log: Callable[[Level, str], None]) -> Callable[[str], None]:
    """pip's output as task logs: its summary, warnings and errors at INFO, the rest at DEBUG."""
    def emit(line: str) -> None:
        if line.strip():
            important = line.startswith(("Successfully installed", "ERROR", "WARNING"))
            log(Level.INFO if important else Level.DEBUG, line)
    return emit


async def _lock(fd: int) -> None:
    """Take an exclusive flock without blocking the loop; if cancelled, the fd is closed once the lock came."""
    future = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda _: os.close(fd))
        raise


async def ensure_venv(ctx: TaskContext, base: str, deps: list[str], venv: Path, home: Path | None) -> str:
    """The python of a venv with `deps` installed, built once (under a lock) and reused."""
    python = venv / "bin" / "python"
    if (venv / READY).is_file():
        return str(python)
    fd: int | None = None
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / f"{venv.name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        await _lock(fd)
    try:
        if (venv / READY).is_file():  # another builder finished while we waited
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)  # a build that died half-way
        ctx.log(Level.INFO, f"Creating a virtual environment in {venv} for the dependencies {deps}")
        try:
            await _build_venv(base, deps, venv, ctx.log)
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        (venv / READY).write_text(json.dumps({"dependencies": sorted(deps), "python": base}), encoding="utf-8")
        return str(python)
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


async def _build_venv(base: str, deps: list[str], venv: Path, log: Callable[[Level, str], None]) -> None:
    has_pip = base == sys.executable and _engine_has_pip()
    argv = [base, "-m", "venv", "--system-site-packages", *(["--without-pip"] if has_pip else []), str(venv)]
    code, out = await _capture(argv)
    if code != 0:
        raise TaskFailure(f"Cannot create the virtual environment {venv} (exit code {code}):\n{out.strip()[-4000:]}")
    python = venv / "bin" / "python"
    if base == sys.executable:
        # the engine's own site-packages (a project venv's, not just the base Python's), after the venv's own
        parents = [p for p in (*site.getsitepackages(), site.getusersitepackages()) if os.path.isdir(p)]
        code, purelib = await _capture([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
        if code == 0 and parents:
            Path(purelib.strip(), "_kestra_nb_parent.pth").write_text("\n".join(parents) + "\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(python)] if has_pip else [str(python), "-m", "pip"]
    code, out = await _capture([*pip, "install", "--disable-pip-version-check", "--no-input", *deps],
                               env={**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"}, emit=_pip_line(log))
    if code != 0:
        raise TaskFailure(f"Failed to install dependencies {deps} (pip exit code {code}):\n{out.strip()[-4000:]}")


def _engine_has_pip() -> bool:
    import importlib.util

    return importlib.util.find_spec("pip") is not None


__all__ = ["PythonCommands", "PythonScript", "ShellCommands", "ShellScript", "glob_regex", "python_source",
           "run_process", "terminate"]
