"""Triggers: validation of their definitions, Schedule and Flow triggers on a fake clock, and the one-leader
rule across real server processes sharing one store."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from kestra_nb.engine import Engine
from kestra_nb.engine.scheduler import java_iso
from kestra_nb.parsing import check_flow
from kestra_nb.store.base import TriggerState
from kestra_nb.store.memory import MemoryStore
from kestra_nb.store.sqlite import SQLiteStore
from tests.scheduler_rig import Rig, aio

UTC = timezone.utc
HEAD = """id: {id}
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.date ?? trigger.executionId ?? '' }}}}"
"""


def flow(trigger: str, flow_id: str = "f", extra: str = "") -> str:
    return HEAD.format(id=flow_id) + extra + "triggers:\n" + trigger


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ validation

BAD_TRIGGERS = [
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"61 * * * *\"\n",
     "triggers[0].cron", "Invalid cron expression '61 * * * *'"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"* * * *\"\n",
     "triggers[0].cron", "expected 5 fields"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 0 * * * *\"\n",
     "triggers[0].cron", "6 fields need `withSeconds: true`"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@sometimes\"\n",
     "triggers[0].cron", "unknown macro"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n",
     "triggers[0].cron", "must not be null"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n    timezone: Mars/Base\n",
     "triggers[0].timezone", "Invalid timezone 'Mars/Base'"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n    backfill:\n"
     "      start: yesterday\n", "triggers[0].backfill.start", "expected a date-time with a zone"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n    lateMaximumDelay: soon\n",
     "triggers[0].lateMaximumDelay", "expected an ISO-8601 duration"),
    ("  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [SUCCESS]\n",
     "triggers[0].conditions[0].type", "Unsupported condition type 'io.kestra.plugin.core.condition.ExecutionStatus' "
                                       "on a Schedule trigger"),
    ("  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n", "triggers[0].key", "must not be null"),
    ("  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    responseCode: 42\n",
     "triggers[0].responseCode", "between 100 and 599"),
    ("  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    colour: red\n",
     "triggers[0].colour", 'Unrecognized field "colour"'),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.MultipleCondition\n",
     "triggers[0].conditions[0].id", "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.MultipleCondition\n        id: m\n",
     "triggers[0].conditions[0].conditions", "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.MultipleCondition\n        id: m\n        conditions: {}\n",
     "triggers[0].conditions[0].conditions", "must not be empty"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.MultipleCondition\n        id: m\n        conditions:\n"
     "          a:\n            type: io.kestra.plugin.core.condition.MultipleCondition\n",
     "triggers[0].conditions[0].conditions.a.type", "cannot be nested in another condition"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.MultipleCondition\n        id: m\n        conditions:\n"
     "          a:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n            namespace: n\n",
     "triggers[0].conditions[0].conditions.a.flowId", "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.MultipleCondition\n        id: m\n        window: soon\n"
     "        conditions:\n          a:\n            type: io.kestra.plugin.core.condition.ExecutionStatus\n",
     "triggers[0].conditions[0].window", "expected an ISO-8601 duration"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [DONE]\n",
     "triggers[0].conditions[0].in[0]", "found 'DONE'"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: a\n",
     "triggers[0].conditions[0].flowId", "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      flows: []\n",
     "triggers[0].preconditions.id", "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n", "triggers[0].preconditions.where[0].filters", "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - filters: [{field: STATE, type: EQUAL_TO, value: SUCCESS}]\n", "triggers[0].preconditions.where[0].id",
     "must not be null"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: []\n", "triggers[0].preconditions.where[0].filters", "must not be empty"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: [{field: COLOUR, type: EQUAL_TO, value: x}]\n",
     "triggers[0].preconditions.where[0].filters[0].field", "expected one of [FLOW_ID, NAMESPACE, STATE, EXPRESSION]"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: [{field: STATE, type: EQUAL_TO}]\n",
     "triggers[0].preconditions.where[0].filters[0].value", "`value` cannot be null for type EQUAL_TO"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: [{field: STATE, type: IN, value: x}]\n",
     "triggers[0].preconditions.where[0].filters[0].values", "`values` cannot be null for type IN"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: [{field: STATE, type: IN, value: x, values: [x]}]\n",
     "triggers[0].preconditions.where[0].filters[0].value", "`value` must be null for type IN"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: [{field: STATE, type: EQUAL_TO, value: x, values: [x]}]\n",
     "triggers[0].preconditions.where[0].filters[0].values", "`values` must be null for type EQUAL_TO"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      where:\n"
     "        - id: w\n          filters: [{field: FLOW_ID, type: REGEX, value: \"(\"}]\n",
     "triggers[0].preconditions.where[0].filters[0].value", "invalid pattern [(]"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        type: DAILY_TIME_DEADLINE\n", "triggers[0].preconditions.timeWindow.deadline",
     "Time window of type `DAILY_TIME_DEADLINE` must have a deadline."),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        type: DAILY_TIME_DEADLINE\n        deadline: \"09:00:00\"\n        window: PT1H\n",
     "triggers[0].preconditions.timeWindow.window", "Time window of type `DAILY_TIME_DEADLINE` cannot have a window."),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        type: DAILY_TIME_WINDOW\n        startTime: \"06:00:00\"\n",
     "triggers[0].preconditions.timeWindow.endTime", "Time window of type `DAILY_TIME_WINDOW` must have an end time."),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        type: SLIDING_WINDOW\n        windowAdvance: PT1H\n", "triggers[0].preconditions.timeWindow.windowAdvance",
     "Time window of type `SLIDING_WINDOW` cannot have a window advance."),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        type: DURATION_WINDOW\n        deadline: \"09:00\"\n", "triggers[0].preconditions.timeWindow.deadline",
     "Time window of type `DURATION_WINDOW` cannot have a deadline."),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        type: DAILY_TIME_DEADLINE\n        deadline: \"25:00\"\n", "triggers[0].preconditions.timeWindow.deadline",
     "expected a time of day (like 09:00:00), found '25:00'"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      timeWindow:\n"
     "        window: PT0S\n", "triggers[0].preconditions.timeWindow.window", "must be a positive duration"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: p\n      flows:\n"
     "        - namespace: a\n          states: [NOPE]\n", "triggers[0].preconditions.flows[0].states[0]", "found 'NOPE'"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    stopAfter: [NOPE]\n",
     "triggers[0].stopAfter[0]", "found 'NOPE'"),
]


@pytest.mark.parametrize("trigger,path,message", BAD_TRIGGERS, ids=[b[1] + ":" + b[2][:20] for b in BAD_TRIGGERS])
def test_bad_trigger_definitions_are_violations_with_line(trigger, path, message):
    result = check_flow(flow(trigger))
    assert result.flow is None
    matching = [v for v in result.violations if v.path == path]
    assert matching, [(v.path, v.message) for v in result.violations]
    violation = matching[0]
    assert message in violation.message
    assert violation.line is not None and violation.line >= 7 and violation.column is not None


def test_good_triggers_are_normalised():
    source = flow("""  - id: s
    type: io.kestra.core.models.triggers.types.Schedule
    cron: "*/5 * * * * *"
    withSeconds: true
    timezone: Europe/Paris
    backfill:
      start: 2024-01-01T00:00:00Z
  - id: d
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@daily"
  - id: fl
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition
        in: [SUCCESS]
    preconditions:
      id: upstream
      flows:
        - namespace: a
          flowId: b
          states: [SUCCESS]
      timeWindow:
        type: DURATION_WINDOW
        window: PT1H
