"""Java regexes (input validators) compiled with Python's `re`."""
from __future__ import annotations

import re

import pytest

from kestra_nb.parsing import compile_java


@pytest.mark.parametrize("pattern, matches, rejects", [
    (r"\p{Alpha}+", "abc", "ab1"),
    (r"[\p{Alpha}0-9_]+", "a_1", "a-1"),
    (r"\p{Lower}\p{Upper}\p{Digit}", "aB3", "Ab3"),
    (r"\p{L}+", "été", "e1"),
    (r"\P{Digit}+", "abc", "a1"),
    (r"\QA.B\E", "A.B", "AxB"),
    (r"[]a]+", "]a", "b"),
    (r"a++b", "aab", "b"),
    (r"(?>a|ab)c", "ac", "abc"),
    (r"x\h+y", "x \ty", "x\ny"),
])
def test_java_constructs(pattern, matches, rejects):
    compiled = compile_java(pattern)
    assert compiled.fullmatch(matches)
    assert not compiled.fullmatch(rejects)


def test_end_anchors():
    assert compile_java(r"a\z").search("a") and not compile_java(r"a\z").search("a\n")
    assert compile_java(r"a\Z").search("a\n")


def test_invalid_pattern_raises():
    with pytest.raises(re.error):
        compile_java("[a-")
