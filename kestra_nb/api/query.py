"""Search criteria of the executions and flows searches: Kestra 1.x `filters[field][OP]=value`, the legacy
parameters (`namespace`, `state`, `labels`…), `sort=field:dir`, and matching them against JSON documents.

A criterion the store can evaluate is pushed down to it (see ApiService.search_executions); the others
are matched here, on the stored documents.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import IllegalArgumentError
from ..model.jsonfmt import parse_duration, parse_instant
from ..model.state import StateType, utcnow
from .errors import BadRequest

OPERATIONS = frozenset({
    "EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL_TO", "LESS_THAN_OR_EQUAL_TO",
    "IN", "NOT_IN", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "REGEX", "PREFIX",
})
EXECUTION_FIELDS = ("q", "scope", "namespace", "kind", "labels", "flowId", "flowRevision", "id", "executionId",
                    "startDate", "endDate", "state", "timeRange", "triggerExecutionId", "triggerId",
                    "childFilter")
FLOW_FIELDS = ("q", "scope", "namespace", "labels", "flowId", "id")
SYSTEM_NAMESPACE = "system"

_FILTER = re.compile(r"^filters\[([^\]]+)\]\[([^\]]+)\](?:\[([^\]]*)\])?$")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One condition: `field OP value` (`key` is the label key of a labels criterion)."""

    field: str
    op: str
    value: Any
    key: str | None = None


def _normal(name: str) -> str:
    # kestrapy 1.3 lower-cases camelCase fields (`flowid`), the SDK's enum names are UPPER_SNAKE (`FLOW_ID`)
    return name.replace("_", "").lower()


def parse_filters(raw: Mapping[str, Sequence[str]], fields: Sequence[str]) -> list[Criterion]:
    """`filters[field][OP]=value` query arguments -> criteria (BadRequest on an unknown field or operation)."""
    known = {_normal(f): f for f in fields}
    known.setdefault("query", "q")   # the SDK's QUERY field
    out: list[Criterion] = []
    for name, values in raw.items():
        m = _FILTER.match(name)
        if not m:
            raise BadRequest(f"Invalid query filters: cannot read `{name}`")
        field, op, key = m.groups()
        if field.lower() == "or" or field.isdigit():
            raise BadRequest(f"Invalid query filters: OR groups are not supported (`{name}`)")
        canonical = known.get(_normal(field))
        if canonical is None:
            raise BadRequest(f"Invalid query filters: unknown field `{field}`, expected one of: {', '.join(fields)}")
        op = op.upper()
        if op not in OPERATIONS:
            raise BadRequest(f"Invalid query filters: unknown operation `{op}` for field `{field}`")
        for value in values:
            out.append(_criterion(canonical, op, value, key))
    return out


def _criterion(field: str, op: str, value: str, key: str | None) -> Criterion:
    if op in ("IN", "NOT_IN"):
        return Criterion(field, op, split_list(value), key)
    if field == "labels" and key is None and ":" in value:
        label_key, _, label_value = value.partition(":")
        return Criterion(field, op, label_value.strip(), label_key.strip())
    return Criterion(field, op, value, key)


def split_list(value: str) -> list[str]:
    """`A,B`, `[A, B]` or the generated client's Python repr `['A', 'B']` -> ["A", "B"]."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part.strip().strip("'\"") for part in text.split(",") if part.strip().strip("'\"")]


def parse_sort(values: Iterable[str] | None) -> list[tuple[str, bool]]:
    """`field:asc|desc` (anything but exactly `asc` is descending) -> [(field, ascending)]."""
    out = []
    for value in values or ():
        parts = value.split(":")
        if len(parts) != 2:
            raise IllegalArgumentError(f"Invalid sort parameter, expected `field:asc` or `field:desc`, got `{value}`")
        out.append((parts[0], parts[1] == "asc"))
    return out


def labels_criteria(values: Iterable[str] | None) -> list[Criterion]:
    """Legacy `labels=key:value` (split on the first colon) -> EQUALS criteria."""
    out = []
    for value in values or ():
        key, sep, label_value = value.partition(":")
        if not sep or not key.strip():
            raise IllegalArgumentError(f"Invalid queryString parameter: labels={value}")
        out.append(Criterion("labels", "EQUALS", label_value.strip(), key.strip()))
    return out


def checked(criteria: list[Criterion]) -> list[Criterion]:
    """Values converted and checked up front, so a bad one is a 400 even when nothing is there to match."""
    out = []
    for c in criteria:
        value = c.value
        if c.field in ("startDate", "endDate") and c.op not in ("IN", "NOT_IN"):
            value = _instant(value)
        elif c.field == "timeRange":
            since(value)
        elif c.field == "state":
            states(value if isinstance(value, list) else [value])
        elif c.op == "REGEX":
            try:
                re.compile(str(value))
            except re.error:
                raise BadRequest(f"Invalid query filters: invalid regex `{value}`") from None
        elif c.field == "flowRevision" and c.op not in ("IN", "NOT_IN"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid query filters: `{value}` is not a revision number") from None
        out.append(Criterion(c.field, c.op, value, c.key))
    return out


# ---------------------------------------------------------------------------------------------- matching


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return parse_instant(str(value))
    except ValueError:
        try:
            return parse_instant(str(value) + "Z")
        except ValueError:
            raise BadRequest(f"Invalid query filters: `{value}` is not a date") from None


def compare(actual: Any, op: str, value: Any) -> bool:
    """`actual OP value` with Kestra's operations (strings, numbers or instants)."""
    if op == "IN":
        return actual is not None and str(actual) in value
    if op == "NOT_IN":
        return actual is None or str(actual) not in value
    if actual is None:
        return op == "NOT_EQUALS"
    if isinstance(actual, datetime):
        value = _instant(value)
    elif isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid query filters: `{value}` is not a number") from None
    elif not isinstance(actual, str):
        actual = str(actual)
    if op == "EQUALS":
        return actual == value
    if op == "NOT_EQUALS":
        return actual != value
    if op == "GREATER_THAN":
        return actual > value
    if op == "LESS_THAN":
        return actual < value
    if op == "GREATER_THAN_OR_EQUAL_TO":
        return actual >= value
    if op == "LESS_THAN_OR_EQUAL_TO":
        return actual <= value
    text, wanted = str(actual), str(value)
    if op == "STARTS_WITH":
        return text.startswith(wanted)
    if op == "ENDS_WITH":
        return text.endswith(wanted)
    if op == "CONTAINS":
        return wanted.lower() in text.lower()
    if op == "REGEX":
        try:
            return re.search(wanted, text) is not None
        except re.error:
            raise BadRequest(f"Invalid query filters: invalid regex `{wanted}`") from None
    if op == "PREFIX":
        return text == wanted or text.startswith(wanted + ".")
    return False


