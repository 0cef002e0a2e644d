"""The variables a template sees (spec §6.2) and the context handed to a running task.

`execution_variables` builds what every template of an execution sees (flow, execution, inputs, outputs,
vars, labels, tasks, trigger, envs, globals, kestra); `TaskRunContext` adds the task run's own (task,
taskrun, parent/parents) and the runtime hooks Kestra's functions need: the store for `kv()` and
`errorLogs()`, the task run's pending logs, and the secrets `secret()` revealed, masked in its logs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

from ..errors import ExpressionError
from ..expressions import Renderer
from ..expressions.renderer import LOOP_PATH, RUNTIME, RuntimeHooks
from ..model.execution import Execution, Level, LogEntry, TaskRun
from ..model.flow import Flow, TaskSpec
from ..model.jsonfmt import format_instant
from ..model.state import utcnow
from ..store.storage import InternalStorage
from .executor import LOOPS, WORKING_DIRECTORY
from .inputs import decrypted_inputs
from .workingdir import shared_dir

_ENVS: dict[str, str] | None = None


def envs() -> dict[str, str]:
    """`ENV_FOO_BAR=x` in the process environment -> `envs.foo_bar` (read once per process)."""
    global _ENVS
    if _ENVS is None:
        _ENVS = {k[4:].lower(): v for k, v in os.environ.items() if k.startswith("ENV_")}
    return _ENVS


def labels_variable(execution: Execution) -> dict[str, Any]:
    """Labels as a map, first value winning; `system.x` keys nested under `system`."""
    out: dict[str, Any] = {}
    for label in execution.labels:
        if label.key.startswith("system."):
            out.setdefault("system", {}).setdefault(label.key[7:], label.value)
        else:
            out.setdefault(label.key, label.value)
    return out


def loop_path(flow: Flow, tr: TaskRun, by_id: Mapping[str, TaskRun]) -> list[str]:
    """The loop values scoping a task run's outputs, outermost first.

    Only a loop (ForEach…) gives its children a value, and each adds a level: `outputs.inner[outer][inner]`,
    whatever flowables lie between (Kestra's findParentsValues).
    """
    values: list[str] = []
    node = tr
    while node.parent_task_run_id is not None:
        parent = by_id.get(node.parent_task_run_id)
        if parent is None:
            break
        if node.value is not None and flow.task(parent.task_id).type in LOOPS:
            values.append(node.value)
        node = parent
    values.reverse()
    return values


def add_outputs(out: dict[str, Any], flow: Flow, tr: TaskRun, by_id: Mapping[str, TaskRun]) -> None:
    """Merge one task run's outputs into the `outputs` variable."""
    if tr.outputs is None:
        return
    path = loop_path(flow, tr, by_id) if tr.parent_task_run_id is not None else []
    if not path:
        out[tr.task_id] = tr.outputs
        return
    target = out.get(tr.task_id)
    if not isinstance(target, dict) or target is tr.outputs:
        target = out[tr.task_id] = {}
    for v in path[:-1]:
        target = target.setdefault(v, {})
    target[path[-1]] = tr.outputs


def outputs_variable(flow: Flow, execution: Execution) -> dict[str, Any]:
    """Task outputs merged as Kestra does: `outputs.<task>`, nested per loop value under loops."""
    out: dict[str, Any] = {}
    by_id = {tr.id: tr for tr in execution.task_run_list}
    for tr in execution.task_run_list:
        add_outputs(out, flow, tr, by_id)
    return out


def parents_variable(tr: TaskRun, runs: Mapping[str, TaskRun]) -> list[dict[str, Any]]:
    """Enclosing task runs with a loop value or outputs, nearest first (Kestra's Execution.parents).

    Each entry holds `taskrun: {value}` only when the run has a value and `outputs` only when it has
    non-empty outputs, as in Kestra: `parent.outputs` of a run without outputs is undefined.
    """
    out: list[dict[str, Any]] = []
    parent_id = tr.parent_task_run_id
    while parent_id is not None:
        parent = runs.get(parent_id)
        if parent is None:
            break
        entry: dict[str, Any] = {}
        if parent.value is not None:
            entry["taskrun"] = {"value": parent.value}
        if parent.outputs:
            entry["outputs"] = parent.outputs
        if entry:
            out.append(entry)
        parent_id = parent.parent_task_run_id
    return out


class LazyMap(dict):  # type: ignore[type-arg]
    """A map computed on first use: variables most templates never read cost nothing."""

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._compute: Callable[[], dict[str, Any]] | None = compute

    def _fill(self) -> None:
        if self._compute is not None:
            compute, self._compute = self._compute, None
            self.update(compute())

    def __getitem__(self, key: Any) -> Any:
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __iter__(self) -> Any:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def get(self, key: Any, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)

    def keys(self) -> Any:
        self._fill()
        return super().keys()

    def items(self) -> Any:
        self._fill()
        return super().items()

    def values(self) -> Any:
        self._fill()
        return super().values()

    def __repr__(self) -> str:
        self._fill()
        return super().__repr__()


def tasks_variable(execution: Execution) -> dict[str, Any]:
    """`tasks.<id>.state`, or `tasks.<id>.<value>.state` for looped task runs."""
    out: dict[str, Any] = {}
    for tr in execution.task_run_list:
        if tr.value is None:
            out[tr.task_id] = {"state": tr.state.current.value}
        else:
            out.setdefault(tr.task_id, {})[tr.value] = {"state": tr.state.current.value}
    return out


def _inputs(flow: Flow, execution: Execution) -> dict[str, Any]:
    values = execution.inputs or {}
    if values and any(i.type == "SECRET" for i in flow.inputs):
        values = decrypted_inputs(flow.inputs, values)  # tasks see secrets in clear; the execution never does
    missing = [i for i in flow.inputs if i.defaults is not None and "." not in i.id and i.id not in values]
    if missing:  # Kestra adds flow input defaults absent from the execution (executions of older revisions)
        values = {**values, **{i.id: i.defaults for i in missing}}
    return values


def secret_input_values(flow: Flow, inputs: Mapping[str, Any]) -> list[str]:
    """The clear values of SECRET inputs (Kestra masks them in task logs)."""
    out: list[str] = []
    for inp in flow.inputs:
        if str(inp.type).upper() != "SECRET":
            continue
        node: Any = inputs
        for part in inp.id.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            out.append(node)
    return out


def kestra_variable() -> dict[str, Any]:
    """`kestra`: Kestra's {environment, url}, each only when configured (KESTRA_NB_ENVIRONMENT, KESTRA_NB_URL)."""
    out: dict[str, Any] = {}
    for key, env in (("environment", "KESTRA_NB_ENVIRONMENT"), ("url", "KESTRA_NB_URL")):
        value = os.environ.get(env)
        if value:
            out[key] = value
    return out


def execution_variables(flow: Flow, execution: Execution, outputs: dict[str, Any] | None = None, *,
                        globals: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What every template of this execution sees, before task-specific variables.

    `outputs` is the engine's incrementally kept `outputs` variable when it has one; `globals` the
    engine's (its renderer's) for contexts rendered elsewhere (input defaults). `trigger` is only
    there when the execution has trigger variables, so `trigger.date ?? …` falls back as in Kestra.
    """
    flow_var: dict[str, Any] = {"id": flow.id, "namespace": flow.namespace, "revision": execution.flow_revision}
    if execution.tenant_id is not None:
        flow_var["tenantId"] = execution.tenant_id
    execution_var: dict[str, Any] = {"id": execution.id, "startDate": execution.state.start_date}
    if execution.original_id is not None:
        execution_var["originalId"] = execution.original_id
    execution_var["state"] = execution.state.current.value
    variables: dict[str, Any] = {
        "envs": envs(),
        "flow": flow_var,
        "execution": execution_var,
        "inputs": _inputs(flow, execution),
        "outputs": outputs if outputs is not None else outputs_variable(flow, execution),
        "vars": flow.variables,
        "labels": labels_variable(execution),
        "tasks": LazyMap(lambda: tasks_variable(execution)),
        "kestra": kestra_variable(),
    }
    if globals is not None:
        variables["globals"] = globals
    if execution.trigger is not None and execution.trigger.variables:
        variables["trigger"] = execution.trigger.variables
    return variables


class TaskRunContext:
    """What a running task sees: its rendered properties, its logger, the flow and the execution."""

    __slots__ = ("flow", "execution", "task_run", "spec", "renderer", "_variables", "_emit", "_min_level",
                 "_outputs", "_runs", "_hooks", "executions")

    def __init__(self, flow: Flow, execution: Execution, task_run: TaskRun, spec: TaskSpec,
                 renderer: Renderer, emit: Callable[[LogEntry], None],
                 outputs: dict[str, Any] | None = None, runs: Mapping[str, TaskRun] | None = None) -> None:
        self.flow = flow
        self.execution = execution
        self.task_run = task_run
        self.spec = spec
        self.renderer = renderer
        self._variables: dict[str, Any] | None = None
        self._emit = emit
        self._outputs = outputs
        self._runs = runs
        self._hooks: RuntimeHooks | None = None
        self._min_level = spec.log_level.severity if spec.log_level is not None else 0
        # the engine's `engine.subflows.Executions` handle, for tasks that run other flows (Subflow…)
        self.executions: Any = None

    @property
    def variables(self) -> dict[str, Any]:
        if self._variables is None:
            v = execution_variables(self.flow, self.execution, self._outputs, globals=self.renderer.globals)
            tr = self.task_run
            v["task"] = {"id": self.spec.id, "type": self.spec.type}
            # attempts before the running one (Kestra reads it before the worker adds the new attempt)
            attempts = sum(1 for a in tr.attempts or () if a.state.current.is_terminated())
            taskrun: dict[str, Any] = {"id": tr.id, "startDate": tr.state.start_date, "attemptsCount": attempts}
            if tr.parent_task_run_id is not None:
                taskrun["parentId"] = tr.parent_task_run_id
            if tr.value is not None:
                taskrun["value"] = tr.value
            if tr.iteration is not None:
                taskrun["iteration"] = tr.iteration
            v["taskrun"] = taskrun
            parents: list[dict[str, Any]] = []
            if tr.parent_task_run_id is not None:
                runs = self._runs if self._runs is not None else {r.id: r for r in self.execution.task_run_list}
                parents = parents_variable(tr, runs)
                v[LOOP_PATH] = loop_path(self.flow, tr, runs)
            v["parents"] = parents
            if parents:
                v["parent"] = parents[0]
            wd_run = self.working_directory_run() if tr.parent_task_run_id is not None else None
            if wd_run is not None:   # Kestra's RunContextInitializer.forWorkingDirectory
                worker: dict[str, Any] = {"id": wd_run.id, "startDate": wd_run.state.start_date,
                                          "attemptsCount": 0, "parentId": wd_run.parent_task_run_id}
                if wd_run.parent_task_run_id is None:
                    del worker["parentId"]
                if wd_run.value is not None:
                    worker["value"] = wd_run.value
                v["workerTaskrun"] = worker
            hooks = self.hooks
            hooks.secrets.update(secret_input_values(self.flow, v["inputs"]))
            v[RUNTIME] = hooks
            self._variables = v
        return self._variables

    @property
    def hooks(self) -> RuntimeHooks:
        """What Kestra's functions reach through this task run: store, pending logs, revealed secrets."""
        if self._hooks is None:
            ex = self.execution
            # the engine's emit is its pending-log list's append: errorLogs() reads what is not committed yet
            pending = getattr(self._emit, "__self__", None)
            self._hooks = RuntimeHooks(store=self.renderer.store, namespace=self.flow.namespace,
                                       tenant=ex.tenant_id, execution_id=ex.id,
                                       pending_logs=pending if isinstance(pending, list) else None)
        return self._hooks

    def _where(self, prop: str | None, exc: ExpressionError) -> ExpressionError:
        path = f"{self.spec.path}.{prop}" if prop else self.spec.path
        pos = self.flow.positions.get(path)
        at = f", line {pos[0]}" if pos else ""
        return ExpressionError(f"{exc.message} (task `{self.spec.id}`, property `{prop or '?'}` at {path}{at})",
                               exc.expression, exc.line)

    def render(self, value: Any, prop: str | None = None) -> Any:
        """Render a property value: strings as templates, maps and lists recursively."""
        try:
            return self.renderer.render_value(value, self.variables)
        except ExpressionError as exc:
            raise self._where(prop, exc) from None

    def render_string(self, value: Any, prop: str | None = None) -> str:
        """Render to text (Kestra's string mode)."""
        if isinstance(value, str) and "{" not in value:
            return value
        try:
            return self.renderer.render_string(value, self.variables)
        except ExpressionError as exc:
            raise self._where(prop, exc) from None

    def render_typed(self, value: Any, prop: str | None = None) -> Any:
        """Render in typed mode (a lone `{{ expr }}` keeps its native type)."""
        try:
            return self.renderer.render_typed(value, self.variables)
        except ExpressionError as exc:
            raise self._where(prop, exc) from None

    # ------------------------------------------------------------------------- files and metrics

    @property
    def storage(self) -> InternalStorage:
        """The internal storage (`kestra:///` files) of the engine's store."""
        return self.renderer.store.storage

    def put_file(self, name: str, source: bytes | str | os.PathLike[str] | BinaryIO) -> str:
        """Store a file this task run produced (bytes, a local path or a binary stream); its `kestra:///` URI."""
        tr = self.task_run
        uri = self.storage.task_uri(tr.namespace, tr.flow_id, tr.execution_id, tr.task_id, tr.id, name)
        return self.storage.put(uri, source)

    def working_dir(self) -> Path:
        """A new private working directory for this task run; the caller removes it when done."""
        return self.storage.temp_dir(prefix=f"{self.task_run.task_id[:40]}-")

    def working_directory_run(self) -> TaskRun | None:
        """The task run of the WorkingDirectory this task run is in (its nearest one), if any."""
        runs = self._runs if self._runs is not None else {r.id: r for r in self.execution.task_run_list}
        parent_id = self.task_run.parent_task_run_id
        while parent_id is not None:
            parent = runs.get(parent_id)
            if parent is None:
                return None
            if self.flow.task(parent.task_id).type == WORKING_DIRECTORY:
                return parent
            parent_id = parent.parent_task_run_id
        return None

    def task_working_dir(self) -> tuple[Path, bool]:
        """The directory a task works in, and whether it is its own (to remove when done): inside a
        WorkingDirectory, the one its tasks share (kept); else a new private one."""
        wd_run = self.working_directory_run()
        if wd_run is None:
            return self.working_dir(), True
        path = shared_dir(self.storage, wd_run.id)
        path.mkdir(parents=True, exist_ok=True)
        return path, False

    def metric(self, name: str, type: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        """Record a metric of this task run (`counter`, `timer` in seconds, or `gauge`), as Kestra's MetricEntry."""
        tr = self.task_run
        entry: dict[str, Any] = {
            "namespace": tr.namespace, "flowId": tr.flow_id, "taskId": tr.task_id, "executionId": tr.execution_id,
            "taskRunId": tr.id, "type": type, "name": name, "value": value,
            "tags": {str(k): str(v) for k, v in (tags or {}).items()}, "timestamp": format_instant(utcnow()),
        }
        if tr.tenant_id is not None:
            entry["tenantId"] = tr.tenant_id
        self.renderer.store.append_metrics([entry])

    def log(self, level: Level | str, message: str) -> None:
        """Log a line for this task run, unless below the task's `logLevel`."""
        level = Level(level)
        if level.severity < self._min_level:
            return
        if self._hooks is not None and self._hooks.secrets:
            message = self._hooks.mask(message)
        tr = self.task_run
        self._emit(LogEntry(
            namespace=tr.namespace, flow_id=tr.flow_id, timestamp=utcnow(), level=level, message=message,
            execution_id=tr.execution_id, task_id=tr.task_id, task_run_id=tr.id,
            attempt_number=len(tr.attempts) - 1 if tr.attempts else 0, tenant_id=tr.tenant_id))
