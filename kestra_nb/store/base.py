"""The store protocol every implementation follows, and the records it hands back.

Rules every implementation keeps:
- `save_execution(ex, logs)` commits the execution document and the logs in ONE transaction; when it
  returns, both are durable against the process dying (SQLite: WAL, synchronous=NORMAL).
- Flow revisions are monotonic per (tenant, namespace, id), also across delete and re-create; saving a
  source byte-identical to the latest revision's creates no new revision.
- Executions are stored as Kestra's JSON document (`model.jsonfmt`) plus the columns searches need; its task
  runs are kept apart and written as they change, the document is assembled when read.
- Every method is safe to call from any thread of the process; several processes may share one file.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Protocol, Sequence

from ..model.execution import Execution, Level, LogEntry
from ..model.jsonfmt import ExecutionText
from ..model.state import StateType
from .storage import InternalStorage


PURGE_BATCH = 500   # executions (or 10x as many log lines) removed per write transaction of a purge


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """What a purge removed (Kestra's PurgeExecutions output)."""

    executions: int = 0
    logs: int = 0
    metrics: int = 0
    storages: int = 0


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """A command given to an execution through the store, waiting for the process driving it."""

    seq: int
    tenant: str
    execution_id: str
    kind: str              # kill, pause, resume
    payload: Any           # the command's arguments (JSON)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One stored flow revision."""

    namespace: str
    id: str
    revision: int
    source: str
    updated: datetime
    deleted: bool = False
    tenant_id: str = "main"


@dataclass(frozen=True, slots=True)
class KVEntry:
    """One KV pair; `value` is the typed value, `type` Kestra's KV type name (STRING, NUMBER, JSON…)."""

    namespace: str
    key: str
    value: Any
    type: str
    revision: int
    updated: datetime
    expiration: datetime | None = None
    description: str | None = None
    tenant_id: str = "main"


@dataclass(frozen=True, slots=True)
class TriggerState:
    """What the scheduler remembers of one trigger: its next due date, the last date it fired, its own data
    (backfill progress, satisfied preconditions) and a version bumped by every write (compare-and-set)."""

    namespace: str
    flow_id: str
    trigger_id: str
    next_date: datetime | None = None
    last_date: datetime | None = None
    data: dict[str, Any] | None = None
    version: int = 0
    updated: datetime | None = None
    tenant_id: str = "main"


@dataclass(frozen=True, slots=True)
class EndedExecution:
    """An execution that reached an end date (terminal, or paused): what the Flow trigger sorts on."""

    id: str
    namespace: str
    flow_id: str
    state: StateType
    end_date: datetime


class Store(Protocol):
    """Flows, executions, logs, KV and files, for one home directory (or in memory)."""

    storage: InternalStorage
    """The internal storage (`kestra:///` files); `delete_execution` removes an execution's files too."""

    # ---- flows
    def save_flow(self, namespace: str, flow_id: str, source: str, *, tenant: str = "main") -> FlowRecord:
        """Store `source` as the next revision (or return the latest one if the source is identical)."""

    def get_flow(self, namespace: str, flow_id: str, revision: int | None = None, *,
                 allow_deleted: bool = False, tenant: str = "main") -> FlowRecord | None:
        """The latest (or the given) revision; None if missing, or deleted and not `allow_deleted`."""

    def delete_flow(self, namespace: str, flow_id: str, *, tenant: str = "main") -> FlowRecord | None:
        """Soft delete: write a new revision marked deleted (same source); None if there is no live flow."""

    def flow_revisions(self, namespace: str, flow_id: str, *, tenant: str = "main") -> list[FlowRecord]:
        """Every revision, ascending (deleted markers included)."""

    def list_flows(self, namespace: str | None = None, *, prefix: bool = False,
                   tenant: str = "main") -> list[FlowRecord]:
        """The latest live revision of each flow, in `namespace` exactly (or under it when `prefix`)."""

    # ---- executions
    def save_execution(self, execution: Execution, logs: Sequence[LogEntry] = (), *,
                       parts: ExecutionText | None = None, commands: Sequence[int] = ()) -> None:
        """Insert or update the execution (and append `logs`) in one transaction.

        `parts` is the execution's JSON as the engine's `ExecutionJson` writer left it: only the task runs
        it says changed are written (all of them without it, or when it says a full write). `commands`
        (stores shared by processes: see SQLiteStore.put_command) are marked done in the same transaction.
        """

    def get_execution(self, execution_id: str, *, tenant: str = "main") -> Execution | None:
        """The stored execution, or None."""

    def get_execution_document(self, execution_id: str, *, tenant: str = "main") -> dict[str, Any] | None:
        """The stored JSON document as is (no model round trip), or None."""

    def get_execution_text(self, execution_id: str, *, tenant: str = "main") -> str | None:
        """The stored JSON document's text, or None."""

    def execution_text_stream(self, execution_id: str, *, tenant: str = "main") -> str | Iterator[str] | None:
        """The stored JSON document's text, None if there is no such execution, or, for a large document, an
        iterator of its text's chunks read as they are consumed (close it when done with it)."""

    def search_executions(self, *, namespace: str | None = None, namespace_prefix: bool = True,
                          flow_id: str | None = None, states: Iterable[StateType] | None = None,
                          labels: dict[str, str] | None = None, start_after: datetime | None = None,
                          start_before: datetime | None = None, sort: Sequence[tuple[str, bool]] = (),
                          page: int = 1, size: int = 10, tenant: str = "main") -> tuple[list[Execution], int]:
        """A page of executions and the total count. `sort` = [(field, ascending)], fields as Kestra's
        (`id`, `namespace`, `flowId`, `state.startDate`, `state.endDate`, `state.duration`, `state.current`)."""

    def search_execution_documents(self, *, namespace: str | None = None, namespace_prefix: bool = True,
                                    flow_id: str | None = None, states: Iterable[StateType] | None = None,
                                    labels: dict[str, str] | None = None, start_after: datetime | None = None,
                                    start_before: datetime | None = None, sort: Sequence[tuple[str, bool]] = (),
                                    page: int = 1, size: int = 10,
                                    tenant: str = "main") -> tuple[list[dict[str, Any]], int]:
        """`search_executions`, answered with the stored JSON documents (no model round trip)."""

    def search_execution_texts(self, *, namespace: str | None = None, namespace_prefix: bool = True,
                               flow_id: str | None = None, states: Iterable[StateType] | None = None,
                               labels: dict[str, str] | None = None, start_after: datetime | None = None,
                               start_before: datetime | None = None, sort: Sequence[tuple[str, bool]] = (),
                               page: int = 1, size: int = 10, tenant: str = "main", count: bool = True) -> tuple[list[str], int]:
        """`search_executions`, answered with the stored JSON documents' texts (nothing parsed); without
        `count` the total may be -1 (a scan reading page after page need not count each)."""

    def executions_in_states(self, states: Iterable[StateType], *, tenant: str = "main") -> list[Execution]:
        """Every execution whose current state is one of `states` (for recovery and scheduling)."""

    def delete_execution(self, execution_id: str, *, tenant: str = "main") -> bool:
        """Delete the execution and its logs; False if it did not exist."""

    def claim_orphans(self, states: Iterable[StateType]) -> list[Execution]:
        """Take over executions in `states` whose driving process died (crash recovery); ours from now on."""

    def count_recovery(self, execution_id: str) -> int:
        """Count one more recovery attempt of the execution (committed before it starts); the count so far."""

    def forget_recoveries(self) -> None:
        """This store's process stops cleanly: the recoveries of the executions it drives were not crashes."""

    # ---- logs
    def append_metrics(self, metrics: Sequence[dict[str, Any]]) -> None:
        """Record metric entries (Kestra MetricEntry documents with `executionId`) in one transaction."""

    def list_metrics(self, execution_id: str, *, task_run_id: str | None = None,
                     tenant: str = "main") -> list[dict[str, Any]]:
        """An execution's metric entries in the order recorded (optionally one task run's)."""

    def append_logs(self, logs: Sequence[LogEntry]) -> None:
        """Append log entries in one transaction."""

    def list_logs(self, execution_id: str, *, min_level: Level | None = None, task_run_id: str | None = None,
                  task_id: str | None = None, attempt: int | None = None, tenant: str = "main") -> list[LogEntry]:
        """The execution's logs in the order they were written, filtered."""

    # ---- purges: batches of PURGE_BATCH, one write transaction each (call them off the event loop)
    def purge_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                         start_after: datetime | None = None, start_before: datetime | None = None,
                         states: Iterable[StateType] | None = None, exclude: str | None = None,
                         executions: bool = True, logs: bool = True, metrics: bool = True, storage: bool = True,
                         tenant: str = "main") -> PurgeCounts:
        """Remove the terminated executions matching (namespace exactly with `flow_id`, else as a prefix;
        start date within the bounds, inclusive) or, per flag, only their logs, metrics or files."""

    def purge_logs(self, *, namespace: str | None = None, flow_id: str | None = None,
                   levels: Iterable[Level] | None = None, start: datetime | None = None, end: datetime,
                   tenant: str = "main") -> int:
        """Remove the log lines (of executions and triggers) matching: namespace and flow exactly, one of
        `levels`, timestamp within [start, end]; the count removed."""

    # ---- KV
    def kv_put(self, namespace: str, key: str, value: Any, type: str, *, expiration: datetime | None = None,
               description: str | None = None, tenant: str = "main") -> KVEntry:
        """Set a key (revision + 1 each time)."""

    def kv_get(self, namespace: str, key: str, *, tenant: str = "main") -> KVEntry | None:
        """The entry, or None if missing or expired."""

    def kv_delete(self, namespace: str, key: str, *, tenant: str = "main") -> bool:
        """Remove a key; False if it was not there."""

    def kv_list(self, namespace: str, *, tenant: str = "main") -> list[KVEntry]:
        """Live (unexpired) entries of a namespace, by key."""

    # ---- triggers (the scheduler's state)
    def get_trigger_state(self, namespace: str, flow_id: str, trigger_id: str, *,
                          tenant: str = "main") -> TriggerState | None:
        """The stored state of one trigger, or None."""

    def list_trigger_states(self, *, tenant: str = "main") -> list[TriggerState]:
        """Every stored trigger state of the tenant, by namespace, flow and trigger id."""

    def put_trigger_state(self, state: TriggerState) -> TriggerState | None:
        """Compare-and-set: write `state` if the stored version is still `state.version` (0: no row yet);
        returns the stored state (version + 1), or None when another writer got there first."""

    def delete_trigger_state(self, namespace: str, flow_id: str, trigger_id: str, *, tenant: str = "main") -> bool:
        """Forget a trigger's state; False if there was none."""

    def claim_trigger_mark(self, key: str, *, tenant: str = "main") -> bool:
        """Record `key` once (a trigger firing for one date or one ended execution): True for the first
        caller, False for every later one, across processes."""

    def prune_trigger_marks(self, before: datetime, *, tenant: str = "main") -> int:
        """Forget the marks recorded before `before`; returns how many."""

    def ended_executions(self, after: datetime, *, tenant: str = "main", limit: int = 1000) -> list[EndedExecution]:
        """Executions whose end date is after `after`, oldest end first (at most `limit`)."""

    # ---- change watching and lifecycle
    def data_version(self) -> int:
        """A number that changes whenever another connection (process) committed a change."""

    def close(self) -> None:
        """Release the store's resources."""
