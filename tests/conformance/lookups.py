"""Kestra's Execution lookups that its tests use, over this project's Execution."""
from __future__ import annotations

from typing import Any


def parents_values(ex: Any, tr: Any) -> list[str]:
    """Kestra's Execution.findParentsValues(taskRun, withCurrent=true): the non-null values up the chain."""
    by_id = {t.id: t for t in ex.task_run_list}
    chain = [tr]
    while chain[-1].parent_task_run_id is not None:
        chain.append(by_id[chain[-1].parent_task_run_id])
    return [t.value for t in reversed(chain) if t.value is not None]


def by_values(ex: Any, task_id: str, values: list[str]) -> Any:
    """Kestra's Execution.findTaskRunByTaskIdAndValue: the one task run of `task_id` under those values."""
    (tr,) = [t for t in ex.task_run_list if t.task_id == task_id and parents_values(ex, t) == values]
    return tr
