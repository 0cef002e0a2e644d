"""The conformance table of spec §6 (cases.py), one test per row, grouped by spec section."""
from __future__ import annotations

import re

import pytest

from kestra_nb.errors import ExpressionError
from kestra_nb.expressions import Renderer
from kestra_nb.expressions.filters import FILTERS
from kestra_nb.expressions.functions import FUNCTIONS, TESTS

from .cases import CASES, CTX, ERR, Case

RENDERER = Renderer()


def test_table_is_big_enough_and_covers_every_section() -> None:
    assert len(CASES) >= 200
    sections = {case.section for case in CASES}
    assert {"6.1", "6.2", "6.3", "6.4", "6.5"} <= sections
    assert {f"6.6.{i}" for i in range(1, 19)} <= sections


def test_every_filter_function_and_test_has_a_case() -> None:
    text = "\n".join(case.template for case in CASES)
    assert [f for f in FILTERS if not re.search(rf"(\||filter) *{f}\b", text)] == []
    assert [f for f in FUNCTIONS if not re.search(rf"\b{f}\(", text)] == []
    assert [t for t in TESTS if not re.search(rf"is (not )?{t}\b", text)] == []


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case) -> None:
    variables = {**CTX, **case.ctx}
    render = RENDERER.render_typed if case.typed else RENDERER.render_string
    if isinstance(case.expected, ERR):
        with pytest.raises(ExpressionError) as info:
            render(case.template, variables)
        assert case.expected.text in info.value.message
    else:
        assert render(case.template, variables) == case.expected
