"""The effects of one group's passage through the pipeline (pure), as shared/engine/effects.py
computes them for users: the group link write with the ETag it expects, the escrow change, the
log entry (same vocabulary as users) and the counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.engine.effects import Effects, EscrowClear, EscrowRecord, LinkDelete, LinkPut
from shared.engine.gate import Decision
from shared.engine.group_export import GroupOutcome
from shared.engine.group_plan import GroupKind, GroupPlan
from shared.model import (
    Action,
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
class GroupRecord:
    """One group through the pipeline: its plan, the gate's decision, the export's outcome."""

    plan: GroupPlan
    decision: Decision
    outcome: GroupOutcome | None = None

    @property
    def staged(self) -> bool:
        return self.decision.staged

    @property
    def kind(self) -> GroupKind:
        return GroupKind.LINK if self.outcome is not None and self.outcome.adopted else self.plan.kind

    @property
    def failed(self) -> bool:
        return self.outcome is not None and not self.outcome.ok

    @property
    def add(self) -> tuple[str, ...]:
        return self.outcome.added if self.outcome is not None else tuple(self.plan.add)

    @property
    def remove(self) -> tuple[str, ...]:
        return self.outcome.removed if self.outcome is not None else tuple(self.plan.remove)

    @property
    def rename_from(self) -> str | None:
        return self.outcome.rename_from if self.outcome is not None else self.plan.rename_from

    @property
    def goto_id(self) -> str:
        return self.outcome.goto_id if self.outcome is not None and self.outcome.goto_id else self.plan.goto_id

    @property
    def log_action(self) -> Action:
        if self.staged:
            return Action.STAGED_DELETE
        if self.kind in (GroupKind.LINK, GroupKind.UPDATE) and (self.add or self.remove or self.rename_from):
            return Action.UPDATE
        return self.plan.log_action if self.kind is self.plan.kind else Action.OTHER

    @property
    def log_status(self) -> Status:
        if self.staged:
            return Status.SKIPPED
        if self.outcome is not None:
            return Status.SUCCESS if self.outcome.ok else Status.FAILURE
        return self.plan.log_status

    @property
    def reason(self) -> str:
        if self.failed and self.outcome is not None:
            return str(self.outcome.error)
        return self.decision.reason or self.plan.reason

    @property
    def error_code(self) -> str:
        if self.failed and self.outcome is not None and self.outcome.error is not None:
            return self.outcome.error.code
        return self.plan.error_code

    @property
    def steps(self) -> tuple[ProvisioningStep, ...]:
        gate: tuple[ProvisioningStep, ...] = ()
        if self.staged:
            gate = (ProvisioningStep("EntrySynchronizationStaged", StepType.PROCESSING, Status.SKIPPED, self.reason),)
        return self.plan.steps + gate + (self.outcome.steps if self.outcome else ())


@dataclass(frozen=True)
class GroupContext:
    cycle_id: str
    initiated_by: Initiator
    read_at: datetime
    escrowed: bool
    log_unchanged: bool
    duration_ms: int = 0


def group_effects(record: GroupRecord, ctx: GroupContext) -> Effects:
    plan = record.plan
    link, escrow = _store_changes(record, ctx)
    logged = plan.kind is not GroupKind.NONE or ctx.log_unchanged or record.log_status is not Status.SKIPPED
    return Effects(
        link=link,
        escrow=escrow,
        log=group_log_entry(record, ctx) if logged else None,
        action=record.log_action.value,
        status=record.log_status.value,
        attempted=record.outcome is not None or plan.kind is GroupKind.FAIL,
        failed=record.failed or plan.kind is GroupKind.FAIL,
    )


def _store_changes(record: GroupRecord, ctx: GroupContext) -> tuple[LinkPut | LinkDelete | None, object]:
    plan, outcome = record.plan, record.outcome
    gid, etag = plan.entra_id, plan.link.etag if plan.link else None
    clear = EscrowClear("group", gid) if ctx.escrowed else None
    if record.staged:
        return None, EscrowRecord("group", gid, STAGED, record.reason)
    if plan.kind is GroupKind.FAIL:
        return None, EscrowRecord("group", gid, plan.error_code, plan.reason)
    if plan.kind is GroupKind.FORGET:
        return LinkDelete("group", gid, etag), clear
    if outcome is None:
        return None, clear
    if not outcome.ok:
        assert outcome.error is not None
        return None, EscrowRecord("group", gid, outcome.error.code, str(outcome.error))
    if outcome.deleted:
        return LinkDelete("group", gid, etag), clear
    return LinkPut(_group_link(plan, outcome, ctx, etag)), clear


def _group_link(plan: GroupPlan, outcome: GroupOutcome, ctx: GroupContext, etag: str | None) -> Link:
    return Link(
        entra_id=plan.entra_id,
        goto_id=outcome.goto_id,
        kind="group",
        matched_by=outcome.matched_by or plan.matched_by,
        owned=True,
        active=True,
        exported=plan.exported(),
        applied_at=ctx.read_at,
        etag=etag,
    )


def group_log_entry(record: GroupRecord, ctx: GroupContext) -> ProvisioningLogEntry:
    plan = record.plan
    modified: list[ModifiedProperty] = []
    if record.rename_from is not None or plan.kind is GroupKind.CREATE:
        modified.append(ModifiedProperty("displayName", record.rename_from, plan.display_name))
    if record.add or record.remove:
        modified.append(ModifiedProperty("members", {"removed": list(record.remove)}, {"added": list(record.add)}))
    return ProvisioningLogEntry(
        cycle_id=ctx.cycle_id,
        change_id=str(uuid.uuid4()),
        action=record.log_action,
        status=record.log_status,
        source_id=plan.entra_id,
        source_name=plan.display_name,
        target_id=record.goto_id,
        target_name=plan.display_name,
        identity_type="Group",
        initiated_by=ctx.initiated_by,
        reason=record.reason,
        error_code=record.error_code,
        modified=modified,
        steps=list(record.steps),
        duration_ms=ctx.duration_ms,
        evidence=plan.reason if plan.kind is GroupKind.DELETE else "",
    )
