"""The group exporter: carries out one group's plan against GoTo's SCIM groups and says what
became of it. Like the user exporter it never changes the plan and never touches the store.

A create that meets GoTo's 409 (the group was created meanwhile, or by a run that died before
its link) adopts the group by displayName and brings it in step with the same member diff the
planner uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.engine.group_plan import MATCHED_BY_NAME, GroupKind, GroupPlan, member_diff, user_members
from shared.goto.errors import AuthError, Conflict, GoToError
from shared.goto.scim import GoToScimClient
from shared.model import ProvisioningStep, Status, StepType

log = logging.getLogger("gotosync.groups")

_EXPORT_STEP = {GroupKind.CREATE: "EntryExportAdd", GroupKind.DELETE: "EntryExportDelete"}


@dataclass(frozen=True)
class GroupOutcome:
    ok: bool
    goto_id: str = ""
    matched_by: str = ""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rename_from: str | None = None
    adopted: bool = False  # a create met a 409 and linked the existing group by name
    deleted: bool = False
    error: GoToError | None = None
    steps: tuple[ProvisioningStep, ...] = field(default_factory=tuple)


async def export_group(plan: GroupPlan, scim: GoToScimClient) -> GroupOutcome:
    """Applies the plan; never raises a GoToError (it is returned in the outcome)."""
    steps: list[ProvisioningStep] = []
    try:
        if plan.kind is GroupKind.DELETE:
            deleted = await scim.delete_group(plan.goto_id, display_name=plan.display_name)
            what = "Deleted the GoTo group" if deleted else "The GoTo group was already gone"
            steps.append(
                ProvisioningStep("EntryExportDelete", StepType.EXPORT, Status.SUCCESS, what, {"key": plan.goto_id})
            )
            return GroupOutcome(True, plan.goto_id, deleted=True, steps=tuple(steps))
        if plan.kind is GroupKind.CREATE:
            return await _create(scim, plan, steps)
        return await _update(scim, plan, plan.goto_id, plan.matched_by, plan.add, plan.remove, plan.rename_from, steps)
    except GoToError as exc:
        name = _EXPORT_STEP.get(plan.kind, "EntryExportUpdate")
        details = {"http_status": exc.status, "code": exc.code, "detail": exc.detail}
        steps.append(ProvisioningStep(name, StepType.EXPORT, Status.FAILURE, str(exc), details))
        if not isinstance(exc, AuthError):
            log.warning("group %s (%s): %s", plan.display_name, plan.entra_id, exc)
        return GroupOutcome(False, plan.goto_id, error=exc, steps=tuple(steps))


async def _create(scim: GoToScimClient, plan: GroupPlan, steps: list[ProvisioningStep]) -> GroupOutcome:
    try:
        created = await scim.create_group(plan.display_name, plan.members, external_id=plan.entra_id)
    except Conflict as exc:
        found = await scim.find_groups(plan.display_name)
        steps.append(
            ProvisioningStep(
                "EntryExportAdd",
                StepType.EXPORT,
                Status.WARNING,
                f"GoTo already has a group named '{plan.display_name}' (409): {len(found)} found by displayName",
                {"http_status": exc.status},
            )
        )
        if len(found) != 1:
            raise GoToError(
                f"GoTo refused to create group '{plan.display_name}' as a duplicate, and a lookup by "
                f"displayName found {len(found)} group(s)",
                status=exc.status,
                code="DuplicateTargetEntries",
                op=exc.op,
            ) from exc
        target = found[0]
        add, remove = member_diff(plan.members, user_members(target), plan.managed_keys, plan.link)
        name = target.get("displayName")
        rename_from = name if isinstance(name, str) and name != plan.display_name else None
        outcome = await _update(scim, plan, str(target["id"]), MATCHED_BY_NAME, add, remove, rename_from, steps)
        return GroupOutcome(**{**outcome.__dict__, "adopted": True})
    key = str(created["id"])
    description = f"Created GoTo group {key} with {len(plan.members)} member(s)"
    steps.append(ProvisioningStep("EntryExportAdd", StepType.EXPORT, Status.SUCCESS, description, {"key": key}))
    return GroupOutcome(True, key, "created", added=tuple(plan.members), steps=tuple(steps))


async def _update(
    scim: GoToScimClient,
    plan: GroupPlan,
    key: str,
    matched_by: str,
    add: list[str],
    remove: list[str],
    rename_from: str | None,
    steps: list[ProvisioningStep],
) -> GroupOutcome:
    done: list[str] = []
    if rename_from is not None:
        await scim.rename_group(key, rename_from, plan.display_name)
        done.append(f"renamed from '{rename_from}'")
    if add or remove:
        await scim.update_group_members(key, add, remove, display_name=plan.display_name)
        done.append(f"{len(add)} member(s) added, {len(remove)} removed")
    if matched_by == MATCHED_BY_NAME and (plan.kind is GroupKind.LINK or plan.kind is GroupKind.CREATE):
        done.insert(0, f"linked to the GoTo group with displayName '{plan.display_name}'")
    description = "; ".join(done) or "link refreshed (GoTo already in step)"
    steps.append(ProvisioningStep("EntryExportUpdate", StepType.EXPORT, Status.SUCCESS, description, {"key": key}))
    return GroupOutcome(
        True, key, matched_by, added=tuple(add), removed=tuple(remove), rename_from=rename_from, steps=tuple(steps)
    )
