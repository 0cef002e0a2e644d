"""Flow-level parsing: the seed flow, top-level properties and FlowValidator rules, caching, YAML details."""
from __future__ import annotations

import time
from pathlib import Path
from datetime import timedelta
from textwrap import dedent

import pytest

from kestra_nb.errors import FlowValidationError
from kestra_nb.model.execution import Label
from kestra_nb.model.flow import SLA
from kestra_nb.parsing import FlowCheck, check_flow, parse_flow, split_documents
from kestra_nb.parsing.flow import check
from kestra_nb.tasks.registry import registry

SEED = (Path(__file__).resolve().parent / "fixtures" / "seed.yml").read_text(encoding="utf-8")

HEAD = "id: f\nnamespace: company.team\n"
TASK = "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n"


def test_seed_flow_parses():
    flow = parse_flow(SEED)
    assert (flow.id, flow.namespace, flow.source) == ("myflow", "company.team", SEED)
    [task] = flow.tasks
    assert (task.id, task.type, task.path, task.props) == (
        "mytask", "io.kestra.plugin.core.debug.Return", "tasks[0]", {"format": "hello from kestra"})
    assert (task.line, task.column, task.written_type) == (4, 5, None)
    [output] = flow.outputs
    assert (output.id, output.type, output.value, output.description, output.path) == (
        "mydata", "STRING", "{{ outputs.mytask.value }}", "return some data", "outputs[0]")
    assert flow.positions["id"] == (1, 1)
    assert flow.positions["tasks[0]"] == (4, 5)
    assert flow.positions["tasks[0].format"] == (6, 5)
    assert flow.positions["outputs[0].value"] == (11, 5)
    assert flow.task("mytask") is task
    assert flow.disabled is False and flow.inputs == [] and flow.labels == []


def test_parse_is_cached_by_source_text():
    assert parse_flow(SEED) is parse_flow(SEED)
    assert check_flow(SEED) is check_flow(SEED)
    other = SEED.replace("hello from kestra", "hello again")
    assert parse_flow(other) is not parse_flow(SEED)
    assert parse_flow(other).tasks[0].props["format"] == "hello again"


def test_seed_parses_well_under_a_millisecond():
    check(SEED, registry)
    best = min(_timed(lambda: check(SEED, registry)) for _ in range(30))
    assert best < 0.001, f"{best * 1000:.3f} ms"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_parse_flow_raises_with_every_violation():
    source = dedent("""\
        id: "bad id"
        namespace: Company
        tasks:
          - id: a
            type: io.kestra.plugin.core.debug.UnknownTask
          - id: b
            type: io.kestra.plugin.core.log.Log
            unknownProp: 1
        """)
    with pytest.raises(FlowValidationError) as info:
        parse_flow(source)
    got = [(v.path, v.message, v.line, v.column) for v in info.value.violations]
    assert got == [
        ("id", 'must match "^[a-zA-Z0-9][a-zA-Z0-9._-]*"', 1, 1),
        ("namespace", 'must match "^[a-z0-9][a-z0-9._-]*"', 2, 1),
        ("tasks[0].type", "Invalid type: io.kestra.plugin.core.debug.UnknownTask", 5, 5),
        ("tasks[1].message", "must not be null", 6, 5),
        ("tasks[1].unknownProp", 'Unrecognized field "unknownProp"', 8, 5),
    ]
    assert "tasks[1].message: must not be null (line 6, column 5)" in str(info.value)


def test_private_registry_bypasses_the_cache(box_registry):
    source = HEAD + "tasks:\n  - id: b\n    type: test.kestra_nb.flow.Box\n    tasks: [{id: r, type: io.kestra.plugin.core.debug.Return}]\n"
    assert check_flow(source, registry=box_registry).flow is not None
    assert check_flow(source, registry=box_registry) is not check_flow(source, registry=box_registry)
    # the shared registry doesn't know the test type
    assert [v.message for v in check_flow(source).violations] == ["Invalid type: test.kestra_nb.flow.Box"]


