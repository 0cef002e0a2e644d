"""Dates the way Kestra's `date`, `dateAdd`, `timestamp*` filters and `now()` handle them.

This module owns Java `DateTimeFormatter` patterns (`yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX`, optional sections,
quoted literals), the named presets (`iso`, `sql`, `iso_date_time`, `rfc_1123_date_time`, the localized
styles `full`/`long`/`medium`/`short` in en-US), parsing a string with a pattern or preset (Kestra tries
a zoned date-time, then a local date-time, then a local date), Java's `ZoneId.of` names, and ChronoUnit
arithmetic. Month and day names are English (Kestra's default locale); other locales fall back to it.
"""
from __future__ import annotations

import calendar
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class DateError(ValueError):
    """A date could not be parsed, formatted or computed; the message is Java's."""


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_NNBSP = "\u202f"  # JDK 20+ CLDR puts a narrow no-break space before AM/PM

PRESET_PATTERNS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
}
STYLE_PATTERNS = {
    "short": f"M/d/yy, h:mm{_NNBSP}a",
    "medium": f"MMM d, y, h:mm:ss{_NNBSP}a",
    "long": f"MMMM d, y 'at' h:mm:ss{_NNBSP}a z",
    "full": f"EEEE, MMMM d, y 'at' h:mm:ss{_NNBSP}a zzzz",
}
ISO_PRESETS = frozenset({
    "iso_date_time", "iso_date", "iso_time", "iso_local_date", "iso_instant", "iso_local_date_time",
    "iso_local_time", "iso_offset_time", "iso_ordinal_date", "iso_week_date", "iso_zoned_date_time",
    "rfc_1123_date_time",
})

CHRONO_UNITS = {
    "NANOS": ("time", 1e-9), "MICROS": ("time", 1e-6), "MILLIS": ("time", 1e-3), "SECONDS": ("time", 1),
    "MINUTES": ("time", 60), "HOURS": ("time", 3600), "HALF_DAYS": ("time", 43200),
    "DAYS": ("days", 1), "WEEKS": ("days", 7),
    "MONTHS": ("months", 1), "YEARS": ("months", 12), "DECADES": ("months", 120),
    "CENTURIES": ("months", 1200), "MILLENNIA": ("months", 12000),
}


# ------------------------------------------------------------------------------------------- zones

class _NamedUTC(tzinfo):
    """ZoneId.of("UTC"): a region zone named UTC (ISO_ZONED_DATE_TIME prints `[UTC]`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


_OFFSET_ID = re.compile(r"^(?:(UTC|GMT|UT))?([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$")


@lru_cache(maxsize=256)
def zone_of(name: str) -> tzinfo:
    """Java's ZoneId.of: region ids, `UTC`/`GMT`/`Z`, offsets `+02:00`, prefixed offsets `UTC+2`."""
    if name in ("UTC", "GMT", "UT"):
        return _NamedUTC(name)
    if name == "Z":
        return timezone.utc
    m = _OFFSET_ID.match(name)
    if m:
        sign = -1 if m.group(2) == "-" else 1
        seconds = int(m.group(3)) * 3600 + int(m.group(4) or 0) * 60 + int(m.group(5) or 0)
        if seconds > 18 * 3600:
            raise DateError("Zone offset not in valid range: -18:00 to +18:00")
        return timezone(sign * timedelta(seconds=seconds))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise DateError(f"Unknown time-zone ID: {name}") from None


def zone_id(zone: tzinfo) -> str | None:
    """The region id of a zone (`Europe/Paris`, `UTC`), or None for a fixed offset."""
    if isinstance(zone, ZoneInfo):
        return zone.key
    if isinstance(zone, _NamedUTC):
        return zone.name
    return None


