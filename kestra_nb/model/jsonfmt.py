"""Kestra's JSON, produced in this one module: camelCase, omitted nulls, Java instants and durations.

Field order follows Kestra's model classes so documents read like Kestra's own.
"""
from __future__ import annotations

import json
import re
from json.encoder import encode_basestring as _quote   # the C encoder's string form (ensure_ascii=False)
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Sequence

from .execution import (
    Attempt, Execution, ExecutionMetadata, ExecutionTrigger, Label, Level, LogEntry, TaskRun,
)
from .state import History, State, StateType

# ---------------------------------------------------------------------------------------------- instants


_INSTANTS: dict[datetime, str] = {}
_UTC = timezone.utc


def format_instant(dt: datetime) -> str:
    """Java's Instant.toString(): UTC, `Z`, fraction in groups of 3 digits only as far as needed."""
    text = _INSTANTS.get(dt)
    if text is None:
        # history dates are re-serialized on every commit of an execution: memoize them
        if len(_INSTANTS) >= 8192:
            _INSTANTS.clear()
        if dt.tzinfo is _UTC:   # what the engine makes: isoformat's own choice, its `+00:00` cut off
            text = dt.isoformat()[:-6]
        else:
            utc = dt.astimezone(_UTC) if dt.tzinfo is not None and dt.utcoffset() else dt
            text = utc.replace(tzinfo=None).isoformat()
        us = dt.microsecond
        if us and not us % 1000:   # Java writes whole milliseconds with 3 digits
            text = text[:-3]
        text = _INSTANTS[dt] = text + "Z"
    return text


_INSTANT = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2}(?::\d{2})?)$")


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant that has a zone (`Z` or an offset); up to nanoseconds (truncated to µs)."""
    m = _INSTANT.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"Text '{text}' could not be parsed as an instant")
    day, clock, frac, zone = m.groups()
    if len(clock) == 5:
        clock += ":00"
    frac = (frac or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    if len(zone) == 5:
        zone = zone[:3] + ":" + zone[3:]
    try:
        dt = datetime.fromisoformat(f"{day}T{clock}.{frac}{zone}")
    except ValueError:
        raise ValueError(f"Text '{text}' could not be parsed as an instant") from None
    return dt.astimezone(timezone.utc)


# --------------------------------------------------------------------------------------------- durations


def format_duration(value: timedelta | float | int) -> str:
    """Java's Duration.toString(): `PT0.546S`, `PT1M2.5S`, `PT49H0.001S`, `PT0S` (never days)."""
    if isinstance(value, timedelta):
        total_us = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    else:
        total_us = round(value * 1_000_000)
    if total_us == 0:
        return "PT0S"
    seconds, us = divmod(total_us, 1_000_000)  # floor: seconds may be negative, us in [0, 1e6)
    nanos = us * 1000
    effective = seconds + 1 if seconds < 0 and nanos > 0 else seconds
    hours = int(effective / 3600)
    minutes = int((effective - hours * 3600) / 60)
    secs = effective - hours * 3600 - minutes * 60
    out = ["PT"]
    if hours:
        out.append(f"{hours}H")
    if minutes:
        out.append(f"{minutes}M")
    if secs == 0 and nanos == 0 and len(out) > 1:
        return "".join(out)
    if seconds < 0 and nanos > 0:
        out.append("-0" if secs == 0 else str(secs))
        frac = str(2_000_000_000 - nanos)
    else:
        out.append(str(secs))
        frac = str(nanos + 1_000_000_000) if nanos else ""
    if frac:
        out.append("." + frac[1:].rstrip("0"))
    out.append("S")
    return "".join(out)


