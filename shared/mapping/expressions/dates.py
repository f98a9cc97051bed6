"""Dates as Entra's expression functions see them: parsing date strings to UTC DateTimes,
.NET custom date/time format strings, DateAdd/DateDiff intervals, and AD integer dates.

Culture-dependent parts use .NET's invariant culture (English month and day names, `/` and `:`
separators). The server's "local" time zone is taken to be UTC, as it is for Azure Functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from shared.mapping.errors import ExpressionEvaluationError

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
INTERVALS = ("yyyy", "m", "d", "ww", "h", "n", "s")

_AD_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_TWO_DIGIT_YEAR_MAX = 2049  # .NET's Gregorian calendar default
_MAX_DATE_TEXT = 100

_ISO = re.compile(
    r"^\s*(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,7})\d*)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_US = re.compile(
    r"^\s*(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\s*(?P<ampm>AM|PM))?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_GENERALIZED = re.compile(
    r"^\s*(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,7})\d*)?(?P<tz>Z|[+-]\d{4})?\s*$",
    re.IGNORECASE,
)


def _fail(problem: str, function: str) -> ExpressionEvaluationError:
    return ExpressionEvaluationError(problem, function=function)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_entra(value: datetime) -> str:
    """Entra's DateTime string: `M/d/yyyy h:mm:ss tt`, in UTC."""
    value = as_utc(value)
    hour = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    return f"{value.month}/{value.day}/{value.year} {hour}:{value.minute:02d}:{value.second:02d} {ampm}"


def _offset(text: str | None) -> timezone | None:
    if not text:
        return None
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_date(text: str, function: str = "CDate") -> datetime:
    """A date string (ISO 8601, `M/d/yyyy h:mm:ss tt`, or `yyyyMMddHHmmss.fZ`) as a UTC DateTime.
    A value without an offset is taken to be UTC."""
    if len(text) > _MAX_DATE_TEXT:
        raise _fail(f"a date is at most {_MAX_DATE_TEXT} characters; got {len(text)}", function)
    for pattern in (_ISO, _US, _GENERALIZED):
        m = pattern.match(text)
        if not m:
            continue
        parts = m.groupdict()
        try:
            hour = int(parts.get("h") or 0)
            ampm = (parts.get("ampm") or "").upper()
            if ampm:
                if not 1 <= hour <= 12:
                    raise ValueError("hour out of range for AM/PM")
                hour = hour % 12 + (12 if ampm == "PM" else 0)
            fraction = (parts.get("f") or "").ljust(6, "0")[:6]
            value = datetime(
                int(parts["y"]),
                int(parts["mo"]),
                int(parts["d"]),
                hour,
                int(parts.get("mi") or 0),
                int(parts.get("s") or 0),
                int(fraction or 0),
                tzinfo=_offset(parts.get("tz")) or UTC,
            )
            return value.astimezone(UTC)
        except (ValueError, OverflowError) as e:
            raise _fail(f"{text!r} is not a valid date: {e}", function) from None
    raise _fail(f"{text!r} is not a date this function understands (use ISO 8601, e.g. 2024-03-16T08:00:00Z)", function)


def to_datetime(value: Any, function: str) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        return parse_date(value, function)
    raise _fail(f"expected a date, got {type(value).__name__}", function)


def from_ad_number(value: int, function: str = "DateFromNum") -> datetime:
    """AD's integer dates count 100-ns intervals since 1601-01-01 UTC."""
    if value < 0:
        raise _fail(f"{value} is not an AD date (negative)", function)
    try:
        return _AD_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        raise _fail(f"{value} is beyond year 9999 (AD's 'never' value?)", function) from None


def to_ad_number(value: datetime) -> int:
    delta = as_utc(value) - _AD_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _add_months(value: datetime, months: int) -> datetime:
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    next_first = datetime(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_first - timedelta(days=1)).day
    return value.replace(year=year, month=month, day=min(value.day, last_day))


