"""Runaway templates stop with a clear error: output size, loop iterations, render time, depth, sizes."""
from __future__ import annotations

import time

import pytest

from kestra_nb.errors import ExpressionError
from kestra_nb.expressions import Limits, Renderer

SMALL = Renderer(limits=Limits(max_output=1000, max_iterations=500, max_seconds=0.5, max_depth=10,
                               max_collection=200))


def fails(template: str, match: str, renderer: Renderer = SMALL, **variables: object) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        renderer.render_string(template, variables)
    assert match in info.value.message, info.value.message
    assert "Rendering limit exceeded" in info.value.message or "cannot produce more than" in info.value.message
    return info.value


def test_loop_iterations_are_limited() -> None:
    fails("{% for i in range(1, 100) %}{% for j in range(1, 100) %}{% endfor %}{% endfor %}",
          "more than 500 loop iterations")


def test_output_size_is_limited() -> None:
    fails("{% for i in range(1, 100) %}0123456789-0123456789{% endfor %}", "longer than 1000 characters")


def test_string_doubling_is_stopped_before_it_eats_memory() -> None:
    renderer = Renderer(limits=Limits(max_output=100_000))
    fails("{% set s = 'abcdefgh' %}{% for i in range(1, 60) %}{% set s = s ~ s %}{% endfor %}{{ s | length }}",
          "longer than 100000 characters", renderer)


def test_list_doubling_is_stopped() -> None:
    fails("{% set l = [1] %}{% for i in range(1, 40) %}{% set l = l | merge(l) %}{% endfor %}{{ l | length }}",
          "more than 200 elements")


def test_render_time_is_limited() -> None:
    renderer = Renderer(limits=Limits(max_seconds=0.05, max_iterations=10**9))
    start = time.monotonic()
    fails("{% for i in range(1, 900000) %}{% set x = i * 2 %}{% endfor %}", "took more than 0.05 s", renderer)
    assert time.monotonic() - start < 5


def test_range_size_is_limited() -> None:
    fails("{{ range(1, 100000) | length }}", "cannot produce more than 200 elements")
    fails("{{ (1..2000000000) | length }}", "cannot produce more than 1000000 elements", Renderer())


def test_macro_recursion_is_limited() -> None:
    fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "macros nested more than 10 deep")


def test_render_recursion_is_limited() -> None:
    fails("{{ render(r) }}", "nested more than 10 deep", r="{{ render(r) }}")


def test_indentation_size_is_limited() -> None:
    fails("{{ 'a\nb' | indent(100000000) }}", "longer than 1000 characters")


def test_replace_growth_is_limited() -> None:
    fails("{{ s | replace({'a': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}) }}", "longer than 1000 characters",
          s="a" * 100)


def test_yaml_alias_bomb_cannot_be_printed() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    fails("{{ yaml(bomb) }}", "more than 100000 nodes", bomb=bomb)   # refused before any value is built


def test_deeply_nested_expressions_fail_cleanly() -> None:
    template = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    with pytest.raises(ExpressionError, match="nested too deep|Syntax error"):
        SMALL.render_string(template, {})


BOMB = "{% set l = ['x'] %}{% for i in range(1, 45) %}{% set l = [l, l] %}{% endfor %}"


@pytest.mark.parametrize("use", ["{{ l }}", "{{ 'x' ~ l }}", "{{ l | toJson }}", "{{ l | join(',') }}",
                                 "{{ l | upper }}", "{{ l | replace({'x': 'y'}) }}", "{{ l | yaml }}",
                                 "{{ l | jq('.') }}", "{{ render(l) }}", "{{ 'v' + l }}"])
def test_self_similar_values_cannot_blow_up(use: str) -> None:
    # 2^44 leaves sharing one list: small in memory, astronomically long once walked
    renderer = Renderer(limits=Limits(max_output=100_000, max_collection=100_000))
    start = time.monotonic()
    with pytest.raises(ExpressionError, match="Rendering limit exceeded"):
        renderer.render_string(BOMB + use, {})
    assert time.monotonic() - start < 5


def test_comparing_self_similar_values_is_bounded() -> None:
    template = (BOMB + "{% set k = ['x'] %}{% for i in range(1, 45) %}{% set k = [k, k] %}{% endfor %}"
                "{{ l == k }}")
    with pytest.raises(ExpressionError, match="comparing values of more than"):
        Renderer().render_string(template, {})


def test_limits_are_per_render_not_per_renderer() -> None:
    template = "{% for i in range(1, 150) %}{% endfor %}ok"
    for _ in range(5):
        assert SMALL.render_string(template, {}) == "ok"
