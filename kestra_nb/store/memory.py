"""The in-memory store (tests, `memory:`).

`MemoryStore` keeps the semantics of `SQLiteStore` with dicts under one lock. It stores JSON text
(executions, logs, KV values), never the caller's objects, so nothing it hands out aliases its state.
The rules both stores share live in `_common.py`.
"""
from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence

from ..model.execution import Execution, Level, LogEntry
from ..model.jsonfmt import (
    ExecutionText, dumps, execution_json, join_execution, log_from_dict, log_to_dict, parse_instant,
)
from ..model.state import StateType, utcnow
from .base import EndedExecution, FlowRecord, KVEntry, PurgeCounts, TriggerState
from .storage import InternalStorage
from ._common import (
    to_us, from_us, tenant_of, execution_columns, sort_columns, check_paging, namespace_matches, check_kv_type, kv_encode, kv_decode,
    purgeable_states,
)


# ------------------------------------------------------------------------------------- the store


@dataclass(slots=True)
class _ExecutionRow:
    id: str
    tenant: str
    namespace: str
    flow_id: str
    state: str
    start_date: int | None
    end_date: int | None
    duration: int | None
    labels: tuple[tuple[str, str], ...]
    head: str
    tail: str
    task_runs: list[str]    # changed in place by later saves: read `document` under the store's lock

    @property
    def document(self) -> str:
        return join_execution(self.head, self.tail, self.task_runs)


@dataclass(slots=True)
class _LogRow:
    seq: int
    tenant: str
    execution_id: str | None
    task_run_id: str | None
    task_id: str | None
    attempt_number: int | None
    severity: int
    document: dict[str, Any]


@dataclass(slots=True)
class _KVRow:
    type: str
    value: str
    revision: int
    updated: datetime
    expiration: datetime | None
    description: str | None


def _null_lowest(value: Any) -> tuple[bool, Any]:
    return (False, 0) if value is None else (True, value)


def _expired(expiration: datetime | None, now: datetime) -> bool:
    return expiration is not None and expiration <= now


