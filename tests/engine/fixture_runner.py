"""Load flow fixtures (`tests/fixtures/flows/*.expected.yml`) and check an execution against them.

The format is documented at the top of `test_flow_fixtures.py`. `check()` never raises on a mismatch:
it returns every failed expectation as a readable line, so one run reports all that is wrong.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "flows"
SUFFIX = ".expected.yml"

TOP_KEYS = frozenset({
    "description", "flow", "inputs", "runLabels", "timeout", "state", "stateHistory", "outputs",
    "executionLabels", "taskRunCount", "order", "before", "concurrency", "taskRuns", "logs",
    "allowNonTerminal",
})
SELECTOR_KEYS = frozenset({"taskId", "value", "iteration", "parentValue"})
TASK_RUN_KEYS = SELECTOR_KEYS | frozenset({
    "count", "state", "outputs", "attempts", "histories", "parentTaskId", "values", "minDuration",
    "startsAfterExecutionEnd",
})
LOG_KEYS = frozenset({"message", "contains", "icontains", "level", "taskId", "absent", "count"})


@dataclass(slots=True)
class Case:
    """One expected-result file and the flow it runs."""

    name: str
    expected_path: Path
    flow_path: Path
    expected: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.flow_path.read_text(encoding="utf-8")

    @property
    def inputs(self) -> dict[str, Any] | None:
        return self.expected.get("inputs")

    @property
    def labels(self) -> Any:
        return self.expected.get("runLabels")

    @property
    def timeout(self) -> float:
        return float(self.expected.get("timeout", 30))


def load_cases(directory: Path = FIXTURES) -> list[Case]:
    """Every `<name>.expected.yml` with its flow (`flow:` if given, else `<name>.yml`), by name."""
    cases = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        name = path.name[: -len(SUFFIX)]
        try:
            expected = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:  # reported by validate_case, without breaking collection
            expected = {"_yamlError": str(exc)}
        flow_name = expected.get("flow") or f"{name}.yml"
        cases.append(Case(name, path, directory / flow_name, expected))
    return cases


def validate_case(case: Case) -> list[str]:
    """Problems in the expected file itself (unknown keys, missing flow): typos must not pass silently."""
    problems = []
    exp = case.expected
    if "_yamlError" in exp:
        return [f"{case.expected_path.name} is not valid YAML: {exp['_yamlError']}"]
    if not case.flow_path.is_file():
        problems.append(f"flow file {case.flow_path.name} does not exist")
    for key in sorted(set(exp) - TOP_KEYS):
        problems.append(f"unknown top-level key `{key}` (known: {', '.join(sorted(TOP_KEYS))})")
    if "state" not in exp:
        problems.append("`state` (the final execution state) is required")
    for entry in _task_run_entries(exp.get("taskRuns")):
        for key in sorted(set(entry) - TASK_RUN_KEYS):
            problems.append(f"taskRuns[{entry.get('taskId')}]: unknown key `{key}`")
        if "taskId" not in entry:
            problems.append(f"taskRuns entry without taskId: {entry}")
    for i, entry in enumerate(exp.get("logs") or ()):
        for key in sorted(set(entry) - LOG_KEYS):
            problems.append(f"logs[{i}]: unknown key `{key}`")
    return problems


# ------------------------------------------------------------------------------------------- checks

def check(expected: dict[str, Any], ex: Any, logs: Iterable[Any] = ()) -> list[str]:
    """Every expectation of `expected` that `ex` (an Execution) and its `logs` (LogEntry) do not meet."""
    failures: list[str] = []
    runs = list(ex.task_run_list)
    by_id = {tr.id: tr for tr in runs}

    state = _name(ex.state.current)
    if "state" in expected and state != expected["state"]:
        failures.append(f"execution state is {state}, expected {expected['state']}")

    history = [_name(h.state) for h in ex.state.histories]
    if "stateHistory" in expected and not _is_subsequence(expected["stateHistory"], history):
        failures.append(f"execution state history {history} does not contain {expected['stateHistory']} in order")

    if "outputs" in expected:
        failures += _match(expected["outputs"], ex.outputs or {}, "outputs")

    if "executionLabels" in expected:
        actual_labels = {}
        for label in ex.labels:
            actual_labels.setdefault(label.key, label.value)
        failures += _match(expected["executionLabels"], actual_labels, "labels")

    if "taskRunCount" in expected and len(runs) != expected["taskRunCount"]:
        failures.append(f"{len(runs)} task runs, expected {expected['taskRunCount']}: {_describe_all(runs, by_id)}")

    if ex.state.current.is_terminated() and not expected.get("allowNonTerminal"):
        open_runs = [tr for tr in runs if not tr.state.current.is_terminated()]
        if open_runs:
            failures.append("execution ended but these task runs did not: "
                            + ", ".join(_describe(tr, by_id) for tr in open_runs))

    if "order" in expected:
        failures += _check_order(expected["order"], runs, by_id)

    for pair in expected.get("before") or ():
        failures += _check_before(pair, runs)

    for spec in expected.get("concurrency") or ():
        failures += _check_concurrency(spec, runs)

    for entry in _task_run_entries(expected.get("taskRuns")):
        failures += _check_task_runs(entry, ex, runs, by_id)

    logs = list(logs)
    for entry in expected.get("logs") or ():
        failures += _check_log(entry, logs)
    return failures


def _task_run_entries(task_runs: Any) -> list[dict[str, Any]]:
    if not task_runs:
        return []
    if isinstance(task_runs, dict):
        return [{"taskId": task_id, **(spec or {})} for task_id, spec in task_runs.items()]
    return list(task_runs)


def _name(state: Any) -> str:
    return getattr(state, "value", str(state))


def _label(tr: Any) -> str:
    return tr.task_id if tr.value is None else f"{tr.task_id}[{tr.value}]"


def _describe(tr: Any, by_id: dict[str, Any]) -> str:
    parent = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
    extra = f", parent={_label(parent)}" if parent is not None else ""
    if tr.iteration is not None:
        extra += f", iteration={tr.iteration}"
    return f"{_label(tr)} ({_name(tr.state.current)}{extra})"


def _describe_all(runs: list[Any], by_id: dict[str, Any]) -> str:
    return "[" + ", ".join(_describe(tr, by_id) for tr in runs) + "]"


def _is_subsequence(wanted: list[Any], actual: list[Any]) -> bool:
    it = iter(actual)
    return all(any(w == a for a in it) for w in wanted)


def _match(expected: Any, actual: Any, path: str) -> list[str]:
    """Subset match: maps may hold more keys than expected; lists and scalars must be equal (typed)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a map, got {actual!r}"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing (present: {sorted(map(str, actual))})")
            else:
                out += _match(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out += _match(e, a, f"{path}[{i}]")
        return out
    same_type = type(expected) is type(actual) or (
        isinstance(expected, (int, float)) and isinstance(actual, (int, float))
        and not isinstance(expected, bool) and not isinstance(actual, bool))
    if expected is None:
        same_type = actual is None
    if not same_type or expected != actual:
        return [f"{path}: expected {expected!r} ({type(expected).__name__}), got {actual!r} ({type(actual).__name__})"]
    return []


def _entry_matches(entry: str, tr: Any) -> bool:
    """`order` entries: `taskId` matches any run of that task; `taskId[value]` one value of it."""
    if entry.endswith("]") and "[" in entry:
        task_id, value = entry[:-1].split("[", 1)
        return tr.task_id == task_id and tr.value == value
    return tr.task_id == entry


def _entry_task(entry: str) -> str:
    return entry.split("[", 1)[0] if entry.endswith("]") else entry


def _check_order(order: list[str], runs: list[Any], by_id: dict[str, Any]) -> list[str]:
    """The task runs of the tasks named in `order`, in creation order, must be exactly `order`."""
    named = {_entry_task(e) for e in order}
    relevant = [tr for tr in runs if tr.task_id in named]
    if len(relevant) == len(order) and all(_entry_matches(e, tr) for e, tr in zip(order, relevant)):
        return []
    return [f"task runs were created in the order {[_label(tr) for tr in relevant]}, expected {order}"]


def _start(tr: Any) -> datetime:
    return tr.state.histories[0].date


def _end(tr: Any) -> datetime | None:
    return tr.state.histories[-1].date if tr.state.current.is_terminated() else None


def _check_before(pair: list[str], runs: list[Any]) -> list[str]:
    """[a, b]: every run of a had ended before any run of b was created."""
    first, second = pair
    a_runs = [tr for tr in runs if tr.task_id == first]
    b_runs = [tr for tr in runs if tr.task_id == second]
    if not a_runs or not b_runs:
        return [f"before {pair}: needs task runs of both (found {len(a_runs)} and {len(b_runs)})"]
    ends = [_end(tr) for tr in a_runs]
    if any(e is None for e in ends):
        return [f"before {pair}: a run of {first} never ended"]
    last_end = max(ends)  # type: ignore[type-var]
    first_start = min(_start(tr) for tr in b_runs)
    if last_end > first_start:
        return [(f"before {pair}: {second} was created at {first_start.isoformat()} "
                 f"before {first} ended at {last_end.isoformat()}")]
    return []


def _running_interval(tr: Any) -> tuple[datetime, datetime] | None:
    start = next((h.date for h in tr.state.histories if _name(h.state) == "RUNNING"), None)
    end = _end(tr)
    return None if start is None or end is None else (start, end)


def _check_concurrency(spec: dict[str, Any], runs: list[Any]) -> list[str]:
    """{taskIds: [...], min: n, max: m}: the peak number of those task runs RUNNING at the same time."""
    ids = set(spec["taskIds"])
    intervals = [i for tr in runs if tr.task_id in ids for i in [_running_interval(tr)] if i is not None]
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # ends sort first
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    out = []
    if "min" in spec and peak < spec["min"]:
        out.append(f"at most {peak} of {sorted(ids)} ran at the same time, expected at least {spec['min']}")
    if "max" in spec and peak > spec["max"]:
        out.append(f"{peak} of {sorted(ids)} ran at the same time, expected at most {spec['max']}")
    return out


def _select(entry: dict[str, Any], runs: list[Any], by_id: dict[str, Any]) -> list[Any]:
    selected = [tr for tr in runs if tr.task_id == entry["taskId"]]
    if "value" in entry:
        selected = [tr for tr in selected if tr.value == _as_value(entry["value"])]
    if "iteration" in entry:
        selected = [tr for tr in selected if tr.iteration == entry["iteration"]]
    if "parentValue" in entry:
        wanted = _as_value(entry["parentValue"])
        selected = [tr for tr in selected
                    if tr.parent_task_run_id and by_id[tr.parent_task_run_id].value == wanted]
    return selected


def _as_value(value: Any) -> Any:
    # loop values are strings on task runs; let fixtures write `value: 1`
    return value if value is None or isinstance(value, str) else str(value).lower() if isinstance(value, bool) \
        else str(value)


def _check_task_runs(entry: dict[str, Any], ex: Any, runs: list[Any], by_id: dict[str, Any]) -> list[str]:
    where = entry["taskId"] + "".join(f" {k}={entry[k]!r}" for k in ("value", "iteration", "parentValue")
                                      if k in entry)
    selected = _select(entry, runs, by_id)
    out: list[str] = []
    if "count" in entry:
        if len(selected) != entry["count"]:
            out.append(f"{where}: {len(selected)} task runs, expected {entry['count']} "
                       f"(all task runs: {_describe_all(runs, by_id)})")
        if entry["count"] == 0:
            return out
    elif not selected:
        return [f"{where}: no such task run (all task runs: {_describe_all(runs, by_id)})"]

    if "values" in entry:
        actual_values = sorted(str(tr.value) for tr in selected)
        wanted = sorted(str(_as_value(v)) for v in entry["values"])
        if actual_values != wanted:
            out.append(f"{where}: loop values {actual_values}, expected {wanted}")

    for tr in selected:
        who = f"{where} ({_label(tr)}, id {tr.id})"
        if "state" in entry and _name(tr.state.current) != entry["state"]:
            out.append(f"{who}: state {_name(tr.state.current)}, expected {entry['state']}")
        if "outputs" in entry:
            out += _match(entry["outputs"], tr.outputs, f"{who}: outputs")
        if "parentTaskId" in entry:
            parent = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
            actual_parent = parent.task_id if parent is not None else None
            if actual_parent != entry["parentTaskId"]:
                out.append(f"{who}: parent task is {actual_parent}, expected {entry['parentTaskId']}")
        if "histories" in entry:
            hist = [_name(h.state) for h in tr.state.histories]
            if not _is_subsequence(entry["histories"], hist):
                out.append(f"{who}: state history {hist} does not contain {entry['histories']} in order")
        if "attempts" in entry:
            out += _check_attempts(entry["attempts"], tr, who)
        if "minDuration" in entry:
            end = _end(tr)
            took = (end - _start(tr)).total_seconds() if end else None
            if took is None or took < float(entry["minDuration"]):
                out.append(f"{who}: took {took}s, expected at least {entry['minDuration']}s")
        if entry.get("startsAfterExecutionEnd"):
            ex_end = ex.state.histories[-1].date
            if _start(tr) < ex_end:
                out.append(f"{who}: created at {_start(tr).isoformat()}, before the execution ended "
                           f"at {ex_end.isoformat()}")
    return out


def _check_attempts(spec: Any, tr: Any, who: str) -> list[str]:
    attempts = tr.attempts or []
    states = [_name(a.state.current) for a in attempts]
    if isinstance(spec, int):
        spec = {"count": spec}
    elif isinstance(spec, list):
        spec = {"count": len(spec), "states": spec}
    out = []
    if "count" in spec and len(attempts) != spec["count"]:
        out.append(f"{who}: {len(attempts)} attempts {states}, expected {spec['count']}")
    if "states" in spec and states != spec["states"]:
        out.append(f"{who}: attempt states {states}, expected {spec['states']}")
    return out


def _check_log(entry: dict[str, Any], logs: list[Any]) -> list[str]:
    def matches(log: Any) -> bool:
        if "message" in entry and log.message != entry["message"]:
            return False
        if "contains" in entry and entry["contains"] not in log.message:
            return False
        if "icontains" in entry and entry["icontains"].lower() not in log.message.lower():
            return False
        if "level" in entry and _name(log.level) != entry["level"]:
            return False
        return "taskId" not in entry or log.task_id == entry["taskId"]

    found = [log for log in logs if matches(log)]
    wanted = {k: v for k, v in entry.items() if k not in ("absent", "count")}
    if entry.get("absent"):
        return [f"log {wanted} should not exist, found {len(found)}"] if found else []
    if "count" in entry and len(found) != entry["count"]:
        return [f"log {wanted}: found {len(found)}, expected {entry['count']}"]
    if not found:
        seen = [f"{_name(log.level)} {log.task_id}: {log.message}" for log in logs]
        return [f"no log matching {wanted}; logs were {seen}"]
    return []
