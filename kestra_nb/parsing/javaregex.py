"""Java regular expressions (input `validator`, Kestra's `@Regex`) compiled with Python's `re`.

Python 3.11 already understands possessive quantifiers and atomic groups; what remains Java-only and is
common in flows is translated: `\\p{..}`/`\\P{..}` classes (POSIX, Unicode categories), `\\Q..\\E` quoting,
`\\z`, `\\Z` and `\\h`. Kestra matches validators with `Pattern.matches`, i.e. `re.fullmatch`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import regex

REGEX_TIMEOUT = 1.0   # seconds one match, search, split or substitution of a user pattern may take

# \p{Name} -> (outside a class, inside a class)
_CLASSES: dict[str, tuple[str, str]] = {
    "Lower": ("[a-z]", "a-z"), "Upper": ("[A-Z]", "A-Z"), "ASCII": ("[\\x00-\\x7f]", "\\x00-\\x7f"),
    "Alpha": ("[a-zA-Z]", "a-zA-Z"), "Digit": ("[0-9]", "0-9"), "Alnum": ("[a-zA-Z0-9]", "a-zA-Z0-9"),
    "Punct": ("[!-/:-@\\[-`{-~]", "!-/:-@\\[-`{-~"), "Graph": ("[!-~]", "!-~"), "Print": ("[ -~]", " -~"),
    "Blank": ("[ \\t]", " \\t"), "Cntrl": ("[\\x00-\\x1f\\x7f]", "\\x00-\\x1f\\x7f"),
    "XDigit": ("[0-9a-fA-F]", "0-9a-fA-F"), "Space": ("[ \\t\\n\\x0b\\f\\r]", " \\t\\n\\x0b\\f\\r"),
    # Unicode categories: `re` has no category classes; letters are "word characters but not digits or _"
    "L": ("[^\\W\\d_]", "\\w"), "IsAlphabetic": ("[^\\W\\d_]", "\\w"), "IsLetter": ("[^\\W\\d_]", "\\w"),
    "Lu": ("[A-Z\\u00c0-\\u00de]", "A-Z\\u00c0-\\u00de"), "Ll": ("[a-z\\u00df-\\u00ff]", "a-z\\u00df-\\u00ff"),
    "N": ("\\d", "\\d"), "Nd": ("\\d", "\\d"), "IsDigit": ("\\d", "\\d"),
    "IsWhite_Space": ("\\s", "\\s"), "javaWhitespace": ("\\s", "\\s"),
}
_NEGATED_OUTSIDE = {"L": "[\\W\\d_]", "N": "\\D", "Nd": "\\D", "IsDigit": "\\D", "IsWhite_Space": "\\S",
                    "javaWhitespace": "\\S", "IsAlphabetic": "[\\W\\d_]", "IsLetter": "[\\W\\d_]"}
_H = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"


def translate(pattern: str) -> str:
    """Rewrite the Java-only constructs of `pattern` into Python `re` syntax."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if nxt in "pP":
                m = re.match(r"\{(?:Is|In)?([A-Za-z_]+)\}|([A-Za-z])", pattern[i + 2:])
                if m:
                    name = m.group(1) or m.group(2)
                    full = pattern[i + 2:i + 2 + m.end()].strip("{}")
                    entry = _CLASSES.get(full) or _CLASSES.get(name)
                    if entry is not None:
                        if nxt == "p":
                            out.append(entry[1] if in_class else entry[0])
                        elif in_class:
                            out.append(entry[1])  # negation inside a class can't be expressed; widen
                        else:
                            neg = _NEGATED_OUTSIDE.get(full) or _NEGATED_OUTSIDE.get(name)
                            out.append(neg if neg else "[^" + entry[1] + "]")
                        i += 2 + m.end()
                        continue
            if nxt == "z":
                out.append("\\Z")
                i += 2
                continue
            if nxt == "Z":
                out.append("(?=\\n?\\Z)")
                i += 2
                continue
            if nxt == "h":
                out.append(_H if in_class else "[" + _H + "]")
                i += 2
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            # a `]` right after `[` or `[^` is a literal member
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                out.append("\\]")
                i += 1
            i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


class RegexTimeout(ValueError):
    """A user pattern ran past REGEX_TIMEOUT."""

    def __init__(self, pattern: str) -> None:
        super().__init__(f"the regular expression `{pattern}` ran longer than {REGEX_TIMEOUT:g} s (the limit): "
                         "it backtracks too much on this text; simplify it (e.g. `(a+)+` is `a+`)")
        self.pattern = pattern


class JavaPattern:
    """A compiled user pattern whose every use is bounded in time (see the module's docstring)."""

    __slots__ = ("source", "_compiled")

    def __init__(self, source: str, compiled: Any) -> None:
        self.source = source
        self._compiled = compiled

    @property
    def pattern(self) -> str:
        return self.source

    def _bounded(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args, timeout=REGEX_TIMEOUT, concurrent=True)
        except TimeoutError:
            raise RegexTimeout(self.source) from None

    def fullmatch(self, text: str) -> Any:
        return self._bounded(self._compiled.fullmatch, text)

    def match(self, text: str) -> Any:
        return self._bounded(self._compiled.match, text)

    def search(self, text: str) -> Any:
        return self._bounded(self._compiled.search, text)

    def sub(self, replacement: Any, text: str) -> str:
        return self._bounded(self._compiled.sub, replacement, text)

    def finditer(self, text: str) -> Iterator[Any]:
        # the timeout covers the whole iteration, which runs here
        return iter(self._bounded(lambda t, **kw: list(self._compiled.finditer(t, **kw)), text))


@lru_cache(maxsize=512)
def bounded_regex(expression: str, source: str | None = None) -> JavaPattern:
    """A Python-syntax regex (one the project builds, e.g. from a glob) bounded as user patterns are;
    `source` is what the user wrote, for messages (re.error if it does not compile)."""
    try:
        return JavaPattern(source if source is not None else expression, regex.compile(expression, regex.V0))
    except regex.error as exc:
        raise re.error(exc.msg, expression, exc.pos) from None


def compile_java(pattern: str) -> JavaPattern:
    """Compile a Java regex (re.error, with its message and position, if it is invalid)."""
    try:
        return JavaPattern(pattern, regex.compile(translate(pattern), regex.V0))
    except regex.error as exc:
        raise re.error(exc.msg, pattern, exc.pos) from None
