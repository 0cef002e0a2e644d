"""A flow's YAML -> `Flow`, checking every top-level property of spec §4.1 and Kestra's FlowValidator rules.

`check(source, registry)` never raises: it returns a `FlowCheck` with the flow (None when invalid), every
violation (path + line:column), the legacy-alias infos, deprecation paths and warnings, as the
validate endpoint reports them.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from ..errors import Violation
from ..model.execution import SYSTEM_PREFIX, Label
from ..model.flow import SLA, Flow, Input, Output, TaskSpec
from ..model.jsonfmt import parse_duration
from ..model.ids import RESERVED_PART, namespace_problem
from ..tasks.registry import Registry
from .checker import BAD, Checker, F, child, did_you_mean, found
from .inputs import _check_ids, parse_inputs, parse_outputs
from .rules import check_references, check_schedule_inputs
from .tasks import TaskParser, check_worker_group, parse_retry
from .triggers import FLOW as FLOW_TRIGGER, check_trigger, trigger_type as resolve_trigger_type
from .yamlpos import load

FLOW_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*")
NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]*")
TRIGGER_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*")
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*")
READ_ONLY_LABEL = SYSTEM_PREFIX + "readOnly"   # the one system label a flow may carry (Kestra's Label.READ_ONLY)
# top-level properties Kestra no longer has, and what replaces them
REMOVED = {"listeners": "listeners were removed from Kestra: run those tasks from `afterExecution`, "
                        "or from another flow with a Flow trigger"}

_LABEL_KEY_MESSAGE = ("Invalid label key. A valid key contains only lowercase letters numbers hyphens (-) "
                      "underscores (_) or periods (.) and must begin with a lowercase letter.")
_PLUGIN_DEFAULT = {"type": F("string", required=True), "values": F("map", required=True), "forced": F("bool")}
_CONCURRENCY = {"limit": F("int", required=True), "behavior": F("enum", choices=("QUEUE", "CANCEL", "FAIL"))}
_SLA = {"id": F("string", required=True), "type": F("enum", required=True, choices=("MAX_DURATION", "EXECUTION_ASSERTION")),
        "duration": F("duration"), "assert": F("string"), "behavior": F("enum", required=True, choices=("FAIL", "CANCEL", "NONE")),
        "labels": F("any")}
_CHECK = {"condition": F("string", required=True), "message": F("string", required=True),
          "style": F("enum", choices=("ERROR", "SUCCESS", "WARNING", "INFO")),
          "behavior": F("enum", choices=("BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"))}
_LABEL = {"key": F("string"), "value": F("string")}


@dataclass(slots=True)
class FlowCheck:
    """The outcome of validating one flow source; `flow` is None when there are violations."""

    flow: Flow | None
    violations: list[Violation] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    deprecation_paths: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # as written, even when invalid: the validate endpoint names the flow and checks `outdated`
    id: str | None = None
    namespace: str | None = None
    revision: int | None = None


class _FlowParser:
    __slots__ = ("ck", "doc", "tasks", "values", "task_lists", "triggers")

    def __init__(self, ck: Checker, doc: dict[str, Any]) -> None:
        self.ck = ck
        self.doc = doc
        self.values: dict[str, Any] = {}
        self.task_lists: dict[str, list[TaskSpec]] = {}
        self.triggers: list[tuple[str, dict[str, Any]]] = []   # (path, normalised trigger) of the typed ones
        self.tasks = TaskParser(ck)

    def run(self) -> None:
        ck, doc = self.ck, self.doc
        # defaults first: they apply to the tasks written before them too
        defaults = []
        for key in ("pluginDefaults", "taskDefaults"):
            if key in doc:
                if key == "taskDefaults":
                    ck.deprecated(key)
                defaults.extend(self._plugin_defaults(key, doc[key]))
        self.tasks.defaults = defaults
        self.values["pluginDefaults"] = defaults
        for key, value in doc.items():
            handler = _HANDLERS.get(key)
            if handler is None:
                hint = f"; {REMOVED[key]}" if key in REMOVED else did_you_mean(key, _HANDLERS)
                ck.error(key, f'Unrecognized field "{key}"' + hint)
            elif value is not None:
                handler(self, key, value)
        for key in ("id", "namespace"):
            if doc.get(key) is None:
                ck.error(key, "must not be null")
        if not doc.get("tasks"):
            ck.error("tasks", "must not be empty")
        _check_ids(ck, "tasks", self.tasks.ids, "Duplicate task id with name")

    # ----------------------------------------------------------------------------------- handlers

    def _plain(self, key: str, value: Any, kind: str, minimum: int | None = None) -> None:
        checked = self.ck.value(key, value, kind, minimum=minimum)
        if checked is not BAD:
            self.values[key] = checked

    def _id(self, key: str, value: Any) -> None:
        self.values[key] = self.ck.check_id(key, value, FLOW_ID, 100)

    def _namespace(self, key: str, value: Any) -> None:
        text = self.values[key] = self.ck.check_id(key, value, NAMESPACE, 150)
        problem = namespace_problem(text) if text and NAMESPACE.fullmatch(text) and len(text) <= 150 else None
        if problem is not None:
            # Kestra's pattern lets `a..b`, `a.` and `a._files` through, but a namespace is a path of the storage
            self.ck.error(key, "must not have an empty part between dots (`..`, or a trailing `.`)"
                          if RESERVED_PART not in text.split(".") else problem)

    def _tenant(self, key: str, value: Any) -> None:
        self.ck.check_id(key, value, TENANT_ID, None)   # accepted (Kestra's hidden field), not used

    def _revision(self, key: str, value: Any) -> None:
        self._plain(key, value, "int", minimum=1)

    def _string(self, key: str, value: Any) -> None:
        self._plain(key, value, "string")

    def _bool(self, key: str, value: Any) -> None:
        self._plain(key, value, "bool")

    def _map(self, key: str, value: Any) -> None:
        self._plain(key, value, "map")

    def _task_list(self, key: str, value: Any) -> None:
        self.task_lists[key] = self.tasks.parse_tasks(key, value)
        self.values[key] = True

    def _inputs(self, key: str, value: Any) -> None:
        self.values[key] = parse_inputs(self.ck, key, value)

    def _outputs(self, key: str, value: Any) -> None:
        self.values[key] = parse_outputs(self.ck, key, value)

    def _retry(self, key: str, value: Any) -> None:
        self.values[key] = parse_retry(self.ck, key, value)

    def _worker_group(self, key: str, value: Any) -> None:
        check_worker_group(self.ck, key, value)

    def _skip(self, key: str, value: Any) -> None:
        pass  # parsed before the other properties

    def _plugin_defaults(self, key: str, value: Any) -> list[dict[str, Any]]:
        ck = self.ck
        if value is None:
            return []
        if not isinstance(value, list):
            ck.expected(key, "a list of plugin defaults", value)
            return []
        out = []
        for i, item in enumerate(value):
            fields = ck.fields(f"{key}[{i}]", item, _PLUGIN_DEFAULT, what="a plugin default (a map with `type` and `values`)")
            if fields is not None and "type" in fields and "values" in fields:
                out.append({"type": fields["type"], "values": fields["values"], "forced": fields.get("forced", False)})
        return out

    def _concurrency(self, key: str, value: Any) -> None:
        fields = self.ck.fields(key, value, _CONCURRENCY)
        if fields is None:
            return
        limit = fields.get("limit")
        if limit is not None and limit < 1:
            self.ck.error(child(key, "limit"), "must be greater than 0")
        self.values[key] = {"limit": limit, "behavior": fields.get("behavior", "QUEUE")}

    def _sla(self, key: str, value: Any) -> None:
        out = []
        for i, item in enumerate(self._list(key, value, "a list of SLAs")):
            path = f"{key}[{i}]"
            fields = self.ck.fields(path, item, _SLA, what="an SLA (a map with `id` and `type`)")
            if fields is None:
                continue
            needed = {"MAX_DURATION": "duration", "EXECUTION_ASSERTION": "assert"}.get(fields.get("type", ""))
            if needed and item.get(needed) is None:
                self.ck.error(child(path, needed), "must not be null")
            labels = self._label_list(child(path, "labels"), item["labels"]) if item.get("labels") is not None else []
            out.append(SLA(id=fields.get("id", ""), type=fields.get("type", ""), behavior=fields.get("behavior", ""),
                           duration=_duration(fields.get("duration")), assertion=fields.get("assert"), labels=labels))
        self.values[key] = out

    def _checks(self, key: str, value: Any) -> None:
        out = []
        for i, item in enumerate(self._list(key, value, "a list of checks")):
            fields = self.ck.fields(f"{key}[{i}]", item, _CHECK, what="a check (a map with `condition` and `message`)")
            if fields is not None:
                out.append({"style": "INFO", "behavior": "BLOCK_EXECUTION", **fields})
        self.values[key] = out

    def _list(self, key: str, value: Any, what: str) -> list[Any]:
        if isinstance(value, list):
            return value
        self.ck.expected(key, what, value)
        return []

    def _triggers(self, key: str, value: Any) -> None:
        ck = self.ck
        out, ids, precondition_ids = [], [], []
        for i, item in enumerate(self._list(key, value, "a list of triggers")):
            path = f"{key}[{i}]"
            if not isinstance(item, dict):
                ck.expected(path, "a trigger (a map with `id` and `type`)", item)
                continue
            trigger_id = ck.check_id(child(path, "id"), item.get("id"), TRIGGER_ID, None)
            if trigger_id:
                ids.append((trigger_id, path))
            trigger_type = ck.value(child(path, "type"), item.get("type"), "string")
            if trigger_type is None:
                ck.error(child(path, "type"), "must not be null")
            elif trigger_type is not BAD:
                canonical = resolve_trigger_type(ck, path, trigger_type)
                if canonical is None:
                    continue
                preconditions = item.get("preconditions")
                if canonical == FLOW_TRIGGER and isinstance(preconditions, dict) and preconditions.get("id"):
                    precondition_ids.append((str(preconditions["id"]), child(child(path, "preconditions"), "id")))
                if canonical == FLOW_TRIGGER and not item.get("conditions") and preconditions is None:
                    ck.warnings.append(
                        "This flow will be triggered for EVERY execution of EVERY flow on your instance. We "
                        f"recommend adding the preconditions property to the Flow trigger '{trigger_id}'.")
                item = check_trigger(ck, path, item, canonical)
                self.triggers.append((path, item))
            out.append(item)
        _check_ids(ck, key, ids, "Duplicate trigger id with name")
        _check_ids(ck, key, precondition_ids, "Duplicate preconditions with id")
        self.values[key] = out

    def _labels(self, key: str, value: Any) -> None:
        self.values[key] = self._label_list(key, value)

    def _label_list(self, key: str, value: Any) -> list[Label]:
        """Labels as a map or a list of `key`/`value` maps (the flow's, an SLA's); errors at `key`."""
        ck = self.ck
        pairs: list[tuple[Any, Any, str]] = []   # key, value, where
        if isinstance(value, dict):
            for k, v in value.items():
                where = child(key, k)
                text = ck.text(where, v) if not isinstance(v, (dict, list)) else ck.expected(where, "a string", v)
                pairs.append((k, text, where))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                where = f"{key}[{i}]"
                fields = ck.fields(where, item, _LABEL, what="a label (a map with `key` and `value`)")
                if fields is not None:
                    pairs.append((fields.get("key"), fields.get("value"), where))
        else:
            ck.expected(key, "a list of labels or a map", value)
        labels = []
        for k, v, where in pairs:
            if v is BAD:
                continue
            if not k:
                ck.error(key, "Invalid label key: must not be empty", at=where)
                continue
            if not _is_label_key(k):
                ck.error(key, f"{_LABEL_KEY_MESSAGE} Found: '{k}'", at=where)
            if v is None or v == "":
                ck.error(key, f"Invalid label value for key '{k}': must not be empty", at=where)
                continue
            if k.startswith(SYSTEM_PREFIX) and k != READ_ONLY_LABEL:
                ck.error(key, f"System labels can only be set by Kestra itself, offending label: {k}={v}", at=where)
            labels.append(Label(k, v))
        return labels


def _duration(value: Any) -> timedelta | None:
    return parse_duration(value) if isinstance(value, str) else None


def _is_label_key(key: str) -> bool:
    """Java's `^[\\p{Ll}][\\p{L}0-9._-]*$`: a lowercase letter, then letters, ASCII digits, `.`, `_`, `-`."""
    if unicodedata.category(key[0]) != "Ll":
        return False
    return all(c in "0123456789._-" or unicodedata.category(c)[0] == "L" for c in key[1:])


