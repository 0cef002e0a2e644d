"""Executions, task runs, attempts, labels and log entries, as Kestra models them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Iterator

from .state import State, StateType

SYSTEM_PREFIX = "system."
CORRELATION_ID = "system.correlationId"


@dataclass(slots=True)
class Label:
    key: str
    value: str


@dataclass(slots=True)
class Attempt:
    state: State
    worker_id: str | None = None
    log_file: str | None = None


@dataclass(slots=True)
class TaskRun:
    id: str
    execution_id: str
    namespace: str
    flow_id: str
    task_id: str
    state: State
    parent_task_run_id: str | None = None
    value: str | None = None
    attempts: list[Attempt] | None = None
    outputs: dict[str, Any] | None = None
    iteration: int | None = None
    dynamic: bool | None = None
    tenant_id: str | None = "main"


@dataclass(slots=True)
class ExecutionMetadata:
    attempt_number: int
    original_created_date: datetime


@dataclass(slots=True)
class ExecutionTrigger:
    id: str
    type: str
    variables: dict[str, Any] | None = None


@dataclass(slots=True, eq=False)
class Execution:
    """One run of a flow revision. `to_dict()` is Kestra's JSON for it."""

    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: State
    metadata: ExecutionMetadata
    original_id: str
    task_run_list: list[TaskRun] = field(default_factory=list)
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    labels: list[Label] = field(default_factory=list)
    variables: dict[str, Any] | None = None
    parent_id: str | None = None
    trigger: ExecutionTrigger | None = None
    deleted: bool = False
    schedule_date: datetime | None = None
    kind: str | None = None
    tenant_id: str | None = "main"

    def to_dict(self) -> dict[str, Any]:
        """Kestra's JSON document for this execution."""
        from .jsonfmt import execution_to_dict

        return execution_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Execution:
        """Read Kestra's JSON document back."""
        from .jsonfmt import execution_from_dict

        return execution_from_dict(data)

    def task_run(self, task_run_id: str) -> TaskRun:
        for tr in self.task_run_list:
            if tr.id == task_run_id:
                return tr
        raise KeyError(task_run_id)

    def task_runs_of(self, task_id: str) -> Iterator[TaskRun]:
        return (tr for tr in self.task_run_list if tr.task_id == task_id)

    def label_map(self) -> dict[str, str]:
        """Labels as a map; the first value wins on duplicate keys (as in Kestra's expressions)."""
        out: dict[str, str] = {}
        for label in self.labels:
            out.setdefault(label.key, label.value)
        return out

    @property
    def is_terminated(self) -> bool:
        return self.state.current.is_terminated()

    def __repr__(self) -> str:
        return (f"Execution(id={self.id!r}, flow={self.namespace}.{self.flow_id}, "
                f"revision={self.flow_revision}, state={self.state.current.value})")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython (its rich view: jupyter.display)
        p.text(repr(self))


class Level(str, Enum):
    """Log levels, most severe first."""

    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"
    DEBUG = "DEBUG"
    TRACE = "TRACE"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __str__(self) -> str:
        return self.value


_SEVERITY = {Level.ERROR: 40, Level.WARN: 30, Level.INFO: 20, Level.DEBUG: 10, Level.TRACE: 0}


@dataclass(slots=True)
class LogEntry:
    """One log line of an execution (Kestra's LogEntry)."""

    namespace: str
    flow_id: str
    timestamp: datetime
    level: Level
    message: str
    execution_id: str | None = None
    task_id: str | None = None
    task_run_id: str | None = None
    attempt_number: int | None = None
    trigger_id: str | None = None
    thread: str = "kestra_nb"
    tenant_id: str | None = "main"
    deleted: bool = False


def is_system_label(key: str) -> bool:
    return key.startswith(SYSTEM_PREFIX)


__all__ = [
    "Attempt", "Execution", "ExecutionMetadata", "ExecutionTrigger", "Label", "Level", "LogEntry",
    "TaskRun", "State", "StateType", "CORRELATION_ID", "is_system_label",
]
