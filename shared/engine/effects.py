"""Effects: what one object's passage through the pipeline leaves in the store, computed, not
done. Pure: (plan, gate decision, export outcome) -> the link write with the ETag it expects,
the escrow change, the provisioning-log entry, and what it counts for. The committer
(shared/engine/commit.py) applies them.

`Record` is the object's whole story (the plan, the gate's decision, the export's outcome),
which reports, on-demand answers and the log entry read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.engine.export import Outcome
from shared.engine.gate import Decision
from shared.engine.plan import DELETION_UNCONFIRMED, Kind, Plan
from shared.model import (
    Action,
    CycleKind,
    EscrowEntry,
    Initiator,
    Link,
    ModifiedProperty,
    ProvisioningLogEntry,
    ProvisioningStep,
    Status,
    StepType,
)
from shared.store.escrow import STAGED


@dataclass(frozen=True)
class LinkPut:
    """Write `link` if the stored row still has `link.etag` (None: only if there is no row)."""

    link: Link


@dataclass(frozen=True)
class LinkDelete:
    kind: str
    entra_id: str
    etag: str | None  # the row read; None: whatever is stored


@dataclass(frozen=True)
class EscrowRecord:
    kind: str
    entra_id: str
    code: str
    message: str
    evidence: str = ""
    absent_since: datetime | None = None
    due: datetime | None = None


@dataclass(frozen=True)
class EscrowClear:
    kind: str
    entra_id: str


@dataclass(frozen=True)
class Effects:
    link: LinkPut | LinkDelete | None = None
    escrow: EscrowRecord | EscrowClear | None = None
    log: ProvisioningLogEntry | None = None
    action: str = ""  # the counts this object adds to (action/status)
    status: str = ""
    attempted: bool = False  # it tried to write (or could not be planned): the failure share's base
    failed: bool = False


@dataclass(frozen=True)
class Record:
    """One user through the pipeline. Reads like a plan (kind, steps, reason, log action and
    status, target) with the gate's decision and the export's outcome folded in."""

    plan: Plan
    decision: Decision
    outcome: Outcome | None = None

    @property
    def user(self) -> Any:
        return self.plan.user

    @property
    def kind(self) -> Kind:
        return Kind.SKIP if self.decision.stale else self.plan.kind

    @property
    def staged(self) -> bool:
        return self.decision.staged

    @property
    def exported(self) -> bool:
        return self.outcome is not None

    @property
    def failed(self) -> bool:
        return self.outcome is not None and not self.outcome.ok

    @property
    def reason(self) -> str:
        if self.failed:
            return failure_reason(self.plan, self.outcome)  # type: ignore[arg-type]
        return self.decision.reason or self.plan.reason

    @property
    def error_code(self) -> str:
        if self.failed and self.outcome is not None and self.outcome.error is not None:
            return self.outcome.error.code
        return self.plan.error_code

    @property
    def steps(self) -> tuple[ProvisioningStep, ...]:
        gate: tuple[ProvisioningStep, ...] = ()
        if self.decision.staged or self.decision.stale:
            name = "EntrySynchronizationStaged" if self.decision.staged else "EntrySynchronizationSkipped"
            gate = (ProvisioningStep(name, StepType.PROCESSING, Status.SKIPPED, self.decision.reason),)
        return self.plan.steps + gate + (self.outcome.steps if self.outcome else ())

    @property
    def log_action(self) -> Action:
        if self.staged:
            return Action.STAGED_DELETE
        return Action.OTHER if self.decision.stale else self.plan.log_action

    @property
    def log_status(self) -> Status:
        if self.staged or self.decision.stale:
            return Status.SKIPPED
        if self.outcome is not None:
            return Status.SUCCESS if self.outcome.ok else Status.FAILURE
        return self.plan.log_status

    @property
    def target_id(self) -> str:
        return self.outcome.target_id if self.outcome and self.outcome.target_id else self.plan.target_id

    @property
    def target_name(self) -> str:
        return self.outcome.target_name if self.outcome and self.outcome.target_name else self.plan.target_name

    @property
    def matched_by(self) -> str:
        return self.outcome.matched_by if self.outcome and self.outcome.adopted else self.plan.matched_by

    @property
    def values(self) -> dict[str, Any]:
        return self.plan.values

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        return self.plan.changes

    @property
    def scope(self) -> Any:
        return self.plan.scope

    @property
    def link(self) -> Link | None:
        return self.plan.link

    @property
    def evidence(self) -> str:
        return self.plan.evidence

    @property
    def licenses(self) -> tuple[list[str], list[str]] | None:
        return self.plan.licenses

    @property
    def intended(self) -> Kind | None:
        return self.plan.intended

    @property
    def redacted(self) -> tuple[str, ...]:
        return self.plan.redacted

    def shown(self, path: str, value: Any) -> Any:
        return self.plan.shown(path, value)

    def shown_changes(self) -> list[tuple[str, Any, Any]]:
        return self.plan.shown_changes()


@dataclass(frozen=True)
class Context:
    """What the effects of one object depend on besides its plan."""

    cycle_id: str
    run: CycleKind
    initiated_by: Initiator
    read_at: datetime
    base: Link | None  # the link as last read (or the create intent just written), with its ETag
    matched: dict[str, Any] | None  # the GoTo user matched at read time
    escrow: EscrowEntry | None  # the user's escrow entry as read (None: unknown or none)
    escrowed: bool  # whether the user is known to be in escrow
    confirm_after_s: float
    duration_ms: int = 0
    extra_steps: tuple[ProvisioningStep, ...] = field(default_factory=tuple)


def failure_reason(plan: Plan, outcome: Outcome) -> str:
    if not outcome.partial:
        return str(outcome.error)
    what = "assigned" if plan.licenses and plan.licenses[1] else "released"
    done = {Kind.CREATE: "created", Kind.DISABLE: "disabled"}.get(plan.kind, "updated")
    return f"the GoTo user was {done}, but its licenses could not be {what}: {outcome.error}"


def user_effects(record: Record, ctx: Context) -> Effects:
    """The effects of one user's passage: a pure function of its record and context."""
    link, escrow = _store_changes(record, ctx)
    status = record.log_status.value
    action = record.log_action.value
    plan = record.plan
    attempted = record.exported or plan.kind is Kind.FAIL
    failed = record.failed or plan.kind is Kind.FAIL
    # A user already linked and in step changes nothing anywhere: it is counted, not logged
    # (a full cycle over an unchanged tenant writes no log). On demand shows every decision.
    quiet = plan.kind is Kind.NONE and link is None and escrow is None
    logged = not quiet or ctx.initiated_by is Initiator.ON_DEMAND
    return Effects(
        link=link,
        escrow=escrow,
        log=log_entry(record, ctx) if logged else None,
        action=action,
        status=status,
        attempted=attempted,
        failed=failed,
    )


