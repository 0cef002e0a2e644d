"""Java value semantics for templates: how Kestra (Pebble on the JVM, Jackson) prints and orders values.

This module owns the Python stand-ins for Java types (`JFloat` for java.lang.Float, `MapEntry` for a
Map.Entry seen while iterating a map), the three ways a value becomes text — `to_text` (what a `{{ }}`
prints in string mode), `java_str` (Java's `toString()`, used by `~` and `join`) and `to_json` (Jackson,
compact) —, the Java number rules (64-bit wrap, `Double.toString`), and `hash_ordered`, the iteration
order of a `java.util.HashMap` (map literals and the filters that build HashMaps print in that order).
"""
from __future__ import annotations

import json
import math
import struct
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable

from ..model.jsonfmt import format_duration, format_instant

_LONG_MIN = -(1 << 63)
_LONG_MASK = (1 << 64) - 1
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1

_encode_string = json.encoder.encode_basestring  # C accelerated, no ASCII escaping (Jackson keeps UTF-8)


class JFloat(float):
    """A java.lang.Float: a float rounded to 32 bits, printed with Float.toString."""

    __slots__ = ()

    def __new__(cls, value: Any) -> JFloat:
        return float.__new__(cls, to_float32(float(value)))


class MapEntry:
    """A Map.Entry, what `{% for e in map %}` iterates: `e.key`, `e.value`; prints as `key=value`."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MapEntry) and other.key == self.key and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return java_str(self)


class OutputTooLarge(Exception):
    """A value printed or serialized past the output limit."""


def to_float32(value: float) -> float:
    """Round a double to the nearest float32, as a Java float holds it."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def wrap_long(value: int) -> int:
    """Wrap an integer to Java's 64-bit long range (overflow wraps around, as in Java)."""
    if _LONG_MIN <= value <= -_LONG_MIN - 1:
        return value
    value &= _LONG_MASK
    return value - (1 << 64) if value >> 63 else value


def _java_decimal(text: str, negative: bool) -> str:
    """Format shortest round-trip digits the way Double/Float.toString does."""
    d = Decimal(text)
    _, digit_tuple, exp = d.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # decimal exponent of the first digit: value = 0.d1d2... * 10^point
    point = len(digit_tuple) + int(exp)
    magnitude = abs(d)
    prefix = "-" if negative else ""
    if Decimal("0.001") <= magnitude < Decimal("10000000"):
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{prefix}{digits}{'0' * (point - len(digits))}.0"
        return f"{prefix}{digits[:point]}.{digits[point:]}"
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{prefix}{mantissa}E{point - 1}"


def java_double_str(value: float) -> str:
    """Java's Double.toString: `1.0`, `0.001`, `1.0E7`, `1.2E-5`, `NaN`, `Infinity`."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        if "e" not in text:
            return text if "." in text else text + ".0"
    return _java_decimal(repr(abs(value)), value < 0)


def java_float_str(value: float) -> str:
    """Java's Float.toString: the shortest digits that read back as the same float32."""
    if value != value or value in (math.inf, -math.inf) or value == 0:
        return java_double_str(value)
    target = to_float32(value)
    text = repr(abs(target))
    for precision in range(1, 10):
        candidate = f"{abs(target):.{precision}g}"
        if to_float32(float(candidate)) == abs(target):
            text = candidate
            break
    return _java_decimal(text, target < 0)


def java_number_str(value: Any) -> str:
    """A Java number's toString()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, JFloat):
        return java_float_str(value)
    if isinstance(value, float):
        return java_double_str(value)
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def format_temporal(value: Any) -> str:
    """A java.time value's toString(): instants in UTC with `Z`, dates and times in ISO form."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        if value.utcoffset() == timedelta(0):
            return format_instant(value.astimezone(timezone.utc))
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


DEFAULT_LIMIT = 10_000_000  # characters: no value is printed or serialized past this, whatever the caller


