"""Kestra's core trigger conditions, with the cases of its condition tests (DayWeekTest, DayWeekInMonthTest,
WeekendTest, DateTimeBetweenTest, TimeBetweenTest, PublicHolidayTest, NotTest, OrTest, ExecutionLabelsTest,
ExecutionOutputsTest, HasRetryAttemptTest), then on real triggers: a Schedule skips the dates its
conditions exclude, a Flow trigger tests labels and outputs, and bad definitions are violations."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kestra_nb.engine.conditions import ConditionContext, holds
from kestra_nb.expressions import Renderer
from kestra_nb.parsing import check_flow
from tests.scheduler_rig import Rig, aio, trigger_violation

UTC = timezone.utc
C = "io.kestra.plugin.core.condition."
RENDERER = Renderer()


def ctx(doc: dict[str, Any] | None = None, **variables: Any) -> ConditionContext:
    return ConditionContext("company.team", "f", lambda text: RENDERER.render_string(text, variables), doc)


@pytest.mark.parametrize("date,day,expected", [("2013-09-08", "SUNDAY", True), ("2013-09-08", "MONDAY", False)])
def test_day_week(date, day, expected):
    assert holds({"type": C + "DayWeek", "date": date, "dayOfWeek": day}, ctx()) is expected


@pytest.mark.parametrize("date,day,which,expected", [
    ("2021-04-01", "MONDAY", "FIRST", False), ("2021-04-05", "MONDAY", "FIRST", True),
    ("2021-04-01", "THURSDAY", "FIRST", True), ("2021-04-01", "MONDAY", "LAST", False),
    ("2021-04-26", "MONDAY", "LAST", True), ("2021-04-12", "MONDAY", "SECOND", True),
    ("2021-04-19", "MONDAY", "THIRD", True), ("2021-04-26", "MONDAY", "FOURTH", True),
])
def test_day_week_in_month(date, day, which, expected):
    condition = {"type": C + "DayWeekInMonth", "date": date, "dayOfWeek": day, "dayInMonth": which}
    assert holds(condition, ctx()) is expected


@pytest.mark.parametrize("date,expected", [
    ("2013-09-08", True), ("2013-09-07", True), ("2013-09-09", False),
    ("{{ \"2013-09-08T15:19:12.000000+02:00\" | date(\"iso_local_date\") }}", True),
])
def test_weekend(date, expected):
    assert holds({"type": C + "Weekend", "date": date}, ctx()) is expected


@pytest.mark.parametrize("date,before,after,expected", [
    ("2013-09-08T16:19:12+02:00", "2013-09-08T16:20:12+02:00", "2013-09-08T16:18:12+02:00", True),
    ("2013-09-08T16:19:12+02:00", "2013-09-08T16:20:12+02:00", None, True),
    ("2013-09-08T16:19:12+02:00", None, "2030-01-01T00:00:00Z", False),
    ("{{ trigger.date }}", None, "2013-09-08T16:19:12+02:00", True),
])
def test_date_time_between(date, before, after, expected):
    condition = {"type": C + "DateTimeBetween", "date": date, **({"before": before} if before else {}),
                 **({"after": after} if after else {})}
    assert holds(condition, ctx(trigger={"date": "2024-01-01T00:00:00Z"})) is expected


@pytest.mark.parametrize("before,after,expected", [
    (None, "16:19:11+02:00", True), (None, "17:19:12+02:00", False),
    ("16:20:12+02:00", "16:18:12+02:00", True), ("16:20:12+02:00", None, True), ("16:18:12+02:00", None, False),
    ("14:20:12Z", "14:18:12Z", True),
])
def test_time_between(before, after, expected):
    condition = {"type": C + "TimeBetween", "date": "2024-02-21T16:19:12+02:00",
                 **({"before": before} if before else {}), **({"after": after} if after else {})}
    assert holds(condition, ctx()) is expected


@pytest.mark.parametrize("date,country,sub,expected", [
    ("2023-07-14", "FR", None, True), ("2023-03-08", "DE", "BE", True), ("2023-01-02", "FR", None, False),
    ("2023-03-08", "DE", None, False), ("2023-07-14", "{{ 'F' ~ 'R' }}", None, True),
])
def test_public_holiday(date, country, sub, expected):
    condition = {"type": C + "PublicHoliday", "date": date, "country": country,
                 **({"subDivision": sub} if sub else {})}
    assert holds(condition, ctx()) is expected


def test_not_and_or():
    sunday = {"type": C + "DayWeek", "date": "2013-09-08", "dayOfWeek": "SUNDAY"}
    monday = {"type": C + "DayWeek", "date": "2013-09-08", "dayOfWeek": "MONDAY"}
    assert holds({"type": C + "Not", "conditions": [monday]}, ctx())
    assert not holds({"type": C + "Not", "conditions": [monday, sunday]}, ctx())
    assert holds({"type": C + "Or", "conditions": [monday, sunday]}, ctx())
    assert not holds({"type": C + "Or", "conditions": [monday]}, ctx())


def doc(**extra: Any) -> dict[str, Any]:
    return {"id": "e", "namespace": "company.team", "flowId": "up", "state": {"current": "SUCCESS"}, **extra}


def test_execution_labels_outputs_and_retries():
    labelled = doc(labels=[{"key": "team", "value": "data"}, {"key": "env", "value": "prod"}])
    assert holds({"type": C + "ExecutionLabels", "labels": [["team", "data"]]}, ctx(labelled))
    assert not holds({"type": C + "ExecutionLabels", "labels": [["team", "data"], ["env", "dev"]]}, ctx(labelled))
    outputs = {"type": C + "ExecutionOutputs", "expression": "{{ trigger.outputs.answer == 42 }}"}
    assert holds(outputs, ctx(doc(outputs={"answer": 42}), trigger={"outputs": {"answer": 42}}))
    assert not holds(outputs, ctx(doc()))        # no outputs: false, the expression is not rendered
    attempts = [{"state": {"current": "FAILED"}}, {"state": {"current": "SUCCESS"}}]
    retried = doc(taskRunList=[{"attempts": attempts}])
    assert holds({"type": C + "HasRetryAttempt", "in": ["FAILED"]}, ctx(retried))
    assert not holds({"type": C + "HasRetryAttempt", "in": ["KILLED"]}, ctx(retried))
    assert not holds({"type": C + "HasRetryAttempt"}, ctx(doc(taskRunList=[{"attempts": attempts[:1]}])))


def test_flow_and_flow_namespace_conditions_test_the_trigger_flow():
    assert holds({"type": C + "FlowCondition", "namespace": "company.team", "flowId": "f"}, ctx())
    assert not holds({"type": C + "FlowCondition", "namespace": "company.team", "flowId": "g"}, ctx())
    assert holds({"type": C + "FlowNamespaceCondition", "namespace": "company", "prefix": True}, ctx())
    assert not holds({"type": C + "FlowNamespaceCondition", "namespace": "company"}, ctx())


@aio
async def test_a_schedule_skips_the_dates_its_conditions_exclude():
    rig = Rig(now=datetime(2024, 1, 5, 12, 0, tzinfo=UTC))     # a Friday
    rig.engine.deploy("""id: weekdays
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 10 * * *"
    conditions:
      - type: io.kestra.plugin.core.condition.Not
        conditions:
          - type: io.kestra.plugin.core.condition.Weekend
