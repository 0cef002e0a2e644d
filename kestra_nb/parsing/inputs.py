"""Flow inputs and outputs (spec §4.2, §4.3): their schema per type, dependencies, duplicate ids.

Also used for task properties of kind `inputs` (Pause `onResume`). Type-specific properties are kept in
`Input.props` with their camelCase names and written values (durations and dates as their text).
"""
from __future__ import annotations

import re
from datetime import date, time
from typing import Any

from ..model.flow import DependsOn, Input, Output
from ..model.jsonfmt import parse_instant
from .checker import BAD, Checker, F, child
from .javaregex import compile_java

TYPES = ("STRING", "ENUM", "SELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION",
         "FILE", "JSON", "YAML", "URI", "SECRET", "ARRAY", "MULTISELECT", "EMAIL")
ID_PATTERN = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*")

_COMMON = {
    "id": F("string"), "name": F("string"), "type": F("string"), "description": F("string"),
    "displayName": F("string"), "required": F("bool"), "defaults": F("any"), "prefill": F("any"),
    "dependsOn": F("any"),
}
_SELECT = {"values": F("string_list"), "expression": F("string"), "allowCustomValue": F("bool"),
           "isRadio": F("bool"), "autoSelectFirst": F("bool")}
_EXTRA: dict[str, dict[str, F]] = {
    "STRING": {"validator": F("string")},
    "SECRET": {"validator": F("string")},
    "INT": {"min": F("int"), "max": F("int")},
    "FLOAT": {"min": F("number"), "max": F("number")},
    "DURATION": {"min": F("duration"), "max": F("duration")},
    "DATETIME": {"after": F("string"), "before": F("string")},
    "DATE": {"after": F("string"), "before": F("string")},
    "TIME": {"after": F("string"), "before": F("string")},
    "SELECT": _SELECT,
    "ENUM": _SELECT,
    "MULTISELECT": {"values": F("string_list"), "options": F("string_list"), "expression": F("string"),
                    "allowCustomValue": F("bool"), "itemType": F("enum", choices=TYPES),
                    "autoSelectFirst": F("bool")},
    "ARRAY": {"itemType": F("enum", required=True, choices=TYPES)},
    "FILE": {"extension": F("string"), "allowedFileExtensions": F("string_list")},
}
# what an ARRAY's items cannot be (Kestra's ArrayInputValidator): nested arrays, secrets, choices
_NOT_ITEM_TYPES = frozenset({"ARRAY", "SECRET", "MULTISELECT", "ENUM", "SELECT"})
_TEXT_TYPES = frozenset({"STRING", "SECRET", "EMAIL", "URI", "SELECT", "ENUM"})
_DEPENDS_ON = {"inputs": F("string_list"), "condition": F("string")}
_TEMPORAL = {
    "DATETIME": ("an ISO-8601 instant (like 2042-04-02T04:20:42.000Z)", parse_instant),
    "DATE": ("an ISO-8601 date (like 2042-12-03)", date.fromisoformat),
    "TIME": ("an ISO-8601 time (like 10:15:30)", time.fromisoformat),
}


def parse_inputs(ck: Checker, path: str, value: Any) -> list[Input]:
    """Parse a list of inputs; report duplicates, unknown dependencies and dependency cycles."""
    if value is None:
        return []
    if not isinstance(value, list):
        ck.expected(path, "a list of inputs", value)
        return []
    inputs: list[Input] = []
    for i, item in enumerate(value):
        parsed = _parse_input(ck, f"{path}[{i}]", item)
        if parsed is not None:
            inputs.append(parsed)
    _check_ids(ck, path, [(x.id, x.path) for x in inputs], "Duplicate input with name")
    _check_dependencies(ck, path, inputs)
    return inputs


def _parse_input(ck: Checker, path: str, item: Any) -> Input | None:
    if not isinstance(item, dict):
        ck.expected(path, "an input (a map with `id` and `type`)", item)
        return None
    input_type = ck.value(child(path, "type"), item.get("type"), "string")
    if input_type is None:
        ck.error(child(path, "type"), "must not be null")
    elif input_type is not BAD and input_type not in TYPES:
        ck.expected(child(path, "type"), f"one of [{', '.join(TYPES)}]", input_type)
        input_type = BAD
    extra = _EXTRA.get(input_type, {}) if isinstance(input_type, str) else {}
    # an unknown type can't say which extra properties are allowed: don't report them
    skip = () if isinstance(input_type, str) else tuple(k for k in item if k not in _COMMON)
    values = ck.fields(path, item, {**_COMMON, **extra}, skip=skip)
    if values is None:
        return None

    input_id = values.get("id")
    if input_id is None and "name" in values:
        input_id = values["name"]  # deprecated alias of `id`
        ck.deprecated(child(path, "name"))
    if input_id is None:
        if item.get("id") is None and item.get("name") is None:
            ck.error(child(path, "id"), "must not be null")
        input_id = ""
    else:
        input_id = ck.check_id(child(path, "id" if "id" in values else "name"), input_id, ID_PATTERN, None) or ""
    display_name = values.get("displayName")
    if display_name is not None and len(display_name) > 64:
        ck.error(child(path, "displayName"), "size must be between 0 and 64")
    if values.get("defaults") is not None and values.get("prefill") is not None:
        ck.error(path, "Inputs with a default value cannot also have a prefill.")

    depends_on = None
    if item.get("dependsOn") is not None:
        raw = ck.fields(child(path, "dependsOn"), item["dependsOn"], _DEPENDS_ON)
        if raw is not None:
            depends_on = DependsOn(inputs=raw.get("inputs") or [], condition=raw.get("condition"))

    defaults = values.get("defaults")
    if input_type in _TEXT_TYPES and isinstance(defaults, (bool, int, float)):
        defaults = ck.text(child(path, "defaults"), defaults)   # Jackson reads `defaults: 5` as "5" here
    props = {key: values[key] for key in extra if key in values}
    if isinstance(input_type, str):
        _check_type_props(ck, path, input_type, props, item)
    return Input(
        id=input_id, type=input_type if isinstance(input_type, str) else "",
        required=values.get("required", True), defaults=defaults,
        description=values.get("description"), display_name=display_name, prefill=values.get("prefill"),
        depends_on=depends_on, props=props, path=path,
    )


