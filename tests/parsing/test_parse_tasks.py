"""Tasks (spec §4.4): common properties, retry, the type's own Prop kinds, aliases, nested task kinds."""
from __future__ import annotations

from datetime import timedelta
from textwrap import dedent, indent

from kestra_nb.model.execution import Level
from kestra_nb.model.flow import Input
from kestra_nb.parsing import check_flow

HEAD = "id: f\nnamespace: company.team\ntasks:\n"   # tasks start on line 4
RETURN = "io.kestra.plugin.core.debug.Return"
LOG = "io.kestra.plugin.core.log.Log"
BOX = "test.kestra_nb.flow.Box"


def source(tasks: str) -> str:
    """A flow around a task list written at column 1 (its keys then start at column 5)."""
    return HEAD + indent(dedent(tasks), "  ")


def parse(tasks: str, registry=None):
    result = check_flow(source(tasks), registry=registry)
    assert result.violations == []
    return result.flow


def test_common_properties():
    flow = parse(f"""\
        - id: t
          type: {RETURN}
          description: returns
          format: x
          retry:
            type: exponential
            interval: PT1S
            maxInterval: PT1M
            delayFactor: 2
            maxAttempt: 5
            maxDuration: PT1H
            warningOnRetry: true
          timeout: PT5M
          disabled: true
          allowFailure: true
          allowWarning: "true"
          runIf: false
          logLevel: WARN
          logToFile: true
          version: "1.0"
          workerGroup:
            fallback: WAIT
          taskCache:
            enabled: true
            ttl: PT1H
        - id: u
          type: {RETURN}
          timeout: "{{{{ inputs.timeout }}}}"
          runIf: "{{{{ inputs.go }}}}"
        """)
    t, u = flow.tasks
    assert t.description == "returns"
    assert t.retry == {"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M", "delayFactor": 2,
                       "maxAttempt": 5, "maxDuration": "PT1H", "warningOnRetry": True}
    assert t.timeout == timedelta(minutes=5)
    assert (t.disabled, t.allow_failure, t.allow_warning, t.log_to_file) == (True, True, True, True)
    assert t.run_if == "false"
    assert t.log_level is Level.WARN
    assert t.props == {"format": "x", "version": "1.0", "workerGroup": {"fallback": "WAIT"},
                       "taskCache": {"enabled": True, "ttl": "PT1H"}}
    assert (u.timeout, u.run_if, u.disabled, u.retry, u.log_level) == (
        "{{ inputs.timeout }}", "{{ inputs.go }}", False, None, None)


def test_common_property_violations(problems):
    text = source(f"""\
        - id: t
          type: {RETURN}
          disabled: "yes"
          allowFailure: 1
          timeout: 5 minutes
          logLevel: LOUD
          runIf: [a]
          workerGroup:
            fallback: SOMETIMES
          description: {{a: 1}}
        """)
    assert problems(text) == [
        ("tasks[0].disabled", 'expected a boolean, found the string "yes"', 6, 5),
        ("tasks[0].allowFailure", "expected a boolean, found the integer 1", 7, 5),
        ("tasks[0].timeout", 'expected an ISO-8601 duration (like PT5M), found the string "5 minutes"', 8, 5),
        ("tasks[0].logLevel", 'expected one of [ERROR, WARN, INFO, DEBUG, TRACE], found the string "LOUD"', 9, 5),
        ("tasks[0].runIf", "expected a string, found a list", 10, 5),
        ("tasks[0].workerGroup.fallback", 'expected one of [FAIL, WAIT, CANCEL], found the string "SOMETIMES"', 12, 7),
        ("tasks[0].description", "expected a string, found a map", 13, 5),
    ]