def java_str(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Java's String.valueOf(): `null`, `true`, `[a, b]`, `{k=v}`, numbers the Java way."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return java_number_str(value)
    if isinstance(value, (dict, list, tuple, MapEntry)):
        out: list[str] = []
        _Writer(out, limit).java(value)
        return "".join(out)
    if isinstance(value, (datetime, date, time, timedelta)):
        return format_temporal(value)
    return str(value) if not hasattr(value, "__slots__") else repr(value)


def to_text(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Print a value the way Kestra does in string mode (JSON for maps and lists, null as nothing)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return to_json(value, limit)
    return java_str(value, limit)


def to_json(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Serialize like Kestra's Jackson mapper: compact, UTF-8 kept, Java number and date formats."""
    out: list[str] = []
    _Writer(out, limit).encode(value)
    return "".join(out)


class _Writer:
    """Writes JSON or Java toString() text, refusing to go past `limit` characters.

    The limit also bounds the work: a list holding itself twice, forty levels deep, is small in memory
    but astronomically long in text, and is stopped after `limit` characters.
    """

    __slots__ = ("out", "limit", "size")

    def __init__(self, out: list[str], limit: int | None) -> None:
        self.out = out
        self.limit = limit
        self.size = 0

    def write(self, text: str) -> None:
        self.out.append(text)
        if self.limit is not None:
            self.size += len(text)
            if self.size > self.limit:
                raise OutputTooLarge(f"a value longer than {self.limit} characters")

    def java(self, value: Any) -> None:
        write = self.write
        if isinstance(value, dict):
            write("{")
            first = True
            for k, v in value.items():
                if not first:
                    write(", ")
                first = False
                self.java(k)
                write("=")
                self.java(v)
            write("}")
        elif isinstance(value, (list, tuple)):
            write("[")
            first = True
            for v in value:
                if not first:
                    write(", ")
                first = False
                self.java(v)
            write("]")
        elif isinstance(value, MapEntry):
            self.java(value.key)
            write("=")
            self.java(value.value)
        else:
            write(java_str(value))

    def encode(self, value: Any) -> None:
        write = self.write
        if value is None:
            write("null")
        elif isinstance(value, str):
            write(_encode_string(value))
        elif isinstance(value, bool):
            write("true" if value else "false")
        elif isinstance(value, int):
            write(str(value))
        elif isinstance(value, float):
            if value != value or value in (math.inf, -math.inf):
                write('"' + java_double_str(value) + '"')  # Jackson quotes non-numeric numbers
            else:
                write(java_number_str(value))
        elif isinstance(value, Decimal):
            write(str(value))
        elif isinstance(value, dict):
            write("{")
            first = True
            for k, v in value.items():
                if not first:
                    write(",")
                first = False
                write(_encode_string(k if isinstance(k, str) else java_str(k)))
                write(":")
                self.encode(v)
            write("}")
        elif isinstance(value, (list, tuple, set, frozenset)):
            write("[")
            first = True
            for v in value:
                if not first:
                    write(",")
                first = False
                self.encode(v)
            write("]")
        elif isinstance(value, MapEntry):
            write("{" + _encode_string(java_str(value.key)) + ":")
            self.encode(value.value)
            write("}")
        elif isinstance(value, (datetime, date, time, timedelta)):
            write(_encode_string(format_temporal(value)))
        elif hasattr(value, "kestra_json"):
            self.encode(value.kestra_json())
        else:
            write(_encode_string(java_str(value)))


def to_plain(value: Any) -> Any:
    """A JSON-compatible copy (dates as ISO text), as Jackson's valueToTree would see it."""
    return json.loads(to_json(value))


# ------------------------------------------------------------------------------------- HashMap order

def _signed32(h: int) -> int:
    h &= 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_hash(key: Any) -> int:
    """Java's hashCode() of a map key (String, Long, Double, Boolean, null)."""
    if key is None:
        return 0
    if isinstance(key, str):
        h = 0
        data = key.encode("utf-16-le")
        for i in range(0, len(data), 2):
            h = (31 * h + (data[i] | data[i + 1] << 8)) & 0xFFFFFFFF
        return _signed32(h)
    if isinstance(key, bool):
        return 1231 if key else 1237
    if isinstance(key, int):
        v = key & _LONG_MASK
        return _signed32(v ^ (v >> 32))
    if isinstance(key, float):
        bits = struct.unpack(">q", struct.pack(">d", key))[0] & _LONG_MASK
        return _signed32(bits ^ (bits >> 32))
    return _signed32(hash(key))


def _table_size(capacity: int) -> int:
    n = 1
    while n < capacity:
        n <<= 1
    return n


def hash_ordered(pairs: Iterable[tuple[Any, Any]], initial_capacity: int = 16) -> dict[Any, Any]:
    """A dict iterating like a java.util.HashMap built by putting `pairs` in order.

    HashMap iterates bucket by bucket (index = spread hash & (capacity - 1)), and within a bucket in
    insertion order; resizing keeps that relative order, so the final capacity alone decides.
    """
    merged: dict[Any, Any] = {}
    for k, v in pairs:
        merged[k] = v
    if len(merged) < 2:
        return merged
    capacity = _table_size(max(initial_capacity, 1))
    while len(merged) > capacity * 0.75:
        capacity <<= 1
    mask = capacity - 1
    order = sorted(enumerate(merged), key=lambda item: (_bucket(item[1], mask), item[0]))
    return {k: merged[k] for _, k in order}


def _bucket(key: Any, mask: int) -> int:
    h = java_hash(key) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & mask


def literal_map_capacity(size: int) -> int:
    """The initial capacity Pebble gives the HashMap of a `{...}` literal of `size` entries."""
    return max(1, int(round(math.ceil(size / 0.75))))


# ------------------------------------------------------------------------------------- Java class names

def class_name(value: Any) -> str:
    """The Java class name Kestra's `className` filter would report for this value."""
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if INT_MIN <= value <= INT_MAX else "java.lang.Long"
    if isinstance(value, JFloat):
        return "java.lang.Float"
    if isinstance(value, float):
        return "java.lang.Double"
    if isinstance(value, Decimal):
        return "java.math.BigDecimal"
    if isinstance(value, dict):
        return "java.util.LinkedHashMap"
    if isinstance(value, (list, tuple)):
        return "java.util.ArrayList"
    if isinstance(value, datetime):
        return "java.time.Instant" if value.tzinfo is not None else "java.time.LocalDateTime"
    if isinstance(value, date):
        return "java.time.LocalDate"
    if isinstance(value, timedelta):
        return "java.time.Duration"
    if isinstance(value, MapEntry):
        return "java.util.HashMap$Node"
    return "java.lang.Object"


def type_name(value: Any) -> str:
    """A short Java-ish type name for error messages."""
    return class_name(value).rsplit(".", 1)[-1]


__all__ = [
    "INT_MAX", "INT_MIN", "JFloat", "MapEntry", "OutputTooLarge", "class_name", "format_temporal",
    "hash_ordered", "java_double_str", "java_float_str", "java_hash", "java_number_str", "java_str",
    "literal_map_capacity", "to_float32", "to_json", "to_plain", "to_text", "type_name", "wrap_long",
]
