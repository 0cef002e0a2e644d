"""Tasks that write or read an execution's log lines: debug.Echo (deprecated Log) and log.Fetch.

Fetch reads the committed logs from the store plus the lines the engine has not committed yet (the same
two sources as `errorLogs()`), so it sees the logs of the tasks before it without a pause, and writes them
to the internal storage as Kestra does: one Ion struct per line (its FileSerde format).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from ..errors import TaskFailure
from ..model.execution import Level, LogEntry
from ..model.ids import new_id
from ..model.jsonfmt import format_instant
from ..store._common import tenant_of
from .base import Prop, Task, TaskContext
from .ion import dumps as ion_dumps

LEVELS = tuple(level.value for level in Level)


def _level(ctx: TaskContext, raw: Any, prop: str = "level") -> Level:
    text = ctx.render_string(raw, prop).strip() if raw is not None else "INFO"
    try:
        return Level(text)
    except ValueError:
        raise TaskFailure(f"Invalid `{prop}` `{text}`: expected one of {', '.join(LEVELS)}") from None


class Echo(Task):
    """Render `format` and log it at `level` (Kestra's deprecated predecessor of log.Log)."""

    type = "io.kestra.plugin.core.debug.Echo"
    instant = True
    props = (Prop("format", "string", required=True), Prop("level", "enum", default="INFO", choices=LEVELS))

    async def run(self, ctx: TaskContext) -> None:
        raw = self.prop("format")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise TaskFailure("Invalid `format`: must not be blank")
        ctx.log(_level(ctx, self.prop("level")), ctx.render_string(raw, "format"))
        return None


# ------------------------------------------------------------------------------------------------- Ion

def log_ion(entry: LogEntry) -> str:
    """One LogEntry as an Ion struct on one line (timestamp as an Ion timestamp, nulls omitted)."""
    fields: list[tuple[str, str]] = []
    if entry.tenant_id is not None:
        fields.append(("tenantId", ion_dumps(entry.tenant_id)))
    fields += [("namespace", ion_dumps(entry.namespace)), ("flowId", ion_dumps(entry.flow_id))]
    for name, value in (("taskId", entry.task_id), ("executionId", entry.execution_id),
                        ("taskRunId", entry.task_run_id), ("attemptNumber", entry.attempt_number),
                        ("triggerId", entry.trigger_id)):
        if value is not None:
            fields.append((name, ion_dumps(value)))
    fields += [("timestamp", format_instant(entry.timestamp)), ("level", ion_dumps(entry.level.value)),
               ("thread", ion_dumps(entry.thread)), ("message", ion_dumps(entry.message)),
               ("deleted", "true" if entry.deleted else "false")]
    return "{" + ",".join(f"{k}:{v}" for k, v in fields) + "}"


# ----------------------------------------------------------------------------------------------- Fetch

def _text(ctx: TaskContext, raw: Any, prop: str) -> str | None:
    if raw is None:
        return None
    text = ctx.render_string(raw, prop).strip()
    if not text:
        raise TaskFailure(f"Invalid `{prop}`: must not be blank")
    return text


def _task_ids(ctx: TaskContext, raw: Any) -> list[str] | None:
    if raw is None:
        return None
    rendered = ctx.render(raw, "tasksId")
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            rendered = [rendered]
    if not isinstance(rendered, list) or not all(isinstance(t, str) for t in rendered):
        raise TaskFailure("Invalid `tasksId`: expected a list of task ids")
    return rendered


class Fetch(Task):
    """Write the logs (at `level` and above) of this execution, or of `executionId`, to an Ion file → `uri`,
    `size` (the number of lines); `tasksId` keeps only those tasks' logs, task by task."""

    type = "io.kestra.plugin.core.log.Fetch"
    props = (Prop("namespace", "string"), Prop("flowId", "string"), Prop("executionId", "string"),
             Prop("tasksId", "list"), Prop("level", "enum", default="INFO", choices=LEVELS))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        namespace = _text(ctx, self.prop("namespace"), "namespace")
        flow_id = _text(ctx, self.prop("flowId"), "flowId")
        execution_id = _text(ctx, self.prop("executionId"), "executionId")
        # Kestra's PluginUtilsService.executionFromTaskParameters rules and messages
        if execution_id is not None:
            if (namespace is None) != (flow_id is None):
                raise TaskFailure("Both `namespace` and `flowId` must be set when `executionId` is set.")
        elif namespace is not None or flow_id is not None:
            raise TaskFailure("`namespace` and `flowId` should only be set when `executionId` is set.")
        if namespace is None:
            namespace, flow_id = ctx.flow.namespace, ctx.flow.id
        execution_id = execution_id or ctx.execution.id
        level = _level(ctx, self.prop("level"))
        task_ids = _task_ids(ctx, self.prop("tasksId"))
        store = ctx.renderer.store  # type: ignore[attr-defined]
        tenant = tenant_of(ctx.execution.tenant_id)
        pending: list[LogEntry] = []
        if execution_id == ctx.execution.id:  # the lines the engine has not committed yet
            hooks = getattr(ctx, "hooks", None)
            pending = list(getattr(hooks, "pending_logs", None) or ())

        def fetch() -> tuple[str, int]:
            stored = store.list_logs(execution_id, min_level=level, tenant=tenant)
            seen = {_key(e) for e in stored}
            entries = [e for e in stored + [p for p in pending if _key(p) not in seen
                                            and p.execution_id == execution_id
                                            and p.level.severity >= level.severity]
                       if e.namespace == namespace and e.flow_id == flow_id]
            entries.sort(key=lambda e: e.timestamp)  # stable: lines of one instant keep their order
            if task_ids is not None:
                entries = [e for task_id in task_ids for e in entries if e.task_id == task_id]
            body = "".join(log_ion(e) + "\n" for e in entries).encode("utf-8", "replace")
            return ctx.put_file(f"{new_id()}.ion", body), len(entries)  # type: ignore[attr-defined]

        uri, size = await asyncio.to_thread(fetch)
        return {"size": size, "uri": uri}


def _key(entry: LogEntry) -> tuple[Any, ...]:
    return entry.task_run_id, entry.timestamp, entry.level, entry.message, entry.attempt_number


__all__ = ["Echo", "Fetch", "log_ion"]
