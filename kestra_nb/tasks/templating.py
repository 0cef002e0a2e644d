"""templating.TemplatedTask: a task whose YAML `spec` is rendered first, then validated and run (Kestra's
TemplatedTask). The rendered task takes this task's id, runs in its context and its outputs are this
task's; it must be a runnable task, and not another TemplatedTask (Kestra's messages). The rendered text
is parsed within the YAML budget of flows and validated as a flow's task is, its violations reported
under `spec`."""
from __future__ import annotations

from typing import Any

import yaml

from ..errors import TaskFailure
from ..parsing import check_flow
from ..parsing.yamlpos import YamlBudgetError, load_within_budget
from .base import Prop, Task, TaskContext
from .registry import registry

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TemplatedTask(Task):
    """Render `spec` (a task's YAML without `id`), then run that task → its outputs."""

    type = "io.kestra.plugin.core.templating.TemplatedTask"
    aliases = ("io.kestra.core.tasks.templating.TemplatedTask",)
    props = (Prop("spec", "string", required=True),)

    async def run(self, ctx: TaskContext) -> dict[str, Any] | None:
        text = ctx.render_string(self.prop("spec"), "spec")
        try:
            written = load_within_budget(text, _Loader)
        except (YamlBudgetError, yaml.YAMLError) as exc:
            raise TaskFailure(f"Invalid `spec`: the rendered text is not a task's YAML: {exc}") from None
        if not isinstance(written, dict):
            raise TaskFailure("Invalid `spec`: the rendered text must be a task (a map with `type`)")
        if registry.canonical(str(written.get("type"))) == self.type:
            raise TaskFailure(f"The templated task cannot be of type '{self.type}'")
        flow = {"id": ctx.flow.id, "namespace": ctx.flow.namespace,
                "tasks": [{**written, "id": self.spec.id}]}
        checked = check_flow(yaml.safe_dump(flow, sort_keys=False, allow_unicode=True))
        if checked.flow is None:
            problems = "; ".join(f"{v.path.replace('tasks[0]', 'spec', 1)}: {v.message}" for v in checked.violations)
            raise TaskFailure(f"Invalid `spec`: {problems}")
        spec = checked.flow.tasks[0]
        cls = registry.resolve(spec.type)
        if cls is None or cls.flowable:
            raise TaskFailure("The templated task must be a runnable task")
        return await cls(spec).run(ctx)


__all__ = ["TemplatedTask"]
