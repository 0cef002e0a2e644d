"""`globals`, as Kestra's VariablesTest.recursiveVars asserts on flows/valids/variables.yaml with
application-test.yml's `kestra.variables.globals`: here they are the home's config.yml, same layout."""
from __future__ import annotations

from pathlib import Path

import pytest

from kestra_nb.engine import Engine
from kestra_nb.errors import ConfigurationError

CONFIG = """kestra:
  variables:
    globals:
      string: "string"
      int: 1
      bool: true
      nested:
        int: 2
"""

VARIABLES = """id: variables
namespace: io.kestra.tests
variables:
  first: "1"
  second: "{{vars.first}} > 2"
  third: "{{vars.second}} > 3"
tasks:
  - id: variable
    type: io.kestra.plugin.core.debug.Return
    format: "{{render(vars.third)}}"
  - id: global
    type: io.kestra.plugin.core.debug.Return
    format: "{{globals.string}} {{globals.int}} {{globals.bool}} {{globals.nested.int}}"
"""


def test_globals_of_the_home_configuration(tmp_path: Path) -> None:
    # VariablesTest.recursiveVars: "global" outputs "string 1 true 2"
    (tmp_path / "config.yml").write_text(CONFIG, encoding="utf-8")
    engine = Engine(tmp_path)
    try:
        ex = engine.run(VARIABLES)
        assert ex.state == "SUCCESS"
        assert {tr.task_id: tr.outputs["value"] for tr in ex.task_run_list} == {
            "variable": "1 > 2 > 3", "global": "string 1 true 2"}
        # every expression sees them: a flow input's default, a task's runIf
        ex = engine.run("""id: everywhere
namespace: io.kestra.tests
inputs:
  - id: name
    type: STRING
    defaults: "{{ globals.string }}"
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    runIf: "{{ globals.bool }}"
    format: "{{ inputs.name }}"
""")
        assert ex.task_run_list[0].outputs == {"value": "string"}
    finally:
        engine.close()


def test_no_configuration_gives_empty_globals(tmp_path: Path) -> None:
    # RunVariablesTest: `globals` is an empty map without configuration
    engine = Engine(tmp_path)
    try:
        ex = engine.run(VARIABLES.replace("{{globals.string}} {{globals.int}} {{globals.bool}} {{globals.nested.int}}",
                                          "{{ globals | length }} {{ globals.missing ?? 'none' }}"))
        assert ex.task_run_list[1].outputs == {"value": "0 none"}
    finally:
        engine.close()


@pytest.mark.parametrize("text,message", [
    ("kestra: [", "Invalid config.yml at line 2, column 1"),
    ("- a\n- b\n", "expected a map at the top"),
    ("kestra:\n  variables:\n    globals: [a, b]\n", "`kestra.variables.globals` must be a map"),
    ("kestra:\n  variables: 5\n", "`kestra.variables` must be a map"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")), "Invalid config.yml"),
])
def test_a_malformed_configuration_is_refused_when_the_engine_starts(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        Engine(tmp_path)
    assert message in str(info.value)
    assert str(tmp_path) not in str(info.value)