def test_check_flow_never_raises_and_keeps_names(problems):
    result = check_flow("id: x\nnamespace: n\nrevision: 3\ntasks: []\n")
    assert isinstance(result, FlowCheck) and result.flow is None
    assert (result.id, result.namespace, result.revision) == ("x", "n", 3)
    assert problems("id: x\nnamespace: n\ntasks: []\n") == [("tasks", "must not be empty", 3, 1)]
    assert check_flow(": : :").violations[0].message.startswith("Invalid YAML")


def test_required_top_level_properties(problems):
    assert problems("description: nothing\n") == [
        ("id", "must not be null", 1, 1),
        ("namespace", "must not be null", 1, 1),
        ("tasks", "must not be empty", 1, 1),
    ]


def test_id_and_namespace_rules(problems):
    long_id = "a" * 101
    assert problems(f"id: {long_id}\nnamespace: company.team\n{TASK}") == [
        ("id", "size must be between 1 and 100", 1, 1)]
    assert problems(f"id: f\nnamespace: {'n' * 151}\n{TASK}") == [
        ("namespace", "size must be between 1 and 150", 2, 1)]
    assert problems(f"id: -f\nnamespace: .company\n{TASK}") == [
        ("id", 'must match "^[a-zA-Z0-9][a-zA-Z0-9._-]*"', 1, 1),
        ("namespace", 'must match "^[a-z0-9][a-z0-9._-]*"', 2, 1),
    ]
    assert problems(f'id: ""\nnamespace: company.team\n{TASK}') == [("id", "must not be blank", 1, 1)]
    # a number written bare is the id's text, as Jackson reads it
    assert parse_flow(f"id: 123\nnamespace: company.team\n{TASK}").id == "123"


def test_unknown_top_level_property_and_wrong_types(problems):
    source = HEAD + TASK + "foo: bar\ndisabled: maybe\nrevision: 0\nvariables: [1]\n"
    assert problems(source) == [
        ("foo", 'Unrecognized field "foo"', 6, 1),
        ("disabled", 'expected a boolean, found the string "maybe"', 7, 1),
        ("revision", "must be greater than or equal to 1", 8, 1),
        ("variables", "expected a map, found a list", 9, 1),
    ]


def test_all_top_level_properties_parse():
    source = dedent("""\
        id: full
        namespace: company.team
        revision: 4
        description: "## A flow"
        tenantId: main
        labels:
          env: prod
          count: 3
          ok: true
        variables:
          greeting: "{{ 'hi' }}"
          nested: {a: [1, 2]}
        inputs:
          - id: name
            type: STRING
        tasks:
          - id: main
            type: io.kestra.plugin.core.debug.Return
        errors:
          - id: on_error
            type: io.kestra.plugin.core.log.Log
            message: failed
        finally:
          - id: cleanup
            type: io.kestra.plugin.core.log.Log
            message: done
        afterExecution:
          - id: notify
            type: io.kestra.plugin.core.log.Log
            message: "{{ execution.state }}"
        outputs:
          - id: out
            type: INT
            value: 1
            required: false
        triggers:
          - id: daily
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 9 * * *"
        pluginDefaults:
          - type: io.kestra.plugin.core.log.Log
            values:
              level: DEBUG
        concurrency:
          limit: 2
        retry:
          type: constant
          interval: PT1M
          maxAttempt: 3
          behavior: CREATE_NEW_EXECUTION
        sla:
          - id: slow
            type: MAX_DURATION
            duration: PT1H
            behavior: FAIL
        checks:
          - condition: "{{ true }}"
            message: always
        disabled: true
        deleted: false
        workerGroup:
          fallback: FAIL
        """)
    result = check_flow(source)
    assert result.violations == []
    flow = result.flow
    assert (flow.revision, flow.description, flow.disabled, flow.deleted) == (4, "## A flow", True, False)
    assert flow.labels == [Label("env", "prod"), Label("count", "3"), Label("ok", "true")]
    assert flow.variables == {"greeting": "{{ 'hi' }}", "nested": {"a": [1, 2]}}
    assert [t.id for t in flow.tasks] == ["main"]
    assert [t.id for t in flow.errors] == ["on_error"] and flow.errors[0].path == "errors[0]"
    assert [t.id for t in flow.finally_] == ["cleanup"] and flow.finally_[0].path == "finally[0]"
    assert [t.id for t in flow.after_execution] == ["notify"]
    assert [t.id for t in flow.walk()] == ["main", "on_error", "cleanup", "notify"]
    assert (flow.outputs[0].type, flow.outputs[0].required) == ("INT", False)
    assert flow.triggers == [{"id": "daily", "type": "io.kestra.plugin.core.trigger.Schedule", "cron": "0 9 * * *"}]
    assert flow.plugin_defaults == [{"type": "io.kestra.plugin.core.log.Log", "values": {"level": "DEBUG"},
                                     "forced": False}]
    assert flow.concurrency == {"limit": 2, "behavior": "QUEUE"}
    assert flow.retry == {"type": "constant", "interval": "PT1M", "maxAttempt": 3, "behavior": "CREATE_NEW_EXECUTION"}
    assert flow.sla == [SLA("slow", "MAX_DURATION", "FAIL", duration=timedelta(hours=1))]
    assert flow.checks == [{"style": "INFO", "behavior": "BLOCK_EXECUTION", "condition": "{{ true }}",
                            "message": "always"}]
    assert flow.errors[0].props == {"message": "failed", "level": "DEBUG"}   # the plugin default applied
    assert result.deprecation_paths == []


