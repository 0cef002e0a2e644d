"""The IPython extension: `%%flow` runs the cell's Kestra flow with a live view; `%flow run|list|show`.

    %load_ext kestra_nb

    %%flow -i name=World --label team:data --out ex
    id: hello
    namespace: company.team
    ...

The cell is YAML (with Kestra `{{ }}` expressions); nothing in it is evaluated as Python. It is saved as
a new revision in the shared store (the process's engine, on KESTRA_NB_HOME, so the Jupyter server's API
sees it too) and run synchronously: the cell blocks until the execution has ended, while the main thread
updates ONE display output from the engine's events (`live.LiveRun`). Afterwards `outputs` (a dict of the
flow outputs; never a variable of the user's of that name) and the `--out` variable (the Execution) are bound
in the user namespace. Ctrl-C kills the
execution. Mistakes in the flow, its inputs or the options are shown as a short message pointing at the
YAML line (IPython's UsageError display: no traceback), and mark the cell as failed.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import sys
import threading
from collections.abc import Mapping
from dataclasses import replace
from html import escape as _html
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from ..errors import (
    ExecutionTimeoutError,
    FlowValidationError,
    InputValidationError,
    KestraNbError,
    NotFoundError,
)
from ..model.execution import Execution
from ..model.flow import Flow
from ..model.ids import new_id
from ..model.state import StateType
from ..engine.inputs import check_declared
from .display import ExecutionDisplay, first_error_line, flow_graph
from .nsfiles import USAGE as FILES_USAGE, files_command
from .forms import InputsForm
from .topology import topology
from .live import LiveRun, Outcome, family
from .widgets.viewmodel import ViewModel

OUTPUTS_VARIABLE = "outputs"


LOG_STOP = 5.0   # seconds a --server run's log stream gets to stop once the execution has ended

# Every flow, input or option mistake is raised as IPython's UsageError itself: IPython shows exactly that
# class (not subclasses) as one short `UsageError: ...` message, without a traceback, and the cell fails.


# ------------------------------------------------------------------------------------------- options

def _pair(separator: str, what: str):  # an argparse type: "k=v" / "k:v"
    def parse(text: str) -> tuple[str, str]:
        key, found, value = text.partition(separator)
        if not found or not key.strip():
            raise argparse.ArgumentTypeError(f"expected {what} as KEY{separator}VALUE, got {text!r}")
        return key.strip(), value if separator == "=" else value.strip()
    parse.__name__ = what  # argparse names the type in its error message
    return parse


def _run_options(parser: MagicArgumentParser, *, cell: bool) -> MagicArgumentParser:
    parser.add_argument("-i", "--input", action="append", default=[], type=_pair("=", "input"),
                        metavar="NAME=VALUE", help="an input value (repeatable)")
    parser.add_argument("--inputs", metavar="VAR", help="a dict of input values from the namespace (-i wins)")
    parser.add_argument("-l", "--label", action="append", default=[], type=_pair(":", "label"),
                        metavar="KEY:VALUE", help="an execution label (repeatable)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="kill the execution if it has not ended after this many seconds")
    parser.add_argument("--out", metavar="VAR", help="bind the Execution to this variable")
    parser.add_argument("-q", "--quiet", action="store_true", help="no live view (outputs are still bound)")
    parser.add_argument("--allow-failure", action="store_true",
                        help="a FAILED or KILLED execution does not fail the cell (Run All goes on)")
    parser.add_argument("--from", dest="from_task", metavar="TASK",
                        help="run from here: replay the flow's last execution from this task's task run, "
                             "reusing the outputs of the tasks before it")
    if cell:
        parser.add_argument("--no-run", action="store_true", help="only save the flow as a new revision")
        parser.add_argument("--server", metavar="URL",
                            help="run on a kestra_nb server or a Kestra cluster (credentials: KESTRA_API_TOKEN, "
                                 "else KESTRA_NB_BASIC_AUTH)")
        parser.add_argument("--tenant", default="main",
                            help="with --server: the tenant (default main; '' for tenant-less paths)")
        parser.add_argument("--token", metavar="TOKEN",
                            help="with --server: a bearer token (default KESTRA_API_TOKEN; `--token $var` keeps "
                                 "it out of the saved notebook)")
    return parser


CELL_PARSER = _run_options(MagicArgumentParser(prog="%flow", add_help=False,
                                               description="Save and run the cell's Kestra flow."), cell=True)
RUN_PARSER = _run_options(MagicArgumentParser(prog="flow run", add_help=False,
                                              description="Run a stored flow."), cell=False)
RUN_PARSER.add_argument("flow", metavar="NAMESPACE.ID", help="the flow, e.g. company.team.myflow")
LIST_PARSER = MagicArgumentParser(prog="flow list", add_help=False, description="The stored flows.")
LIST_PARSER.add_argument("namespace", nargs="?", help="only this namespace (and those under it)")
SHOW_PARSER = MagicArgumentParser(prog="flow show", add_help=False, description="Show a stored execution.")
SHOW_PARSER.add_argument("execution_id", metavar="EXECUTION_ID")
FORM_PARSER = MagicArgumentParser(prog="flow form", add_help=False,
                                  description="A form of a flow's inputs that runs it, or of a paused execution's "
                                              "onResume inputs that resumes it.")
FORM_PARSER.add_argument("target", metavar="NAMESPACE.ID|EXECUTION_ID")
FORM_PARSER.add_argument("-i", "--input", action="append", default=[], type=_pair("=", "input"),
                         metavar="NAME=VALUE", help="a value the form starts with (repeatable)")
FORM_PARSER.add_argument("-l", "--label", action="append", default=[], type=_pair(":", "label"),
                         metavar="KEY:VALUE", help="a label of each execution the form starts (repeatable)")
FORM_PARSER.add_argument("--timeout", type=float, metavar="SECONDS",
                         help="kill an execution the form started if it has not ended after this many seconds")
FORM_PARSER.add_argument("--out", metavar="VAR", help="bind the last Execution the form ran to this variable")
ACTION_PARSERS = {name: MagicArgumentParser(prog=f"flow {name}", add_help=False, description=text)
                  for name, text in (("kill", "Kill an execution, wherever it runs."),
                                     ("pause", "Pause a running execution, wherever it runs."),
                                     ("resume", "Resume a paused execution, wherever it runs."),
                                     ("restart", "Restart a failed, killed or paused execution (same id)."),
                                     ("replay", "Replay an execution as a new one, from the start or a task."))}
for _action in ACTION_PARSERS.values():
    _action.add_argument("execution_id", metavar="EXECUTION_ID")
ACTION_PARSERS["replay"].add_argument("--from", dest="from_task", metavar="TASK",
                                      help="replay from this task's (last) task run on")
ACTION_PARSERS["resume"].add_argument("-i", "--input", action="append", default=[], type=_pair("=", "input"),
                                      metavar="NAME=VALUE", help="an onResume input value (repeatable)")

HELP = f"""Kestra flows in a notebook.

