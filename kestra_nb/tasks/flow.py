"""Flow-control tasks (spec §5.4–5.15): their property schemas, and Sleep, the one that runs on a worker.

The flowable ones (Sequential, Parallel, If, Switch, ForEach and its aliases, Dag, LoopUntil,
AllowFailure, Pause) are driven by the executor (`engine/executor.py`), not run.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

from ..errors import TaskFailure
from ..model.execution import Level
from ..model.jsonfmt import format_duration, parse_duration
from .base import Prop, Task, TaskContext

_BLOCK = (Prop("errors", "tasks"), Prop("finally", "tasks"))


class Sequential(Task):
    """Run `tasks` one after the other."""

    type = "io.kestra.plugin.core.flow.Sequential"
    flowable = True
    props = (Prop("tasks", "tasks", required=True), *_BLOCK)


class Parallel(Task):
    """Run `tasks` together, at most `concurrent` at once (0: no limit)."""

    type = "io.kestra.plugin.core.flow.Parallel"
    flowable = True
    props = (Prop("tasks", "tasks", required=True), Prop("concurrent", "int", default=0), *_BLOCK)


class If(Task):
    """Run `then` when `condition` renders truthy, else `else`."""

    type = "io.kestra.plugin.core.flow.If"
    flowable = True
    props = (Prop("condition", "string", required=True), Prop("then", "tasks", required=True),
             Prop("else", "tasks"), *_BLOCK)


class Switch(Task):
    """Run the `cases` entry matching the rendered `value`, else `defaults`."""

    type = "io.kestra.plugin.core.flow.Switch"
    flowable = True
    props = (Prop("value", "string", required=True), Prop("cases", "task_map"), Prop("defaults", "tasks"),
             *_BLOCK)


class ForEach(Task):
    """Run `tasks` once per distinct value of `values`, `concurrencyLimit` values at once (0: all)."""

    type = "io.kestra.plugin.core.flow.ForEach"
    flowable = True
    props = (Prop("values", "any", required=True), Prop("concurrencyLimit", "int", default=1),
             Prop("tasks", "tasks", required=True), *_BLOCK)


class EachSequential(Task):
    """Deprecated ForEach with `value`, one value at a time."""

    type = "io.kestra.plugin.core.flow.EachSequential"
    flowable = True
    props = (Prop("value", "any", required=True), Prop("tasks", "tasks", required=True), *_BLOCK)


class EachParallel(Task):
    """Deprecated ForEach with `value`, `concurrent` values at once (0: all)."""

    type = "io.kestra.plugin.core.flow.EachParallel"
    flowable = True
    props = (Prop("value", "any", required=True), Prop("concurrent", "int", default=0),
             Prop("tasks", "tasks", required=True), *_BLOCK)


class Dag(Task):
    """Run `tasks` as soon as the tasks they depend on have succeeded."""

    type = "io.kestra.plugin.core.flow.Dag"
    flowable = True
    props = (Prop("tasks", "dag", required=True), Prop("concurrent", "int", default=0), *_BLOCK)


class LoopUntil(Task):
    """Run `tasks` again until `condition` renders truthy after an iteration."""

    type = "io.kestra.plugin.core.flow.LoopUntil"
    flowable = True
    props = (Prop("tasks", "tasks", required=True), Prop("condition", "string", required=True),
             Prop("failOnMaxReached", "bool", default=False), Prop("checkFrequency", "map"), *_BLOCK)


class AllowFailure(Task):
    """Run `tasks`; a failure among them ends this task WARNING instead of FAILED."""

    type = "io.kestra.plugin.core.flow.AllowFailure"
    flowable = True
    props = (Prop("tasks", "tasks", required=True), *_BLOCK)


class Pause(Task):
    """Pause the execution until resumed (with `onResume` inputs), or for `pauseDuration`."""

    type = "io.kestra.plugin.core.flow.Pause"
    flowable = True
    props = (Prop("pauseDuration", "duration"), Prop("delay", "duration", deprecated=True),
             Prop("behavior", "enum", default="RESUME", choices=("RESUME", "WARN", "FAIL", "CANCEL")),
             Prop("onResume", "inputs"), Prop("tasks", "tasks"), *_BLOCK)


class WorkingDirectory(Task):
    """Run `tasks` one after the other in one shared working directory (`inputFiles`, `namespaceFiles` put
    there first; `outputFiles` stored at the end; `cache` kept between executions). Driven by the executor as
    a Sequential; the runner prepares and closes the directory (`engine/workingdir.py`)."""

    type = "io.kestra.plugin.core.flow.WorkingDirectory"
    aliases = ("io.kestra.core.tasks.flows.Worker",)
    flowable = True
    props = (Prop("tasks", "tasks", required=True), Prop("inputFiles", "any"), Prop("outputFiles", "list"),
             Prop("namespaceFiles", "map"), Prop("cache", "map"), *_BLOCK)


class Sleep(Task):
    """Wait for `duration`."""

    type = "io.kestra.plugin.core.flow.Sleep"
    props = (Prop("duration", "duration", required=True),)

    async def run(self, ctx: TaskContext) -> None:
        raw = self.prop("duration")
        duration = raw if isinstance(raw, timedelta) else _duration(ctx.render_string(raw, "duration"))
        ctx.log(Level.INFO, f"Waiting for {format_duration(duration)}")   # as Kestra's Sleep says
        await asyncio.sleep(max(duration.total_seconds(), 0))
        return None


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError:
        raise TaskFailure(f"Invalid duration `{text}`: expected an ISO-8601 duration such as PT5S") from None
