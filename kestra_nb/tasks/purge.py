"""log.PurgeLogs and execution.PurgeExecutions: remove stored logs, or executions with their logs, metrics
and files, matching filters (Kestra's LogService.purge and ExecutionService.purge).

PurgeLogs: `namespace` and `flowId` exactly, `logLevels`, `startDate` to `endDate` (required) on the
timestamp; trigger logs too. PurgeExecutions: `namespace` (a prefix unless `flowId` is set), `flowId`,
`states`, `startDate` to `endDate` (required) on the start date; `purgeExecution`, `purgeLog`,
`purgeMetric`, `purgeStorage` say what goes. Only terminated executions are purged, never the running
one: an execution still running is driven by a process that would write it back. The store works in
batches, one write transaction each, on a worker thread (never on the event loop).
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..errors import TaskFailure
from ..model.execution import Level
from ..model.state import StateType
from ..store._common import tenant_of
from .base import Prop, Task, TaskContext, render_bool
from .count import zoned_instant

LEVELS = tuple(level.value for level in Level)
STATES = tuple(s.value for s in StateType)


def _optional(ctx: TaskContext, task: Task, prop: str) -> str | None:
    raw = task.prop(prop)
    return None if raw is None else ctx.render_string(raw, prop)


def _names(ctx: TaskContext, task: Task, prop: str, allowed: tuple[str, ...]) -> list[str] | None:
    raw = task.prop(prop)
    if raw is None:
        return None
    value = ctx.render(raw, prop)
    if not isinstance(value, list):
        raise TaskFailure(f"Invalid `{prop}`: expected a list of {', '.join(allowed)}")
    for i, item in enumerate(value):
        if item not in allowed:
            raise TaskFailure(f"Invalid `{prop}[{i}]` `{item}`: expected one of {', '.join(allowed)}")
    return value


class PurgeLogs(Task):
    """Purge logs by namespace, flow, levels and dates → `count`."""

    type = "io.kestra.plugin.core.log.PurgeLogs"
    props = (Prop("namespace", "string"), Prop("flowId", "string"), Prop("logLevels", "list"),
             Prop("startDate", "string"), Prop("endDate", "string", required=True))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        levels = _names(ctx, self, "logLevels", LEVELS)
        start = zoned_instant(ctx, self.prop("startDate"), "startDate") if self.prop("startDate") is not None \
            else None
        end = zoned_instant(ctx, self.prop("endDate"), "endDate")
        store = ctx.renderer.store  # type: ignore[attr-defined]
        count = await asyncio.to_thread(
            store.purge_logs, namespace=_optional(ctx, self, "namespace"), flow_id=_optional(ctx, self, "flowId"),
            levels=None if levels is None else [Level(level) for level in levels], start=start, end=end,
            tenant=tenant_of(ctx.execution.tenant_id))
        return {"count": count}


class PurgeExecutions(Task):
    """Purge terminated executions (their logs, metrics, files) by namespace, flow, states and dates →
    `executionsCount`, `logsCount`, `storagesCount`, `metricsCount`."""

    type = "io.kestra.plugin.core.execution.PurgeExecutions"
    aliases = ("io.kestra.core.tasks.storages.Purge", "io.kestra.plugin.core.storage.Purge")
    props = (Prop("namespace", "string"), Prop("flowId", "string"), Prop("startDate", "string"),
             Prop("endDate", "string", required=True), Prop("states", "list"),
             Prop("purgeExecution", "bool", default=True), Prop("purgeLog", "bool", default=True),
             Prop("purgeMetric", "bool", default=True), Prop("purgeStorage", "bool", default=True))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        states = _names(ctx, self, "states", STATES)
        start = zoned_instant(ctx, self.prop("startDate"), "startDate") if self.prop("startDate") is not None \
            else None
        end = zoned_instant(ctx, self.prop("endDate"), "endDate")
        flags = {key: render_bool(ctx, self.prop(prop), prop, True) for key, prop in (
            ("executions", "purgeExecution"), ("logs", "purgeLog"), ("metrics", "purgeMetric"),
            ("storage", "purgeStorage"))}
        store = ctx.renderer.store  # type: ignore[attr-defined]
        counts = await asyncio.to_thread(
            store.purge_executions, namespace=_optional(ctx, self, "namespace"),
            flow_id=_optional(ctx, self, "flowId"), start_after=start, start_before=end,
            states=None if states is None else [StateType(s) for s in states], exclude=ctx.execution.id,
            tenant=tenant_of(ctx.execution.tenant_id), **flags)
        return {"executionsCount": counts.executions, "logsCount": counts.logs, "storagesCount": counts.storages,
                "metricsCount": counts.metrics}


__all__ = ["PurgeExecutions", "PurgeLogs"]
