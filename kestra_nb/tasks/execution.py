"""Tasks that act on executions: execution.Fail, execution.Exit, execution.Labels, execution.Resume."""
from __future__ import annotations

import json
from typing import Any

from ..errors import KestraNbError, TaskFailure
from ..expressions import is_truthy
from ..model.execution import Label
from .base import ExitRequested, Prop, Task, TaskContext

EXIT_STATES = ("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED")


class Fail(Task):
    """Fail the task with `errorMessage`, or only when `condition` renders truthy."""

    type = "io.kestra.plugin.core.execution.Fail"
    instant = True
    props = (Prop("condition", "string"), Prop("errorMessage", "string", default="Task failure"))

    async def run(self, ctx: TaskContext) -> None:
        condition = self.prop("condition")
        if condition is not None and not is_truthy(ctx.render_string(condition, "condition")):
            return None
        raise TaskFailure(ctx.render_string(self.prop("errorMessage"), "errorMessage"))


class Exit(Task):
    """End the execution now in `state` (KILLED also stops the task runs still running)."""

    type = "io.kestra.plugin.core.execution.Exit"
    instant = True
    props = (Prop("state", "enum", default="SUCCESS", choices=EXIT_STATES),)

    async def run(self, ctx: TaskContext) -> None:
        state = ctx.render_string(self.prop("state"), "state")
        if state not in EXIT_STATES:
            raise TaskFailure(f"Invalid state `{state}`: expected one of {', '.join(EXIT_STATES)}")
        raise ExitRequested("CANCELLED" if state == "CANCELED" else state)


class Labels(Task):
    """Add or overwrite execution labels (a map or a list of {key, value}); system labels are refused."""

    type = "io.kestra.plugin.core.execution.Labels"
    instant = True
    props = (Prop("labels", "any", required=True),)

    async def run(self, ctx: TaskContext) -> None:
        rendered = ctx.render(self.prop("labels"), "labels")
        if isinstance(rendered, str):  # `labels: "{{ ... | toJson }}"`: a JSON object (RuntimeLabelsTest.update)
            rendered = _json_labels(rendered)
        pairs: list[tuple[Any, Any]]
        if isinstance(rendered, dict):
            pairs = list(rendered.items())
        elif isinstance(rendered, list) and all(isinstance(i, dict) and "key" in i for i in rendered):
            pairs = [(i["key"], i.get("value")) for i in rendered]
        else:
            raise TaskFailure("`labels` must be a map, a list of {key, value} or a JSON object")
        labels = ctx.execution.labels
        for key, value in pairs:
            key = str(key)
            value = "true" if value is True else "false" if value is False else "" if value is None else str(value)
            if key.startswith("system."):
                raise TaskFailure(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
            if not value:
                raise TaskFailure(f"Label `{key}` needs a non-empty value")
            for i, label in enumerate(labels):  # executions updated in place, as Kestra's executor does
                if label.key == key:
                    labels[i] = Label(key, value)
                    break
            else:
                labels.append(Label(key, value))
        return None


class Resume(Task):
    """Resume a PAUSED execution (this one by default, or `executionId`), with `inputs` for its Pause's onResume.

    As Kestra's (ResumeTest): the execution is found by id; `namespace` and `flowId`, both or neither, go
    with an `executionId` (here they must also be the execution's flow). The task ends as soon as the
    execution is resumed, without waiting for it.
    """

    type = "io.kestra.plugin.core.execution.Resume"
    props = (Prop("executionId", "string"), Prop("namespace", "string"), Prop("flowId", "string"),
             Prop("inputs", "map"))

    async def run(self, ctx: TaskContext) -> None:
        current = ctx.execution
        execution_id, namespace, flow_id = (
            None if self.prop(p) is None else ctx.render_string(self.prop(p), p)
            for p in ("executionId", "namespace", "flowId"))
        if execution_id is None:
            if namespace is not None or flow_id is not None:
                raise TaskFailure("`namespace` and `flowId` should only be set when `executionId` is set.")
            execution_id = current.id
        elif (namespace is None) != (flow_id is None):
            raise TaskFailure("Both `namespace` and `flowId` must be set when `executionId` is set.")
        # the engine is reached through the door Subflow uses (ctx.executions); its resume is the API's
        engine = getattr(getattr(ctx, "executions", None), "_engine", None)
        if engine is None:
            raise TaskFailure(f"{self.type} needs an engine to resume executions")
        target = engine.get_execution(execution_id)
        if target is None or (target.tenant_id or "main") != (current.tenant_id or "main") or (
                namespace is not None and (target.namespace, target.flow_id) != (namespace, flow_id)):
            where = f" of flow '{namespace}.{flow_id}'" if namespace is not None else ""
            raise TaskFailure(f"No execution found for execution id {execution_id}{where}")
        raw = self.prop("inputs")
        inputs = ctx.render(raw, "inputs") if raw is not None else None
        if inputs is not None and not isinstance(inputs, dict):
            raise TaskFailure("`inputs` must be a map of onResume input ids to values")
        try:
            await engine.resume_async(execution_id, inputs or None)
        except KestraNbError as exc:  # not paused, invalid onResume inputs…: Kestra's message, on this task
            raise TaskFailure(exc.message) from None
        ctx.log("INFO", f"Execution {execution_id} resumed")
        return None


def _json_labels(text: str) -> dict[str, Any]:
    """Labels rendered as text: a JSON object of label key to value (scalar values are taken as text)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        reason = getattr(exc, "msg", None) or str(exc)
        raise TaskFailure(f"`labels` rendered to text that is not a JSON object ({reason}): {_clip(text)}") from None
    if not isinstance(document, dict):
        raise TaskFailure(f"`labels` rendered to text that is not a JSON object: {_clip(text)}")
    for key, value in document.items():
        if isinstance(value, (dict, list)):
            kind = "object" if isinstance(value, dict) else "array"
            raise TaskFailure(f"Label `{key}` needs a text value, not a JSON {kind}")
    return document


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
