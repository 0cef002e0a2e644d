"""The filters of Kestra's Pebble (spec §6.4): Pebble core as Kestra customizes it, plus Kestra's own.

Each filter is declared with Kestra's argument names; positional arguments bind to those names in order
and named arguments must be one of them (Pebble's ArgumentsNode rules, same messages). A filter whose
Pebble argument list is null takes positional arguments only, as `"0"`, `"1"`… Filters that build a
`java.util.HashMap` in Kestra (`merge` of maps, `replace`/`escapeChar` on maps) return HashMap order.
"""
from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import quote_plus, unquote_plus

from jinja2.utils import pass_context

from ..parsing.javaregex import JavaPattern, RegexTimeout, compile_java
from .jqworker import JqLimit, JqProgramError, worker as jq_worker
from . import dates
from .runtime import (
    Budget,
    Forbidden,
    LimitExceeded,
    RenderError,
    budget_of,
    check_text,
)
from .values import (
    INT_MAX,
    INT_MIN,
    JFloat,
    MapEntry,
    OutputTooLarge,
    class_name,
    hash_ordered,
    java_str,
    to_float32,
    to_json,
)

Bound = dict[str, Any]
FilterImpl = Callable[[Any, Bound, Any], Any]

FILTERS: dict[str, Callable[..., Any]] = {}
FILTER_ARGS: dict[str, tuple[str, ...] | None] = {}


