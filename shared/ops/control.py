"""Job control: provisioning on/off, restart with Entra's reset scopes, and allow deletes
(docs/reference/entra-provisioning.md#restart-and-reset-scopes,
docs/reference/entra-provisioning.md#accidental-deletions).

- On/off is `job.enabled`. Timer cycles read it when they start, so "off" lets a running cycle
  finish; admin-started runs (CLI sync, on demand, dry run) are not stopped by it.
- Restart and allow-deletes change what a cycle reads at its start and writes at its end
  (watermark, allow-deletes flag), so they take the cycle lease while they write: they never
  interleave with a running cycle, which would otherwise overwrite the reset when it finishes.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.engine.cycle import LEASE_NAME
from shared.model import JobState
from shared.ops import CycleRunning, InvalidInput
from shared.store import Store

ADMIN_LEASE_SECONDS = 60
THRESHOLD_QUARANTINE = "DeletionThresholdExceeded"


class ResetScope(enum.StrEnum):
    WATERMARK = "Watermark"  # forget the delta links and the assignment snapshot: next cycle is initial
    ESCROWS = "Escrows"  # forget pending retries
    QUARANTINE_STATE = "QuarantineState"  # lift the quarantine
    FORCE_DELETES = "ForceDeletes"  # let the next cycle carry out the disables/deletes the threshold held


PORTAL_RESTART = (ResetScope.WATERMARK, ResetScope.ESCROWS, ResetScope.QUARANTINE_STATE)
# Entra's Full also drops the connector data store and forces deletes. gotosync's Full is the
# portal restart: both of those are irreversible and must be asked for by name (ForceDeletes)
# or are not offered at all (ConnectorDataStore).
FULL = PORTAL_RESTART
REFUSED_SCOPES = {
    "connectordatastore": (
        "not supported: it would drop the links that say which GoTo users gotosync manages (Entra documents it "
        "as 'do not use'); out-of-scope users would then never be disabled. Restart with Watermark instead: "
        "links are kept and every object is re-evaluated"
    ),
    "none": "documented by Entra as 'do not use'; leave the scope empty for a portal restart",
}


def parse_scopes(values: Iterable[str] | str | None) -> tuple[ResetScope, ...]:
    """`Watermark,Escrows`, a list, or nothing (= the portal restart). `Full` expands to the
    portal restart. Raises InvalidInput naming the bad scope."""
    if isinstance(values, str):
        values = values.split(",")
    names = [v.strip() for v in (values or ()) if v and v.strip()]
    if not names:
        return PORTAL_RESTART
    found: list[ResetScope] = []
    for name in names:
        key = name.lower()
        if key in REFUSED_SCOPES:
            raise InvalidInput("scopes", f"{name}: {REFUSED_SCOPES[key]}")
        if key == "full":
            found.extend(FULL)
            continue
        match = next((s for s in ResetScope if s.value.lower() == key), None)
        if match is None:
            allowed = ", ".join([*(s.value for s in ResetScope), "Full"])
            raise InvalidInput("scopes", f"unknown reset scope {name!r}; expected {allowed}")
        found.append(match)
    return tuple(dict.fromkeys(found))  # in the order given, once each


@asynccontextmanager
async def holding_cycle_lease(store: Store) -> AsyncIterator[None]:
    """Holds the cycle lease for an admin change; CycleRunning if a cycle holds it."""
    lease = await store.lease.acquire(LEASE_NAME, f"admin-{uuid.uuid4()}", ADMIN_LEASE_SECONDS)
    if lease is None:
        job = await store.job.get()
        progress = ""
        if job.current is not None:
            progress = f" ({job.current.kind.value} cycle, {job.current.processed}/{job.current.total or '?'} done)"
        raise CycleRunning(
            f"a sync cycle is running{progress}; try again when it has ended (`gotosync status --watch`)"
        )
    try:
        yield
    finally:
        await store.lease.release(lease)


@dataclass
class ControlResult:
    """What an admin change did, for the CLI and the HTTP answer alike."""

    operation: str
    scopes: list[str] = field(default_factory=list)
    escrows_dropped: int = 0
    watermark_cleared: bool = False
    quarantine_lifted: str = ""  # the reason that was cleared
    deletes_allowed: bool = False
    held_deletes: int = 0
    job: JobState | None = None
    notes: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        job = self.job or JobState()
        return {
            "operation": self.operation,
            "scopes": self.scopes,
            "escrowsDropped": self.escrows_dropped,
            "watermarkCleared": self.watermark_cleared,
            "quarantineLifted": self.quarantine_lifted or None,
            "deletesAllowed": self.deletes_allowed,
            "heldDeletes": self.held_deletes,
            "provisioning": "on" if job.enabled else "off",
            "quarantine": job.quarantine_reason or None,
            "nextCycle": "Initial" if not job.has_watermark else "Incremental",
            "notes": self.notes,
        }


async def set_provisioning(store: Store, enabled: bool) -> ControlResult:
    """Start or stop provisioning (Entra's start / pause). Read by timer cycles when they start."""
    job = await store.job.update(lambda j: setattr(j, "enabled", enabled))
    result = ControlResult("start" if enabled else "stop", job=job)
    if not enabled:
        result.notes.append(
            "scheduled cycles are skipped from now on; a cycle already running finishes its work. "
            "On-demand provisioning, dry runs and `gotosync sync` still run when asked for"
        )
    elif job.quarantine_reason:
        result.notes.append(f"the job is quarantined ({job.quarantine_reason}); cycles run and report it each time")
    return result


def _clear_watermark(job: JobState) -> None:
    job.users_delta_link = ""
    job.groups_delta_link = ""
    job.assignments_hash = ""
    if job.current is not None and job.current.ended is None:
        job.current = None  # an interrupted cycle: the next cycle starts a new initial one instead


async def restart(store: Store, scopes: Iterable[ResetScope], *, operation: str = "restart") -> ControlResult:
    """Entra's restart with reset scopes. Links (source <-> GoTo) are always kept."""
    chosen = tuple(scopes)
    result = ControlResult(operation, scopes=[s.value for s in chosen])
    async with holding_cycle_lease(store):
        if ResetScope.ESCROWS in chosen:
            result.escrows_dropped = await store.escrow.purge_all()
        before = await store.job.get()
        result.held_deletes = before.staged_deletes

        def mutate(job: JobState) -> None:
            if ResetScope.WATERMARK in chosen:
                _clear_watermark(job)
            # ForceDeletes needs no full re-read: the engine escrows every held disable/delete,
            # so the next cycle, incremental or not, re-evaluates exactly those users.
            if ResetScope.QUARANTINE_STATE in chosen:
                job.quarantine_reason = ""
                job.quarantined_since = None
            if ResetScope.FORCE_DELETES in chosen:
                job.allow_deletes_once = True
                if job.quarantine_reason.startswith(THRESHOLD_QUARANTINE):
                    job.quarantine_reason = ""
                    job.quarantined_since = None

        job = await store.job.update(mutate)
    result.job = job
    result.watermark_cleared = before.has_watermark and not job.has_watermark
    if before.quarantine_reason and not job.quarantine_reason:
        result.quarantine_lifted = before.quarantine_reason
    result.deletes_allowed = job.allow_deletes_once
    if result.watermark_cleared:
        result.notes.append("the next cycle is an initial cycle: every assigned and linked user is re-evaluated")
    if ResetScope.FORCE_DELETES in chosen:
        if before.staged_deletes:
            result.notes.append(
                f"{before.staged_deletes} held disable(s)/delete(s) are carried out by the next cycle, whatever "
                "the deletion threshold; `gotosync sync --dry-run` shows them first"
            )
        else:
            result.notes.append(
                "no disables/deletes are recorded as held; the next cycle carries out every disable/delete it finds, "
                "whatever the deletion threshold"
            )
    if not job.enabled:
        result.notes.append("provisioning is off: scheduled cycles stay skipped until `gotosync start`")
    return result


async def allow_deletes(store: Store) -> ControlResult:
    """Entra's "Allow deletes" on a threshold quarantine (= restart with ForceDeletes)."""
    return await restart(store, (ResetScope.FORCE_DELETES,), operation="allow-deletes")
