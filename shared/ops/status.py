"""The provisioning job's status document (Entra's job status, reference §13) and the next
timer run, computed from SYNC_SCHEDULE's NCRONTAB expression.

A cycle counts as running while it holds the cycle lease; a cycle whose `job.current` never
ended and whose lease is gone was interrupted (a function timeout) and is resumed by the next
run (docs/decisions.md D5).
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.engine.cycle import LEASE_NAME
from shared.model import CycleProgress, JobState, utcnow
from shared.redaction import scrub
from shared.settings import Settings
from shared.store import Lease, Store

WATCH_INTERVAL_SECONDS = 1.0  # the engine checkpoints at least every 3 s (cycle.CHECKPOINT_SECONDS)

# ---------------------------------------------------------------------------- NCRONTAB

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


def next_run(schedule: str, after: datetime) -> datetime | None:
    """The next time a timer on `schedule` fires after `after`; None for an expression that
    never fires or for a TimeSpan schedule (`hh:mm:ss`, App Service plans only), whose next
    time depends on when the host last ran it."""
    if ":" in schedule and len(schedule.split()) == 1:
        return None
    return parse_ncrontab(schedule).next_after(after)


# ---------------------------------------------------------------------------- status document


def cycle_running(progress: CycleProgress | None, lease: Lease | None, now: datetime) -> bool:
    return (
        progress is not None
        and progress.ended is None
        and lease is not None
        and not lease.expired(now)
        and lease.owner == progress.cycle_id
    )


def cycle_document(p: CycleProgress | None, *, running: bool | None = None) -> dict[str, Any] | None:
    if p is None:
        return None
    doc: dict[str, Any] = {
        "cycleId": p.cycle_id,
        "kind": p.kind.value,
        "initiatedBy": p.initiated_by.value,
        "started": p.started.isoformat() if p.started else None,
        "ended": p.ended.isoformat() if p.ended else None,
        # Before its plan is made a running cycle does not know its total yet.
        "progress": None if (running and p.total == 0) else round(p.fraction, 4),
        "processed": p.processed,
        "total": p.total,
        "counts": dict(sorted(p.counts.items())),
    }
    if running is not None:
        doc["state"] = "running" if running else "interrupted"
    return doc


def status_document(
    job: JobState,
    escrow: int,
    *,
    lease: Lease | None = None,
    schedule: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Entra's job status fields (reference §13) in gotosync's words."""
    now = now or utcnow()
    running = cycle_running(job.current, lease, now)
    upcoming: datetime | None = None
    schedule_error = ""
    if job.enabled and schedule:
        try:
            upcoming = next_run(schedule, now)
        except ValueError as exc:
            schedule_error = str(exc)
    doc: dict[str, Any] = {
        "provisioning": "on" if job.enabled else "off",
        # Scrubbed again on the way out: a reason stored by an older version may quote upstream text.
        "quarantine": scrub(job.quarantine_reason) or None,
        "quarantinedSince": job.quarantined_since.isoformat() if job.quarantined_since else None,
        "currentCycle": cycle_document(job.current, running=running),
        "lastCycle": cycle_document(job.last),
        "lastSuccessfulCycle": job.last_success.isoformat() if job.last_success else None,
        "nextRun": upcoming.isoformat() if upcoming else None,
        "schedule": schedule or None,
        "escrowed": escrow,
        "stagedDeletes": job.staged_deletes,
        "allowDeletesOnce": job.allow_deletes_once,
        "watermark": job.has_watermark,
    }
    if schedule_error:
        doc["scheduleError"] = schedule_error
    return doc


async def load_status(store: Store, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    job, escrow, lease = await asyncio.gather(store.job.get(), store.escrow.count(), store.lease.get(LEASE_NAME))
    return status_document(job, escrow, lease=lease, schedule=settings.sync_schedule, now=now)


async def watch(
    store: Store,
    settings: Settings,
    on_frame: Callable[[dict[str, Any]], None],
    interval: float = WATCH_INTERVAL_SECONDS,
) -> dict[str, Any]:
    """Reads the status every `interval` seconds and hands each to `on_frame` while a cycle
    runs; returns the first status in which no cycle is running."""
    while True:
        doc = await load_status(store, settings)
        on_frame(doc)
        current = doc["currentCycle"]
        if current is None or current["state"] != "running":
            return doc
        await asyncio.sleep(interval)  # the poll period of a live display, not a synchronisation
