"""`kestra-nb namespace files upload|list|delete`: namespace files of a home from a terminal or CI.

    kestra-nb namespace files upload company.team etl.py sql/ [--to /scripts] [--home DIR]
    kestra-nb namespace files list company.team [/scripts]
    kestra-nb namespace files delete company.team /scripts/etl.py
    kestra-nb namespace files upload company.team etl.py --server http://kestra:8080 [--token T] [--tenant main]

They act on the home's store (KESTRA_NB_HOME or --home), which notebooks, `jupyter lab` and `kestra-nb
server` on that home share; a file keeps its name under `--to`, a folder its tree (as Kestra's `kestra
namespace files update NAMESPACE FROM TO` uploads a folder). With `--server URL` they act on that server's
namespace files instead (a kestra_nb server or a Kestra cluster, through Kestra's namespace-files API).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import KestraNbError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `namespace` command and its `files` sub-commands."""
    namespace = sub.add_parser("namespace", help="namespace files: upload, list, delete")
    nsub = namespace.add_subparsers(dest="namespace_command", required=True, help="`files`")
    files = nsub.add_parser("files", help="the files of a namespace (read by flows: read(), namespaceFiles)")
    fsub = files.add_subparsers(dest="files_command", required=True, help="upload, list or delete")
    upload = fsub.add_parser("upload", help="publish local files and folders as namespace files")
    upload.add_argument("namespace", help="the namespace")
    upload.add_argument("paths", nargs="+", type=Path, metavar="LOCAL_PATH", help="files or folders")
    upload.add_argument("--to", default="/", metavar="DIR", help="the namespace folder to put them in (default /)")
    listing = fsub.add_parser("list", help="the namespace's files and their size")
    listing.add_argument("namespace", help="the namespace")
    listing.add_argument("folder", nargs="?", default="/", metavar="DIR", help="only under this folder")
    delete = fsub.add_parser("delete", help="delete a file or a folder")
    delete.add_argument("namespace", help="the namespace")
    delete.add_argument("path", help="the file or folder (`/scripts/etl.py`)")
    for parser in (upload, listing, delete):
        parser.add_argument("--home", type=Path, help="the store's home directory (default: KESTRA_NB_HOME)")
        parser.add_argument("--server", metavar="URL", help="a kestra_nb server or a Kestra cluster instead of the home")
        parser.add_argument("--basic-auth", metavar="USER:PASSWORD",
                            help="with --server: HTTP Basic credentials (default: KESTRA_NB_BASIC_AUTH)")
        parser.add_argument("--token", metavar="TOKEN",
                            help="with --server: a bearer token (default: KESTRA_API_TOKEN)")
        parser.add_argument("--tenant", default="main", help="with --server: the tenant (default main)")


def run(args: argparse.Namespace) -> int:
    """Carry out a `namespace files` command; the exit code."""
    from contextlib import ExitStack

    from .store import open_store
    from .store.nsfiles import normalize

    command = args.files_command
    where = f" on {args.server}" if args.server else ""
    try:
        with ExitStack() as stack:
            if args.server:
                from .client import KestraClient, RemoteNamespaceFiles

                files: Any = RemoteNamespaceFiles(stack.enter_context(KestraClient.from_env(
                    args.server, tenant=args.tenant or None, basic_auth=args.basic_auth, token=args.token)))
            else:
                store = open_store(str(args.home) if args.home else None)
                stack.callback(store.close)
                files = store.storage.namespace_files
            if command == "upload":
                for local, path, revision in files.upload_local(args.namespace, args.paths, args.to):
                    print(f"{local} -> nsfile://{args.namespace}{path}{where}"
                          + ("" if revision is None else f" (revision {revision})"))
            elif command == "list":
                for path, size in files.sizes(args.namespace, normalize(args.folder, allow_root=True)):
                    print(f"{path}\t{size}")
            elif not files.delete(args.namespace, args.path):
                print(f"kestra-nb namespace files delete: no file or folder {normalize(args.path)} in "
                      f"{args.namespace}{where}", file=sys.stderr)
                return 1
            else:
                print(f"Deleted {normalize(args.path)} from {args.namespace}{where}")
    except KestraNbError as exc:
        print(f"kestra-nb namespace files {command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kestra-nb namespace files {command}: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 1
    return 0


__all__ = ["add_parser", "run"]