def bind(kind: str, name: str, names: tuple[str, ...] | None, args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> Bound:
    """Pebble's argument map: positional args take the declared names in order, named args must exist."""
    if names is None:
        return {str(i): v for i, v in enumerate(args)}
    if len(args) > len(names):
        raise RenderError(f"The argument at position {len(names) + 1} is not allowed. Only {len(names)} "
                          f"argument(s) are allowed.")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise RenderError(f"The following named argument does not exist: {key}")
        bound[key] = value
    return bound


def pebble_filter(name: str, args: tuple[str, ...] | None = None) -> Callable[[FilterImpl], FilterImpl]:
    """Register `impl(value, args, context)` as the filter `name` with Kestra's argument names."""
    def register(impl: FilterImpl) -> FilterImpl:
        @pass_context
        def apply(context: Any, value: Any, *pos: Any, **kw: Any) -> Any:
            bound = bind("filter", name, args, pos, kw) if pos or kw else {}
            return impl(value, bound, context)

        apply.__name__ = f"filter_{name}"
        FILTERS[name] = apply
        FILTER_ARGS[name] = args
        return impl

    return register


def _cast_str(value: Any) -> str:
    """Java's `(String) value` cast."""
    if isinstance(value, str):
        return value
    raise RenderError(f"class {class_name(value)} cannot be cast to class java.lang.String")


def _cast_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise RenderError(f"class {class_name(value)} cannot be cast to class java.lang.Long ({what})")
    return value


def _java_trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and ord(text[start]) <= 32:
        start += 1
    while end > start and ord(text[end - 1]) <= 32:
        end -= 1
    return text[start:end]


def _utf16_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _budget(context: Any) -> Budget:
    return budget_of(context)


def _preview(value: Any, size: int = 500) -> str:
    """toString() of a value for an error message, cut short."""
    try:
        return java_str(value, size)
    except OutputTooLarge:
        return "(too long to show)"


def _jstr(value: Any, context: Any) -> str:
    """toString() of a filter's input, within the render's output limit."""
    if isinstance(value, str):
        return value
    return java_str(value, context.environment.kestra_renderer.limits.max_output)


# ------------------------------------------------------------------------------------------- strings

@pebble_filter("upper")
def _upper(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _jstr(value, ctx).upper()


@pebble_filter("lower")
def _lower(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _jstr(value, ctx).lower()


@pebble_filter("trim")
def _trim(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _java_trim(_cast_str(value))


@pebble_filter("capitalize")
def _capitalize(value: Any, a: Bound, ctx: Any) -> Any:
    """The first non-blank character to title case; the rest untouched (unlike Jinja)."""
    if value is None:
        return None
    text = _cast_str(value)
    for i, c in enumerate(text):
        if not c.isspace():
            return text[:i] + c.title()[:1] + text[i + 1:]
    return text


@pebble_filter("title")
def _title(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    out: list[str] = []
    upper_next = True
    for c in _cast_str(value):
        if c.isspace():
            upper_next = True
        elif upper_next:
            c = c.title()[:1]
            upper_next = False
        out.append(c)
    return "".join(out)


@pebble_filter("abbreviate", ("length",))
def _abbreviate(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    text = _cast_str(value)
    width = _cast_int(a.get("length"), "length")
    if width < 0:
        raise RenderError("Invalid argument to abbreviate filter; must be greater than zero")
    if len(text) < width or len(text) <= 3:
        return text
    if width <= 3:
        return text[:width]
    return text[:width - 3] + "..."


@pebble_filter("default", ("default",))
def _default(value: Any, a: Bound, ctx: Any) -> Any:
    """The argument when the value is missing, null, blank, or an empty collection."""
    return a.get("default") if _is_empty(value) else value


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return _java_trim(value) == ""
    if isinstance(value, (list, tuple, dict, set)):
        return len(value) == 0
    return False


@pebble_filter("replace", ("replace_pairs", "regexp"))
def _replace(value: Any, a: Bound, ctx: Any) -> Any:
    """Kestra's replace: a map of search → replacement, literal or (regexp=true) Java regex."""
    if value is None:
        return None
    pairs = a.get("replace_pairs")
    if pairs is None:
        raise RenderError("The argument 'replace_pairs' is required.")
    if not isinstance(pairs, dict):
        raise RenderError(f"class {class_name(pairs)} cannot be cast to class java.util.Map")
    regexp = a.get("regexp", False)
    if not isinstance(regexp, bool):
        raise RenderError(f"class {class_name(regexp)} cannot be cast to class java.lang.Boolean")
    budget = _budget(ctx)
    compiled = [(_java_pattern(java_str(k)) if regexp else java_str(k), _java_replacement(java_str(v))
                 if regexp else java_str(v)) for k, v in pairs.items()]

    def one(text: str) -> str:
        for search, replacement in compiled:
            if regexp:
                try:
                    text = search.sub(replacement, text)  # type: ignore[union-attr]
                except RegexTimeout as exc:
                    raise RenderError(f"Rendering limit exceeded: {exc}") from None
            else:
                text = text.replace(search, replacement)  # type: ignore[arg-type]
            check_text(budget, text)
        return text

    return _deep_map(value, one, budget)


def _deep_map(value: Any, fn: Callable[[str], str], budget: Budget | None = None) -> Any:
    """Apply a string function to a string, or to every leaf of a map or list (maps become HashMaps)."""
    visited = [0]
    limit = budget.limits.max_collection if budget is not None else 1_000_000

    def walk(v: Any) -> Any:
        visited[0] += 1
        if visited[0] > limit:
            raise LimitExceeded(f"Rendering limit exceeded: a value with more than {limit} elements")
        if isinstance(v, dict):
            return hash_ordered((k, walk(x)) for k, x in v.items())
        if isinstance(v, list):
            return [walk(x) for x in v]
        return fn(java_str(v))

    return walk(value)


def _java_pattern(regex: str) -> JavaPattern:
    try:
        return compile_java(regex)
    except re.error as exc:
        raise RenderError(f"Invalid regular expression `{regex}`: {exc}") from None


_REPLACEMENT_TOKEN = re.compile(r"\\(.)|\$(\d+)|\$\{(\w+)\}", re.DOTALL)


def _java_replacement(replacement: str) -> Callable[[re.Match[str]], str]:
    """A Java Matcher.replaceAll replacement (`$1`, `${name}`, `\\$`) as a function for re.sub."""
    def expand(m: re.Match[str]) -> str:
        def one(t: re.Match[str]) -> str:
            if t.group(1) is not None:
                return t.group(1)
            group: int | str = int(t.group(2)) if t.group(2) is not None else t.group(3)
            try:
                return m.group(group) or ""
            except (IndexError, re.error):
                raise RenderError(f"No group {group}") from None
        return _REPLACEMENT_TOKEN.sub(one, replacement)

    return expand


@pebble_filter("escapeChar", ("type",))
def _escape_char(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if "type" not in a:
        raise RenderError("The 'escapeChar' filter expects an argument 'type'.")
    kind = a.get("type")
    kind = kind.lower() if isinstance(kind, str) else kind
    mapping = {"shell": ("'", "'\\''"), "single": ("'", "\\'"), "double": ('"', '\\"')}
    if kind not in mapping:
        raise RenderError("The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', "
                          "or 'shell'.")
    search, replacement = mapping[kind]
    return _deep_map(value, lambda text: text.replace(search, replacement), _budget(ctx))


@pebble_filter("urlencode")
def _urlencode(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    # java.net.URLEncoder keeps only [A-Za-z0-9.*_-] and encodes the space as "+"
    return quote_plus(_cast_str(value), safe="*").replace("~", "%7E")


@pebble_filter("urldecode")
def _urldecode(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    text = _cast_str(value)
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise RenderError("URLDecoder: Illegal hex characters in escape (%) pattern")
    return unquote_plus(text, errors="replace")


@pebble_filter("base64encode")
def _base64encode(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    return base64.b64encode(_jstr(value, ctx).encode("utf-8")).decode("ascii")


@pebble_filter("base64decode")
def _base64decode(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RenderError("This filter applies to String")
    text = value.rstrip("=")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (ValueError, base64.binascii.Error):  # type: ignore[attr-defined]
        raise RenderError("Please provide a correctly Base64 encoded string containing an UTF-8 string") from None
    return raw.decode("utf-8", errors="replace")


def _hash_filter(name: str, algorithm: str) -> None:
    @pebble_filter(name)
    def digest(value: Any, a: Bound, ctx: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise RenderError("Need a string to hash")
        return hashlib.new(algorithm, value.encode("utf-8")).hexdigest()


for _name, _algorithm in (("sha1", "sha1"), ("sha256", "sha256"), ("sha512", "sha512"), ("md5", "md5")):
    _hash_filter(_name, _algorithm)


@pebble_filter("slugify")
def _slugify(value: Any, a: Bound, ctx: Any) -> Any:
    """Kestra's Slugify.of: blanks to dashes, accents dropped, [a-z0-9-] kept, dashes squeezed."""
    if value is None:
        return None
    text = re.sub(r"[ \t\n\x0b\f\r]", "-", _jstr(value, ctx))
    text = unicodedata.normalize("NFD", text)
    text = re.sub(r"[^A-Za-z0-9_-]", "", text).replace("_", "-")
    text = re.sub(r"-{2,}", "-", text).removeprefix("-").removesuffix("-")
    return text.lower()


def _separator(a: Bound, name: str) -> str | None:
    if "separator" not in a:
        raise RenderError(f"The '{name}' filter expects an argument 'separator'.")
    sep = a["separator"]
    return None if sep is None else _cast_str(sep)


@pebble_filter("substringBefore", ("separator",))
def _substring_before(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    text, sep = _jstr(value, ctx), _separator(a, "substringBefore")
    if not text or sep is None:
        return text
    if sep == "":
        return ""
    pos = text.find(sep)
    return text if pos < 0 else text[:pos]


@pebble_filter("substringAfter", ("separator",))
def _substring_after(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    text, sep = _jstr(value, ctx), _separator(a, "substringAfter")
    if not text:
        return text
    if sep is None:
        return ""
    pos = text.find(sep)
    return "" if pos < 0 else text[pos + len(sep):]


@pebble_filter("substringBeforeLast", ("separator",))
def _substring_before_last(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    text, sep = _jstr(value, ctx), _separator(a, "substringBeforeLast")
    if not text or not sep:
        return text
    pos = text.rfind(sep)
    return text if pos < 0 else text[:pos]


@pebble_filter("substringAfterLast", ("separator",))
def _substring_after_last(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    text, sep = _jstr(value, ctx), _separator(a, "substringAfterLast")
    if not text:
        return text
    if not sep:
        return ""
    pos = text.rfind(sep)
    if pos < 0 or pos == len(text) - len(sep):
        return ""
    return text[pos + len(sep):]


@pebble_filter("startsWith", ("value",))
def _starts_with(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None or a.get("value") is None:
        raise RenderError("Cannot invoke \"Object.toString()\" because the value is null")
    return _jstr(value, ctx).startswith(java_str(a["value"]))


@pebble_filter("endsWith", ("value",))
def _ends_with(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None or a.get("value") is None:
        raise RenderError("Cannot invoke \"Object.toString()\" because the value is null")
    return _jstr(value, ctx).endswith(java_str(a["value"]))


def _indent(value: Any, a: Bound, ctx: Any, kind: str) -> Any:
    if value is None:
        return None
    text = _jstr(value, ctx)
    if not text:
        return text
    if "amount" not in a:
        raise RenderError(f"The '{kind}' filter expects an integer as argument 'amount'.")
    amount = _cast_int(a["amount"], "amount")
    if amount < 0:
        raise RenderError(f"The '{kind}' filter expects a positive integer >=0 as argument 'amount'.")
    prefix = _cast_str(a["prefix"]) if a.get("prefix") is not None else " "
    newline = ("\r\n" if "\r\n" in text else "\n\r" if "\n\r" in text else "\n" if "\n" in text
               else "\r" if "\r" in text else "\n")
    budget = _budget(ctx)
    budget.check_size(len(prefix) * amount, "an indentation")
    pad = prefix * amount
    if kind == "nindent":
        text = newline + text
    budget.check_size(len(text) + text.count(newline) * len(pad), "an indented string")
    return text.replace(newline, newline + pad)


@pebble_filter("indent", ("amount", "prefix"))
def _indent_filter(value: Any, a: Bound, ctx: Any) -> Any:
    return _indent(value, a, ctx, "indent")


@pebble_filter("nindent", ("amount", "prefix"))
def _nindent_filter(value: Any, a: Bound, ctx: Any) -> Any:
    return _indent(value, a, ctx, "nindent")


@pebble_filter("nl2br")
def _nl2br(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _jstr(value, ctx).replace("\n", "<br />")


@pebble_filter("string")
def _string(value: Any, a: Bound, ctx: Any) -> Any:
    """Kestra 1.x `string`: a number (or numeric string) as text."""
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _jstr(value, ctx)
    if isinstance(value, str):
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
            return str(Decimal(value))
        raise RenderError(f"'string' filter expects a valid number. Received an invalid numeric string: {value}")
    raise RenderError("'string' filter expects a Number (INT, FLOAT, DOUBLE, etc.) or numeric String. Received: "
                      + class_name(value))


# ------------------------------------------------------------------------------------------- collections

@pebble_filter("first")
def _first(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise RenderError("Index 0 out of bounds for length 0")
        return value[0]
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    if isinstance(value, (set, frozenset)):
        return next(iter(value), None)
    raise RenderError(f"class {class_name(value)} cannot be cast to class java.util.Collection")


@pebble_filter("last")
def _last(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise RenderError("Index -1 out of bounds for length 0")
        return value[-1]
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    raise RenderError(f"class {class_name(value)} cannot be cast to class java.util.Collection")


@pebble_filter("length")
def _length(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return 0
    if isinstance(value, str):
        return _utf16_len(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return len(value)
    return 0


@pebble_filter("join", ("separator",))
def _join(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    glue = a.get("separator")
    glue = "" if glue is None else _cast_str(glue)
    if isinstance(value, dict) or not isinstance(value, (list, tuple, set, frozenset)):
        raise RenderError("The 'join' filter expects that the input is either a collection or an array.")
    limit = _budget(ctx).limits.max_output
    parts: list[str] = []
    size = 0
    for v in value:
        part = java_str(v, limit)
        size += len(part) + len(glue)
        if size > limit:
            raise LimitExceeded(f"Rendering limit exceeded: a string longer than {limit} characters")
        parts.append(part)
    return glue.join(parts)


@pebble_filter("slice", ("fromIndex", "toIndex"))
def _slice(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    start = a.get("fromIndex")
    if start is None:
        start = 0
    elif isinstance(start, bool) or not isinstance(start, (int, float)):
        raise RenderError(f"Argument fromIndex must be a number. Actual type: {class_name(start)}")
    start = int(start)
    if start < 0:
        raise RenderError("fromIndex must be greater than 0")
    end = a.get("toIndex")
    if end is not None and (isinstance(end, bool) or not isinstance(end, (int, float))):
        raise RenderError(f"Argument toIndex must be a number. Actual type: {class_name(end)}")
    if not isinstance(value, (list, tuple, str)):
        raise RenderError("Slice filter can only be applied to String, List and array inputs. Actual type was: "
                          + class_name(value))
    length = len(value)
    if end is not None:
        end = int(end)
        if end > length:
            raise RenderError(f"toIndex must be smaller than input size: {length}")
        if start >= end:
            raise RenderError("toIndex must be greater than fromIndex")
    else:
        end = length
    if start > end:
        raise RenderError(f"begin {start}, end {end}, length {length}")
    return value[start:end] if isinstance(value, str) else list(value[start:end])


def _sort_key(value: Any) -> Any:
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, (int, float, Decimal)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    raise RenderError(f"class {class_name(value)} cannot be cast to class java.lang.Comparable")


def _sorted(value: Any, reverse: bool) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise RenderError("Unsupported input type for sort filter")
    kinds = {(_sort_key(v)[0]) for v in value if v is not None}
    if None in value or len(kinds) > 1:
        raise RenderError("Cannot sort a list of values of different types")
    return sorted(value, key=_sort_key, reverse=reverse)


@pebble_filter("sort")
def _sort(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _sorted(value, False)


@pebble_filter("rsort")
def _rsort(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _sorted(value, True)


@pebble_filter("reverse")
def _reverse(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise RenderError(f"class {class_name(value)} cannot be cast to class java.util.List")
    return list(reversed(value))


@pebble_filter("merge", ("items",))
def _merge(value: Any, a: Bound, ctx: Any) -> Any:
    items = a.get("items")
    if value is None:
        if items is None:
            raise RenderError("The two arguments to be merged are null")
        return items
    if items is None:
        return value
    budget = _budget(ctx)
    if isinstance(value, dict):
        if isinstance(items, dict):
            pairs = list(value.items()) + list(items.items())
        elif isinstance(items, (list, tuple)):
            pairs = list(value.items()) + [(o, o) for o in items]
        else:
            raise RenderError("Currently, only Maps and Lists can be merged with a Map. Arg2: " + class_name(items))
        budget.check_collection(len(pairs), "a map")
        return hash_ordered(pairs, len(value) + len(items) + 16)
    if isinstance(value, (list, tuple)):
        if isinstance(items, dict):
            merged = list(value) + [MapEntry(k, v) for k, v in items.items()]
        elif isinstance(items, (list, tuple)):
            merged = list(value) + list(items)
        else:
            raise RenderError("Currently, only Maps and Lists can be merged with a List. Arg2: " + class_name(items))
        budget.check_collection(len(merged))
        return merged
    raise RenderError("The object being filtered is not a Map/List/Array")


@pebble_filter("split", ("delimiter", "limit"))
def _split(value: Any, a: Bound, ctx: Any) -> Any:
    """Java's String.split(regex, limit): the delimiter is a regular expression."""
    if value is None:
        return None
    delimiter = a.get("delimiter")
    if delimiter is None:
        raise RenderError("missing delimiter parameter in split filter")
    text = _cast_str(value)
    delimiter = _cast_str(delimiter)
    limit = a.get("limit")
    limit = 0 if limit is None else int(limit)
    return java_split(text, delimiter, limit)


def java_split(text: str, regex: str, limit: int = 0) -> list[str]:
    """String.split semantics: zero-width leading match dropped, trailing empties dropped when limit is 0."""
    if text == "":
        return [""]
    pattern = _java_pattern(regex)
    parts: list[str] = []
    pos = 0
    try:
        matches = pattern.finditer(text)
    except RegexTimeout as exc:
        raise RenderError(f"Rendering limit exceeded: {exc}") from None
    for m in matches:
        if limit > 0 and len(parts) == limit - 1:
            break
        if m.end() == 0:
            continue  # a zero-width match at the start never yields a leading empty string
        if m.start() == m.end() and m.start() >= len(text):
            break
        parts.append(text[pos:m.start()])
        pos = m.end()
    if not parts:
        return [text]
    parts.append(text[pos:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


@pebble_filter("chunk", ("size",))
def _chunk(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if "size" not in a:
        raise RenderError("'chunk' filter expects an argument 'size'.")
    if not isinstance(value, (list, tuple)):
        raise RenderError(f"'chunk' filter can only be applied to List. Actual type was: {class_name(value)}")
    size = _cast_int(a["size"], "size")
    if size <= 0:
        raise RenderError(f"size ({size}) must be greater than 0")
    return [list(value[i:i + size]) for i in range(0, len(value), size)]


def _distinct_key(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return ("json", to_json(value))
    return (type(value).__name__, value)


@pebble_filter("distinct")
def _distinct(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return "null"
    if not isinstance(value, (list, tuple)):
        raise RenderError(f"Input must be a list, but received : {class_name(value)}")
    seen: set[Any] = set()
    out: list[Any] = []
    for item in value:
        key = _distinct_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


@pebble_filter("flatten")
def _flatten(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise RenderError("The 'flatten' filter can only be applied to lists.")
    out: list[Any] = []
    for item in value:
        if isinstance(item, (list, tuple)):
            out.extend(item)
        else:
            out.append(item)
    _budget(ctx).check_collection(len(out))
    return out


@pebble_filter("keys")
def _keys(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return list(value.keys())
    if isinstance(value, (list, tuple)):
        return list(range(len(value)))
    raise RenderError(f"'keys' filter can only be applied to List, Map, Array. Actual type was: {class_name(value)}")


@pebble_filter("values")
def _values(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return list(value.values())
    raise RenderError(f"'values' filter can only be applied to Map. Actual type was: {class_name(value)}")


@pebble_filter("className")
def _class_name(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else class_name(value)


# ------------------------------------------------------------------------------------------- JSON, YAML

def _to_json_filter(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return "null"
    return to_json(value, _budget(ctx).limits.max_output)


for _json_name in ("toJson", "json", "jsonEncode"):
    pebble_filter(_json_name)(_to_json_filter)


@pebble_filter("yaml")
def _yaml_filter(value: Any, a: Bound, ctx: Any) -> Any:
    """Serialize as YAML the way Kestra's Jackson YAML writer does (block style, minimal quotes)."""
    if value is None:
        return "null"
    out: list[str] = []
    budget = _budget(ctx)
    to_json(value, budget.limits.max_output)  # refuses a value too big to print before walking it
    _emit_yaml(value, 0, out, top=True)
    text = "".join(out)
    return check_text(_budget(ctx), text if text.endswith("\n") else text + "\n")


_YAML_PLAIN = re.compile(r"^[A-Za-z0-9_./()$][^:#\n\r\t\"'\\]*$")
_YAML_RESERVED = re.compile(r"^(?:~|null|true|false|yes|no|on|off|y|n)$", re.IGNORECASE)
_YAML_NUMBER = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$|^0x[0-9a-fA-F]+$|^[-+]?\.(?:inf|nan)$",
                          re.IGNORECASE)


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return java_str(value)
    if not isinstance(value, str):
        value = java_str(value) if not hasattr(value, "isoformat") else to_json(value)[1:-1]
    if (value and _YAML_PLAIN.match(value) and not _YAML_RESERVED.match(value) and not _YAML_NUMBER.match(value)
            and value == value.strip()):
        return value
    return to_json(value)


def _emit_yaml(value: Any, indent: int, out: list[str], top: bool = False) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            out.append("{}\n")
            return
        for k, v in value.items():
            key = _yaml_scalar(java_str(k))
            if isinstance(v, dict) and v:
                out.append(f"{pad}{key}:\n")
                _emit_yaml(v, indent + 2, out)
            elif isinstance(v, (list, tuple)) and v:
                out.append(f"{pad}{key}:\n")
                _emit_yaml(v, indent + 2, out)
            else:
                out.append(f"{pad}{key}: ")
                _emit_yaml(v, 0, out) if isinstance(v, (dict, list, tuple)) else out.append(_yaml_scalar(v) + "\n")
        return
    if isinstance(value, (list, tuple)):
        if not value:
            out.append("[]\n")
            return
        for v in value:
            if isinstance(v, dict) and v:
                first = len(out)
                _emit_yaml(v, indent + 2, out)
                out[first] = f"{pad}- " + out[first][indent + 2:]
            elif isinstance(v, (list, tuple)) and v:
                out.append(f"{pad}-\n")
                _emit_yaml(v, indent + 2, out)
            else:
                out.append(f"{pad}- ")
                _emit_yaml(v, 0, out) if isinstance(v, (dict, list, tuple)) else out.append(_yaml_scalar(v) + "\n")
        return
    out.append(_yaml_scalar(value) + "\n")


@pebble_filter("toIon")
def _to_ion(value: Any, a: Bound, ctx: Any) -> Any:
    """Ion text (Jackson's Ion writer): JSON-like with symbol field names and Ion number forms."""
    if value is None:
        return "null"
    return _ion(value)


def _ion(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_str(value).replace("E", "e") + ("e0" if "E" not in java_str(value) else "")
    if isinstance(value, Decimal):
        return str(value) + ("" if "." in str(value) else ".")
    if isinstance(value, dict):
        def field(k: Any) -> str:
            name = java_str(k)
            return name if re.match(r"^[A-Za-z_$][A-Za-z0-9_$]*$", name) else "'" + name.replace("'", "\\'") + "'"
        return "{" + ",".join(f"{field(k)}:{_ion(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_ion(v) for v in value) + "]"
    return to_json(value if isinstance(value, str) else java_str(value))


# ------------------------------------------------------------------------------------------- numbers

@pebble_filter("abs")
def _abs(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        raise RenderError('Can not pass null value to "abs" filter.')
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RenderError("The 'abs' filter does require as input a number.")
    return type(value)(abs(value)) if isinstance(value, JFloat) else abs(value)


@pebble_filter("number", ("type",))
def _number(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RenderError(f"'number' filter can only be applied to String. Actual type was: {class_name(value)}")
    kind = a.get("type") or ""
    try:
        return parse_number(value, kind)
    except (ValueError, ArithmeticError, InvalidOperation):
        raise RenderError(f'For input string: "{value}"') from None


def _decode_int(text: str) -> int:
    """Integer.decode / Long.decode: sign, then 0x / # hex, leading 0 octal, else decimal."""
    body = text
    sign = 1
    if body[:1] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body[:2].lower() == "0x":
        return sign * int(body[2:], 16)
    if body[:1] == "#":
        return sign * int(body[1:], 16)
    if len(body) > 1 and body[0] == "0":
        return sign * int(body[1:], 8)
    if not body.isdigit():
        raise ValueError(text)
    return sign * int(body)


def parse_number(text: str, kind: str = "") -> Any:
    """Kestra's `number` filter: NumberUtils.create*(text) for the type, or createNumber when none."""
    if kind == "INT":
        v = _decode_int(text)
        if not INT_MIN <= v <= INT_MAX:
            raise ValueError(text)
        return v
    if kind == "LONG":
        v = _decode_int(text)
        if not -(1 << 63) <= v < (1 << 63):
            raise ValueError(text)
        return v
    if kind == "FLOAT":
        return JFloat(_java_float_text(text))
    if kind == "DOUBLE":
        return float(_java_float_text(text))
    if kind == "BIGDECIMAL":
        return Decimal(text)
    if kind == "BIGINTEGER":
        return _decode_int(text)
    if kind:
        raise ValueError(kind)
    return _create_number(text)


def _java_float_text(text: str) -> str:
    body = text.strip()
    if body[-1:] in ("f", "F", "d", "D"):
        body = body[:-1]
    float(body)
    return body


def _create_number(text: str) -> Any:
    if not text.strip():
        raise ValueError("A blank string is not a valid number")
    body = text
    last = body[-1]
    if body.lstrip("+-")[:2].lower() == "0x" or body.lstrip("+-")[:1] == "#":
        v = _decode_int(body)
        return v
    if last in "lL" and body[:-1].lstrip("+-").isdigit():
        return _decode_int(body[:-1])
    if last in "fF":
        return JFloat(float(body[:-1]))
    if last in "dD":
        return float(body[:-1])
    if "." in body or "e" in body.lower():
        mantissa = body.lower().split("e")[0]
        decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
        exact = Decimal(body)
        if decimals <= 7:
            f = to_float32(float(body))
            if f not in (float("inf"), float("-inf")) and not (f == 0.0 and exact != 0):
                return JFloat(f)
        if decimals <= 16:
            d = float(body)
            if d not in (float("inf"), float("-inf")) and not (d == 0.0 and exact != 0):
                return d
        return exact
    v = _decode_int(body)
    return v


@pebble_filter("numberFormat", ("format",))
def _number_format(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RenderError("The input for the 'NumberFormat' filter has to be a number.")
    pattern = a.get("format")
    return decimal_format(value, pattern if pattern is not None else "#,##0.###")


def decimal_format(value: Any, pattern: str) -> str:
    """java.text.DecimalFormat for the common patterns: `#`, `0`, grouping, `%`, exponent, HALF_EVEN."""
    pattern = _cast_str(pattern)
    positive = pattern.split(";", 1)[0]
    m = re.match(r"^([^#0,.%‰E]*)([#0,]*)(?:\.([0#]*))?(?:E(0+))?(%|‰)?(.*)$", positive)
    if m is None:
        raise RenderError(f'Malformed pattern "{pattern}"')
    prefix, integer, fraction, exponent, percent, suffix = m.groups()
    fraction = fraction or ""
    min_frac = fraction.count("0")
    max_frac = len(fraction)
    min_int = integer.replace(",", "").count("0")
    grouping = len(integer) - integer.rfind(",") - 1 if "," in integer else 0
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "NaN" if value != value else ("-∞" if value < 0 else "∞")
    number = Decimal(value) if not isinstance(value, float) else Decimal(float(value))
    if percent == "%":
        number *= 100
    elif percent == "‰":
        number *= 1000
    negative = number < 0
    number = abs(number)
    if exponent:
        exp = 0 if number == 0 else number.adjusted() - (max(min_int, 1) - 1)
        mantissa = number.scaleb(-exp)
        digits = _fixed(mantissa, min_frac, max_frac)
        body = _group(digits, min_int, 0) + "E" + ("-" if exp < 0 else "") + str(abs(exp)).zfill(len(exponent))
    else:
        digits = _fixed(number, min_frac, max_frac)
        body = _group(digits, min_int, grouping)
    if negative and re.search(r"[1-9]", body):
        body = "-" + body
    return f"{prefix}{body}{percent or ''}{suffix}".replace("'", "")


def _fixed(number: Decimal, min_frac: int, max_frac: int) -> str:
    quantum = Decimal(1).scaleb(-max_frac)
    rounded = number.quantize(quantum, rounding=ROUND_HALF_EVEN)
    text = f"{rounded:f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        if len(frac) < min_frac:
            frac = frac.ljust(min_frac, "0")
        return whole + ("." + frac if frac else "")
    return text + ("." + "0" * min_frac if min_frac else "")


def _group(digits: str, min_int: int, grouping: int) -> str:
    whole, _, frac = digits.partition(".")
    whole = whole.lstrip("0")
    whole = whole.rjust(min_int, "0") if min_int else whole
    if grouping > 0 and len(whole) > grouping:
        parts = []
        while len(whole) > grouping:
            parts.insert(0, whole[-grouping:])
            whole = whole[:-grouping]
        parts.insert(0, whole)
        whole = ",".join(parts)
    if not whole and not frac:
        whole = "0"
    return whole + ("." + frac if frac else "")


# ------------------------------------------------------------------------------------------- dates

DATE_ARGS = ("format", "timeZone", "existingFormat", "locale")


def _date_args(a: Bound) -> tuple[str, Any, str | None]:
    fmt = a.get("format", "iso") if "format" in a else "iso"
    if fmt is None:
        fmt = "iso"
    existing = a.get("existingFormat")
    return _cast_str(fmt), dates.resolve_zone(a.get("timeZone")), None if existing is None else _cast_str(existing)


@pebble_filter("date", DATE_ARGS)
def _date(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    fmt, zone, existing = _date_args(a)
    try:
        dt, nano, _ = dates.to_zoned(value, zone, existing)
        return dates.format_date(dt.astimezone(zone), nano, fmt)
    except dates.DateError as exc:
        raise RenderError(str(exc)) from None


@pebble_filter("dateAdd", ("amount", "unit") + DATE_ARGS)
def _date_add(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    fmt, zone, existing = _date_args(a)
    amount = _cast_int(a.get("amount"), "amount")
    unit = _cast_str(a.get("unit"))
    try:
        dt, nano, _ = dates.to_zoned(value, zone, existing)
        dt, nano = dates.add_unit(dt, nano, amount, unit)
        return dates.format_date(dt.astimezone(zone), nano, fmt)
    except dates.DateError as exc:
        raise RenderError(str(exc)) from None
    except OverflowError:
        raise RenderError("Invalid value for Year (valid values -999999999 - 999999999)") from None


def _epoch(value: Any, a: Bound) -> tuple[int, int]:
    zone = dates.resolve_zone(a.get("timeZone"))
    existing = a.get("existingFormat")
    try:
        dt, nano, _ = dates.to_zoned(value, zone, None if existing is None else _cast_str(existing))
    except dates.DateError as exc:
        raise RenderError(str(exc)) from None
    seconds = int(dt.timestamp()) if dt.microsecond == 0 else int((dt.replace(microsecond=0)).timestamp())
    return seconds, nano


@pebble_filter("timestamp", ("timeZone", "existingFormat"))
def _timestamp(value: Any, a: Bound, ctx: Any) -> Any:
    return None if value is None else _epoch(value, a)[0]


@pebble_filter("timestampMilli", ("timeZone", "existingFormat"))
def _timestamp_milli(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    seconds, nano = _epoch(value, a)
    return seconds * 1000 + nano // 1_000_000


@pebble_filter("timestampMicro", ("timeZone", "existingFormat"))
def _timestamp_micro(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    seconds, nano = _epoch(value, a)
    # Kestra adds the micros to the epoch seconds in *nanos* (sic): kept for identical output
    return str(seconds * 1_000_000_000 + nano // 1000)


@pebble_filter("timestampNano", ("timeZone", "existingFormat"))
def _timestamp_nano(value: Any, a: Bound, ctx: Any) -> Any:
    if value is None:
        return None
    seconds, nano = _epoch(value, a)
    return str(seconds * 1_000_000_000 + nano)


# ------------------------------------------------------------------------------------------- jq

# jq built-ins that reach outside the value: the process environment, module files, stderr
_JQ_FORBIDDEN = re.compile(r"\$ENV\b|\$__prog_args\b|(?<![.\w$\"])(?:env|import|include|modulemeta|get_search_list"
                           r"|debug|stderr|input_filename|get_prog_origin|get_jq_origin)\b")


def _jq_allowed(expression: str) -> None:
    forbidden = _JQ_FORBIDDEN.search(expression)
    if forbidden is not None:
        raise Forbidden(f"jq: `{forbidden.group()}` is not allowed in expressions")


@pebble_filter("jq", ("expression",))
def _jq(value: Any, a: Bound, ctx: Any) -> Any:
    """Apply a jq program; the result is always the list of everything it produced. Programs run in a child
    process bounded in time and memory (expressions.jqworker)."""
    if value is None:
        return None
    if "expression" not in a:
        raise RenderError("The 'jq' filter expects an argument 'expression'.")
    expression = _cast_str(a["expression"])
    _jq_allowed(expression)
    budget = _budget(ctx)
    limits = budget.limits
    if isinstance(value, str):
        text = value
    else:
        text = to_json(value, limits.max_output)
    try:
        results = jq_worker().run(expression, text, limits.max_collection, limits.max_output)
    except JqLimit as exc:
        raise LimitExceeded(str(exc) if str(exc).startswith("Rendering limit exceeded")
                            else f"Rendering limit exceeded: {exc}") from None
    except JqProgramError as exc:
        first = exc.message.splitlines()[0] if exc.message else "invalid"
        if exc.kind == "compile":
            raise RenderError(f"Failed to resolve JQ expression '{expression}': {first}") from None
        raise RenderError(f"Unable to parse jq value '{_preview(value)}' with type '{class_name(value)}': "
                          f"{first}") from None
    budget.check_collection(len(results), "a jq result")
    return results


__all__ = ["FILTERS", "FILTER_ARGS", "bind", "decimal_format", "java_split", "parse_number", "pebble_filter"]