def date_add(interval: str, amount: int, value: datetime, function: str = "DateAdd") -> datetime:
    """VBA DateAdd: months and years keep the day, clamped to the month's last day."""
    steps = {"d": timedelta(days=1), "ww": timedelta(days=7), "h": timedelta(hours=1)}
    steps |= {"n": timedelta(minutes=1), "s": timedelta(seconds=1)}
    if interval not in INTERVALS:
        raise _fail(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}", function)
    try:
        if interval == "yyyy":
            return _add_months(value, 12 * amount)
        if interval == "m":
            return _add_months(value, amount)
        return value + steps[interval] * amount
    except (OverflowError, ValueError):
        raise _fail(f"adding {amount} {interval!r} to {format_entra(value)} leaves the calendar", function) from None


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def date_diff(interval: str, first: datetime, second: datetime, function: str = "DateDiff") -> int:
    """VB's DateDiff(interval, date1, date2): positive when date2 is later. Years and months
    count calendar boundaries, `ww` counts Sundays crossed, the rest truncate elapsed time."""
    first, second = as_utc(first), as_utc(second)
    if interval == "yyyy":
        return second.year - first.year
    if interval == "m":
        return (second.year - first.year) * 12 + second.month - first.month
    if interval == "ww":

        def sunday(d: datetime) -> datetime:
            return (d - timedelta(days=(d.weekday() + 1) % 7)).replace(hour=0, minute=0, second=0, microsecond=0)

        return (sunday(second) - sunday(first)).days // 7
    micros = (second - first) // timedelta(microseconds=1)
    unit = {"d": 86_400_000_000, "h": 3_600_000_000, "n": 60_000_000, "s": 1_000_000}.get(interval)
    if unit is None:
        raise _fail(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}", function)
    return _trunc_div(micros, unit)


# --- .NET custom date and time format strings -------------------------------------------

_SPEC_CHARS = "dfFghHKmMstyz"
_STANDARD = {  # invariant culture patterns of the one-letter standard formats
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}
DATETIME_STYLES = frozenset(
    {
        "None",
        "AllowLeadingWhite",
        "AllowTrailingWhite",
        "AllowInnerWhite",
        "AllowWhiteSpaces",
        "NoCurrentDateDefault",
        "AdjustToUniversal",
        "AssumeLocal",
        "AssumeUniversal",
        "RoundtripKind",
    }
)


@lru_cache(maxsize=256)
def format_tokens(fmt: str) -> tuple[tuple[str, str], ...]:
    """("spec", "yyyy") and ("lit", "-") tokens of a .NET custom format string. Raises ValueError."""
    if fmt == "":
        raise ValueError("the format is empty")
    if len(fmt) == 1 and fmt in _STANDARD:
        fmt = _STANDARD[fmt]
    elif len(fmt) == 1 and fmt in _SPEC_CHARS:
        raise ValueError(f"{fmt!r} alone is not a standard format; write %{fmt} for the single specifier")
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in _SPEC_CHARS:
            j = i
            while j < len(fmt) and fmt[j] == c and c != "K":
                j += 1
            j = max(j, i + 1)
            run = fmt[i:j]
            if c in "fF" and len(run) > 7:
                raise ValueError(f"{run!r}: at most 7 fraction digits")
            tokens.append(("spec", run))
            i = j
        elif c in "'\"":
            end = fmt.find(c, i + 1)
            if end < 0:
                raise ValueError(f"unterminated quoted text starting at {i}")
            tokens.append(("lit", fmt[i + 1 : end]))
            i = end + 1
        elif c == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in _SPEC_CHARS:
                raise ValueError(f"'%' at {i} must be followed by a format specifier")
            tokens.append(("spec", fmt[i + 1]))
            i += 2
        elif c == "\\":
            if i + 1 >= len(fmt):
                raise ValueError("the format ends with a lone backslash")
            tokens.append(("lit", fmt[i + 1]))
            i += 2
        else:
            tokens.append(("lit", c))
            i += 1
    return tuple(tokens)


def _offset_parts(value: datetime) -> tuple[str, int, int] | None:
    offset = value.utcoffset()
    if offset is None:
        return None
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return sign, hours, mins


def _number(number: int, n: int) -> str:
    return str(number) if n == 1 else f"{number:02d}"


