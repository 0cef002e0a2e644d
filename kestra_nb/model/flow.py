"""A parsed flow: its inputs, outputs, task specs (with YAML positions) and top-level settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator

from .execution import Label, Level


@dataclass(slots=True)
class DependsOn:
    inputs: list[str] = field(default_factory=list)
    condition: str | None = None


@dataclass(slots=True)
class Input:
    """A flow input (or a Pause `onResume` input). Type-specific properties stay camelCase in `props`."""

    id: str
    type: str
    required: bool = True
    defaults: Any = None
    description: str | None = None
    display_name: str | None = None
    prefill: Any = None
    depends_on: DependsOn | None = None
    props: dict[str, Any] = field(default_factory=dict)   # validator, min, max, values, itemType, after…
    path: str = ""                                         # inputs[2]


@dataclass(slots=True)
class SLA:
    """A flow SLA: MAX_DURATION (`duration` after the start) or EXECUTION_ASSERTION (`assertion` rendered
    at every step); a violation ends the execution per `behavior` (FAIL, CANCEL, NONE) and adds `labels`."""

    id: str
    type: str
    behavior: str
    duration: timedelta | None = None
    assertion: str | None = None
    labels: list[Label] = field(default_factory=list)


@dataclass(slots=True)
class Output:
    """A flow output: `value` is rendered at the end of the execution, then typed like an input."""

    id: str
    type: str
    value: Any = None
    required: bool = True
    description: str | None = None
    display_name: str | None = None
    path: str = ""


@dataclass(slots=True)
class TaskSpec:
    """One task as written in the flow: common properties parsed, the task's own ones in `props`.

    `props` holds the task-specific properties exactly as written (camelCase keys, unrendered values);
    properties whose kind is a task list are parsed into `children` (key -> tasks), a task map into
    `child_maps` (key -> case -> tasks) and a Dag list into `dag` (task, dependsOn).
    """

    id: str
    type: str                                   # canonical type name
    path: str                                   # tasks[0].then[1]
    props: dict[str, Any] = field(default_factory=dict)
    written_type: str | None = None             # the alias as written, when it was not canonical
    description: str | None = None
    retry: dict[str, Any] | None = None
    timeout: timedelta | str | None = None      # a duration, or an expression rendering to one
    disabled: bool = False
    allow_failure: bool = False
    allow_warning: bool = False
    run_if: str | None = None
    log_level: Level | None = None
    log_to_file: bool = False
    children: dict[str, list[TaskSpec]] = field(default_factory=dict)
    child_maps: dict[str, dict[str, list[TaskSpec]]] = field(default_factory=dict)
    dag: list[tuple[TaskSpec, list[str]]] = field(default_factory=list)
    line: int | None = None
    column: int | None = None

    def all_children(self) -> Iterator[TaskSpec]:
        """Every task directly nested in this one, in the order they are written."""
        for tasks in self.children.values():
            yield from tasks
        for cases in self.child_maps.values():
            for tasks in cases.values():
                yield from tasks
        for task, _ in self.dag:
            yield task


@dataclass(slots=True)
class Flow:
    """A flow revision as parsed from its YAML `source`."""

    id: str
    namespace: str
    tasks: list[TaskSpec]
    source: str = ""
    revision: int | None = None
    description: str | None = None
    labels: list[Label] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    errors: list[TaskSpec] = field(default_factory=list)
    finally_: list[TaskSpec] = field(default_factory=list)
    after_execution: list[TaskSpec] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    plugin_defaults: list[dict[str, Any]] = field(default_factory=list)
    concurrency: dict[str, Any] | None = None
    retry: dict[str, Any] | None = None
    sla: list[SLA] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    disabled: bool = False
    deleted: bool = False
    tenant_id: str | None = "main"
    # path ("tasks[0].format") -> (line, column), 1-based, for errors raised after parsing
    positions: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    _index: dict[str, TaskSpec] | None = field(default=None, repr=False)
    _types: frozenset[str] | None = field(default=None, repr=False)

    def walk(self) -> Iterator[TaskSpec]:
        """Every task of the flow, nested ones included, depth first in written order."""
        for task in (*self.tasks, *self.errors, *self.finally_, *self.after_execution):
            yield from _walk(task)

    def task(self, task_id: str) -> TaskSpec:
        """The task with that id anywhere in the flow (KeyError if none)."""
        if self._index is None:
            self._index = {t.id: t for t in self.walk()}
        return self._index[task_id]

    def types(self) -> frozenset[str]:
        """Every task type the flow uses (cached)."""
        if self._types is None:
            self._types = frozenset(t.type for t in self.walk())
        return self._types

    def position(self, path: str) -> tuple[int, int] | None:
        return self.positions.get(path)

    @property
    def uid(self) -> str:
        return f"{self.namespace}.{self.id}"


def _walk(task: TaskSpec) -> Iterator[TaskSpec]:
    yield task
    for child in task.all_children():
        yield from _walk(child)