def _store_changes(record: Record, ctx: Context) -> tuple[LinkPut | LinkDelete | None, Any]:
    plan, decision, outcome = record.plan, record.decision, record.outcome
    uid = plan.user.id
    if outcome is not None:
        return _after_export(record, ctx)
    if decision.staged:
        # Held, not forgotten: escrowed so that every later cycle (incremental ones too, whose
        # delta has moved on) re-evaluates the user until the admin decides.
        return None, EscrowRecord("user", uid, STAGED, record.reason, evidence=plan.user.evidence)
    if decision.stale:
        return None, None
    if plan.kind is Kind.NONE and (ctx.base is None or ctx.base.pending) and ctx.matched is not None:
        # Matched an existing GoTo user that is already in step: link it, nothing to write.
        return LinkPut(_matched_link(plan, ctx)), (EscrowClear("user", uid) if ctx.escrowed else None)
    if plan.kind is Kind.FAIL:
        return None, EscrowRecord("user", uid, plan.error_code, plan.reason)
    if plan.error_code == DELETION_UNCONFIRMED:
        since = ctx.escrow.absent_since if ctx.escrow and ctx.escrow.absent_since else ctx.read_at
        due = since + timedelta(seconds=ctx.confirm_after_s)
        return None, EscrowRecord("user", uid, DELETION_UNCONFIRMED, plan.reason, absent_since=since, due=due)
    link: LinkDelete | None = None
    if ctx.base is not None and ctx.base.pending and ctx.matched is None and plan.kind is Kind.SKIP:
        link = LinkDelete("user", uid, ctx.base.etag)  # an intent whose create never happened
    escrow = EscrowClear("user", uid) if ctx.escrowed and plan.kind in (Kind.NONE, Kind.SKIP) else None
    return link, escrow


