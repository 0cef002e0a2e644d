"""Tasks that run other flows (spec §5.9, §5.10): Subflow and ForEachItem.

Both reach the engine only through `ctx.executions` (see `engine/subflows.py`): they create the child
executions (parent info in `trigger`, the parent's `system.correlationId`), start them, and with `wait`
stay RUNNING until the children have ended. Cancelling the task (the parent is killed) kills the
children it waits for. A task run re-run after crash recovery takes over the children its interrupted
attempt had created instead of creating them again.

ForEachItem is a flowable of three internal parts, as in Kestra: `<id>_split`, `<id>_items` (the children)
and `<id>_merge`; at most MAX_BATCHES children per run.
"""
from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from ..errors import ExpressionError, KestraNbError, NotFoundError, TaskFailure
from ..expressions.renderer import LOOP_PATH
from ..model.execution import CORRELATION_ID, Execution, Label, Level
from ..model.flow import TaskSpec
from ..model.state import StateType
from . import ion
from .base import Prop, Task, TaskContext

SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
FOREACH_ITEM = "io.kestra.plugin.core.flow.ForEachItem"
FOREACH_ITEM_TRIGGER = FOREACH_ITEM + "$ForEachItemExecutable"  # the children's trigger type, as in Kestra
FOREACH_ITEM_SPLIT = FOREACH_ITEM + "$ForEachItemSplit"
FOREACH_ITEM_MERGE = FOREACH_ITEM + "$ForEachItemMergeOutputs"
MAX_BATCHES = 10_000   # child executions one ForEachItem may start (a bigger split FAILS `<id>_split`)
_TRANSMITTED = (StateType.FAILED, StateType.KILLED, StateType.WARNING)

_COMMON = (
    Prop("namespace", "string", required=True), Prop("flowId", "string", required=True), Prop("revision", "int"),
    Prop("inputs", "map"), Prop("labels", "any"), Prop("inheritLabels", "bool", default=False),
    Prop("wait", "bool", default=True), Prop("transmitFailed", "bool", default=True),
    Prop("scheduleDate", "string"),
)


def _flag(ctx: TaskContext, task: Task, name: str) -> bool:
    value = task.prop(name)
    if isinstance(value, str):
        value = ctx.render_string(value, name).strip().lower() == "true"
    return bool(value)


