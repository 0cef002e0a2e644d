"""Builders for store tests: executions and log entries made with the model classes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from kestra_nb.model.execution import (
    Attempt, Execution, ExecutionMetadata, Label, Level, LogEntry, TaskRun,
)
from kestra_nb.model.ids import new_id
from kestra_nb.model.state import State, StateType

T0 = datetime(2024, 7, 12, 5, 7, 28, 447110, tzinfo=timezone.utc)


def build_execution(namespace: str = "company.team", flow_id: str = "myflow", *,
                    state: StateType = StateType.SUCCESS, start: datetime = T0, seconds: float = 1.5,
                    labels: dict[str, str] | None = None, tenant: str | None = "main",
                    execution_id: str | None = None, inputs: dict[str, Any] | None = None) -> Execution:
    """An execution with one task run, started at `start`, that went through CREATED, RUNNING, `state`."""
    eid = execution_id or new_id()
    st = State.new(StateType.CREATED, start)
    end = start + timedelta(seconds=seconds)
    if state is not StateType.CREATED:
        st.transition(StateType.RUNNING, start + timedelta(milliseconds=1))
        if state is not StateType.RUNNING:
            st.transition(state, end)
    tr_state = State.new(StateType.CREATED, start + timedelta(milliseconds=2))
    tr_state.transition(StateType.SUCCESS, end - timedelta(milliseconds=1))
    task_run = TaskRun(new_id(), eid, namespace, flow_id, "hello", tr_state,
                       attempts=[Attempt(tr_state.copy())], outputs={"value": "hello from kestra"},
                       tenant_id=tenant)
    all_labels = [Label(k, v) for k, v in (labels or {}).items()] + [Label("system.correlationId", eid)]
    return Execution(eid, namespace, flow_id, 1, st, ExecutionMetadata(1, start), eid, [task_run],
                     inputs=inputs or {"user": "Kestra user"}, labels=all_labels, tenant_id=tenant)


def build_log(ex: Execution, message: str, level: Level = Level.INFO, *, task_id: str | None = "hello",
              task_run_id: str | None = None, attempt: int | None = 1, at: datetime | None = None) -> LogEntry:
    """A log entry of `ex` (of its first task run unless told otherwise)."""
    return LogEntry(ex.namespace, ex.flow_id, at or T0, level, message, ex.id, task_id,
                    task_run_id if task_run_id is not None else ex.task_run_list[0].id, attempt,
                    tenant_id=ex.tenant_id)
