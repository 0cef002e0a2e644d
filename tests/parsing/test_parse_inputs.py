"""Flow inputs (spec §4.2): common and type-specific properties, dependencies, duplicate ids."""
from __future__ import annotations

from textwrap import dedent, indent

from kestra_nb.model.flow import DependsOn
from kestra_nb.parsing import check_flow, parse_flow
from kestra_nb.parsing.javaregex import compile_java

HEAD = "id: f\nnamespace: company.team\ninputs:\n"          # inputs start on line 4
TASKS = "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n"
TYPES = ("STRING, ENUM, SELECT, INT, FLOAT, BOOLEAN, BOOL, DATETIME, DATE, TIME, DURATION, FILE, JSON, YAML, URI, "
         "SECRET, ARRAY, MULTISELECT, EMAIL")


def items(text: str) -> str:
    """The input list, indented under `inputs:` (so its keys start at column 5)."""
    return indent(dedent(text), "  ")


def flow_with(inputs: str):
    return parse_flow(HEAD + items(inputs) + TASKS)


def test_every_type_with_its_properties():
    flow = flow_with("""\
        - id: s
          type: STRING
          validator: "^\\\\p{Alpha}+$"
          defaults: abc
          description: a string
          displayName: S
        - id: i
          type: INT
          min: 1
          max: 10
          required: false
        - id: fl
          type: FLOAT
          min: 0.5
        - {id: b, type: BOOLEAN, defaults: true}
        - {id: b2, type: BOOL}
        - {id: dt, type: DATETIME, after: "2024-01-01T00:00:00Z", before: 2025-01-01T00:00:00Z}
        - {id: d, type: DATE, after: 2024-01-01}
        - {id: tm, type: TIME, before: "18:00:00"}
        - {id: du, type: DURATION, min: PT1M, max: PT1H}
        - {id: file, type: FILE, extension: .csv, allowedFileExtensions: [.csv, .txt]}
        - {id: j, type: JSON, defaults: {a: 1}}
        - {id: y, type: YAML}
        - {id: u, type: URI}
        - {id: sec, type: SECRET, validator: "\\\\d+"}
        - {id: arr, type: ARRAY, itemType: INT}
        - {id: sel, type: SELECT, values: [a, b, 3], allowCustomValue: true, isRadio: true, autoSelectFirst: true}
        - {id: en, type: ENUM, values: [x]}
        - {id: ms, type: MULTISELECT, expression: "{{ kv('choices') }}", itemType: STRING}
        - {id: mail, type: EMAIL, prefill: a@b.c}
        - id: dep
          type: STRING
          dependsOn:
            inputs: [b]
            condition: "{{ inputs.b }}"
        """)
    by_id = {x.id: x for x in flow.inputs}
    assert len(by_id) == 20
    s = by_id["s"]
    assert (s.type, s.defaults, s.description, s.display_name, s.required, s.path) == (
        "STRING", "abc", "a string", "S", True, "inputs[0]")
    assert s.props == {"validator": "^\\p{Alpha}+$"}
    assert compile_java(s.props["validator"]).fullmatch("abc")
    assert (by_id["i"].props, by_id["i"].required) == ({"min": 1, "max": 10}, False)
    assert by_id["fl"].props == {"min": 0.5}
    assert by_id["dt"].props == {"after": "2024-01-01T00:00:00Z", "before": "2025-01-01T00:00:00Z"}
    assert by_id["d"].props == {"after": "2024-01-01"}
    assert by_id["du"].props == {"min": "PT1M", "max": "PT1H"}
    assert by_id["file"].props == {"extension": ".csv", "allowedFileExtensions": [".csv", ".txt"]}
    assert by_id["j"].defaults == {"a": 1}
    assert by_id["arr"].props == {"itemType": "INT"}
    assert by_id["sel"].props == {"values": ["a", "b", "3"], "allowCustomValue": True, "isRadio": True,
                                  "autoSelectFirst": True}
    assert by_id["ms"].props == {"expression": "{{ kv('choices') }}", "itemType": "STRING"}
    assert by_id["mail"].prefill == "a@b.c"
    assert by_id["dep"].depends_on == DependsOn(["b"], "{{ inputs.b }}")


def test_deprecated_name_is_the_id():
    result = check_flow(HEAD + "  - name: old\n    type: STRING\n  - {name: multi, type: MULTISELECT, options: [a]}\n"
                        + TASKS)
    assert [x.id for x in result.flow.inputs] == ["old", "multi"]
    assert result.flow.inputs[1].props == {"options": ["a"]}
    assert result.deprecation_paths == ["inputs[0].name", "inputs[1].name", "inputs[1].options"]


