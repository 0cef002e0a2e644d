"""Kestra's Flow / FlowWithSource JSON for a stored flow revision.

The JSON is the YAML document as written (task properties untouched, no plugin defaults injected), in the
field order of Kestra's Flow model, plus `revision`, `tenantId`, `updated`, `disabled`, `deleted` and, for
FlowWithSource, the `source` text. Kestra writes `Property` values as strings, and the strict generated
client (kestrapy 1.0.x) rejects numbers or booleans where Kestra has a string: input `defaults`/`prefill`
and output `value` scalars are stringified, label values too.

This belongs next to the execution JSON in `model/jsonfmt.py`; it lives here until it moves there.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import date, datetime
from typing import Any

import yaml

from ..model.jsonfmt import format_instant
from ..parsing.yamlpos import YamlBudgetError, load_within_budget
from ..store.base import FlowRecord

# Kestra's Flow property order (AbstractFlow then Flow); anything else written in the YAML follows.
ORDER = ("id", "namespace", "revision", "tenantId", "updated", "description", "inputs", "outputs", "disabled",
         "labels", "variables", "workerGroup", "deleted", "finally", "tasks", "errors", "afterExecution",
         "listeners", "triggers", "pluginDefaults", "taskDefaults", "concurrency", "retry", "sla", "checks")
_SERVER_KEYS = frozenset({"revision", "tenantId", "updated", "deleted", "source"})


class _Loader(yaml.SafeLoader):
    """Safe YAML without the timestamp resolver: a date stays the text that was written."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def load_document(source: str) -> Any:
    """The flow's YAML as plain data (cached by source text; callers must not mutate it)."""
    with _LOCK:
        hit = _CACHE.get(source)
        if hit is not None:
            _CACHE.move_to_end(source)
            return hit
    try:
        doc = load_within_budget(source, _Loader)   # a bomb stored before the budget existed stays small
    except (yaml.YAMLError, YamlBudgetError):
        doc = None
    with _LOCK:
        _CACHE[source] = doc
        if len(_CACHE) > 512:
            _CACHE.popitem(last=False)
    return doc


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def java_string(value: Any) -> str:
    """A scalar as Java prints it in a Property string (`true`, `1`, `1.5`); lists and maps as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _stringify(value: Any) -> Any:
    """What the generated client accepts where Kestra has a Property: a string, or a map."""
    if value is None or isinstance(value, (str, dict)):
        return value
    return java_string(value)


def _inputs(inputs: Any) -> Any:
    if not isinstance(inputs, list):
        return inputs
    out = []
    for item in inputs:
        if isinstance(item, dict):
            item = dict(item)
            for key in ("defaults", "prefill"):
                if key in item:
                    item[key] = _stringify(item[key])
        out.append(item)
    return out


def _outputs(outputs: Any) -> Any:
    if not isinstance(outputs, list):
        return outputs
    out = []
    for item in outputs:
        if isinstance(item, dict) and "value" in item:
            item = {**item, "value": _stringify(item["value"])}
        out.append(item)
    return out


def _labels(labels: Any) -> Any:
    if isinstance(labels, dict):
        return [{"key": str(k), "value": java_string(v)} for k, v in labels.items()]
    if isinstance(labels, list):
        return [{**item, "value": java_string(item.get("value"))} if isinstance(item, dict) and
                item.get("value") is not None and not isinstance(item.get("value"), str) else item
                for item in labels]
    return labels


def flow_document(record: FlowRecord, *, with_source: bool) -> dict[str, Any]:
    """Kestra's Flow JSON for one stored revision (FlowWithSource when `with_source`)."""
    raw = load_document(record.source)
    doc = _plain(raw) if isinstance(raw, dict) else {}
    fields: dict[str, Any] = {k: v for k, v in doc.items() if k not in _SERVER_KEYS}
    fields["id"] = record.id
    fields["namespace"] = record.namespace
    fields["revision"] = record.revision
    fields["tenantId"] = record.tenant_id
    fields["updated"] = format_instant(record.updated)
    fields["disabled"] = bool(doc.get("disabled", False)) if isinstance(doc.get("disabled", False), bool) else False
    fields["deleted"] = record.deleted
    if "inputs" in fields:
        fields["inputs"] = _inputs(fields["inputs"])
    if "outputs" in fields:
        fields["outputs"] = _outputs(fields["outputs"])
    if "labels" in fields:
        fields["labels"] = _labels(fields["labels"])
    out = {k: fields[k] for k in ORDER if k in fields and fields[k] is not None}
    out.update((k, v) for k, v in fields.items() if k not in out and v is not None)
    if with_source:
        out["source"] = record.source
    return out


def input_document(record: FlowRecord, input_id: str) -> dict[str, Any] | None:
    """The JSON of one declared input of the flow (as in the flow's `inputs`)."""
    for item in flow_document(record, with_source=False).get("inputs") or ():
        if isinstance(item, dict) and item.get("id") == input_id:
            return item
    return None


def source_from_json(value: Any) -> str:
    """A (deprecated) JSON Flow body as YAML source: the server-managed fields are dropped."""
    if not isinstance(value, dict):
        raise ValueError("a flow must be a JSON object")
    doc = {k: v for k, v in value.items() if k not in _SERVER_KEYS}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


__all__ = ["flow_document", "input_document", "java_string", "load_document", "source_from_json"]
