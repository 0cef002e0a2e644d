"""Trigger conditions: evaluating one of Kestra's core conditions (on a Flow trigger's execution, a
Schedule's date, a Webhook call), and the time windows of MultipleCondition / Flow `preconditions`
(Kestra's MultipleConditionWindow).

A multiple condition holds a map of conditions; each one that holds on some execution is recorded as
`true` in the window's results (in the trigger's stored state, so it survives a restart), and the trigger
fires once every one of them holds within the same window. The window is:
- DURATION_WINDOW (default, `window` P1D): consecutive windows of `window`, aligned as Kestra aligns them
  (on midnight for a day or more, on the hour for hours, on multiples of the window for minutes), moved by
  `windowAdvance`; the one holding the evaluation time is used.
- SLIDING_WINDOW: starts at the first result and lasts `window` (default P1D).
- DAILY_TIME_DEADLINE: from midnight to `deadline`; DAILY_TIME_WINDOW: from `startTime` to `endTime`.
Outside a daily window nothing is recorded. `resetOnSuccess` (default true) clears the results once all
hold; with false, every further matching execution in the same window fires again.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ..expressions import is_truthy
from ..model.jsonfmt import parse_duration, parse_instant
from ..parsing.javaregex import compile_java
from ..parsing.triggers import (
    DATE_TIME_BETWEEN,
    DAY_WEEK,
    DAY_WEEK_IN_MONTH,
    DAYS,
    EXECUTION_FLOW,
    EXECUTION_LABELS,
    EXECUTION_NAMESPACE,
    EXECUTION_OUTPUTS,
    EXECUTION_STATUS,
    EXPRESSION,
    FLOW_CONDITION,
    FLOW_NAMESPACE_CONDITION,
    HAS_RETRY_ATTEMPT,
    LOCAL_TIME,
    MULTIPLE,
    NOT,
    OR,
    PUBLIC_HOLIDAY,
    TIME_BETWEEN,
    WEEKEND,
)

UPSTREAM = "_upstreamFlow"   # the internal condition types of a `preconditions` map
FILTER = "_filter"
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ConditionContext:
    """What a condition is tested on: the trigger's flow, the execution (Flow triggers only) and a renderer
    of expressions in the trigger's context (`trigger.date` for a Schedule)."""

    namespace: str
    flow_id: str
    render: Callable[[str], str]
    doc: Mapping[str, Any] | None = None


def holds(condition: Mapping[str, Any], ctx: ConditionContext) -> bool:
    """Whether one (non-multiple) condition holds; an error (a date that cannot be rendered) is raised."""
    kind = condition.get("type")
    if kind == EXPRESSION:
        return is_truthy(ctx.render(str(condition.get("expression"))))
    if kind == NOT:
        return not any(holds(c, ctx) for c in condition.get("conditions") or ())
    if kind == OR:
        return any(holds(c, ctx) for c in condition.get("conditions") or ())
    if kind == FLOW_CONDITION:
        return (ctx.namespace, ctx.flow_id) == (condition.get("namespace"), condition.get("flowId"))
    if kind == FLOW_NAMESPACE_CONDITION:
        return (ctx.namespace.startswith(str(condition.get("namespace"))) if condition.get("prefix")
                else ctx.namespace == condition.get("namespace"))
    if kind in _DATED:
        return _dated(kind, condition, ctx.render(str(condition.get("date") or "{{ trigger.date }}")), ctx.render)
    doc = ctx.doc
    if doc is None:
        return False   # an execution condition without an execution (validation keeps them off other triggers)
    state = doc["state"]["current"]
    if kind == EXECUTION_STATUS:
        if condition.get("in") and state not in condition["in"]:
            return False
        return not (condition.get("notIn") and state in condition["notIn"])
    if kind == EXECUTION_FLOW:
        return doc["namespace"] == condition.get("namespace") and doc["flowId"] == condition.get("flowId")
    if kind == EXECUTION_NAMESPACE:
        return namespace_matches(str(condition.get("namespace")), doc["namespace"], condition)
    if kind == EXECUTION_LABELS:
        labels = {(str(label.get("key")), str(label.get("value"))) for label in doc.get("labels") or ()}
        return all((key, value) in labels for key, value in condition.get("labels") or ())
    if kind == EXECUTION_OUTPUTS:
        if not doc.get("outputs"):
            return False
        text = ctx.render(str(condition.get("expression"))).strip()
        return text not in ("", "false")
    if kind == HAS_RETRY_ATTEMPT:
        return any(_attempt_matches(condition, attempt) for run in doc.get("taskRunList") or ()
                   if len(run.get("attempts") or ()) > 1 for attempt in run["attempts"])
    if kind == UPSTREAM:
        return _upstream(condition, doc)
    if kind == FILTER:
        return _filter(condition, doc, ctx.render)
    return False


def _attempt_matches(condition: Mapping[str, Any], attempt: Mapping[str, Any]) -> bool:
    state = (attempt.get("state") or {}).get("current")
    if condition.get("in") and state not in condition["in"]:
        return False
    return not (condition.get("notIn") and state in condition["notIn"])


