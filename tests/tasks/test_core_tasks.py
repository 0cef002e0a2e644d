"""Core runnable tasks (debug.Return, log.Log): what they output and what they log."""
from __future__ import annotations

from typing import Any

from kestra_nb.tasks.core import RETURN_LOG_CHARS


def _flow(fmt: str) -> str:
    return f"id: ret\nnamespace: company.team\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: {fmt}\n"


def test_return_logs_its_value_at_debug(engine: Any) -> None:
    ex = engine.run(_flow("hello"))
    assert ex.task_run_list[0].outputs == {"value": "hello"}
    assert [(e.level.value, e.message) for e in engine.store.list_logs(ex.id)] == [("DEBUG", "hello")]


def test_a_long_return_value_is_stored_once_and_logged_cut(engine: Any) -> None:
    ex = engine.run(_flow("\"{{ range(0, 19999) | join('') }}\""))
    value = ex.task_run_list[0].outputs["value"]
    assert len(value) > 50_000
    [entry] = engine.store.list_logs(ex.id)
    assert entry.message.startswith(value[:RETURN_LOG_CHARS] + "… (")
    assert entry.message.endswith(f"({len(value):,} characters in all: the output `value` holds them)")
    assert engine.store.get_execution(ex.id).task_run_list[0].outputs["value"] == value
