"""The validation context shared by the flow, input and task parsers: violations with positions, typed values.

`Checker` records every violation with its path and the YAML position of that path (or of its nearest
written parent, for a missing property), and converts written values to a property kind the way
Jackson would accept them. A converter returns `BAD` after recording a violation, so parsing goes on and
every problem of the flow is reported in one pass.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import Violation
from ..model.jsonfmt import parse_duration
from ..tasks.registry import Registry

BAD: Any = object()  # the written value was rejected (a violation has been recorded)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`; did you mean "x"?` for the closest candidate to a misspelled name (empty when none is close).

    Dotted names (task types) are compared by their last part among those of the same package, so a shared
    `io.kestra.plugin.core.` does not make every unknown type look like a typo of a known one."""
    import difflib

    names = list(candidates)
    package, dot, simple = word.rpartition(".")
    if dot:
        names = [name for name in names if name.rpartition(".")[0] == package]
        close = difflib.get_close_matches(simple, [name.rpartition(".")[2] for name in names], n=1, cutoff=0.75)
        return f'; did you mean "{package}.{close[0]}"?' if close else ""
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    return f'; did you mean "{close[0]}"?' if close else ""


@dataclass(frozen=True, slots=True)
class F:
    """A field of a fixed schema (flow, input, output, retry…): its kind and constraints.

    Kinds are those of `tasks.base.KINDS` plus `string_list` (a list of texts). `dynamic` fields also
    accept a string containing `{{`, rendered at run time (Kestra's `Property<T>`).
    """

    kind: str
    required: bool = False
    choices: tuple[str, ...] | None = None
    dynamic: bool = False
    minimum: int | None = None


def is_expression(value: Any) -> bool:
    """Whether a written value is a template to render at run time."""
    return isinstance(value, str) and "{{" in value


def found(value: Any) -> str:
    """Describe a written value for a message: `a list`, `the string "yes"`, `the integer 5`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def parent(path: str) -> str:
    """The path one level up: `tasks[0].then[1]` -> `tasks[0].then` -> `tasks[0]` -> `tasks` -> ``."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def child(path: str, key: str) -> str:
    """The path of `key` inside the map at `path`."""
    return f"{path}.{key}" if path else key


_DURATION = "an ISO-8601 duration (like PT5M)"
_NUMERIC = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_INTEGER = re.compile(r"^[-+]?\d+$")


