"""Flows Kestra refuses at validation, and their neighbours it accepts: one small flow of our own per rule.

Each test names, in a comment, the Kestra flow (core/src/test/resources/flows/...) or Java test whose rule it
follows; messages are Kestra's where its tests assert them. Every violation is checked with its path and
its line:column in the YAML.
"""
from __future__ import annotations

from textwrap import dedent

from kestra_nb.parsing import check_flow

HEAD = "id: f\nnamespace: company.team\n"
RETURN = "io.kestra.plugin.core.debug.Return"
LOG = "io.kestra.plugin.core.log.Log"
SWITCH = "io.kestra.plugin.core.flow.Switch"


def problems(body: str) -> list[tuple[str, str, int | None, int | None]]:
    """(path, message, line, column) of every violation of HEAD + body; the flow must then be refused."""
    result = check_flow(HEAD + dedent(body))
    found = [(v.path, v.message, v.line, v.column) for v in result.violations]
    assert (result.flow is None) == bool(found)
    return found


def accepted(body: str):
    result = check_flow(HEAD + dedent(body))
    assert result.violations == [] and result.flow is not None
    return result


# --- Switch (SwitchTaskValidator) ------------------------------------------------------------------------

def test_switch_without_cases_or_defaults_is_refused():
    # flows/invalids/switch-invalid.yaml, FlowTest.switchTaskInvalid:
    # "impossible: No task defined, neither cases or default have any tasks"
    assert problems(f"""\
        tasks:
          - id: impossible
            type: {SWITCH}
            value: "{{{{ inputs.string }}}}"
            cases: {{}}
            defaults: null
        """) == [("tasks[0]", "No task defined, neither cases or default have any tasks", 4, 5)]


def test_switch_with_an_empty_case_is_refused():
    # flows/invalids/switch-empty-case-invalid.yaml
    # (SwitchTaskValidator: "The case '%s' must define at least one task.")
    assert problems(f"""\
        tasks:
          - id: switch
            type: {SWITCH}
            value: A
            cases:
              A: []
              B:
                - id: b
                  type: {RETURN}
                  format: B
        """) == [("tasks[0].cases.A", "The case 'A' must define at least one task.", 8, 7)]


def test_switch_with_empty_defaults_is_refused():
    # flows/invalids/switch-empty-defaults-invalid.yaml
    # (SwitchTaskValidator: "The 'defaults' property cannot be empty.")
    assert problems(f"""\
        tasks:
          - id: switch
            type: {SWITCH}
            value: A
            cases:
              A:
                - id: a
                  type: {RETURN}
                  format: A
            defaults: []
        """) == [("tasks[0].defaults", "The 'defaults' property cannot be empty.", 12, 5)]


def test_switch_with_one_case_and_null_defaults_is_accepted():
    # flows/valids/switch-impossible.yaml: a case and `defaults: null` is a valid Switch
    flow = accepted(f"""\
        tasks:
          - id: impossible
            type: {SWITCH}
            value: x
            cases:
              "NO":
                - id: date
                  type: {RETURN}
                  format: x
            defaults: null
        """).flow
    assert list(flow.tasks[0].child_maps["cases"]) == ["NO"]


# --- workerGroup (WorkerGroupValidator: Enterprise Edition only) ------------------------------------------

def test_a_worker_group_on_a_task_is_enterprise_only():
    # flows/invalids/worker-group.yaml, FlowTest.workerGroup:
    # "tasks[0].workerGroup: Worker Group is an Enterprise Edition functionality\n"
    assert problems(f"""\
        tasks:
          - id: worker-group
            type: {RETURN}
            format: x
            workerGroup:
              key: toto
        """) == [("tasks[0].workerGroup", "Worker Group is an Enterprise Edition functionality", 7, 5)]


def test_a_worker_group_on_a_trigger_or_the_flow_is_enterprise_only_too():
    # the same WorkerGroup class (and validator) is AbstractTrigger.workerGroup's
    assert problems(f"""\
        tasks:
          - id: t
            type: {RETURN}
            format: x
        triggers:
          - id: hourly
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 * * * *"
            workerGroup:
              key: gpu
        workerGroup:
          key: gpu
        """) == [
        ("triggers[0].workerGroup", "Worker Group is an Enterprise Edition functionality", 11, 5),
        ("workerGroup", "Worker Group is an Enterprise Edition functionality", 13, 1),
    ]


def test_a_worker_group_without_a_key_is_accepted():
    # WorkerGroupValidator passes a WorkerGroup whose `key` is null; its fields are still checked
    flow = accepted(f"""\
        tasks:
          - id: t
            type: {RETURN}
            format: x
            workerGroup:
              fallback: WAIT
        """).flow
    assert flow.tasks[0].props["workerGroup"] == {"fallback": "WAIT"}
    assert problems(f"""\
        tasks:
          - id: t
            type: {RETURN}
            format: x
            workerGroup:
              fallback: SOMETIMES
        """) == [("tasks[0].workerGroup.fallback",
                  'expected one of [FAIL, WAIT, CANCEL], found the string "SOMETIMES"', 8, 7)]


