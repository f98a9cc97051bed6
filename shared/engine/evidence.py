"""Evidence before deprovisioning: how a read of one user becomes a SourceUser whose removal
state rests on positive evidence, never on the absence of something in a read.

- A hard delete (GoTo DELETE) needs a delta `@removed` with reason `deleted`, or a user absent
  from /users *and* from directory/deletedItems in two reads at least `confirm_after` apart.
- A soft delete (disable) needs the user in directory/deletedItems, or a delta `@removed` with
  reason `changed`.
- One absent read is recorded (escrow code `DeletionUnconfirmed`, with the time of that read)
  and nothing is done until a later read confirms it. A targeted run (webhook, on demand,
  assignment watch) never confirms: it hands the user to the next cycle.

Pure: no I/O. docs/safety.md says the same for admins.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.model import EscrowEntry, SourceUser, UserRead, UserState

DELTA_DELETED = "users delta: @removed with reason 'deleted' (permanently deleted)"
DELTA_SOFT_DELETED = "users delta: @removed with reason 'changed' (moved to the recycle bin)"
IN_RECYCLE_BIN = "GET /users/{id} answered 404 and directory/deletedItems holds the user (recycle bin)"


def _stamp(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "an earlier read"


def from_delta_removal(user_id: str, attributes: dict[str, object], reason: str) -> SourceUser:
    """A users-delta entry marked @removed: Graph's own word on the removal."""
    if reason == "changed":
        return SourceUser(user_id, dict(attributes), soft_deleted=True, evidence=DELTA_SOFT_DELETED)
    return SourceUser(user_id, dict(attributes), hard_deleted=True, evidence=DELTA_DELETED)


def from_read(
    read: UserRead,
    *,
    roles: frozenset[str],
    assigned: bool,
    assignment_evidence: str,
    escrow: EscrowEntry | None,
    confirm_after: timedelta,
    may_confirm: bool,
) -> SourceUser:
    """The SourceUser a read by id gives. `escrow` is the user's escrow entry (an earlier absent
    read, or the evidence of a failed delete); `may_confirm` is False for targeted runs."""
    uid = read.id
    if read.state is UserState.PRESENT:
        attrs = dict(read.attributes or {"id": uid})
        return SourceUser(uid, attrs, roles=roles, assigned=assigned, evidence=assignment_evidence)
    if read.state is UserState.IN_RECYCLE_BIN:
        return SourceUser(uid, {"id": uid}, soft_deleted=True, evidence=IN_RECYCLE_BIN)
    return _absent(read, escrow, confirm_after, may_confirm)


def _absent(read: UserRead, escrow: EscrowEntry | None, confirm_after: timedelta, may_confirm: bool) -> SourceUser:
    uid = read.id
    now = read.read_at
    if may_confirm and escrow is not None and escrow.evidence.startswith(DELTA_DELETED):
        # A delete seen in delta failed to export: the user is still absent from both, so the
        # delete still stands (a failed delete stays a delete).
        return SourceUser(
            uid, {"id": uid}, hard_deleted=True, evidence=f"{DELTA_DELETED}; still absent at {_stamp(now)}"
        )
    since = escrow.absent_since if escrow is not None else None
    if may_confirm and since is not None and now is not None and now - since >= confirm_after:
        evidence = (
            f"absent from /users and directory/deletedItems at {_stamp(since)} and again at {_stamp(now)}"
            " (confirmed permanently deleted)"
        )
        return SourceUser(uid, {"id": uid}, hard_deleted=True, evidence=evidence)
    first = since or now
    evidence = f"absent from /users and directory/deletedItems since {_stamp(first)}; not yet confirmed"
    return SourceUser(uid, {"id": uid}, absent_unconfirmed=True, evidence=evidence)


def deprovision_evidence(user: SourceUser, failed_check: str) -> str:
    """What a disable or delete of `user` rests on, for the log: the failed scope check and how
    the state it saw was read."""
    if user.hard_deleted or user.soft_deleted:
        return user.evidence
    return f"{failed_check}; read from {user.evidence}" if user.evidence else failed_check
