"""trigger.Toggle: enable or disable a trigger of a flow (Kestra's Toggle, also by its legacy name).

The switch is kept in the trigger's stored state (`data.disabled`), beside what the scheduler remembers of
it, as Kestra keeps it on its trigger context: the flow's source is not changed, and a trigger disabled in
its source stays disabled whatever a Toggle says. Disabling forgets a Schedule's next date, so enabling it
again starts from the next date after that moment (as a redeployed one); enabling also lifts a `stopAfter`
stop, as disabling and enabling does in Kestra.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from ..errors import KestraNbError, TaskFailure
from ..parsing import parse_flow
from ..store._common import tenant_of
from ..store.base import TriggerState
from .base import Prop, Task, TaskContext, render_bool

DISABLED = "disabled"   # the key of the stored state's data that a Toggle sets


def toggled_off(state: TriggerState | None) -> bool:
    """Whether a Toggle disabled the trigger of that stored state."""
    return state is not None and bool((state.data or {}).get(DISABLED))


def set_enabled(store: Any, key: tuple[str, str, str], enabled: bool, tenant: str = "main") -> None:
    """Record a Toggle in the trigger's stored state (compare-and-set, retried)."""
    for _ in range(10):
        state = store.get_trigger_state(*key, tenant=tenant) or TriggerState(*key, tenant_id=tenant)
        data = {k: v for k, v in (state.data or {}).items() if k not in ("signature", "stopped", DISABLED)}
        if not enabled:
            data[DISABLED] = True
        if store.put_trigger_state(replace(state, next_date=None, data=data)) is not None:
            return
    raise TaskFailure(f"Unable to toggle trigger {key[2]}: its state changed concurrently ten times")


class Toggle(Task):
    """Enable or disable the trigger `trigger` of the flow `namespace`.`flowId` (default: this flow)."""

    type = "io.kestra.plugin.core.trigger.Toggle"
    aliases = ("io.kestra.core.tasks.trigger.Toggle",)
    props = (Prop("namespace", "string"), Prop("flowId", "string"), Prop("trigger", "string", required=True),
             Prop("enabled", "bool", default=False))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        namespace = ctx.render_string(self.prop("namespace"), "namespace") if self.prop("namespace") is not None \
            else ctx.flow.namespace
        flow_id = ctx.render_string(self.prop("flowId"), "flowId") if self.prop("flowId") is not None \
            else ctx.flow.id
        trigger = ctx.render_string(self.prop("trigger"), "trigger")
        enabled = render_bool(ctx, self.prop("enabled"), "enabled", False)
        store = ctx.renderer.store  # type: ignore[attr-defined]
        tenant = tenant_of(ctx.execution.tenant_id)
        record = await asyncio.to_thread(store.get_flow, namespace, flow_id, tenant=tenant)
        if record is None:
            raise TaskFailure(f"Unable to find flow {namespace}.{flow_id}. Make sure the flow exists and the "
                              "current execution is authorized to access it.")
        try:
            triggers = parse_flow(record.source).triggers or []
        except KestraNbError:
            triggers = []
        if not any(str(spec.get("id")) == trigger for spec in triggers):
            raise TaskFailure(f"Unable to find trigger {trigger} for the flow {namespace}.{flow_id}")
        await asyncio.to_thread(set_enabled, store, (namespace, flow_id, trigger), enabled, tenant)
        ctx.log("INFO", f"Trigger {trigger} of the flow {namespace}.{flow_id} is {'enabled' if enabled else 'disabled'}")
        return {}


__all__ = ["DISABLED", "Toggle", "set_enabled", "toggled_off"]