# --- listeners (removed from Flow) ------------------------------------------------------------------------

def test_flow_level_listeners_are_refused():
    # flows/invalids/listener.yaml and duplicate.yaml; Kestra's Flow no longer has `listeners`, so Jackson
    # reports `Unrecognized field "listeners"` (YamlParserTest.listeners was dropped with the property)
    found = problems(f"""\
        listeners:
          - tasks:
              - id: listen
                type: {RETURN}
                format: x
        tasks:
          - id: date
            type: {RETURN}
            format: x
        """)
    [(path, message, line, column)] = found
    assert (path, line, column) == ("listeners", 3, 1)
    assert message.startswith('Unrecognized field "listeners"; listeners were removed from Kestra')
    assert "afterExecution" in message


def test_listener_task_ids_no_longer_count_as_duplicates():
    # flows/invalids/duplicate.yaml, FlowTest.duplicate (current): "Duplicate task id with name [date]", the
    # listener's `listen` no longer being a task of the flow
    found = problems(f"""\
        listeners:
          - tasks:
              - id: listen
                type: {RETURN}
                format: x
        tasks:
          - id: date
            type: {RETURN}
            format: x
          - id: listen
            type: {RETURN}
            format: x
          - id: seq
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - id: date
                type: {RETURN}
                format: x
        """)
    assert [f[0] for f in found] == ["listeners", "tasks"]
    assert found[1] == ("tasks", "Duplicate task id with name [date]", 18, 9)


# --- trigger types ----------------------------------------------------------------------------------------

def test_an_unknown_trigger_type_is_invalid_with_a_did_you_mean():
    # like YamlParserTest.invalidTask for tasks ("Invalid type: ..."); trigger types get the same treatment
    assert problems(f"""\
        tasks:
          - id: t
            type: {RETURN}
            format: x
        triggers:
          - id: nope
            type: io.kestra.plugin.core.trigger.DoesNotExist
          - id: typo
            type: io.kestra.plugin.core.trigger.Schedul
            cron: "0 * * * *"
          - id: legacy
            type: io.kestra.core.models.triggers.types.Webhok
            key: k
        """) == [
        ("triggers[0].type", "Invalid type: io.kestra.plugin.core.trigger.DoesNotExist", 9, 5),
        ("triggers[1].type", 'Invalid type: io.kestra.plugin.core.trigger.Schedul; did you mean '
                             '"io.kestra.plugin.core.trigger.Schedule"?', 11, 5),
        ("triggers[2].type", 'Invalid type: io.kestra.core.models.triggers.types.Webhok; did you mean '
                             '"io.kestra.core.models.triggers.types.Webhook"?', 14, 5),
    ]


def test_the_http_polling_trigger_is_checked_like_kestras():
    # flows/invalids/worker-trigger-failure.yaml uses the HTTP polling trigger, whose evaluation fails on the
    # worker: the type itself is valid (tests/conformance/test_http_trigger.py runs it), its properties are checked
    assert problems(f"""\
        tasks:
          - id: t
            type: {LOG}
            message: hi
        triggers:
          - id: http
            type: io.kestra.plugin.core.http.Trigger
            uri: https://example.com
            interval: PT0.1S
        """) == [("triggers[0].interval", "must be at least PT1S: each poll sends a request", 11, 5)]


def test_legacy_trigger_names_are_still_accepted():
    # flows/valids (0.x names): io.kestra.core.models.triggers.types.Schedule is an alias, noted in infos
    result = accepted(f"""\
        tasks:
          - id: t
            type: {RETURN}
            format: x
        triggers:
          - id: hourly
            type: io.kestra.core.models.triggers.types.Schedule
            cron: "0 * * * *"
        """)
    assert result.flow.triggers[0]["type"] == "io.kestra.plugin.core.trigger.Schedule"
    assert result.deprecation_paths == ["triggers[0]"]


# --- tasks inside a task of unknown type ------------------------------------------------------------------

def test_children_of_an_unknown_parent_are_still_validated():
    # flows/invalids/invalid-task.yaml, YamlParserTest.invalidTask: every unknown type is reported (2
    # violations), here also the ones nested in the unknown task, and their own violations
    assert problems(f"""\
        tasks:
          - id: outer
            type: io.kestra.plugin.core.flow.Sequentiel
            tasks:
              - id: inner
                type: {LOG}
              - id: deeper
                type: io.kestra.plugin.core.debug.MissingTwo
            cases:
              A:
                - id: outer
                  type: {RETURN}
                  format: x
            inputs:
              - id: i
                type: STRING
        """) == [
        ("tasks[0].type", 'Invalid type: io.kestra.plugin.core.flow.Sequentiel; did you mean '
                          '"io.kestra.plugin.core.flow.Sequential"?', 5, 5),
        ("tasks[0].tasks[0].message", "must not be null", 7, 9),
        ("tasks[0].tasks[1].type", "Invalid type: io.kestra.plugin.core.debug.MissingTwo", 10, 9),
        ("tasks", "Duplicate task id with name [outer]", 13, 11),
    ]