%%flow [options]          the cell is a flow (YAML): save it as a new revision and run it
%flow run NAMESPACE.ID    run a stored flow (same options but --no-run and --server)
%flow list [NAMESPACE]    the stored flows with their last execution
%flow show EXECUTION_ID   the view of a stored execution
%flow form NAMESPACE.ID   a form of the flow's inputs (widgets) with a Run button
%flow form EXECUTION_ID   a form of a paused execution's onResume inputs with a Resume button
%flow kill|pause EXECUTION_ID               kill or pause it, wherever it runs (another kernel, a server)
%flow resume EXECUTION_ID [-i NAME=VALUE]   resume a paused one, with its Pause's onResume inputs
%flow restart EXECUTION_ID                  run its failed (or paused) task runs again, same id
%flow replay EXECUTION_ID [--from TASK]     a new execution of it, from the start or from TASK on
{FILES_USAGE}

After a `%%flow` cell, `outputs` is the dict of the flow's outputs (unless you have a variable of that name:
it is kept) and `--out ex` binds the Execution (ex.state, ex.outputs, ex.task_run_list, ex.id).

{CELL_PARSER.format_help()}
Examples:
  %%flow --out ex                          the cell below the line is the flow; bind the Execution to `ex`
  %%flow -i name=Ada -i times=2 -l team:data    inputs and a label
  %%flow --inputs params --allow-failure   inputs from the dict `params`; a FAILED run does not stop Run All
  %%flow --from load                       replay the flow's last execution from task `load` on
  %%flow --no-run                          only save it (then `%flow run company.team.myflow`)
  %%flow --server http://localhost:8080    run it on a server and follow it live here (credentials:
                                           KESTRA_API_TOKEN or KESTRA_NB_BASIC_AUTH; --tenant, --token $var)
  %flow form company.team.myflow           a form of its inputs that runs it