""")
    result = check_flow(source)
    assert result.violations == []
    triggers = result.flow.triggers
    assert triggers[0]["type"] == "io.kestra.plugin.core.trigger.Schedule"
    assert triggers[2]["conditions"] == [{"type": "io.kestra.plugin.core.condition.ExecutionStatus", "in": ["SUCCESS"]}]
    assert "triggers[0]" in result.deprecation_paths and "triggers[2].conditions[0]" in result.deprecation_paths


# -------------------------------------------------------------------------------------------- Schedule

SCHEDULE = """  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
"""


@aio
async def test_schedule_fires_at_cron_dates_with_trigger_variables():
    rig = Rig()
    rig.engine.deploy(flow(SCHEDULE))
    assert await rig.tick() == []            # first sight: the next date after now, nothing missed fires
    state = rig.engine.store.get_trigger_state("company.team", "f", "hourly")
    assert state.next_date == at(2024, 1, 1, 11)
    assert await rig.tick(at(2024, 1, 1, 10, 59, 59)) == []
    [doc] = await rig.tick(at(2024, 1, 1, 11, 0, 0, 250000))
    assert doc["state"]["current"] == "SUCCESS"
    assert doc["trigger"] == {"id": "hourly", "type": "io.kestra.plugin.core.trigger.Schedule", "variables": {
        "date": "2024-01-01T11:00:00Z", "next": "2024-01-01T12:00:00Z", "previous": "2024-01-01T10:00:00Z"}}
    assert doc["scheduleDate"] == "2024-01-01T11:00:00Z"
    assert doc["taskRunList"][0]["outputs"] == {"value": "2024-01-01T11:00:00Z"}
    assert [label["key"] for label in doc["labels"]] == ["system.from", "system.correlationId"]
    assert await rig.tick(at(2024, 1, 1, 11, 30)) == []    # each date once
    state = rig.engine.store.get_trigger_state("company.team", "f", "hourly")
    assert (state.last_date, state.next_date) == (at(2024, 1, 1, 11), at(2024, 1, 1, 12))
    rig.close()


@aio
async def test_missed_dates_are_recovered_per_recover_missed_schedules():
    for policy, expected in (("ALL", ["12", "13", "14"]), ("LAST", ["14"]), ("NONE", [])):
        rig = Rig()
        extra = "" if policy == "ALL" else f"    recoverMissedSchedules: {policy}\n"
        rig.engine.deploy(flow(SCHEDULE + extra))
        await rig.tick()
        assert len(await rig.tick(at(2024, 1, 1, 11))) == 1
        docs = await rig.tick(at(2024, 1, 1, 14, 10))   # the scheduler was away from 11:00 to 14:10
        assert [d["trigger"]["variables"]["date"][11:13] for d in docs] == expected, policy
        assert rig.engine.store.get_trigger_state("company.team", "f", "hourly").next_date == at(2024, 1, 1, 15)
        rig.close()


@aio
async def test_late_maximum_delay_skips_late_dates():
    rig = Rig()
    rig.engine.deploy(flow(SCHEDULE + "    lateMaximumDelay: PT5M\n"))
    await rig.tick()
    assert await rig.tick(at(2024, 1, 1, 11, 6)) == []         # 6 minutes late: skipped
    assert len(await rig.tick(at(2024, 1, 1, 12, 4))) == 1     # 4 minutes late: fired
    rig.close()


@aio
async def test_timezone_and_inputs():
    rig = Rig()
    source = HEAD.format(id="f").replace("tasks:", """inputs:
  - id: who
    type: STRING
  - id: n
    type: INT
