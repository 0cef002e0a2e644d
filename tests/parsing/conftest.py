"""Helpers for the parsing tests: a private registry with a test-only flowable task, violation tuples."""
from __future__ import annotations

import pytest

from kestra_nb.parsing import check_flow
from kestra_nb.tasks.base import Prop, Task
from kestra_nb.tasks.registry import Registry

class Box(Task):
    """A flowable task declaring every structured property kind, for the parser only."""

    type = "test.kestra_nb.flow.Box"
    aliases = ("test.old.Box",)
    flowable = True
    props = (
        Prop("tasks", "tasks", required=True),
        Prop("errors", "tasks"),
        Prop("cases", "task_map"),
        Prop("graph", "dag"),
        Prop("onResume", "inputs"),
        Prop("count", "int"),
        Prop("ratio", "number"),
        Prop("flag", "bool"),
        Prop("wait", "duration"),
        Prop("mode", "enum", choices=("FAST", "SLOW")),
        Prop("options", "map"),
        Prop("items", "list"),
        Prop("lines", "string_or_list"),
        Prop("old", "string", deprecated=True),
    )


@pytest.fixture(scope="session")
def box_registry() -> Registry:
    reg = Registry()
    reg.register(Box)
    return reg


def _problems(source: str, registry: Registry | None = None) -> list[tuple[str, str, int | None, int | None]]:
    return [(v.path, v.message, v.line, v.column) for v in check_flow(source, registry=registry).violations]


@pytest.fixture(scope="session")
def problems():
    """(path, message, line, column) of every violation of a source."""
    return _problems
