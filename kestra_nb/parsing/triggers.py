"""Flow `triggers`: the properties of Schedule, Flow and Webhook triggers and of the conditions they take.

`trigger_type` resolves a written type (legacy names included); an unknown one is `Invalid type`, with a
did-you-mean like a task's, and the core triggers kestra_nb does not run (ScheduleOnDates, the HTTP
polling trigger) are refused by name. `check_trigger` validates one trigger with the flow's `Checker`
(violations with path and line:column, like tasks) and returns it normalised: canonical type and
condition type names, defaults left out. Conditions kestra_nb cannot evaluate are refused by name too,
so a flow never silently fires differently than it would on Kestra.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..model.jsonfmt import format_duration, parse_duration, parse_instant
from ..model.state import StateType
from .checker import Checker, F, child, did_you_mean, is_expression
from .javaregex import compile_java
from .tasks import check_worker_group

SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
FLOW = "io.kestra.plugin.core.trigger.Flow"
WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"
TRIGGER_ALIASES = {f"io.kestra.core.models.triggers.types.{n}": f"io.kestra.plugin.core.trigger.{n}"
                   for n in ("Schedule", "Flow", "Webhook")}
SCHEDULE_ON_DATES = "io.kestra.plugin.core.trigger.ScheduleOnDates"
HTTP_TRIGGER = "io.kestra.plugin.core.http.Trigger"   # polls a URL every `interval` (engine/polling.py)
TRIGGER_ALIASES["io.kestra.plugin.fs.http.Trigger"] = HTTP_TRIGGER
SUPPORTED_TRIGGERS = (SCHEDULE, FLOW, WEBHOOK, SCHEDULE_ON_DATES, HTTP_TRIGGER)
# Kestra core triggers kestra_nb cannot run: refused rather than never fired (none left)
UNSUPPORTED_TRIGGERS: dict[str, str] = {}
MIN_POLL_INTERVAL = timedelta(seconds=1)   # a polling trigger's shortest `interval` (each poll is a request)
MAX_DATES = 10_000

_C = "io.kestra.plugin.core.condition."
EXECUTION_STATUS = _C + "ExecutionStatus"
EXECUTION_FLOW = _C + "ExecutionFlow"
EXECUTION_NAMESPACE = _C + "ExecutionNamespace"
EXECUTION_LABELS = _C + "ExecutionLabels"
EXECUTION_OUTPUTS = _C + "ExecutionOutputs"
HAS_RETRY_ATTEMPT = _C + "HasRetryAttempt"
EXPRESSION = _C + "Expression"
MULTIPLE = _C + "MultipleCondition"
DAY_WEEK = _C + "DayWeek"
DAY_WEEK_IN_MONTH = _C + "DayWeekInMonth"
DATE_TIME_BETWEEN = _C + "DateTimeBetween"
TIME_BETWEEN = _C + "TimeBetween"
WEEKEND = _C + "Weekend"
NOT = _C + "Not"
OR = _C + "Or"
FLOW_CONDITION = _C + "FlowCondition"
FLOW_NAMESPACE_CONDITION = _C + "FlowNamespaceCondition"
PUBLIC_HOLIDAY = _C + "PublicHoliday"
_SUFFIXED = ("ExecutionStatus", "ExecutionFlow", "ExecutionNamespace", "ExecutionLabels", "ExecutionOutputs",
             "HasRetryAttempt", "DayWeek", "DayWeekInMonth", "DateTimeBetween", "TimeBetween", "Weekend", "Not", "Or",
             "PublicHoliday")
# Kestra's @Plugin aliases of its conditions: the 0.x `…models.conditions.types.XCondition` and `…condition.XCondition`
CONDITION_ALIASES = {
    **{f"io.kestra.core.models.conditions.types.{n}Condition": _C + n for n in _SUFFIXED},
    **{_C + n + "Condition": _C + n for n in _SUFFIXED},
    "io.kestra.core.models.conditions.types.VariableCondition": EXPRESSION,
    _C + "ExpressionCondition": EXPRESSION,
    "io.kestra.core.models.conditions.types.MultipleCondition": MULTIPLE,
    "io.kestra.core.models.conditions.types.FlowCondition": FLOW_CONDITION,
    "io.kestra.core.models.conditions.types.FlowNamespaceCondition": FLOW_NAMESPACE_CONDITION,
}
# Kestra's ScheduleCondition types (they read `trigger.date`), without ExecutionOutputs (there is no execution yet)
SCHEDULE_CONDITIONS = (DAY_WEEK, DAY_WEEK_IN_MONTH, DATE_TIME_BETWEEN, TIME_BETWEEN, WEEKEND, NOT, OR, EXPRESSION,
                       PUBLIC_HOLIDAY)
# which conditions each trigger type can evaluate here (a Webhook has no execution to test either)
SUPPORTED_CONDITIONS = {
    FLOW: (EXECUTION_STATUS, EXECUTION_FLOW, EXECUTION_NAMESPACE, EXECUTION_LABELS, EXECUTION_OUTPUTS,
           HAS_RETRY_ATTEMPT, EXPRESSION, MULTIPLE, *SCHEDULE_CONDITIONS[:-2], PUBLIC_HOLIDAY, FLOW_CONDITION,
           FLOW_NAMESPACE_CONDITION),
    WEBHOOK: (*SCHEDULE_CONDITIONS, FLOW_CONDITION, FLOW_NAMESPACE_CONDITION),
    SCHEDULE: (*SCHEDULE_CONDITIONS, FLOW_CONDITION, FLOW_NAMESPACE_CONDITION),
}
SUPPORTED_CONDITIONS[SCHEDULE_ON_DATES] = SUPPORTED_CONDITIONS[SCHEDULE]
SUPPORTED_CONDITIONS[HTTP_TRIGGER] = SUPPORTED_CONDITIONS[WEBHOOK]
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
DAYS_IN_MONTH = ("FIRST", "LAST", "SECOND", "THIRD", "FOURTH")
OFFSET_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,9})?)?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$")
# a window's results are kept in the store: one entry per condition, so the count is bounded
MAX_WINDOW_CONDITIONS = 100
WINDOW_TYPES = ("DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW")
FILTER_FIELDS = ("FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION")
FILTER_TYPES = ("EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL",
                "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS")
FILTER_LIST_TYPES = ("IN", "NOT_IN")
STATES = tuple(s.value for s in StateType)
TERMINAL_STATES = tuple(s.value for s in StateType if s.is_terminated())
WEBHOOK_KEY_MAX = 256

_COMMON = {
    "id": F("string"), "type": F("string"), "description": F("string"), "disabled": F("bool"),
    "conditions": F("list"), "stopAfter": F("string_list"), "logLevel": F("string"),
    "logToFile": F("bool"), "minLogLevel": F("string"), "workerGroup": F("map"), "failOnTriggerError": F("bool"),
}
_SCHEDULE = {**_COMMON, "cron": F("string", required=True), "withSeconds": F("bool"), "timezone": F("string"),
             "inputs": F("map"), "backfill": F("map"), "lateMaximumDelay": F("duration"),
             "recoverMissedSchedules": F("enum", choices=("ALL", "LAST", "NONE")),
             "scheduleConditions": F("list")}
_WEBHOOK = {**_COMMON, "key": F("string", required=True), "wait": F("bool"), "returnOutputs": F("bool"),
            "responseContentType": F("enum", choices=("application/json", "text/plain")),
            "responseCode": F("int"), "inputs": F("map")}
_FLOW = {**_COMMON, "inputs": F("map"), "preconditions": F("map"), "states": F("string_list")}
_HTTP = {**_COMMON, "uri": F("string", required=True),
         "method": F("enum", choices=("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")),
         "headers": F("map"),
         "body": F("string"), "formData": F("map"), "contentType": F("string"), "options": F("map"),
         "sslOptions": F("map"), "interval": F("duration"), "responseCondition": F("string"),
         "encryptBody": F("bool"), "inputs": F("map")}
_ON_DATES = {**_COMMON, "dates": F("list", required=True), "timezone": F("string"), "inputs": F("map"),
             "recoverMissedSchedules": F("enum", choices=("ALL", "LAST", "NONE"))}
_BACKFILL = {"start": F("string", required=True), "end": F("string"), "labels": F("any"), "inputs": F("map"),
             "currentDate": F("string"), "paused": F("bool")}
_PRECONDITIONS = {"id": F("string", required=True), "flows": F("list"), "where": F("list"),
                  "timeWindow": F("map"), "resetOnSuccess": F("bool")}
_PRECONDITION_FLOW = {"namespace": F("string", required=True), "flowId": F("string"), "states": F("string_list"),
                      "labels": F("map")}
_WHERE = {"id": F("string", required=True), "operand": F("enum", choices=("AND", "OR")),
          "filters": F("list", required=True)}
_FILTER = {"field": F("enum", required=True, choices=FILTER_FIELDS),
           "type": F("enum", required=True, choices=FILTER_TYPES), "value": F("string"), "values": F("string_list")}
_TIME_WINDOW = {"type": F("enum", choices=WINDOW_TYPES), "window": F("duration"), "windowAdvance": F("duration"),
                "deadline": F("string"), "startTime": F("string"), "endTime": F("string")}
# which properties each time window type takes (TimeWindowValidator)
_WINDOW_PROPERTIES = {"DURATION_WINDOW": ("window", "windowAdvance"), "SLIDING_WINDOW": ("window",),
                      "DAILY_TIME_DEADLINE": ("deadline",), "DAILY_TIME_WINDOW": ("startTime", "endTime")}
_WINDOW_REQUIRED = {"DAILY_TIME_DEADLINE": ("deadline",), "DAILY_TIME_WINDOW": ("startTime", "endTime")}
_PROPERTY_WORDS = {"window": "a window", "windowAdvance": "a window advance", "deadline": "a deadline",
                   "startTime": "a start time", "endTime": "an end time"}
LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,9})?)?$")
_CONDITIONS = {
    EXECUTION_STATUS: {"type": F("string"), "in": F("string_list"), "notIn": F("string_list")},
    EXECUTION_FLOW: {"type": F("string"), "namespace": F("string", required=True),
                     "flowId": F("string", required=True)},
    EXECUTION_NAMESPACE: {"type": F("string"), "namespace": F("string", required=True), "prefix": F("bool"),
                          "comparison": F("enum", choices=("EQUALS", "PREFIX", "SUFFIX"))},
    EXPRESSION: {"type": F("string"), "expression": F("string", required=True)},
    MULTIPLE: {"type": F("string"), "id": F("string", required=True), "conditions": F("map", required=True),
               "window": F("duration"), "windowAdvance": F("duration"), "timeWindow": F("map"),
               "resetOnSuccess": F("bool")},
    EXECUTION_LABELS: {"type": F("string"), "labels": F("any", required=True)},
    EXECUTION_OUTPUTS: {"type": F("string"), "expression": F("string", required=True)},
    HAS_RETRY_ATTEMPT: {"type": F("string"), "in": F("string_list"), "notIn": F("string_list")},
    DAY_WEEK: {"type": F("string"), "date": F("string"), "dayOfWeek": F("enum", required=True, choices=DAYS)},
    DAY_WEEK_IN_MONTH: {"type": F("string"), "date": F("string"), "dayOfWeek": F("enum", required=True, choices=DAYS),
                        "dayInMonth": F("enum", required=True, choices=DAYS_IN_MONTH)},
    DATE_TIME_BETWEEN: {"type": F("string"), "date": F("string"), "after": F("string"), "before": F("string")},
    TIME_BETWEEN: {"type": F("string"), "date": F("string"), "after": F("string"), "before": F("string")},
    WEEKEND: {"type": F("string"), "date": F("string")},
    NOT: {"type": F("string"), "conditions": F("list", required=True)},
    OR: {"type": F("string"), "conditions": F("list", required=True)},
    FLOW_CONDITION: {"type": F("string"), "namespace": F("string", required=True), "flowId": F("string", required=True)},
    FLOW_NAMESPACE_CONDITION: {"type": F("string"), "namespace": F("string", required=True), "prefix": F("bool")},
    PUBLIC_HOLIDAY: {"type": F("string"), "date": F("string"), "country": F("string"), "subDivision": F("string")},
}


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def trigger_type(ck: Checker, path: str, written: str) -> str | None:
    """The canonical name of a written trigger type, or None after reporting it (`path` is the trigger's)."""
    canonical = TRIGGER_ALIASES.get(written, written)
    if canonical in SUPPORTED_TRIGGERS:
        if canonical != written:
            ck.infos.append(f"{written} is replaced by {canonical}")
            ck.deprecated(path)
        return canonical
    type_path = child(path, "type")
    if written in UNSUPPORTED_TRIGGERS:
        ck.error(type_path, f"Unsupported trigger type '{written}': {UNSUPPORTED_TRIGGERS[written]}")
    else:
        ck.error(type_path, f"Invalid type: {written}" + did_you_mean(written, [*SUPPORTED_TRIGGERS, *TRIGGER_ALIASES]))
    return None


def check_trigger(ck: Checker, path: str, item: dict[str, Any], trigger_type: str) -> dict[str, Any]:
    """Validate a trigger of canonical type `trigger_type`; return it normalised (violations go to `ck`)."""
    schema = {SCHEDULE: _SCHEDULE, WEBHOOK: _WEBHOOK, FLOW: _FLOW, SCHEDULE_ON_DATES: _ON_DATES,
              HTTP_TRIGGER: _HTTP}.get(trigger_type)
    if schema is None:
        return dict(item)
    fields = ck.fields(path, item, schema) or {}
    if isinstance(item.get("workerGroup"), dict):
        check_worker_group(ck, child(path, "workerGroup"), item["workerGroup"])
    out = dict(item)
    out["type"] = trigger_type
    for state_path, states in (("stopAfter", fields.get("stopAfter")), ("states", fields.get("states"))):
        _check_states(ck, child(path, state_path), states)
    if item.get("conditions") is not None and isinstance(item.get("conditions"), list):
        out["conditions"] = _conditions(ck, child(path, "conditions"), item["conditions"], trigger_type)
    if isinstance(item.get("scheduleConditions"), list):   # deprecated: they are conditions
        ck.deprecated(child(path, "scheduleConditions"))
        out["conditions"] = [*out.get("conditions", ()), *_conditions(
            ck, child(path, "scheduleConditions"), out.pop("scheduleConditions"), trigger_type)]
    if trigger_type == SCHEDULE:
        _schedule(ck, path, item, fields)
    elif trigger_type == SCHEDULE_ON_DATES:
        _on_dates(ck, path, fields)
    elif trigger_type == WEBHOOK:
        key = fields.get("key")
        if isinstance(key, str):
            if not key.strip():
                ck.error(child(path, "key"), "must not be blank")
            elif len(key) > WEBHOOK_KEY_MAX:
                ck.error(child(path, "key"), f"size must be between 1 and {WEBHOOK_KEY_MAX}")
            out["key"] = key
        code = fields.get("responseCode")
        if isinstance(code, int) and not 100 <= code <= 599:
            ck.error(child(path, "responseCode"), "must be an HTTP status code between 100 and 599")
    elif trigger_type == HTTP_TRIGGER:
        _http(ck, path, fields)
    elif trigger_type == FLOW and "preconditions" in fields:
        _preconditions(ck, child(path, "preconditions"), fields["preconditions"])
    return out


def _http(ck: Checker, path: str, fields: dict[str, Any]) -> None:
    every = fields.get("interval")
    if isinstance(every, str) and parse_duration(every) < MIN_POLL_INTERVAL:
        ck.error(child(path, "interval"), f"must be at least {format_duration(MIN_POLL_INTERVAL)}: each poll "
                                          "sends a request")
    if fields.get("encryptBody") is True:
        ck.error(child(path, "encryptBody"), "needs Kestra's encryption key (an Enterprise and server setting): "
                                             "kestra_nb stores the body as it is")
    if fields.get("sslOptions") is not None:
        ck.error(child(path, "sslOptions"), "is replaced by `options.ssl`")


def _check_states(ck: Checker, path: str, states: Any) -> None:
    if not isinstance(states, list):
        return
    for i, state in enumerate(states):
        if state not in STATES:
            ck.error(f"{path}[{i}]", f"expected one of [{', '.join(STATES)}], found {state!r}")


def _schedule(ck: Checker, path: str, item: dict[str, Any], fields: dict[str, Any]) -> None:
    cron = fields.get("cron")
    if isinstance(cron, str):
        problem = cron_problem(cron, bool(fields.get("withSeconds")))
        if problem:
            ck.error(child(path, "cron"), problem)
    timezone = fields.get("timezone")
    if isinstance(timezone, str) and zone(timezone) is None:
        ck.error(child(path, "timezone"), f"Invalid timezone '{timezone}': expected an IANA time zone like "
                                          "'UTC' or 'Europe/Paris'")
    backfill = item.get("backfill")
    if backfill is not None:
        bf = ck.fields(child(path, "backfill"), backfill, _BACKFILL, what="a backfill (a map with `start`)")
        if bf:
            bounds = {}
            for key in ("start", "end"):
                if isinstance(bf.get(key), str):
                    try:
                        bounds[key] = parse_instant(bf[key])
                    except ValueError:
                        ck.error(child(child(path, "backfill"), key),
                                 f"expected a date-time with a zone (like 2024-01-01T00:00:00Z), found {bf[key]!r}")
            if len(bounds) == 2 and bounds["end"] < bounds["start"]:
                ck.error(child(child(path, "backfill"), "end"), "must not be before `start`")


def _on_dates(ck: Checker, path: str, fields: dict[str, Any]) -> None:
    timezone = fields.get("timezone")
    if isinstance(timezone, str) and zone(timezone) is None:
        ck.error(child(path, "timezone"), f"Invalid timezone '{timezone}': expected an IANA time zone like "
                                          "'UTC' or 'Europe/Paris'")
    dates = fields.get("dates")
    if not isinstance(dates, list):
        return
    if not dates:
        ck.error(child(path, "dates"), "must not be empty")
    if len(dates) > MAX_DATES:
        ck.error(child(path, "dates"), f"size must be between 1 and {MAX_DATES}")
        return
    for i, value in enumerate(dates):
        try:
            parse_instant(str(value))
        except ValueError:
            ck.error(f"{child(path, 'dates')}[{i}]", "expected a date-time with a zone (like 2024-01-01T00:00:00Z), "
                                                     f"found {value!r}" + (": kestra_nb needs the dates written out"
                                                                           if is_expression(value) else ""))


def cron_problem(cron: str, with_seconds: bool = False) -> str | None:
    """Why a cron expression is refused (None if croniter accepts it with the expected field count)."""
    from croniter import croniter

    text = cron.strip()
    if not text:
        return "Invalid cron expression: must not be blank"
    if not text.startswith("@"):
        expected = 6 if with_seconds else 5
        fields = text.split()
        if len(fields) != expected:
            return (f"Invalid cron expression '{cron}': expected {expected} fields"
                    + (" (seconds first, `withSeconds: true`)" if with_seconds else
                       " (minute hour day-of-month month day-of-week; 6 fields need `withSeconds: true`)")
                    + f", found {len(fields)}")
        if with_seconds:   # croniter takes seconds last
            text = " ".join(fields[1:] + fields[:1])
    elif text.lower() not in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
        return f"Invalid cron expression '{cron}': unknown macro (use @yearly, @monthly, @weekly, @daily or @hourly)"
    if not croniter.is_valid(text):
        return f"Invalid cron expression '{cron}'"
    return None


def zone(name: str) -> ZoneInfo | None:
    """The time zone of that IANA name, or None."""
    if not name or ".." in name or name.startswith("/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _conditions(ck: Checker, path: str, conditions: list[Any], trigger_type: str) -> list[dict[str, Any]]:
    out = []
    for i, condition in enumerate(conditions):
        checked = _condition(ck, f"{path}[{i}]", condition, trigger_type)
        if checked is not None:
            out.append(checked)
    return out


def _condition(ck: Checker, where: str, condition: Any, trigger_type: str,
               inside_multiple: bool = False) -> dict[str, Any] | None:
    """One condition, normalised (canonical type; a MultipleCondition's window in `timeWindow`)."""
    supported = SUPPORTED_CONDITIONS.get(trigger_type, ())
    if not isinstance(condition, dict):
        ck.expected(where, "a condition (a map with `type`)", condition)
        return None
    written = condition.get("type")
    if not isinstance(written, str) or not written:
        ck.error(child(where, "type"), "must not be null")
        return None
    canonical = CONDITION_ALIASES.get(written, written)
    if canonical not in supported:
        names = ", ".join(_short(t) for t in supported)
        ck.error(child(where, "type"),
                 f"Unsupported condition type '{written}' on a {_short(trigger_type)} trigger: kestra_nb "
                 + (f"evaluates only {names} conditions there" if names else "evaluates no conditions there"))
        return None
    if canonical == MULTIPLE and inside_multiple:
        ck.error(child(where, "type"), "a MultipleCondition cannot be nested in another condition")
        return None
    if canonical != written:
        ck.infos.append(f"{written} is replaced by {canonical}")
        ck.deprecated(where)
    fields = ck.fields(where, condition, _CONDITIONS[canonical])
    if fields is None:
        return None
    for key in ("in", "notIn"):
        _check_states(ck, child(where, key), fields.get(key))
    out = {**fields, "type": canonical}
    if canonical in (NOT, OR) and isinstance(fields.get("conditions"), list):
        if not fields["conditions"]:
            ck.error(child(where, "conditions"), "must not be empty")
        out["conditions"] = [c for c in (_condition(ck, f"{child(where, 'conditions')}[{i}]", sub, trigger_type, True)
                                         for i, sub in enumerate(fields["conditions"])) if c is not None]
    if canonical in (DATE_TIME_BETWEEN, TIME_BETWEEN):
        if "after" not in fields and "before" not in fields:
            ck.error(child(where, "after"), "Invalid condition with no before nor after")
        for key in ("after", "before"):
            text = fields.get(key)
            if not isinstance(text, str):
                continue
            if canonical == TIME_BETWEEN and not OFFSET_TIME.match(text):
                ck.error(child(where, key), f"expected a time with an offset (like 10:00:00Z), found {text!r}")
            elif canonical == DATE_TIME_BETWEEN:
                try:
                    parse_instant(text)
                except ValueError:
                    ck.error(child(where, key), f"expected a date-time with a zone (like 2024-01-01T00:00:00Z), "
                                                f"found {text!r}")
    if canonical == PUBLIC_HOLIDAY:
        _public_holiday(ck, where, fields)
    if canonical == EXECUTION_LABELS and "labels" in fields:
        labels = _labels(ck, child(where, "labels"), fields["labels"])
        if labels is not None:
            out["labels"] = labels
    if canonical == MULTIPLE:
        if "id" in fields:
            ck.check_id(child(where, "id"), fields["id"], CONDITION_ID, None)
        window = dict(fields.get("timeWindow") or {})
        for legacy in ("window", "windowAdvance"):   # the deprecated properties set the time window's
            if legacy in out:
                window[legacy] = out.pop(legacy)
        if window or "timeWindow" in fields:
            out["timeWindow"] = _time_window(ck, child(where, "timeWindow"), window)
        subs = fields.get("conditions")
        if isinstance(subs, dict):
            if not subs:
                ck.error(child(where, "conditions"), "must not be empty")
            elif len(subs) > MAX_WINDOW_CONDITIONS:
                ck.error(child(where, "conditions"), f"size must be between 1 and {MAX_WINDOW_CONDITIONS}")
            out["conditions"] = {}
            for name, sub in subs.items():
                checked = _condition(ck, child(child(where, "conditions"), str(name)), sub, trigger_type, True)
                if checked is not None:
                    out["conditions"][str(name)] = checked
    return out


CONDITION_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*")


def _public_holiday(ck: Checker, where: str, fields: dict[str, Any]) -> None:
    """PublicHoliday: a `country` the `holidays` calendars know (and its `subDivision`), unless rendered."""
    country = fields.get("country")
    if country is None:
        ck.error(child(where, "country"), "must not be null: kestra_nb has no default holiday calendar, set an "
                                          "ISO 3166 country code such as FR")
        return
    if is_expression(country):
        return
    import holidays   # the calendars' index, loaded only when a flow uses one

    supported = holidays.list_supported_countries()
    if country not in supported:
        ck.error(child(where, "country"), f"Unknown country '{country}': expected an ISO 3166 code such as FR, "
                                          "US or DE")
        return
    sub = fields.get("subDivision")
    if isinstance(sub, str) and not is_expression(sub) and sub not in supported[country]:
        ck.error(child(where, "subDivision"), f"Unknown subdivision '{sub}' of {country}: expected one of "
                                              f"{', '.join(supported[country][:20])}")


def _labels(ck: Checker, path: str, value: Any) -> list[list[str]] | None:
    """ExecutionLabels' `labels`: a map, or a list of {key, value}; as [[key, value], ...]."""
    pairs: list[list[str]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for i, label in enumerate(value):
            if not isinstance(label, dict) or "key" not in label or "value" not in label:
                ck.expected(f"{path}[{i}]", "a label (a map with `key` and `value`)", label)
                return None
            items.append((label["key"], label["value"]))
    else:
        ck.expected(path, "a list of labels or a map", value)
        return None
    for key, text in items:
        if isinstance(text, (dict, list)):
            ck.expected(child(path, str(key)), "a string", text)
            return None
        pairs.append([str(key), ("true" if text else "false") if isinstance(text, bool) else str(text)])
    if not pairs:
        ck.error(path, "must not be empty")
    return pairs


def _preconditions(ck: Checker, path: str, value: Any) -> None:
    fields = ck.fields(path, value, _PRECONDITIONS, what="preconditions (a map with `id` and `flows`)")
    if fields is None:
        return
    if "id" in fields:
        ck.check_id(child(path, "id"), fields["id"], CONDITION_ID, None)
    flows = fields.get("flows") or ()
    wheres = fields.get("where") or ()
    if len(flows) + len(wheres) > MAX_WINDOW_CONDITIONS:
        ck.error(path, f"at most {MAX_WINDOW_CONDITIONS} flows and `where` filters together")
    for i, flow in enumerate(flows):
        where = f"{child(path, 'flows')}[{i}]"
        checked = ck.fields(where, flow, _PRECONDITION_FLOW, what="a flow precondition (a map with `namespace`)")
        if checked:
            _check_states(ck, child(where, "states"), checked.get("states"))
    for i, item in enumerate(wheres):
        where = f"{child(path, 'where')}[{i}]"
        checked = ck.fields(where, item, _WHERE, what="an execution filter (a map with `id` and `filters`)")
        if not checked or not isinstance(checked.get("filters"), list):
            continue
        if not checked["filters"]:
            ck.error(child(where, "filters"), "must not be empty")
        for j, flt in enumerate(checked["filters"]):
            _filter(ck, f"{child(where, 'filters')}[{j}]", flt)
    if "timeWindow" in fields:
        _time_window(ck, child(path, "timeWindow"), fields["timeWindow"])


def _filter(ck: Checker, path: str, value: Any) -> None:
    """A `where` filter: Kestra's PreconditionFilterValidation (`value` or `values` by type)."""
    fields = ck.fields(path, value, _FILTER, what="a filter (a map with `field`, `type` and `value`)")
    if not fields or "type" not in fields:
        return
    kind = fields["type"]
    wants_values = kind in FILTER_LIST_TYPES
    if wants_values and value.get("values") is None:
        ck.error(child(path, "values"), f"`values` cannot be null for type {kind}")
    elif not wants_values and value.get("value") is None:
        ck.error(child(path, "value"), f"`value` cannot be null for type {kind}")
    if wants_values and value.get("value") is not None:
        ck.error(child(path, "value"), f"`value` must be null for type {kind}")
    elif not wants_values and value.get("values") is not None:
        ck.error(child(path, "values"), f"`values` must be null for type {kind}")
    if kind == "REGEX" and isinstance(fields.get("value"), str):
        try:
            compile_java(fields["value"])
        except re.error:
            ck.error(child(path, "value"), f"invalid pattern [{fields['value']}]")


def _time_window(ck: Checker, path: str, value: Any) -> dict[str, Any]:
    """A time window, checked as Kestra's TimeWindowValidator does; returned with its type."""
    window = ck.fields(path, value, _TIME_WINDOW)
    if window is None:
        return {}
    kind = window.get("type") or "DURATION_WINDOW"
    allowed = _WINDOW_PROPERTIES[kind]
    for key in ("window", "windowAdvance", "deadline", "startTime", "endTime"):
        if key in window and key not in allowed:
            ck.error(child(path, key), f"Time window of type `{kind}` cannot have {_PROPERTY_WORDS[key]}.")
    for key in _WINDOW_REQUIRED.get(kind, ()):
        if key not in window:
            ck.error(child(path, key), f"Time window of type `{kind}` must have {_PROPERTY_WORDS[key]}.")
    for key in ("deadline", "startTime", "endTime"):
        if isinstance(window.get(key), str) and not LOCAL_TIME.match(window[key]):
            ck.error(child(path, key), f"expected a time of day (like 09:00:00), found {window[key]!r}")
    if "window" in window and parse_duration(str(window["window"])).total_seconds() <= 0:
        ck.error(child(path, "window"), "must be a positive duration")
    return {**window, "type": kind}


def is_template(value: Any) -> bool:
    """Whether a trigger property is rendered at run time (`{{ … }}`)."""
    return is_expression(value)


__all__ = [
    "CONDITION_ALIASES", "EXECUTION_FLOW", "EXECUTION_NAMESPACE", "EXECUTION_STATUS", "EXPRESSION", "FLOW",
    "LOCAL_TIME", "MULTIPLE", "OFFSET_TIME",
    "SCHEDULE", "SCHEDULE_ON_DATES", "SUPPORTED_TRIGGERS", "TERMINAL_STATES", "TRIGGER_ALIASES", "WEBHOOK", "check_trigger",
    "cron_problem", "trigger_type", "zone",
]