def test_retry_policies(problems):
    ok = parse(f"""\
        - id: a
          type: {RETURN}
          retry: {{type: constant, interval: PT10S, maxAttempt: 3, behavior: RETRY_FAILED_TASK}}
        - id: b
          type: {RETURN}
          retry: {{type: random, minInterval: PT1S, maxInterval: PT2S}}
        """)
    assert ok.tasks[0].retry == {"type": "constant", "interval": "PT10S", "maxAttempt": 3, "behavior": "RETRY_FAILED_TASK"}
    assert ok.tasks[1].retry == {"type": "random", "minInterval": "PT1S", "maxInterval": "PT2S"}
    text = source(f"""\
        - id: a
          type: {RETURN}
          retry:
            interval: PT1S
        - id: b
          type: {RETURN}
          retry:
            type: linear
        - id: c
          type: {RETURN}
          retry:
            type: constant
            maxAttempt: 0
            maxInterval: PT1S
        - id: d
          type: {RETURN}
          retry:
            type: constant
            interval: PT1M
            maxDuration: PT30S
        - id: e
          type: {RETURN}
          retry: 3
        """)
    assert problems(text) == [
        ("tasks[0].retry.type", "must not be null", 6, 5),
        ("tasks[1].retry.type", 'expected one of [constant, exponential, random], found the string "linear"', 11, 7),
        ("tasks[2].retry.interval", "must not be null", 14, 5),
        ("tasks[2].retry.maxAttempt", "must be greater than or equal to 1", 16, 7),
        ("tasks[2].retry.maxInterval", 'Unrecognized field "maxInterval"', 17, 7),
        ("tasks[3].retry", "'interval' must be less than 'maxDuration' but is PT1M", 20, 5),
        ("tasks[4].retry", "expected a retry policy (a map with `type`), found the integer 3", 26, 5),
    ]


def test_task_ids_and_types(problems):
    text = source(f"""\
        - id: with.dot
          type: {RETURN}
        - id: {"x" * 257}
          type: {RETURN}
        - type: {RETURN}
        - id: notype
        - id: unknown
          type: io.kestra.plugin.core.debug.UnknownTask
          anything: goes
        - id: typed
          type: [a]
        - just text
        """)
    assert problems(text) == [
        ("tasks[0].id", 'must match "^[a-zA-Z0-9][a-zA-Z0-9_-]*"', 4, 5),
        ("tasks[1].id", "size must be between 1 and 256", 6, 5),
        ("tasks[2].id", "must not be null", 8, 5),
        ("tasks[3].type", "must not be null", 9, 5),
        ("tasks[4].type", "Invalid type: io.kestra.plugin.core.debug.UnknownTask", 11, 5),
        ("tasks[5].type", "expected a string, found a list", 14, 5),
        ("tasks[6]", 'expected a task (a map with `id` and `type`), found the string "just text"', 15, 5),
    ]


def test_unknown_property_and_wrong_prop_types(problems):
    text = source(f"""\
        - id: r
          type: {RETURN}
          format: [1, 2]
          unknownProp: 1
        - id: l
          type: {LOG}
          message: {{a: 1}}
          level: LOUD
        - id: m
          type: {LOG}
          message: [ok, {{a: 1}}]
        """)
    assert problems(text) == [
        ("tasks[0].format", "expected a string, found a list", 6, 5),
        ("tasks[0].unknownProp", 'Unrecognized field "unknownProp"', 7, 5),
        ("tasks[1].message", "expected a string or a list of strings, found a map", 10, 5),
        ("tasks[1].level", 'expected one of [ERROR, WARN, INFO, DEBUG, TRACE], found the string "LOUD"', 11, 5),
        ("tasks[2].message[1]", "expected a string, found a map", 14, 19),
    ]


def test_string_props_take_bare_scalars_as_their_text():
    flow = parse(f"""\
        - {{id: a, type: {RETURN}, format: 42}}
        - {{id: b, type: {RETURN}, format: true}}
        - {{id: c, type: {RETURN}, format: 1.10}}
        - {{id: d, type: {LOG}, message: [1, yes, text]}}
        - {{id: e, type: {LOG}, message: 3, level: "{{{{ inputs.level }}}}"}}
        """)
    assert [t.props for t in flow.tasks] == [
        {"format": "42"}, {"format": "true"}, {"format": "1.10"}, {"message": ["1", "yes", "text"]},
        {"message": "3", "level": "{{ inputs.level }}"}]


def test_legacy_alias_is_reported_as_info():
    result = check_flow(source("""\
        - id: hello
          type: io.kestra.core.tasks.log.Log
          message: hi
        - id: ret
          type: io.kestra.core.tasks.debugs.Return
        """))
    assert result.violations == []
    assert result.infos == [
        "io.kestra.core.tasks.log.Log is replaced by io.kestra.plugin.core.log.Log",
        "io.kestra.core.tasks.debugs.Return is replaced by io.kestra.plugin.core.debug.Return",
    ]
    assert result.deprecation_paths == ["tasks[0]", "tasks[1]"]
    log = result.flow.tasks[0]
    assert (log.type, log.written_type) == (LOG, "io.kestra.core.tasks.log.Log")


