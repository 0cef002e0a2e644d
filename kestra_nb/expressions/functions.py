"""The functions and tests of Kestra's Pebble (spec §6.5), and the hooks they need from the engine.

Functions bind their arguments with Pebble's rules (declared names, positional first), as filters do.
Those that reach outside the template — `secret()` (environment variables `SECRET_<KEY>` holding base64),
`kv()` (the store's KV entries), `errorLogs()` (the execution's ERROR logs), `render()` (the renderer) —
get what they need from `RuntimeHooks` (put in the variables by the engine under `runtime.RUNTIME`) or
from the renderer that compiled the template. The file functions (`read()`, `fileSize()`…) live in files.py and
reach only the current execution's `kestra:///` files; local files, the network and processes are not offered.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import random
import socket
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import yaml as _yaml

from ..model.execution import Level
from ..model.ids import new_id
from ..parsing.yamlpos import YamlBudgetError, load_within_budget
from . import dates
from .filters import Bound, bind
from .runtime import (
    BUDGET,
    RUNTIME,
    SCOPES,
    MissingValue,
    RenderError,
    budget_of,
    make_range,
    op_gt,
    op_lt,
)
from .syntax import register_callables
from .values import INT_MAX, INT_MIN, class_name, hash_ordered, java_str

LOOP_PATH = "_kestra_loop_path"  # the current task run's loop values, outermost first (set by the engine)


class RuntimeHooks:
    """What a task run offers its templates: the store, its pending logs, the secrets it revealed."""

    __slots__ = ("store", "namespace", "tenant", "execution_id", "pending_logs", "secrets")

    def __init__(self, store: Any = None, namespace: str | None = None, tenant: str | None = None,
                 execution_id: str | None = None, pending_logs: list[Any] | None = None) -> None:
        self.store = store
        self.namespace = namespace
        self.tenant = tenant
        self.execution_id = execution_id
        self.pending_logs = pending_logs
        self.secrets: set[str] = set()

    def use_secret(self, value: str) -> None:
        """Remember a secret value so the task's logs mask it."""
        if value:
            self.secrets.add(value)

    def mask(self, text: str) -> str:
        """Kestra's log masking: each secret becomes stars, the first nine of a run read `**masked*`."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "*" * len(secret))
                text = text.replace("*" * 9, "**masked*", 1)
        return text


FunctionImpl = Callable[[Any, Bound, int], Any]
FUNCTIONS: dict[str, tuple[tuple[str, ...] | None, FunctionImpl]] = {}


def pebble_function(name: str, args: tuple[str, ...] | None = ()) -> Callable[[FunctionImpl], FunctionImpl]:
    """Register `impl(context, args, line)` as the function `name` with Kestra's argument names."""
    def register(impl: FunctionImpl) -> FunctionImpl:
        FUNCTIONS[name] = (args, impl)
        return impl

    return register


def call_function(context: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], line: int) -> Any:
    """Call a Kestra function from a template (`environment.kh_call`)."""
    names, impl = FUNCTIONS[name]
    try:
        bound = bind("function", name, names, args, kwargs)
    except RenderError as exc:
        raise RenderError(exc.message, line) from None
    try:
        return impl(context, bound, line)
    except RenderError as exc:
        if exc.line is None:
            exc.line = line
        raise


def _variables(context: Any) -> dict[str, Any]:
    """Every variable of the render: context variables, then top-level `set` ones; hidden keys aside."""
    out = {k: v for k, v in context.parent.items() if isinstance(k, str) and not k.startswith(("\x00", "_kestra"))}
    scopes = context.vars.get(SCOPES)
    if scopes:
        out.update(scopes[0].vars)
    return out


def context_variables(context: Any) -> dict[str, Any]:
    """`_context` and printContext(): the variables of the render as a map."""
    return _variables(context)


def _hooks(context: Any) -> RuntimeHooks | None:
    return context.parent.get(RUNTIME)


def _str_arg(bound: Bound, name: str, function: str, required: bool = True) -> str | None:
    if name not in bound or bound[name] is None:
        if required:
            raise RenderError(f"The '{function}' function expects an argument '{name}'.")
        return None
    value = bound[name]
    if not isinstance(value, str):
        raise RenderError(f"The '{function}' function expects an argument '{name}' with type string.")
    return value


