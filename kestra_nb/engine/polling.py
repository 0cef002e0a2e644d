"""Kestra's polling HTTP trigger (`io.kestra.plugin.core.http.Trigger`): every `interval`, send the request
and start an execution when `responseCondition` holds.

The request is the `http.Request` task's own (its properties, options, budgets and errors), sent with its
async client off nothing but the engine's loop (never blocking it); at most one request per trigger is in
flight. `responseCondition` (default `{{ response.statusCode < 400 }}`) sees `response.statusCode`,
`response.body` and `response.headers`; a failed status is not a failure here (the condition decides), a
transport error is reported as a trigger problem and tried again at the next interval. The execution's
`trigger` variables are the request's outputs (`uri`, `code`, `headers`, `body`), as Kestra's
TriggerOutput<Request.Output>. The next poll date is kept in the trigger's stored state, so a restart (or
another scheduler taking the lead) goes on from it rather than polling at once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..expressions.renderer import is_truthy
from ..model.execution import Level
from ..model.flow import TaskSpec
from ..model.jsonfmt import parse_duration
from ..parsing.triggers import HTTP_TRIGGER
from ..tasks.http import Request

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = timedelta(seconds=60)
DEFAULT_CONDITION = "{{ response.statusCode < 400 }}"
REQUEST_PROPS = ("uri", "method", "headers", "body", "formData", "contentType", "options")


def interval(spec: Mapping[str, Any]) -> timedelta:
    """The trigger's `interval` (checked at validation: at least MIN_INTERVAL)."""
    raw = spec.get("interval")
    return DEFAULT_INTERVAL if raw is None else parse_duration(str(raw))


class _PollContext:
    """What the http.Request task needs of a task context, for a trigger: rendering with the flow's
    variables (and `trigger` ones), logs to the server's log, the store's files for `formData` uploads."""

    def __init__(self, engine: Any, spec: TaskSpec, render: Callable[[Any], Any]) -> None:
        self.spec = spec
        self.storage = engine.store.storage
        self.task_run = None
        self._render = render

    def render(self, value: Any, prop: str | None = None) -> Any:
        return self._render(value)

    def render_string(self, value: Any, prop: str | None = None) -> str:
        rendered = self._render(value)
        return rendered if isinstance(rendered, str) else str(rendered)

    def log(self, level: Level | str, message: str) -> None:
        log.debug("kestra_nb: http trigger %s: %s", self.spec.id, message)


async def poll(engine: Any, trigger: Any, context: dict[str, Any]) -> dict[str, Any] | None:
    """Send the trigger's request; its outputs when `responseCondition` holds, else None. Errors (a bad
    property, the transport) are raised (TaskFailure…) for the scheduler to report."""
    spec = trigger.spec
    props = {key: spec[key] for key in REQUEST_PROPS if spec.get(key) is not None}
    options = dict(props.get("options") or {})
    options["allowFailed"] = True   # the condition decides what a failed status means
    props["options"] = options
    task_spec = TaskSpec(id=str(spec.get("id")), type=HTTP_TRIGGER, path=f"triggers[{trigger.id}]", props=props)

    def render(value: Any) -> Any:
        return engine.renderer.render_object(value, context)

    output = await Request(task_spec).run(_PollContext(engine, task_spec, render))  # type: ignore[arg-type]
    response = {"statusCode": output.get("code"), "body": output.get("body"), "headers": output.get("headers")}
    condition = spec.get("responseCondition") or DEFAULT_CONDITION
    rendered = engine.renderer.render_string(str(condition), {**context, "response": response})
    return output if is_truthy(rendered) else None


def due(state: Any, now: datetime) -> bool:
    """Whether a trigger whose stored state is `state` should poll at `now`."""
    return state is None or state.next_date is None or state.next_date <= now


__all__ = ["DEFAULT_CONDITION", "DEFAULT_INTERVAL", "due", "interval", "poll"]
