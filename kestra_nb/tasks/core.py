"""Core runnable tasks: debug.Return, log.Log, output.OutputValues."""
from __future__ import annotations

from typing import Any

from ..model.execution import Level
from .base import Prop, Task, TaskContext

LEVELS = tuple(level.value for level in Level)
# Return logs its value at DEBUG, as Kestra's does; the value itself is the task's output, stored once, so a
# long one is logged cut to this many characters (a 10 MB output is not stored a second time as a log line).
RETURN_LOG_CHARS = 2000


class Return(Task):
    """Render `format` and return it as the output `value`."""

    type = "io.kestra.plugin.core.debug.Return"
    instant = True
    props = (Prop("format", "string"),)

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        value = ctx.render_string(self.prop("format"), "format") if self.prop("format") is not None else None
        if value is None:
            ctx.log(Level.DEBUG, "null")
        elif len(value) > RETURN_LOG_CHARS:
            ctx.log(Level.DEBUG, f"{value[:RETURN_LOG_CHARS]}… ({len(value):,} characters in all: the output "
                                 f"`value` holds them)")
        else:
            ctx.log(Level.DEBUG, value)
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