""")
    await rig.tick()
    fired = []
    for _ in range(4):       # Sat 6, Sun 7, Mon 8, Tue 9 at 10:00
        fired += [d["trigger"]["variables"]["date"] for d in await rig.tick(rig.now + timedelta(days=1))]
    assert fired == ["2024-01-08T10:00:00Z", "2024-01-09T10:00:00Z"]
    rig.close()


@aio
async def test_a_flow_trigger_with_labels_and_outputs_conditions():
    rig = Rig()
    rig.engine.deploy("""id: listener
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.executionId }}"
triggers:
  - id: when
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.core.models.conditions.types.ExecutionLabelsCondition
        labels:
          team: data
      - type: io.kestra.plugin.core.condition.ExecutionOutputs
        expression: "{{ trigger.outputs.answer > 40 }}"
""")
    await rig.tick()

    def upstream(team: str, answer: int) -> str:
        return f"""id: up
namespace: company.team
labels:
  team: {team}
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{answer}"
outputs:
  - id: answer
    type: INT
    value: "{{{{ outputs.r.value }}}}"
"""
    good = await rig.run(upstream("data", 42))
    await rig.run(upstream("web", 42))
    await rig.run(upstream("data", 1))
    assert [d["trigger"]["variables"]["executionId"] for d in await rig.tick()] == [good["id"]]
    rig.close()


SCHEDULE = "  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@daily\"\n    conditions:\n"
BAD = [
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.DayWeek\n        dayOfWeek: FUNDAY\n",
     "triggers[0].conditions[0].dayOfWeek", "expected one of [MONDAY"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.DayWeekInMonth\n        dayOfWeek: MONDAY\n",
     "triggers[0].conditions[0].dayInMonth", "must not be null"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.TimeBetween\n",
     "triggers[0].conditions[0].after", "Invalid condition with no before nor after"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.TimeBetween\n        after: \"10:00\"\n",
     "triggers[0].conditions[0].after", "expected a time with an offset"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.DateTimeBetween\n        before: tomorrow\n",
     "triggers[0].conditions[0].before", "expected a date-time with a zone"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.Not\n        conditions: []\n",
     "triggers[0].conditions[0].conditions", "must not be empty"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.Or\n        conditions:\n"
                "          - type: io.kestra.plugin.core.condition.ExecutionStatus\n",
     "triggers[0].conditions[0].conditions[0].type", "Unsupported condition type"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.PublicHoliday\n",
     "triggers[0].conditions[0].country", "kestra_nb has no default holiday calendar"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.PublicHoliday\n        country: XX\n",
     "triggers[0].conditions[0].country", "Unknown country 'XX'"),
    (SCHEDULE + "      - type: io.kestra.plugin.core.condition.PublicHoliday\n        country: DE\n"
                "        subDivision: ZZ\n", "triggers[0].conditions[0].subDivision", "Unknown subdivision 'ZZ' of DE"),
    ("  - id: fl\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.ExecutionLabels\n        labels: {}\n",
     "triggers[0].conditions[0].labels", "must not be empty"),
    ("  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    conditions:\n"
     "      - type: io.kestra.plugin.core.condition.ExecutionOutputs\n        expression: x\n",
     "triggers[0].conditions[0].type", "on a Webhook trigger"),
]


@pytest.mark.parametrize("trigger,path,message", BAD, ids=[b[1] + ":" + b[2][:24] for b in BAD])
def test_bad_conditions_are_violations(trigger, path, message):
    assert message in trigger_violation(trigger, path)


def test_schedule_conditions_are_deprecated_conditions():
    source = ("id: f\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"
              "    message: hi\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n"
              "    cron: \"@daily\"\n    scheduleConditions:\n      - type: io.kestra.plugin.core.condition.Weekend\n")
    result = check_flow(source)
    assert result.violations == []
    assert result.flow.triggers[0]["conditions"] == [{"type": C + "Weekend"}]
    assert "triggers[0].scheduleConditions" in result.deprecation_paths
