"""trigger.ScheduleOnDates, as ScheduleOnDatesTest and SchedulerScheduleOnDatesTest say: a new trigger starts
at its first date (even a past one), each date fires once, the next evaluation is the first date after
the last one fired, nothing fires after the last date; `recoverMissedSchedules` and conditions apply."""
from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kestra_nb.engine import Engine
from kestra_nb.engine.scheduler import Scheduler
from kestra_nb.parsing import check_flow
from kestra_nb.store.memory import MemoryStore

UTC = timezone.utc


def aio(test: Any) -> Any:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return run


def on_dates(extra: str = "") -> str:
    return f"""id: dated
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.date }}}}"
triggers:
  - id: dates
    type: io.kestra.plugin.core.trigger.ScheduleOnDates
    timezone: Europe/Paris
    dates:
      - 2024-01-01T09:59:00Z
      - 2024-01-01T10:31:00Z
      - 2024-01-01T10:32:00Z
{extra}"""


async def fired(engine: Engine, ids: list[str]) -> list[dict[str, Any]]:
    return [(await engine.wait_async(i)).to_dict()["trigger"]["variables"] for i in ids]


@aio
async def test_each_date_fires_once_from_the_first_one():
    engine = Engine(MemoryStore(), loop=asyncio.get_running_loop())
    now = [datetime(2024, 1, 1, 10, 30, tzinfo=UTC)]
    scheduler = Scheduler(engine, clock=lambda: now[0])
    engine.deploy(on_dates())
    first = await fired(engine, await scheduler.tick())       # the past first date fires (recover ALL)
    assert first == [{"date": "2024-01-01T10:59:00+01:00", "next": "2024-01-01T11:31:00+01:00"}]
    assert await scheduler.tick() == []
    now[0] += timedelta(minutes=5)                             # 10:35: the two others
    assert [v["date"] for v in await fired(engine, await scheduler.tick())] == [
        "2024-01-01T11:31:00+01:00", "2024-01-01T11:32:00+01:00"]
    now[0] += timedelta(days=1)
    assert await scheduler.tick() == []                        # after the last date: nothing more
    engine.store.close()


@aio
async def test_recover_last_and_conditions():
    engine = Engine(MemoryStore(), loop=asyncio.get_running_loop())
    scheduler = Scheduler(engine, clock=lambda: datetime(2024, 1, 1, 11, 0, tzinfo=UTC))
    engine.deploy(on_dates("    recoverMissedSchedules: LAST\n"))
    assert [v["date"] for v in await fired(engine, await scheduler.tick())] == ["2024-01-01T11:32:00+01:00"]
    engine.store.close()
    engine = Engine(MemoryStore(), loop=asyncio.get_running_loop())
    scheduler = Scheduler(engine, clock=lambda: datetime(2024, 1, 1, 11, 0, tzinfo=UTC))
    engine.deploy(on_dates("    conditions:\n      - type: io.kestra.plugin.core.condition.TimeBetween\n"
                           "        after: \"10:00:00Z\"\n"))
    assert [v["date"] for v in await fired(engine, await scheduler.tick())] == [
        "2024-01-01T11:31:00+01:00", "2024-01-01T11:32:00+01:00"]
    engine.store.close()


@pytest.mark.parametrize("dates,path,message", [
    ("    dates: []\n", "triggers[0].dates", "must not be empty"),
    ("    dates: [tomorrow]\n", "triggers[0].dates[0]", "expected a date-time with a zone"),
    ("    dates: [\"{{ now() }}\"]\n", "triggers[0].dates[0]", "kestra_nb needs the dates written out"),
    ("    timezone: Mars/Base\n    dates: [2024-01-01T00:00:00Z]\n", "triggers[0].timezone", "Invalid timezone"),
    ("    dates:\n" + "".join(f"      - 2024-01-01T00:00:{i % 60:02d}Z\n" for i in range(10_001)),
     "triggers[0].dates", "size must be between 1 and 10000"),
])
def test_bad_dates_are_violations(dates, path, message):
    source = ("id: f\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
              "    message: hi\ntriggers:\n  - id: d\n    type: io.kestra.plugin.core.trigger.ScheduleOnDates\n" + dates)
    result = check_flow(source)
    assert result.flow is None
    found = [v for v in result.violations if v.path == path]
    assert found and message in found[0].message, [(v.path, v.message) for v in result.violations]
