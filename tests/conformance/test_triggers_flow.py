"""Flow triggers with MultipleCondition and `preconditions`, as Kestra's MultipleConditionTriggerCaseTest,
FlowTriggerCaseTest and AbstractMultipleConditionStorageTest say, on the flows of Kestra's corpus
(flows/valids/trigger-multiplecondition-*.yaml, flow-trigger-preconditions-*.yaml, trigger-flow*.yaml).
The scheduler runs on a fake clock: `tick()` evaluates what ended since the last one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kestra_nb.engine.conditions import window_bounds
from kestra_nb.store.sqlite import SQLiteStore
from tests.scheduler_rig import Rig, aio

UTC = timezone.utc
NS = "io.kestra.tests.trigger"


def returning(flow_id: str, namespace: str = NS, extra: str = "") -> str:
    return f"""id: {flow_id}
namespace: {namespace}
{extra}tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "from parents: {{{{execution.id}}}}"
"""


FLOW_C = f"""id: trigger-multiplecondition-flow-c
namespace: {NS}
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"""

MULTIPLE_LISTENER = f"""id: trigger-multiplecondition-listener
namespace: {NS}
tasks:
  - id: only-listener
    type: io.kestra.plugin.core.debug.Return
    format: "childs"
triggers:
  - id: multiple-listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - id: multiple
        type: io.kestra.plugin.core.condition.MultipleCondition
        window: P1D
        windowAdvance: P0D
        conditions:
          success:
            type: io.kestra.plugin.core.condition.ExecutionStatus
            in:
              - SUCCESS
          flow-a:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {NS}
            flowId: trigger-multiplecondition-flow-a
          flow-b:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {NS}
            flowId: trigger-multiplecondition-flow-b
"""

MULTIPLE_FAILED = f"""id: trigger-multiplecondition-failed
namespace: {NS}
tasks:
  - id: only-listener
    type: io.kestra.plugin.core.debug.Return
    format: "childs"
triggers:
  - id: multiple-listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in:
          - SUCCESS
      - id: multiple
        type: io.kestra.plugin.core.condition.MultipleCondition
        window: P1D
        windowAdvance: P0D
        conditions:
          flow-a:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {NS}
            flowId: trigger-multiplecondition-flow-d
          flow-b:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {NS}
            flowId: trigger-multiplecondition-flow-c
"""

PRE_NS = "io.kestra.tests.trigger.preconditions"
PRECONDITIONS_LISTEN = f"""id: flow-trigger-preconditions-flow-listen
namespace: {PRE_NS}
triggers:
  - id: flow
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: flow
      flows:
        - namespace: {PRE_NS}
          flowId: flow-trigger-preconditions-flow-a
          states: [SUCCESS, WARNING, FAILED]
        - namespace: {PRE_NS}
          flowId: flow-trigger-preconditions-flow-b
          states: [SUCCESS]
      where:
        - id: flow1
          filters:
            - field: NAMESPACE
              type: STARTS_WITH
              value: io.kestra.tests.trigger
            - field: FLOW_ID
              type: EQUAL_TO
              value: flow-trigger-preconditions-flow-a
            - field: EXPRESSION
              type: IS_TRUE
              value: "{{{{labels.some == 'label'}}}}"
        - id: flow2
          filters:
            - field: NAMESPACE
              type: ENDS_WITH
              value: trigger.preconditions
            - field: FLOW_ID
              type: EQUAL_TO
              value: flow-trigger-preconditions-flow-b
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "It works"
"""


@aio
async def test_multiple_condition_fires_once_both_flows_succeeded():
    # MultipleConditionTriggerCaseTest.trigger
    rig = Rig()
    rig.engine.deploy(MULTIPLE_LISTENER)
    await rig.tick()
    a = await rig.run(returning("trigger-multiplecondition-flow-a"))
    assert a["state"]["current"] == "SUCCESS" and len(a["taskRunList"]) == 1
    assert await rig.tick() == []                   # flow-a alone is not enough
    b = await rig.run(returning("trigger-multiplecondition-flow-b"))
    [listener] = await rig.tick()
    assert listener["flowId"] == "trigger-multiplecondition-listener"
    assert listener["state"]["current"] == "SUCCESS" and len(listener["taskRunList"]) == 1
    variables = listener["trigger"]["variables"]
    assert (variables["executionId"], variables["namespace"], variables["flowId"]) == (
        b["id"], NS, "trigger-multiplecondition-flow-b")
    # reset on success: flow-b again is not enough, flow-a is needed again
    await rig.run(returning("trigger-multiplecondition-flow-b"))
    assert await rig.tick() == []
    await rig.run(returning("trigger-multiplecondition-flow-a"))
    assert [d["flowId"] for d in await rig.tick()] == ["trigger-multiplecondition-listener"]


@aio
async def test_a_failed_execution_filtered_by_a_plain_condition_does_not_count():
    # MultipleConditionTriggerCaseTest.failed: flow-c FAILS (ExecutionStatus SUCCESS filters it out before
    # the MultipleCondition), so flow-d alone never fires trigger-multiplecondition-failed
    rig = Rig()
    rig.engine.deploy(MULTIPLE_FAILED)
    rig.engine.deploy(f"""id: trigger-flow-listener-namespace-condition