tasks:""").replace("trigger.date ?? trigger.executionId ?? ''", "inputs.who ~ '/' ~ inputs.n") + """triggers:
  - id: paris
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
    timezone: Europe/Paris
    inputs:
      who: "run of {{ trigger.date }}"
      n: 7
"""
    rig.engine.deploy(source)
    await rig.tick(at(2024, 7, 1, 10))
    assert rig.engine.store.get_trigger_state("company.team", "f", "paris").next_date == at(2024, 7, 2, 7)
    [doc] = await rig.tick(at(2024, 7, 2, 7))
    assert doc["trigger"]["variables"] == {"date": "2024-07-02T09:00:00+02:00", "next": "2024-07-03T09:00:00+02:00",
                                           "previous": "2024-07-01T09:00:00+02:00"}
    assert doc["inputs"] == {"who": "run of 2024-07-02T09:00:00+02:00", "n": 7}
    assert doc["taskRunList"][0]["outputs"] == {"value": "run of 2024-07-02T09:00:00+02:00/7"}
    rig.close()


@aio
async def test_bad_inputs_are_reported_not_raised():
    rig = Rig()
    source = HEAD.format(id="f").replace("tasks:", "inputs:\n  - id: n\n    type: INT\ntasks:") + SCHEDULE.join(
        ["triggers:\n", "    inputs:\n      n: nope\n"])
    rig.engine.deploy(source)
    await rig.tick()
    assert await rig.tick(at(2024, 1, 1, 11)) == []
    assert "cannot create the execution" in rig.scheduler.errors[-1] and "`n`" in rig.scheduler.errors[-1]
    assert await rig.tick(at(2024, 1, 1, 11, 1)) == []      # the date is consumed, not retried every tick
    rig.close()


@aio
async def test_backfill_fires_every_date_from_start_to_end_then_the_regular_schedule():
    rig = Rig()
    rig.engine.deploy(flow(SCHEDULE + "    backfill:\n      start: 2023-12-31T22:00:00Z\n"
                                      "      end: 2024-01-01T01:00:00Z\n"))
    docs = await rig.tick()
    assert [d["trigger"]["variables"]["date"] for d in docs] == [
        "2023-12-31T22:00:00Z", "2023-12-31T23:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"]
    assert docs[0]["trigger"]["variables"]["previous"] == "2023-12-31T21:00:00Z"
    assert rig.engine.store.get_trigger_state("company.team", "f", "hourly").next_date == at(2024, 1, 1, 11)
    assert await rig.tick() == []
    assert len(await rig.tick(at(2024, 1, 1, 11))) == 1
    rig.close()


@aio
async def test_six_fields_with_seconds():
    rig = Rig()
    rig.engine.deploy(flow("""  - id: fast
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/20 * * * * *"
    withSeconds: true
