"""Core runnable tasks: debug.Return, log.Log, output.OutputValues."""
from __future__ import annotations

from typing import Any

from ..model.execution import Level
from .base import Prop, Task, TaskContext

LEVELS = tuple(level.value for level in Level)


class Return(Task):
    """Render `format` and return it as the output `value`."""

    type = "io.kestra.plugin.core.debug.Return"
    instant = True
    props = (Prop("format", "string"),)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        value = ctx.render_string(self.prop("format"), "format") if self.prop("format") is not None else None
        ctx.log(Level.DEBUG, value if value is not None else "null")
        return {"value": value}


class Log(Task):
    """Render `message` (a text or a list of texts, each its own log line) and log it at `level`."""

    type = "io.kestra.plugin.core.log.Log"
    instant = True
    props = (Prop("message", "string_or_list", required=True), Prop("level", "enum", default="INFO", choices=LEVELS))

    async def run(self, ctx: TaskContext) -> None:
        level = Level(ctx.render_string(self.prop("level"), "level"))
        message = self.prop("message")
        for i, line in enumerate(message if isinstance(message, list) else [message]):
            prop = f"message[{i}]" if isinstance(message, list) else "message"
            ctx.log(level, ctx.render_string(line, prop))
        return None


class OutputValues(Task):
    """Render every value of `values` and expose them as the output `values`."""

    type = "io.kestra.plugin.core.output.OutputValues"
    instant = True
    props = (Prop("values", "map"),)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        return {"values": ctx.render(self.prop("values") or {}, "values")}