def test_labels_as_a_list(problems):
    flow = parse_flow(HEAD + "labels:\n  - key: env\n    value: 12\n" + TASK)
    assert flow.labels == [Label("env", "12")]
    source = HEAD + dedent("""\
        labels:
          - key: Env
            value: prod
          - key: team
            value: ""
          - key: system.correlationId
            value: x
          - key: system.readOnly
            value: "true"
          - key: été
            value: ok
          - key: k
            value: v
            extra: 1
        """) + TASK
    message = ("Invalid label key. A valid key contains only lowercase letters numbers hyphens (-) underscores (_) "
               "or periods (.) and must begin with a lowercase letter. Found: 'Env'")
    assert problems(source) == [
        ("labels", message, 4, 5),
        ("labels", "Invalid label value for key 'team': must not be empty", 6, 5),
        ("labels", "System labels can only be set by Kestra itself, offending label: system.correlationId=x", 8, 5),
        ("labels[5].extra", 'Unrecognized field "extra"', 16, 5),
    ]


def test_labels_as_a_map(problems):
    source = HEAD + "labels:\n  env: prod\n  Team: x\n  system.username: me\n  nested: {a: 1}\n" + TASK
    assert problems(source) == [
        ("labels", "Invalid label key. A valid key contains only lowercase letters numbers hyphens (-) underscores (_) "
                   "or periods (.) and must begin with a lowercase letter. Found: 'Team'", 5, 3),
        ("labels", "System labels can only be set by Kestra itself, offending label: system.username=me", 6, 3),
        ("labels.nested", "expected a string, found a map", 7, 3),
    ]
    assert problems(HEAD + "labels: yes\n" + TASK) == [
        ("labels", "expected a list of labels or a map, found the boolean true", 3, 1)]


def test_duplicate_task_ids_across_the_whole_flow(problems):
    source = HEAD + dedent("""\
        tasks:
          - id: a
            type: io.kestra.plugin.core.debug.Return
          - id: b
            type: io.kestra.plugin.core.debug.Return
          - id: a
            type: io.kestra.plugin.core.debug.Return
        errors:
          - id: b
            type: io.kestra.plugin.core.debug.Return
        finally:
          - id: a
            type: io.kestra.plugin.core.debug.Return
        afterExecution:
          - id: c
            type: io.kestra.plugin.core.debug.Return
        """)
    assert problems(source) == [("tasks", "Duplicate task id with name [a, b]", 8, 5)]


def test_triggers(problems):
    source = HEAD + TASK + dedent("""\
        triggers:
          - id: every
            type: io.kestra.core.models.triggers.types.Schedule
            cron: "* * * * *"
          - id: every
            type: io.kestra.plugin.core.trigger.Flow
          - type: io.kestra.plugin.core.trigger.Webhook
          - id: nokind
          - just a string
        """)
    result = check_flow(source)
    assert [(v.path, v.message, v.line, v.column) for v in result.violations] == [
        ("triggers", "Duplicate trigger id with name [every]", 10, 5),
        ("triggers[2].id", "must not be null", 12, 5),
        ("triggers[2].key", "must not be null", 12, 5),   # a Webhook needs its key (tests/engine/test_triggers.py)
        ("triggers[3].type", "must not be null", 13, 5),
        ("triggers[4]", 'expected a trigger (a map with `id` and `type`), found the string "just a string"', 14, 5),
    ]
    assert result.infos == [
        "io.kestra.core.models.triggers.types.Schedule is replaced by io.kestra.plugin.core.trigger.Schedule"]
    assert result.deprecation_paths == ["triggers[0]"]
    assert result.warnings == [
        "This flow will be triggered for EVERY execution of EVERY flow on your instance. We recommend adding the "
        "preconditions property to the Flow trigger 'every'."]


