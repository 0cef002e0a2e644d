"""What `kestra-nb deploy` sends: the flows and namespace files of a directory, gathered within budgets, each
YAML document traced back to the file and line it came from.

    DIR/               every *.yml / *.yaml at any depth is a flow (a file may hold several `---` documents)
    DIR/files/         namespace files, uploaded at the same relative paths (`files/scripts/etl.py` becomes
                       the namespace file `/scripts/etl.py`); `--files D` names another folder

Hidden files and folders (`.git`, `.github`, …) are skipped, a symbolic link is followed only to a file inside
the folder it was found in, and nothing is sent unless every flow document reads as YAML with an `id` and a
`namespace` (each problem is reported as `file:line:column: message`). The server checks the rest (its own
plugins, Kestra's rules); its answer is traced back to the files the same way (`locate`).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KestraNbError, Violation
from .parsing import split_documents_at
from .parsing.yamlpos import MAX_SOURCE, load
from .store.nsfiles import KESTRA_IGNORE, kestra_ignore

FLOW_SUFFIXES = (".yml", ".yaml")
FILES_FOLDER = "files"
MAX_FLOWS = 500                   # flow documents in one deploy (what a namespace update takes on the server)
MAX_FLOW_BYTES = MAX_SOURCE       # bytes of one flow file (what the parser reads)
MAX_FLOWS_BYTES = 32 * 1024 ** 2  # bytes of all the flows together (one request body)
MAX_FILES = 1000                  # namespace files in one deploy
MAX_FILE_BYTES = 512 * 1024 ** 2  # bytes of one namespace file (streamed, never read whole)
MAX_FILES_BYTES = 2 * 1024 ** 3   # bytes of all the namespace files together
MAX_ENTRIES = 20_000              # directory entries looked at while walking the folders
_INDEXED = re.compile(r"^flows\[(\d+)\](?:\.(.*))?$")
_PARENT = re.compile(r"(?:(?:^|\.)[^.\[\]]*|\[\d+\])$")   # the last `key`, `.key` or `[n]` of a path
_LEADING_PATH = re.compile(r"^([\w.\[\]-]+): ")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a file of the deploy: where (file, line, column) and what."""

    file: Path | None
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = "" if self.file is None else str(self.file) + "".join(
            f":{n}" for n in (self.line, self.column if self.line is not None else None) if n is not None)
        return f"{where}: {self.message}" if where else self.message