@lru_cache(maxsize=1)
def system_zone() -> tzinfo:
    """The JVM's ZoneId.systemDefault(): `TZ`, else /etc/localtime, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        link = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                zone = zone_of(name)
            except DateError:
                continue
            if zone_id(zone) in ("Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"):
                return zone_of("UTC")
            return zone
    return zone_of("UTC")


def resolve_zone(name: Any) -> tzinfo:
    """The zone of a `timeZone` argument (the system default when absent)."""
    if name is None:
        return system_zone()
    if not isinstance(name, str):
        raise DateError(f"Invalid timeZone argument: {name!r}")
    return zone_of(name)


# ------------------------------------------------------------------------------------------- values

@dataclass(slots=True)
class Parsed:
    """A date parsed from text: what fields it had decides zoned / local date-time / local date."""

    value: datetime          # naive unless the text carried an offset or a zone
    nano: int
    has_time: bool
    has_zone: bool


def to_zoned(value: Any, zone: tzinfo, existing_format: str | None = None) -> tuple[datetime, int, bool]:
    """Kestra's AbstractDate.convert: (aware datetime, nano of second, zoned-by-input).

    Instants and aware datetimes are moved to `zone`; local date-times are placed in it; local dates
    are taken at noon; integers are epoch seconds; strings are parsed (zoned, then local, then date).
    """
    if isinstance(value, bool):
        raise DateError("class java.lang.Boolean cannot be cast to class java.lang.String")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(zone), value.microsecond * 1000, False
        return value.replace(tzinfo=zone), value.microsecond * 1000, False
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 12, tzinfo=zone), 0, False
    if isinstance(value, int):
        try:
            dt = datetime.fromtimestamp(value, timezone.utc).astimezone(zone)
        except (OverflowError, OSError, ValueError):
            raise DateError(f"Invalid value for EpochSecond: {value}") from None
        return dt, 0, False
    if not isinstance(value, str):
        from .values import class_name
        raise DateError(f"class {class_name(value)} cannot be cast to class java.lang.String")
    parsed = parse_text(value, existing_format)
    if parsed.has_zone:
        return parsed.value, parsed.nano, True
    return parsed.value.replace(tzinfo=zone), parsed.nano, False


def parse_text(text: str, existing_format: str | None) -> Parsed:
    """Parse like Kestra: ZonedDateTime, then LocalDateTime, then LocalDate (at start of day)."""
    if existing_format is None:
        parser = _ISO_PARSERS["iso_zoned_date_time"]
        for candidate in (parser, _ISO_PARSERS["iso_local_date_time"], _ISO_PARSERS["iso_local_date"]):
            result = candidate(text)
            if result is not None:
                return result
        raise DateError(f"Text '{text}' could not be parsed at index 0")
    fields = _parse_with(existing_format, text)
    if fields is None:
        raise DateError(f"Text '{text}' could not be parsed at index 0")
    return fields


# ------------------------------------------------------------------------------------------- formatting

def format_date(dt: datetime, nano: int, fmt: str) -> str:
    """Format an aware datetime with a preset name, a style, or a Java pattern."""
    if fmt in PRESET_PATTERNS:
        return _compile(PRESET_PATTERNS[fmt]).format(dt, nano)
    if fmt in STYLE_PATTERNS:
        return _compile(STYLE_PATTERNS[fmt]).format(dt, nano)
    if fmt in ISO_PRESETS:
        return _ISO_FORMATTERS[fmt](dt, nano)
    return _compile(fmt).format(dt, nano)


def _offset_id(dt: datetime, colon: bool = True, z_for_zero: bool = True, seconds: bool = True) -> str:
    off = dt.utcoffset() or timedelta(0)
    total = int(off.total_seconds())
    if total == 0 and z_for_zero:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    sep = ":" if colon else ""
    text = f"{sign}{h:02d}{sep}{m:02d}"
    if s and seconds:
        text += f"{sep}{s:02d}"
    return text


def _fraction_min(nano: int) -> str:
    """ISO fraction: as many digits as needed (none for a whole second)."""
    if not nano:
        return ""
    return "." + f"{nano:09d}".rstrip("0")


def _fraction_groups(nano: int) -> str:
    """ISO_INSTANT fraction: groups of three digits, as Instant.toString."""
    if not nano:
        return ""
    if nano % 1_000_000 == 0:
        return f".{nano // 1_000_000:03d}"
    if nano % 1000 == 0:
        return f".{nano // 1000:06d}"
    return f".{nano:09d}"


def _year(y: int) -> str:
    return f"{y:04d}" if 0 <= y <= 9999 else (f"+{y}" if y > 9999 else f"{y:05d}")


def _local_date(dt: datetime) -> str:
    return f"{_year(dt.year)}-{dt.month:02d}-{dt.day:02d}"


def _local_time(dt: datetime, nano: int) -> str:
    return f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}{_fraction_min(nano)}"


def _region(dt: datetime) -> str:
    region = zone_id(dt.tzinfo) if dt.tzinfo is not None else None
    return f"[{region}]" if region else ""


def _iso_week(dt: datetime) -> str:
    year, week, weekday = dt.isocalendar()
    return f"{_year(year)}-W{week:02d}-{weekday}"


def _rfc_1123(dt: datetime, nano: int) -> str:
    off = _offset_id(dt, colon=False, z_for_zero=False, seconds=False)
    off = "GMT" if off == "+0000" else off
    return (f"{DAYS[dt.weekday()][:3]}, {dt.day} {MONTHS[dt.month - 1][:3]} {_year(dt.year)} "
            f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {off}")


def _instant(dt: datetime, nano: int) -> str:
    utc = dt.astimezone(timezone.utc)
    return f"{_local_date(utc)}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}{_fraction_groups(nano)}Z"


_ISO_FORMATTERS: dict[str, Callable[[datetime, int], str]] = {
    "iso_local_date": lambda dt, n: _local_date(dt),
    "iso_local_time": lambda dt, n: _local_time(dt, n),
    "iso_local_date_time": lambda dt, n: f"{_local_date(dt)}T{_local_time(dt, n)}",
    "iso_date": lambda dt, n: _local_date(dt) + _offset_id(dt),
    "iso_time": lambda dt, n: _local_time(dt, n) + _offset_id(dt),
    "iso_offset_time": lambda dt, n: _local_time(dt, n) + _offset_id(dt),
    "iso_date_time": lambda dt, n: f"{_local_date(dt)}T{_local_time(dt, n)}{_offset_id(dt)}{_region(dt)}",
    "iso_zoned_date_time": lambda dt, n: f"{_local_date(dt)}T{_local_time(dt, n)}{_offset_id(dt)}{_region(dt)}",
    "iso_instant": _instant,
    "iso_ordinal_date": lambda dt, n: f"{_year(dt.year)}-{dt.timetuple().tm_yday:03d}{_offset_id(dt)}",
    "iso_week_date": lambda dt, n: _iso_week(dt) + _offset_id(dt),
    "rfc_1123_date_time": _rfc_1123,
}


# ------------------------------------------------------------------------------------------- patterns

_LETTERS = frozenset("GuyDMLdQqYwWEecFaBhKkHmsSAnNVvzOXxZp")


@dataclass(slots=True)
class _Field:
    letter: str
    count: int


@dataclass(slots=True)
class _Optional:
    items: list[Any]


class Pattern:
    """A compiled Java DateTimeFormatter pattern: format, and parse via a regular expression."""

    __slots__ = ("source", "items", "_regex", "_groups")

    def __init__(self, source: str, items: list[Any]) -> None:
        self.source = source
        self.items = items
        self._regex: re.Pattern[str] | None = None
        self._groups: list[_Field] = []

    def format(self, dt: datetime, nano: int) -> str:
        return "".join(_format_items(self.items, dt, nano))

    def parse(self, text: str) -> Parsed | None:
        if self._regex is None:
            groups: list[_Field] = []
            self._regex = re.compile("^" + _regex_items(self.items, groups) + "$")
            self._groups = groups
        m = self._regex.match(text)
        if m is None:
            return None
        values: dict[str, Any] = {}
        for i, fld in enumerate(self._groups, start=1):
            raw = m.group(i)
            if raw is not None:
                values.setdefault(fld.letter, (fld.count, raw))
        return _resolve(values, text)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> Pattern:
    items, pos = _parse_pattern(pattern, 0, nested=False)
    return Pattern(pattern, items)


def _parse_pattern(p: str, pos: int, nested: bool) -> tuple[list[Any], int]:
    items: list[Any] = []
    n = len(p)
    while pos < n:
        c = p[pos]
        if c == "'":
            end = pos + 1
            literal = []
            while True:
                if end >= n:
                    raise DateError(f"Pattern ends with an incomplete string literal: {p}")
                if p[end] == "'":
                    if end + 1 < n and p[end + 1] == "'":
                        literal.append("'")
                        end += 2
                        continue
                    break
                literal.append(p[end])
                end += 1
            items.append("'" if end == pos + 1 else "".join(literal))
            pos = end + 1
        elif c == "[":
            inner, pos = _parse_pattern(p, pos + 1, nested=True)
            items.append(_Optional(inner))
        elif c == "]":
            if not nested:
                raise DateError("Pattern invalid as it contains ] without previous [")
            return items, pos + 1
        elif c.isascii() and c.isalpha():
            if c not in _LETTERS:
                raise DateError(f"Unknown pattern letter: {c}")
            end = pos
            while end < n and p[end] == c:
                end += 1
            items.append(_Field(c, end - pos))
            pos = end
        elif c in "{}#":
            raise DateError(f"Pattern includes reserved character: '{c}'")
        else:
            items.append(c)
            pos += 1
    return items, pos


def _text_month(month: int, count: int) -> str:
    name = MONTHS[month - 1]
    return name[:3] if count == 3 else name if count == 4 else name[0]


def _text_day(weekday: int, count: int) -> str:
    name = DAYS[weekday]
    return name[:3] if count <= 3 else name if count == 4 else name[0]


def _num(value: int, count: int, max_width: int = 19) -> str:
    if count > max_width:
        raise DateError("Too many pattern letters")
    text = str(abs(value)).zfill(count)
    return ("-" + text) if value < 0 else text


def _format_items(items: list[Any], dt: datetime, nano: int) -> list[str]:
    out: list[str] = []
    pad_next = 0
    for item in items:
        if isinstance(item, str):
            out.append(item)
            continue
        if isinstance(item, _Optional):
            out.extend(_format_items(item.items, dt, nano))
            continue
        text = _format_field(item.letter, item.count, dt, nano)
        if item.letter == "p":
            pad_next = item.count
            continue
        if pad_next:
            text = text.rjust(pad_next)
            pad_next = 0
        out.append(text)
    return out


def _format_field(letter: str, count: int, dt: datetime, nano: int) -> str:
    if letter in "yuY":
        year = dt.isocalendar()[0] if letter == "Y" else dt.year
        if letter == "y" and year <= 0:
            year = 1 - year
        if count == 2:
            return f"{year % 100:02d}"
        if count == 1:
            return str(year)
        text = str(abs(year)).zfill(count)
        if count >= 4 and abs(year) >= 10 ** count:
            return ("+" if year > 0 else "-") + text
        return ("-" + text) if year < 0 else text
    if letter in "ML":
        return _num(dt.month, count, 2) if count <= 2 else _text_month(dt.month, count)
    if letter == "d":
        return _num(dt.day, count, 2)
    if letter == "D":
        return _num(dt.timetuple().tm_yday, count, 3)
    if letter in "Qq":
        q = (dt.month - 1) // 3 + 1
        if count <= 2:
            return _num(q, count, 2)
        return f"Q{q}" if count == 3 else f"{q}{['st', 'nd', 'rd', 'th'][q - 1]} quarter" if count == 4 else str(q)
    if letter == "E":
        return _text_day(dt.weekday(), count)
    if letter in "ec":
        if count <= 2:
            return _num((dt.weekday() + 1) % 7 + 1, count, 2)  # en-US weeks start on Sunday
        return _text_day(dt.weekday(), count)
    if letter == "w":
        return _num(_week_of_year_us(dt), count, 2)
    if letter == "W":
        return str(_week_of_month_us(dt))
    if letter == "F":
        return str((dt.day - 1) // 7 + 1)
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter == "B":
        return "in the morning" if dt.hour < 12 else "in the afternoon" if dt.hour < 18 else "in the evening"
    if letter == "G":
        return "AD" if count <= 3 else "Anno Domini" if count == 4 else "A"
    if letter == "H":
        return _num(dt.hour, count, 2)
    if letter == "k":
        return _num(dt.hour or 24, count, 2)
    if letter == "K":
        return _num(dt.hour % 12, count, 2)
    if letter == "h":
        return _num(dt.hour % 12 or 12, count, 2)
    if letter == "m":
        return _num(dt.minute, count, 2)
    if letter == "s":
        return _num(dt.second, count, 2)
    if letter == "S":
        return f"{nano:09d}"[:count] if count <= 9 else f"{nano:09d}" + "0" * (count - 9)
    if letter == "n":
        return _num(nano, count)
    if letter == "A":
        return _num(((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + nano // 1_000_000, count)
    if letter == "N":
        return _num(((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1_000_000_000 + nano, count)
    if letter == "V":
        if count != 2:
            raise DateError("Pattern letter count must be 2: V")
        return zone_id(dt.tzinfo) or _offset_id(dt) if dt.tzinfo is not None else ""
    if letter in "zv":
        return dt.tzname() or _offset_id(dt)
    if letter == "O":
        off = _offset_id(dt, z_for_zero=False)
        if off == "+00:00":
            return "GMT"
        if count == 1:
            sign, h, m = off[0], int(off[1:3]), off[4:6]
            return f"GMT{sign}{h}" + (f":{m}" if m != "00" else "")
        return "GMT" + off
    if letter in "Xx":
        zero = letter == "X"
        off = dt.utcoffset() or timedelta(0)
        if zero and not off:
            return "Z"
        full = _offset_id(dt, colon=count in (3, 5), z_for_zero=False, seconds=count >= 4)
        if count == 1:
            return full[:3] if full[3:] in ("00", ":00") or len(full) == 5 and full[3:] == "00" else full.replace(":", "")
        return full
    if letter == "Z":
        if count <= 3:
            return _offset_id(dt, colon=False, z_for_zero=False, seconds=False)
        if count == 4:
            off = _offset_id(dt, z_for_zero=False)
            return "GMT" if off == "+00:00" else "GMT" + off
        return _offset_id(dt)
    if letter == "p":
        return ""
    raise DateError(f"Unknown pattern letter: {letter}")


def _week_of_year_us(dt: datetime) -> int:
    # en-US week fields: weeks start on Sunday, week 1 contains January 1st
    jan1 = date(dt.year, 1, 1)
    offset = (jan1.weekday() + 1) % 7
    return (dt.timetuple().tm_yday - 1 + offset) // 7 + 1


def _week_of_month_us(dt: datetime) -> int:
    first = date(dt.year, dt.month, 1)
    offset = (first.weekday() + 1) % 7
    return (dt.day - 1 + offset) // 7 + 1


# ------------------------------------------------------------------------------------------- parsing

_MONTH_RE = "|".join(MONTHS + [m[:3] for m in MONTHS])
_DAY_RE = "|".join(DAYS + [d[:3] for d in DAYS])


def _regex_items(items: list[Any], groups: list[_Field]) -> str:
    parts: list[str] = []
    for item in items:
        if isinstance(item, str):
            parts.append(re.escape(item))
        elif isinstance(item, _Optional):
            parts.append("(?:" + _regex_items(item.items, groups) + ")?")
        else:
            parts.append("(" + _field_regex(item) + ")")
            groups.append(item)
    return "".join(parts)


def _field_regex(f: _Field) -> str:
    c, n = f.letter, f.count
    if c in "yuY":
        return r"\d{2}" if n == 2 else r"[+-]?\d{%d,10}" % max(n, 1) if n >= 4 else r"[+-]?\d{1,10}"
    if c in "ML":
        return (r"\d{1,2}" if n == 1 else r"\d{2}") if n <= 2 else _MONTH_RE
    if c in "dHkKhmsw":
        return r"\d{1,2}" if n == 1 else r"\d{2}"
    if c == "D":
        return r"\d{1,3}" if n == 1 else r"\d{%d,3}" % n
    if c in "Ee":
        return _DAY_RE if c == "E" or n >= 3 else r"\d{1,2}"
    if c == "a":
        return "AM|PM|am|pm"
    if c == "S":
        return r"\d{%d}" % n
    if c in "nNA":
        return r"\d+"
    if c in "XxZO":
        return r"Z|GMT|UTC|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?|GMT[+-]\d{1,2}(?::\d{2})?"
    if c in "Vzv":
        return r"[A-Za-z][A-Za-z0-9_/+\-]*"
    if c in "GQqWFB":
        return r"[A-Za-z0-9 ]+?"
    return r".+?"


def _parse_with(existing_format: str, text: str) -> Parsed | None:
    if existing_format in ISO_PRESETS:
        parser = _ISO_PARSERS.get(existing_format)
        return parser(text) if parser else None
    pattern = PRESET_PATTERNS.get(existing_format) or STYLE_PATTERNS.get(existing_format) or existing_format
    return _compile(pattern).parse(text)


def _month_value(count: int, raw: str) -> int:
    if raw.isdigit():
        return int(raw)
    for i, name in enumerate(MONTHS):
        if raw == name or raw == name[:3]:
            return i + 1
    raise DateError(f"Unknown month {raw}")


def _resolve(values: dict[str, tuple[int, str]], text: str) -> Parsed | None:
    def num(letter: str) -> int | None:
        item = values.get(letter)
        return int(item[1]) if item is not None and item[1].lstrip("+-").isdigit() else None

    year = num("y") if "y" in values else num("u") if "u" in values else num("Y")
    if year is not None and values.get("y", values.get("u", (0, "")))[0] == 2:
        year += 2000  # Java's reduced two-digit year base is 2000
    month = _month_value(*values["M"]) if "M" in values else (_month_value(*values["L"]) if "L" in values else None)
    day = num("d")
    doy = num("D")
    hour = num("H")
    if hour is None and "k" in values:
        hour = num("k") % 24  # type: ignore[operator]
    if hour is None and ("h" in values or "K" in values):
        h12 = num("h") if "h" in values else num("K")
        pm = values.get("a", (0, "AM"))[1].upper() == "PM"
        hour = (h12 % 12) + (12 if pm else 0)  # type: ignore[operator]
    minute = num("m")
    second = num("s") or 0
    nano = 0
    if "S" in values:
        digits = values["S"][1]
        nano = int((digits + "000000000")[:9])
    elif "n" in values:
        nano = int(values["n"][1])
    zone: tzinfo | None = None
    for letter in "XxZO":
        if letter in values:
            zone = _offset_zone(values[letter][1])
            break
    for letter in "Vzv":
        if letter in values:
            try:
                zone = zone_of(values[letter][1])
            except DateError:
                return None
            break
    if year is None:
        return None
    try:
        if doy is not None and month is None:
            d = date(year, 1, 1) + timedelta(days=doy - 1)
        else:
            if month is None or day is None:
                return None
            d = date(year, month, day)
    except ValueError:
        raise DateError(f"Text '{text}' could not be parsed: Invalid date") from None
    has_time = hour is not None
    if has_time and minute is None and "m" not in values:
        minute = 0
    try:
        value = datetime(d.year, d.month, d.day, hour or 0, minute or 0, second, nano // 1000)
    except ValueError:
        raise DateError(f"Text '{text}' could not be parsed: Invalid time") from None
    if zone is not None and has_time:
        return Parsed(value.replace(tzinfo=zone), nano, True, True)
    return Parsed(value, nano, has_time, False)


def _offset_zone(raw: str) -> tzinfo:
    if raw in ("Z", "GMT", "UTC", "z"):
        return timezone.utc
    m = re.match(r"^(?:GMT|UTC)?([+-])(\d{1,2}):?(\d{2})?:?(\d{2})?$", raw)
    if not m:
        raise DateError(f"Invalid offset {raw}")
    sign = -1 if m.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0),
                                     seconds=int(m.group(4) or 0)))


_DATE = r"(?P<y>[+-]?\d{4,9})-(?P<mo>\d{2})-(?P<d>\d{2})"
_TIME = r"(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{0,9}))?)?"
_OFFSET = r"(?P<off>Z|z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)"
_REGION = r"(?:\[(?P<zone>[^\]]+)\])"


def _iso_parser(regex: str, want_time: bool, want_zone: bool) -> Callable[[str], Parsed | None]:
    compiled = re.compile("^" + regex + "$")

    def parse(text: str) -> Parsed | None:
        m = compiled.match(text)
        if m is None:
            return None
        g = m.groupdict()
        try:
            d = date(int(g["y"]), int(g["mo"]), int(g["d"])) if g.get("y") else date(1970, 1, 1)
        except ValueError:
            raise DateError(f"Text '{text}' could not be parsed: Invalid date") from None
        nano = int(((g.get("f") or "") + "000000000")[:9])
        hour, minute, second = int(g.get("h") or 0), int(g.get("mi") or 0), int(g.get("s") or 0)
        try:
            value = datetime(d.year, d.month, d.day, hour, minute, second, nano // 1000)
        except ValueError:
            raise DateError(f"Text '{text}' could not be parsed: Invalid time") from None
        zone: tzinfo | None = None
        if g.get("zone"):
            zone = zone_of(g["zone"])
        elif g.get("off"):
            zone = _offset_zone(g["off"])
        if zone is not None:
            if g.get("off") and g.get("zone"):
                # the offset fixes the instant, the region the zone it is shown in
                value = value.replace(tzinfo=_offset_zone(g["off"])).astimezone(zone)
            else:
                value = value.replace(tzinfo=zone)
            return Parsed(value, nano, True, True)
        return Parsed(value, nano, want_time, False)

    return parse


_ISO_PARSERS: dict[str, Callable[[str], Parsed | None]] = {
    "iso_local_date": _iso_parser(_DATE, False, False),
    "iso_local_date_time": _iso_parser(_DATE + "T" + _TIME, True, False),
    "iso_zoned_date_time": _iso_parser(_DATE + "T" + _TIME + _OFFSET + _REGION + "?", True, True),
    "iso_date_time": _iso_parser(_DATE + "T" + _TIME + "(?:" + _OFFSET + _REGION + "?)?", True, False),
    "iso_instant": _iso_parser(_DATE + "T" + _TIME + _OFFSET, True, True),
    "iso_date": _iso_parser(_DATE + _OFFSET + "?", False, False),
    "iso_offset_date_time": _iso_parser(_DATE + "T" + _TIME + _OFFSET, True, True),
}


def _parse_rfc_1123(text: str) -> Parsed | None:
    m = re.match(r"^(?:(?:" + "|".join(d[:3] for d in DAYS) + r"), )?(\d{1,2}) ("
                 + "|".join(m[:3] for m in MONTHS) + r") (\d{4}) (\d{2}):(\d{2})(?::(\d{2}))? (GMT|[+-]\d{4})$", text)
    if m is None:
        return None
    month = [x[:3] for x in MONTHS].index(m.group(2)) + 1
    zone = timezone.utc if m.group(7) == "GMT" else _offset_zone(m.group(7))
    value = datetime(int(m.group(3)), month, int(m.group(1)), int(m.group(4)), int(m.group(5)),
                     int(m.group(6) or 0), tzinfo=zone)
    return Parsed(value, 0, True, True)


_ISO_PARSERS["rfc_1123_date_time"] = _parse_rfc_1123


# ------------------------------------------------------------------------------------------- arithmetic

def add_unit(dt: datetime, nano: int, amount: int, unit: str) -> tuple[datetime, int]:
    """ZonedDateTime.plus(amount, ChronoUnit): date units on the local date, time units on the instant."""
    spec = CHRONO_UNITS.get(unit)
    if spec is None:
        raise DateError(f"No enum constant java.time.temporal.ChronoUnit.{unit}")
    kind, size = spec
    if kind == "time":
        if unit in ("NANOS", "MICROS", "MILLIS"):
            factor = {"NANOS": 1, "MICROS": 1000, "MILLIS": 1_000_000}[unit]
            total = nano + amount * factor
            carry, nano = divmod(total, 1_000_000_000)
            utc = dt.astimezone(timezone.utc) + timedelta(seconds=carry)
            utc = utc.replace(microsecond=nano // 1000)
            return utc.astimezone(dt.tzinfo), nano
        utc = dt.astimezone(timezone.utc) + timedelta(seconds=amount * size)
        return utc.astimezone(dt.tzinfo), nano
    naive = dt.replace(tzinfo=None)
    if kind == "days":
        naive = naive + timedelta(days=amount * size)
    else:
        months = naive.year * 12 + (naive.month - 1) + amount * int(size)
        year, month = divmod(months, 12)
        month += 1
        day = min(naive.day, calendar.monthrange(year, month)[1])
        naive = naive.replace(year=year, month=month, day=day)
    return naive.replace(tzinfo=dt.tzinfo), nano


__all__ = ["DateError", "add_unit", "format_date", "parse_text", "resolve_zone", "system_zone",
           "to_zoned", "zone_of"]