def test_concurrency(problems):
    assert parse_flow(HEAD + TASK + "concurrency:\n  limit: 1\n  behavior: CANCEL\n").concurrency == {
        "limit": 1, "behavior": "CANCEL"}
    assert problems(HEAD + TASK + "concurrency:\n  limit: 0\n  behavior: DROP\n  other: 1\n") == [
        ("concurrency.limit", "must be greater than 0", 7, 3),
        ("concurrency.behavior", 'expected one of [QUEUE, CANCEL, FAIL], found the string "DROP"', 8, 3),
        ("concurrency.other", 'Unrecognized field "other"', 9, 3),
    ]
    assert problems(HEAD + TASK + "concurrency:\n  behavior: FAIL\n") == [
        ("concurrency.limit", "must not be null", 6, 1)]


def test_flow_retry_sla_and_checks(problems):
    source = HEAD + TASK + dedent("""\
        retry:
          type: random
          minInterval: PT10S
          maxInterval: PT5S
        sla:
          - id: s
            type: EXECUTION_ASSERTION
          - id: t
            type: SOMETHING
        checks:
          - condition: "{{ inputs.x }}"
            style: LOUD
        """)
    assert problems(source) == [
        ("retry", "'minInterval' must be less than 'maxInterval' but is PT10S", 6, 1),
        ("sla[0].behavior", "must not be null", 11, 5),
        ("sla[0].assert", "must not be null", 11, 5),
        ("sla[1].behavior", "must not be null", 13, 5),
        ("sla[1].type", 'expected one of [MAX_DURATION, EXECUTION_ASSERTION], found the string "SOMETHING"', 14, 5),
        ("checks[0].message", "must not be null", 16, 5),
        ("checks[0].style", 'expected one of [ERROR, SUCCESS, WARNING, INFO], found the string "LOUD"', 17, 5),
    ]


def test_plugin_defaults_apply_to_matching_tasks(problems):
    source = HEAD + dedent("""\
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
          - id: loud
            type: io.kestra.plugin.core.log.Log
            message: mine
            level: INFO
          - id: ret
            type: io.kestra.plugin.core.debug.Return
        pluginDefaults:
          - type: io.kestra.plugin.core.log
            values:
              message: from defaults
              level: WARN
              timeout: PT1M
          - type: io.kestra.plugin.core.log.Log
            forced: true
            values:
              level: ERROR
        """)
    flow = parse_flow(source)
    log, loud, ret = flow.tasks
    assert log.props == {"message": "from defaults", "level": "ERROR"}
    assert log.timeout == timedelta(minutes=1)
    assert loud.props == {"message": "mine", "level": "ERROR"}
    assert ret.props == {} and ret.timeout is None
    # the deprecated name works the same and is reported
    result = check_flow(source.replace("pluginDefaults:", "taskDefaults:"))
    assert result.flow.tasks[0].props["message"] == "from defaults"
    assert result.deprecation_paths == ["taskDefaults"]
    assert problems(HEAD + TASK + "pluginDefaults:\n  - values: {a: 1}\n  - type: x\n    values: 3\n") == [
        ("pluginDefaults[0].type", "must not be null", 7, 5),
        ("pluginDefaults[1].values", "expected a map, found the integer 3", 9, 5),
    ]