_NTH = {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3}
_DATED = frozenset({DAY_WEEK, DAY_WEEK_IN_MONTH, DATE_TIME_BETWEEN, TIME_BETWEEN, WEEKEND, PUBLIC_HOLIDAY})


def _zoned(text: str) -> datetime:
    """Kestra's DateUtils.parseZonedDateTime: an ISO date-time with an offset (a date is its UTC midnight)."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=timezone.utc)
    return parse_instant(re.sub(r"\[[^\]]*\]$", "", text))


def _local_date(text: str) -> date:
    """Kestra's DateUtils.parseLocalDate: the date of an ISO date or date-time, in its own offset."""
    text = re.sub(r"\[[^\]]*\]$", "", text.strip())
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def _utc_seconds(value: time | datetime) -> float:
    """An offset time's position in the UTC day (Java's OffsetTime comparison)."""
    offset = value.utcoffset() or timedelta(0)
    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    return (seconds - offset.total_seconds()) % 86400


def _offset_time(text: str) -> time:
    return time.fromisoformat(text.replace("Z", "+00:00"))


@functools.lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None, year: int) -> Any:
    """A year of public holidays (a `holidays` calendar; built once per country, subdivision and year)."""
    import holidays   # the calendars are loaded only where a flow asks for one

    return holidays.country_holidays(country, subdiv=subdivision, years=year)


def _dated(kind: str, condition: Mapping[str, Any], rendered: str, render: Callable[[str], str]) -> bool:
    if kind == DATE_TIME_BETWEEN:
        current = _zoned(rendered)
        after = parse_instant(condition["after"]) if condition.get("after") else None
        before = parse_instant(condition["before"]) if condition.get("before") else None
        return (after is None or current > after) and (before is None or current < before)
    if kind == TIME_BETWEEN:
        current = _utc_seconds(_zoned(rendered))
        after = _utc_seconds(_offset_time(condition["after"])) if condition.get("after") else None
        before = _utc_seconds(_offset_time(condition["before"])) if condition.get("before") else None
        return (after is None or current > after) and (before is None or current < before)
    day = _local_date(rendered)
    if kind == WEEKEND:
        return day.weekday() >= 5
    if kind == PUBLIC_HOLIDAY:
        sub = condition.get("subDivision")   # both may be expressions (Kestra renders them)
        return day in _calendar(render(str(condition["country"])), None if sub is None else render(str(sub)),
                                day.year)
    wanted = DAYS.index(str(condition.get("dayOfWeek")))
    if kind == DAY_WEEK:
        return day.weekday() == wanted
    # DAY_WEEK_IN_MONTH: the FIRST…FOURTH or LAST such weekday of the month
    if day.weekday() != wanted:
        return False
    which = str(condition.get("dayInMonth"))
    if which == "LAST":
        return (day + timedelta(days=7)).month != day.month
    return (day.day - 1) // 7 == _NTH[which]


def namespace_matches(expected: str, namespace: str, condition: Mapping[str, Any]) -> bool:
    """ExecutionNamespace: EQUALS (default), PREFIX (also the legacy `prefix: true`) or SUFFIX."""
    comparison = condition.get("comparison") or ("PREFIX" if condition.get("prefix") else "EQUALS")
    if comparison == "PREFIX":
        return namespace.startswith(expected)
    if comparison == "SUFFIX":
        return namespace.endswith(expected)
    return namespace == expected


def doc_labels(doc: Mapping[str, Any]) -> dict[str, str]:
    """An execution document's labels as a map (the last value of a key wins)."""
    return {str(label.get("key")): str(label.get("value")) for label in doc.get("labels") or ()
            if isinstance(label, Mapping)}