class _Child:
    """What the two tasks share: resolving the child flow, building and running child executions."""

    def __init__(self, task: Task, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.handle = getattr(ctx, "executions", None)
        if self.handle is None:
            raise TaskFailure(f"{task.type} needs an engine to start executions")
        self.namespace = ctx.render_string(task.prop("namespace"), "namespace")
        self.flow_id = ctx.render_string(task.prop("flowId"), "flowId")
        raw = task.prop("revision")
        revision = ctx.render_string(raw, "revision") if isinstance(raw, str) else raw
        try:
            self.revision = None if revision in (None, "") else int(revision)
        except (TypeError, ValueError):
            raise TaskFailure(f"Invalid `revision` {revision!r}: expected an integer") from None
        try:
            self.flow, self.flow_revision = self.handle.load_flow(self.namespace, self.flow_id, self.revision)
        except NotFoundError:
            raise TaskFailure(f"Unable to find flow '{self.namespace}'.'{self.flow_id}' with revision "
                              f"'{self.revision or 0}'") from None
        except KestraNbError as exc:
            raise TaskFailure(f"Flow '{self.namespace}'.'{self.flow_id}' cannot be run: {exc.message}") from None
        self.wait = _flag(ctx, task, "wait")
        self.transmit_failed = _flag(ctx, task, "transmitFailed")
        self.labels = self._labels(task)
        raw_date = task.prop("scheduleDate")
        self.schedule_date: datetime | None = None
        if raw_date not in (None, ""):
            text = raw_date if isinstance(raw_date, str) else str(raw_date)
            text = ctx.render_string(text, "scheduleDate")
            try:
                self.schedule_date = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise TaskFailure(f"Invalid `scheduleDate` {text!r}: expected an ISO-8601 date-time") from None
            if self.schedule_date.tzinfo is None:
                raise TaskFailure(f"Invalid `scheduleDate` {text!r}: a zone is required (e.g. Z)")

    def _labels(self, task: Task) -> list[Label]:
        parent = self.ctx.execution
        out: list[Label] = []
        if _flag(self.ctx, task, "inheritLabels"):  # but not those the child flow sets itself (as Kestra)
            own = {lb.key for lb in self.flow.labels}
            out.extend(Label(lb.key, lb.value) for lb in parent.labels
                       if not lb.key.startswith("system.") and lb.key not in own)
        raw = task.prop("labels")
        if raw:
            rendered = self.ctx.render(raw, "labels")
            if isinstance(rendered, Mapping):
                pairs = list(rendered.items())
            elif isinstance(rendered, list):
                pairs = []
                for item in rendered:
                    if not isinstance(item, Mapping) or "key" not in item:
                        raise TaskFailure(f"Invalid `labels`: expected a map or a list of {{key, value}}, got {item!r}")
                    pairs.append((item.get("key"), item.get("value")))
            else:
                raise TaskFailure(f"Invalid `labels`: expected a map or a list of {{key, value}}, got {rendered!r}")
            for key, value in pairs:
                key = str(key)
                value = "true" if value is True else "false" if value is False else "" if value is None else str(value)
                if key.startswith("system."):
                    raise TaskFailure(
                        f"System labels can only be set by Kestra itself, offending label: {key}={value}")
                out = [lb for lb in out if lb.key != key]
                out.append(Label(key, value))
        correlation = next((lb.value for lb in parent.labels if lb.key == CORRELATION_ID), parent.id)
        out.append(Label(CORRELATION_ID, correlation))
        return out

    def existing(self) -> list[Execution]:
        """Children of this task run's interrupted attempt, when it runs again after crash recovery."""
        tr = self.ctx.task_run
        attempts = tr.attempts or []
        if len(attempts) < 2 or attempts[-2].state.current is not StateType.RESUBMITTED:
            return []
        return self.handle.children(self.ctx.execution, tr.id, namespace=self.namespace, flow_id=self.flow_id)

    async def start(self, task: Task, inputs: Mapping[str, Any], trigger_type: str, **trigger_extra: Any) -> Execution:
        ctx = self.ctx
        tr = ctx.task_run
        extra: dict[str, Any] = {"taskId": tr.task_id}
        if tr.value is not None:
            extra["taskRunValue"] = tr.value
        if tr.iteration is not None:
            extra["taskRunIteration"] = tr.iteration
        extra.update(trigger_extra)
        trigger = self.handle.trigger(task.spec.id, trigger_type, ctx.execution, tr.id, **extra)
        ex = self.handle.create(self.flow, self.flow_revision, inputs, self.labels, trigger=trigger)
        ex.schedule_date = self.schedule_date
        await self.handle.start(self.flow, ex)
        ctx.log(Level.INFO, f"Execution {ex.id} of flow '{self.namespace}'.'{self.flow_id}' "
                            f"(revision {self.flow_revision}) created")
        return ex

    async def wait_all(self, ids: list[str]) -> list[Execution]:
        """Wait for the children; if this task is cancelled (the parent is killed), kill them."""
        try:
            return list(await asyncio.gather(*(self.handle.wait(i) for i in ids)))
        except asyncio.CancelledError:
            for execution_id in ids:
                self.handle.kill(execution_id)
            raise


class Subflow(Task):
    """Run another flow as a child execution; with `wait`, expose its state and its outputs: the child
    flow's `outputs`, else this task's `outputs` map rendered in the child's context when it ends."""

    type = SUBFLOW
    # `outputs` (deprecated) and `restartBehavior` are accepted; a restarted Subflow task starts a new child
    props = (*_COMMON, Prop("outputs", "map", deprecated=True),
             Prop("restartBehavior", "enum", default="RETRY_FAILED", choices=("RETRY_FAILED", "NEW_EXECUTION")))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        child = _Child(self, ctx)
        found = child.existing()
        if found:
            ex = found[-1]
            ctx.log(Level.INFO, f"Waiting for execution {ex.id}, created before this execution was recovered")
        else:
            inputs = ctx.render(self.prop("inputs") or {}, "inputs")
            ex = await child.start(self, inputs, SUBFLOW)
        outputs: dict[str, Any] = {"executionId": ex.id}
        if not child.wait:
            return outputs
        # the child is known while the task waits (the timeline links it, a kill reaches it)
        child.handle.running_outputs(ctx.execution.id, ctx.task_run.id, outputs)
        (ended,) = await child.wait_all([ex.id])
        outputs["state"] = ended.state.current.value
        if child.flow.outputs:   # the child flow's own outputs win over this task's (Kestra)
            if ended.outputs is not None:
                outputs["outputs"] = ended.outputs
        elif self.prop("outputs"):   # (deprecated) rendered in the child's context, now that it has ended
            try:
                outputs["outputs"] = child.handle.render(child.flow, ended, self.prop("outputs"))
            except KestraNbError as exc:
                raise TaskFailure(f"Failed to extract outputs with the error: '{exc.message}'", outputs) from None
        state = ended.state.current
        if not child.transmit_failed or state not in _TRANSMITTED or (
                state is StateType.WARNING and ctx.spec.allow_warning):  # type: ignore[attr-defined]
            return outputs
        # the task ends as the child did (Kestra's guessState); allowFailure turns FAILED into WARNING
        raise TaskFailure(f"Subflow execution {ended.id} ended {state.value}", outputs, state.value)


class ForEachItem(Task):
    """Split `items` into batches and run the subflow once per batch (`{{ taskrun.items }}` = the batch URI).

    A flowable made of three parts that run in sequence, as Kestra's: `<id>_split` (the batch files),
    `<id>_items` (one child execution per batch) and `<id>_merge` (the children's outputs in one file)."""

    type = FOREACH_ITEM
    flowable = True
    props = (Prop("items", "string", required=True), Prop("batch", "map"), *_COMMON, Prop("errors", "tasks"))

    @staticmethod
    def parts(spec: TaskSpec) -> list[TaskSpec]:
        """Kestra's ForEachItem.getTasks(): its three parts, sharing its properties."""
        return [TaskSpec(id=spec.id + suffix, type=kind, path=f"{spec.path}.tasks[{i}]", props=spec.props,
                         line=spec.line, column=spec.column)
                for i, (suffix, kind) in enumerate((("_split", FOREACH_ITEM_SPLIT), ("_items", FOREACH_ITEM_TRIGGER),
                                                    ("_merge", FOREACH_ITEM_MERGE)))]


def _part_outputs(ctx: TaskContext, suffix: str) -> Any:
    """The outputs of another part of the same ForEachItem run (Kestra's extractOutput), None if it has none."""
    parent_id = ctx.spec.id[:ctx.spec.id.rindex("_")]  # type: ignore[attr-defined]
    variables = ctx.variables  # type: ignore[attr-defined]
    found = variables["outputs"].get(parent_id + suffix)
    for value in variables.get(LOOP_PATH) or ():   # (the parts are in the same loop scope)
        found = found.get(value) if isinstance(found, Mapping) else None
    return found


class ForEachItemSplit(Task):
    """`<id>_split`: the items file in batches; `splits` is a file listing their URIs, one a line."""

    type = FOREACH_ITEM_SPLIT
    internal = True
    props = ForEachItem.props

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        from .storage import split_file

        items = ctx.render_string(self.prop("items"), "items")
        if not items.startswith("kestra://"):
            raise TaskFailure(f"Unable to split the items from {items}, this is not an internal storage URI!")
        batch = self.prop("batch") or {}
        batch = ctx.render(batch, "batch") if batch else {}
        if not isinstance(batch, Mapping):
            raise TaskFailure(f"Invalid `batch`: expected a map with `rows`, `bytes` or `partitions`, got {batch!r}")
        rows, size, partitions = batch.get("rows"), batch.get("bytes"), batch.get("partitions")
        try:
            rows = None if rows is None else int(rows)
            partitions = None if partitions is None else int(partitions)
        except (TypeError, ValueError):
            raise TaskFailure(f"Invalid `batch` {dict(batch)!r}: `rows` and `partitions` are integers") from None
        if rows is None and size is None and partitions is None:
            rows = 1
        tr = ctx.task_run
        storage = ctx.storage  # type: ignore[attr-defined]
        suffix = PurePosixPath(items).suffix[:16] or ".txt"
        try:  # the same batch files again after a recovery: they are named by the task run
            uris = split_file(
                storage, items, rows=rows, bytes=size, partitions=partitions,
                separator=str(batch.get("separator", "\n")), max_batches=MAX_BATCHES,
                target=lambda i: storage.task_uri(tr.namespace, tr.flow_id, tr.execution_id, tr.task_id, tr.id,
                                                  f"batch-{i + 1}{suffix}"))
        except KestraNbError as exc:
            raise TaskFailure(f"Cannot split `items` {items}: {exc.message}") from None
        listing = "".join(uri + "\n" for uri in uris)
        return {"splits": ctx.put_file("splits.txt", listing.encode("utf-8"))}  # type: ignore[attr-defined]


class ForEachItemItems(Task):
    """`<id>_items` (Kestra's ForEachItemExecutable): one child execution per batch, then their states."""

    type = FOREACH_ITEM_TRIGGER
    internal = True
    props = ForEachItem.props

    async def run(self, ctx: TaskContext) -> dict[str, Any] | None:
        child = _Child(self, ctx)
        split = _part_outputs(ctx, "_split") or {}
        if "splits" not in split:
            raise TaskFailure(f"No batches: `{ctx.spec.id[:-len('_items')]}_split` gave no `splits`")  # type: ignore[attr-defined]
        uris = ctx.storage.read_bytes(split["splits"]).decode("utf-8").splitlines()  # type: ignore[attr-defined]
        if not uris:   # nothing to run: no outputs, as Kestra's
            return None
        # batches whose child the interrupted attempt had created already (crash recovery) are not run twice
        found = {(ex.trigger.variables or {}).get("taskRunIteration"): ex for ex in child.existing()
                 if ex.trigger is not None}  # by iteration: 1 for the first batch, as in Kestra
        if found:
            ctx.log(Level.INFO, f"Waiting for {len(found)} executions created before this execution was recovered")
        raw_inputs = self.prop("inputs") or {}
        children: list[Execution] = []
        for iteration, uri in enumerate(uris, start=1):
            ex = found.get(iteration)
            if ex is None:
                inputs = self._inputs(ctx, raw_inputs, uri, iteration)
                ex = await child.start(self, inputs, FOREACH_ITEM_TRIGGER, taskRunIteration=iteration)
            children.append(ex)
        outputs: dict[str, Any] = {"numberOfBatches": len(children)}
        if not child.wait:   # Kestra counts each child ended for this task at once (SUCCESS) when not waiting
            outputs["iterations"] = {"RUNNING": 0, "SUCCESS": len(children)}
            return outputs
        ended = await child.wait_all([ex.id for ex in children])
        counts: dict[str, int] = {"CREATED": 0, "RUNNING": 0}   # Kestra's counters, once all have ended
        for ex in ended:
            counts[ex.state.current.value] = counts.get(ex.state.current.value, 0) + 1
        outputs["iterations"] = counts
        if child.flow.outputs:   # each child's outputs in a file of its iteration, for `<id>_merge`
            for iteration, ex in enumerate(ended, start=1):
                line = ion.dumps(ex.outputs or {}) + "\n"
                uri = ctx.put_file(f"outputs-{iteration}.ion", line.encode("utf-8"))  # type: ignore[attr-defined]
            outputs["subflowOutputsBaseUri"] = uri.rsplit("/", 1)[0]
        if not child.transmit_failed:
            return outputs
        # Kestra's findTerminalState: any FAILED, else any KILLED, else any WARNING
        for state in (StateType.FAILED, StateType.KILLED, StateType.WARNING):
            if counts.get(state.value):
                first = next(ex for ex in ended if ex.state.current is state)
                raise TaskFailure(f"{counts[state.value]} of {len(ended)} subflow executions ended {state.value} "
                                  f"(first: {first.id})", outputs, state.value)
        return outputs

    @staticmethod
    def _inputs(ctx: TaskContext, raw: Any, uri: str, iteration: int) -> Any:
        """The batch's inputs: `taskrun.items` is the batch file, `taskrun.iteration` its number (from 1)."""
        variables = ctx.variables  # type: ignore[attr-defined]
        scoped = {**variables, "taskrun": {**variables["taskrun"], "items": uri, "iteration": iteration}}
        try:
            return ctx.renderer.render_value(raw, scoped)  # type: ignore[attr-defined]
        except ExpressionError as exc:
            raise TaskFailure(f"{exc.message} (task `{ctx.spec.id}`, property `inputs`)") from None


class ForEachItemMerge(Task):
    """`<id>_merge` (Kestra's ForEachItemMergeOutputs): the children's outputs, one line each in iteration
    order, in one file (`subflowOutputs`); no outputs when the subflow has none."""

    type = FOREACH_ITEM_MERGE
    internal = True
    props = ForEachItem.props

    async def run(self, ctx: TaskContext) -> dict[str, Any] | None:
        items = _part_outputs(ctx, "_items")
        if not items or not items.get("subflowOutputsBaseUri"):
            return None
        storage = ctx.storage  # type: ignore[attr-defined]
        base = items["subflowOutputsBaseUri"]
        work = ctx.working_dir()  # type: ignore[attr-defined]
        try:
            merged = work / "outputs.ion"
            with open(merged, "wb") as out:   # streamed: a large merge never sits in memory
                for iteration in range(1, int(items.get("numberOfBatches") or 0) + 1):
                    uri = f"{base}/outputs-{iteration}.ion"
                    if storage.exists(uri):
                        with storage.open(uri) as part:
                            shutil.copyfileobj(part, out)
            return {"subflowOutputs": ctx.put_file("outputs.ion", merged)}  # type: ignore[attr-defined]
        finally:
            shutil.rmtree(work, ignore_errors=True)