def _renderer(context: Any) -> Any:
    renderer = getattr(context.environment, "kestra_renderer", None)
    if renderer is None:  # pragma: no cover - every environment is owned by a Renderer
        raise RenderError("No renderer")
    return renderer


# ------------------------------------------------------------------------------------------- dates & ids

@pebble_function("now", ("format", "timeZone", "existingFormat", "locale"))
def _now(context: Any, a: Bound, line: int) -> Any:
    zone = dates.resolve_zone(a.get("timeZone"))
    fmt = a.get("format") or "iso"
    now = datetime.now(timezone.utc).astimezone(zone)
    try:
        return dates.format_date(now, now.microsecond * 1000, java_str(fmt))
    except dates.DateError as exc:
        raise RenderError(str(exc)) from None


@pebble_function("uuid")
def _uuid(context: Any, a: Bound, line: int) -> Any:
    return str(uuid.uuid4())


@pebble_function("id")
def _id(context: Any, a: Bound, line: int) -> Any:
    return new_id()


@pebble_function("randomInt", ("lower", "upper"))
def _random_int(context: Any, a: Bound, line: int) -> Any:
    bounds = []
    for name in ("lower", "upper"):
        if name not in a:
            raise RenderError(f"The 'randomInt' function expects an argument '{name}'.")
        value = a[name]
        if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
            raise RenderError(f"The 'randomInt' function expects an argument '{name}' with type Integer.")
        bounds.append(value)
    lower, upper = bounds
    if upper < lower:
        raise RenderError("In 'randomInt' upper is less than lower")
    return lower if upper == lower else random.randrange(lower, upper)


@pebble_function("randomPort")
def _random_port(context: Any, a: Bound, line: int) -> Any:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------- collections

@pebble_function("range", ("start", "end", "increment"))
def _range(context: Any, a: Bound, line: int) -> Any:
    return make_range(a.get("start"), a.get("end"), a.get("increment"), budget_of(context))


def _extreme(a: Bound, better: Callable[[Any, Any], bool]) -> Any:
    best = None
    i = 0
    while str(i) in a:
        candidate = a[str(i)]
        i += 1
        if best is None:
            best = candidate
        elif better(candidate, best):
            best = candidate
    return best


@pebble_function("max", None)
def _max(context: Any, a: Bound, line: int) -> Any:
    return _extreme(a, op_gt)


@pebble_function("min", None)
def _min(context: Any, a: Bound, line: int) -> Any:
    return _extreme(a, op_lt)


# ------------------------------------------------------------------------------------------- JSON, YAML

def _from_json(function: str) -> FunctionImpl:
    def parse(context: Any, a: Bound, line: int) -> Any:
        if "json" not in a:
            raise RenderError(f"The '{function}' function expects an argument 'json'.")
        text = a["json"]
        if text is None:
            return None
        if not isinstance(text, str):
            raise RenderError(f"The '{function}' function expects an argument 'json' with type string.")
        budget_of(context).check_size(len(text), "a JSON text")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise RenderError(f"Invalid json: {exc}") from None
    return parse


for _fn in ("fromJson", "json", "jsonDecode"):
    pebble_function(_fn, ("json",))(_from_json(_fn))


class _YamlLoader(_yaml.SafeLoader):
    """YAML as Jackson reads it: dates stay text."""


_YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in _yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pebble_function("yaml", ("yaml",))
def _yaml_function(context: Any, a: Bound, line: int) -> Any:
    if "yaml" not in a:
        raise RenderError("The 'yaml' function expects an argument 'yaml'.")
    text = a["yaml"]
    if not isinstance(text, str):
        raise RenderError("The 'yaml' function expects an argument 'yaml' with type string.")
    budget_of(context).check_size(len(text), "a YAML text")
    try:
        return load_within_budget(text, _YamlLoader)
    except YamlBudgetError as exc:
        raise RenderError(f"Rendering limit exceeded: yaml(): {str(exc).removeprefix('Invalid YAML: ')}") from None
    except _yaml.YAMLError as exc:
        raise RenderError(f"Invalid yaml: {exc}") from None


# ------------------------------------------------------------------------------------------- context

@pebble_function("printContext")
def _print_context(context: Any, a: Bound, line: int) -> Any:
    return _variables(context)


