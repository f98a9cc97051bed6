"""Cycle reports: the dry-run plan as JSON (cli/render.py prints it), with each object's attribute
diff and the disables/deletes the deletion threshold would stage (unlike Entra,
docs/reference/entra-provisioning.md#accidental-deletions, the held deletions can be seen before
they are allowed).

A dry run is the real cycle stopped before export (docs/decisions.md D4), so what it reports
is what the next real cycle does, as long as nothing changes in Entra or GoTo in between.
"""

from __future__ import annotations

from typing import Any

from shared.engine.cycle import CycleResult
from shared.engine.effects import Record
from shared.engine.group_effects import GroupRecord
from shared.engine.plan import Kind


def changes_document(plan: Record) -> list[dict[str, Any]]:
    return [{"attribute": path, "old": old, "new": new} for path, old, new in plan.shown_changes()]


def outcome_of(plan: Record) -> tuple[str, str]:
    """(status, error code) of an object after the engine ran it: the export's outcome when it
    was exported, else the plan's."""
    return plan.log_status.value, plan.error_code


def plan_document(plan: Record, *, executed: bool = False) -> dict[str, Any]:
    """One object's decision. `executed`: the plan went through export (its status is the outcome)."""
    status, error_code = outcome_of(plan) if executed else (plan.log_status.value, plan.error_code)
    return {
        "id": plan.user.id,
        "user": plan.user.upn or plan.user.id,
        "displayName": plan.user.display_name,
        "action": plan.log_action.value,
        "kind": plan.kind.value,  # the engine's decision; for a StagedDelete the held disable or delete
        "status": status,
        "errorCode": error_code,
        "reason": plan.reason,
        "staged": plan.staged,
        "target": {"id": plan.target_id, "userName": plan.target_name or plan.values.get("userName", "")},
        "matchedBy": plan.matched_by,
        # {path: [old, new]} as before, for scripts; "modifiedProperties" is the same as a list
        "changes": {path: [old, new] for path, old, new in plan.shown_changes()},
        "modifiedProperties": changes_document(plan),
    }


def dry_run_document(result: CycleResult, *, include_unchanged: bool = False) -> dict[str, Any]:
    """The cycle summary plus the plan. Objects already in step are counted, not listed,
    unless `include_unchanged`."""
    doc = result.summary()
    listed = [p for p in result.plans if include_unchanged or p.kind is not Kind.NONE]
    doc["inSync"] = sum(1 for p in result.plans if p.kind is Kind.NONE)
    doc["plan"] = [plan_document(p) for p in listed]
    doc["stagedByThreshold"] = [p.user.upn or p.user.id for p in result.plans if p.staged]
    doc["stagedByThreshold"] += [g.plan.display_name for g in result.groups if g.staged]
    doc["groups"] = [group_document(g) for g in result.groups if include_unchanged or g.plan.kind.writes or g.staged]
    return doc


def group_document(record: GroupRecord) -> dict[str, Any]:
    """One group's decision (groups are planned after the users, PROVISION_GROUPS)."""
    plan = record.plan
    return {
        "id": plan.entra_id,
        "group": plan.display_name,
        "action": record.log_action.value,
        "kind": plan.kind.value,
        "status": record.log_status.value,
        "errorCode": record.error_code,
        "reason": record.reason,
        "staged": record.staged,
        "target": {"id": record.goto_id},
        "membersAdded": list(record.add),
        "membersRemoved": list(record.remove),
        "renameFrom": record.rename_from,
    }


def result_document(result: CycleResult) -> dict[str, Any]:
    """`gotosync sync --json`: the summary, and for a dry run the plan as well."""
    return dry_run_document(result) if result.dry_run else result.summary()