"""))
    await rig.tick(at(2024, 1, 1, 10, 30, 5))
    docs = await rig.tick(at(2024, 1, 1, 10, 31, 0))
    assert [d["trigger"]["variables"]["date"][14:] for d in docs] == ["30:20Z", "30:40Z", "31:00Z"]
    rig.close()


@aio
async def test_disabled_trigger_disabled_or_deleted_flow_do_not_fire():
    rig = Rig()
    store = rig.engine.store
    rig.engine.deploy(flow(SCHEDULE + "    disabled: true\n", "a"))
    rig.engine.deploy(flow(SCHEDULE, "b", extra="disabled: true\n"))
    rig.engine.deploy(flow(SCHEDULE, "c"))
    await rig.tick()
    assert [s.flow_id for s in store.list_trigger_states()] == ["c"]
    store.delete_flow("company.team", "c")
    assert await rig.tick(at(2024, 1, 1, 12)) == []
    assert store.list_trigger_states() == []              # a deleted flow's trigger state is forgotten
    # re-enabling starts again from the next date after that moment
    rig.engine.deploy(flow(SCHEDULE, "b"))
    assert await rig.tick(at(2024, 1, 1, 12, 30)) == []
    assert store.get_trigger_state("company.team", "b", "hourly").next_date == at(2024, 1, 1, 13)
    rig.close()


@aio
async def test_schedule_state_compare_and_set_on_sqlite(tmp_path):
    store = SQLiteStore(tmp_path)
    other = SQLiteStore(tmp_path)
    rig = Rig(store)
    rig.engine.deploy(flow(SCHEDULE))
    await rig.tick()
    state = store.get_trigger_state("company.team", "f", "hourly")
    assert other.put_trigger_state(TriggerState("company.team", "f", "hourly", version=0)) is None   # exists
    moved = other.put_trigger_state(state.__class__(**{**{s: getattr(state, s) for s in state.__slots__},
                                                       "next_date": at(2024, 1, 1, 13)}))
    assert moved is not None and moved.version == state.version + 1
    assert store.put_trigger_state(state) is None         # stale version: refused
    docs = await rig.tick(at(2024, 1, 1, 12, 30))          # the other writer moved it past 11:00 and 12:00
    assert docs == []
    assert store.claim_trigger_mark("k") and not other.claim_trigger_mark("k")
    assert store.prune_trigger_marks(datetime.now(UTC) + timedelta(seconds=1)) == 1
    other.close()
    rig.close()


@aio
async def test_one_leader_per_home_and_the_real_loop(tmp_path):
    first, second = Rig(SQLiteStore(tmp_path)), Rig(SQLiteStore(tmp_path))
    first.engine.deploy(flow(SCHEDULE + "    backfill:\n      start: 2024-01-01T08:00:00Z\n"))
    second.scheduler.lock.acquire()          # the second takes the lead first
    assert await first.scheduler.tick() == [] and not first.scheduler.leader
    # the real loop of the leader: the backfill dates are due at once, fired without waiting for a poll
    ended: list[str] = []
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        if getattr(event, "finished", False):
            ended.append(event.document["trigger"]["variables"]["date"])
            if len(ended) == 3:
                done.set()

    second.engine.subscribe(None, on_event)
    second.scheduler.start()
    await asyncio.wait_for(done.wait(), 30)
    assert sorted(ended) == ["2024-01-01T08:00:00Z", "2024-01-01T09:00:00Z", "2024-01-01T10:00:00Z"]
    await second.scheduler.stop()            # releases the lock: the other process may lead now
    assert await first.scheduler.tick() == [] and first.scheduler.leader
    assert int((tmp_path / "scheduler.lock").read_text()) == os.getpid()
    await first.scheduler.stop()
    first.close()
    second.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_trigger_states_marks_and_ended_executions(kind, tmp_path):
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path)
    try:
        assert store.get_trigger_state("ns", "f", "t") is None and store.list_trigger_states() == []
        first = store.put_trigger_state(TriggerState("ns", "f", "t", next_date=at(2024, 1, 1), data={"a": [1]}))
        assert first is not None and first.version == 1 and first.updated is not None
        assert store.put_trigger_state(TriggerState("ns", "f", "t")) is None          # version 0: taken
        stored = store.get_trigger_state("ns", "f", "t")
        assert (stored.next_date, stored.data, stored.version) == (at(2024, 1, 1), {"a": [1]}, 1)
        second = store.put_trigger_state(TriggerState("ns", "f", "t", last_date=at(2024, 1, 2), version=1))
        assert second.version == 2 and store.get_trigger_state("ns", "f", "t").next_date is None
        assert [s.trigger_id for s in store.list_trigger_states()] == ["t"]
        assert store.list_trigger_states(tenant="other") == []
        assert store.delete_trigger_state("ns", "f", "t") and not store.delete_trigger_state("ns", "f", "t")
        assert store.claim_trigger_mark("m") and not store.claim_trigger_mark("m")
        assert store.claim_trigger_mark("m", tenant="other")
        engine = Engine(store)
        try:
            ex = engine.run(HEAD.format(id="ended"), timeout=30)
            [ended] = store.ended_executions(at(2000, 1, 1))
            assert (ended.id, ended.flow_id, ended.state.value) == (ex.id, "ended", "SUCCESS")
            assert ended.end_date == ex.state.end_date
            assert store.ended_executions(ended.end_date) == []
        finally:
            engine.close()   # (closes the store too)
    finally:
        store.close()


def test_a_version_3_store_migrates_to_the_latest(tmp_path, monkeypatch):
    from kestra_nb.store import sqlite as sqlite_module

    with monkeypatch.context() as patch:
        patch.setattr(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS[:3])
        patch.setattr(sqlite_module, "SCHEMA_VERSION", 3)
        old = SQLiteStore(tmp_path)
        assert old.schema_version() == 3
        old.save_flow("ns", "f", flow(SCHEDULE))
        old.close()
    store = SQLiteStore(tmp_path)
    try:
        assert store.schema_version() == sqlite_module.SCHEMA_VERSION and store.get_flow("ns", "f") is not None
        assert store.put_trigger_state(TriggerState("ns", "f", "hourly")) is not None
        assert store.ended_executions(at(2000, 1, 1)) == []
    finally:
        store.close()


def test_java_iso():
    assert java_iso(at(2024, 1, 1, 0, 0, 0)) == "2024-01-01T00:00:00Z"
    assert java_iso(at(2024, 1, 1, 0, 0, 0).astimezone(timezone(timedelta(hours=-5)))) == "2023-12-31T19:00:00-05:00"


@aio
async def test_stop_after_stops_a_schedule_and_a_webhook():
    from kestra_nb.api.service import ApiService
    from kestra_nb.api.webhook import Webhooks
    from kestra_nb.errors import NotFoundError

    rig = Rig()
    failing = HEAD.format(id="f").replace("io.kestra.plugin.core.debug.Return", "io.kestra.plugin.core.execution.Fail")
    rig.engine.deploy(failing.replace('    format: "{{ trigger.date ?? trigger.executionId ?? \'\' }}"\n', "")
                      + "triggers:\n" + SCHEDULE + "    stopAfter: [FAILED]\n" + """  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
    wait: true
    stopAfter: [FAILED]