def _after_export(record: Record, ctx: Context) -> tuple[LinkPut | LinkDelete | None, Any]:
    plan, outcome = record.plan, record.outcome
    assert outcome is not None
    uid = plan.user.id
    if outcome.ok:
        clear = EscrowClear("user", uid) if ctx.escrowed else None
        if plan.kind is Kind.DELETE:
            return LinkDelete("user", uid, ctx.base.etag if ctx.base else None), clear
        return LinkPut(_exported_link(plan, outcome, ctx)), clear
    link = LinkPut(_exported_link(plan, outcome, ctx)) if outcome.partial else None
    absent = ctx.escrow.absent_since if ctx.escrow and plan.user.hard_deleted else None
    evidence = plan.user.evidence if plan.kind.deprovisions else ""
    assert outcome.error is not None
    return link, EscrowRecord(
        "user", uid, outcome.error.code, failure_reason(plan, outcome), evidence=evidence, absent_since=absent
    )


def _exported_link(plan: Plan, outcome: Outcome, ctx: Context) -> Link:
    """The link after a successful (or half-done) export: what was sent, and to which GoTo user."""
    previous = ctx.base if ctx.base is not None else plan.link
    exported = dict(previous.exported) if previous is not None and not previous.pending else {}
    held = list(previous.licenses) if previous is not None else []
    licenses = outcome.licenses if outcome.licenses is not None and outcome.ok else held
    # A seat change that did not finish leaves its intent: the next run sets the seats again.
    seats_pending = None if outcome.ok or previous is None else previous.seats_pending
    if plan.kind is Kind.DISABLE:
        return Link(
            entra_id=plan.user.id,
            goto_id=outcome.target_id or plan.target_id,
            matched_by=previous.matched_by if previous else "created",
            owned=True,
            exported={**exported, "active": False},
            licenses=licenses,
            active=False,
            applied_at=ctx.read_at,
            etag=ctx.base.etag if ctx.base else None,
            seats_pending=seats_pending,
        )
    exported.update(plan.values)
    if previous is not None and previous.live and not outcome.adopted:
        matched_by = previous.matched_by
    else:
        matched_by = outcome.matched_by or plan.matched_by or "created"
    return Link(
        entra_id=plan.user.id,
        goto_id=outcome.target_id or plan.target_id,
        matched_by=matched_by,
        owned=True,
        exported=exported,
        licenses=licenses,
        active=True,
        applied_at=ctx.read_at,
        etag=ctx.base.etag if ctx.base else None,
        seats_pending=seats_pending,
    )


def _matched_link(plan: Plan, ctx: Context) -> Link:
    return Link(
        entra_id=plan.user.id,
        goto_id=plan.target_id,
        matched_by=plan.matched_by,
        exported=dict(plan.values),
        applied_at=ctx.read_at,
        etag=ctx.base.etag if ctx.base else None,
    )


def log_entry(record: Record, ctx: Context) -> ProvisioningLogEntry:
    plan = record.plan
    return ProvisioningLogEntry(
        cycle_id=ctx.cycle_id,
        change_id=str(uuid.uuid4()),
        action=record.log_action,
        status=record.log_status,
        source_id=plan.user.id,
        source_name=plan.user.upn or _exported_name(plan.link) or plan.user.display_name,
        target_id=record.target_id,
        target_name=record.target_name or str(plan.values.get("userName", "")),
        initiated_by=ctx.initiated_by,
        reason=record.reason,
        error_code=record.error_code,
        modified=[ModifiedProperty(name, old, new) for name, old, new in plan.shown_changes()],
        steps=list(ctx.extra_steps + record.steps),
        duration_ms=ctx.duration_ms,
        evidence=plan.evidence if plan.kind.deprovisions or record.staged else "",
    )


def _exported_name(link: Link | None) -> str:
    """A deleted user comes back from delta with its id only: name it by what we last sent."""
    value = link.exported.get("userName") if link else None
    return value if isinstance(value, str) else ""