class MemoryStore:
    """An ephemeral store with the same rules as `SQLiteStore`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._flows: dict[tuple[str, str, str], list[FlowRecord]] = {}
        self._executions: dict[str, _ExecutionRow] = {}
        self._logs: dict[str | None, list[_LogRow]] = {}
        self._kv: dict[tuple[str, str, str], _KVRow] = {}
        self._seq = 0
        self._version = 0
        self._storage: InternalStorage | None = None
        self._metrics: dict[str, list[str]] = {}
        self._storage_dir: tempfile.TemporaryDirectory[str] | None = None
        self._triggers: dict[tuple[str, str, str, str], TriggerState] = {}
        self._marks: dict[tuple[str, str], datetime] = {}
        self._recoveries: dict[str, int] = {}

    @property
    def storage(self) -> InternalStorage:
        """Files in a temporary directory, created on first use and removed with the store."""
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    self._storage_dir = tempfile.TemporaryDirectory(prefix="kestra_nb-storage-")
                    self._storage = InternalStorage(self._storage_dir.name)
        return self._storage

    def _changed(self) -> None:
        self._version += 1

    # ---------------------------------------------------------------------------------------- flows

    def save_flow(self, namespace: str, flow_id: str, source: str, *, tenant: str = "main") -> FlowRecord:
        """Store `source` as the next revision (or return the latest one if the source is identical)."""
        with self._lock:
            revisions = self._flows.setdefault((tenant, namespace, flow_id), [])
            latest = revisions[-1] if revisions else None
            if latest is not None and not latest.deleted and latest.source == source:
                return latest
            record = FlowRecord(namespace, flow_id, latest.revision + 1 if latest else 1, source, utcnow(),
                                False, tenant)
            revisions.append(record)
            self._changed()
            return record

    def get_flow(self, namespace: str, flow_id: str, revision: int | None = None, *,
                 allow_deleted: bool = False, tenant: str = "main") -> FlowRecord | None:
        """The latest (or the given) revision; None if missing, or deleted and not `allow_deleted`."""
        with self._lock:
            revisions = self._flows.get((tenant, namespace, flow_id))
            if not revisions:
                return None
            if revision is None:
                record = revisions[-1]
            else:
                record = next((r for r in revisions if r.revision == revision), None)
            if record is None or (record.deleted and not allow_deleted):
                return None
            return record

    def delete_flow(self, namespace: str, flow_id: str, *, tenant: str = "main") -> FlowRecord | None:
        """Soft delete: write a new revision marked deleted (same source); None if there is no live flow."""
        with self._lock:
            revisions = self._flows.get((tenant, namespace, flow_id))
            if not revisions or revisions[-1].deleted:
                return None
            latest = revisions[-1]
            record = FlowRecord(namespace, flow_id, latest.revision + 1, latest.source, utcnow(), True, tenant)
            revisions.append(record)
            self._changed()
            return record

    def flow_revisions(self, namespace: str, flow_id: str, *, tenant: str = "main") -> list[FlowRecord]:
        """Every revision, ascending (deleted markers included)."""
        with self._lock:
            return list(self._flows.get((tenant, namespace, flow_id), ()))

    def list_flows(self, namespace: str | None = None, *, prefix: bool = False,
                   tenant: str = "main") -> list[FlowRecord]:
        """The latest live revision of each flow, in `namespace` exactly (or under it when `prefix`)."""
        with self._lock:
            out = [revisions[-1] for (t, ns, _), revisions in self._flows.items()
                   if t == tenant and revisions and not revisions[-1].deleted
                   and (namespace is None or namespace_matches(ns, namespace, prefix))]
        out.sort(key=lambda r: (r.namespace, r.id))
        return out

    # ----------------------------------------------------------------------------------- executions

    def save_execution(self, execution: Execution, logs: Sequence[LogEntry] = (), *,
                       parts: ExecutionText | None = None, commands: Sequence[int] = ()) -> None:
        """Insert or update the execution (and append `logs`) in one transaction (the task runs `parts` says
        changed; all of them without `parts`). One process only: it has no `commands` to mark."""
        if parts is None:
            parts = execution_json(execution)
        tenant, start, end, duration = execution_columns(execution)
        texts = parts.task_runs
        log_docs = [log_to_dict(entry) for entry in logs]
        with self._lock:
            old = self._executions.get(execution.id)
            if parts.changed is None or old is None:
                runs = list(texts)
            else:
                runs = old.task_runs
                del runs[len(texts):]
                runs.extend(texts[len(runs):])
                for i in parts.changed:
                    runs[i] = texts[i]
            self._executions[execution.id] = _ExecutionRow(
                execution.id, tenant, execution.namespace, execution.flow_id, execution.state.current.value,
                start, end, duration, tuple((label.key, label.value) for label in execution.labels),
                parts.head, parts.tail, runs)
            self._append(logs, log_docs)
            self._changed()

    def get_execution(self, execution_id: str, *, tenant: str = "main") -> Execution | None:
        """The stored execution, or None."""
        document = self.get_execution_document(execution_id, tenant=tenant)
        return None if document is None else Execution.from_dict(document)

    def get_execution_text(self, execution_id: str, *, tenant: str = "main") -> str | None:
        """The stored JSON document's text, or None."""
        with self._lock:
            row = self._executions.get(execution_id)
            return row.document if row is not None and row.tenant == tenant else None

    def get_execution_document(self, execution_id: str, *, tenant: str = "main") -> dict[str, Any] | None:
        """The stored JSON document as is (no model round trip), or None."""
        text = self.get_execution_text(execution_id, tenant=tenant)
        return None if text is None else json.loads(text)

    def execution_text_stream(self, execution_id: str, *, tenant: str = "main") -> str | Iterator[str] | None:
        """The stored JSON document's text (it is in memory already: never in chunks), or None."""
        return self.get_execution_text(execution_id, tenant=tenant)

    def search_executions(self, **criteria: Any) -> tuple[list[Execution], int]:
        """A page of executions and the total count (the criteria of `search_execution_documents`)."""
        documents, total = self.search_execution_documents(**criteria)
        return [Execution.from_dict(document) for document in documents], total

    def search_execution_documents(self, **criteria: Any) -> tuple[list[dict[str, Any]], int]:
        """A page of executions' JSON documents and the total count (the criteria of `search_execution_texts`)."""
        texts, total = self.search_execution_texts(**criteria)
        return [json.loads(text) for text in texts], total

    def search_execution_texts(self, *, namespace: str | None = None, namespace_prefix: bool = True,
                          flow_id: str | None = None, states: Iterable[StateType] | None = None,
                          labels: dict[str, str] | None = None, start_after: datetime | None = None,
                          start_before: datetime | None = None, sort: Sequence[tuple[str, bool]] = (),
                          page: int = 1, size: int = 10, tenant: str = "main", count: bool = True) -> tuple[list[str], int]:
        """A page of executions' JSON texts, as stored, and the total count (start bounds inclusive; NULLs
        sort lowest; `count` is for the SQLite store's sake: counting costs nothing here)."""
        check_paging(page, size)
        order = sort_columns(sort)
        wanted_states = None if states is None else {StateType(s).value for s in states}
        after, before = to_us(start_after), to_us(start_before)
        wanted_labels = list((labels or {}).items())
        with self._lock:
            rows = [
                r for r in self._executions.values()
                if r.tenant == tenant
                and (namespace is None or namespace_matches(r.namespace, namespace, namespace_prefix))
                and (flow_id is None or r.flow_id == flow_id)
                and (wanted_states is None or r.state in wanted_states)
                and (after is None or (r.start_date is not None and r.start_date >= after))
                and (before is None or (r.start_date is not None and r.start_date <= before))
                and all(label in r.labels for label in wanted_labels)
            ]
            # Stable sorts from the last key to the first; None sorts lowest, as in SQLite.
            for column, ascending in reversed(order):
                rows.sort(key=lambda r, c=column: _null_lowest(getattr(r, c)), reverse=not ascending)
            total = len(rows)
            texts = [r.document for r in rows[(page - 1) * size: page * size]]
        return texts, total

    def executions_in_states(self, states: Iterable[StateType], *, tenant: str = "main") -> list[Execution]:
        """Every execution whose current state is one of `states`, oldest first."""
        wanted = {StateType(s).value for s in states}
        with self._lock:
            rows = [r for r in self._executions.values() if r.tenant == tenant and r.state in wanted]
            rows.sort(key=lambda r: (r.start_date is not None, r.start_date or 0, r.id))
            texts = [r.document for r in rows]
        return [Execution.from_dict(json.loads(text)) for text in texts]

    def delete_execution(self, execution_id: str, *, tenant: str = "main") -> bool:
        """Delete the execution and its logs; False if it did not exist."""
        with self._lock:
            row = self._executions.get(execution_id)
            if row is None or row.tenant != tenant:
                return False
            del self._executions[execution_id]
            self._metrics.pop(execution_id, None)
            if self._storage is not None:
                self._storage.delete_execution(row.namespace, row.flow_id, execution_id)
            kept = [r for r in self._logs.get(execution_id, ()) if r.tenant != tenant]
            if kept:
                self._logs[execution_id] = kept
            else:
                self._logs.pop(execution_id, None)
            self._changed()
            return True

    def purge_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                         start_after: datetime | None = None, start_before: datetime | None = None,
                         states: Iterable[StateType] | None = None, exclude: str | None = None,
                         executions: bool = True, logs: bool = True, metrics: bool = True, storage: bool = True,
                         tenant: str = "main") -> PurgeCounts:
        """Remove the terminated executions matching, or per flag only their logs, metrics or files."""
        names = set(purgeable_states(states))
        after, before = to_us(start_after), to_us(start_before)
        counts = [0, 0, 0, 0]
        with self._lock:
            rows = [r for r in self._executions.values()
                    if r.tenant == tenant and r.state in names and r.id != exclude
                    and (namespace is None or namespace_matches(r.namespace, namespace, flow_id is None))
                    and (flow_id is None or r.flow_id == flow_id)
                    and (after is None or (r.start_date is not None and r.start_date >= after))
                    and (before is None or (r.start_date is not None and r.start_date <= before))]
            for row in rows:
                if logs:
                    lines = self._logs.get(row.id, [])
                    kept = [r for r in lines if r.tenant != tenant]
                    counts[1] += len(lines) - len(kept)
                    self._logs[row.id] = kept
                if metrics:
                    counts[2] += len(self._metrics.pop(row.id, ()))
                if executions:
                    del self._executions[row.id]
                    counts[0] += 1
                if storage and self._storage is not None:
                    counts[3] += self._storage.delete_execution(row.namespace, row.flow_id, row.id)
            if rows:
                self._changed()
        return PurgeCounts(*counts)

    # -------------------------------------------------------------------------------------- metrics

    def append_metrics(self, metrics: Sequence[dict[str, Any]]) -> None:
        """Record metric entries (Kestra MetricEntry documents with `executionId`)."""
        with self._lock:
            for m in metrics:
                self._metrics.setdefault(m["executionId"], []).append(dumps(m))
            if metrics:
                self._changed()

    def list_metrics(self, execution_id: str, *, task_run_id: str | None = None,
                     tenant: str = "main") -> list[dict[str, Any]]:
        """An execution's metric entries in the order recorded (optionally one task run's)."""
        with self._lock:
            docs = [json.loads(text) for text in self._metrics.get(execution_id, ())]
        return [d for d in docs if tenant_of(d.get("tenantId")) == tenant
                and (task_run_id is None or d.get("taskRunId") == task_run_id)]

    # ----------------------------------------------------------------------------------------- logs

    def _append(self, logs: Sequence[LogEntry], docs: list[dict[str, Any]]) -> None:
        for entry, doc in zip(logs, docs):
            self._seq += 1
            self._logs.setdefault(entry.execution_id, []).append(_LogRow(
                self._seq, tenant_of(entry.tenant_id), entry.execution_id, entry.task_run_id, entry.task_id,
                entry.attempt_number, Level(entry.level).severity, doc))

    def purge_logs(self, *, namespace: str | None = None, flow_id: str | None = None,
                   levels: Iterable[Level] | None = None, start: datetime | None = None, end: datetime,
                   tenant: str = "main") -> int:
        """Remove the matching log lines; the count removed."""
        severities = None if levels is None else {Level(level).severity for level in levels}
        low, high = to_us(start), to_us(end)

        def matches(row: _LogRow) -> bool:
            doc = row.document
            stamp = to_us(parse_instant(str(doc["timestamp"])))
            return (row.tenant == tenant and stamp <= high and (low is None or stamp >= low)
                    and (namespace is None or doc.get("namespace") == namespace)
                    and (flow_id is None or doc.get("flowId") == flow_id)
                    and (severities is None or row.severity in severities))

        removed = 0
        with self._lock:
            for key, rows in list(self._logs.items()):
                kept = [r for r in rows if not matches(r)]
                removed += len(rows) - len(kept)
                self._logs[key] = kept
            if removed:
                self._changed()
        return removed

    def append_logs(self, logs: Sequence[LogEntry]) -> None:
        """Append log entries in one transaction."""
        if not logs:
            return
        docs = [log_to_dict(entry) for entry in logs]
        with self._lock:
            self._append(logs, docs)
            self._changed()

    def list_logs(self, execution_id: str, *, min_level: Level | None = None, task_run_id: str | None = None,
                  task_id: str | None = None, attempt: int | None = None, tenant: str = "main") -> list[LogEntry]:
        """The execution's logs in the order they were written, filtered (`min_level` and more severe)."""
        floor = None if min_level is None else Level(min_level).severity
        with self._lock:
            rows = [r for r in self._logs.get(execution_id, ())
                    if r.tenant == tenant
                    and (floor is None or r.severity >= floor)
                    and (task_run_id is None or r.task_run_id == task_run_id)
                    and (task_id is None or r.task_id == task_id)
                    and (attempt is None or r.attempt_number == attempt)]
        return [log_from_dict(r.document) for r in rows]

    # ------------------------------------------------------------------------------------------- KV

    def kv_put(self, namespace: str, key: str, value: Any, type: str, *, expiration: datetime | None = None,
               description: str | None = None, tenant: str = "main") -> KVEntry:
        """Set a key (revision + 1 each time; an expired key starts again at 1)."""
        check_kv_type(type)
        text = kv_encode(value, type)
        now = utcnow()
        with self._lock:
            self._purge(now)
            old = self._kv.get((tenant, namespace, key))
            row = _KVRow(type, text, old.revision + 1 if old else 1, now, expiration, description)
            self._kv[(tenant, namespace, key)] = row
            self._changed()
        return self._entry(tenant, namespace, key, row)

    def kv_get(self, namespace: str, key: str, *, tenant: str = "main") -> KVEntry | None:
        """The entry, or None if missing or expired."""
        now = utcnow()
        with self._lock:
            row = self._kv.get((tenant, namespace, key))
            if row is not None and _expired(row.expiration, now):
                del self._kv[(tenant, namespace, key)]
                self._changed()
                return None
        return None if row is None else self._entry(tenant, namespace, key, row)

    def kv_delete(self, namespace: str, key: str, *, tenant: str = "main") -> bool:
        """Remove a key; False if it was not there (or had expired)."""
        now = utcnow()
        with self._lock:
            row = self._kv.pop((tenant, namespace, key), None)
            if row is None:
                return False
            self._changed()
            return not _expired(row.expiration, now)

    def kv_list(self, namespace: str, *, tenant: str = "main") -> list[KVEntry]:
        """Live (unexpired) entries of a namespace, by key."""
        now = utcnow()
        with self._lock:
            rows = sorted((k[2], r) for k, r in self._kv.items()
                          if k[0] == tenant and k[1] == namespace and not _expired(r.expiration, now))
        return [self._entry(tenant, namespace, key, row) for key, row in rows]

    def _purge(self, now: datetime) -> None:
        for k in [k for k, r in self._kv.items() if _expired(r.expiration, now)]:
            del self._kv[k]

    @staticmethod
    def _entry(tenant: str, namespace: str, key: str, row: _KVRow) -> KVEntry:
        return KVEntry(namespace, key, kv_decode(row.value, row.type), row.type, row.revision, row.updated,
                       row.expiration, row.description, tenant)

    # ------------------------------------------------------------------------------------- triggers

    def get_trigger_state(self, namespace: str, flow_id: str, trigger_id: str, *,
                          tenant: str = "main") -> TriggerState | None:
        """The stored state of one trigger, or None."""
        with self._lock:
            return self._triggers.get((tenant, namespace, flow_id, trigger_id))

    def list_trigger_states(self, *, tenant: str = "main") -> list[TriggerState]:
        """Every stored trigger state of the tenant, by namespace, flow and trigger id."""
        with self._lock:
            return [state for key, state in sorted(self._triggers.items()) if key[0] == tenant]

    def put_trigger_state(self, state: TriggerState) -> TriggerState | None:
        """Compare-and-set on the version: None when another writer changed the state first."""
        tenant = tenant_of(state.tenant_id)
        key = (tenant, state.namespace, state.flow_id, state.trigger_id)
        with self._lock:
            current = self._triggers.get(key)
            if (current.version if current else 0) != state.version:
                return None
            data = json.loads(dumps(state.data)) if state.data else None   # no aliasing of the caller's map
            stored = TriggerState(state.namespace, state.flow_id, state.trigger_id, state.next_date,
                                  state.last_date, data, state.version + 1, utcnow(), tenant)
            self._triggers[key] = stored
            self._changed()
            return stored

    def delete_trigger_state(self, namespace: str, flow_id: str, trigger_id: str, *, tenant: str = "main") -> bool:
        """Forget a trigger's state; False if there was none."""
        with self._lock:
            found = self._triggers.pop((tenant, namespace, flow_id, trigger_id), None) is not None
            if found:
                self._changed()
            return found

    def claim_trigger_mark(self, key: str, *, tenant: str = "main") -> bool:
        """Record `key` once: True for the first caller only."""
        with self._lock:
            if (tenant, key) in self._marks:
                return False
            self._marks[(tenant, key)] = utcnow()
            return True

    def prune_trigger_marks(self, before: datetime, *, tenant: str = "main") -> int:
        """Forget the marks recorded before `before`."""
        with self._lock:
            old = [k for k, created in self._marks.items() if k[0] == tenant and created < before]
            for k in old:
                del self._marks[k]
            return len(old)

    def ended_executions(self, after: datetime, *, tenant: str = "main", limit: int = 1000) -> list[EndedExecution]:
        """Executions whose end date is after `after`, oldest end first."""
        after_us = to_us(after)
        with self._lock:
            rows = sorted((r for r in self._executions.values()
                           if r.tenant == tenant and r.end_date is not None and r.end_date > after_us),  # type: ignore[operator]
                          key=lambda r: (r.end_date, r.id))[:limit]
            return [EndedExecution(r.id, r.namespace, r.flow_id, StateType(r.state), from_us(r.end_date))  # type: ignore[arg-type]
                    for r in rows]

    # ------------------------------------------------------------------------------------ lifecycle

    def data_version(self) -> int:
        """A counter bumped by every change (there is no other connection to watch)."""
        with self._lock:
            return self._version

    def claim_orphans(self, states: Iterable[StateType]) -> list[Execution]:
        """Nothing to take over: a memory store lives and dies with its only process."""
        return []

    def count_recovery(self, execution_id: str) -> int:
        """Count one more recovery attempt of the execution; the count so far (0 for an unknown one)."""
        with self._lock:
            if execution_id not in self._executions:
                return 0
            count = self._recoveries.get(execution_id, 0) + 1
            self._recoveries[execution_id] = count
            return count

    def forget_recoveries(self) -> None:
        """A clean stop: the attempts counted so far were not interrupted by a crash."""
        with self._lock:
            self._recoveries.clear()

    def close(self) -> None:
        """Remove the temporary storage directory, if files were ever stored."""
        if self._storage_dir is not None:
            self._storage_dir.cleanup()


__all__ = ["MemoryStore"]