def test_outputs(problems):
    source = HEAD + TASK + dedent("""\
        outputs:
          - id: a
            type: STRING
            value: x
          - id: a
            type: NUMBER
            value: 1
          - id: -bad
            value: 2
            unknown: 3
        """)
    assert problems(source) == [
        ("outputs", "Duplicate output with name [a]", 10, 5),
        ("outputs[1].type", 'expected one of [STRING, ENUM, SELECT, INT, FLOAT, BOOLEAN, BOOL, DATETIME, DATE, TIME, '
                            'DURATION, FILE, JSON, YAML, URI, SECRET, ARRAY, MULTISELECT, EMAIL], found the string '
                            '"NUMBER"', 11, 5),
        ("outputs[2].id", 'must match "^[a-zA-Z0-9][.a-zA-Z0-9_-]*"', 13, 5),
        ("outputs[2].type", "must not be null", 13, 5),
        ("outputs[2].unknown", 'Unrecognized field "unknown"', 15, 5),
    ]
    assert problems(HEAD + TASK + "outputs:\n  - id: o\n    type: INT\n") == [
        ("outputs[0].value", "must not be null", 7, 5)]


# ------------------------------------------------------------------------------------------------ YAML


def test_yaml_syntax_error_has_its_position(problems):
    assert problems("id: a\nnamespace: b\n  tasks: []\n") == [
        ("", "Invalid YAML: mapping values are not allowed in this context", 3, 8)]
    assert problems("id: [a\n") == [
        ("", "Invalid YAML: the flow sequence starting here is never closed (the text ends first)", 1, 5)]
    # never a line past the end of the text
    assert problems('id: a\nnamespace: "b\n\n') == [
        ("", "Invalid YAML: the quoted scalar starting here is never closed (the text ends first)", 2, 12)]


def test_document_must_be_a_mapping(problems):
    assert problems("- a\n- b\n") == [("", "expected a flow (a YAML mapping), found a list", 1, 1)]
    assert problems("") == [("", "expected a flow (a YAML mapping), found null", 1, 1)]
    assert problems("--- \nid: a\n---\nid: b\n") == [
        ("", "Invalid YAML: but found another document (expected a single document in the stream)", 3, 1)]


def test_duplicate_keys_are_violations(problems):
    source = HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    id: u\n"
    assert problems(source) == [("tasks[0].id", "Duplicate field 'id'", 6, 5)]
    assert problems("id: a\nid: b\nnamespace: n\n" + TASK) == [("id", "Duplicate field 'id'", 2, 1)]


def test_scalars_are_typed_like_yaml_1_1_but_dates_stay_text():
    source = HEAD + TASK + dedent("""\
        variables:
          day: 2024-01-31
          when: 2024-01-31T10:00:00Z
          clock: 10:15:30
          hex: 0x1F
          yes_: yes
          none: ~
          float: 1.50
          big: 1_000
        """)
    assert parse_flow(source).variables == {
        "day": "2024-01-31", "when": "2024-01-31T10:00:00Z", "clock": "10:15:30", "hex": 31, "yes_": True,
        "none": None, "float": 1.5, "big": 1000}


def test_anchors_and_merge_keys():
    source = HEAD + dedent("""\
        variables:
          base: &base {a: 1, b: 2}
          derived:
            <<: *base
            b: 3
        tasks:
          - &t
            id: one
            type: io.kestra.plugin.core.debug.Return
            format: hi
          - <<: *t
            id: two
        """)
    flow = parse_flow(source)
    assert flow.variables["derived"] == {"b": 3, "a": 1}
    assert [(t.id, t.props) for t in flow.tasks] == [("one", {"format": "hi"}), ("two", {"format": "hi"})]
    assert flow.positions["variables.derived.b"] == (7, 5)
    assert flow.positions["variables.derived.a"] == (4, 16)   # where the anchor wrote it


def test_split_documents():
    text = "id: a\nnamespace: n\n---\nid: b\n--- # second\n\n---\n# only a comment\n---\nid: c\n"
    assert split_documents(text) == ["id: a\nnamespace: n\n", "id: b\n", "id: c\n"]
    assert split_documents("---\nid: a\n") == ["id: a\n"]
    assert split_documents("") == []
    assert split_documents("id: a\ndescription: |\n  ---x\n") == ["id: a\ndescription: |\n  ---x\n"]


def test_a_namespace_has_no_empty_part(problems):
    for namespace in ("rt..x", "company.team."):
        assert problems(f"id: f\nnamespace: {namespace}\n{TASK}") == [
            ("namespace", "must not have an empty part between dots (`..`, or a trailing `.`)", 2, 1)]