_DURATION = re.compile(
    r"^([-+]?)P(?:([-+]?\d+)D)?(T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?$",
    re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Parse like Java's Duration.parse (`PT5M6S`, `P2DT3H`, `PT0.5S`); ValueError otherwise."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m or (m.group(3) is not None and m.group(3).upper() == "T") or text.strip().upper() in ("P", "-P", "+P"):
        raise ValueError("Text cannot be parsed to a Duration")
    sign, days, _, hours, minutes, secs, frac = m.groups()
    if days is None and hours is None and minutes is None and secs is None:
        raise ValueError("Text cannot be parsed to a Duration")
    total_us = (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60) * 1_000_000
    if secs is not None:
        s = int(secs)
        f = int((frac or "").ljust(6, "0")[:6] or 0)
        total_us += s * 1_000_000 + (-f if secs.startswith("-") else f)
    if sign == "-":
        total_us = -total_us
    return timedelta(microseconds=total_us)


# ------------------------------------------------------------------------------------------- documents


def state_to_dict(state: State) -> dict[str, Any]:
    histories = state.histories
    dates = [format_instant(h.date) for h in histories]
    d: dict[str, Any] = {
        "current": state.current.value,
        "histories": [{"state": h.state.value, "date": date} for h, date in zip(histories, dates)],
    }
    end = state.end_date
    if end is not None:
        d["duration"] = format_duration(end - histories[0].date)
        d["endDate"] = dates[-1] if end is histories[-1].date else format_instant(end)
    if histories:
        d["startDate"] = dates[0]
    return d


def state_from_dict(d: dict[str, Any]) -> State:
    histories = [History(StateType(h["state"]), parse_instant(h["date"])) for h in d.get("histories") or ()]
    return State(StateType(d["current"]), histories)


def task_run_to_dict(tr: TaskRun) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if tr.tenant_id is not None:
        d["tenantId"] = tr.tenant_id
    d["id"] = tr.id
    d["executionId"] = tr.execution_id
    d["namespace"] = tr.namespace
    d["flowId"] = tr.flow_id
    d["taskId"] = tr.task_id
    if tr.parent_task_run_id is not None:
        d["parentTaskRunId"] = tr.parent_task_run_id
    if tr.value is not None:
        d["value"] = tr.value
    if tr.attempts is not None:
        d["attempts"] = [attempt_to_dict(a) for a in tr.attempts]
    d["outputs"] = tr.outputs
    d["state"] = state_to_dict(tr.state)
    if tr.iteration is not None:
        d["iteration"] = tr.iteration
    if tr.dynamic is not None:
        d["dynamic"] = tr.dynamic
    return d


def _state_text(state: State) -> str:
    """`dumps(state_to_dict(state))`, written directly (the engine's hot path: every task run's states)."""
    histories = state.histories
    dates = [format_instant(h.date) for h in histories]
    text = '{"current":"%s","histories":[%s]' % (state.current.value, ",".join(
        ['{"state":"%s","date":"%s"}' % (h.state.value, date) for h, date in zip(histories, dates)]))
    end = state.end_date
    if end is not None:
        text += ',"duration":"%s","endDate":"%s"' % (
            format_duration(end - histories[0].date), dates[-1] if end is histories[-1].date else format_instant(end))
    return text + ',"startDate":"%s"}' % dates[0] if histories else text + "}"


def task_run_text(tr: TaskRun) -> str:
    """`dumps(task_run_to_dict(tr))`, written directly: ids and states are JSON-quoted as they are, only
    the outputs go through the encoder."""
    parts = ['{"tenantId":%s,' % _quote(tr.tenant_id) if tr.tenant_id is not None else "{",
             '"id":%s,"executionId":%s,"namespace":%s,"flowId":%s,"taskId":%s' % (
                 _quote(tr.id), _quote(tr.execution_id), _quote(tr.namespace), _quote(tr.flow_id),
                 _quote(tr.task_id))]
    if tr.parent_task_run_id is not None:
        parts.append(',"parentTaskRunId":' + _quote(tr.parent_task_run_id))
    if tr.value is not None:
        parts.append(',"value":' + (_quote(tr.value) if type(tr.value) is str else dumps(tr.value)))
    if tr.attempts is not None:
        parts.append(',"attempts":[%s]' % ",".join([_attempt_text(a) for a in tr.attempts]))
    parts.append(',"outputs":%s,"state":%s' % ("null" if tr.outputs is None else dumps(tr.outputs),
                                                _state_text(tr.state)))
    if tr.iteration is not None:
        parts.append(',"iteration":' + dumps(tr.iteration))
    if tr.dynamic is not None:
        parts.append(',"dynamic":' + dumps(tr.dynamic))
    parts.append("}")
    return "".join(parts)


def _attempt_text(a: Attempt) -> str:
    if a.worker_id is None and a.log_file is None:
        return '{"state":%s}' % _state_text(a.state)
    return dumps(attempt_to_dict(a))


def attempt_to_dict(a: Attempt) -> dict[str, Any]:
    d: dict[str, Any] = {"state": state_to_dict(a.state)}
    if a.worker_id is not None:
        d["workerId"] = a.worker_id
    if a.log_file is not None:
        d["logFile"] = a.log_file
    return d


def task_run_from_dict(d: dict[str, Any]) -> TaskRun:
    attempts = d.get("attempts")
    return TaskRun(
        id=d["id"], execution_id=d["executionId"], namespace=d["namespace"], flow_id=d["flowId"],
        task_id=d["taskId"], state=state_from_dict(d["state"]),
        parent_task_run_id=d.get("parentTaskRunId"), value=d.get("value"),
        attempts=None if attempts is None else [
            Attempt(state_from_dict(a["state"]), a.get("workerId"), a.get("logFile")) for a in attempts],
        outputs=d.get("outputs"), iteration=d.get("iteration"), dynamic=d.get("dynamic"),
        tenant_id=d.get("tenantId"),
    )


def _task_run_key(tr: TaskRun) -> tuple[Any, ...]:
    """What can change in a task run while it is driven (outputs are replaced, never mutated in place)."""
    attempts = tr.attempts
    last = attempts[-1].state if attempts else None
    return (tr.state.current, len(tr.state.histories), -1 if attempts is None else len(attempts),
            None if last is None else len(last.histories), id(tr.outputs), tr.parent_task_run_id, tr.value,
            tr.iteration, tr.execution_id)


class ExecutionText:
    """An execution's Kestra JSON in parts, as one `ExecutionJson.update` left it.

    `head` is the text before `taskRunList` (no closing brace), `tail` the text after it (no opening
    brace), `task_runs` every task run's text in order, `changed` the positions written since the writer's
    previous update (None: all of them, a full write). Valid until the writer's next update; `detach()`
    keeps the document for later."""

    __slots__ = ("head", "tail", "task_runs", "changed", "_parts", "_dicts", "_unparsed")

    def __init__(self, head: str, tail: str, task_runs: list[str], changed: list[int] | None,
                 parts: tuple[dict[str, Any], dict[str, Any]], dicts: list[dict[str, Any] | None],
                 unparsed: dict[int, None]) -> None:
        self.head = head
        self.tail = tail
        self.task_runs = task_runs
        self.changed = changed
        self._parts = parts
        self._dicts = dicts
        self._unparsed = unparsed

    def detach(self) -> Detached:
        """The document as of now, built when called (ExecutionUpdated calls it once, on first read; its
        task-run dicts are shared: read them only), and its text (`.text()`, joined from the texts)."""
        dicts = self._dicts
        texts = self.task_runs
        for i in self._unparsed:   # only those written since: an ended task run keeps its dict
            dicts[i] = json.loads(texts[i])
        self._unparsed.clear()
        return Detached(self._parts, tuple(dicts), self.head, self.tail, tuple(texts))


class Detached:
    """An execution's document as one `ExecutionJson.update` left it, kept for later: called, its dict (the
    task runs' dicts shared); `text()`, its JSON text joined from the task runs' texts (no encoding)."""

    __slots__ = ("_parts", "_runs", "_head", "_tail", "_texts")

    def __init__(self, parts: tuple[dict[str, Any], dict[str, Any]], runs: tuple[dict[str, Any], ...],
                 head: str, tail: str, texts: tuple[str, ...]) -> None:
        self._parts, self._runs, self._head, self._tail, self._texts = parts, runs, head, tail, texts

    def __call__(self) -> dict[str, Any]:
        head, tail = self._parts
        runs = self._runs
        return {**head, "taskRunList": list(runs), **tail} if runs else {**head, **tail}

    def text(self) -> str:
        return join_execution(self._head, self._tail, self._texts)


def join_execution(head: str, tail: str, task_runs: Sequence[str]) -> str:
    """An execution's text from its parts (see `ExecutionText`)."""
    if not task_runs:
        return f"{head},{tail}"
    return f'{head},"taskRunList":[{",".join(task_runs)}],{tail}'


class ExecutionJson:
    """Kestra's JSON of one execution, kept up to date as it is driven: each `update` serializes only the
    task runs added since the last one and those that had not ended then (an ended task run does not
    change while its execution is driven: a restart or a recovery drives it anew, with a new writer).
    A task-run list replaced or shortened starts again with a full write."""

    __slots__ = ("_runs", "_keys", "_dicts", "_texts", "_open", "_unparsed")

    def __init__(self) -> None:
        self._runs: list[TaskRun] | None = None
        self._keys: list[tuple[Any, ...]] = []
        self._dicts: list[dict[str, Any] | None] = []   # a task run's dict once a reader needed it
        self._texts: list[str] = []
        self._open: dict[int, None] = {}   # positions of task runs not ended at the last update, in order
        self._unparsed: dict[int, None] = {}   # positions whose dict is None (written since a reader parsed)

    def update(self, ex: Execution) -> ExecutionText:
        runs = ex.task_run_list
        keys, dicts, texts, opened, unparsed = self._keys, self._dicts, self._texts, self._open, self._unparsed
        changed: list[int] | None = []
        if runs is not self._runs or len(runs) < len(texts):
            self._runs = runs
            keys.clear(), dicts.clear(), texts.clear(), opened.clear(), unparsed.clear()
            changed = None
        for i in list(opened):
            tr = runs[i]
            key = _task_run_key(tr)
            if key != keys[i]:
                keys[i] = key
                dicts[i] = None   # (parsed from the text if a reader asks: see ExecutionText.detach)
                unparsed[i] = None
                texts[i] = task_run_text(tr)
                if changed is not None:
                    changed.append(i)
            if tr.state.current.is_terminated():
                del opened[i]
        for i in range(len(texts), len(runs)):
            tr = runs[i]
            keys.append(_task_run_key(tr))
            dicts.append(None)
            unparsed[i] = None
            texts.append(task_run_text(tr))
            if changed is not None:
                changed.append(i)
            if not tr.state.current.is_terminated():
                opened[i] = None
        head, tail = _execution_parts(ex)
        return ExecutionText(dumps(head)[:-1], dumps(tail)[1:], texts, changed, (head, tail), dicts, unparsed)


def execution_json(ex: Execution) -> ExecutionText:
    """An execution's JSON in parts, all of it (a full write)."""
    return ExecutionJson().update(ex)


def execution_to_dict(ex: Execution) -> dict[str, Any]:
    """Kestra's Execution JSON (1.x field order; nulls and empty inputs/outputs omitted); a fresh copy."""
    head, tail = _execution_parts(ex)
    if not ex.task_run_list:
        return {**head, **tail}
    return {**head, "taskRunList": [task_run_to_dict(tr) for tr in ex.task_run_list], **tail}


def _execution_parts(ex: Execution) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields before `taskRunList`, and those after it."""
    head: dict[str, Any] = {}
    if ex.tenant_id is not None:
        head["tenantId"] = ex.tenant_id
    head["id"] = ex.id
    head["namespace"] = ex.namespace
    head["flowId"] = ex.flow_id
    head["flowRevision"] = ex.flow_revision
    d: dict[str, Any] = {}
    if ex.inputs:
        d["inputs"] = ex.inputs
    if ex.outputs:
        d["outputs"] = ex.outputs
    d["labels"] = [{"key": label.key, "value": label.value} for label in ex.labels]
    if ex.variables:
        d["variables"] = ex.variables
    d["state"] = state_to_dict(ex.state)
    if ex.parent_id is not None:
        d["parentId"] = ex.parent_id
    d["originalId"] = ex.original_id
    if ex.trigger is not None:
        t: dict[str, Any] = {"id": ex.trigger.id, "type": ex.trigger.type}
        if ex.trigger.variables is not None:
            t["variables"] = ex.trigger.variables
        d["trigger"] = t
    d["deleted"] = ex.deleted
    d["metadata"] = {
        "attemptNumber": ex.metadata.attempt_number,
        "originalCreatedDate": format_instant(ex.metadata.original_created_date),
    }
    if ex.schedule_date is not None:
        d["scheduleDate"] = format_instant(ex.schedule_date)
    if ex.kind is not None:
        d["kind"] = ex.kind
    return head, d


def execution_from_dict(d: dict[str, Any]) -> Execution:
    meta = d.get("metadata") or {}
    trig = d.get("trigger")
    created = meta.get("originalCreatedDate")
    state = state_from_dict(d["state"])
    return Execution(
        id=d["id"], namespace=d["namespace"], flow_id=d["flowId"], flow_revision=d["flowRevision"],
        state=state,
        metadata=ExecutionMetadata(
            attempt_number=meta.get("attemptNumber", 1),
            original_created_date=parse_instant(created) if created else state.start_date),
        original_id=d.get("originalId", d["id"]),
        task_run_list=[task_run_from_dict(t) for t in d.get("taskRunList") or ()],
        inputs=d.get("inputs"), outputs=d.get("outputs"),
        labels=[Label(label["key"], label["value"]) for label in d.get("labels") or ()],
        variables=d.get("variables"), parent_id=d.get("parentId"),
        trigger=None if trig is None else ExecutionTrigger(trig["id"], trig["type"], trig.get("variables")),
        deleted=d.get("deleted", False),
        schedule_date=parse_instant(d["scheduleDate"]) if d.get("scheduleDate") else None,
        kind=d.get("kind"), tenant_id=d.get("tenantId"),
    )


def log_to_dict(entry: LogEntry) -> dict[str, Any]:
    """Kestra's LogEntry JSON (`attemptNumber` always present, possibly null)."""
    d: dict[str, Any] = {}
    if entry.tenant_id is not None:
        d["tenantId"] = entry.tenant_id
    d["namespace"] = entry.namespace
    d["flowId"] = entry.flow_id
    if entry.task_id is not None:
        d["taskId"] = entry.task_id
    if entry.execution_id is not None:
        d["executionId"] = entry.execution_id
    if entry.task_run_id is not None:
        d["taskRunId"] = entry.task_run_id
    d["attemptNumber"] = entry.attempt_number
    if entry.trigger_id is not None:
        d["triggerId"] = entry.trigger_id
    d["timestamp"] = format_instant(entry.timestamp)
    d["level"] = entry.level.value
    d["thread"] = entry.thread
    d["message"] = entry.message
    d["deleted"] = entry.deleted
    return d


def log_text(entry: LogEntry) -> str:
    """`dumps(log_to_dict(entry))`, written directly (a log line per task run is the engine's hot path)."""
    parts = ['{"tenantId":%s,' % _quote(entry.tenant_id) if entry.tenant_id is not None else "{",
             '"namespace":%s,"flowId":%s' % (_quote(entry.namespace), _quote(entry.flow_id))]
    if entry.task_id is not None:
        parts.append(',"taskId":' + _quote(entry.task_id))
    if entry.execution_id is not None:
        parts.append(',"executionId":' + _quote(entry.execution_id))
    if entry.task_run_id is not None:
        parts.append(',"taskRunId":' + _quote(entry.task_run_id))
    parts.append(',"attemptNumber":' + ("null" if entry.attempt_number is None else dumps(entry.attempt_number)))
    if entry.trigger_id is not None:
        parts.append(',"triggerId":' + _quote(entry.trigger_id))
    parts.append(',"timestamp":"%s","level":"%s","thread":%s,"message":%s,"deleted":%s}' % (
        format_instant(entry.timestamp), entry.level.value, _quote(entry.thread), _quote(entry.message),
        "true" if entry.deleted else "false"))
    return "".join(parts)


def log_from_dict(d: dict[str, Any]) -> LogEntry:
    return LogEntry(
        namespace=d["namespace"], flow_id=d["flowId"], timestamp=parse_instant(d["timestamp"]),
        level=Level(d["level"]), message=d["message"], execution_id=d.get("executionId"),
        task_id=d.get("taskId"), task_run_id=d.get("taskRunId"), attempt_number=d.get("attemptNumber"),
        trigger_id=d.get("triggerId"), thread=d.get("thread", "kestra_nb"), tenant_id=d.get("tenantId"),
        deleted=d.get("deleted", False),
    )


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return format_instant(o)
    if isinstance(o, timedelta):
        return format_duration(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class JsonText(str):
    """Text that is JSON already (a stored execution document): an API answer sends it as it is."""

    __slots__ = ()


class JsonChunks:
    """JSON text in chunks (a large stored execution document, read as it is sent): an API answer writes
    each chunk as it comes, read off the event loops, and closes `chunks` when done or when the client left."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: Iterator[str]) -> None:
        self.chunks = chunks


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(obj: Any) -> str:
    """Compact JSON as Kestra writes it (UTF-8 text, instants and durations in Java's form)."""
    return _ENCODER.encode(obj)   # (json.dumps with arguments would build an encoder per call)


def to_plain(value: Any) -> Any:
    """Turn a value into JSON-ready data (instants and durations in Kestra's string forms)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return value