namespace: {NS}
tasks:
  - id: only-listener
    type: io.kestra.plugin.core.debug.Return
    format: "simple return"
triggers:
  - id: listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: {NS}
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in:
          - SUCCESS
""")
    await rig.tick()
    c = await rig.run(FLOW_C)
    assert c["state"]["current"] == "FAILED"
    assert await rig.tick() == []
    await rig.run(returning("trigger-multiplecondition-flow-d"))
    fired = await rig.tick()
    assert [d["flowId"] for d in fired] == ["trigger-flow-listener-namespace-condition"]
    assert fired[0]["state"]["current"] == "SUCCESS"


@aio
async def test_preconditions_with_flows_and_where_filters():
    # MultipleConditionTriggerCaseTest.flowTriggerPreconditions
    rig = Rig()
    rig.engine.deploy(PRECONDITIONS_LISTEN)
    await rig.tick()
    flow_a = returning("flow-trigger-preconditions-flow-a", PRE_NS, "labels:\n  some: label\n")
    for _ in range(2):
        a = await rig.run(flow_a)
        assert a["state"]["current"] == "SUCCESS"
        assert await rig.tick() == []
    await rig.run(returning("flow-trigger-preconditions-flow-b", PRE_NS))
    [listen] = await rig.tick()
    assert listen["flowId"] == "flow-trigger-preconditions-flow-listen"
    assert listen["state"]["current"] == "SUCCESS" and len(listen["taskRunList"]) == 1


@aio
async def test_where_expression_sees_the_upstream_labels():
    # the `labels.some == 'label'` filter of flow1: flow-a without that label never satisfies it
    rig = Rig()
    rig.engine.deploy(PRECONDITIONS_LISTEN)
    await rig.tick()
    await rig.run(returning("flow-trigger-preconditions-flow-a", PRE_NS, "labels:\n  some: other\n"))
    await rig.run(returning("flow-trigger-preconditions-flow-b", PRE_NS))
    assert await rig.tick() == []


def _listener(preconditions: str) -> str:
    return f"""id: listener
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.flowId }}}}"
triggers:
  - id: upstreams
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: pre
{preconditions}"""


UPSTREAMS = """      flows:
        - namespace: company.team
          flowId: a
        - namespace: company.team
          flowId: b
"""


@aio
async def test_reset_on_success_false_fires_again_within_the_window():
    # Flow.Preconditions.resetOnSuccess: false keeps the results, each further match fires
    rig = Rig()
    rig.engine.deploy(_listener("      resetOnSuccess: false\n" + UPSTREAMS))
    await rig.tick()
    await rig.run(returning("a", "company.team"))
    await rig.run(returning("b", "company.team"))
    assert len(await rig.tick()) == 1
    await rig.run(returning("b", "company.team"))
    assert len(await rig.tick()) == 1
    # a new day is a new window: the results are gone
    await rig.run(returning("b", "company.team"))
    assert await rig.tick(rig.now + timedelta(days=1)) == []


@aio
async def test_results_expire_with_their_duration_window():
    rig = Rig()
    rig.engine.deploy(_listener("      timeWindow:\n        window: PT1H\n" + UPSTREAMS))
    await rig.tick()
    await rig.run(returning("a", "company.team"))
    assert await rig.tick() == []                                   # 10:30, window 10:00-11:00
    await rig.run(returning("b", "company.team"))
    assert await rig.tick(rig.now + timedelta(hours=1)) == []      # 11:30: a's result is in the past window
    await rig.run(returning("a", "company.team"))
    assert len(await rig.tick()) == 1


@aio
async def test_daily_time_deadline_counts_nothing_after_the_deadline():
    rig = Rig()
    rig.engine.deploy(_listener('      timeWindow:\n        type: DAILY_TIME_DEADLINE\n        deadline: "09:00:00"\n'
                                + UPSTREAMS))
    await rig.tick()
    await rig.run(returning("a", "company.team"))
    await rig.run(returning("b", "company.team"))
    assert await rig.tick() == []                 # 10:30 is past 09:00
    await rig.run(returning("a", "company.team"))
    await rig.tick(datetime(2024, 1, 2, 8, 0, tzinfo=UTC))
    await rig.run(returning("b", "company.team"))
    assert len(await rig.tick(datetime(2024, 1, 2, 8, 30, tzinfo=UTC))) == 1


@aio
async def test_window_results_survive_a_restart(tmp_path):
    # the results are in the store: a new process (engine and scheduler) completes the window
    rig = Rig(SQLiteStore(tmp_path))
    rig.engine.deploy(_listener(UPSTREAMS))
    await rig.tick()
    await rig.run(returning("a", "company.team"))
    assert await rig.tick() == []
    await rig.scheduler.stop()     # the process ends: its leader lock goes with it
    rig.engine.store.close()
    again = Rig(SQLiteStore(tmp_path))
    await again.tick()
    await again.run(returning("b", "company.team"))
    assert [d["trigger"]["variables"]["flowId"] for d in await again.tick()] == ["b"]
    state = again.engine.store.get_trigger_state("company.team", "listener", "upstreams")
    assert state is not None and state.data.get("windows") == {}    # reset after firing
    again.engine.store.close()


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 5, 17, hour, minute, second, tzinfo=UTC)


def test_window_bounds():
    # AbstractMultipleConditionStorageTest: allDefault, daily, dailyAdvance, hourly, minutely, deadline, window
    day = timedelta(days=1)
    assert window_bounds({}, at(10, 30)) == (at(0), at(0) + day)
    assert window_bounds({"window": "P1D", "windowAdvance": "PT0S"}, at(10, 30)) == (at(0), at(0) + day)
    assert window_bounds({"window": "P1D", "windowAdvance": "-PT4H"}, at(10, 30)) == (at(20) - day, at(20))
    assert window_bounds({"window": "PT1H"}, at(10, 30)) == (at(10), at(11))
    start, end = window_bounds({"window": "PT15M", "windowAdvance": "-PT5M"}, at(10, 31))
    assert (start.minute, end.minute) == (25, 40) and start <= at(10, 31) < end
    assert window_bounds({"type": "SLIDING_WINDOW", "window": "PT1H"}, at(10, 30, 5)) == (at(10, 30, 5),
                                                                                         at(11, 30, 5))
    assert window_bounds({"type": "DAILY_TIME_DEADLINE", "deadline": "09:00"}, at(8)) == (at(0), at(9))
    assert window_bounds({"type": "DAILY_TIME_WINDOW", "startTime": "06:00:00", "endTime": "09:00:00"},
                         at(8)) == (at(6), at(9))


LISTENERS = [f"""id: trigger-flow-listener
namespace: {NS}
inputs:
  - id: from-parent
    type: STRING