FUNCTIONS["fetchContext"] = FUNCTIONS["printContext"]


@pebble_function("currentEachOutput", ("outputs",))
def _current_each_output(context: Any, a: Bound, line: int) -> Any:
    """The sibling task's output for the current loop value(s) of this task run."""
    if "outputs" not in a:
        raise RenderError("The 'currentEachOutput' function expects an argument 'outputs'.")
    outputs = a["outputs"]
    if not isinstance(outputs, dict):
        raise RenderError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
    for value in context.parent.get(LOOP_PATH) or ():
        if not isinstance(outputs, dict) or value not in outputs:
            raise RenderError(f"currentEachOutput: no output for the loop value `{value}`")
        outputs = outputs[value]
    return outputs


@pebble_function("tasksWithState", ("state",))
def _tasks_with_state(context: Any, a: Bound, line: int) -> Any:
    """Task runs in a state: `[{taskId, state}]`, with `value` for looped task runs."""
    state = a.get("state", "FAILED") if "state" in a else "FAILED"
    if not isinstance(state, str):
        raise RenderError("The 'tasksWithState' function expects an argument 'state'.")
    wanted = state.upper()
    tasks = context.parent.get("tasks") or {}
    out: list[dict[str, Any]] = []
    for task_id, details in tasks.items():
        if not isinstance(details, dict):
            continue
        for key, value in details.items():
            if key == "state" and isinstance(value, str):
                if value.upper() == wanted:
                    out.append(hash_ordered([("taskId", task_id), ("state", value.upper())]))
            elif isinstance(value, dict) and isinstance(value.get("state"), str):
                if value["state"].upper() == wanted:
                    out.append(hash_ordered([("taskId", task_id), ("state", value["state"].upper()),
                                             ("value", key)]))
    return out


@pebble_function("env", ("key", "default"))
def _env(context: Any, a: Bound, line: int) -> Any:
    key = _str_arg(a, "key", "env")
    envs = context.parent.get("envs") or {}
    assert key is not None
    if key.lower() in envs:
        return envs[key.lower()]
    return a.get("default")


# ------------------------------------------------------------------------------------------- rendering

def _render(context: Any, a: Bound, recursive: bool) -> Any:
    if "toRender" not in a:
        raise RenderError("The 'render' function expects an argument 'toRender'.")
    if not isinstance(recursive, bool):
        raise RenderError("The 'render' function expects an optional argument 'recursive' with type boolean.")
    renderer = _renderer(context)
    variables = dict(context.parent)
    scopes = context.vars.get(SCOPES)
    if scopes:
        variables.update(scopes[0].vars)
    variables[BUDGET] = budget_of(context)
    return renderer.render_object(a["toRender"], variables, recursive=recursive)


@pebble_function("render", ("toRender", "recursive"))
def _render_function(context: Any, a: Bound, line: int) -> Any:
    recursive = a.get("recursive")
    return _render(context, a, True if recursive is None else recursive)


@pebble_function("renderOnce", ("toRender",))
def _render_once(context: Any, a: Bound, line: int) -> Any:
    return _render(context, a, False)


# ------------------------------------------------------------------------------------------- secrets, KV, logs

def find_secret(key: str) -> str:
    """OSS secrets: the environment variable `SECRET_<KEY>` (key upper-cased), base64-encoded."""
    wanted = key.upper()
    for name, raw in os.environ.items():
        if name.startswith("SECRET_") and name[7:].upper() == wanted:
            try:
                return base64.b64decode("".join(raw.split()), validate=True).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError):
                raise RenderError(f"Could not decode secret '{name}', make sure it is Base64-encoded") from None
    raise RenderError(f"Cannot find secret for key '{key}'.")


@pebble_function("secret", ("key", "namespace", "subkey"))
def _secret(context: Any, a: Bound, line: int) -> Any:
    key = _str_arg(a, "key", "secret")
    assert key is not None
    value = find_secret(key)
    subkey = a.get("subkey")
    if subkey is not None:
        try:
            document = json.loads(value)
        except ValueError:
            raise RenderError(f"Secret '{key}' is not a JSON object, it has no sub-key '{subkey}'.") from None
        if not isinstance(document, dict) or subkey not in document:
            raise RenderError(f"Cannot find secret sub-key '{subkey}' in secret '{key}'.")
        value = java_str(document[subkey])
    hooks = _hooks(context)
    if hooks is not None:
        hooks.use_secret(value)
    return value