def _upstream(flow: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    if flow.get("namespace") is not None and doc["namespace"] != flow["namespace"]:
        return False
    if flow.get("flowId") is not None and doc["flowId"] != flow["flowId"]:
        return False
    if flow.get("states") and doc["state"]["current"] not in flow["states"]:
        return False
    labels = doc_labels(doc)
    return all(labels.get(str(k)) == _java_text(v) for k, v in (flow.get("labels") or {}).items())


def _java_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _filter(where: Mapping[str, Any], doc: Mapping[str, Any], render: Callable[[str], str]) -> bool:
    results = (_one_filter(f, doc, render) for f in where.get("filters") or ())
    return any(results) if where.get("operand") == "OR" else all(results)


def _one_filter(flt: Mapping[str, Any], doc: Mapping[str, Any], render: Callable[[str], str]) -> bool:
    field, kind, value = flt.get("field"), flt.get("type"), flt.get("value")
    actual: str | None = {"FLOW_ID": doc["flowId"], "NAMESPACE": doc["namespace"],
                          "STATE": doc["state"]["current"]}.get(str(field))
    if field == "EXPRESSION":
        actual = render(str(value))
    if kind == "EQUAL_TO":
        return actual == value
    if kind == "NOT_EQUAL_TO":
        return actual != value
    if kind == "IN":
        return actual in (flt.get("values") or ())
    if kind == "NOT_IN":
        return actual not in (flt.get("values") or ())
    if kind == "IS_TRUE":
        return is_truthy(actual or "")
    if kind == "IS_FALSE":
        return not is_truthy(actual or "")
    if kind == "IS_NULL":
        return actual is None
    if kind == "IS_NOT_NULL":
        return actual is not None
    if actual is None:
        return False
    if kind == "STARTS_WITH":
        return actual.startswith(str(value))
    if kind == "ENDS_WITH":
        return actual.endswith(str(value))
    if kind == "CONTAINS":
        return str(value) in actual
    if kind == "REGEX":
        return compile_java(str(value)).fullmatch(actual) is not None
    return False


# ------------------------------------------------------------------------------------ multiple conditions


@dataclass(frozen=True, slots=True)
class Multiple:
    """A MultipleCondition or a Flow trigger's `preconditions`: named conditions over one time window."""

    id: str
    time_window: Mapping[str, Any]
    reset_on_success: bool
    conditions: dict[str, dict[str, Any]]


def multiples(spec: Mapping[str, Any]) -> list[Multiple]:
    """The multiple conditions of a (validated) Flow trigger: legacy MultipleConditions, then `preconditions`."""
    out = [Multiple(str(c["id"]), c.get("timeWindow") or {}, c.get("resetOnSuccess") is not False,
                    dict(c.get("conditions") or {}))
           for c in spec.get("conditions") or () if c.get("type") == MULTIPLE]
    pre = spec.get("preconditions")
    if isinstance(pre, Mapping):
        conditions: dict[str, dict[str, Any]] = {}
        n = 0
        for flow in pre.get("flows") or ():
            n += 1
            conditions[f"condition_{n}"] = {**flow, "type": UPSTREAM}
        for where in pre.get("where") or ():
            n += 1
            conditions[f"condition_{n}_{where.get('id')}"] = {**where, "type": FILTER}
        out.append(Multiple(str(pre.get("id") or "preconditions"), pre.get("timeWindow") or {},
                            pre.get("resetOnSuccess") is not False, conditions))
    return out


def _seconds(text: Any, default: timedelta) -> timedelta:
    return timedelta(seconds=parse_duration(str(text)).total_seconds()) if text else default


def _time_of_day(text: str) -> timedelta:
    found = LOCAL_TIME.match(text)
    assert found is not None   # validated at parse time
    return timedelta(hours=int(found.group(1)), minutes=int(found.group(2)), seconds=int(found.group(3) or 0))


def window_bounds(time_window: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The window [start, end) a result recorded at `now` belongs to (see the module docstring)."""
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    midnight = datetime.combine(now.date(), time(0), tzinfo=timezone.utc)
    kind = time_window.get("type") or "DURATION_WINDOW"
    if kind == "SLIDING_WINDOW":
        return now, now + _seconds(time_window.get("window"), DAY)
    if kind == "DAILY_TIME_WINDOW":
        return (midnight + _time_of_day(str(time_window["startTime"])),
                midnight + _time_of_day(str(time_window["endTime"])))
    if kind == "DAILY_TIME_DEADLINE":
        return midnight, midnight + _time_of_day(str(time_window["deadline"]))
    window = _seconds(time_window.get("window"), DAY)
    anchor = now
    if window >= DAY:
        anchor = anchor.replace(hour=0)
    if window >= timedelta(hours=1):
        anchor = anchor.replace(minute=0)
    if window >= timedelta(minutes=1):
        minutes = int(window.total_seconds() // 60)
        anchor = anchor.replace(minute=0, second=0) + timedelta(minutes=minutes * (now.minute // minutes))
    anchor += _seconds(time_window.get("windowAdvance"), timedelta(0))
    start = anchor + window * ((now - anchor) // window)   # the window of that series that holds `now`
    return start, start + window


def record(windows: Mapping[str, Any], multiple: Multiple, matched: list[str],
           now: datetime) -> tuple[dict[str, Any] | None, bool]:
    """The multiple's window after recording `matched` at `now`, and whether all its conditions hold.

    None for the window means nothing to keep (no result yet, or outside a daily window)."""
    stored = windows.get(multiple.id)
    window: dict[str, Any] | None = None
    if isinstance(stored, Mapping):
        start, end = parse_instant(str(stored["start"])), parse_instant(str(stored["end"]))
        if start <= now < end:
            window = {"start": stored["start"], "end": stored["end"], "results": dict(stored.get("results") or {})}
    if window is None:
        start, end = window_bounds(multiple.time_window, now)
        if not start <= now < end:
            return None, False
        window = {"start": start.isoformat(), "end": end.isoformat(), "results": {}}
    for name in matched:
        window["results"][name] = True
    done = all(window["results"].get(name) for name in multiple.conditions)
    if done and multiple.reset_on_success:
        return None, True
    return (window if window["results"] else None), done


__all__ = ["FILTER", "UPSTREAM", "ConditionContext", "Multiple", "doc_labels", "holds", "multiples", "namespace_matches",
           "record", "window_bounds"]