def _labels_match(labels: list[dict[str, Any]], c: Criterion) -> bool:
    if c.key is None:  # a label value anywhere
        return any(compare(label.get("value"), c.op, c.value) for label in labels) if c.op not in (
            "NOT_EQUALS", "NOT_IN") else all(compare(label.get("value"), c.op, c.value) for label in labels)
    values = [label.get("value") for label in labels if label.get("key") == c.key]
    if c.op in ("NOT_EQUALS", "NOT_IN"):
        return all(compare(v, c.op, c.value) for v in values)
    return any(compare(v, c.op, c.value) for v in values)


def _state_dates(doc: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    state = doc.get("state") or {}
    start, end = state.get("startDate"), state.get("endDate")
    return (parse_instant(start) if start else None, parse_instant(end) if end else None)


def execution_matches(doc: Mapping[str, Any], c: Criterion) -> bool:
    """Whether an execution document satisfies a criterion."""
    field = c.field
    if field == "q":
        text = str(c.value).lower()
        haystack = [doc.get("id", ""), doc.get("namespace", ""), doc.get("flowId", "")]
        haystack += [str(label.get("value", "")) for label in doc.get("labels") or ()]
        return any(text in str(h).lower() for h in haystack)
    if field == "labels":
        return _labels_match(list(doc.get("labels") or ()), c)
    if field == "scope":
        scopes = c.value if isinstance(c.value, list) else [c.value]
        kind = "SYSTEM" if doc.get("namespace") == SYSTEM_NAMESPACE else "USER"
        return (kind in scopes) != (c.op in ("NOT_EQUALS", "NOT_IN"))
    if field in ("startDate", "endDate"):
        start, end = _state_dates(doc)
        return compare(start if field == "startDate" else end, c.op, c.value)
    if field == "timeRange":
        start, _ = _state_dates(doc)
        return start is not None and start >= since(c.value)
    if field == "childFilter":
        child = bool(((doc.get("trigger") or {}).get("variables") or {}).get("executionId"))
        return child if str(c.value).upper() == "CHILD" else not child
    actual: Any
    if field in ("id", "executionId"):
        actual = doc.get("id")
    elif field == "state":
        actual = (doc.get("state") or {}).get("current")
    elif field == "kind":
        actual = doc.get("kind") or "NORMAL"
    elif field == "flowRevision":
        actual = doc.get("flowRevision")
    elif field == "triggerExecutionId":
        actual = ((doc.get("trigger") or {}).get("variables") or {}).get("executionId")
    elif field == "triggerId":
        actual = (doc.get("trigger") or {}).get("id")
    else:
        actual = doc.get(field)
    return compare(actual, c.op, c.value)


def flow_matches(doc: Mapping[str, Any], c: Criterion) -> bool:
    """Whether a flow document satisfies a criterion."""
    if c.field == "q":
        text = str(c.value).lower()
        return any(text in str(doc.get(k, "")).lower() for k in ("id", "namespace", "description"))
    if c.field == "labels":
        return _labels_match(list(doc.get("labels") or ()), c)
    if c.field == "scope":
        scopes = c.value if isinstance(c.value, list) else [c.value]
        kind = "SYSTEM" if doc.get("namespace") == SYSTEM_NAMESPACE else "USER"
        return (kind in scopes) != (c.op in ("NOT_EQUALS", "NOT_IN"))
    return compare(doc.get("id" if c.field == "flowId" else c.field), c.op, c.value)


def since(value: Any) -> datetime:
    """The instant `value` (an ISO duration like PT5M or P1D) ago."""
    try:
        duration = value if isinstance(value, timedelta) else parse_duration(str(value))
    except ValueError:
        raise BadRequest(f"Invalid query filters: `{value}` is not an ISO duration") from None
    return utcnow() - duration


def states(values: Iterable[str]) -> list[StateType]:
    """State names -> StateType (BadRequest on an unknown one)."""
    out = []
    for value in values:
        try:
            out.append(StateType(value.upper()))
        except ValueError:
            raise BadRequest(f"Invalid query filters: unknown state `{value}`") from None
    return out


def select(docs: Iterable[Mapping[str, Any]], criteria: Sequence[Criterion],
           matches: Callable[[Mapping[str, Any], Criterion], bool]) -> list[Mapping[str, Any]]:
    """The documents satisfying every criterion (the criteria are an implicit AND)."""
    return [doc for doc in docs if all(matches(doc, c) for c in criteria)]


__all__ = [
    "EXECUTION_FIELDS",
    "FLOW_FIELDS",
    "Criterion",
    "compare",
    "execution_matches",
    "flow_matches",
    "labels_criteria",
    "parse_filters",
    "parse_sort",
    "select",
    "since",
    "split_list",
    "states",
]