# --- FlowValidator ----------------------------------------------------------------------------------------

def test_duplicate_preconditions_ids_are_refused():
    # flows/invalids/duplicate-preconditions.yaml, FlowValidationTest.duplicatePreconditionsIdShouldFailValidation
    assert problems(f"""\
        tasks:
          - id: t
            type: {LOG}
            message: hi
        triggers:
          - id: on_completion
            type: io.kestra.plugin.core.trigger.Flow
            preconditions:
              id: flows
              flows:
                - namespace: company.team
                  flowId: a
                  states: [SUCCESS]
          - id: on_failure
            type: io.kestra.plugin.core.trigger.Flow
            preconditions:
              id: flows
              flows:
                - namespace: company.team
                  flowId: a
                  states: [FAILED]
        """) == [
        ("triggers", "Duplicate preconditions with id [flows]", 19, 7)]


def test_an_input_with_a_dash_read_with_a_dot_is_refused():
    # flows/invalids/inputs-key-with-subtraction-symbol-validation.yaml,
    # FlowValidationTest.inputUsageWithSubtractionSymbolFailValidation
    assert problems(f"""\
        inputs:
          - id: server-fqn
            type: STRING
            defaults: animal
        tasks:
          - id: hello
            type: {LOG}
            message: "{{{{inputs.server-fqn}}}}"
        """) == [("tasks[0].message", "Invalid input reference: use inputs[key-name] instead of inputs.key-name — "
                                      "keys with dashes require bracket notation, offending tasks: [hello]", 10, 5)]


def test_an_input_with_a_dash_read_with_brackets_is_accepted():
    # the bracket notation the message asks for
    accepted(f"""\
        inputs:
          - id: server-fqn
            type: STRING
            defaults: animal
        tasks:
          - id: hello
            type: {LOG}
            message: "{{{{ inputs['server-fqn'] }}}}"
        """)


def test_a_task_output_with_a_dash_read_with_a_dot_is_refused():
    # flows/invalids/outputs-key-with-subtraction-symbol-validation.yaml,
    # FlowValidationTest.outputUsageWithSubtractionSymbolFailValidation: offending tasks and offending outputs
    prefix = ("Invalid output reference: use outputs[key-name] instead of outputs.key-name — "
              "keys with dashes require bracket notation, offending ")
    assert problems(f"""\
        tasks:
          - id: produce-output
            type: {RETURN}
            format: my output
          - id: use_output
            type: {LOG}
            message: The previous task output is {{{{ outputs.produce-output.value }}}}
          - id: fine
            type: {LOG}
            message: "{{{{ outputs['produce-output'].value }}}}"
        outputs:
          - id: final
            type: STRING
            value: "{{{{ outputs.produce-output.value }}}}"
        """) == [
        ("tasks[1].message", prefix + "tasks: [use_output]", 9, 5),
        ("outputs[0].value", prefix + "outputs: [final]", 16, 5),
    ]


# --- inputs -----------------------------------------------------------------------------------------------

def test_an_array_of_secrets_is_refused():
    # flows/invalids/secret-input-as-item-type.yaml (ArrayInputValidator refuses ARRAY, SECRET, MULTISELECT,
    # ENUM and SELECT items); the ARRAY case keeps the message FlowTest.inputValidation asserts
    assert problems(f"""\
        inputs:
          - id: input1
            type: ARRAY
            itemType: SECRET
          - id: input2
            type: ARRAY
            itemType: ARRAY
          - id: input3
            type: ARRAY
            itemType: INT
        tasks:
          - id: hello
            type: {LOG}
            message: "{{{{ inputs.input1 }}}}"
        """) == [
        ("inputs[0].itemType", "`itemType` cannot be `SECRET`", 6, 5),
        ("inputs[1].itemType", "`itemType` cannot be `ARRAY`", 9, 5),
    ]


def test_a_schedule_leaving_a_required_input_empty_is_a_warning():
    # flows/invalids/scheduled-missing-inputs-defaults.yaml (Kestra PR #15090 refuses it at save), while the
    # valid flows/valids/switch.yaml and task-flow.yaml of the releases followed here do the same: a warning
    result = accepted(f"""\
        inputs:
          - id: user
            type: STRING
            defaults: John
          - id: user2
            type: STRING
          - id: user3
            type: STRING
            required: false
        tasks:
          - id: hello
            type: {LOG}
            message: hey there {{{{ inputs.user }}}}
        triggers:
          - id: every_minute
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "*/1 * * * *"
          - id: supplied
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 * * * *"
            inputs:
              user2: Jane
        """)
    assert result.warnings == ["Missing inputs for Schedule Trigger 'every_minute', missing inputs: 'user2'"]
