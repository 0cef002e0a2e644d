"""docs/supported-types.md is true: every row's status is what the engine does, and every core type the
engine knows has a row."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kestra_nb.parsing import check_flow
from kestra_nb.parsing.triggers import SUPPORTED_CONDITIONS, SUPPORTED_TRIGGERS, UNSUPPORTED_TRIGGERS
from kestra_nb.tasks.registry import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "supported-types.md"
ROW = re.compile(r"^\| `([\w.]+)` \| (supported|refused) \|", re.M)


def rows(section: str) -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    part = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return ROW.findall(part)


def flow_with_task(kind: str) -> str:
    return f"id: f\nnamespace: company.team\ntasks:\n  - id: t\n    type: {kind}\n"


@pytest.mark.parametrize("kind,status", rows("Tasks"))
def test_task_rows(kind: str, status: str) -> None:
    known = registry.canonical(kind) == kind
    if status == "supported":
        assert known
    elif status == "refused":
        assert not known
        messages = [v.message for v in check_flow(flow_with_task(kind)).violations if v.path == "tasks[0].type"]
        assert messages and messages[0].startswith(f"Unsupported task type '{kind}': "), messages


def test_every_core_task_has_a_row() -> None:
    listed = {kind for kind, _ in rows("Tasks")}
    assert {n for n in registry.names() if n.startswith("io.kestra.plugin.core.")} <= listed


@pytest.mark.parametrize("kind,status", rows("Triggers"))
def test_trigger_rows(kind: str, status: str) -> None:
    assert (kind in SUPPORTED_TRIGGERS) is (status == "supported")
    assert (kind in UNSUPPORTED_TRIGGERS) is (status == "refused")


def test_every_trigger_and_condition_has_a_row() -> None:
    assert set(SUPPORTED_TRIGGERS) <= {kind for kind, _ in rows("Triggers")}
    conditions = {c for supported in SUPPORTED_CONDITIONS.values() for c in supported}
    assert conditions == {kind for kind, status in rows("Conditions") if status == "supported"}
