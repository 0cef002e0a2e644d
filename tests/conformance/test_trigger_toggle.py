"""trigger.Toggle, as Kestra's ToggleTest says (flows/valids/trigger-toggle.yaml, the legacy type name): a
trigger disabled in the store is enabled by the task; a disabled Schedule does not fire until enabled
again, then from the next date; a disabled Webhook answers 404 over HTTP; unknown flows and triggers
fail the task with Kestra's messages."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from kestra_nb.model.execution import Level
from kestra_nb.store.base import TriggerState
from kestra_nb.tasks.trigger import toggled_off
from tests.api.conftest import Http, http, server  # noqa: F401 - the HTTP fixtures, on a loopback port
from tests.scheduler_rig import Rig, aio

TOGGLE = """id: trigger-toggle
namespace: io.kestra.tests.trigger
tasks:
    - id: disable
      type: io.kestra.core.tasks.trigger.Toggle
      trigger: schedule
      enabled: true
triggers:
  - id: schedule
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * *"
"""
KEY = ("io.kestra.tests.trigger", "trigger-toggle", "schedule")


def toggler(enabled: bool, extra: str = "") -> str:
    return f"""id: toggler
namespace: io.kestra.tests.trigger
tasks:
  - id: toggle
    type: io.kestra.plugin.core.trigger.Toggle
    namespace: io.kestra.tests.trigger
    flowId: trigger-toggle
    trigger: schedule
    enabled: {str(enabled).lower()}
{extra}"""


def test_toggle_enables_a_trigger_disabled_in_the_store(engine: Any) -> None:
    # ToggleTest.toggle
    engine.deploy(TOGGLE)
    engine.store.put_trigger_state(TriggerState(*KEY, data={"disabled": True}))
    assert toggled_off(engine.store.get_trigger_state(*KEY))
    ex = engine.run(TOGGLE)
    assert ex.state == "SUCCESS" and len(ex.task_run_list) == 1
    assert not toggled_off(engine.store.get_trigger_state(*KEY))


@aio
async def test_a_disabled_schedule_does_not_fire_until_enabled_again() -> None:
    rig = Rig()

    async def tick(minutes: int) -> list[dict[str, Any]]:
        return await rig.tick(rig.now + timedelta(minutes=minutes))

    rig.engine.deploy(TOGGLE)
    await rig.tick()
    assert len(await tick(1)) == 1                         # 10:31 fires
    assert (await rig.run(toggler(False)))["state"]["current"] == "SUCCESS"
    assert await tick(1) == [] and await tick(5) == []     # disabled: nothing, the state is kept
    assert toggled_off(rig.engine.store.get_trigger_state(*KEY))
    await rig.run(toggler(True))
    assert await tick(0) == []                             # enabled at 10:37: the next date is 10:38
    [doc] = await tick(1)
    assert doc["trigger"]["variables"]["date"] == "2024-01-01T10:38:00Z"
    rig.close()


def test_toggle_of_an_unknown_flow_or_trigger_fails_with_kestra_messages(engine: Any) -> None:
    engine.deploy(TOGGLE)
    ex = engine.run(toggler(True).replace("flowId: trigger-toggle", "flowId: nope"))
    assert ex.state == "FAILED"
    messages = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any("Unable to find flow io.kestra.tests.trigger.nope. Make sure the flow exists and the current "
               "execution is authorized to access it." in m for m in messages), messages
    ex = engine.run(toggler(True).replace("trigger: schedule", "trigger: other"))
    assert ex.state == "FAILED"
    messages = [e.message for e in engine.store.list_logs(ex.id, min_level=Level.ERROR)]
    assert any("Unable to find trigger other for the flow io.kestra.tests.trigger.trigger-toggle" in m
               for m in messages), messages


def test_a_toggle_without_its_trigger_property_is_refused(engine: Any) -> None:
    from kestra_nb.parsing import check_flow

    result = check_flow(toggler(True).replace("    trigger: schedule\n", ""))
    assert result.flow is None
    assert [(v.path, v.message) for v in result.violations] == [("tasks[0].trigger", "must not be null")]


def test_a_disabled_webhook_answers_404(http: Http) -> None:
    http.deploy("""id: hooked
namespace: io.kestra.tests.trigger
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: hi
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
""")
    url = "/api/v1/main/executions/webhook/io.kestra.tests.trigger/hooked/k"
    assert http.post(url).status_code == 200
    http.deploy(toggler(False).replace("flowId: trigger-toggle", "flowId: hooked").replace("schedule", "hook"))
    assert http.run("io.kestra.tests.trigger", "toggler", params={"wait": "true"})["state"]["current"] == "SUCCESS"
    r = http.post(url)
    assert r.status_code == 404 and r.json()["message"] == "Not Found: Webhook not found"
