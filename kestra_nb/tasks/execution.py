"""Tasks that act on the execution itself: execution.Fail."""
from __future__ import annotations

from ..errors import TaskFailure
from ..expressions import is_truthy
from .base import Prop, Task, TaskContext


class Fail(Task):
    """Fail the task with `errorMessage`, or only when `condition` renders truthy."""

    type = "io.kestra.plugin.core.execution.Fail"
    props = (Prop("condition", "string"), Prop("errorMessage", "string", default="Task failure"))

    async def run(self, ctx: TaskContext) -> None:
        condition = self.prop("condition")
        if condition is not None and not is_truthy(ctx.render_string(condition, "condition")):
            return None
        raise TaskFailure(ctx.render_string(self.prop("errorMessage"), "errorMessage"))