def _number_or_name(number: int, n: int, name: str) -> str:
    """`d`/`M`: the number; `dd`/`MM`: two digits; `ddd`/`MMM`: the short name; more: the name."""
    if n <= 2:
        return _number(number, n)
    return name[:3] if n == 3 else name


def _format_year(value: datetime, n: int) -> str:
    if n == 1:
        return str(value.year % 100)
    if n == 2:
        return f"{value.year % 100:02d}"
    return str(value.year).zfill(n)


def _format_k(value: datetime, n: int) -> str:
    parts = _offset_parts(value)
    if parts is None:
        return ""
    if value.tzinfo is UTC:
        return "Z"
    return f"{parts[0]}{parts[1]:02d}:{parts[2]:02d}"


def _format_z(value: datetime, n: int) -> str:
    sign, hours, mins = _offset_parts(value) or ("+", 0, 0)
    return f"{sign}{hours}" if n == 1 else f"{sign}{hours:02d}" if n == 2 else f"{sign}{hours:02d}:{mins:02d}"


def _format_ampm(value: datetime, n: int) -> str:
    ampm = "AM" if value.hour < 12 else "PM"
    return ampm[0] if n == 1 else ampm


# Specifier character -> (the value, the run's length) -> its text.
_FORMATTERS: dict[str, Callable[[datetime, int], str]] = {
    "d": lambda v, n: _number_or_name(v.day, n, DAYS[v.weekday()]),
    "f": lambda v, n: f"{v.microsecond:06d}0"[:n],
    "F": lambda v, n: f"{v.microsecond:06d}0"[:n].rstrip("0"),
    "g": lambda v, n: "A.D.",
    "h": lambda v, n: _number(v.hour % 12 or 12, n),
    "H": lambda v, n: _number(v.hour, n),
    "K": _format_k,
    "m": lambda v, n: _number(v.minute, n),
    "M": lambda v, n: _number_or_name(v.month, n, MONTHS[v.month - 1]),
    "s": lambda v, n: _number(v.second, n),
    "t": _format_ampm,
    "y": _format_year,
    "z": _format_z,
}


def dotnet_format(value: datetime, fmt: str) -> str:
    """Formats like .NET's DateTime.ToString(fmt, CultureInfo.InvariantCulture)."""
    out: list[str] = []
    for kind, text in format_tokens(fmt):
        if kind == "lit":
            out.append(text)
            continue
        piece = _FORMATTERS[text[0]](value, len(text))
        if text[0] == "F" and not piece and out and out[-1].endswith("."):
            out[-1] = out[-1][:-1]  # F: no digits left, and no decimal point before them either
        out.append(piece)
    return "".join(out)


_NAMES = "|".join(MONTHS + tuple(m[:3] for m in MONTHS))
_DAY_NAMES = "|".join(DAYS + tuple(d[:3] for d in DAYS))


def _parse_year(c: str, n: int) -> tuple[str, str]:
    body = r"\d{1,4}" if n == 1 else r"\d{2}" if n == 2 else r"\d{3,4}" if n == 3 else rf"\d{{{n}}}"
    return body, "yy" if n <= 2 else "y"


def _parse_number_or_name(names: str, short_key: str, long_key: str) -> Callable[[str, int], tuple[str, str]]:
    def parse(c: str, n: int) -> tuple[str, str]:
        body = r"\d{1,2}" if n == 1 else r"\d{2}" if n == 2 else names
        return body, short_key if n <= 2 else long_key

    return parse


def _parse_offset(c: str, n: int) -> tuple[str, str]:
    return (r"[+-]\d{1,2}" if n == 1 else r"[+-]\d{2}" if n == 2 else r"[+-]\d{2}:\d{2}"), "z"


# Specifier character -> (it, the run's length) -> (the regular expression of its text, the field it gives).
_PARSERS: dict[str, Callable[[str, int], tuple[str, str]]] = {
    "y": _parse_year,
    "M": _parse_number_or_name(_NAMES, "M", "MMM"),
    "d": _parse_number_or_name(_DAY_NAMES, "d", "ddd"),
    **dict.fromkeys("hHms", lambda c, n: (r"\d{1,2}" if n == 1 else r"\d{2}", c)),
    "f": lambda c, n: (rf"\d{{{n}}}", "f"),
    "F": lambda c, n: (rf"\d{{0,{n}}}", "f"),
    "t": lambda c, n: ("[AP]" if n == 1 else "AM|PM", "t"),
    "z": _parse_offset,
    "K": lambda c, n: (r"Z|[+-]\d{2}:\d{2}|", "z"),
}


