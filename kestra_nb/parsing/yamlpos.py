"""YAML text -> plain Python values, with the 1-based (line, column) of every path.

PyYAML's composer (the C one when libyaml is present) gives nodes with marks; the values are built here
rather than by PyYAML's constructor so that every path ("tasks[1].format") gets its position, duplicate
keys are reported instead of silently overwritten, and scalars are typed the way Kestra (Jackson) sees
them: YAML 1.1 ints, floats, booleans and nulls, but dates, timestamps and sexagesimal numbers stay text.
Mapping keys are always their text (`1:` is the key "1"), as Jackson reads field names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Violation

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

_constructor = yaml.constructor.SafeConstructor()
_SCALARS = {
    _INT: _constructor.construct_yaml_int,
    _FLOAT: _constructor.construct_yaml_float,
    _BOOL: _constructor.construct_yaml_bool,
    _NULL: _constructor.construct_yaml_null,
}

Position = tuple[int, int]


@dataclass(slots=True)
class Loaded:
    """A YAML document as plain values, plus where each path was written."""

    value: Any = None
    # path -> (line, column), 1-based: a mapping entry is located at its key, a list item at the item
    positions: dict[str, Position] = field(default_factory=dict)
    # path -> the scalar as written, for non-string scalars (`format: 1.10` is the text "1.10", as in Jackson)
    raw: dict[str, str] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)


def load(source: str) -> Loaded:
    """Parse one YAML document; syntax errors, duplicate keys and bad aliases become violations."""
    out = Loaded()
    try:
        node = yaml.compose(source, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        out.violations.append(Violation("", f"Invalid YAML: {message}",
                                        mark.line + 1 if mark else None, mark.column + 1 if mark else None))
        return out
    except yaml.YAMLError as exc:  # reader errors (bad characters) have no problem_mark
        out.violations.append(Violation("", f"Invalid YAML: {exc}"))
        return out
    if node is None:
        return out
    out.positions[""] = (node.start_mark.line + 1, node.start_mark.column + 1)
    out.value = _Builder(out).build(node, "")
    return out


_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")


class _Builder:
    __slots__ = ("positions", "raw", "violations", "_active")

    def __init__(self, out: Loaded) -> None:
        self.positions = out.positions
        self.raw = out.raw
        self.violations = out.violations
        self._active: set[int] = set()

    def build(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        key = id(node)
        if key in self._active:  # an alias to one of its own ancestors
            mark = node.start_mark
            self.violations.append(Violation(path, "Invalid YAML: recursive alias", mark.line + 1, mark.column + 1))
            return None
        self._active.add(key)
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return self._mapping(node, path)
        finally:
            self._active.discard(key)

    def _scalar(self, node: ScalarNode, path: str) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        construct = _SCALARS.get(tag)
        if construct is None:
            # timestamps, binary and custom tags: Kestra sees the text
            return node.value
        if (tag == _INT or tag == _FLOAT) and ":" in node.value and _SEXAGESIMAL.match(node.value):
            return node.value  # 10:15:30 is a time to Kestra, not YAML 1.1's base-60 number
        try:
            value = construct(node)
        except (ValueError, yaml.YAMLError):  # e.g. `!!int abc`
            return node.value
        if value is not None:
            self.raw[path] = node.value
        return value

    def _sequence(self, node: SequenceNode, path: str) -> list[Any]:
        out = []
        positions = self.positions
        for i, item in enumerate(node.value):
            item_path = f"{path}[{i}]"
            mark = item.start_mark
            positions[item_path] = (mark.line + 1, mark.column + 1)
            out.append(self.build(item, item_path))
        return out

    def _mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        positions = self.positions
        prefix = f"{path}." if path else ""
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            mark = key_node.start_mark
            if not isinstance(key_node, ScalarNode):
                self.violations.append(Violation(path, "Invalid YAML: a mapping key must be a scalar",
                                                 mark.line + 1, mark.column + 1))
                continue
            key = key_node.value
            child = prefix + key
            if key in out:
                self.violations.append(Violation(child, f"Duplicate field '{key}'", mark.line + 1, mark.column + 1))
            positions[child] = (mark.line + 1, mark.column + 1)
            out[key] = self.build(value_node, child)
        if merges:
            self._merge(out, merges, path, prefix)
        return out

    def _merge(self, out: dict[str, Any], merges: list[Node], path: str, prefix: str) -> None:
        # `<<: *anchor` (or a list of anchors): keys written explicitly win, then earlier anchors win
        sources: list[Node] = []
        for value_node in merges:
            sources.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
        positions, raw = self.positions, self.raw
        for source in sources:
            if not isinstance(source, MappingNode):
                mark = source.start_mark
                self.violations.append(Violation(path, "Invalid YAML: `<<` must merge a mapping",
                                                 mark.line + 1, mark.column + 1))
                continue
            # build into scratch tables so the anchor's positions don't overwrite the explicit keys' ones
            self.positions, self.raw = {}, {}
            try:
                values = self.build(source, path)
            finally:
                scratch_pos, scratch_raw = self.positions, self.raw
                self.positions, self.raw = positions, raw
            taken = [key for key in values if key not in out]
            for key in taken:
                out[key] = values[key]
                child = prefix + key
                for table, scratch in ((positions, scratch_pos), (raw, scratch_raw)):
                    for sub, where in scratch.items():
                        if sub == child or sub.startswith((child + ".", child + "[")):
                            table[sub] = where