def test_plain_prop_kinds(box_registry, problems):
    flow = parse(f"""\
        - id: box
          type: {BOX}
          tasks:
            - {{id: a, type: {RETURN}}}
          count: 3
          ratio: 0.5
          flag: false
          wait: PT1M
          mode: FAST
          options: {{a: 1}}
          items: [1, 2]
          lines: [a, 1]
          old: 7
        - id: templated
          type: {BOX}
          tasks:
            - {{id: b, type: {RETURN}}}
          count: "{{{{ inputs.n }}}}"
          ratio: "{{{{ inputs.r }}}}"
          flag: "{{{{ inputs.f }}}}"
          wait: "{{{{ inputs.w }}}}"
          mode: "{{{{ inputs.m }}}}"
          options: "{{{{ inputs.o }}}}"
          items: "{{{{ inputs.i }}}}"
          lines: one
        - id: coerced
          type: {BOX}
          tasks:
            - {{id: c, type: {RETURN}}}
          count: "7"
          ratio: "0.25"
        """, box_registry)
    box, templated, coerced = flow.tasks
    assert coerced.props == {"count": 7, "ratio": 0.25}
    assert box.props == {"count": 3, "ratio": 0.5, "flag": False, "wait": "PT1M", "mode": "FAST",
                         "options": {"a": 1}, "items": [1, 2], "lines": ["a", "1"], "old": "7"}
    assert templated.props == {"count": "{{ inputs.n }}", "ratio": "{{ inputs.r }}", "flag": "{{ inputs.f }}",
                               "wait": "{{ inputs.w }}", "mode": "{{ inputs.m }}", "options": "{{ inputs.o }}",
                               "items": "{{ inputs.i }}", "lines": "one"}
    result = check_flow(source(f"""\
        - id: box
          type: {BOX}
          tasks: [{{id: a, type: {RETURN}}}]
          old: x
        """), registry=box_registry)
    assert result.deprecation_paths == ["tasks[0].old"]
    text = source(f"""\
        - id: box
          type: {BOX}
          tasks: [{{id: a, type: {RETURN}}}]
          count: 1.5
          ratio: many
          flag: maybe
          wait: 10
          mode: MEDIUM
          options: [1]
          items: {{a: 1}}
        """)
    assert problems(text, box_registry) == [
        ("tasks[0].count", "expected an integer, found the number 1.5", 7, 5),
        ("tasks[0].ratio", 'expected a number, found the string "many"', 8, 5),
        ("tasks[0].flag", 'expected a boolean, found the string "maybe"', 9, 5),
        ("tasks[0].wait", "expected an ISO-8601 duration (like PT5M), found the integer 10", 10, 5),
        ("tasks[0].mode", 'expected one of [FAST, SLOW], found the string "MEDIUM"', 11, 5),
        ("tasks[0].options", "expected a map, found a list", 12, 5),
        ("tasks[0].items", "expected a list, found a map", 13, 5),
    ]


def test_nested_tasks_task_maps_dags_and_inputs(box_registry):
    flow = parse(f"""\
        - id: outer
          type: {BOX}
          tasks:
            - id: first
              type: {RETURN}
            - id: inner
              type: test.old.Box
              tasks:
                - id: deep
                  type: {LOG}
                  message: deep
          errors:
            - id: handler
              type: {RETURN}
          cases:
            a:
              - id: case_a
                type: {RETURN}
            1:
              - id: case_1
                type: {RETURN}
          graph:
            - task:
                id: d1
                type: {RETURN}
            - task:
                id: d2
                type: {RETURN}
              dependsOn: [d1]
          onResume:
            - id: reason
              type: STRING
              defaults: ok
        """, box_registry)
    [outer] = flow.tasks
    assert [t.id for t in outer.children["tasks"]] == ["first", "inner"]
    inner = outer.children["tasks"][1]
    assert (inner.type, inner.written_type, inner.path) == (BOX, "test.old.Box", "tasks[0].tasks[1]")
    deep = inner.children["tasks"][0]
    assert (deep.path, deep.line, deep.column) == ("tasks[0].tasks[1].tasks[0]", 12, 13)
    assert flow.positions["tasks[0].tasks[1].tasks[0].message"] == (14, 13)
    assert [t.id for t in outer.children["errors"]] == ["handler"]
    assert {case: [t.id for t in tasks] for case, tasks in outer.child_maps["cases"].items()} == {
        "a": ["case_a"], "1": ["case_1"]}
    assert outer.child_maps["cases"]["a"][0].path == "tasks[0].cases.a[0]"
    assert [(t.id, deps, t.path) for t, deps in outer.dag] == [
        ("d1", [], "tasks[0].graph[0].task"), ("d2", ["d1"], "tasks[0].graph[1].task")]
    [reason] = outer.props["onResume"]
    assert isinstance(reason, Input) and (reason.id, reason.type, reason.defaults, reason.path) == (
        "reason", "STRING", "ok", "tasks[0].onResume[0]")
    assert [t.id for t in flow.walk()] == ["outer", "first", "inner", "deep", "handler", "case_a", "case_1",
                                           "d1", "d2"]
    assert flow.task("deep") is deep


