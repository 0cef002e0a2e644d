"""`%flow files …`: publish a notebook's files as namespace files, list them, delete them.

    %flow files upload etl.py sql/ --namespace company.team [--to /scripts]
    %flow files list company.team [/scripts]
    %flow files delete company.team /scripts/etl.py

Uploads go to the engine's store (the home the Jupyter server and other kernels share), so flows run
anywhere on that home read them: `read('scripts/etl.py')`, `nsfile:///scripts/etl.py`, a script task's
`namespaceFiles`, a WorkingDirectory. A file keeps its name under `--to` (default `/`), a folder its tree.
"""
from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from ..errors import KestraNbError
from ..store.nsfiles import normalize

USAGE = """%flow files upload LOCAL_PATH... --namespace NS [--to DIR]   publish files (folders with their tree)
%flow files list NAMESPACE [DIR]                            the namespace's files, with their size
%flow files delete NAMESPACE PATH                           delete a file or a folder"""

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
    files = engine.store.storage.namespace_files
    try:
        if command == "upload":
            args = _parse(UPLOAD, rest)
            for local, path, revision in files.upload_local(args.namespace, args.paths, args.to):
                print(f"{local} -> nsfile://{args.namespace}{path} (revision {revision})")
        elif command == "list":
            args = _parse(LIST, rest)
            folder = normalize(args.folder, allow_root=True)
            paths = files.list(args.namespace, folder)
            if not paths:
                print(f"No namespace files in {args.namespace}{'' if folder == '/' else ' under ' + folder}")
            for path in paths:
                print(f"{path}  {files.attributes(args.namespace, path).size} bytes")
        elif command == "delete":
            args = _parse(DELETE, rest)
            if not files.delete(args.namespace, args.path):
                raise UsageError(f"%flow files delete: no file or folder {normalize(args.path)} in {args.namespace}")
            print(f"Deleted {normalize(args.path)} from {args.namespace}")
        else:
            raise UsageError(f"Unknown command `%flow files {command}`: use upload, list or delete\n{USAGE}")
    except KestraNbError as exc:
        raise UsageError(f"%flow files {command}: {exc.message}") from None
    except OSError as exc:
        raise UsageError(f"%flow files {command}: {exc.strerror or exc}: {exc.filename or ''}") from None


__all__ = ["USAGE", "files_command"]
