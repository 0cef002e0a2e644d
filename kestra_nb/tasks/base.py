"""What a task type is: its property schema (read by the parser) and its run (called by the engine).

A task type subclasses `Task`, names its Kestra `type` (and legacy `aliases`), declares its own
properties as `Prop`s and, when runnable, implements `async run(ctx) -> outputs`. The engine passes a
`TaskContext` that renders properties and logs. Flowable types (`flowable = True`) are driven by the
executor instead of run; their child task lists are `Prop`s of kind `tasks`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import TaskFailure

if TYPE_CHECKING:  # pragma: no cover
    from ..model.execution import Execution, Level, TaskRun
    from ..model.flow import Flow, TaskSpec

# What a property may hold; the parser checks written values against the kind.
#   string          text (numbers and booleans written bare are taken as their text, as Jackson does)
#   int, number     a number, or an expression string rendering to one
#   bool            true/false, or an expression string
#   duration        an ISO-8601 duration (PT5M), or an expression string
#   enum            one of `choices`, or an expression string
#   map, list, any  structured values (rendered recursively at run time)
#   string_or_list  text or a list of texts (Log.message)
#   tasks           a list of tasks (parsed into TaskSpec.children)
#   task_map        a map of name -> list of tasks (Switch.cases; TaskSpec.child_maps)
#   dag             a list of {task, dependsOn} (Dag.tasks; TaskSpec.dag)
#   inputs          a list of inputs (Pause.onResume)
KINDS = frozenset({
    "string", "int", "number", "bool", "duration", "enum", "map", "list", "any", "string_or_list",
    "tasks", "task_map", "dag", "inputs",
})


@dataclass(frozen=True, slots=True)
class Prop:
    """One property of a task type."""

    name: str
    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None
    deprecated: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown property kind {self.kind!r} for {self.name!r}")


class TaskContext(Protocol):
    """What a running task sees; implemented by the engine."""

    flow: Flow
    execution: Execution
    task_run: TaskRun
    spec: TaskSpec

    def render(self, value: Any, prop: str | None = None) -> Any:
        """Render a property value: strings as templates, maps and lists recursively."""

    def render_string(self, value: Any, prop: str | None = None) -> str:
        """Render to text (Kestra's string mode)."""

    def log(self, level: Level | str, message: str) -> None:
        """Log a line for this task run at that level."""


class ExitRequested(Exception):
    """Raised by execution.Exit: end the task run, its parents and the execution in `state`."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class Task:
    """Base of every task type."""

    type: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    props: ClassVar[tuple[Prop, ...]] = ()
    flowable: ClassVar[bool] = False
    # True for the parts a flowable is made of (ForEachItem's `_split`, `_items`, `_merge`): the engine runs
    # them, a flow cannot name them (Kestra's @Plugin(internal = true))
    internal: ClassVar[bool] = False
    # True for tasks whose run() never awaits anything: the engine may run them inline, within the
    # executor's step, instead of on a worker (one commit for a chain of them instead of one each).
    instant: ClassVar[bool] = False

    __slots__ = ("spec",)

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def prop(self, name: str, default: Any = None) -> Any:
        """The property as written (unrendered), or its declared default."""
        value = self.spec.props.get(name)
        if value is None:
            for p in self.props:
                if p.name == name:
                    return p.default if default is None else default
            return default
        return value

    async def run(self, ctx: TaskContext) -> dict[str, Any] | None:
        """Do the task's work and return its outputs; raise TaskFailure (or any error) to fail it."""
        raise TypeError(f"{self.type} is flowable and is driven by the executor, not run")

    @classmethod
    def prop_map(cls) -> dict[str, Prop]:
        return {p.name: p for p in cls.props}


def render_bool(ctx: TaskContext, raw: Any, prop: str, default: bool) -> bool:
    """A bool property as written, or rendered from an expression to `true`/`false` (a clear error otherwise)."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = ctx.render_string(raw, prop).strip().lower()
    if text not in ("true", "false"):
        raise TaskFailure(f"Invalid `{prop}` `{text}`: expected true or false")
    return text == "true"