def test_nested_violations_have_nested_paths(box_registry, problems):
    text = source(f"""\
        - id: outer
          type: {BOX}
          tasks:
            - id: a
              type: {LOG}
            - id: a
              type: {RETURN}
              format: [x]
          cases:
            x:
              - id: b
                type: {RETURN}
                nope: 1
            y: not tasks
          graph:
            - task:
                id: g1
                type: {RETURN}
              dependsOn: [g2, ghost]
            - task:
                id: g2
                type: {RETURN}
              dependsOn: [g1]
            - dependsOn: [g1]
            - task: {{id: g3, type: {RETURN}}}
              after: [g1]
          onResume:
            - id: r
              type: WHAT
        - id: empty
          type: {BOX}
          tasks: []
        - id: missing
          type: {BOX}
        """)
    assert problems(text, box_registry) == [
        ("tasks[0].tasks[0].message", "must not be null", 7, 9),
        ("tasks", "Duplicate task id with name [a]", 9, 9),
        ("tasks[0].tasks[1].format", "expected a string, found a list", 11, 9),
        ("tasks[0].cases.x[0].nope", 'Unrecognized field "nope"', 16, 11),
        ("tasks[0].cases.y", 'expected a list of tasks, found the string "not tasks"', 17, 7),
        ("tasks[0].graph", "Not existing task id in dependency: ghost", 18, 5),
        ("tasks[0].graph", "Cyclic dependency detected: g1, g2", 18, 5),
        ("tasks[0].graph[2].task", "must not be null", 27, 9),
        ("tasks[0].graph[3].after", 'Unrecognized field "after"', 29, 9),
        ("tasks[0].onResume[0].type", 'expected one of [STRING, ENUM, SELECT, INT, FLOAT, BOOLEAN, BOOL, DATETIME, '
                                      'DATE, TIME, DURATION, FILE, JSON, YAML, URI, SECRET, ARRAY, MULTISELECT, '
                                      'EMAIL], found the string "WHAT"', 32, 9),
        ("tasks[1].tasks", "must not be empty", 35, 5),
        ("tasks[2].tasks", "must not be empty", 36, 5),
    ]


def test_unknown_types_do_not_cascade(problems):
    # nothing is known of an unknown type's properties: only its type is reported (and its id still counts)
    text = source(f"""\
        - id: x
          type: io.kestra.plugin.core.flow.Nope
          tasks:
            - id: x
              type: whatever
        - id: x
          type: {RETURN}
        """)
    assert problems(text) == [
        ("tasks[0].type", "Invalid type: io.kestra.plugin.core.flow.Nope", 5, 5),
        ("tasks", "Duplicate task id with name [x]", 9, 5),
    ]


def test_a_misspelled_type_or_property_gets_a_did_you_mean() -> None:
    from kestra_nb.errors import FlowValidationError
    from kestra_nb.parsing import parse_flow

    source = dedent("""\
        id: a
        namespace: b
        taks: []
        tasks:
          - id: t
            type: io.kestra.plugin.core.debug.Retrun
          - id: u
            type: io.kestra.plugin.core.debug.Return
            fromat: x
            retry: {type: constant, intervl: PT1S, maxAttempt: 2}
          - id: v
            type: Zzz
        """)
    try:
        parse_flow(source)
    except FlowValidationError as exc:
        messages = {v.path: v.message for v in exc.violations}
    assert messages["taks"] == 'Unrecognized field "taks"; did you mean "tasks"?'
    assert messages["tasks[0].type"] == ('Invalid type: io.kestra.plugin.core.debug.Retrun; did you mean '
                                         '"io.kestra.plugin.core.debug.Return"?')
    assert messages["tasks[1].fromat"] == 'Unrecognized field "fromat"; did you mean "format"?'
    assert messages["tasks[1].retry.intervl"] == 'Unrecognized field "intervl"; did you mean "interval"?'
    assert messages["tasks[2].type"] == "Invalid type: Zzz"   # nothing close: no guess
