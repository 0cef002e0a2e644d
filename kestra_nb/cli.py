"""The `kestra-nb` command: run and validate flows from a terminal or CI, serve the REST API, deploy.

    kestra-nb run flow.yml -i name=value [--label k:v] [--json] [--timeout S] [--home DIR]
    kestra-nb run flow.yml --server URL [--follow] [AUTH] [--tenant main]   (on a server)
    kestra-nb validate flow.yml [more.yml …]
    kestra-nb server [--host 127.0.0.1] [--port 8080] [--home DIR] [--basic-auth USER:PASSWORD] [--token TOKEN]
                     [--allow-host NAME …] [--allow-origin ORIGIN …]
    kestra-nb deploy FLOW.yml|DIR … --server URL [--namespace NS] [--delete] [--files DIR] [AUTH] [--tenant main]
    kestra-nb namespace files upload|list|delete NAMESPACE …   (namespace files of the home: cli_namespace.py)

AUTH is `--token TOKEN` (a bearer token; default KESTRA_API_TOKEN) or `--basic-auth USER:PASSWORD` (default
KESTRA_NB_BASIC_AUTH). The server reads its own from KESTRA_NB_BASIC_AUTH and KESTRA_NB_API_TOKEN.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence, TextIO

from . import cli_namespace
from .errors import FlowValidationError, KestraNbError
from .model.execution import Execution, Level
from .model.state import StateType

OK_STATES = (StateType.SUCCESS, StateType.WARNING)


def _pair(sep: str, what: str):  # argparse type: "k=v" / "k:v"
    def parse(text: str) -> tuple[str, str]:
        key, found, value = text.partition(sep)
        if not found or not key:
            raise argparse.ArgumentTypeError(f"expected {what} as KEY{sep}VALUE, got {text!r}")
        return key.strip(), value if sep == "=" else value.strip()
    return parse


EXAMPLES = """examples:
  kestra-nb run examples/myflow.yml                         # run a flow here, print its outputs and timeline
  kestra-nb run examples/greet.yml -i name=Ada --json       # with an input, Kestra's execution JSON
  kestra-nb validate flows/*.yml                            # every violation, with its line:column
  kestra-nb server --port 8080 --home /tmp/kestra           # Kestra's REST API on 127.0.0.1:8080
  kestra-nb deploy examples/myflow.yml --server http://localhost:8080
  kestra-nb deploy flows/ --namespace company.team --server URL --token $T   # flows/*.yml and flows/files/
  kestra-nb run examples/myflow.yml --server http://localhost:8080   # run it there, follow it here
  kestra-nb resume EXECUTION_ID -i reason=approved          # a paused execution, wherever it runs
  kestra-nb kill|pause|restart EXECUTION_ID
  kestra-nb namespace files upload company.team scripts/ --to /   # files flows read (read(), namespaceFiles)

The store (flows, executions, logs, files) is KESTRA_NB_HOME (or --home): one SQLite file that notebooks,
`jupyter lab` and `kestra-nb server` on that home share. Remove the directory to start from an empty one.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kestra-nb", description="Kestra flows, in-process.", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True,
                                help="`kestra-nb COMMAND --help` lists the command's options")
    run = sub.add_parser("run", help="run a flow and print its state, outputs and timeline")
    run.add_argument("flow", type=Path, help="the flow's YAML file")
    run.add_argument("-i", "--input", action="append", default=[], type=_pair("=", "an input"),
                     metavar="NAME=VALUE", help="an input value (repeatable)")
    run.add_argument("-l", "--label", action="append", default=[], type=_pair(":", "a label"),
                     metavar="KEY:VALUE", help="an execution label (repeatable)")
    run.add_argument("--json", action="store_true", help="print Kestra's execution JSON instead")
    run.add_argument("--timeout", type=float, help="kill the execution after this many seconds")
    run.add_argument("--home", type=Path, help="the store's home directory (default: KESTRA_NB_HOME)")
    run.add_argument("--follow", action="store_true",
                     help="with --server: print each task run's progress and the log lines as the server "
                          "reports them (server-sent events; to stderr with --json)")
    _remote(run, required=False)
    validate = sub.add_parser("validate", help="check flows and print every violation with its line:column")
    validate.add_argument("flows", type=Path, nargs="+", help="YAML files")
    server = sub.add_parser("server", help="serve Kestra's REST API (Executions, Flows, Logs, KV)")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    server.add_argument("--home", type=Path, help="the store's home directory (default: KESTRA_NB_HOME)")
    server.add_argument("--basic-auth", metavar="USER:PASSWORD",
                        help="require HTTP Basic auth (default: KESTRA_NB_BASIC_AUTH; this or --token is needed "
                             "off loopback)")
    server.add_argument("--token", metavar="TOKEN",
                        help="accept this API token as `Authorization: Bearer TOKEN` (default: "
                             "KESTRA_NB_API_TOKEN; at least 16 characters); with --basic-auth, either passes")
    server.add_argument("--grace", type=float, default=10.0,
                        help="seconds running executions get to end or pause on SIGTERM (default 10)")
    server.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests sent to this host name (beyond loopback; '*' any; "
                             "or KESTRA_NB_ALLOWED_HOSTS=a,b)")
    server.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="let pages of this origin (https://app.example:8443) change things and read "
                             "answers (CORS; or KESTRA_NB_ALLOWED_ORIGINS=a,b)")
    for name, text in (("kill", "kill an execution, wherever it runs (another kernel, a server)"),
                       ("pause", "pause a running execution, wherever it runs"),
                       ("resume", "resume a paused execution, wherever it runs"),
                       ("restart", "run a failed, killed or paused execution's failed task runs again")):
        action = sub.add_parser(name, help=text)
        action.add_argument("execution_id", metavar="EXECUTION_ID", help="the execution's id (22 characters)")
        if name == "resume":
            action.add_argument("-i", "--input", action="append", default=[], type=_pair("=", "an input"),
                                metavar="NAME=VALUE", help="an onResume input value (repeatable)")
        action.add_argument("--home", type=Path, help="the store's home directory (default: KESTRA_NB_HOME)")
        _remote(action, required=False)
    cli_namespace.add_parser(sub)
    deploy = sub.add_parser(
        "deploy", help="create or update flows (files, or folders of them) and namespace files on a kestra_nb "
                       "server or a Kestra cluster, in one request, as `kestra flow namespace update` does",
        description="Every *.yml / *.yaml of a folder (at any depth, hidden ones skipped) is a flow; its files/ "
                    "subfolder holds namespace files, uploaded at the same relative paths. Nothing is sent unless "
                    "every flow reads (each problem as FILE:LINE:COLUMN); the server's refusals name the file "
                    "and line too. Namespace files are added or replaced, never deleted (Kestra unpacks a .zip).")
    deploy.add_argument("flows", type=Path, nargs="+", metavar="FLOW.yml|DIR", help="flow files or folders")
    deploy.add_argument("--namespace", metavar="NS",
                        help="a namespace deploy (Kestra's `flow namespace update NS DIR`): every flow must be of NS")
    deploy.add_argument("--delete", action="store_true",
                        help="also delete the server's flows this deploy does not hold: those of --namespace, "
                             "or WITHOUT it every other flow of the tenant (Kestra's `flow updates --delete`)")
    deploy.add_argument("--files", type=Path, metavar="DIR",
                        help="upload this folder as namespace files (default: the files/ folder of a single DIR), "
                             "to --namespace or to the one namespace of the flows")
    _remote(deploy, required=True)
    return parser


def _remote(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--server", required=required, metavar="URL",
                        help="a kestra_nb server or a Kestra cluster (http://localhost:8080)")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD",
                        help="HTTP Basic credentials (default: KESTRA_NB_BASIC_AUTH)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="an API token, sent as `Authorization: Bearer TOKEN` (default: KESTRA_API_TOKEN, "
                             "which keeps it out of the shell's history)")
    parser.add_argument("--tenant", default="main", help="the tenant (default main; '' for tenant-less paths)")


def _ms(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    ms = delta.total_seconds() * 1000
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def print_summary(ex: Execution, errors: Sequence[str], out: TextIO) -> None:
    """State, outputs, a per-task timeline and the error logs, for a terminal."""
    out.write(f"{ex.namespace}.{ex.flow_id} (revision {ex.flow_revision}) execution {ex.id}: "
              f"{ex.state.current.value} in {_ms(ex.state.duration)}\n")
    if ex.outputs:
        out.write("outputs:\n")
        for key, value in ex.outputs.items():
            out.write(f"  {key}: {json.dumps(value, ensure_ascii=False)}\n")
    if ex.task_run_list:
        out.write("task runs:\n")
        width = max(len(tr.task_id) + (len(tr.value) + 3 if tr.value else 0) for tr in ex.task_run_list)
        for tr in ex.task_run_list:
            name = tr.task_id + (f" [{tr.value}]" if tr.value else "")
            out.write(f"  {name:<{width}}  {tr.state.current.value:<9} {_ms(tr.state.duration)}\n")
    for message in errors:
        out.write(f"error: {message}\n")


def _client(args: argparse.Namespace):  # -> KestraClient
    from .client import KestraClient

    return KestraClient.from_env(args.server, tenant=args.tenant or None, basic_auth=args.basic_auth,
                                 token=args.token)


def _run_remote(args: argparse.Namespace, source: str) -> int:
    from .client import _flow_key, _execution

    progress = Progress(sys.stderr if args.json else sys.stdout) if args.follow else None
    try:
        with _client(args) as client, _client(args) as logs:
            client.deploy(source)
            namespace, flow_id = _flow_key(source)
            try:
                doc = client.execute(namespace, flow_id, inputs=dict(args.input), labels=list(args.label),
                                     timeout=args.timeout,
                                     on_update=progress.follow(logs) if progress is not None else None)
            except BaseException:
                if progress is not None:
                    progress.stop(rest=False)
                raise
            if progress is not None:
                progress.stop()
            errors = [e.get("message", "") for e in client.logs(doc["id"], min_level="ERROR")]
    except KestraNbError as exc:
        return _report(args, exc)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return _exit_code(doc["state"]["current"])
    ex = _execution(doc)
    if ex is None:  # a document this version cannot read: print it as is
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return _exit_code(doc["state"]["current"])
    print_summary(ex, errors, sys.stdout)
    return _exit_code(ex.state.current.value)


class Progress:
    """An `on_update` that prints what each new execution document changed: the execution's state, and each
    task run as it reaches a new state (with the seconds since following began); with `follow(client)`, the
    execution's log lines as well, as the server streams them."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self.began = clock()
        self.state: str | None = None
        self.runs: dict[str, str] = {}
        self.lock = threading.Lock()     # (log lines come from another thread)
        self._logs: Any = None           # the client the log stream is read with
        self._follower: Any = None

    def follow(self, logs: Any) -> Progress:
        """Also print the log lines, streamed with the client `logs` from the first update on."""
        self._logs = logs
        return self

    def stop(self, rest: bool = True) -> None:
        """Stop the log stream, then (with `rest`) print the lines it did not bring."""
        if self._follower is None:
            return
        if not rest:
            self._follower.stop()
            return
        for entry in self._follower.finish():
            self.log(entry)

    def __call__(self, doc: Mapping[str, Any]) -> None:
        if self._logs is not None and self._follower is None:
            from .client import LogFollow

            self._follower = LogFollow(self._logs, str(doc.get("id")), self.log).start()
        with self.lock:
            elapsed = f"[{self.clock() - self.began:6.1f}s]"
            for run in doc.get("taskRunList") or ():
                state = (run.get("state") or {}).get("current")
                if self.runs.get(run.get("id")) != state:
                    self.runs[run.get("id")] = state
                    name = str(run.get("taskId")) + (f" [{run['value']}]" if run.get("value") else "")
                    self.out.write(f"{elapsed}   {name} {state}\n")
            state = (doc.get("state") or {}).get("current")
            if state != self.state:
                self.state = state
                self.out.write(f"{elapsed} execution {doc.get('id')} {state}\n")
            self.out.flush()

    def log(self, entry: Mapping[str, Any]) -> None:
        """Print one log entry (Kestra's LogEntry JSON)."""
        with self.lock:
            task = f"{entry.get('taskId')}: " if entry.get("taskId") else ""
            self.out.write(f"[{self.clock() - self.began:6.1f}s]     {entry.get('level', '')} {task}"
                           f"{entry.get('message', '')}\n")
            self.out.flush()


def _report(args: argparse.Namespace, exc: KestraNbError) -> int:
    """Print a run's error for a terminal (violations with line:column); the exit code."""
    if isinstance(exc, FlowValidationError):
        _print_violations(args.flow, exc)
        return 1
    print(f"kestra-nb: {exc}", file=sys.stderr)
    execution = getattr(exc, "execution", None)
    if execution is not None:
        print_summary(execution, [], sys.stderr)
    return 1


def _exit_code(state: str) -> int:
    return 0 if state in {s.value for s in OK_STATES} else 1


def _run(args: argparse.Namespace) -> int:
    from .engine import Engine, get_engine

    try:
        source = args.flow.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"kestra-nb: cannot read {args.flow}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.server:
        return _run_remote(args, source)
    if args.follow:
        print("kestra-nb run: --follow goes with --server URL (a run here prints its timeline at the end)",
              file=sys.stderr)
        return 2
    engine = Engine(args.home) if args.home else get_engine()
    try:
        from .engine.inputs import check_declared
        from .parsing import parse_flow

        check_declared(parse_flow(source), [name for name, _ in args.input])
        ex = engine.run(source, inputs=dict(args.input), labels=list(args.label), timeout=args.timeout)
    except KestraNbError as exc:
        return _report(args, exc)
    if args.json:
        print(json.dumps(ex.to_dict(), indent=2, ensure_ascii=False))
    else:
        errors = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
        print_summary(ex, errors, sys.stdout)
    return _exit_code(ex.state.current.value)


def _print_violations(path: Path, exc: FlowValidationError) -> None:
    for v in exc.violations:
        where = f"{path}:{v.line}:{v.column}" if v.line is not None else str(path)
        print(f"{where}: {v.path + ': ' if v.path else ''}{v.message}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    from .parsing import check_flow

    status = 0
    for path in args.flows:
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"kestra-nb: cannot read {path}: {exc.strerror}", file=sys.stderr)
            status = 1
            continue
        check = check_flow(source)
        if check.violations:
            _print_violations(path, FlowValidationError(check.violations))
            status = 1
        else:
            for info in check.infos:
                print(f"{path}: info: {info}")
            print(f"{path}: valid ({check.flow.namespace}.{check.flow.id})")
    return status


def _server(args: argparse.Namespace) -> int:
    from .api.auth import Credentials
    from .server import Server

    try:
        auth = Credentials.configure(args.basic_auth, args.token)
        server = Server(args.home, args.host, args.port, auth, grace=args.grace,
                        allow_hosts=tuple(args.allow_host), allow_origins=tuple(args.allow_origin))
        return server.run()
    except ValueError as exc:
        print(f"kestra-nb server: {exc}", file=sys.stderr)
        return 2
    except KestraNbError as exc:
        print(f"kestra-nb server: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kestra-nb server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _deploy(args: argparse.Namespace) -> int:
    """Upload the namespace files, then create or update every flow in one request (see kestra_nb.deploy)."""
    from .client import AuthenticationError, ServerUnreachableError
    from .deploy import DeployError, collect

    try:
        bundle = collect(args.flows, namespace=args.namespace, files=args.files)
    except DeployError as exc:
        for problem in exc.problems:
            print(f"kestra-nb: {problem}" if problem.file is None else str(problem), file=sys.stderr)
        return 1
    for warning in bundle.warnings:
        print(f"{warning} (warning)", file=sys.stderr)
    failed = 0
    try:
        with _client(args) as client:
            for local, path in bundle.files:
                try:
                    client.upload_namespace_file(bundle.namespace, path, local)
                except (AuthenticationError, ServerUnreachableError):
                    raise
                except KestraNbError as exc:
                    print(f"{local}: {exc}", file=sys.stderr)
                    failed += 1
                else:
                    print(f"{local}: uploaded to {bundle.namespace} as {path}")
            if failed:
                print(f"kestra-nb: {failed} namespace file(s) were not uploaded, so no flow was deployed",
                      file=sys.stderr)
                return 1
            if not bundle.documents:
                return 0
            try:
                flows = client.deploy_flows(bundle.body(), namespace=args.namespace, delete=args.delete)
            except FlowValidationError as exc:
                problems = bundle.locate(exc.violations)
                if any(problem.file is None for problem in problems):
                    # Kestra names no document in a bulk refusal: its check route says which one
                    problems = bundle.locate_checks(client.validate_flows(bundle.body())) or problems
                for problem in problems:
                    print(f"kestra-nb: {problem}" if problem.file is None else str(problem), file=sys.stderr)
                return 1
    except KestraNbError as exc:
        print(f"kestra-nb deploy: {exc}", file=sys.stderr)
        return 1
    for flow in flows:
        document = bundle.document_of(str(flow.get("namespace")), str(flow.get("id")))
        if document is None:   # Kestra lists the flows --delete removed as well
            print(f"deleted {flow.get('namespace')}.{flow.get('id')}")
        else:
            print(f"{document.file}: deployed {flow['namespace']}.{flow['id']} revision {flow.get('revision')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kestra-nb` console script."""
    try:
        return _main(argv)
    except BrokenPipeError:   # `kestra-nb run --json | head`: the reader has what it wanted; no traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())   # (so the flush at exit does not fail again)
        except (OSError, ValueError):
            pass
        return 128 + 13   # as a process killed by SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "server":
        return _server(args)
    if args.command == "deploy":
        return _deploy(args)
    if args.command in ("kill", "pause", "resume", "restart"):
        return _act(args)
    if args.command == "namespace":
        return cli_namespace.run(args)
    return _validate(args)


def _act(args: argparse.Namespace) -> int:
    """kill, pause, resume or restart an execution: in the local home (whichever process drives it, a restart
    then runs here until it ends), or on a server."""
    inputs = dict(getattr(args, "input", None) or [])
    try:
        if args.server:
            with _client(args) as client:
                if args.command == "resume":
                    client.resume(args.execution_id, inputs)
                elif args.command == "restart":
                    client.restart(args.execution_id)
                else:
                    getattr(client, args.command)(args.execution_id)
                state = client.get(args.execution_id)["state"]["current"]
        else:
            from .engine import Engine

            engine = Engine(args.home, recover=False)   # (it acts on one execution; a dead driver's is taken over)
            try:   # a restart this process drives (unless paused elsewhere) runs here until it ends
                target = engine.act(args.command, args.execution_id, inputs=inputs, wait=True)
                ex = engine.get_execution(target)
                state = ex.state.current.value if ex is not None else "deleted"
            finally:
                engine.close()
    except KestraNbError as exc:
        print(f"kestra-nb {args.command}: {exc}", file=sys.stderr)
        return 1
    print(f"Execution {args.execution_id}: {args.command} done, now {state}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
