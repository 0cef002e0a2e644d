"""Task mappings -> `TaskSpec`s (spec §4.4): common properties, the type's own `Prop`s, nested task kinds.

A task's type is resolved through the registry (legacy aliases are noted as infos and deprecation
paths); its own properties are checked against the class's `Prop` kinds and kept as written in
`TaskSpec.props`; kinds `tasks`, `task_map`, `dag` and `inputs` are parsed recursively. The flow's
`pluginDefaults` are merged into each matching task before it is checked, as Kestra does, so a required
property may come from a default. A task of an unknown type is reported, and the tasks written inside it
are still checked, so one typo does not hide the violations of a whole branch. Rules that span several
properties of one type (Kestra's per-class validators, e.g. Switch's) run after its properties are checked.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from ..model.execution import Level
from ..model.flow import TaskSpec
from ..model.jsonfmt import format_duration, parse_duration
from ..tasks.base import Prop, Task
from ..tasks.registry import REFUSED_TYPES
from .checker import BAD, Checker, F, child, did_you_mean, is_expression
from .inputs import parse_inputs

TASK_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*")
LEVELS = tuple(level.value for level in Level)

_COMMON: dict[str, F] = {
    "version": F("string"), "description": F("string"), "retry": F("any"),
    "timeout": F("duration", dynamic=True), "disabled": F("bool"), "allowFailure": F("bool"),
    "allowWarning": F("bool"), "runIf": F("string"), "logLevel": F("enum", choices=LEVELS), "logToFile": F("bool"),
    "workerGroup": F("any"), "taskCache": F("any"),
}
_BOOLS = {"disabled": "disabled", "allowFailure": "allow_failure", "allowWarning": "allow_warning",
          "logToFile": "log_to_file"}
_WORKER_GROUP = {"key": F("string"), "fallback": F("enum", choices=("FAIL", "WAIT", "CANCEL"))}
WORKER_GROUP_EE = "Worker Group is an Enterprise Edition functionality"   # Kestra OSS's WorkerGroupValidator
_TASK_CACHE = {"enabled": F("bool"), "ttl": F("duration")}
_DAG_TASK = {"task": F("any"), "dependsOn": F("string_list")}

RETRY_BEHAVIORS = ("RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION")
_RETRY_COMMON = {
    "type": F("string"), "maxAttempt": F("int", minimum=1), "maxDuration": F("duration"),
    "warningOnRetry": F("bool"), "behavior": F("enum", choices=RETRY_BEHAVIORS),
}
_RETRY_TYPES: dict[str, dict[str, F]] = {
    "constant": {"interval": F("duration", required=True)},
    "exponential": {"interval": F("duration", required=True), "maxInterval": F("duration", required=True),
                    "delayFactor": F("number")},
    "random": {"minInterval": F("duration", required=True), "maxInterval": F("duration", required=True)},
}


def check_worker_group(ck: Checker, path: str, value: Any) -> dict[str, Any] | None:
    """Validate a `workerGroup` (task, trigger or flow); one naming a `key` is refused, as Kestra OSS does."""
    fields = ck.fields(path, value, _WORKER_GROUP)
    if fields is None:
        return None
    if value.get("key") is not None:
        ck.error(path, WORKER_GROUP_EE)
        return None
    return fields


def parse_retry(ck: Checker, path: str, value: Any) -> dict[str, Any] | None:
    """Validate a retry policy (task or flow level); return it as written, or None if invalid."""
    if not isinstance(value, dict):
        ck.expected(path, "a retry policy (a map with `type`)", value)
        return None
    before = len(ck.violations)
    kind = ck.value(child(path, "type"), value.get("type"), "string")
    extra: dict[str, F] = {}
    if kind is None:
        ck.error(child(path, "type"), "must not be null")
    elif kind is not BAD and kind not in _RETRY_TYPES:
        ck.expected(child(path, "type"), f"one of [{', '.join(_RETRY_TYPES)}]", kind)
    elif kind is not BAD:
        extra = _RETRY_TYPES[kind]
    # with no known type, the type-specific fields can't be judged: only the common ones are checked
    skip = () if extra else tuple(k for k in value if k not in _RETRY_COMMON)
    values = ck.fields(path, value, {**_RETRY_COMMON, **extra}, skip=skip)
    if values is None or len(ck.violations) > before:
        return None
    # Kestra's Constant/Exponential/RandomRetryValidator checks, with its messages
    d = {k: parse_duration(v) for k, v in values.items() if k.endswith(("nterval", "Duration"))}
    max_duration, interval = d.get("maxDuration"), d.get("interval")
    min_interval, max_interval = d.get("minInterval"), d.get("maxInterval")
    if max_duration is not None and interval is not None and max_duration <= interval:
        ck.error(path, f"'interval' must be less than 'maxDuration' but is {format_duration(interval)}")
    if kind == "exponential" and interval is not None and max_interval is not None and interval >= max_interval:
        ck.error(path, f"'interval' must be less than 'maxInterval' but is {format_duration(interval)}")
    if kind == "random" and min_interval is not None and max_interval is not None:
        if max_duration is not None and max_duration <= min_interval:
            ck.error(path, f"'minInterval' must be less than 'maxDuration' but is {format_duration(min_interval)}")
        if max_duration is not None and max_duration <= max_interval:
            ck.error(path, f"'maxInterval' must be less than 'maxDuration' but is {format_duration(max_interval)}")
        if max_interval <= min_interval:
            ck.error(path, f"'minInterval' must be less than 'maxInterval' but is {format_duration(min_interval)}")
    return None if len(ck.violations) > before else values


_schemas: dict[type[Task], dict[str, Prop]] = {}


def _schema(cls: type[Task]) -> dict[str, Prop]:
    schema = _schemas.get(cls)
    if schema is None:
        schema = _schemas[cls] = {p.name: p for p in cls.props}
    return schema


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, maps merged recursively (how Kestra merges plugin defaults)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class TaskParser:
    """Parses the task lists of one flow, remembering every task id for the duplicate check."""

    __slots__ = ("ck", "defaults", "ids")

    def __init__(self, ck: Checker, defaults: list[dict[str, Any]] | None = None) -> None:
        self.ck = ck
        self.defaults = defaults or []
        self.ids: list[tuple[str, str]] = []   # (task id, path) in written order, nested ones included

    def parse_tasks(self, path: str, value: Any) -> list[TaskSpec]:
        """Parse a list of tasks at `path` (e.g. `tasks`, `tasks[0].then`)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.ck.expected(path, "a list of tasks", value)
            return []
        out = []
        for i, item in enumerate(value):
            spec = self.parse_task(f"{path}[{i}]", item)
            if spec is not None:
                out.append(spec)
        return out

    def parse_task(self, path: str, raw: Any) -> TaskSpec | None:
        """Parse one task mapping; None when it can't even be typed (the violation is recorded)."""
        ck = self.ck
        if not isinstance(raw, dict):
            ck.expected(path, "a task (a map with `id` and `type`)", raw)
            return None
        task_id = ck.check_id(child(path, "id"), raw.get("id"), TASK_ID, 256)
        if task_id:
            self.ids.append((task_id, path))
        type_path = child(path, "type")
        written = ck.value(type_path, raw.get("type"), "string")
        if written is None:
            ck.error(type_path, "must not be null")
        if written is None or written is BAD:
            return None
        canonical = ck.registry.canonical(written)
        if canonical is None:
            refused = REFUSED_TYPES.get(written)
            ck.error(type_path, f"Unsupported task type '{written}': {refused}" if refused else
                     f"Invalid type: {written}" + did_you_mean(written, ck.registry.names()))
            self._orphans(path, raw)
            return None
        if canonical != written:
            ck.infos.append(f"{written} is replaced by {canonical}")
            ck.deprecated(path)
        cls = ck.registry.resolve(canonical)
        assert cls is not None
        if cls.internal:
            ck.error(type_path, f"Invalid type: {written} is a part of another task and cannot be used on its own")
            return None
        line, column = ck.where(path)
        spec = TaskSpec(id=task_id or "", type=canonical, path=path,
                        written_type=written if canonical != written else None, line=line, column=column)

        values = self._with_defaults(raw, written, canonical) if self.defaults else raw
        schema = _schema(cls)
        for key, value in values.items():
            if key == "id" or key == "type":
                continue
            sub = child(path, key)
            prop = schema.get(key)
            common = _COMMON.get(key)
            if prop is None and common is None:
                if key in raw:  # a package-wide default may name properties this type doesn't have
                    ck.error(sub, f'Unrecognized field "{key}"' + did_you_mean(key, [*schema, *_COMMON]))
                continue
            if common is not None:
                self._common(spec, key, sub, value)
            if prop is not None:
                self._prop(spec, prop, sub, value)
        for prop in cls.props:
            if prop.required:
                value = values.get(prop.name)
                if prop.kind in ("tasks", "dag") and (value is None or value == []):
                    ck.error(child(path, prop.name), "must not be empty")
                elif value is None:
                    ck.error(child(path, prop.name), "must not be null")
        rule = _TYPE_RULES.get(canonical)
        if rule is not None:
            rule(ck, path, values)
        parts = getattr(cls, "parts", None)
        if parts is not None:   # a flowable made of internal tasks (ForEachItem): they count as its children
            spec.children["tasks"] = parts(spec)
            self.ids.extend((part.id, part.path) for part in spec.children["tasks"])
        return spec

    def _orphans(self, path: str, raw: dict[str, Any]) -> None:
        """Check the tasks written inside a task of unknown type, wherever they look like task lists.

        Its schema is unknown, so a property counts as tasks when it has their shape: a list of maps with a
        dotted `type` (inputs and conditions lack either the dot or the `id`), a map of such lists (like
        Switch's `cases`), or a list of `{task, dependsOn}` (like Dag's)."""
        for key, value in raw.items():
            if key in ("id", "type"):
                continue
            sub = child(path, key)
            if _looks_like_tasks(value):
                self.parse_tasks(sub, value)
            elif isinstance(value, dict) and value and all(_looks_like_tasks(v) for v in value.values()):
                for name, tasks in value.items():
                    self.parse_tasks(child(sub, str(name)), tasks)
            elif isinstance(value, list) and value and all(
                    isinstance(item, dict) and isinstance(item.get("task"), dict) for item in value):
                for i, item in enumerate(value):
                    self.parse_task(child(f"{sub}[{i}]", "task"), item["task"])

    def _with_defaults(self, raw: dict[str, Any], written: str, canonical: str) -> dict[str, Any]:
        merged = raw
        for default in self.defaults:
            prefix = default["type"]
            if not any(t == prefix or t.startswith(prefix + ".") for t in (written, canonical)):
                continue
            values = {k: v for k, v in default["values"].items() if k not in ("id", "type")}
            merged = _merge(merged, values) if default.get("forced") else _merge(values, merged)
        return merged

    def _common(self, spec: TaskSpec, key: str, path: str, value: Any) -> None:
        ck = self.ck
        if key == "retry":
            spec.retry = parse_retry(ck, path, value) if value is not None else None
            return
        if key in ("workerGroup", "taskCache"):
            if value is None:
                return
            if key == "workerGroup":
                checked = check_worker_group(ck, path, value)
            else:
                checked = ck.fields(path, value, _TASK_CACHE)
            if checked:
                spec.props[key] = value   # TaskSpec has no field for these; kept as written
            return
        f = _COMMON[key]
        checked = ck.value(path, value, f.kind, f.choices, f.dynamic)
        if checked is BAD or checked is None:
            return
        if key in _BOOLS:
            setattr(spec, _BOOLS[key], checked)
        elif key == "timeout":
            spec.timeout = checked if is_expression(checked) else parse_duration(checked)
        elif key == "runIf":
            spec.run_if = checked
        elif key == "logLevel":
            spec.log_level = Level(checked)
        elif key == "description":
            spec.description = checked
        else:  # version
            spec.props[key] = checked

    def _prop(self, spec: TaskSpec, prop: Prop, path: str, value: Any) -> None:
        ck = self.ck
        if prop.deprecated and value is not None:
            ck.deprecated(path)
        kind = prop.kind
        if kind == "tasks":
            spec.children[prop.name] = self.parse_tasks(path, value)
        elif kind == "task_map":
            if value is None:
                return
            if not isinstance(value, dict):
                ck.expected(path, "a map of task lists", value)
                return
            spec.child_maps[prop.name] = {key: self.parse_tasks(child(path, key), tasks)
                                          for key, tasks in value.items()}
        elif kind == "dag":
            self._dag(spec, path, value)
        elif kind == "inputs":
            if value is not None:
                spec.props[prop.name] = parse_inputs(ck, path, value)
        else:
            checked = ck.value(path, value, kind, prop.choices, dynamic=True)
            if checked is not BAD and checked is not None:
                spec.props[prop.name] = checked

    def _dag(self, spec: TaskSpec, path: str, value: Any) -> None:
        ck = self.ck
        if value is None:
            return
        if not isinstance(value, list):
            ck.expected(path, "a list of `{task, dependsOn}`", value)
            return
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            fields = ck.fields(item_path, item, _DAG_TASK, what="a map with `task` and `dependsOn`")
            if fields is None:
                continue
            if item.get("task") is None:
                ck.error(child(item_path, "task"), "must not be null")
                continue
            task = self.parse_task(child(item_path, "task"), item["task"])
            if task is not None:
                spec.dag.append((task, fields.get("dependsOn") or []))
        known = {task.id for task, _ in spec.dag}
        missing: list[str] = []
        for _, deps in spec.dag:
            missing.extend(d for d in deps if d not in known and d not in missing)
        if missing:
            ck.error(path, f"Not existing task id in dependency: {', '.join(missing)}")
        graph = {task.id: deps for task, deps in spec.dag}
        cyclic = [task.id for task, deps in spec.dag if deps and _reaches(graph, deps, task.id)]
        if cyclic:
            ck.error(path, f"Cyclic dependency detected: {', '.join(cyclic)}")


