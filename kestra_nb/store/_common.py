"""Rules both stores share, so they agree on every one: instants as microseconds, the KV value codec,
sort and paging checks, namespace matching, source hashing."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from ..errors import IllegalArgumentError
from ..model.execution import Execution
from ..model.jsonfmt import dumps, parse_duration, parse_instant
from ..model.state import StateType

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

KV_TYPES = frozenset({"STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"})

# Kestra's sort field names -> the column (SQLite) / row attribute (memory) holding the value.
SORT_FIELDS: dict[str, str] = {
    "id": "id",
    "namespace": "namespace",
    "flowId": "flow_id",
    "state.startDate": "start_date",
    "state.endDate": "end_date",
    "state.duration": "duration",
    "state.current": "state",
}
# Ties (and an empty sort) fall back to this order, so paging is stable.
DEFAULT_SORT: tuple[tuple[str, bool], ...] = (("start_date", False), ("id", False))


def to_us(dt: datetime | None) -> int | None:
    """An instant as integer microseconds since the epoch (naive datetimes are taken as UTC)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - EPOCH) // _US


def from_us(us: int | None) -> datetime | None:
    """The inverse of `to_us` (an aware UTC datetime)."""
    return None if us is None else EPOCH + timedelta(microseconds=us)


def tenant_of(value: str | None) -> str:
    """The tenant a record belongs to (`main` when the document has none, as in old OSS)."""
    return value or "main"


def execution_columns(ex: Execution) -> tuple[str, int | None, int | None, int | None]:
    """(tenant, start, end, duration) of an execution, in µs, as searches need them."""
    state = ex.state
    histories = state.histories
    start = to_us(histories[0].date) if histories else None
    end_dt = state.end_date
    end = to_us(end_dt) if end_dt is not None else None
    return tenant_of(ex.tenant_id), start, end, (None if end is None or start is None else end - start)


def sort_columns(sort: Sequence[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Map Kestra sort fields to columns, followed by the default order as tie-breaker."""
    out: list[tuple[str, bool]] = []
    for field, ascending in sort:
        column = SORT_FIELDS.get(field)
        if column is None:
            raise IllegalArgumentError(
                f"Invalid sort field '{field}', expected one of: {', '.join(SORT_FIELDS)}")
        if all(column != seen for seen, _ in out):
            out.append((column, bool(ascending)))
    # a column already ordered on is not repeated: `start_date DESC, start_date DESC` would keep SQLite from
    # reading the page off the (start_date, id) index
    out.extend(pair for pair in DEFAULT_SORT if all(pair[0] != seen for seen, _ in out))
    return out


def check_paging(page: int, size: int) -> None:
    """Reject a page below 1 or a size below 1 (Kestra's @Min(1))."""
    if page < 1:
        raise IllegalArgumentError(f"page must be greater than or equal to 1, got {page}")
    if size < 1:
        raise IllegalArgumentError(f"size must be greater than or equal to 1, got {size}")


def namespace_matches(namespace: str, wanted: str, prefix: bool) -> bool:
    """`wanted` exactly, or (prefix) `wanted` and its children `wanted.*` but not `wantedx`."""
    return namespace == wanted or (prefix and namespace.startswith(wanted + "."))


def source_sha256(source: str) -> str:
    """The hash stored next to a flow source, to find byte-identical saves cheaply."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check_kv_type(type: str) -> str:
    """Validate a KV type name (Kestra's KVType)."""
    if type not in KV_TYPES:
        raise IllegalArgumentError(f"Invalid KV type '{type}', expected one of: {', '.join(sorted(KV_TYPES))}")
    return type


def kv_encode(value: Any, type: str) -> str:
    """A typed KV value as JSON text (instants, dates and durations in Kestra's string forms)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()
    return dumps(value)


def kv_decode(text: str, type: str) -> Any:
    """The typed value back from its JSON text (DATETIME, DATE, DURATION become Python objects)."""
    value = json.loads(text)
    if isinstance(value, str):
        try:
            if type == "DATETIME":
                return parse_instant(value)
            if type == "DATE":
                return date.fromisoformat(value)
            if type == "DURATION":
                return parse_duration(value)
        except ValueError:
            return value  # stored as given; a foreign string is better returned than lost
    return value


def kv_type_of(value: Any) -> str:
    """The KV type of a typed value, as the KV REST endpoint names what it read (strings stay STRING)."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    if isinstance(value, datetime):
        return "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, timedelta):
        return "DURATION"
    if isinstance(value, (dict, list, tuple)):
        return "JSON"
    return "STRING"


def kv_convert(value: Any, type: str) -> Any:
    """Convert a rendered value to the KV type `type` (Kestra's kv.Set `kvType`); IllegalArgumentError if it isn't one."""
    check_kv_type(type)
    if type == "STRING":
        return value if isinstance(value, str) else dumps(value)
    if type == "JSON" and isinstance(value, (dict, list)):
        return value
    if type == "NUMBER" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if type == "BOOLEAN" and isinstance(value, bool):
        return value
    if type == "DATETIME" and isinstance(value, datetime):
        return value
    if type == "DURATION" and isinstance(value, timedelta):
        return value
    text = value if isinstance(value, str) else dumps(value)
    stripped = text.strip()
    expected = {
        "NUMBER": "a number such as 42 or 3.14", "BOOLEAN": "true or false",
        "DATETIME": "an ISO-8601 instant such as 2024-01-31T10:00:00Z",
        "DATE": "an ISO-8601 date such as 2024-01-31", "DURATION": "an ISO-8601 duration such as PT5M",
        "JSON": "a JSON document",
    }[type]
    try:
        if type == "NUMBER":
            number = json.loads(stripped)
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                return number
        elif type == "BOOLEAN":
            if stripped.lower() in ("true", "false"):
                return stripped.lower() == "true"
        elif type == "DATETIME":
            return parse_instant(stripped)
        elif type == "DATE":
            try:
                return date.fromisoformat(stripped)
            except ValueError:
                return parse_instant(stripped).date()
        elif type == "DURATION":
            return parse_duration(stripped)
        else:
            return json.loads(stripped)
    except ValueError:
        pass
    raise IllegalArgumentError(f"Invalid value `{text}` for kvType {type}: expected {expected}")


def purgeable_states(states: Iterable[StateType] | None) -> list[str]:
    """The states a purge may remove executions in: terminated ones only (one still running is driven by
    some process, which would write it back), of `states` when given."""
    terminated = {s.value for s in StateType if s.is_terminated()}
    return sorted(terminated if states is None else terminated & {StateType(s).value for s in states})