@pebble_function("kv", ("key", "namespace", "errorOnMissing"))
def _kv(context: Any, a: Bound, line: int) -> Any:
    key = _str_arg(a, "key", "kv")
    hooks = _hooks(context)
    flow = context.parent.get("flow") or {}
    namespace = a.get("namespace") or (hooks.namespace if hooks and hooks.namespace else flow.get("namespace"))
    tenant = (hooks.tenant if hooks and hooks.tenant else flow.get("tenantId")) or "main"
    # errorOnMissing left out (or null): a missing key fails the render, as in Kestra 1.x, unless `??`, `???`,
    # `default` or `is defined` takes it as missing (KvFunctionTest: `kv('my-key').field ?? null` is "");
    # errorOnMissing=true: it always fails (Kestra's PebbleException, which `??` does not catch)
    error_on_missing = a.get("errorOnMissing")
    store = hooks.store if hooks is not None and hooks.store is not None else _renderer(context).store
    if store is None:
        raise RenderError("The 'kv' function needs a KV store, and this renderer has none")
    if namespace is None:
        raise RenderError("The 'kv' function needs a namespace")
    entry = store.kv_get(namespace, key, tenant=tenant)
    if entry is None:
        message = f"The key '{key}' does not exist in the namespace '{namespace}'."
        if error_on_missing is True:
            raise RenderError(message)
        if error_on_missing is None:
            raise MissingValue(message, key, line)
        return None
    return entry.value


@pebble_function("errorLogs")
def _error_logs(context: Any, a: Bound, line: int) -> Any:
    """The execution's ERROR logs (stored, then not yet committed), as Kestra's LogEntry maps."""
    from ..model.jsonfmt import log_to_dict

    hooks = _hooks(context)
    execution = context.parent.get("execution") or {}
    execution_id = (hooks.execution_id if hooks else None) or execution.get("id")
    flow = context.parent.get("flow") or {}
    store = hooks.store if hooks is not None and hooks.store is not None else _renderer(context).store
    entries: list[Any] = []
    if store is not None and execution_id is not None:
        entries.extend(store.list_logs(execution_id, min_level=Level.ERROR,
                                       tenant=flow.get("tenantId") or "main"))
    if hooks is not None and hooks.pending_logs:
        entries.extend(e for e in list(hooks.pending_logs)
                       if e.level is Level.ERROR and e.execution_id == execution_id)
    return [log_to_dict(e) for e in entries]


# ------------------------------------------------------------------------------------------- tests

def _test_null(value: Any) -> bool:
    return value is None


def _test_defined(value: Any) -> bool:
    return value is not None


def _test_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return all(ord(c) <= 32 for c in value)  # Java's trim() strips every char up to the space
    if isinstance(value, (list, tuple, dict, set)):
        return not value
    return False


def _integer(value: Any, test: str) -> int:
    if value is None:
        raise RenderError(f'Can not pass null value to "{test}" test.')
    if isinstance(value, bool) or not isinstance(value, int):
        raise RenderError(f"class {class_name(value)} cannot be cast to class java.lang.Long")
    return value


def _test_even(value: Any) -> bool:
    return _integer(value, "even") % 2 == 0


def _test_odd(value: Any) -> bool:
    return _integer(value, "odd") % 2 != 0


def _test_iterable(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _test_map(value: Any) -> bool:
    return isinstance(value, dict)


def _test_json(value: Any) -> bool:
    if not isinstance(value, str):
        raise RenderError(f"class {class_name(value)} cannot be cast to class java.lang.String")
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


TESTS: dict[str, Callable[[Any], bool]] = {
    "null": _test_null, "defined": _test_defined, "empty": _test_empty, "even": _test_even, "odd": _test_odd,
    "iterable": _test_iterable, "map": _test_map, "json": _test_json,
}

register_callables(set(FUNCTIONS), set(TESTS))

__all__ = ["FUNCTIONS", "LOOP_PATH", "RuntimeHooks", "TESTS", "call_function", "context_variables", "find_secret",
           "pebble_function"]
