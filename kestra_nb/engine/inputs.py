"""Execution inputs and flow outputs: Kestra's per-type parsing, validation and messages.

This module owns
* `resolve_inputs`: the 1.x resolution of a flow's inputs (dependsOn, defaults rendered as expressions,
  required/optional, dotted ids nested, every error collected and raised once);
* `parse_typed`: the per-type parser + validator shared by inputs and outputs (Kestra's
  `FlowInputOutput.parseType` followed by the `*Input.validate` of each type), with Kestra's messages;
* `coerce_output`: the typing of a rendered flow output;
* SECRET values: AES-GCM encryption compatible with Kestra's `EncryptionService` (key from
  `KESTRA_NB_SECRET_KEY`, Kestra's `kestra.encryption.secret-key`: a base64-encoded AES key).

Typed values are stored the way Kestra serializes them on the execution: DATETIME as an ISO instant,
DATE `YYYY-MM-DD`, TIME `HH:MM:SS`, DURATION as an ISO duration, FILE as its URI, SECRET encrypted.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import struct
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..parsing.javaregex import JavaPattern, RegexTimeout, compile_java
from ..parsing.yamlpos import YamlBudgetError, load_within_budget
from ..errors import ExpressionError, InputValidationError, KestraNbError
from ..expressions import render_typed, render_value
from ..model.flow import Input, Output
from ..model.jsonfmt import format_duration, format_instant, parse_duration



def check_declared(flow: Any, names: Any) -> None:
    """Refuse input names the flow does not declare. Kestra ignores them (and so does the API here); a name a
    user typed after `-i` is a typo to point out, not a value to drop without a word."""
    import difflib

    declared = [i.id for i in flow.inputs]
    errors = []
    for name in dict.fromkeys(names):
        if name in declared:
            continue
        close = difflib.get_close_matches(name, declared, n=1)
        errors.append(f"Input `{name}` is not declared by {flow.namespace}.{flow.id}"
                      + (f": did you mean `{close[0]}`?" if close else "")
                      + f" (its inputs: {', '.join(declared) if declared else 'none'})")
    if errors:
        raise InputValidationError(errors)

__all__ = [
    "ENCRYPTED_STRING_TYPE", "SECRET_KEY_ENV", "EncryptionError", "coerce_output", "decrypt_secret",
    "decrypted_inputs", "encrypt_secret", "parse_typed", "resolve_inputs",
]

SECRET_KEY_ENV = "KESTRA_NB_SECRET_KEY"
# Kestra wraps SECRET flow outputs in an EncryptedString: {"value": <encrypted>, "type": this}
ENCRYPTED_STRING_TYPE = "io.kestra.datatype:aes_encrypted"

_NOT_CONFIGURED = (
    "Unable to use a `SECRET` input/output as encryption is not configured: set the environment variable "
    f"{SECRET_KEY_ENV} (Kestra's `kestra.encryption.secret-key`) to a base64-encoded 32-byte key, "
    "e.g. the output of `openssl rand -base64 32`")


class EncryptionError(KestraNbError):
    """A SECRET value cannot be encrypted or decrypted (no key, bad key, corrupted value)."""


class _Invalid(Exception):
    """A value does not fit its type; `reasons` are Kestra's causes, without the `Invalid value…` prefix."""

    def __init__(self, *reasons: str) -> None:
        super().__init__(*reasons)
        self.reasons = reasons


def _parse_failure(java_message: str) -> _Invalid:
    # Kestra 1.x wraps every parse failure that is not an IllegalArgumentException this way
    # (FlowInputOutput.parseType); we keep it after the usual prefix so the input id is not lost.
    return _Invalid(f"errors:\n```\n{java_message}\n```")


# --------------------------------------------------------------------------------- Java-like printing


def _java_str(value: Any) -> str:
    """`String.valueOf(value)` as Kestra would print the equivalent Java object."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return "null"
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if isinstance(value, float):
        return _java_double_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_str(k)}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return format_instant(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return _local_time_str(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def _sci_digits(text: str) -> tuple[str, int]:
    """Significant digits and decimal exponent of a positive number written by Python (`1.5e-05`, `123.4`)."""
    mant, _, exp = text.partition("e")
    whole, _, frac = mant.partition(".")
    all_digits = whole + frac
    stripped = all_digits.lstrip("0")
    lead = len(all_digits) - len(stripped)
    return (stripped.rstrip("0") or "0"), (int(exp) if exp else 0) + len(whole) - 1 - lead


def _java_format(x: float, text: str) -> str:
    """Java's Double/Float.toString layout for `x` whose shortest digits are written in `text`."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    digits, exp = _sci_digits(text.lstrip("-"))
    if -3 <= exp < 7:
        if exp >= 0:
            whole = digits[:exp + 1].ljust(exp + 1, "0")
            return f"{sign}{whole}.{digits[exp + 1:] or '0'}"
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exp}"


def _java_double_str(x: float) -> str:
    """Java's `Double.toString` (repr already gives the shortest round-tripping digits)."""
    return _java_format(x, repr(x))


_F32 = struct.Struct("<f")


def _to_f32(x: float) -> float:
    """Round a double to the nearest 32-bit float (Java's `(float)` cast)."""
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _f32_shortest(x: float) -> tuple[float, str]:
    """The float32 nearest to `x`, as the shortest decimal Java's `Float.toString` prints (value, text)."""
    f = _to_f32(x)
    if f != f or math.isinf(f) or f == 0:
        return f, repr(f)
    for precision in range(9):          # 9 significant digits always identify a float32
        text = "%.*e" % (precision, f)
        candidate = float(text)
        if _to_f32(candidate) == f:
            return candidate, text
    return f, repr(f)


