"""Timer schedules as Azure Functions reads them: a six-field NCRONTAB expression
(`{second} {minute} {hour} {day} {month} {day-of-week}`, UTC) or, on App Service plans only, a
TimeSpan (`hh:mm:ss`; `dd:hh:mm` once the first number is 24 or more; .NET's `d.hh:mm:ss`).
https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions

Settings validates every *_SCHEDULE with :func:`check_schedule` at start-up; the status document
computes the next run with :func:`next_run`. Nothing here imports the rest of gotosync.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_abbr)}  # Mon=1 ... Sun=0
_SEARCH_DAYS = 366 * 8  # long enough for a 29 February schedule (leap years can be 8 years apart)


@dataclass(frozen=True)
class CronSchedule:
    """A six-field NCRONTAB expression, as Azure Functions timer triggers read it:
    `{second} {minute} {hour} {day} {month} {day-of-week}`, times in UTC."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after`, or None if the expression never fires
        (such as 30 February). Day and day-of-week must both match: NCrontab combines them
        with AND, unlike Vixie cron's OR."""
        start = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day: date = start.date()
        for _ in range(_SEARCH_DAYS):
            if day.month in self.months and day.day in self.days and day.isoweekday() % 7 in self.weekdays:
                found = self._first_time_on(day, start if day == start.date() else None)
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None

    def _first_time_on(self, day: date, not_before: datetime | None) -> datetime | None:
        for hour in self.hours:
            if not_before is not None and hour < not_before.hour:
                continue
            for minute in self.minutes:
                for second in self.seconds:
                    at = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
                    if not_before is None or at >= not_before:
                        return at
        return None


def parse_ncrontab(expression: str) -> CronSchedule:
    """Parses `*`, `n`, `a-b`, `*/s`, `a-b/s`, `n/s`, lists, and month and day names (Jan,
    Mon). Raises ValueError naming the field that is wrong."""
    parts = expression.split()
    if len(parts) != 6:
        raise ValueError(
            f"{expression!r}: an NCRONTAB schedule has 6 fields (second minute hour day month day-of-week), "
            f"not {len(parts)}"
        )
    second, minute, hour, day, month, weekday = parts
    return CronSchedule(
        seconds=tuple(sorted(_field(second, "second", 0, 59))),
        minutes=tuple(sorted(_field(minute, "minute", 0, 59))),
        hours=tuple(sorted(_field(hour, "hour", 0, 23))),
        days=frozenset(_field(day, "day", 1, 31)),
        months=frozenset(_field(month, "month", 1, 12, _MONTHS)),
        weekdays=frozenset(v % 7 for v in _field(weekday, "day-of-week", 0, 7, _DAYS)),  # 7 is Sunday too
    )


def _field(text: str, name: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    def number(token: str) -> int:
        key = token.lower()
        if names and key in names:
            return names[key]
        if not token.isdigit():
            raise ValueError(f"{name} field: {token!r} is not a number" + (" or a name" if names else ""))
        value = int(token)
        if not low <= value <= high:
            raise ValueError(f"{name} field: {value} is outside {low}-{high}")
        return value

    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name} field: step {step_text!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = number(a), number(b)
            if first > last:
                raise ValueError(f"{name} field: range {body!r} runs backwards")
        else:
            first = number(body)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


def parse_timespan(text: str) -> timedelta:
    """A TimeSpan schedule as the Functions host reads it. Raises ValueError saying what is wrong."""
    match = _TIMESPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: a TimeSpan schedule is hh:mm:ss (or d.hh:mm:ss)")
    days = int(match["days"] or 0)
    first, second, third = int(match["a"]), int(match["b"]), int(match["c"])
    if first >= 24 and not match["days"]:
        days, hours, minutes, seconds = first, second, third, 0  # "24:00:00" is dd:hh:mm
    else:
        hours, minutes, seconds = first, second, third
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r}: hours must be 0-23, minutes and seconds 0-59")
    span = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if span <= timedelta(0):
        raise ValueError(f"{text!r}: a TimeSpan schedule must be longer than zero")
    return span


_TIMESPAN = re.compile(r"(?:(?P<days>\d{1,4})\.)?(?P<a>\d{1,2}):(?P<b>\d{1,2}):(?P<c>\d{1,2})")


def is_timespan(schedule: str) -> bool:
    return ":" in schedule and len(schedule.split()) == 1


def check_schedule(schedule: str) -> str:
    """``schedule`` when a timer trigger accepts it; else ValueError saying what is wrong."""
    if is_timespan(schedule):
        parse_timespan(schedule)
    else:
        parse_ncrontab(schedule)
    return schedule


def next_run(schedule: str, after: datetime) -> datetime | None:
    """The next time a timer on `schedule` fires after `after`; None for an expression that
    never fires or for a TimeSpan schedule (`hh:mm:ss`, App Service plans only), whose next
    time depends on when the host last ran it."""
    if is_timespan(schedule):
        return None
    return parse_ncrontab(schedule).next_after(after)
