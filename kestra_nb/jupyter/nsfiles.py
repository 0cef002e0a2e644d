"""`%flow files …`: publish a notebook's files as namespace files, list them, delete them.

    %flow files upload etl.py sql/ --namespace company.team [--to /scripts]
    %flow files list company.team [/scripts]
    %flow files delete company.team /scripts/etl.py
    %flow files upload etl.py --namespace company.team --server http://kestra:8080 [--token $T] [--tenant main]

Uploads go to the engine's store (the home the Jupyter server and other kernels share), so flows run
anywhere on that home read them: `read('scripts/etl.py')`, `nsfile:///scripts/etl.py`, a script task's
`namespaceFiles`, a WorkingDirectory. A file keeps its name under `--to` (default `/`), a folder its tree.
With `--server URL`, the same commands act on that server's namespace files (a kestra_nb server or a Kestra
cluster, through Kestra's namespace-files API, with the `%%flow --server` credentials).
"""
from __future__ import annotations

import shlex
from contextlib import ExitStack
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from ..errors import KestraNbError
from ..store.nsfiles import normalize

USAGE = """%flow files upload LOCAL_PATH... --namespace NS [--to DIR]   publish files (folders with their tree)
%flow files list NAMESPACE [DIR]                            the namespace's files, with their size
%flow files delete NAMESPACE PATH                           delete a file or a folder
  each with [--server URL [--token TOKEN] [--tenant main]]: on that server's namespace files"""

UPLOAD = MagicArgumentParser(prog="%flow files upload", add_help=False,
                             description="Publish local files (and folders) as namespace files.")
UPLOAD.add_argument("paths", nargs="+", metavar="LOCAL_PATH", help="files or folders of the notebook's machine")
UPLOAD.add_argument("-n", "--namespace", required=True, metavar="NS", help="the namespace to publish to")
UPLOAD.add_argument("--to", default="/", metavar="DIR", help="the namespace folder to put them in (default /)")
LIST = MagicArgumentParser(prog="%flow files list", add_help=False)
LIST.add_argument("namespace", metavar="NAMESPACE")
LIST.add_argument("folder", nargs="?", default="/", metavar="DIR")
DELETE = MagicArgumentParser(prog="%flow files delete", add_help=False)
DELETE.add_argument("namespace", metavar="NAMESPACE")
DELETE.add_argument("path", metavar="PATH")
for _parser in (UPLOAD, LIST, DELETE):
    _parser.add_argument("--server", metavar="URL", help="a kestra_nb server or a Kestra cluster")
    _parser.add_argument("--token", metavar="TOKEN", help="with --server: a bearer token (default KESTRA_API_TOKEN)")
    _parser.add_argument("--tenant", default="main", help="with --server: the tenant (default main)")


def _parse(parser: MagicArgumentParser, words: list[str]) -> Any:
    try:
        return parser.parse_args(words)
    except UsageError:
        raise
    except SystemExit:   # pragma: no cover - MagicArgumentParser raises UsageError instead
        raise UsageError(f"{parser.prog}: invalid arguments; {USAGE}") from None


def files_command(engine: Any, line: str) -> None:
    """Run one `%flow files` command against the engine's namespace files, printing what it did."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%flow files: {exc}") from None
    command, rest = (words[0], words[1:]) if words else ("", [])
    parser = {"upload": UPLOAD, "list": LIST, "delete": DELETE}.get(command)
    if parser is None:
        raise UsageError(f"Unknown command `%flow files {command}`: use upload, list or delete\n{USAGE}")
    args = _parse(parser, rest)
    try:
        with ExitStack() as stack:
            files: Any = engine.store.storage.namespace_files
            where = ""
            if args.server:
                from ..client import KestraClient, RemoteNamespaceFiles

                files = RemoteNamespaceFiles(stack.enter_context(
                    KestraClient.from_env(args.server, tenant=args.tenant or None, token=args.token)))
                where = f" on {args.server}"
            elif args.token or args.tenant != "main":
                raise UsageError("%flow files: --token and --tenant go with --server URL")
            _files(files, command, args, where)
    except KestraNbError as exc:
        raise UsageError(f"%flow files {command}: {exc.message}") from None
    except OSError as exc:
        raise UsageError(f"%flow files {command}: {exc.strerror or exc}: {exc.filename or ''}") from None


def _files(files: Any, command: str, args: Any, where: str) -> None:
    if command == "upload":
        for local, path, revision in files.upload_local(args.namespace, args.paths, args.to):
            print(f"{local} -> nsfile://{args.namespace}{path}{where}"
                  + ("" if revision is None else f" (revision {revision})"))
    elif command == "list":
        folder = normalize(args.folder, allow_root=True)
        found = files.sizes(args.namespace, folder)
        if not found:
            print(f"No namespace files in {args.namespace}{'' if folder == '/' else ' under ' + folder}{where}")
        for path, size in found:
            print(f"{path}  {size} bytes")
    elif not files.delete(args.namespace, args.path):
        raise UsageError(f"%flow files delete: no file or folder {normalize(args.path)} in {args.namespace}{where}")
    else:
        print(f"Deleted {normalize(args.path)} from {args.namespace}{where}")


__all__ = ["USAGE", "files_command"]
