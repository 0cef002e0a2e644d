"""Amazon Ion text, as far as Kestra's row files need it: one value per line (its FileSerde format).

`loads` reads one Ion text value into Python data: structs as dicts, lists and s-expressions as lists,
ints, decimals (`Decimal`), floats, strings and symbols as text, timestamps as their ISO text, blobs and
clobs as bytes, typed nulls as None; annotations are dropped. `dumps` writes Python data back as Ion text
(field names as symbols when they can be, strings JSON-escaped, which Ion accepts). Nesting is bounded.
"""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..model.jsonfmt import format_instant

MAX_DEPTH = 100

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"[+-]?[0-9][0-9A-Za-z_.+\-:]*")
_TIMESTAMP = re.compile(r"\d{4}T|\d{4}-\d{2}T|\d{4}-\d{2}-\d{2}"
                        r"(T|T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?")
_DECIMAL = re.compile(r"[+-]?(0|[1-9][0-9_]*)(\.[0-9_]*)?([dD][+-]?[0-9]+)?")
_FLOAT = re.compile(r"[+-]?(0|[1-9][0-9_]*)(\.[0-9_]*)?[eE][+-]?[0-9]+")
_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "v": "\v", '"': '"', "'": "'",
            "?": "?", "\\": "\\", "/": "/", "0": "\0"}
_NULL_TYPES = {"null", "bool", "int", "float", "decimal", "timestamp", "string", "symbol", "blob", "clob",
               "struct", "list", "sexp"}
_OPERATOR = "!#%&*+-./;<=>?@^`|~"


class IonError(ValueError):
    """Text that is not one Ion value (the message says where)."""


class _Reader:
    __slots__ = ("text", "pos", "depth")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, what: str) -> IonError:
        return IonError(f"{what} at character {self.pos + 1}")

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\n\r\v\f":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unclosed comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("expected a value")
        while True:  # annotations: `a::b::value`
            start = self.pos
            symbol = self._symbol_token()
            if symbol is not None:
                self.skip()
                if self.text.startswith("::", self.pos):
                    self.pos += 2
                    self.skip()
                    continue
                self.pos = start
            break
        c = self.text[self.pos]
        if c == "{":
            if self.text.startswith("{{", self.pos):
                return self._lob()
            return self._container("}", self._struct_item, {})
        if c == "[":
            return self._container("]", lambda out: out.append(self.value()), [])
        if c == "(":
            return self._sexp()
        if c == '"':
            return self._short_string()
        if c == "'":
            if self.text.startswith("'''", self.pos):
                return self._long_strings()
            return self._quoted_symbol()
        return self._atom()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH}")

    def _container(self, close: str, item: Any, out: Any) -> Any:
        self._enter()
        self.pos += 1
        if self.peek() == close:
            self.pos += 1
            self.depth -= 1
            return out
        while True:
            item(out)
            c = self.peek()
            if c == ",":
                self.pos += 1
                if self.peek() == close:  # a trailing comma is allowed
                    self.pos += 1
                    break
            elif c == close:
                self.pos += 1
                break
            else:
                raise self.fail(f"expected `,` or `{close}`")
        self.depth -= 1
        return out

    def _struct_item(self, out: dict[str, Any]) -> None:
        c = self.peek()
        if c == '"':
            name = self._short_string()
        elif c == "'":
            name = self._long_strings() if self.text.startswith("'''", self.pos) else self._quoted_symbol()
        else:
            name = self._symbol_token()
            if name is None:
                raise self.fail("expected a field name")
        if self.peek() != ":":
            raise self.fail("expected `:` after a field name")
        self.pos += 1
        out[name] = self.value()

    def _sexp(self) -> list[Any]:
        self._enter()
        self.pos += 1
        out: list[Any] = []
        while True:
            c = self.peek()
            if c == ")":
                self.pos += 1
                break
            if not c:
                raise self.fail("unclosed s-expression")
            if c in _OPERATOR and not (c in "+-" and self.pos + 1 < len(self.text)
                                       and self.text[self.pos + 1].isdigit()):
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _OPERATOR:
                    self.pos += 1
                out.append(self.text[start:self.pos])
            else:
                out.append(self.value())
        self.depth -= 1
        return out

    def _symbol_token(self) -> str | None:
        m = _IDENT.match(self.text, self.pos)
        if m is None:
            if self.text.startswith("'", self.pos) and not self.text.startswith("'''", self.pos):
                return self._quoted_symbol()
            return None
        self.pos = m.end()
        return m.group()

    def _escape(self, quote: str) -> str:
        text = self.text
        self.pos += 1
        if self.pos >= len(text):
            raise self.fail("unfinished escape")
        c = text[self.pos]
        if c in _ESCAPES:
            self.pos += 1
            return _ESCAPES[c]
        if c == "\n":  # an escaped newline joins the lines
            self.pos += 1
            return ""
        width = {"x": 2, "u": 4, "U": 8}.get(c)
        if width is None:
            raise self.fail(f"invalid escape `\\{c}`")
        digits = text[self.pos + 1:self.pos + 1 + width]
        if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise self.fail(f"invalid escape `\\{c}{digits}`")
        self.pos += 1 + width
        code = int(digits, 16)
        if 0xD800 <= code < 0xDC00 and text.startswith("\\u", self.pos):  # a surrogate pair
            low = text[self.pos + 2:self.pos + 6]
            if len(low) == 4 and all(d in "0123456789abcdefABCDEF" for d in low) \
                    and 0xDC00 <= int(low, 16) < 0xE000:
                self.pos += 6
                code = 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)
        try:
            return chr(code)
        except ValueError:
            raise self.fail(f"invalid code point {digits}") from None

    def _quoted(self, end: str) -> str:
        out: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.fail("unclosed string")
            if text.startswith(end, self.pos):
                self.pos += len(end)
                return "".join(out)
            c = text[self.pos]
            if c == "\\":
                out.append(self._escape(end))
            elif c == "\n" and len(end) == 1:
                raise self.fail("newline in a string")
            else:
                out.append(c)
                self.pos += 1

    def _short_string(self) -> str:
        self.pos += 1
        return self._quoted('"')

    def _quoted_symbol(self) -> str:
        self.pos += 1
        return self._quoted("'")

    def _long_strings(self) -> str:
        parts: list[str] = []
        while self.text.startswith("'''", self.pos):
            self.pos += 3
            parts.append(self._quoted("'''"))
            self.skip()
        return "".join(parts)

    def _lob(self) -> bytes:
        end = self.text.find("}}", self.pos + 2)
        if end < 0:
            raise self.fail("unclosed blob")
        body = self.text[self.pos + 2:end].strip()
        self.pos = end + 2
        if body.startswith('"') or body.startswith("'''"):  # a clob
            inner = _Reader(body)
            text = inner._short_string() if body.startswith('"') else inner._long_strings()
            return text.encode("latin-1", "replace")
        try:
            return base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise self.fail("invalid base64 in a blob") from None

    def _atom(self) -> Any:
        text = self.text
        for word in ("+inf", "-inf"):
            if text.startswith(word, self.pos):
                self.pos += 4
                return float(word[0] + "inf")
        m = _IDENT.match(text, self.pos)
        if m is not None:
            word = m.group()
            self.pos = m.end()
            if word == "null":
                if text.startswith(".", self.pos):
                    t = _IDENT.match(text, self.pos + 1)
                    if t is None or t.group() not in _NULL_TYPES:
                        raise self.fail("invalid typed null")
                    self.pos = t.end()
                return None
            if word in ("true", "false"):
                return word == "true"
            if word == "nan":
                return float("nan")
            return word  # a symbol: its text
        if text.startswith("$", self.pos):
            raise self.fail("unexpected `$`")
        m = _NUMBER.match(text, self.pos)
        if m is None:
            raise self.fail(f"unexpected `{text[self.pos]}`")
        token = m.group()
        self.pos = m.end()
        return _number(token, self)