def _parse_era(c: str, n: int) -> tuple[str, str]:
    return r"A\.D\.|AD", "g"


@lru_cache(maxsize=256)
def _parse_regex(fmt: str) -> tuple[re.Pattern[str], tuple[str, ...], bool]:
    parts: list[str] = []
    groups: list[str] = []
    literal_z = False
    for kind, text in format_tokens(fmt):
        if kind == "lit":
            parts.append(re.escape(text))
            literal_z = literal_z or "Z" in text
            continue
        body, key = _PARSERS.get(text[0], _parse_era)(text[0], len(text))
        # atomic: .NET parses left to right without backtracking, and so no format can make this slow
        parts.append(f"(?P<g{len(groups)}>(?>{body}))")
        groups.append(key)
    return re.compile("".join(parts), re.IGNORECASE), tuple(groups), literal_z


def dotnet_parse(text: str, fmt: str, now: datetime, function: str = "FormatDateTime") -> datetime:
    """Parses like .NET's DateTime.ParseExact with the invariant culture and leading/trailing
    white space allowed. An offset in the input (z, zzz, K, or a literal Z) is kept."""
    found, literal_z = _parse_fields(text, fmt, function)
    try:
        return _date_from_fields(found, literal_z, now)
    except (ValueError, OverflowError, StopIteration) as e:
        raise _fail(f"{text!r} is not a valid date for {fmt!r}: {e}", function) from None


def _parse_fields(text: str, fmt: str, function: str) -> tuple[dict[str, str], bool]:
    """Each field the format's specifiers read from `text` (``y``, ``MMM``, ``h``, ...), and whether
    the format holds a literal Z."""
    try:
        pattern, keys, literal_z = _parse_regex(fmt)
    except (ValueError, re.error) as e:
        raise _fail(f"bad input format {fmt!r}: {e}", function) from None
    if len(text) > _MAX_DATE_TEXT * 10:
        raise _fail(f"the value is {len(text)} characters, too long for a date", function)
    m = pattern.fullmatch(text.strip())
    if not m:
        raise _fail(f"{text!r} does not match the input format {fmt!r}", function)
    return {key: m.group(f"g{index}") for index, key in enumerate(keys)}, literal_z


def _year(found: dict[str, str]) -> int | None:
    if "y" in found:
        return int(found["y"])
    if "yy" in found:
        two = int(found["yy"])
        century = _TWO_DIGIT_YEAR_MAX // 100 * 100
        return century + two if century + two <= _TWO_DIGIT_YEAR_MAX else century - 100 + two
    return None


def _month(found: dict[str, str]) -> int | None:
    if "MMM" in found:
        name = found["MMM"].lower()
        return next(i + 1 for i, full in enumerate(MONTHS) if full.lower().startswith(name[:3]))
    return int(found["M"]) if "M" in found else None


def _hour(found: dict[str, str]) -> int:
    hour = int(found.get("H") or found.get("h") or 0)
    ampm = (found.get("t") or "").upper()
    if ampm:
        hour = hour % 12 + (12 if ampm.startswith("P") else 0)
    return hour


def _date_from_fields(found: dict[str, str], literal_z: bool, now: datetime) -> datetime:
    year, month = _year(found), _month(found)
    day = int(found["d"]) if "d" in found else None
    if year is None and month is None and day is None:
        year, month, day = now.year, now.month, now.day
    fraction = (found.get("f") or "").ljust(6, "0")[:6]
    tz = _offset(found["z"]) if found.get("z") else (UTC if literal_z else None)
    return datetime(
        year or 1,
        month or 1,
        day or 1,
        _hour(found),
        int(found.get("m") or 0),
        int(found.get("s") or 0),
        int(fraction or 0),
        tzinfo=tz,
    )