""")
    await rig.tick()
    [doc] = await rig.tick(at(2024, 1, 1, 11))
    assert doc["state"]["current"] == "FAILED"
    assert await rig.tick(at(2024, 1, 1, 13)) == []      # stopped: 12:00 and 13:00 do not fire
    assert rig.engine.store.get_trigger_state("company.team", "f", "hourly").data["stopped"] == "FAILED"
    service = ApiService(rig.engine)
    hooks = Webhooks(service)
    answer = await hooks.trigger("company.team", "f", "k")
    assert answer.status == 500
    await rig.tick(at(2024, 1, 1, 13, 1))
    with pytest.raises(NotFoundError, match="Webhook not found"):
        await hooks.trigger("company.team", "f", "k")
    service.close()
    rig.close()


# ------------------------------------------------------------------------------------------------ Flow

UPSTREAM = """id: upstream
namespace: company.team
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: maybe
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.fail }}"
    then:
      - id: boom
        type: io.kestra.plugin.core.execution.Fail
outputs:
  - id: answer
    type: INT
    value: 42
"""

DOWNSTREAM = """id: downstream
namespace: company.team
inputs:
  - id: got
    type: INT
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.flowId }} {{ trigger.state }} {{ inputs.got }}"
triggers:
  - id: after
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      got: "{{ trigger.outputs.answer ?? 0 }}"
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.team
        flowId: upstream
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
"""


@aio
async def test_flow_trigger_chains_two_flows_when_conditions_hold():
    rig = Rig()
    rig.engine.deploy(DOWNSTREAM)
    await rig.tick()
    up = await rig.engine.run_async(UPSTREAM)
    [doc] = await rig.tick()
    assert doc["flowId"] == "downstream" and doc["state"]["current"] == "SUCCESS"
    assert doc["trigger"] == {"id": "after", "type": "io.kestra.plugin.core.trigger.Flow", "variables": {
        "executionId": up.id, "namespace": "company.team", "flowId": "upstream", "flowRevision": 1,
        "state": "SUCCESS", "outputs": {"answer": 42}}}
    assert doc["taskRunList"][0]["outputs"] == {"value": "upstream SUCCESS 42"}
    assert await rig.tick() == []      # one ended execution fires once
    # not met: a FAILED upstream, and another flow
    await rig.engine.run_async(UPSTREAM, {"fail": True})
    await rig.engine.run_async(HEAD.format(id="other"))
    assert await rig.tick() == []
    rig.close()


@aio
async def test_flow_trigger_namespace_and_expression_conditions():
    rig = Rig()
    rig.engine.deploy("""id: watcher