def test_common_input_violations(problems):
    source = HEAD + items("""\
        - type: STRING
        - id: .dot
          type: STRING
        - id: t
        - id: u
          type: string
        - id: v
          type: INT
          defaults: 1
          prefill: 2
          required: "no"
          displayName: "%s"
        - id: v
          type: FILE
          extension: 3
          validator: x
        - not a map
        """ % ("x" * 65)) + TASKS
    assert problems(source) == [
        ("inputs[0].id", "must not be null", 4, 5),
        ("inputs[1].id", 'must match "^[a-zA-Z0-9][.a-zA-Z0-9_-]*"', 5, 5),
        ("inputs[2].type", "must not be null", 7, 5),
        ("inputs[3].type", f'expected one of [{TYPES}], found the string "string"', 9, 5),
        ("inputs[4]", "Inputs with a default value cannot also have a prefill.", 10, 5),
        ("inputs[4].required", 'expected a boolean, found the string "no"', 14, 5),
        ("inputs[4].displayName", "size must be between 0 and 64", 15, 5),
        ("inputs", "Duplicate input with name [v]", 16, 5),
        ("inputs[5].validator", 'Unrecognized field "validator"', 19, 5),
        ("inputs[6]", 'expected an input (a map with `id` and `type`), found the string "not a map"', 20, 5),
    ]


def test_type_specific_violations(problems):
    source = HEAD + items("""\
        - id: a
          type: STRING
          validator: "[a-"
          min: 1
        - id: b
          type: INT
          min: 1.5
          max: "{{ x }}"
        - id: c
          type: DURATION
          min: 5 minutes
        - id: d
          type: DATE
          after: tomorrow
        - id: e
          type: SELECT
          allowCustomValue: true
        - id: f
          type: ARRAY
        - id: g
          type: ARRAY
          itemType: ARRAY
        - id: h
          type: MULTISELECT
          values: [a]
          options: [a]
          itemType: LIST
        - id: i
          type: DATETIME
          before: 2024-01-01
        """) + TASKS
    assert problems(source) == [
        ("inputs[0].validator", "invalid pattern [[a-]", 6, 5),
        ("inputs[0].min", 'Unrecognized field "min"', 7, 5),
        ("inputs[1].min", "expected an integer, found the number 1.5", 10, 5),
        ("inputs[1].max", 'expected an integer, found the string "{{ x }}"', 11, 5),
        ("inputs[2].min", 'expected an ISO-8601 duration (like PT5M), found the string "5 minutes"', 14, 5),
        ("inputs[3].after", 'expected an ISO-8601 date (like 2042-12-03), found the string "tomorrow"', 17, 5),
        ("inputs[4].values", "must not be null when `expression` is not set", 18, 5),
        ("inputs[5].itemType", "must not be null", 21, 5),
        ("inputs[6].itemType", "`itemType` cannot be `ARRAY`", 25, 5),
        ("inputs[7]", "you can't define both `values` and `options`", 26, 5),
        ("inputs[7].itemType", f'expected one of [{TYPES}], found the string "LIST"', 30, 5),
        ("inputs[8].before", 'expected an ISO-8601 instant (like 2042-04-02T04:20:42.000Z), found the string '
                             '"2024-01-01"', 33, 5),
    ]


def test_depends_on_unknown_inputs_and_cycles(problems):
    source = HEAD + items("""\
        - id: a
          type: STRING
          dependsOn:
            inputs: [b]
        - id: b
          type: STRING
          dependsOn:
            inputs: [a, ghost]
            when: x
        - id: c
          type: STRING
          dependsOn:
            inputs: [a]
        """) + TASKS
    assert problems(source) == [
        ("inputs[0].dependsOn.inputs", "Cycle dependency detected for input with id 'a': [a, b]", 7, 7),
        ("inputs[1].dependsOn.inputs", "Cycle dependency detected for input with id 'b': [b, a]", 11, 7),
        ("inputs[1].dependsOn.inputs[1]", "Input with id 'b' depends on a non-existent input 'ghost'.", 11, 19),
        ("inputs[1].dependsOn.when", 'Unrecognized field "when"', 12, 7),
        ("inputs[2].dependsOn.inputs", "Cycle dependency detected for input with id 'c': [a, b]", 16, 7),
    ]


def test_text_typed_defaults_are_their_written_text():
    flow = flow_with("""\
        - {id: s, type: STRING, defaults: 1.50}
        - {id: e, type: SELECT, values: [true, false], defaults: true}
        - {id: i, type: INT, defaults: 5}
        """)
    assert [x.defaults for x in flow.inputs] == ["1.50", "true", 5]
    assert flow.inputs[1].props["values"] == ["true", "false"]
