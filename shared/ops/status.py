"""The provisioning job's status document (Entra's job status,
docs/reference/entra-provisioning.md#job-status) and the next timer run, computed from
SYNC_SCHEDULE's NCRONTAB expression.

(The NCRONTAB reader is shared.schedule, which Settings also uses to validate every schedule.)

A cycle counts as running while it holds the cycle lease (renewed every third of
CYCLE_LEASE_SECONDS); a cycle whose `job.current` never ended and whose lease is gone or
expired was interrupted (a function timeout, a killed process, a storage outage) and is resumed
by the next run, which takes the lease over (docs/decisions.md D5, docs/safety.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.engine.cycle import LEASE_NAME
from shared.model import CycleProgress, JobState, utcnow
from shared.redaction import scrub
from shared.schedule import CronSchedule as CronSchedule  # re-exported: the reader moved to shared.schedule
from shared.schedule import next_run
from shared.schedule import parse_ncrontab as parse_ncrontab
from shared.settings import Settings
from shared.store import Lease, Store

WATCH_INTERVAL_SECONDS = 1.0  # the engine checkpoints at least every 3 s (cycle.CHECKPOINT_SECONDS)

# ---------------------------------------------------------------------------- status document


def cycle_running(progress: CycleProgress | None, lease: Lease | None, now: datetime) -> bool:
    return (
        progress is not None
        and progress.ended is None
        and lease is not None
        and not lease.expired(now)
        and lease.owner.split("/", 1)[0] == progress.cycle_id  # owner: "<cycle id>/<invocation>"
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
        doc["state"] = "running" if running else ("continuing" if p.continuing else "interrupted")
        doc["invocations"] = p.invocations
    return doc


def lease_document(lease: Lease | None, now: datetime) -> dict[str, Any] | None:
    """Who holds the cycle lease: owner (the cycle id), fencing token, last heartbeat, expiry."""
    if lease is None:
        return None
    return {
        "owner": lease.owner,
        "fence": lease.fence,
        "heartbeat": lease.renewed.isoformat() if lease.renewed else None,
        "expires": lease.expires.isoformat(),
        "state": "expired (the holder is gone; the next run takes over)" if lease.expired(now) else "held",
    }


def guards_document(settings: Settings | None, job: JobState) -> dict[str, Any] | None:
    """The deletion guards in force and the base of the relative one (docs/safety.md)."""
    if settings is None:
        return None
    return {
        "deletionThreshold": settings.deletion_threshold,
        "deletionThresholdPercent": settings.deletion_threshold_percent,
        "managedUsers": job.managed_users,
        "deletionConfirmationSeconds": settings.deletion_confirmation_seconds,
    }


def status_document(
    job: JobState,
    escrow: int,
    *,
    lease: Lease | None = None,
    schedule: str = "",
    now: datetime | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Entra's job status fields (docs/reference/entra-provisioning.md#job-status) in gotosync's
    words."""
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
        "lastStop": {"at": job.last_stop_at.isoformat(), "reason": job.last_stop} if job.last_stop_at else None,
        "lease": lease_document(lease, now),
        "guards": guards_document(settings, job),
    }
    if schedule_error:
        doc["scheduleError"] = schedule_error
    return doc


async def load_status(store: Store, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    job, escrow, lease = await asyncio.gather(store.job.get(), store.escrow.count(), store.lease.get(LEASE_NAME))
    return status_document(job, escrow, lease=lease, schedule=settings.sync_schedule, now=now, settings=settings)


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