def _java_float_str(x: float) -> str:
    """Java's `Float.toString` of the float32 nearest to `x`."""
    value, text = _f32_shortest(x)
    return _java_format(value, text)


def _local_time_str(t: time) -> str:
    """Java's `LocalTime.toString`: `HH:mm`, seconds only when set, fraction in groups of 3 digits."""
    out = f"{t.hour:02d}:{t.minute:02d}"
    if t.second or t.microsecond:
        out += f":{t.second:02d}"
        if t.microsecond:
            out += f".{t.microsecond // 1000:03d}" if t.microsecond % 1000 == 0 else f".{t.microsecond:06d}"
    return out


def _iso_local_time(t: time) -> str:
    """Jackson's LocalTime (ISO_LOCAL_TIME): seconds always, fraction only as long as needed."""
    out = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        out += "." + f"{t.microsecond:06d}".rstrip("0")
    return out


def _text(value: Any) -> str:
    return value if value.__class__ is str else _java_str(value)


# -------------------------------------------------------------- java.time parsers (with error indexes)


class _AtIndex(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _abbreviate(text: str) -> str:
    return text if len(text) <= 64 else text[:64] + "..."


def _not_parsed(text: str, index: int) -> _Invalid:
    return _parse_failure(f"Text '{_abbreviate(text)}' could not be parsed at index {index}")


def _unparsed(text: str, index: int) -> _Invalid:
    return _parse_failure(f"Text '{_abbreviate(text)}' could not be parsed, unparsed text found at index {index}")


def _not_resolved(text: str, reason: str) -> _Invalid:
    return _parse_failure(f"Text '{_abbreviate(text)}' could not be parsed: {reason}")


def _fixed2(text: str, pos: int) -> int:
    chunk = text[pos:pos + 2]
    if len(chunk) != 2 or not (chunk.isdigit() and chunk.isascii()):
        raise _AtIndex(pos)
    return int(chunk)


def _literal(text: str, pos: int, chars: str) -> int:
    if pos >= len(text) or text[pos] not in chars:
        raise _AtIndex(pos)
    return pos + 1


def _scan_date(text: str, pos: int) -> tuple[int, int, int, int]:
    # ISO_LOCAL_DATE: a 4-digit year (more digits need a sign in strict mode), '-', MM, '-', dd
    end = pos
    while end < len(text) and end - pos < 10 and "0" <= text[end] <= "9":
        end += 1
    if end - pos != 4:
        raise _AtIndex(pos)
    year = int(text[pos:end])
    pos = _literal(text, end, "-")
    month = _fixed2(text, pos)
    pos = _literal(text, pos + 2, "-")
    day = _fixed2(text, pos)
    return year, month, day, pos + 2


def _scan_fraction(text: str, pos: int) -> tuple[int, int]:
    """An optional `.nnnnnnnnn` (0 to 9 digits); returns (nanoseconds, new position)."""
    if pos >= len(text) or text[pos] != ".":
        return 0, pos
    pos += 1
    end = pos
    while end < len(text) and end - pos < 9 and "0" <= text[end] <= "9":
        end += 1
    digits = text[pos:end]
    return (int(digits.ljust(9, "0")) if digits else 0), end


def _scan_time(text: str, pos: int, seconds_required: bool) -> tuple[int, int, int, int, int]:
    hour = _fixed2(text, pos)
    pos = _literal(text, pos + 2, ":")
    minute = _fixed2(text, pos)
    pos += 2
    second = nano = 0
    if seconds_required:
        pos = _literal(text, pos, ":")
        second = _fixed2(text, pos)
        nano, pos = _scan_fraction(text, pos + 2)
    elif pos < len(text) and text[pos] == ":":
        # optional section: a partial match is rolled back, leaving unparsed text
        try:
            second = _fixed2(text, pos + 1)
        except _AtIndex:
            return hour, minute, 0, 0, pos
        nano, pos = _scan_fraction(text, pos + 3)
    return hour, minute, second, nano, pos


def _scan_offset(text: str, pos: int) -> tuple[int, int]:
    """ISO_INSTANT's offset: `Z` (any case) or ±HH:MM[:ss]; returns (seconds east of UTC, new position)."""
    if pos < len(text) and text[pos] in "Zz":
        return 0, pos + 1
    if pos >= len(text) or text[pos] not in "+-":
        raise _AtIndex(pos)
    try:
        hours = _fixed2(text, pos + 1)
        _literal(text, pos + 3, ":")
        minutes = _fixed2(text, pos + 4)
    except _AtIndex:
        raise _AtIndex(pos) from None
    seconds, end = 0, pos + 6
    if end < len(text) and text[end] == ":":
        try:
            seconds = _fixed2(text, end + 1)
            end += 3
        except _AtIndex:
            pass
    if hours > 18 or minutes > 59 or seconds > 59:
        raise _AtIndex(pos)
    total = hours * 3600 + minutes * 60 + seconds
    return (-total if text[pos] == "-" else total), end


_MONTHS = ("JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
           "NOVEMBER", "DECEMBER")


def _check_date(year: int, month: int, day: int) -> str | None:
    """Java's strict date resolution message, or None when the date exists."""
    if not 1 <= month <= 12:
        return f"Invalid value for MonthOfYear (valid values 1 - 12): {month}"
    if not 1 <= day <= 31:
        return f"Invalid value for DayOfMonth (valid values 1 - 28/31): {day}"
    if day > 28:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        length = 29 if month == 2 and leap else 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
        if day > length:
            if day == 29:
                return f"Invalid date 'February 29' as '{year}' is not a leap year"
            return f"Invalid date '{_MONTHS[month - 1]} {day}'"
    return None


def _check_time(hour: int, minute: int, second: int) -> str | None:
    if not 0 <= minute <= 59:
        return f"Invalid value for MinuteOfHour (valid values 0 - 59): {minute}"
    if not 0 <= hour <= 23:
        return f"Invalid value for HourOfDay (valid values 0 - 23): {hour}"
    if not 0 <= second <= 59:
        return f"Invalid value for SecondOfMinute (valid values 0 - 59): {second}"
    return None


def _parse_instant(text: str) -> datetime:
    """Java's `Instant.parse` (ISO_INSTANT): zone required, seconds required, messages with indexes."""
    try:
        year, month, day, pos = _scan_date(text, 0)
        pos = _literal(text, pos, "Tt")
        hour, minute, second, nano, pos = _scan_time(text, pos, True)
        offset, pos = _scan_offset(text, pos)
    except _AtIndex as at:
        raise _not_parsed(text, at.index) from None
    if pos != len(text):
        raise _unparsed(text, pos)
    extra_day = 0
    if hour == 24 and minute == 0 and second == 0 and nano == 0:
        hour, extra_day = 0, 1
    elif hour == 23 and minute == 59 and second == 60:
        second = 59                      # Java accepts the leap second and smears it
    if _check_date(year, month, day) or _check_time(hour, minute, second) or year < 1:
        raise _not_parsed(text, 0)       # InstantPrinterParser reports any resolution failure at its start
    dt = datetime(year, month, day, hour, minute, second, nano // 1000, tzinfo=timezone.utc)
    return dt + timedelta(days=extra_day, seconds=-offset)


def _parse_local_date(text: str) -> date:
    """Java's `LocalDate.parse` (ISO_LOCAL_DATE, strict)."""
    try:
        year, month, day, pos = _scan_date(text, 0)
    except _AtIndex as at:
        raise _not_parsed(text, at.index) from None
    if pos != len(text):
        raise _unparsed(text, pos)
    problem = _check_date(year, month, day)
    if problem:
        raise _not_resolved(text, problem)
    if year < 1:
        raise _not_resolved(text, f"Invalid value for Year: {year}")
    return date(year, month, day)


def _parse_local_time(text: str) -> time:
    """Java's `LocalTime.parse` (ISO_LOCAL_TIME, strict): `HH:mm[:ss[.nnnnnnnnn]]`."""
    try:
        hour, minute, second, nano, pos = _scan_time(text, 0, False)
    except _AtIndex as at:
        raise _not_parsed(text, at.index) from None
    if pos != len(text):
        raise _unparsed(text, pos)
    problem = _check_time(hour, minute, second)
    if problem:
        raise _not_resolved(text, problem)
    return time(hour, minute, second, nano // 1000)


def _parse_java_duration(text: str) -> timedelta:
    # Java's Duration.parse does not trim; jsonfmt's parser does
    if text != text.strip():
        raise _parse_failure("Text cannot be parsed to a Duration")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise _parse_failure(str(exc)) from None


# ------------------------------------------------------------------------------- JSON and YAML (Jackson)

_JSON_DECODER = json.JSONDecoder()
_JSON_WS = " \t\n\r"
_JSON_TOKEN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_JACKSON_SOURCE = "Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"


def _jackson_location(line: int, column: int) -> str:
    return f"\n at [{_JACKSON_SOURCE}; line: {line}, column: {column}]"


def _jackson_error(text: str, exc: json.JSONDecodeError) -> str:
    """Approximate Jackson's message for the first syntax error Python's decoder found."""
    pos = exc.pos
    if pos >= len(text.rstrip(_JSON_WS)):
        return "Unexpected end-of-input" + _jackson_location(exc.lineno, exc.colno)
    char = text[pos]
    token = _JSON_TOKEN.match(text, pos)
    if token and char.isalpha() and not exc.msg.startswith("Expecting property name"):
        return ("Unrecognized token '" + token.group() + "': was expecting (JSON String, Number, Array, Object "
                "or token 'null', 'true' or 'false')" + _jackson_location(exc.lineno, exc.colno + len(token.group())))
    if exc.msg.startswith("Expecting property name"):
        reason = "was expecting double-quote to start field name"
    elif exc.msg.startswith("Expecting ',' delimiter"):
        reason = "was expecting comma to separate " + ("Object entries" if _in_object(text, pos) else "Array entries")
    elif exc.msg.startswith("Expecting ':' delimiter"):
        reason = "was expecting a colon to separate field name and value"
    else:
        reason = "expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
    return (f"Unexpected character ('{char}' (code {ord(char)})): {reason}"
            + _jackson_location(exc.lineno, exc.colno + 1))


def _in_object(text: str, pos: int) -> bool:
    depth_obj = text.rfind("{", 0, pos)
    return depth_obj > text.rfind("[", 0, pos)


def _json_parse(text: str) -> Any:
    """Jackson's `readValue(text, Object)`: any JSON value, trailing content ignored."""
    start = 0
    while start < len(text) and text[start] in _JSON_WS:
        start += 1
    if start == len(text):
        raise _parse_failure("No content to map due to end-of-input" + _jackson_location(1, len(text) + 1))
    try:
        value, _ = _JSON_DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise _parse_failure(_jackson_error(text, exc)) from None
    return value


_JSON_KINDS = {dict: ("Object", "START_OBJECT"), str: ("String", "VALUE_STRING"), int: ("Integer", "VALUE_NUMBER_INT"),
               float: ("Floating-point", "VALUE_NUMBER_FLOAT")}


def _java_class(value: Any) -> str:
    return {bool: "java.lang.Boolean", int: "java.lang.Integer", float: "java.lang.Double",
            dict: "java.util.LinkedHashMap", datetime: "java.time.Instant"}.get(value.__class__, "java.lang.Object")


def _as_list(value: Any) -> list[Any]:
    """Kestra's ARRAY/MULTISELECT reading: a list as is, else JSON array text (`JacksonMapper.toList`)."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if value.__class__ is not str:
        cls = _java_class(value)
        raise _parse_failure(f"class {cls} cannot be cast to class java.lang.String ({cls} and java.lang.String "
                             "are in module java.base of loader 'bootstrap')")
    parsed = _json_parse(value)
    if isinstance(parsed, list):
        return parsed
    if parsed is None:
        kind, token = "Null", "VALUE_NULL"
    elif isinstance(parsed, bool):
        kind, token = "Boolean", "VALUE_TRUE" if parsed else "VALUE_FALSE"
    else:
        kind, token = _JSON_KINDS.get(parsed.__class__, ("Object", "START_OBJECT"))
    raise _parse_failure(f"Cannot deserialize value of type `java.util.ArrayList<java.lang.Object>` from {kind} "
                         f"value (token `JsonToken.{token}`)" + _jackson_location(1, 1))


def _yaml_loader_class() -> type:
    # the pure-Python loader: its messages are SnakeYAML's (libyaml words them differently)
    base = yaml.SafeLoader
    loader = type("_KestraYamlLoader", (base,), {})
    # Jackson's YAML mapper keeps timestamps as strings and only reads true/false as booleans
    dropped = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in dropped]
        for first, resolvers in base.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return loader


_YAML_LOADER = _yaml_loader_class()


def _yaml_parse(text: str) -> Any:
    if not text.strip():
        raise _parse_failure("No content to map due to end-of-input" + _jackson_location(1, 1))
    try:
        return load_within_budget(text, _YAML_LOADER)
    except YamlBudgetError as exc:
        raise _parse_failure(str(exc)) from None
    except yaml.YAMLError as exc:
        raise _parse_failure(str(exc).replace('"<unicode string>"', "'reader'")) from None


# ------------------------------------------------------------------------------------ per-type parsers

_Parser = Callable[[Any, Mapping[str, Any], bool], Any]
_REGEX_CACHE: dict[str, JavaPattern] = {}
_PROP_CACHE: dict[tuple[str, Any], Any] = {}


def _regex(pattern: str) -> JavaPattern:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        try:
            compiled = compile_java(pattern)  # validators are Java regexes (\p{Alpha}, \Q…\E…)
        except re.error as exc:
            # Java's PatternSyntaxException is an IllegalArgumentException: its message is the cause
            raise _Invalid(f"{exc.msg} near index {exc.pos}\n{pattern}") from None
        if len(_REGEX_CACHE) > 1024:
            _REGEX_CACHE.clear()
        _REGEX_CACHE[pattern] = compiled
    return compiled


def _prop(kind: str, raw: Any, convert: Callable[[Any], Any]) -> Any:
    """A type-specific property (min, after…) converted once and cached."""
    key = (kind, raw)
    try:
        return _PROP_CACHE[key]
    except KeyError:
        pass
    except TypeError:           # unhashable raw value: convert without caching
        return convert(raw)
    value = convert(raw)
    if len(_PROP_CACHE) > 4096:
        _PROP_CACHE.clear()
    _PROP_CACHE[key] = value
    return value


def _check_pattern(text: str, props: Mapping[str, Any]) -> None:
    validator = props.get("validator")
    if validator is None:
        return
    try:
        matched = _regex(validator).fullmatch(text)
    except RegexTimeout as exc:
        raise _Invalid(str(exc)) from None
    if not matched:
        raise _Invalid(f"it must match the pattern `{validator}`")


def _p_string(value: Any, props: Mapping[str, Any], required: bool) -> str:
    text = value if value.__class__ is str else _java_str(value)
    if props:
        _check_pattern(text, props)
    return text


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1


def _bound(name: str, raw: Any, convert: Callable[[Any], Any]) -> Any:
    """A numeric bound from the flow (`min`, `max`), converted; a bad one is reported on the input."""
    try:
        return convert(raw)
    except (_Invalid, TypeError, ValueError, OverflowError):
        raise _Invalid(f"invalid `{name}` property: `{_java_str(raw)}`") from None


def _p_int(value: Any, props: Mapping[str, Any], required: bool) -> int:
    if value.__class__ is int:
        number = value
    else:
        text = _text(value)
        if not _INT_TEXT.fullmatch(text):
            raise _Invalid(f'For input string: "{text}"')
        number = int(text)
    if not _INT_MIN <= number <= _INT_MAX:
        raise _Invalid(f'For input string: "{value if value.__class__ is str else number}"')
    if props:
        low, high = props.get("min"), props.get("max")
        if low is not None and number < (low := _bound("min", low, int)):
            raise _Invalid(f"it must be more than `{low}`")
        if high is not None and number > (high := _bound("max", high, int)):
            raise _Invalid(f"it must be less than `{high}`")
    return number


_JAVA_TRIM = "".join(chr(c) for c in range(33))
_FLOAT_TEXT = re.compile(r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)")
_HEX_FLOAT_TEXT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?")


def _java_float_value(text: str) -> float:
    """`Float.valueOf(text)` grammar (trimmed, NaN/Infinity, f/d suffix, hex), as a double before rounding."""
    trimmed = text.strip(_JAVA_TRIM)
    if not trimmed:
        raise _Invalid("empty String")
    if _FLOAT_TEXT.fullmatch(trimmed):
        return float(trimmed.rstrip("fFdD") if trimmed[-1] in "fFdD" else trimmed)
    if _HEX_FLOAT_TEXT.fullmatch(trimmed):
        return float.fromhex(trimmed.rstrip("fFdD"))
    raise _Invalid(f'For input string: "{trimmed}"')


def _float_bound(raw: Any) -> float:
    # FloatInput's min/max are Java floats too: compare float32 with float32
    value = float(raw) if raw.__class__ in (int, float) else _java_float_value(_text(raw))
    return _f32_shortest(value)[0]


def _p_float(value: Any, props: Mapping[str, Any], required: bool) -> float:
    cls = value.__class__
    if cls is float or cls is int:
        try:
            raw = float(value)
        except OverflowError:                # a huge int: Java's Float.valueOf gives Infinity
            raw = math.inf if value > 0 else -math.inf
    else:
        raw = _java_float_value(_text(value))
    # Java's float: rounded to 32 bits, kept as the decimal Float.toString prints (what Kestra's JSON shows)
    number, _ = _f32_shortest(raw)
    if props:
        low, high = props.get("min"), props.get("max")
        if low is not None and number < (low := _bound("min", low, _float_bound)):
            raise _Invalid(f"it must be more than `{_java_float_str(low)}`")
        if high is not None and number > (high := _bound("max", high, _float_bound)):
            raise _Invalid(f"it must be less than `{_java_float_str(high)}`")
    return number


def _p_boolean(value: Any, props: Mapping[str, Any], required: bool) -> bool:
    if value.__class__ is bool:
        return value
    # Boolean.valueOf: only "true" (any case) is true, anything else is false, never an error
    return _text(value).lower() == "true"


def _check_after_before(value: Any, props: Mapping[str, Any], kind: str, convert: Callable[[Any], Any],
                        show: Callable[[Any], str]) -> None:
    """DATETIME/DATE/TIME `after` and `before` bounds (exclusive), with Kestra's messages."""
    after, before = props.get("after"), props.get("before")
    if after is not None:
        bound = _prop(kind, after, convert)
        if value < bound:
            raise _Invalid(f"it must be after `{show(bound)}`")
    if before is not None:
        bound = _prop(kind, before, convert)
        if value > bound:
            raise _Invalid(f"it must be before `{show(bound)}`")


def _instant_prop(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo else raw.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return _parse_instant(_text(raw))


def _p_datetime(value: Any, props: Mapping[str, Any], required: bool) -> str:
    if isinstance(value, datetime):
        # a native datetime without zone is taken as UTC (only text must carry a zone)
        instant = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    else:
        instant = _parse_instant(_text(value))
    if props:
        _check_after_before(instant, props, "instant", _instant_prop, format_instant)
    return format_instant(instant)


def _date_prop(raw: Any) -> date:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    return _parse_local_date(_text(raw))


def _p_date(value: Any, props: Mapping[str, Any], required: bool) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    else:
        day = _parse_local_date(_text(value))
    if props:
        _check_after_before(day, props, "date", _date_prop, date.isoformat)
    return day.isoformat()


def _time_prop(raw: Any) -> time:
    if isinstance(raw, time):
        return raw.replace(tzinfo=None)
    return _parse_local_time(_text(raw))


def _p_time(value: Any, props: Mapping[str, Any], required: bool) -> str:
    moment = value.replace(tzinfo=None) if isinstance(value, time) else _parse_local_time(_text(value))
    if props:
        _check_after_before(moment, props, "time", _time_prop, _local_time_str)
    return _iso_local_time(moment)


def _duration_prop(raw: Any) -> timedelta:
    return raw if isinstance(raw, timedelta) else _parse_java_duration(_text(raw))


def _p_duration(value: Any, props: Mapping[str, Any], required: bool) -> str:
    duration = value if isinstance(value, timedelta) else _parse_java_duration(_text(value))
    if props:
        low, high = props.get("min"), props.get("max")
        # DurationInput's messages start with a capital letter, unlike the other types
        if low is not None:
            bound = _prop("duration", low, _duration_prop)
            if duration < bound:
                raise _Invalid(f"It must be more than `{format_duration(bound)}`")
        if high is not None:
            bound = _prop("duration", high, _duration_prop)
            if duration > bound:
                raise _Invalid(f"It must be less than `{format_duration(bound)}`")
    return format_duration(duration)


_FILE_SCHEMES = ("kestra://", "nsfile://", "file://")


def _p_file(value: Any, props: Mapping[str, Any], required: bool) -> str:
    if isinstance(value, os.PathLike):
        uri = Path(value).absolute().as_uri()
    else:
        uri = _text(value)
    if not uri.startswith(_FILE_SCHEMES):
        raise _Invalid(
            f"FILE inputs take a `kestra://` URI (or `nsfile://`, `file://`) or a multipart file upload, "
            f"received `{_text(value)}`")
    allowed = props.get("allowedFileExtensions") if props else None
    if allowed:
        path = uri.split("?", 1)[0].split("#", 1)[0]
        name = path.rsplit("/", 1)[-1]
        extension = name[name.rfind("."):].lower() if "." in name else ""
        if extension not in [str(e).lower() for e in allowed]:
            raise _Invalid("File type not allowed. Accepted extensions: " + ", ".join(str(e) for e in allowed))
    return uri


def _p_json(value: Any, props: Mapping[str, Any], required: bool) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, tuple):
        return list(value)
    return _json_parse(_text(value))


def _p_yaml(value: Any, props: Mapping[str, Any], required: bool) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, tuple):
        return list(value)
    return _yaml_parse(_text(value))


# FlowInputOutput.URI_PATTERN (a URL with a dotted host; `http://localhost:8080` does not match)
_URI = re.compile(
    r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._\+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b(?:[-a-zA-Z0-9()@:%_\+.~#?&/=]*)$")


def _p_uri(value: Any, props: Mapping[str, Any], required: bool) -> str:
    text = _text(value)
    if not _URI.fullmatch(text):
        raise _Invalid("Invalid URI format.")
    return text


# EmailInput.EMAIL_PATTERN (note the typographic apostrophe, and that the empty string passes)
_EMAIL = re.compile(r"^$|^[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$")


def _p_email(value: Any, props: Mapping[str, Any], required: bool) -> str:
    text = _text(value)
    if not _EMAIL.fullmatch(text):
        raise _Invalid("The input must be a valid email")
    return text


def _option_values(raw: Any) -> list[str]:
    """A SELECT's `values`: strings or `{label, value}` options (ValueOption), as their values."""
    if raw is None:
        return []
    out = []
    for option in raw:
        if option is None:
            continue
        if isinstance(option, dict):
            if option.get("value") is None:
                raise _Invalid("Select option object must define a `value` field")
            out.append(_java_str(option["value"]))
        else:
            out.append(_java_str(option))
    return out


def _p_select(value: Any, props: Mapping[str, Any], required: bool) -> str:
    text = _text(value)
    values = _option_values(props.get("values"))
    # SelectInput/EnumInput.validate: an optional SELECT accepts any value
    if required and text not in values and not props.get("allowCustomValue"):
        raise _Invalid(f"it must match the values `[{', '.join(values)}]`")
    return text


def _p_multiselect(value: Any, props: Mapping[str, Any], required: bool) -> list[Any]:
    items = _parse_items(str(props.get("itemType") or "STRING").upper(), _as_list(value))
    reasons: list[str] = []
    values, options = props.get("values"), props.get("options")
    if values is not None and options is not None:
        reasons.append("you can't define both `values` and `options`")
    if not props.get("allowCustomValue"):
        allowed = _option_values(values if values is not None else options)
        shown = "[" + ", ".join(allowed) + "]"
        for item in items:
            text = _java_str(item)
            if text not in allowed:
                reason = f"value `{text}` doesn't match the values `{shown}`"
                if reason not in reasons:       # Kestra collects violations in a set
                    reasons.append(reason)
    if reasons:
        raise _Invalid(*reasons)
    return items


def _p_array(value: Any, props: Mapping[str, Any], required: bool) -> list[Any]:
    items = _as_list(value)
    item_type = props.get("itemType")
    return _parse_items(str(item_type).upper(), items) if item_type else items


def _parse_items(item_type: str, items: list[Any]) -> list[Any]:
    parser = _PARSERS.get(item_type)
    out = []
    for item in items:
        try:
            if item is None or parser is None:
                raise _Invalid()
            out.append(parser(item, _NO_PROPS, True))
        except (_Invalid, EncryptionError):
            raise _Invalid(f"Unable to parse array element as `{item_type}` on `{_java_str(item)}`") from None
    return out


def _p_secret(value: Any, props: Mapping[str, Any], required: bool) -> str:
    text = _text(value)
    try:
        encrypted = encrypt_secret(text)
    except EncryptionError as exc:
        raise _Invalid(exc.message) from None
    if props:
        _check_pattern(text, props)
    return encrypted


_NO_PROPS: Mapping[str, Any] = {}
_PARSERS: dict[str, _Parser] = {
    "STRING": _p_string, "ENUM": _p_select, "SELECT": _p_select, "INT": _p_int, "FLOAT": _p_float,
    "BOOLEAN": _p_boolean, "BOOL": _p_boolean, "DATETIME": _p_datetime, "DATE": _p_date, "TIME": _p_time,
    "DURATION": _p_duration, "FILE": _p_file, "JSON": _p_json, "URI": _p_uri, "SECRET": _p_secret,
    "ARRAY": _p_array, "MULTISELECT": _p_multiselect, "YAML": _p_yaml, "EMAIL": _p_email,
}


def _parse(type_name: str, value: Any, props: Mapping[str, Any], required: bool) -> Any:
    parser = _PARSERS.get(type_name) or _PARSERS.get(str(type_name).upper())
    if parser is None:
        raise _Invalid(f"unsupported type `{type_name}`")
    return parser(value, props, required)


def _input_error(input_id: str, reason: str) -> str:
    return f"Invalid value for input `{input_id}`. Cause: {reason}"


def parse_typed(type_name: str, value: Any, props: Mapping[str, Any], input_id: str) -> Any:
    """Parse and validate one value as Kestra types it (InputValidationError with Kestra's messages)."""
    if value is None:
        raise InputValidationError([f"Missing required input:{input_id}"])
    try:
        return _parse(type_name, value, props or _NO_PROPS, True)
    except _Invalid as inv:
        raise InputValidationError([_input_error(input_id, r) for r in inv.reasons]) from None


def coerce_output(output: Output, value: Any) -> Any:
    """Type a rendered flow output like Kestra's typedOutputs (InputValidationError on failure)."""
    if value is None:
        if not output.required:
            return None
        raise InputValidationError([
            f"Invalid value for output `{output.id}`. Cause: the value is null but the output is required "
            "(set `required: false` to allow null)"])
    try:
        typed = _parse(output.type, value, _NO_PROPS, True)
    except _Invalid as inv:
        raise InputValidationError(
            [f"Invalid value for output `{output.id}`. Cause: {r}" for r in inv.reasons]) from None
    if str(output.type).upper() == "SECRET":
        return {"value": typed, "type": ENCRYPTED_STRING_TYPE}
    return typed


# ------------------------------------------------------------------------------------------ resolution


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` as nested maps (Kestra's MapUtils.flattenToNestedMap)."""
    if "." not in key:
        target[key] = value
        return
    *parents, last = key.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _lookup(provided: Mapping[str, Any], key: str) -> Any:
    value = provided.get(key)
    if value is None and "." in key:
        # also accept the nested form run(inputs={"nested": {"string": ...}}) for a `nested.string` input
        node: Any = provided
        for part in key.split("."):
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node
    return value


_SELECTS = ("SELECT", "MULTISELECT")
_UNSEEN: Any = object()


class _Resolver:
    __slots__ = ("inputs", "provided", "variables", "result", "errors", "status", "pairs", "folded",
                 "context_inputs", "context", "by_id")

    def __init__(self, inputs: list[Input], provided: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
        self.inputs = inputs
        self.provided = provided
        self.variables = variables
        self.result: dict[str, Any] = {}
        self.errors: list[str] = []
        self.status: dict[str, bool | None] = {}     # True enabled, False disabled, None in progress
        self.pairs: list[tuple[str, Any]] = []      # (id, clear value) for the rendering context
        self.folded = 0
        self.context_inputs: dict[str, Any] = {}
        self.context: dict[str, Any] | None = None
        self.by_id: dict[str, Input] | None = None

    def render_context(self) -> dict[str, Any]:
        """`variables` + `inputs` (enabled inputs resolved so far, nested, secrets in clear)."""
        if self.context is None:
            self.context = {**self.variables, "inputs": self.context_inputs}
        pairs = self.pairs
        for i in range(self.folded, len(pairs)):
            _put(self.context_inputs, *pairs[i])
        self.folded = len(pairs)
        return self.context

    def dependency(self, input_id: str) -> Input | None:
        if self.by_id is None:
            self.by_id = {inp.id: inp for inp in self.inputs}
        return self.by_id.get(input_id)

    def enabled(self, inp: Input) -> bool:
        dep = inp.depends_on
        assert dep is not None
        enabled = True
        # Kestra resolves every dependency first (even one declared later), then requires all enabled
        for dep_id in dep.inputs or ():
            if dep_id == inp.id:
                continue
            state = self.status.get(dep_id, _UNSEEN)
            if state is _UNSEEN:
                dep_input = self.dependency(dep_id)
                if dep_input is None:        # unknown dependencies are ignored, like Kestra
                    continue
                state = self.resolve(dep_input)
            elif state is None:              # a dependency cycle: ignore the back edge
                continue
            if state is False:
                enabled = False
        if enabled and dep.condition is not None:
            try:
                enabled = render_typed(dep.condition, self.render_context()) is True
            except ExpressionError:
                # Kestra marks the condition error on the input, then drops it with the disabled input
                enabled = False
        return enabled

    def fail(self, inp: Input, reasons: tuple[str, ...] | list[str], raw: Any) -> bool:
        self.errors.extend(_input_error(inp.id, r) for r in reasons)
        if raw is not None:
            self.pairs.append((inp.id, raw))      # dependents see the raw value, as in Kestra
        self.status[inp.id] = True
        return True

    def resolve(self, inp: Input) -> bool:
        input_id = inp.id
        self.status[input_id] = None
        if inp.depends_on is not None and not self.enabled(inp):
            self.status[input_id] = False
            return False
        type_name = inp.type
        if type_name not in _PARSERS:
            type_name = str(type_name).upper()
        props = inp.props
        if type_name in _SELECTS and props.get("expression") is not None:
            try:
                props = self.render_values(inp, props)
            except _Invalid as inv:
                return self.fail(inp, inv.reasons, None)

        value = _lookup(self.provided, input_id)
        if value is None:
            default = inp.defaults
            if default is None and type_name in _SELECTS and props.get("autoSelectFirst"):
                try:
                    first = _option_values(props.get("values"))[:1]
                except _Invalid as inv:
                    return self.fail(inp, inv.reasons, None)
                if first:
                    default = first[0] if type_name == "SELECT" else first
            if default is not None:
                try:
                    value = self.render_default(default)
                except ExpressionError as exc:
                    return self.fail(inp, (exc.message,), None)

        if value is None:
            if inp.required:
                self.errors.append(f"Missing required input:{input_id}")
            else:
                _put(self.result, input_id, None)
                self.pairs.append((input_id, None))
            self.status[input_id] = True
            return True

        try:
            typed = _parse(type_name, value, props, inp.required)
        except _Invalid as inv:
            return self.fail(inp, inv.reasons, value)
        _put(self.result, input_id, typed)
        # templates see a SECRET in clear (Kestra decrypts them for dependent inputs and tasks)
        self.pairs.append((input_id, _text(value) if type_name == "SECRET" else typed))
        self.status[input_id] = True
        return True

    def render_default(self, default: Any) -> Any:
        if isinstance(default, str):
            return render_typed(default, self.render_context()) if "{" in default else default
        if isinstance(default, (list, dict)):
            return render_value(default, self.render_context())
        return default

    def render_values(self, inp: Input, props: Mapping[str, Any]) -> dict[str, Any]:
        """A SELECT/MULTISELECT `expression` rendered to its list of values (RenderableInput)."""
        expression = props["expression"]
        try:
            rendered = render_typed(expression.strip() if isinstance(expression, str) else expression,
                                    self.render_context())
        except ExpressionError as exc:
            raise _Invalid(f"Cannot render 'expression'. Cause: {exc.message}") from None
        if not isinstance(rendered, (list, tuple)):
            kind = "values" if str(inp.type).upper() == "SELECT" else "strings"
            raise _Invalid(f"Invalid expression result. Expected a list of {kind}")
        if str(inp.type).upper() == "SELECT":
            values: list[Any] = [v for v in rendered if v is not None]
        else:
            values = [_java_str(v) for v in rendered if v is not None]
        return {**props, "values": values}


def resolve_inputs(inputs: list[Input], provided: Mapping[str, Any], *,
                   variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Type the execution inputs of a flow as Kestra does; InputValidationError lists every failure."""
    if not inputs:
        return {}
    resolver = _Resolver(inputs, provided if provided is not None else {}, variables or {})
    status = resolver.status
    for inp in inputs:
        if inp.id not in status:
            resolver.resolve(inp)
    if resolver.errors:
        raise InputValidationError(resolver.errors)
    return resolver.result


# ------------------------------------------------------------------------------------------ encryption

_CIPHERS: dict[str, Any] = {}


def _java_b64decode(text: str) -> bytes:
    """`Base64.getDecoder().decode`: the basic alphabet, padding optional, nothing else allowed."""
    stripped = text.rstrip("=")
    if len(text) - len(stripped) > 2 or len(stripped) % 4 == 1:
        raise ValueError("Input byte array has wrong 4-byte ending unit")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("Illegal base64 character") from None


def _cipher() -> Any:
    raw = os.environ.get(SECRET_KEY_ENV)
    if not raw:
        raise EncryptionError(_NOT_CONFIGURED)
    cipher = _CIPHERS.get(raw)
    if cipher is None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # optional dependency, only for SECRET

        try:
            key = _java_b64decode(raw)
        except ValueError as exc:
            raise EncryptionError(f"{SECRET_KEY_ENV} must be a base64-encoded AES key: {exc}") from None
        if len(key) not in (16, 24, 32):
            raise EncryptionError(
                f"Invalid AES key length: {len(key)} bytes ({SECRET_KEY_ENV} must be a base64-encoded 32-byte key, "
                "e.g. the output of `openssl rand -base64 32`)")
        cipher = _CIPHERS[raw] = AESGCM(key)
    return cipher


def encrypt_secret(text: str) -> str:
    """Encrypt like Kestra's EncryptionService: base64(12-byte IV ‖ AES-GCM ciphertext ‖ 16-byte tag)."""
    cipher = _cipher()
    if not text:
        return text                     # EncryptionService leaves an empty string as is
    iv = os.urandom(12)
    return base64.b64encode(iv + cipher.encrypt(iv, text.encode("utf-8"), None)).decode("ascii")


def decrypt_secret(value: str) -> str:
    """Decrypt a value produced by `encrypt_secret` (or by Kestra with the same key)."""
    cipher = _cipher()
    if not value:
        return value
    try:
        data = _java_b64decode(value)
    except ValueError as exc:
        raise EncryptionError(f"Unable to decrypt the secret value: {exc}") from None
    if len(data) < 12 + 16:
        raise EncryptionError("Unable to decrypt the secret value: it is too short")
    from cryptography.exceptions import InvalidTag

    try:
        return cipher.decrypt(data[:12], data[12:], None).decode("utf-8")
    except InvalidTag:
        raise EncryptionError(
            f"Unable to decrypt the secret value: wrong key ({SECRET_KEY_ENV}) or corrupted value") from None


def decrypted_inputs(inputs: list[Input], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `execution.inputs` with SECRET inputs in clear, for the run context of tasks."""
    out = dict(values)
    for inp in inputs:
        if str(inp.type).upper() != "SECRET":
            continue
        *parents, last = inp.id.split(".")
        node: dict[str, Any] = out
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                break
            node[part] = child = dict(child)       # copy only along the path we change
            node = child
        else:
            if isinstance(node.get(last), str):
                node[last] = decrypt_secret(node[last])
    return out
