"""The gate: whether a planned object is exported, as a decision next to the plan (never a
change to it). Pure.

- the deletion guards (shared/engine/guard.py): a run's disables and deletes are staged
  together when they exceed a threshold, or while the job is quarantined for one;
- the stale-write guard: a cycle's read can be older than a webhook's write that landed
  meanwhile; the link's `applied_at` says when the read behind the last export was taken, and
  an export whose read is older is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.engine.guard import DELETION_QUARANTINE, DeletionGuard
from shared.model import JobState, Link


@dataclass(frozen=True)
class Decision:
    """`export`: the exporter may run. `reason`, when set, is what the log says instead of
    the plan's reason."""

    export: bool
    staged: bool = False  # held by the deletion guards (logged StagedDelete, escrowed)
    stale: bool = False  # a newer read of this object was already applied: dropped
    reason: str = ""


NOTHING = Decision(export=False)
PROCEED = Decision(export=True)
STALE = Decision(
    export=False, stale=True, reason="a newer read of this object was already applied; this older read is dropped"
)


def held_reason(deprovisions: int, job: JobState, guard: DeletionGuard, managed: int) -> str | None:
    """Why a run's `deprovisions` disables and deletes are held, or None. While the job is
    quarantined for the threshold, every disable and delete waits for the admin (allow deletes,
    or fix the cause and restart): nothing slips through a run at a time."""
    if deprovisions <= 0 or job.allow_deletes_once:
        return None
    guards = f"guards: {guard.describe(managed)}"
    if job.quarantine_reason.startswith(DELETION_QUARANTINE):
        return f"provisioning is quarantined for exceeding the deletion threshold ({guards})"
    exceeded = guard.exceeded(deprovisions, managed)
    return None if exceeded is None else f"{exceeded} ({guards})"


def decide(*, writes: bool, deprovisions: bool, plan_reason: str, held: str | None) -> Decision:
    """The decision for one plan, given why the run's deprovisioning is held (or None)."""
    if deprovisions and held is not None:
        return Decision(export=False, staged=True, reason=f"staged: {held} ({plan_reason})")
    return PROCEED if writes else NOTHING


def is_stale(read_link: Link | None, current: Link | None, read_at: datetime) -> bool:
    """Whether a newer read than ours was applied since we read the link. Without a live link
    at read time there is nothing to be stale against: a create racing another create meets
    the create intent's conditional write or GoTo's 409."""
    if read_link is None or not read_link.live:
        return False
    return bool(current is not None and current.applied_at is not None and current.applied_at > read_at)