"""


def _parse(parser: MagicArgumentParser, line: str) -> Any:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%{parser.prog}: {exc}") from None
    try:
        return parser.parse_args(words)
    except UsageError as exc:  # argparse's message, already short
        raise UsageError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- errors

def describe_error(exc: BaseException, source: str | None = None, flow: Flow | None = None, *, above: int = 0) -> str:
    """A short message for a flow mistake, pointing at the YAML line (with the line itself) when known.

    `above` is how many lines the editor shows before the source (1 in a `%%flow` cell: the magic's own line), so
    that the numbers match the editor's gutter.
    """
    lines = source.splitlines() if source else []
    if isinstance(exc, FlowValidationError):
        count = len(exc.violations)
        out = [f"Invalid flow ({count} problem{'s' if count != 1 else ''}):"]
        for v in exc.violations:
            where = f"line {v.line + above}, column {v.column}: " if v.line is not None else ""
            out.append(f"  {where}{v.path + ': ' if v.path else ''}{v.message}")
            out.extend(_excerpt(lines, v.line, v.column, above))
        return "\n".join(out)
    if isinstance(exc, InputValidationError):
        out = ["Invalid inputs:"]
        for error in exc.errors:
            out.append(f"  {error}")
            line = _input_line(flow, error)
            if line is not None:
                out.append(f"  (the input is declared at line {line + above})")
                out.extend(_excerpt(lines, line, None, above))
        return "\n".join(out)
    line = getattr(exc, "line", None)
    message = str(exc)
    if isinstance(line, int):
        return "\n".join([f"line {line + above}: {message}", *_excerpt(lines, line, None, above)])
    return message


def _excerpt(lines: list[str], line: int | None, column: int | None, above: int = 0) -> list[str]:
    if line is None or not 1 <= line <= len(lines):
        return []
    text = lines[line - 1]
    out = [f"  {line + above:>4} | {text}"]
    if column is not None and column >= 1:
        out.append(f"  {'':>4} | {' ' * (column - 1)}^")
    return out


def _input_line(flow: Flow | None, error: str) -> int | None:
    if flow is None:
        return None
    # Kestra's messages quote the input (`name`) or end with it (`Missing required input:name`)
    names = set(re.findall(r"`([^`]+)`", error)) or set(re.findall(r":\s*([\w.-]+)\s*$", error))
    for index, declared in enumerate(flow.inputs):
        if declared.id in names:
            position = flow.position(declared.path or f"inputs[{index}]")
            if position is not None:
                return position[0]
    return None


def _local_file(value: Any) -> Path | None:
    """The local file a FILE input's value names (a Path, a `file://` URI, an existing file's path), or None."""
    if isinstance(value, os.PathLike):
        path = Path(value)
    elif isinstance(value, str) and value.startswith("file://"):
        path = Path(unquote(urlparse(value).path))
    elif isinstance(value, str) and value and "://" not in value and len(value) < 4096:
        path = Path(value)
        if not path.is_file():
            return None
    else:
        return None
    if not path.is_file():
        raise UsageError(f"FILE input: {value} is not a file")
    return path


# ---------------------------------------------------------------------------------------------- magics

@magics_class
class FlowMagics(Magics):
    """`%%flow` and `%flow`; the engine is the process's default one unless one is given (tests)."""

    def __init__(self, shell: Any = None, engine: Any = None) -> None:
        super().__init__(shell)
        self._engine = engine
        self.last_view: Any = None   # the latest live view (tests and benchmarks count its updates)
        self.live: LiveRun | None = None  # the run being followed, if any
        self._bound: Any = None           # the `outputs` dict a cell bound last (any other is the user's)
        self._warned = False              # said once that the user's `outputs` is kept

    @property
    def engine(self) -> Any:
        """The engine flows are saved to and run on (the process's engine by default)."""
        if self._engine is None:
            from ..engine import get_engine

            self._engine = get_engine()
        return self._engine

    @line_cell_magic
    def flow(self, line: str, cell: str | None = None) -> None:
        if cell is None:
            self._line(line)
        else:
            self._cell(line, cell)

    flow.__doc__ = HELP

    # ----------------------------------------------------------------------------------------- cell

    def _cell(self, line: str, source: str) -> None:
        args = _parse(CELL_PARSER, line)
        inputs = self._inputs(args)
        labels = list(args.label)
        if not args.server and (args.token or args.tenant != "main"):
            raise UsageError("--token and --tenant go with --server URL")
        if args.server:
            if args.from_task:
                raise UsageError("--from cannot be used with --server: the client has no replay")
            if args.no_run:
                self._deploy_remote(args, source)
                return
            self._run_remote(args, source, inputs, labels)
            return
        engine = self.engine
        try:
            flow, revision = engine.deploy(source)
        except KestraNbError as exc:
            raise UsageError(describe_error(exc, source, above=1)) from None
        if args.no_run:
            print(f"{flow.namespace}.{flow.id} revision {revision} saved")
            return
        self._run_local(args, flow, revision, source, inputs, labels)

    # ----------------------------------------------------------------------------------------- line

    def _line(self, line: str) -> None:
        command, _, rest = line.strip().partition(" ")
        if command == "run":
            self._run_stored(rest)
        elif command == "list":
            self._list(_parse(LIST_PARSER, rest).namespace)
        elif command == "show":
            self._show(_parse(SHOW_PARSER, rest).execution_id)
        elif command == "form":
            display(self.form(rest).widget)
        elif command in ACTION_PARSERS:
            self._act(command, _parse(ACTION_PARSERS[command], rest))
        elif command == "files":
            files_command(self.engine, rest)
        elif command in ("", "help", "-h", "--help"):
            print(HELP)
        else:
            raise UsageError(f"Unknown command `%flow {command}`: use run, list, show, form, kill, pause, resume, "
                             "restart, replay or files (or `%%flow` with "
                             "the flow as the cell)")

    def _run_stored(self, line: str) -> None:
        args = _parse(RUN_PARSER, line)
        namespace, dot, flow_id = args.flow.rpartition(".")
        if not dot or not namespace or not flow_id:
            raise UsageError(f"%flow run: expected NAMESPACE.ID, got {args.flow!r}")
        engine = self.engine
        try:
            flow, revision = engine.load_flow(namespace, flow_id)
        except NotFoundError:
            raise UsageError(f"Flow {namespace}.{flow_id} is not in the store; run a `%%flow` cell "
                             "with it first") from None
        except KestraNbError as exc:
            raise UsageError(describe_error(exc)) from None
        self._run_local(args, flow, revision, flow.source, self._inputs(args), list(args.label), above=0)

    def _list(self, namespace: str | None) -> None:
        store = self.engine.store
        records = store.list_flows(namespace, prefix=True) if namespace else store.list_flows()
        rows = []
        for record in records:
            found, _ = store.search_executions(namespace=record.namespace, namespace_prefix=False,
                                               flow_id=record.id, sort=[("state.startDate", False)], size=1)
            last = found[0] if found else None
            rows.append((f"{record.namespace}.{record.id}", record.revision,
                         last.id if last else "", last.state.current.value if last else ""))
        display(FlowTable(rows))

    def _act(self, command: str, args: Any) -> None:
        """Kill, pause or resume an execution: driven here, by another kernel or a server on the same home."""
        engine = self.engine
        try:
            task_run_id = self._task_run_of(args.execution_id, args.from_task) if command == "replay" else None
            target = engine.act(command, args.execution_id, inputs=dict(getattr(args, "input", None) or []),
                                task_run_id=task_run_id)
        except KestraNbError as exc:
            raise UsageError(f"%flow {command} {args.execution_id}: {exc.message}") from None
        ex = engine.get_execution(target)
        state = ex.state.current.value if ex is not None else "deleted"
        made = f" as execution {target}" if target != args.execution_id else ""
        print(f"Execution {args.execution_id}: {command} done{made}, now {state} (`%flow show {target}` shows it)")

    def _task_run_of(self, execution_id: str, task_id: str | None) -> str | None:
        """The id of the last task run of `task_id` in the execution (None without a task)."""
        if task_id is None:
            return None
        ex = self.engine.get_execution(execution_id)
        if ex is None:
            raise UsageError(f"Execution '{execution_id}' not found")
        runs = [tr for tr in ex.task_run_list if tr.task_id == task_id]
        if not runs:
            raise UsageError(f"--from {task_id}: execution {execution_id} has no task run of `{task_id}`; its "
                             f"tasks: {', '.join(dict.fromkeys(tr.task_id for tr in ex.task_run_list)) or 'none'}")
        return runs[-1].id

    def _show(self, execution_id: str) -> None:
        store = self.engine.store
        document = store.get_execution_document(execution_id)
        if document is None:
            raise UsageError(f"Execution '{execution_id}' not found")
        model = ViewModel()
        model.update(document)
        model.add_logs(store.list_logs(execution_id))
        ExecutionDisplay(model, graph=flow_graph(self.engine, document)).show()

    def form(self, line: str) -> InputsForm:
        """`%flow form`: the form of a stored flow's inputs (NAMESPACE.ID: Run starts an execution and follows
        it in the form) or of a paused execution's onResume inputs (EXECUTION_ID: Resume resumes it)."""
        args = _parse(FORM_PARSER, line)
        prefill = dict(args.input)
        namespace, dot, flow_id = args.target.rpartition(".")
        if not dot:
            return self._resume_form(args.target, prefill)
        engine = self.engine
        try:
            flow, revision = engine.load_flow(namespace, flow_id)
            check_declared(flow, list(prefill))
        except NotFoundError:
            raise UsageError(f"Flow {namespace}.{flow_id} is not in the store; run a `%%flow` cell with it "
                             "first") from None
        except KestraNbError as exc:
            raise UsageError(describe_error(exc)) from None
        run_args = argparse.Namespace(from_task=None, input=[], timeout=args.timeout, out=args.out, quiet=False,
                                      allow_failure=False)
        form: InputsForm

        def run(values: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> None:
            try:
                execution = self._new_execution(flow, revision, values, list(args.label), files)
            except KestraNbError as exc:
                raise UsageError(describe_error(exc)) from None
            self._run_local(run_args, flow, revision, flow.source, {}, [], execution=execution, into=form.output,
                            above=0)

        # -i values are what the form starts with
        inputs = [replace(inp, prefill=prefill[inp.id]) if inp.id in prefill else inp for inp in flow.inputs]
        title = f"{flow.namespace}.{flow.id}" + (f": {flow.description}" if flow.description else "")
        form = InputsForm(title, inputs, "Run", run)
        return form

    def _resume_form(self, execution_id: str, prefill: dict[str, Any]) -> InputsForm:
        engine = self.engine
        document = engine.store.get_execution_document(execution_id)
        if document is None:
            raise UsageError(f"Execution '{execution_id}' not found (a flow is named NAMESPACE.ID)")
        if document["state"]["current"] != StateType.PAUSED.value:
            raise UsageError(f"Execution {execution_id} is {document['state']['current']}, not PAUSED: there is "
                             "nothing to resume")
        inputs = engine.on_resume_inputs(document) or []
        known = {inp.id for inp in inputs}
        unknown = sorted(set(prefill) - known)
        if unknown:
            raise UsageError(f"-i {unknown[0]}: not an onResume input of the paused task; its inputs: "
                             f"{', '.join(sorted(known)) or 'none'}")
        inputs = [replace(inp, prefill=prefill[inp.id]) if inp.id in prefill else inp for inp in inputs]

        def resume(values: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> None:
            storage = engine.store.storage
            uris = {name: storage.input_uri(document["namespace"], document["flowId"], execution_id, name, filename)
                    for name, (filename, _) in files.items()}
            for name, uri in uris.items():
                storage.put(uri, files[name][1])
            try:
                engine.act("resume", execution_id, inputs={**values, **uris})
            except KestraNbError as exc:
                for uri in uris.values():
                    storage.delete(uri)
                raise UsageError(describe_error(exc)) from None
            form.status.value = f"Execution {_html(execution_id)} resumed"

        form = InputsForm(f"Resume {document['namespace']}.{document['flowId']} · {execution_id}", inputs,
                          "Resume", resume)
        return form

    # ------------------------------------------------------------------------------------------ run

    def _new_execution(self, flow: Flow, revision: int, inputs: dict[str, Any], labels: list[tuple[str, str]],
                       files: dict[str, tuple[str, Any]] | None = None) -> Execution:
        """A new execution whose FILE inputs may be local files: a `Path`, a `file://` URI or the path of an
        existing file (a notebook's own files, read as the kernel's user), or `files` (name -> (file name,
        bytes)); each is stored in the internal storage, as the API stores an upload, once the inputs are
        accepted, and the input is its `kestra:///` URI."""
        engine = self.engine
        files = dict(files or {})
        declared = {inp.id for inp in flow.inputs if inp.type.upper() == "FILE"}
        values = dict(inputs)
        for name in declared & set(values):
            local = _local_file(values[name])
            if local is not None:
                files[name] = (local.name, local)
                del values[name]
        storage = engine.store.storage
        execution_id = new_id()
        uris = {name: storage.input_uri(flow.namespace, flow.id, execution_id, name, filename)
                for name, (filename, _) in files.items()}
        execution = engine.new_execution(flow, revision, {**values, **uris}, labels, execution_id=execution_id)
        for name, uri in uris.items():
            storage.put(uri, files[name][1])
        return execution

    def _inputs(self, args: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        if args.inputs:
            namespace = self.shell.user_ns if self.shell is not None else {}
            if args.inputs not in namespace:
                raise UsageError(f"--inputs {args.inputs}: no such variable")
            value = namespace[args.inputs]
            if not isinstance(value, Mapping):
                raise UsageError(f"--inputs {args.inputs}: expected a dict, got {type(value).__name__}")
            inputs.update(value)
        inputs.update(dict(args.input))
        return inputs

    def _run_local(self, args: Any, flow: Flow, revision: int, source: str, inputs: dict[str, Any],
                   labels: list[tuple[str, str]], *, execution: Execution | None = None, into: Any = None,
                   above: int = 1) -> None:
        """Run the flow (or the `execution` built for it) and follow it in a view: the cell's, or `into`."""
        engine = self.engine
        replay: tuple[str, str] | None = None
        try:
            if args.from_task:
                replay = self._replay_point(flow, args.from_task)
            elif execution is None:
                check_declared(flow, [name for name, _ in args.input])
                execution = self._new_execution(flow, revision, inputs, labels)
        except KestraNbError as exc:
            raise UsageError(describe_error(exc, source, flow, above=above)) from None
        model = ViewModel()
        if execution is not None:
            model.update(execution.to_dict())  # before the engine's thread gets it
        ids: list[str] = []
        live = self.live = LiveRun(
            model, timeout=args.timeout,
            kill=lambda: ids and asyncio.run_coroutine_threadsafe(engine.kill_async(ids[0]), engine.loop))

        async def drive() -> Execution:
            """On the engine's loop: start (or replay), listen to the execution, wait for its end."""
            if replay is None:
                assert execution is not None
                ids.append(execution.id)
                unsubscribe = engine.subscribe(None, family(execution.id, live.put))
                try:
                    await engine.start(flow, execution)
                    return await engine.wait_async(execution.id)
                finally:
                    unsubscribe()
            started = await engine.replay_async(replay[0], replay[1], revision, inputs or None)
            ids.append(started.id)
            # nothing ran between the replay's start and here (no await since): no event is missed
            unsubscribe = engine.subscribe(None, family(started.id, live.put))
            live.put(started.to_dict())
            try:
                return await engine.wait_async(started.id)
            finally:
                unsubscribe()

        future = asyncio.run_coroutine_threadsafe(drive(), engine.loop)
        future.add_done_callback(lambda f: _hand_over(f, live))
        # the widget is built while the engine already runs: its events wait in the queue meanwhile
        view, handle = self._show_live(model, args.quiet, into, topology(flow))
        live.view = view
        outcome = live.wait()
        self._conclude(outcome, view, handle, source, flow, outcome.result, args, above)

    def _replay_point(self, flow: Flow, task_id: str) -> tuple[str, str]:
        """(execution id, task run id) of the flow's last execution where `task_id` ran."""
        found, _ = self.engine.store.search_executions(
            namespace=flow.namespace, namespace_prefix=False, flow_id=flow.id, sort=[("state.startDate", False)],
            size=1)
        if not found:
            raise UsageError(f"--from {task_id}: {flow.namespace}.{flow.id} has no execution to run from yet; "
                             "run the cell without --from first")
        last = found[0]
        if not last.state.current.is_terminated():
            raise UsageError(f"--from {task_id}: the last execution {last.id} is still "
                             f"{last.state.current.value}")
        for tr in last.task_run_list:
            if tr.task_id == task_id:
                return last.id, tr.id
        ran = ", ".join(dict.fromkeys(tr.task_id for tr in last.task_run_list)) or "none"
        raise UsageError(f"--from {task_id}: task `{task_id}` did not run in the last execution {last.id} "
                         f"(tasks that ran: {ran})")

    def _show_live(self, model: ViewModel, quiet: bool, into: Any = None,
                   graph: dict[str, Any] | None = None) -> tuple[Any, Any]:
        if quiet:
            return None, None
        view = ExecutionDisplay(model, into=into, graph=graph).show()
        self.last_view = view
        return view, view.handle

    def _conclude(self, outcome: Outcome, view: Any, handle: Any, source: str | None, flow: Flow | None,
                  execution: Any, args: Any, above: int = 1) -> None:
        """Bind the results, refresh the saved output's static HTML, report what went wrong (if anything);
        `above` as describe_error's (1 for a cell's flow, 0 for a stored one)."""
        error = outcome.error
        if execution is None and isinstance(error, ExecutionTimeoutError):
            execution = error.execution
        self._bind(execution, args.out)
        message = ""
        if error is not None and not isinstance(error, ExecutionTimeoutError):
            message = describe_error(error, source, flow, above=above) if isinstance(error, KestraNbError) else \
                f"{type(error).__name__}: {error}"
        elif outcome.timed_out or isinstance(error, ExecutionTimeoutError):
            ident = getattr(execution, "id", "") or (view.summary.get("id") if view is not None else "")
            message = f"Execution {ident} did not end within {args.timeout:g}s; it was killed"
        elif outcome.interrupted:
            ident = getattr(execution, "id", "") or (view.summary.get("id") if view is not None else "")
            message = f"Interrupted: execution {ident} was killed" if outcome.finished else \
                f"Interrupted: execution {ident} was asked to stop and has not ended yet"
        if view is not None and message:
            view.error = message
            view.refresh()   # the saved output: the final state, with what went wrong
        if message:
            raise UsageError(message)
        ended = getattr(getattr(execution, "state", None), "current", None)
        if ended in (StateType.FAILED, StateType.KILLED) and not args.allow_failure:
            # the cell fails with the execution: under Run All, what went wrong is seen here, not cells later
            why = view.state.get("error") if view is not None else ""
            if not why and ended is StateType.FAILED:   # (a --server run's logs came with its end)
                remote = getattr(args, "server", None) and self.live is not None
                why = first_error_line(self.live.model.logs if remote else  # type: ignore[union-attr]
                                       self.engine.store.list_logs(execution.id))
            raise UsageError(f"Execution {execution.id} {ended.value}" + (f": {why}" if why else "") +
                             " (--allow-failure keeps the cell going)")

    def _bind(self, execution: Any, out: str | None) -> None:
        if self.shell is None:
            return
        outputs = getattr(execution, "outputs", None) if execution is not None else None
        namespace = self.shell.user_ns
        if OUTPUTS_VARIABLE in namespace and namespace[OUTPUTS_VARIABLE] is not self._bound:
            # a variable of the user's, not the one a cell bound: never replaced without a word
            if not self._warned:
                print(f"Note: `{OUTPUTS_VARIABLE}` is a variable of yours, so it was left as it is; the flow's "
                      f"outputs are in {out or 'ex'}.outputs (--out {out or 'ex'})", file=sys.stderr)
                self._warned = True
        else:
            self._bound = namespace[OUTPUTS_VARIABLE] = dict(outputs or {})
        if out:
            namespace[out] = execution

    # --------------------------------------------------------------------------------------- remote

    @staticmethod
    def _client(args: Any) -> Any:  # -> KestraClient
        """The client of a `--server` cell: its tenant, its token (else the environment's credentials)."""
        from ..client import KestraClient

        try:
            return KestraClient.from_env(args.server, tenant=args.tenant or None, token=args.token)
        except KestraNbError as exc:
            raise UsageError(str(exc)) from None

    def _deploy_remote(self, args: Any, source: str) -> None:
        try:
            with self._client(args) as client:
                flow = client.deploy(source)
        except KestraNbError as exc:
            raise UsageError(describe_error(exc, source, above=1)) from None
        print(f"{flow.get('namespace')}.{flow.get('id')} revision {flow.get('revision')} saved on {args.server}")

    def _run_remote(self, args: Any, source: str, inputs: dict[str, Any], labels: list[tuple[str, str]]) -> None:
        """Deploy and run on a server through the client; its server-sent updates feed the same view."""
        from ..client import LogFollow, _flow_key
        from ..parsing import parse_flow

        flow: Flow | None
        try:
            flow = parse_flow(source)  # the same checks, with line numbers, before anything is sent
            check_declared(flow, [name for name, _ in args.input])
            key = flow.namespace, flow.id
        except FlowValidationError as exc:
            if not _plugins_of_the_cluster(exc):
                raise UsageError(describe_error(exc, source, above=1)) from None
            flow = None   # types this engine lacks, outside Kestra's core: the cluster may have them
            try:
                key = _flow_key(source)
            except KestraNbError as error:
                raise UsageError(describe_error(error, source, above=1)) from None
        except KestraNbError as exc:
            raise UsageError(describe_error(exc, source, above=1)) from None
        client = self._client(args)   # (a malformed token is told before anything is shown)
        model = ViewModel()
        view, handle = self._show_live(model, args.quiet, graph=topology(flow) if flow is not None else None)
        ids: list[str] = []
        logs = self._client(args)   # the execution's logs, streamed live on a connection of their own
        followers: list[LogFollow] = []

        def on_update(document: dict[str, Any]) -> None:
            if not ids:
                ids.append(document["id"])
                followers.append(LogFollow(logs, document["id"], lambda entry: live.put_logs([entry])).start())
            live.put(document)

        def kill() -> None:
            if ids:
                with self._client(args) as other:
                    other.kill(ids[0])

        live = self.live = LiveRun(model, view, kill=kill)

        def work() -> None:
            """On a worker thread: deploy, run and follow (its logs on another thread), then fetch the logs
            the stream did not bring."""
            try:
                with client, logs:
                    client.deploy(source)
                    try:
                        document = client.execute(*key, inputs=inputs, labels=labels, on_update=on_update,
                                                  timeout=args.timeout)
                    except BaseException:
                        for follower in followers:
                            follower.stop(LOG_STOP)
                        raise
                    live.put(document)
                    live.put_logs(followers[0].finish(LOG_STOP) if followers else client.logs(document["id"]))
                live.finish(Execution.from_dict(document))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
                live.finish(None, exc)

        threading.Thread(target=work, name="kestra_nb-remote", daemon=True).start()
        outcome = live.wait()
        self._conclude(outcome, view, handle, source, flow, outcome.result, args)


_INVALID_TYPE = "Invalid type: "
_CORE_TYPES = ("io.kestra.plugin.core.", "io.kestra.core.")


def _plugins_of_the_cluster(exc: FlowValidationError) -> bool:
    """Whether every violation is a task or trigger type outside Kestra's core that this engine lacks (a
    plugin a Kestra cluster may have installed: its server checks the flow instead)."""
    return bool(exc.violations) and all(
        v.path.endswith(".type") and v.message.startswith(_INVALID_TYPE)
        and not v.message[len(_INVALID_TYPE):].startswith(_CORE_TYPES) for v in exc.violations)


def _hand_over(future: Any, live: LiveRun) -> None:
    """Pass a finished future's result or error to the waiting main thread."""
    if future.cancelled():
        live.finish(None, KestraNbError("The execution's driver was cancelled (the engine is closing)"))
    elif future.exception() is not None:
        live.finish(None, future.exception())
    else:
        live.finish(future.result())


class FlowTable:
    """`%flow list`: the stored flows, their latest revision and last execution."""

    def __init__(self, rows: list[tuple[str, int, str, str]]) -> None:
        self.rows = rows

    def __repr__(self) -> str:
        if not self.rows:
            return "No flows stored yet"
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'flow':<{width}}  rev  last execution"]
        lines += [f"{flow:<{width}}  {rev:>3}  {ex} {state}".rstrip() for flow, rev, ex, state in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        from .widgets.static import color

        if not self.rows:
            return "<p>No flows stored yet</p>"
        body = "".join(
            f"<tr><td>{escape(flow)}</td><td>{rev}</td><td><code>{escape(ex)}</code></td>"
            f"<td><span style='color:{color(state)};font-weight:600'>{escape(state)}</span></td></tr>"
            for flow, rev, ex, state in self.rows)
        return ("<table><thead><tr><th>flow</th><th>revision</th><th>last execution</th><th>state</th></tr>"
                f"</thead><tbody>{body}</tbody></table>")


def load_ipython_extension(ipython: Any) -> None:
    """Register `%%flow` / `%flow` and the execution's rich display (what `%load_ext kestra_nb` calls)."""
    from .display import register_formatter

    ipython.register_magics(FlowMagics(ipython))
    register_formatter(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond IPython's own bookkeeping (magics stay until the kernel restarts)."""


__all__ = ["FlowMagics", "FlowTable", "describe_error", "load_ipython_extension"]