def _number(token: str, reader: _Reader) -> Any:
    body = token.lstrip("+-")
    if token.startswith("+"):
        raise reader.fail(f"invalid number `{token}`")
    sign = -1 if token.startswith("-") else 1
    low = body.lower()
    try:
        if low.startswith("0x"):
            return sign * int(body[2:].replace("_", ""), 16)
        if low.startswith("0b"):
            return sign * int(body[2:].replace("_", ""), 2)
        if _TIMESTAMP.fullmatch(token):
            return token
        if re.fullmatch(r"[+-]?(0|[1-9][0-9_]*)", token) and "__" not in token and not token.endswith("_"):
            return int(token.replace("_", ""))
        if _FLOAT.fullmatch(token):
            return float(token.replace("_", ""))
        if _DECIMAL.fullmatch(token):
            return Decimal(token.replace("_", "").replace("d", "e").replace("D", "e"))
    except (ValueError, InvalidOperation):
        pass
    raise reader.fail(f"invalid number `{token}`")


def loads(text: str) -> Any:
    """The one Ion value of `text` (IonError when there is none, or more than one)."""
    reader = _Reader(text)
    value = reader.value()
    if reader.peek():
        raise reader.fail("more than one value")
    return value


def _field(name: Any) -> str:
    text = str(name)
    if _IDENT.fullmatch(text) and text not in ("null", "true", "false", "nan"):
        return text
    return "'" + json.dumps(text, ensure_ascii=False)[1:-1].replace("'", "\\'") + "'"


def dumps(value: Any) -> str:
    """`value` as Ion text on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "+inf" if value > 0 else "-inf"
        return repr(value) + ("" if "e" in repr(value) else "e0")
    if isinstance(value, Decimal):
        text = str(value).replace("E", "d")
        return text if "." in text or "d" in text else text + "."
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, (bytes, bytearray)):
        return "{{" + base64.b64encode(bytes(value)).decode("ascii") + "}}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_field(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


__all__ = ["IonError", "dumps", "loads"]