def _looks_like_tasks(value: Any) -> bool:
    """A non-empty list of maps that each carry a dotted `type`, at least one of them with an `id`."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(item, dict) and isinstance(item.get("type"), str) and "." in item["type"]
                    for item in value)
            and any("id" in item for item in value))


def _switch(ck: Checker, path: str, values: dict[str, Any]) -> None:
    """Kestra's SwitchTaskValidator: some task to run, no empty case, no empty `defaults` (first problem only)."""
    cases, defaults = values.get("cases"), values.get("defaults")
    if not isinstance(cases, (dict, type(None))) or not isinstance(defaults, (list, type(None))):
        return   # already reported as the wrong kind of value
    if not cases and not defaults:
        ck.error(path, "No task defined, neither cases or default have any tasks")
        return
    for name, tasks in (cases or {}).items():
        if not tasks:
            ck.error(child(child(path, "cases"), str(name)), f"The case '{name}' must define at least one task.")
            return
    if defaults == []:
        ck.error(child(path, "defaults"), "The 'defaults' property cannot be empty.")


def _working_directory(ck: Checker, path: str, values: dict[str, Any]) -> None:
    """Kestra's WorkingDirectoryTaskValidator: tasks, all of them runnable."""
    tasks = values.get("tasks")
    if not isinstance(tasks, list):
        return   # missing (reported as required) or the wrong kind of value
    if not tasks:
        ck.error(child(path, "tasks"), "The 'tasks' property cannot be empty")
        return
    for i, task in enumerate(tasks):
        kind = task.get("type") if isinstance(task, dict) else None
        cls = ck.registry.resolve(kind) if isinstance(kind, str) else None
        if cls is not None and cls.flowable:
            ck.error(f"{child(path, 'tasks')}[{i}]",
                     "Only runnable tasks are allowed as children of a WorkingDirectory task")
            return


# canonical type -> its cross-property rule, called with the task's path and its values (defaults merged)
_TYPE_RULES: dict[str, Callable[[Checker, str, dict[str, Any]], None]] = {
    "io.kestra.plugin.core.flow.Switch": _switch,
    "io.kestra.plugin.core.flow.WorkingDirectory": _working_directory,
}


def _reaches(graph: dict[str, list[str]], start: list[str], target: str) -> bool:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return False
