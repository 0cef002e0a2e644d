"""Flow YAML -> `Flow`: every violation at once, each with its path (`tasks[2].format`) and line:column.

The engine, the API and the CLI import exactly this API. `parse_flow` caches by source text, so reloading
a stored revision costs a dict lookup; the cached `Flow` is shared and must not be mutated.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from threading import Lock

from ..errors import FlowValidationError
from ..model.flow import Flow
from ..tasks.registry import Registry, registry as _registry
from .flow import FlowCheck, check
from .javaregex import compile_java

__all__ = ["FlowCheck", "check_flow", "clear_cache", "compile_java", "parse_flow", "split_documents", "split_documents_at"]

CACHE_SIZE = 256
_cache: OrderedDict[str, FlowCheck] = OrderedDict()
_lock = Lock()


def check_flow(source: str, *, registry: Registry | None = None) -> FlowCheck:
    """Validate a flow source and report violations, infos and deprecations; never raises for bad input."""
    if registry is not None and registry is not _registry:
        return check(source, registry)   # a private registry (tests, tools) bypasses the shared cache
    with _lock:
        hit = _cache.get(source)
        if hit is not None:
            _cache.move_to_end(source)
            return hit
    result = check(source, _registry)
    with _lock:
        _cache[source] = result
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def parse_flow(source: str) -> Flow:
    """Parse a flow source into a `Flow` (cached by text); raise FlowValidationError listing every violation."""
    result = check_flow(source)
    if result.flow is None:
        raise FlowValidationError(result.violations)
    return result.flow


def clear_cache() -> None:
    """Forget cached parses (after registering or removing task types)."""
    with _lock:
        _cache.clear()


_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_CONTENT = re.compile(r"^[ \t]*[^\s#]", re.MULTILINE)


def split_documents(source: str) -> list[str]:
    """Split a multi-document YAML text on its `---` lines; documents without content are dropped."""
    return [text for _, text in split_documents_at(source)]


def split_documents_at(source: str) -> list[tuple[int, str]]:
    """`split_documents`, each document with the line of `source` it starts on (1-based)."""
    docs = []
    start, line = 0, 1
    for match in [*_SEPARATOR.finditer(source), None]:
        end = match.start() if match is not None else len(source)
        part = source[start:end]
        if _CONTENT.search(part):
            # a separator's own newline stays with neither document (nor a newline the text starts with)
            docs.append((line + 1, part[1:]) if part.startswith("\n") and not start else (line, part))
        if match is not None:
            line += source.count("\n", start, match.end()) + 1
            start = match.end() + 1 if source.startswith("\n", match.end()) else match.end()
    return docs
