"""The task-run text the engine writes directly is byte for byte what encoding its Kestra dict gives."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from kestra_nb.model.execution import Attempt, Execution, ExecutionMetadata, Label, Level, LogEntry, TaskRun
from kestra_nb.model.jsonfmt import (
    ExecutionJson, dumps, format_instant, log_text, log_to_dict, task_run_text, task_run_to_dict,
)
from kestra_nb.model.state import State, StateType

T0 = datetime(2026, 12, 7, 5, 0, 0, 123456, tzinfo=timezone.utc)


def _state(*states: StateType, step: timedelta = timedelta(milliseconds=7)) -> State:
    state = State.new(StateType.CREATED, T0)
    for i, s in enumerate(states, 1):
        state.transition(s, T0 + step * i)
    return state


CASES = {
    "created": TaskRun("2xYz", "ex1", "company.team", "flow", "t1", _state()),
    "ended with outputs": TaskRun(
        "a", "ex1", "company.team", "flow", "t1", _state(StateType.RUNNING, StateType.SUCCESS),
        attempts=[Attempt(_state(StateType.RUNNING, StateType.SUCCESS))],
        outputs={"value": 'quote " back \\ slash, ünï 😀 \u2028 \x00', "when": T0, "d": timedelta(seconds=1.5),
                 "n": [1, 2.5, None, True]}),
    "in a loop": TaskRun("b", "ex1", "ns", "f", "child", _state(StateType.RUNNING), parent_task_run_id="p",
                         value="x\ny", iteration=3, dynamic=False, tenant_id=None, outputs={}),
    "worker attempt": TaskRun("c", "ex1", "ns", "f", "t", _state(StateType.RUNNING, StateType.FAILED),
                              attempts=[Attempt(_state(StateType.RUNNING, StateType.FAILED), worker_id="w",
                                                log_file="kestra:///log"), Attempt(_state(StateType.RUNNING))]),
    "whole seconds": TaskRun("d", "ex1", "ns", "f", "t", _state(StateType.RUNNING, StateType.SUCCESS,
                                                                step=timedelta(seconds=61)), attempts=[]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_task_run_text_is_the_encoded_dict(name: str) -> None:
    tr = CASES[name]
    assert task_run_text(tr) == dumps(task_run_to_dict(tr))


def test_a_reader_gets_the_dicts_of_what_the_writer_wrote() -> None:
    ex = Execution("ex1", "ns", "f", 1, _state(StateType.RUNNING), ExecutionMetadata(1, T0), "ex1",
                   list(CASES.values()), labels=[Label("system.correlationId", "ex1")])
    writer = ExecutionJson()
    document = writer.update(ex).detach()
    assert document() == json.loads(dumps(ex.to_dict()))   # (the JSON's values: instants as text)
    ex.task_run_list[2].state.transition(StateType.FAILED)   # (an open one: ended ones do not change)
    document = writer.update(ex).detach()
    assert document() == json.loads(dumps(ex.to_dict()))   # (the JSON's values: instants as text)


LOGS = {
    "task": LogEntry("company.team", "flow", T0, Level.DEBUG, 'a "quoted" ünï\nline', execution_id="ex1",
                     task_id="t", task_run_id="tr", attempt_number=1),
    "trigger": LogEntry("ns", "f", T0.replace(microsecond=0), Level.INFO, "", trigger_id="every", tenant_id=None,
                        deleted=True),
}


@pytest.mark.parametrize("name", list(LOGS))
def test_log_text_is_the_encoded_dict(name: str) -> None:
    assert log_text(LOGS[name]) == dumps(log_to_dict(LOGS[name]))


@pytest.mark.parametrize("dt, text", [
    (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc), "2026-01-02T03:04:05.120Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), "2026-01-02T03:04:05.123456Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.001Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 5), "2026-01-02T03:04:05.000005Z"),
])
def test_instants_are_javas(dt: datetime, text: str) -> None:
    assert format_instant(dt) == text