def _check_type_props(ck: Checker, path: str, input_type: str, props: dict[str, Any], item: dict[str, Any]) -> None:
    validator = props.get("validator")
    if validator is not None:
        try:
            compile_java(validator)
        except re.error:
            ck.error(child(path, "validator"), f"invalid pattern [{validator}]")
    if input_type in _TEMPORAL:
        what, parse = _TEMPORAL[input_type]
        for key in ("after", "before"):
            if key in props:
                try:
                    parse(props[key])
                except ValueError:
                    ck.expected(child(path, key), what, props[key])
    if input_type in ("SELECT", "ENUM", "MULTISELECT"):
        if "options" in item:
            ck.deprecated(child(path, "options"))
            if "values" in item:
                ck.error(path, "you can't define both `values` and `options`")
        if all(item.get(key) is None for key in ("values", "options", "expression")):
            ck.error(child(path, "values"), "must not be null when `expression` is not set")
    if input_type == "ARRAY" and props.get("itemType") in _NOT_ITEM_TYPES:
        ck.error(child(path, "itemType"), f"`itemType` cannot be `{props['itemType']}`")


def _check_ids(ck: Checker, path: str, ids: list[tuple[str, str]], message: str) -> None:
    """Report ids written more than once, as Kestra does: once, listing them, at the first repeat."""
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    first_repeat: str | None = None
    for ident, where in ids:
        if not ident:
            continue
        if ident in seen:
            if ident not in duplicates:
                duplicates.append(ident)
            first_repeat = first_repeat or where
        else:
            seen[ident] = where
    if duplicates:
        ck.error(path, f"{message} [{', '.join(duplicates)}]", at=first_repeat)


def _check_dependencies(ck: Checker, path: str, inputs: list[Input]) -> None:
    graph: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for x in inputs:
        graph.setdefault(x.id, [])
        where.setdefault(x.id, x.path)
        if x.depends_on is not None:
            graph[x.id].extend(x.depends_on.inputs)
    for ident, deps in graph.items():
        deps_path = child(where[ident], "dependsOn.inputs")
        for i, dep in enumerate(deps):
            if dep not in graph:
                ck.error(f"{deps_path}[{i}]", f"Input with id '{ident}' depends on a non-existent input '{dep}'.")
        cycle = _find_cycle(ident, graph)
        if cycle is not None:
            ck.error(deps_path, f"Cycle dependency detected for input with id '{ident}': [{', '.join(cycle)}]")


def _find_cycle(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    """The first dependency cycle reachable from `start` (the path around it), like Kestra's CycleDependency."""
    visiting: set[str] = set()
    visited: set[str] = set()
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return trail[trail.index(node):]
        if node in visited:
            return None
        visiting.add(node)
        trail.append(node)
        for dep in graph.get(node, ()):
            found_cycle = visit(dep)
            if found_cycle is not None:
                return found_cycle
        visiting.discard(node)
        visited.add(node)
        trail.pop()
        return None

    return visit(start)


_OUTPUT = {
    "id": F("string"), "type": F("string"), "value": F("any"), "description": F("string"),
    "displayName": F("string"), "required": F("bool"),
}


def parse_outputs(ck: Checker, path: str, value: Any) -> list[Output]:
    """Parse the flow's outputs; report missing fields, unknown types and duplicate ids."""
    if value is None:
        return []
    if not isinstance(value, list):
        ck.expected(path, "a list of outputs", value)
        return []
    outputs: list[Output] = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        values = ck.fields(item_path, item, _OUTPUT, what="an output (a map with `id`, `type` and `value`)")
        if values is None:
            continue
        output_id = ck.check_id(child(item_path, "id"), item.get("id"), ID_PATTERN, None) or ""
        output_type = values.get("type")
        if output_type is None:
            if item.get("type") is None:
                ck.error(child(item_path, "type"), "must not be null")
        elif output_type not in TYPES:
            ck.expected(child(item_path, "type"), f"one of [{', '.join(TYPES)}]", output_type)
        if item.get("value") is None:
            ck.error(child(item_path, "value"), "must not be null")
        outputs.append(Output(
            id=output_id, type=output_type or "", value=values.get("value"), required=values.get("required", True),
            description=values.get("description"), display_name=values.get("displayName"), path=item_path,
        ))
    _check_ids(ck, path, [(o.id, o.path) for o in outputs], "Duplicate output with name")
    return outputs
