"""Cycle reports: the dry-run plan as JSON and as a table, with each object's attribute diff and
the disables/deletes the deletion threshold would stage (unlike Entra,
docs/reference/entra-provisioning.md#accidental-deletions, the held deletions can be seen before
they are allowed).

A dry run is the real cycle stopped before export (docs/decisions.md D4), so what it reports
is what the next real cycle does, as long as nothing changes in Entra or GoTo in between.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.engine.cycle import CycleResult
from shared.engine.effects import Record
from shared.engine.group_effects import GroupRecord
from shared.engine.plan import Kind
from shared.scim.paths import short_name


def _value(value: Any) -> str:
    return "—" if value is None else repr(value) if not isinstance(value, str) else value


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


def print_result(console: Console, result: CycleResult, *, show_plan: bool | None = None) -> None:
    """The summary as a table; for a dry run (or `show_plan`) each planned object with its diff."""
    kind = f"{result.kind.value} cycle" + (" (dry run: nothing was written)" if result.dry_run else "")
    console.print(f"[bold]{kind}[/] {result.cycle_id} finished in {result.duration_s:.1f} s")
    counts = Table("action", "count", title="by action")
    for action, n in sorted(result.by_action.items()):
        counts.add_row(action, str(n))
    console.print(counts)
    console.print("by status: " + (", ".join(f"{k} {v}" for k, v in sorted(result.by_status.items())) or "nothing"))
    if show_plan is None:
        show_plan = result.dry_run
    if show_plan:
        print_plans(console, [p for p in result.plans if p.kind is not Kind.NONE])
        in_sync = sum(1 for p in result.plans if p.kind is Kind.NONE)
        if in_sync:
            console.print(f"{in_sync} object(s) already in sync (not listed)")
    if result.staged:
        verb = "would be staged" if result.dry_run else "staged"
        console.print(
            f"[yellow]{result.staged} disables/deletes {verb} by the deletion threshold: nothing is disabled or "
            "deleted until an admin runs `gotosync allow-deletes` (or fixes the cause and restarts); "
            "`gotosync sync --dry-run --full` lists them[/]"
        )


def print_plans(console: Console, plans: list[Record], *, executed: bool = False) -> None:
    if not plans:
        console.print("no object needs a change")
        return
    table = Table("user", "action", "status", "attribute", "old", "new", "reason", title="plan", show_lines=True)
    for plan in sorted(plans, key=lambda p: (p.log_action.value, p.user.upn or p.user.id)):
        status, code = outcome_of(plan) if executed else (plan.log_status.value, plan.error_code)
        changes = plan.shown_changes()
        cells = [
            plan.user.upn or plan.user.id,
            plan.log_action.value + (f" ({plan.kind.value})" if plan.staged else ""),
            status,
            "\n".join(short_name(path) for path, _, _ in changes),
            "\n".join(_value(old) for _, old, _ in changes),
            "\n".join(_value(new) for _, _, new in changes),
            plan.reason + (f" [{code}]" if code else ""),
        ]
        table.add_row(*(escape(c) for c in cells))
    console.print(table)
