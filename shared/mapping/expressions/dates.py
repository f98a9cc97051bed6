"""Dates as Entra's expression functions see them: parsing date strings to UTC DateTimes,
.NET custom date/time format strings, DateAdd/DateDiff intervals, and AD integer dates.

Culture-dependent parts use .NET's invariant culture (English month and day names, `/` and `:`
separators). The server's "local" time zone is taken to be UTC, as it is for Azure Functions.
"""

from __future__ import annotations

import re
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


def dotnet_format(value: datetime, fmt: str) -> str:
    """Formats like .NET's DateTime.ToString(fmt, CultureInfo.InvariantCulture)."""
    out: list[str] = []
    for kind, text in format_tokens(fmt):
        if kind == "lit":
            out.append(text)
            continue
        c, n = text[0], len(text)
        offset = _offset_parts(value) or ("+", 0, 0)
        if c == "d":
            out.append(
                str(value.day)
                if n == 1
                else f"{value.day:02d}"
                if n == 2
                else DAYS[value.weekday()][:3]
                if n == 3
                else DAYS[value.weekday()]
            )
        elif c in "fF":
            digits = f"{value.microsecond:06d}0"[:n]
            if c == "F":
                digits = digits.rstrip("0")
                if not digits and out and out[-1].endswith("."):
                    out[-1] = out[-1][:-1]
            out.append(digits)
        elif c == "g":
            out.append("A.D.")
        elif c == "h":
            hour = value.hour % 12 or 12
            out.append(str(hour) if n == 1 else f"{hour:02d}")
        elif c == "H":
            out.append(str(value.hour) if n == 1 else f"{value.hour:02d}")
        elif c == "K":
            parts = _offset_parts(value)
            if parts is None:
                out.append("")
            elif value.tzinfo is UTC:
                out.append("Z")
            else:
                out.append(f"{parts[0]}{parts[1]:02d}:{parts[2]:02d}")
        elif c == "m":
            out.append(str(value.minute) if n == 1 else f"{value.minute:02d}")
        elif c == "M":
            out.append(
                str(value.month)
                if n == 1
                else f"{value.month:02d}"
                if n == 2
                else MONTHS[value.month - 1][:3]
                if n == 3
                else MONTHS[value.month - 1]
            )
        elif c == "s":
            out.append(str(value.second) if n == 1 else f"{value.second:02d}")
        elif c == "t":
            ampm = "AM" if value.hour < 12 else "PM"
            out.append(ampm[0] if n == 1 else ampm)
        elif c == "y":
            if n == 1:
                out.append(str(value.year % 100))
            elif n == 2:
                out.append(f"{value.year % 100:02d}")
            else:
                out.append(str(value.year).zfill(n))
        elif c == "z":
            sign, hours, mins = offset
            out.append(
                f"{sign}{hours}" if n == 1 else f"{sign}{hours:02d}" if n == 2 else f"{sign}{hours:02d}:{mins:02d}"
            )
    return "".join(out)


_NAMES = "|".join(MONTHS + tuple(m[:3] for m in MONTHS))
_DAY_NAMES = "|".join(DAYS + tuple(d[:3] for d in DAYS))


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
        c, n = text[0], len(text)
        name = f"g{len(groups)}"
        if c == "y":
            body = r"\d{1,4}" if n == 1 else r"\d{2}" if n == 2 else r"\d{3,4}" if n == 3 else rf"\d{{{n}}}"
            key = "yy" if n <= 2 else "y"
        elif c == "M":
            body = r"\d{1,2}" if n == 1 else r"\d{2}" if n == 2 else _NAMES
            key = "M" if n <= 2 else "MMM"
        elif c == "d":
            body = r"\d{1,2}" if n == 1 else r"\d{2}" if n == 2 else _DAY_NAMES
            key = "d" if n <= 2 else "ddd"
        elif c in "hHms":
            body = r"\d{1,2}" if n == 1 else r"\d{2}"
            key = c
        elif c == "f":
            body, key = rf"\d{{{n}}}", "f"
        elif c == "F":
            body, key = rf"\d{{0,{n}}}", "f"
        elif c == "t":
            body, key = ("[AP]" if n == 1 else "AM|PM"), "t"
        elif c == "z":
            body = r"[+-]\d{1,2}" if n == 1 else r"[+-]\d{2}" if n == 2 else r"[+-]\d{2}:\d{2}"
            key = "z"
        elif c == "K":
            body, key = r"Z|[+-]\d{2}:\d{2}|", "z"
        else:  # g
            body, key = r"A\.D\.|AD", "g"
        # atomic: .NET parses left to right without backtracking, and so no format can make this slow
        parts.append(f"(?P<{name}>(?>{body}))")
        groups.append(key)
    return re.compile("".join(parts), re.IGNORECASE), tuple(groups), literal_z


def dotnet_parse(text: str, fmt: str, now: datetime, function: str = "FormatDateTime") -> datetime:
    """Parses like .NET's DateTime.ParseExact with the invariant culture and leading/trailing
    white space allowed. An offset in the input (z, zzz, K, or a literal Z) is kept."""
    try:
        pattern, keys, literal_z = _parse_regex(fmt)
    except (ValueError, re.error) as e:
        raise _fail(f"bad input format {fmt!r}: {e}", function) from None
    if len(text) > _MAX_DATE_TEXT * 10:
        raise _fail(f"the value is {len(text)} characters, too long for a date", function)
    m = pattern.fullmatch(text.strip())
    if not m:
        raise _fail(f"{text!r} does not match the input format {fmt!r}", function)
    found: dict[str, str] = {}
    for index, key in enumerate(keys):
        found[key] = m.group(f"g{index}")
    try:
        if "y" in found:
            year = int(found["y"])
        elif "yy" in found:
            two = int(found["yy"])
            century = _TWO_DIGIT_YEAR_MAX // 100 * 100
            year = century + two if century + two <= _TWO_DIGIT_YEAR_MAX else century - 100 + two
        else:
            year = None
        if "MMM" in found:
            name = found["MMM"].lower()
            month = next(i + 1 for i, full in enumerate(MONTHS) if full.lower().startswith(name[:3]))
        else:
            month = int(found["M"]) if "M" in found else None
        day = int(found["d"]) if "d" in found else None
        if year is None and month is None and day is None:
            year, month, day = now.year, now.month, now.day
        hour = int(found.get("H") or found.get("h") or 0)
        ampm = (found.get("t") or "").upper()
        if ampm:
            hour = hour % 12 + (12 if ampm.startswith("P") else 0)
        fraction = (found.get("f") or "").ljust(6, "0")[:6]
        tz = _offset(found["z"]) if found.get("z") else (UTC if literal_z else None)
        return datetime(
            year or 1,
            month or 1,
            day or 1,
            hour,
            int(found.get("m") or 0),
            int(found.get("s") or 0),
            int(fraction or 0),
            tzinfo=tz,
        )
    except (ValueError, OverflowError, StopIteration) as e:
        raise _fail(f"{text!r} is not a valid date for {fmt!r}: {e}", function) from None
