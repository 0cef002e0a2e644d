"""execution.Count: count the stored executions of flows or namespaces in a time window.

As Kestra's ExecutionRepository.executionCounts: one result per flow of `flows` (0 when it has none), then
one per namespace of `namespaces` that has executions (namespaces match exactly); only the results whose
`expression`, rendered with the variable `count`, gives exactly `true` are kept.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from ..errors import ExpressionError, TaskFailure
from ..model.state import StateType, utcnow
from ..store._common import tenant_of
from .base import Prop, Task, TaskContext

STATES = tuple(s.value for s in StateType)


def zoned_instant(ctx: TaskContext, raw: Any, prop: str) -> datetime:
    """A rendered date-time property parsed as Java's ZonedDateTime.parse (a TaskFailure naming it otherwise)."""
    text = ctx.render_string(raw, prop).strip()
    try:  # Java's ZonedDateTime.parse: ISO with an offset, optionally a [zone id] after it
        value = datetime.fromisoformat(re.sub(r"\[[^\]]*\]$", "", text))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise TaskFailure(f"Invalid `{prop}` `{text}`: expected an ISO-8601 date-time with an offset, such as "
                          "2024-01-31T10:00:00Z")
    return value


def _list(ctx: TaskContext, raw: Any, prop: str) -> list[Any] | None:
    if raw is None:
        return None
    value = ctx.render(raw, prop)
    if not isinstance(value, list):
        raise TaskFailure(f"Invalid `{prop}`: expected a list")
    return value


class Count(Task):
    """Count the executions of `flows` ({namespace, flowId}) or `namespaces` started between `startDate` and
    `endDate` (now), in `states`, keeping those where `expression` is true → `results`, `total`."""

    type = "io.kestra.plugin.core.execution.Count"
    props = (Prop("flows", "list"), Prop("states", "list"), Prop("startDate", "string", required=True),
             Prop("endDate", "string"), Prop("expression", "string", required=True), Prop("namespaces", "list"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        flows = _list(ctx, self.prop("flows"), "flows")
        namespaces = _list(ctx, self.prop("namespaces"), "namespaces")
        if flows is None and namespaces is None:
            raise TaskFailure("You must provide a list of flows or namespaces")
        pairs: list[tuple[str, str]] = []
        for i, flow in enumerate(flows or ()):
            if not isinstance(flow, dict) or not isinstance(flow.get("namespace"), str) \
                    or not isinstance(flow.get("flowId"), str):
                raise TaskFailure(f"Invalid `flows[{i}]`: expected a map with `namespace` and `flowId`")
            pairs.append((flow["namespace"], flow["flowId"]))
        for i, namespace in enumerate(namespaces or ()):
            if not isinstance(namespace, str) or not namespace:
                raise TaskFailure(f"Invalid `namespaces[{i}]`: expected a namespace such as company.team")
        states = None
        raw_states = _list(ctx, self.prop("states"), "states")
        if raw_states is not None:
            for i, state in enumerate(raw_states):
                if state not in STATES:
                    raise TaskFailure(f"Invalid `states[{i}]` `{state}`: expected one of {', '.join(STATES)}")
            states = [StateType(s) for s in raw_states]
        start = zoned_instant(ctx, self.prop("startDate"), "startDate") if self.prop("startDate") is not None \
            else utcnow() - timedelta(days=30)
        end = zoned_instant(ctx, self.prop("endDate"), "endDate") if self.prop("endDate") is not None else utcnow()
        expression = self.prop("expression")
        if expression is None:
            raise TaskFailure("`expression` is required")
        store = ctx.renderer.store  # type: ignore[attr-defined]
        tenant = tenant_of(ctx.execution.tenant_id)

        def count(namespace: str, flow_id: str | None) -> int:
            _, total = store.search_execution_documents(namespace=namespace, namespace_prefix=False, flow_id=flow_id,
                                                        states=states, start_after=start, start_before=end, size=1,
                                                        tenant=tenant)
            return int(total)

        counted: list[dict[str, Any]] = [{"namespace": ns, "flowId": fid, "count": count(ns, fid)}
                                         for ns, fid in pairs]
        for namespace in namespaces or ():
            n = count(namespace, None)
            if n:
                counted.append({"namespace": namespace, "count": n})
        results = [r for r in counted if self._keep(ctx, expression, r["count"])]
        ctx.log("DEBUG", f"{len(results)} flows matching the expression")
        return {"results": results, "total": sum(r["count"] for r in results)}

    @staticmethod
    def _keep(ctx: TaskContext, expression: str, count: int) -> bool:
        try:
            rendered = ctx.renderer.render_string(expression, {**ctx.variables, "count": count})  # type: ignore
        except ExpressionError as exc:
            where = getattr(ctx, "_where", None)
            raise (where("expression", exc) if where is not None else exc) from None
        return rendered == "true"


__all__ = ["Count", "zoned_instant"]