namespace: audit
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.executionId }}"
triggers:
  - id: any
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: company
        comparison: PREFIX
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.flowId != 'skipme' }}"
""")
    await rig.tick()
    await rig.engine.run_async(HEAD.format(id="one"))
    await rig.engine.run_async(HEAD.format(id="skipme"))
    docs = await rig.tick()
    assert [d["trigger"]["variables"]["flowId"] for d in docs] == ["one"]
    rig.close()


@aio
async def test_preconditions_wait_for_every_listed_flow():
    rig = Rig()
    rig.engine.deploy("""id: joined
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: joined
triggers:
  - id: both
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: both
      flows:
        - namespace: company.team
          flowId: one
          states: [SUCCESS]
        - namespace: company.team
          flowId: two
""")
    await rig.tick()
    await rig.engine.run_async(HEAD.format(id="one"))
    assert await rig.tick() == []
    await rig.engine.run_async(HEAD.format(id="one"))
    assert await rig.tick() == []
    await rig.engine.run_async(HEAD.format(id="two"))
    [doc] = await rig.tick()
    assert doc["trigger"]["variables"]["flowId"] == "two"
    await rig.engine.run_async(HEAD.format(id="two"))     # reset after firing: `one` is needed again
    assert await rig.tick() == []
    rig.close()


@aio
async def test_flow_trigger_sees_executions_ended_in_another_process(tmp_path):
    rig = Rig(SQLiteStore(tmp_path))
    rig.engine.deploy(DOWNSTREAM)
    await rig.tick()
    other = Engine(SQLiteStore(tmp_path))      # a kernel: its own engine thread, the same file
    try:
        up = other.run(UPSTREAM, timeout=30)
    finally:
        other.close()
    [doc] = await rig.tick()
    assert doc["trigger"]["variables"]["executionId"] == up.id
    assert await rig.tick() == []
    rig.close()


# ------------------------------------------------------------------------------- two server processes

def _start_server(home: Path) -> tuple[subprocess.Popen[str], str]:
    """`kestra-nb server` on a free loopback port (port 0: the server prints the one it got)."""
    env = {**os.environ, "KESTRA_NB_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "kestra_nb.cli", "server", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()   # printed once listening
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    assert found, line
    return proc, found.group(1)


def _executions(url: str, flow_id: str, expected: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The flow's executions, once there are `expected` of them (or the deadline passed)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/api/v1/main/executions/search", params={"flowId": flow_id, "size": 100})
        results = r.json()["results"]
        if len(results) >= expected or time.monotonic() > deadline:
            return results
        time.sleep(0.1)   # another process fires: the store is all there is to watch from here


def test_two_server_processes_fire_each_date_once_and_the_survivor_takes_over(tmp_path):
    home = tmp_path / "home"
    a, url_a = _start_server(home)
    b, url_b = _start_server(home)
    procs = {a.pid: (a, url_a), b.pid: (b, url_b)}
    try:
        backfill = ("    backfill:\n      start: 2024-01-01T00:00:00Z\n      end: 2024-01-01T05:00:00Z\n")
        r = httpx.post(f"{url_b}/api/v1/main/flows", content=flow(SCHEDULE + backfill, "first").encode(),
                       headers={"Content-Type": "application/x-yaml"})
        assert r.status_code == 200, r.text
        results = _executions(url_a, "first", 6)
        time.sleep(1.5)   # more than a poll of both schedulers: nothing more may come
        results = _executions(url_a, "first", 7, timeout=0)
        dates = sorted(e["trigger"]["variables"]["date"] for e in results)
        assert dates == [f"2024-01-01T0{h}:00:00Z" for h in range(6)]
        leader = int((home / "scheduler.lock").read_text().strip())
        assert leader in procs
        proc, _ = procs.pop(leader)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        survivor, url = next(iter(procs.values()))
        r = httpx.post(f"{url}/api/v1/main/flows", content=flow(SCHEDULE + backfill.replace("05:00", "02:00"),
                                                                     "second").encode(),
                       headers={"Content-Type": "application/x-yaml"})
        assert r.status_code == 200
        results = _executions(url, "second", 3)
        assert sorted(e["trigger"]["variables"]["date"] for e in results) == [
            "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"]
        assert int((home / "scheduler.lock").read_text().strip()) == survivor.pid
        assert len(_executions(url, "first", 7, timeout=0)) == 6
    finally:
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for proc in (a, b):
            if proc.stdout:
                proc.stdout.close()