tasks:
  - id: only-listener
    type: io.kestra.plugin.core.debug.Return
    format: "childs: {{{{inputs['from-parent']}}}}"
triggers:
  - id: listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      from-parent: '{{{{ outputs.only.value }}}}'
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in:
          - SUCCESS
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {NS}
        flowId: trigger-flow
""", f"""id: trigger-flow-listener-no-inputs
namespace: {NS}
tasks:
  - id: only-no-input
    type: io.kestra.plugin.core.debug.Return
    format: "v1: {{{{trigger.executionId}}}}"
triggers:
  - id: listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in:
          - SUCCESS
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {NS}
        flowId: trigger-flow
"""]


@aio
async def test_flow_trigger_inputs_from_the_upstream_task_outputs():
    # FlowTriggerCaseTest.trigger: trigger-flow-listener renders `{{ outputs.only.value }}` of trigger-flow
    rig = Rig()
    for source in LISTENERS:
        rig.engine.deploy(source)
    await rig.tick()
    up = await rig.run(returning("trigger-flow"))
    docs = {d["flowId"]: d for d in await rig.tick()}
    assert set(docs) == {"trigger-flow-listener", "trigger-flow-listener-no-inputs"}
    listener = docs["trigger-flow-listener"]
    assert listener["state"]["current"] == "SUCCESS" and len(listener["taskRunList"]) == 1
    assert listener["taskRunList"][0]["outputs"]["value"] == f"childs: from parents: {up['id']}"
    for doc in docs.values():
        variables = doc["trigger"]["variables"]
        assert (variables["executionId"], variables["namespace"], variables["flowId"]) == (
            up["id"], NS, "trigger-flow")
    assert docs["trigger-flow-listener-no-inputs"]["taskRunList"][0]["outputs"]["value"] == f"v1: {up['id']}"


@aio
async def test_flow_trigger_on_each_state_change_of_a_paused_execution():
    # FlowTriggerCaseTest.triggerWithPause: states [RUNNING, PAUSED, SUCCESS, WARNING, FAILED] on a flow
    # with one Pause: four executions, whose `status` outputs are RUNNING, PAUSED, RUNNING, SUCCESS
    rig = Rig()
    rig.engine.deploy("""id: trigger-flow-listener-with-pause
namespace: io.kestra.tests.trigger.pause
outputs:
  - id: status
    type: STRING
    value: "{{trigger.state}}"
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: Hello {{trigger.executionId}} you're in {{trigger.state}}
triggers:
  - id: listen-flow
    type: io.kestra.plugin.core.trigger.Flow
    states: [RUNNING, PAUSED, SUCCESS, WARNING, FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: io.kestra.tests.trigger.pause
        flowId: trigger-flow-with-pause
""")
    await rig.tick()
    paused = await rig.run("""id: trigger-flow-with-pause
namespace: io.kestra.tests.trigger.pause
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: Hello World!
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    delay: PT0.1S
  - id: hello_again
    type: io.kestra.plugin.core.log.Log
    message: I'm restarted
""")
    assert paused["state"]["current"] == "SUCCESS" and len(paused["taskRunList"]) == 3
    docs = await rig.tick()
    assert [d["outputs"]["status"] for d in docs] == ["RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    assert await rig.tick() == []      # each transition fires once
