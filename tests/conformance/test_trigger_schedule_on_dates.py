"""trigger.ScheduleOnDates, as ScheduleOnDatesTest and SchedulerScheduleOnDatesTest say: a new trigger starts
at its first date (even a past one), each date fires once, the next evaluation is the first date after
the last one fired, nothing fires after the last date; `recoverMissedSchedules` and conditions apply."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.scheduler_rig import Rig, aio, trigger_violation

UTC = timezone.utc


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


def dates_of(docs: list[dict[str, Any]]) -> list[str]:
    return [d["trigger"]["variables"]["date"] for d in docs]


@aio
async def test_each_date_fires_once_from_the_first_one():
    rig = Rig()
    rig.engine.deploy(on_dates())
    [first] = await rig.tick()                        # the past first date fires (recover ALL)
    assert first["trigger"]["variables"] == {"date": "2024-01-01T10:59:00+01:00", "next": "2024-01-01T11:31:00+01:00"}
    assert await rig.tick() == []
    assert dates_of(await rig.tick(rig.now + timedelta(minutes=5))) == [   # 10:35: the two others
        "2024-01-01T11:31:00+01:00", "2024-01-01T11:32:00+01:00"]
    assert await rig.tick(rig.now + timedelta(days=1)) == []             # after the last date: nothing more
    rig.close()


@aio
async def test_recover_last_and_conditions():
    eleven = datetime(2024, 1, 1, 11, 0, tzinfo=UTC)
    rig = Rig(now=eleven)
    rig.engine.deploy(on_dates("    recoverMissedSchedules: LAST\n"))
    assert dates_of(await rig.tick()) == ["2024-01-01T11:32:00+01:00"]
    rig.close()
    rig = Rig(now=eleven)
    rig.engine.deploy(on_dates("    conditions:\n      - type: io.kestra.plugin.core.condition.TimeBetween\n"
                               "        after: \"10:00:00Z\"\n"))
    assert dates_of(await rig.tick()) == ["2024-01-01T11:31:00+01:00", "2024-01-01T11:32:00+01:00"]
    rig.close()


@pytest.mark.parametrize("dates,path,message", [
    ("    dates: []\n", "triggers[0].dates", "must not be empty"),
    ("    dates: [tomorrow]\n", "triggers[0].dates[0]", "expected a date-time with a zone"),
    ("    dates: [\"{{ now() }}\"]\n", "triggers[0].dates[0]", "kestra_nb needs the dates written out"),
    ("    timezone: Mars/Base\n    dates: [2024-01-01T00:00:00Z]\n", "triggers[0].timezone", "Invalid timezone"),
    ("    dates:\n" + "".join(f"      - 2024-01-01T00:00:{i % 60:02d}Z\n" for i in range(10_001)),
     "triggers[0].dates", "size must be between 1 and 10000"),
])
def test_bad_dates_are_violations(dates, path, message):
    trigger = "  - id: d\n    type: io.kestra.plugin.core.trigger.ScheduleOnDates\n" + dates
    assert message in trigger_violation(trigger, path)