class DeployError(KestraNbError):
    """The flows or files of a deploy cannot be sent (or were refused); `problems` says where each one is."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Document:
    """One flow document of a file: its text, the line of the file it starts on, what it declares."""

    file: Path
    line: int
    source: str
    namespace: str
    id: str
    positions: dict[str, tuple[int, int]] = field(repr=False)

    def at(self, path: str = "", line: int | None = None, column: int | None = None) -> tuple[int, int | None]:
        """The (line, column) in the file of a position given in the document: a line of the document, or
        a path of the flow (`tasks[0].message`, Kestra's `flow.namespace`), else where the document starts."""
        if line is not None:
            return self.line + line - 1, column
        for candidate in (path, path.removeprefix("flow.")):
            while candidate:   # the path, else the nearest of its parents written (a missing key's mapping)
                if candidate in self.positions:
                    found_line, found_column = self.positions[candidate]
                    return self.line + found_line - 1, found_column
                parent = _PARENT.sub("", candidate, count=1)
                if parent == candidate:
                    break
                candidate = parent
        return self.line, None


@dataclass(slots=True)
class Bundle:
    """The flow documents and namespace files of one deploy."""

    documents: list[Document] = field(default_factory=list)
    files: list[tuple[Path, str]] = field(default_factory=list)   # (local file, namespace path "/a/b.py")
    namespace: str | None = None                                  # where the namespace files go
    warnings: list[Problem] = field(default_factory=list)         # sent all the same


    def body(self) -> str:
        """The documents as one multi-document YAML text (Kestra's bulk routes split it on `---` lines)."""
        return "---\n".join(d.source if d.source.endswith("\n") else d.source + "\n" for d in self.documents)

    def locate(self, violations: Iterable[Violation]) -> list[Problem]:
        """The server's violations (`flows[3].tasks[0].message`, at a line of that document) as problems of
        the files they are in."""
        out = []
        for v in violations:
            match = _INDEXED.match(v.path or "")
            index = int(match.group(1)) if match else (0 if len(self.documents) == 1 else None)
            if index is None or index >= len(self.documents):
                out.append(Problem(None, f"{v.path}: {v.message}" if v.path else v.message))
                continue
            doc = self.documents[index]
            path = (match.group(2) or "") if match else (v.path or "")
            line, column = doc.at(path, v.line, v.column)
            out.append(Problem(doc.file, f"{path}: {v.message}" if path else v.message, line, column))
        return out

    def locate_checks(self, results: Iterable[Any]) -> list[Problem]:
        """The problems of Kestra's `flows/validate` answer (one result per document, by `index`, with its
        `constraints` text), at the file and line of each document (or of the path its text starts with)."""
        out = []
        for result in results:
            if not isinstance(result, dict) or not result.get("constraints"):
                continue
            index = result.get("index")
            if not isinstance(index, int) or not 0 <= index < len(self.documents):
                continue
            doc, text = self.documents[index], str(result["constraints"])
            path = _LEADING_PATH.match(text)
            line, column = doc.at(path.group(1) if path else "")
            out.append(Problem(doc.file, text, line, column))
        return out

    def document_of(self, namespace: str, flow_id: str) -> Document | None:
        """The document that declares this flow."""
        return next((d for d in self.documents if d.namespace == namespace and d.id == flow_id), None)


def collect(paths: Sequence[Path], *, namespace: str | None = None, files: Path | None = None) -> Bundle:
    """The flows of `paths` (files, or folders walked for *.yml / *.yaml) and the namespace files of `files`
    (default: the `files/` folder of a single folder given); DeployError listing every problem."""
    problems: list[Problem] = []
    bundle = Bundle()
    budget = _Budget()
    flow_files: list[Path] = []
    for path in paths:
        if path.is_dir():
            flow_files.extend(_walk(path, budget, problems, skip=path / FILES_FOLDER, suffixes=FLOW_SUFFIXES))
            if files is None and (path / FILES_FOLDER).is_dir():
                if len(paths) == 1:
                    files = path / FILES_FOLDER
                else:
                    problems.append(Problem(path / FILES_FOLDER, "namespace files of one of several folders: "
                                                                 "deploy the folder alone, or name it with --files"))
        elif path.is_file():
            flow_files.append(path)
        else:
            problems.append(Problem(path, "no such file or folder"))
    total = 0
    for path in flow_files:
        text = _read_flow(path, problems)
        if text is None:
            continue
        total += len(text.encode("utf-8"))
        if total > MAX_FLOWS_BYTES:
            problems.append(Problem(path, f"the flows add up to more than {_size(MAX_FLOWS_BYTES)}; deploy them "
                                          "in several parts"))
            break
        for line, source in split_documents_at(text):
            document = _document(path, line, source, namespace, problems)
            if document is not None:
                bundle.documents.append(document)
    for doc in bundle.documents:
        inside = doc.source.find("---")
        if inside >= 0:
            bundle.warnings.append(Problem(doc.file, "holds `---` inside the flow: Kestra's bulk routes split "
                                                     "their body at every `---`, so a Kestra server may read "
                                                     "this flow cut in two (a kestra_nb server splits at `---` "
                                                     "lines only)", doc.line + doc.source.count("\n", 0, inside)))
    if len(bundle.documents) > MAX_FLOWS:
        problems.append(Problem(None, f"{len(bundle.documents)} flows; one deploy takes at most {MAX_FLOWS}"))
    _check_duplicates(bundle.documents, problems)
    if files is not None:
        bundle.files = _namespace_files(files, budget, problems)
        bundle.namespace = namespace or _single_namespace(bundle.documents, files, problems)
    if not bundle.documents and not bundle.files and not problems:
        problems.append(Problem(None, "nothing to deploy: no *.yml or *.yaml flow (and no namespace file) in "
                                      + ", ".join(str(p) for p in paths)))
    if problems:
        raise DeployError(problems)
    return bundle


# ---------------------------------------------------------------------------------------------- reading

@dataclass(slots=True)
class _Budget:
    entries: int = 0
    exceeded: bool = False


def _walk(root: Path, budget: _Budget, problems: list[Problem], *, skip: Path | None = None,
          suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The regular files under `root` (sorted, hidden ones and `skip` left out), within MAX_ENTRIES."""
    found: list[Path] = []
    real_root = root.resolve()
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or here / d != skip))
        for name in sorted(names):
            budget.entries += 1
            if budget.entries > MAX_ENTRIES:
                if not budget.exceeded:
                    budget.exceeded = True
                    problems.append(Problem(root, f"more than {MAX_ENTRIES} entries to look at; deploy a "
                                                  "smaller folder"))
                return found
            if name.startswith(".") or (suffixes is not None and not name.lower().endswith(suffixes)):
                continue
            path = here / name
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    problems.append(Problem(path, f"a symbolic link to {target}, outside {root}: not followed"))
                    continue
            if path.is_file():
                found.append(path)
    return found


def _read_flow(path: Path, problems: list[Problem]) -> str | None:
    try:
        size = path.stat().st_size
        if size > MAX_FLOW_BYTES:
            problems.append(Problem(path, f"{size} bytes; a flow file may have at most {MAX_FLOW_BYTES}"))
            return None
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(path, f"cannot read it: {exc.strerror or exc}"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.append(Problem(path, "not UTF-8 text (a flow is YAML in UTF-8)", line, column))
        return None


def _document(path: Path, line: int, source: str, namespace: str | None,
              problems: list[Problem]) -> Document | None:
    """The document if it reads as a mapping with a text `id` and `namespace` (and `namespace` matches)."""
    loaded = load(source)
    if loaded.violations:
        for v in loaded.violations:
            problems.append(Problem(path, v.message, *(
                (line + v.line - 1, v.column) if v.line is not None else (line, None))))
        return None
    doc: Any = loaded.value
    if not isinstance(doc, dict):
        problems.append(Problem(path, "a flow is a YAML mapping (id, namespace, tasks, …)", line))
        return None
    keys: dict[str, str] = {}
    for key in ("id", "namespace"):
        value = doc.get(key)
        position = loaded.positions.get(key)
        at = (line + position[0] - 1, position[1]) if position else (line, None)
        if not isinstance(value, str) or not value:
            problems.append(Problem(path, f"the flow needs an `{key}` (text)" if value is None else
                                    f"{key}: expected text, got {value!r}", *at))
        else:
            keys[key] = value
    if len(keys) < 2:
        return None
    if namespace is not None and keys["namespace"] != namespace:
        position = loaded.positions["namespace"]
        problems.append(Problem(path, f"namespace: `{keys['namespace']}`, but --namespace is `{namespace}` (a "
                                      "namespace deploy holds only that namespace's flows)",
                                line + position[0] - 1, position[1]))
        return None
    return Document(path, line, source, keys["namespace"], keys["id"], loaded.positions)


def _check_duplicates(documents: list[Document], problems: list[Problem]) -> None:
    seen: dict[tuple[str, str], Document] = {}
    for doc in documents:
        first = seen.setdefault((doc.namespace, doc.id), doc)
        if first is not doc:
            line, column = doc.at("id")
            problems.append(Problem(doc.file, f"flow {doc.namespace}.{doc.id} is also in {first.file}:"
                                              f"{first.at('id')[0]}", line, column))


def _namespace_files(root: Path, budget: _Budget, problems: list[Problem]) -> list[tuple[Path, str]]:
    if not root.is_dir():
        problems.append(Problem(root, "not a folder (--files names the folder of the namespace files)"))
        return []
    out: list[tuple[Path, str]] = []
    total = 0
    try:
        ignored = kestra_ignore(root)
    except (KestraNbError, OSError) as exc:
        problems.append(Problem(root / KESTRA_IGNORE, str(exc)))
        return []
    for path in _walk(root, budget, problems):
        relative = path.relative_to(root).as_posix()
        if ignored(relative):
            continue
        if relative.split("/", 1)[0] == "_flows":
            problems.append(Problem(path, "Kestra imports files under `_flows/` as flows: put flows beside "
                                          f"{FILES_FOLDER}/, not in it"))
            continue
        try:
            size = path.stat().st_size
        except OSError as exc:
            problems.append(Problem(path, f"cannot read it: {exc.strerror or exc}"))
            continue
        if size > MAX_FILE_BYTES:
            problems.append(Problem(path, f"{size} bytes; a namespace file may have at most {MAX_FILE_BYTES}"))
            continue
        total += size
        if total > MAX_FILES_BYTES:
            problems.append(Problem(root, f"the namespace files add up to more than {_size(MAX_FILES_BYTES)}; "
                                          "deploy them in several parts"))
            break
        out.append((path, "/" + relative))
    if len(out) > MAX_FILES:
        problems.append(Problem(root, f"{len(out)} namespace files; one deploy takes at most {MAX_FILES}"))
    return out


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


def _single_namespace(documents: list[Document], files: Path, problems: list[Problem]) -> str | None:
    namespaces = sorted({d.namespace for d in documents})
    if len(namespaces) == 1:
        return namespaces[0]
    problems.append(Problem(files, "give --namespace NS for the namespace files: the flows are in "
                            + (", ".join(namespaces) if namespaces else "no namespace")))
    return None


__all__ = ["Bundle", "DeployError", "Document", "Problem", "collect"]