class Checker:
    """Violations, infos and deprecations of one parse, with the document's positions."""

    __slots__ = ("positions", "raw", "violations", "infos", "deprecation_paths", "warnings", "registry")

    def __init__(self, positions: dict[str, tuple[int, int]], raw: dict[str, str], registry: Registry) -> None:
        self.positions = positions
        self.raw = raw
        self.registry = registry
        self.violations: list[Violation] = []
        self.infos: list[str] = []
        self.deprecation_paths: list[str] = []
        self.warnings: list[str] = []

    # ------------------------------------------------------------------------------------ reporting

    def where(self, path: str) -> tuple[int | None, int | None]:
        """The position of `path`, or of its nearest written parent."""
        positions = self.positions
        pos = positions.get(path)
        while pos is None and path:
            path = parent(path)
            pos = positions.get(path)
        return pos if pos is not None else (None, None)

    def error(self, path: str, message: str, at: str | None = None) -> None:
        """Record a violation of `path`, located at `at` (default: the path itself)."""
        line, column = self.where(path if at is None else at)
        self.violations.append(Violation(path, message, line, column))

    def expected(self, path: str, what: str, value: Any) -> Any:
        """Record `expected <what>, found <value>` at `path`; return BAD."""
        self.error(path, f"expected {what}, found {found(value)}")
        return BAD

    def deprecated(self, path: str) -> None:
        """Note a deprecated construct at `path` (once), for the validate endpoint's deprecationPaths."""
        if path not in self.deprecation_paths:
            self.deprecation_paths.append(path)

    # ----------------------------------------------------------------------------------- conversion

    def text(self, path: str, value: Any) -> Any:
        """A string; numbers and booleans written bare are their text, as Jackson reads them."""
        if isinstance(value, str) or value is None:
            return value
        if isinstance(value, (bool, int, float)):
            written = self.raw.get(path)
            if written is not None:
                return written
            return ("true" if value else "false") if isinstance(value, bool) else str(value)
        return self.expected(path, "a string", value)

    def value(self, path: str, value: Any, kind: str, choices: tuple[str, ...] | None = None,
              dynamic: bool = False, minimum: int | None = None) -> Any:
        """Check a written value against a kind; return it (strings for `string`) or BAD. None passes."""
        if value is None:
            return None
        if dynamic and kind not in ("string", "map", "list", "any") and is_expression(value):
            return value
        if kind == "string":
            return self.text(path, value)
        if kind == "any":
            return value
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"  # Jackson coerces the strings "true"/"false"
            return self.expected(path, "a boolean", value)
        if kind == "int":
            if isinstance(value, str) and _INTEGER.match(value.strip()):
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                return self.expected(path, "an integer", value)
            if minimum is not None and value < minimum:
                self.error(path, f"must be greater than or equal to {minimum}")
                return BAD
            return value
        if kind == "number":
            if isinstance(value, str) and _NUMERIC.match(value.strip()):
                value = float(value) if any(c in value for c in ".eE") else int(value)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return self.expected(path, "a number", value)
            return value
        if kind == "duration":
            if isinstance(value, str):
                try:
                    parse_duration(value)
                    return value
                except ValueError:
                    pass
            return self.expected(path, _DURATION, value)
        if kind == "enum":
            if isinstance(value, str) and choices is not None and value in choices:
                return value
            return self.expected(path, f"one of [{', '.join(choices or ())}]", value)
        if kind == "map":
            if isinstance(value, dict) or (dynamic and is_expression(value)):
                return value
            return self.expected(path, "a map", value)
        if kind == "list":
            if isinstance(value, list) or (dynamic and is_expression(value)):
                return value
            return self.expected(path, "a list", value)
        if kind == "string_list":
            if not isinstance(value, list):
                return self.expected(path, "a list of strings", value)
            items = [self.text(f"{path}[{i}]", item) for i, item in enumerate(value)]
            return BAD if any(item is BAD for item in items) else items
        if kind == "string_or_list":
            if isinstance(value, list):
                return self.value(path, value, "string_list")
            if isinstance(value, dict):
                return self.expected(path, "a string or a list of strings", value)
            return self.text(path, value)
        raise ValueError(f"kind {kind!r} is not a plain value kind")

    def fields(self, path: str, mapping: Any, schema: Mapping[str, F], what: str = "a map",
               skip: Iterable[str] = ()) -> dict[str, Any] | None:
        """Check a map against a fixed schema: unknown fields, types, required ones. None if not a map."""
        if not isinstance(mapping, dict):
            self.expected(path, what, mapping)
            return None
        out: dict[str, Any] = {}
        for key, raw in mapping.items():
            if key in skip:
                continue
            spec = schema.get(key)
            sub = child(path, key)
            if spec is None:
                self.error(sub, f'Unrecognized field "{key}"' + did_you_mean(key, schema))
                continue
            value = self.value(sub, raw, spec.kind, spec.choices, spec.dynamic, spec.minimum)
            if value is not BAD and value is not None:
                out[key] = value
        for key, spec in schema.items():
            if spec.required and mapping.get(key) is None:
                self.error(child(path, key), "must not be null")
        return out

    def check_id(self, path: str, value: Any, pattern: re.Pattern[str], max_size: int | None) -> str | None:
        """Check an id-like string against Kestra's @NotBlank @Pattern @Size; return its text even if invalid."""
        text = self.text(path, value)
        if text is BAD or text is None:
            if text is None:
                self.error(path, "must not be null")
            return None
        if not text.strip():
            self.error(path, "must not be blank")
            return None
        if not pattern.fullmatch(text):
            self.error(path, f'must match "{pattern.pattern}"')
        if max_size is not None and len(text) > max_size:
            self.error(path, f"size must be between 1 and {max_size}")
        return text