_HANDLERS: dict[str, Callable[[_FlowParser, str, Any], None]] = {
    "id": _FlowParser._id,
    "namespace": _FlowParser._namespace,
    "tenantId": _FlowParser._tenant,
    "revision": _FlowParser._revision,
    "description": _FlowParser._string,
    "labels": _FlowParser._labels,
    "inputs": _FlowParser._inputs,
    "variables": _FlowParser._map,
    "tasks": _FlowParser._task_list,
    "errors": _FlowParser._task_list,
    "finally": _FlowParser._task_list,
    "afterExecution": _FlowParser._task_list,
    "outputs": _FlowParser._outputs,
    "triggers": _FlowParser._triggers,
    "pluginDefaults": _FlowParser._skip,
    "taskDefaults": _FlowParser._skip,
    "concurrency": _FlowParser._concurrency,
    "retry": _FlowParser._retry,
    "sla": _FlowParser._sla,
    "disabled": _FlowParser._bool,
    "checks": _FlowParser._checks,
    "workerGroup": _FlowParser._worker_group,
    "deleted": _FlowParser._bool,
}


def check(source: str, registry: Registry) -> FlowCheck:
    """Parse and validate one flow source; never raises for bad input."""
    loaded = load(source)
    if loaded.violations and loaded.value is None:
        return FlowCheck(None, loaded.violations)
    doc = loaded.value
    ck = Checker(loaded.positions, loaded.raw, registry)
    ck.violations.extend(loaded.violations)
    if not isinstance(doc, dict):
        ck.positions.setdefault("", (1, 1))
        ck.error("", f"expected a flow (a YAML mapping), found {found(doc)}")
        return FlowCheck(None, ck.violations)
    parser = _FlowParser(ck, doc)
    parser.run()
    _check_self_call(ck, doc, parser.task_lists)
    lists = parser.task_lists
    tasks = [spec for key in ("tasks", "errors", "finally", "afterExecution") for spec in lists.get(key, ())]
    inputs = parser.values.get("inputs") or []
    check_references(ck, tasks, inputs, parser.values.get("outputs") or [])
    check_schedule_inputs(ck, inputs, parser.triggers)
    # in document order, so the CLI's file:line:column list reads top to bottom
    ck.violations.sort(key=lambda v: (v.line is None, v.line or 0, v.column or 0))
    values = parser.values
    result = FlowCheck(None, ck.violations, ck.infos, ck.deprecation_paths, ck.warnings,
                       id=_text(doc.get("id")), namespace=_text(doc.get("namespace")),
                       revision=values.get("revision") if isinstance(values.get("revision"), int) else None)
    if ck.violations:
        return result
    inputs: list[Input] = values.get("inputs") or []
    outputs: list[Output] = values.get("outputs") or []
    result.flow = Flow(
        id=values["id"], namespace=values["namespace"], tasks=lists["tasks"], source=source,
        revision=values.get("revision"), description=values.get("description"), labels=values.get("labels") or [],
        inputs=inputs, variables=values.get("variables") or {}, errors=lists.get("errors", []),
        finally_=lists.get("finally", []), after_execution=lists.get("afterExecution", []), outputs=outputs,
        triggers=values.get("triggers") or [], plugin_defaults=values.get("pluginDefaults") or [],
        concurrency=values.get("concurrency"), retry=values.get("retry"), sla=values.get("sla") or [],
        checks=values.get("checks") or [], disabled=values.get("disabled", False),
        deleted=values.get("deleted", False), positions=loaded.positions,
    )
    return result


_SUBFLOW_TYPES = ("io.kestra.plugin.core.flow.Subflow", "io.kestra.plugin.core.flow.ForEachItem")


def _check_self_call(ck: Checker, doc: dict[str, Any], lists: dict[str, list[TaskSpec]]) -> None:
    """A Subflow (or ForEachItem) naming its own flow literally would call itself forever: refused, as Kestra does."""
    namespace, flow_id = _text(doc.get("namespace")), _text(doc.get("id"))
    if namespace is None or flow_id is None:
        return
    pending = [spec for specs in lists.values() if isinstance(specs, list) for spec in specs]
    while pending:
        spec = pending.pop()
        if not isinstance(spec, TaskSpec):
            continue
        pending.extend(spec.all_children())
        if spec.type in _SUBFLOW_TYPES and spec.props.get("namespace") == namespace \
                and spec.props.get("flowId") == flow_id:
            ck.error(f"{spec.path}.flowId", f"Recursive call to flow [{namespace}.{flow_id}]")


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)
