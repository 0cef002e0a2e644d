"""YAML text -> plain Python values, with the 1-based (line, column) of every path.

PyYAML's composer (the C one when libyaml is present) gives nodes with marks; the values are built here
rather than by PyYAML's constructor so that every path ("tasks[1].format") gets its position, duplicate
keys are reported instead of silently overwritten, and scalars are typed the way Kestra (Jackson) sees
them: YAML 1.1 ints, floats, booleans and nulls, but dates, timestamps and sexagesimal numbers stay text.
Mapping keys are always their text (`1:` is the key "1"), as Jackson reads field names.

Every YAML text that comes from a user (a flow, a YAML input, the `yaml()` function) is parsed within a
budget, checked on PyYAML's node graph before any value is built: at most `MAX_SOURCE` characters, at
most `MAX_NODES` nodes once aliases are expanded (counted, never materialised: a 400-byte alias bomb
expands to billions), nested at most `MAX_DEPTH` deep (what the recursive code after the parser takes).
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

MAX_SOURCE = 1024 * 1024    # characters of a YAML text
MAX_NODES = 100_000         # nodes of a document, aliases expanded
MAX_DEPTH = 100             # levels of nested lists and mappings
TOO_DEEP = f"Invalid YAML: lists and mappings are nested deeper than {MAX_DEPTH} levels; the limit is {MAX_DEPTH}"


class YamlBudgetError(ValueError):
    """A YAML text over the budget; `line` and `column` (1-based) say where, when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message + (f" (line {line}, column {column})" if line is not None else ""))
        self.message, self.line, self.column = message, line, column


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_budget(node: Node) -> None:
    """Raise YamlBudgetError if the document under `node` expands past MAX_NODES or nests past MAX_DEPTH.

    One pass over the node graph (each node once, however many aliases point at it), without recursion:
    a node's expanded size is 1 + its children's, its depth 1 + its deepest child's. A recursive alias
    counts 0 here (the builder reports it)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        current, closing = stack.pop()
        key = id(current)
        if closing:
            open_nodes.discard(key)
            children = _children(current)
            size = 1 + sum(sizes.get(id(child), 0) for child in children)
            depth = 1 + max((depths.get(id(child), 0) for child in children), default=0)
            mark = current.start_mark
            if size > MAX_NODES:
                raise YamlBudgetError(f"Invalid YAML: the document expands to more than {MAX_NODES} nodes "
                                      f"(aliases included); the limit is {MAX_NODES}", mark.line + 1, mark.column + 1)
            if depth > MAX_DEPTH:
                raise YamlBudgetError(TOO_DEEP, mark.line + 1, mark.column + 1)
            sizes[key], depths[key] = size, depth
            continue
        if key in sizes or key in open_nodes:
            continue
        open_nodes.add(key)
        stack.append((current, True))
        stack.extend((child, False) for child in _children(current)
                     if not isinstance(child, ScalarNode) or id(child) not in sizes)


def check_source(text: str) -> None:
    """Raise YamlBudgetError if `text` is longer than MAX_SOURCE characters."""
    if len(text) > MAX_SOURCE:
        raise YamlBudgetError(f"Invalid YAML: the text is {len(text)} characters long; the limit is {MAX_SOURCE}")


def compose_within_budget(text: str, loader: type = None, *, graph: bool = True  # type: ignore[assignment]
                          ) -> Node | None:
    """The node graph of one YAML document, within the budget (YamlBudgetError past it; yaml.YAMLError
    for invalid YAML). Deep nesting that the parser itself refuses is reported as over the budget.
    `graph=False` skips the graph's check: for a caller that counts depth itself, on a text without
    aliases (whose expansion is then no bigger than the text)."""
    check_source(text)
    try:
        node = yaml.compose(text, Loader=loader or _Loader)
    except RecursionError:
        raise YamlBudgetError(TOO_DEEP) from None
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem or "") or "nesting depth" in str(exc):
            mark = exc.problem_mark
            raise YamlBudgetError(TOO_DEEP, mark.line + 1 if mark else None,
                                  mark.column + 1 if mark else None) from None
        raise
    if node is not None and graph:
        check_budget(node)
    return node


def load_within_budget(text: str, loader: type) -> Any:
    """`yaml.load(text, Loader=loader)` (a SafeLoader subclass), within the budget (YamlBudgetError)."""
    check_source(text)
    instance = loader(text)
    try:
        try:
            node = instance.get_single_node()
        except RecursionError:
            raise YamlBudgetError(TOO_DEEP) from None
        if node is None:
            return None
        check_budget(node)
        return instance.construct_document(node)
    finally:
        instance.dispose()


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
        # without an alias (`*name`) the values are no bigger than the text: the builder counts the depth
        node = compose_within_budget(source, graph="*" in source)
    except YamlBudgetError as exc:
        out.violations.append(Violation("", exc.message, exc.line, exc.column))
        return out
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        end = len(source.rstrip())
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        if mark is not None and mark.index >= end:
            # the text ended inside something (an unclosed quote or bracket): point where it opens if that is
            # known, else at the end of the last line, never at a line past the end
            if exc.context_mark is not None and exc.context_mark.index < end:
                what = (exc.context or "").removeprefix("while scanning ").removeprefix("while parsing ")
                message = (f"the {what.removeprefix('a ').removeprefix('an ') or 'value'} starting here is never "
                           "closed (the text ends first)")
                line, column = exc.context_mark.line + 1, exc.context_mark.column + 1
            else:
                last = source[:end].splitlines() or [""]
                line, column = len(last), len(last[-1]) + 1
        out.violations.append(Violation("", f"Invalid YAML: {message}", line, column))
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
    __slots__ = ("positions", "raw", "violations", "_active", "_deep")

    def __init__(self, out: Loaded) -> None:
        self.positions = out.positions
        self.raw = out.raw
        self.violations = out.violations
        self._active: set[int] = set()
        self._deep = False   # the depth limit was reported

    def build(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        key = id(node)
        if key in self._active:  # an alias to one of its own ancestors
            mark = node.start_mark
            self.violations.append(Violation(path, "Invalid YAML: recursive alias", mark.line + 1, mark.column + 1))
            return None
        if len(self._active) >= MAX_DEPTH:
            if not self._deep:
                self._deep = True
                mark = node.start_mark
                self.violations.append(Violation("", TOO_DEEP,
                                                 mark.line + 1, mark.column + 1))
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
