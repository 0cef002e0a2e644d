"""Tasks that act on the execution itself: execution.Fail, execution.Exit, execution.Labels."""
from __future__ import annotations

from typing import Any

from ..errors import TaskFailure
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
        pairs: list[tuple[Any, Any]]
        if isinstance(rendered, dict):
            pairs = list(rendered.items())
        elif isinstance(rendered, list) and all(isinstance(i, dict) and "key" in i for i in rendered):
            pairs = [(i["key"], i.get("value")) for i in rendered]
        else:
            raise TaskFailure("`labels` must be a map or a list of {key, value}")
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
