"""Export: carries out one plan against GoTo and says what became of it.

The only module of the engine that writes to GoTo: the SCIM write first, then (when the plan
changes them) the user's licenses through the Admin API. A dry run never reaches it: the cycle
reports plans instead of exporting them.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.engine.matching import external_id_of
from shared.engine.plan import Kind, Plan, diff
from shared.goto.errors import Conflict, GoToError
from shared.goto.scim import GoToScimClient
from shared.model import Link, ProvisioningStep, Status, StepType
from shared.scim.resource import apply_changes, build_resource

# (GoTo user key, license keys): sets the user's whole license set through the Admin API.
LicenseSetter = Callable[[str, list[str]], Awaitable[None]]
# GoTo user key -> the Entra id whose link points at it (None: no link does).
OwnerLookup = Callable[[str], Awaitable[str | None]]


class ClaimedByAnother(GoToError):
    """A create met GoTo's 409 and the existing GoTo user belongs to another Entra user: it is
    never adopted (it would be renamed or disabled for the wrong person)."""

    def __init__(self, user_name: str, owner: str) -> None:
        super().__init__(
            f"GoTo user {user_name!r} exists and belongs to Entra user {owner}: not adopted "
            "(two users would share one GoTo account; check the mapping of userName)",
            code="DuplicateSourceEntries",
        )


@dataclass
class Outcome:
    plan: Plan
    ok: bool
    link: Link | None  # the link to store (None: delete the stored link)
    error: GoToError | None = None
    target_id: str = ""
    # The SCIM write was done but the license change failed: the link is stored all the same
    # (with the licenses held before) and the failure is logged and escrowed.
    partial: bool = False


async def export(
    plan: Plan,
    scim: GoToScimClient,
    target: dict[str, Any] | None,
    read_at: datetime,
    set_licenses: LicenseSetter | None = None,
    owner_of: OwnerLookup | None = None,
) -> Outcome:
    """Applies the plan's action, then its license change; never raises a GoToError (it is
    returned in the outcome). `owner_of` guards the adoption of an existing GoTo user on 409."""
    try:
        if plan.kind is Kind.CREATE:
            outcome = await _create(plan, scim, read_at, owner_of)
        elif plan.kind in (Kind.UPDATE, Kind.ENABLE):
            outcome = await _update(plan, scim, target or {}, read_at)
        elif plan.kind is Kind.DISABLE:
            outcome = await _disable(plan, scim, target or {}, read_at)
        elif plan.kind is Kind.DELETE:
            await scim.delete_user(plan.target_id)
            _step(plan, "EntryExportDelete", f"Deleted GoTo user {plan.target_id}")
            return Outcome(plan, True, None, target_id=plan.target_id)
        else:
            raise ValueError(f"nothing to export for a {plan.kind} plan")
    except GoToError as exc:
        plan.steps.append(
            ProvisioningStep("EntryExportError", StepType.EXPORT, Status.FAILURE, str(exc), {"code": exc.code})
        )
        return Outcome(plan, False, plan.link, exc, plan.target_id)
    return await _licenses(outcome, set_licenses)


async def _licenses(outcome: Outcome, set_licenses: LicenseSetter | None) -> Outcome:
    """After the SCIM write: the license change, if the plan has one (Admin API)."""
    plan, link = outcome.plan, outcome.link
    if plan.licenses is None or set_licenses is None or link is None:
        return outcome
    held, wanted = plan.licenses
    try:
        await set_licenses(outcome.target_id or plan.target_id, wanted)
    except GoToError as exc:
        what = "assign" if wanted else "release"
        plan.steps.append(
            ProvisioningStep(
                "EntryExportError",
                StepType.EXPORT,
                Status.FAILURE,
                f"could not {what} licenses {wanted or held}: {exc}",
                {"code": exc.code},
            )
        )
        return Outcome(plan, False, link, exc, outcome.target_id, partial=True)
    link.licenses = list(wanted)
    if wanted:
        _step(plan, "EntryExportUpdate", f"Set the licenses of GoTo user {outcome.target_id}: {', '.join(wanted)}")
    else:
        _step(plan, "EntryExportUpdate", f"Released the licenses of GoTo user {outcome.target_id}: {', '.join(held)}")
    return outcome


async def _create(plan: Plan, scim: GoToScimClient, read_at: datetime, owner_of: OwnerLookup | None) -> Outcome:
    resource = build_resource(plan.values)
    try:
        created = await scim.create_user(resource)
    except Conflict:
        # Already there (an earlier run created it and was killed before storing the link, or
        # an admin made it): adopt it by userName, then bring it in step, unless it is another
        # Entra user's account.
        hits = await scim.find_users("userName", str(plan.values["userName"]))
        if len(hits) != 1:
            raise
        existing = hits[0]
        await _check_owner(plan, existing, owner_of)
        plan.matched_by = "userName"
        plan.target_id = str(existing["id"])
        changes = diff(plan.values, existing, None)
        if changes:
            wanted = {p: new for p, (_, new) in changes.items()}
            await scim.update_user(plan.target_id, wanted, apply_changes(existing, wanted))
        _step(plan, "EntryExportAdd", f"GoTo user {plan.values['userName']} existed; linked it (adopted)")
        return Outcome(plan, True, _link(plan, read_at, matched_by="userName"), target_id=plan.target_id)
    plan.target_id = str(created.get("id", ""))
    plan.target_name = str(created.get("userName", plan.values.get("userName", "")))
    _step(plan, "EntryExportAdd", f"Created GoTo user {plan.target_name} ({plan.target_id})")
    return Outcome(plan, True, _link(plan, read_at, matched_by="created"), target_id=plan.target_id)


async def _update(plan: Plan, scim: GoToScimClient, target: dict[str, Any], read_at: datetime) -> Outcome:
    changes = {path: new for path, (_, new) in plan.changes.items()}
    if changes:  # none: only the licenses change
        await scim.update_user(plan.target_id, changes, apply_changes(target, changes))
        _step(plan, "EntryExportUpdate", f"Updated GoTo user {plan.target_id}: {', '.join(sorted(changes))}")
    matched_by = plan.link.matched_by if plan.link else plan.matched_by
    return Outcome(plan, True, _link(plan, read_at, matched_by=matched_by), target_id=plan.target_id)


async def _disable(plan: Plan, scim: GoToScimClient, target: dict[str, Any], read_at: datetime) -> Outcome:
    if "active" in plan.changes:  # absent: already disabled, only its licenses are released
        await scim.disable_user(plan.target_id, apply_changes(target, {"active": False}))
        _step(plan, "EntryExportUpdate", f"Disabled GoTo user {plan.target_id} (active=false)")
    link = copy.copy(plan.link) if plan.link else None
    if link is not None:
        link.active = False
        link.exported = {**link.exported, "active": False}
        link.applied_at = read_at
    return Outcome(plan, True, link, target_id=plan.target_id)


async def _check_owner(plan: Plan, existing: dict[str, Any], owner_of: OwnerLookup | None) -> None:
    user_id = plan.user.id.lower()
    external = external_id_of(existing)
    owner = external if external and external != user_id else ""
    if not owner and owner_of is not None:
        linked = await owner_of(str(existing.get("id", "")))
        owner = linked if linked and linked.lower() != user_id else ""
    if owner:
        raise ClaimedByAnother(str(existing.get("userName", "")), owner)


def _link(plan: Plan, read_at: datetime, matched_by: str) -> Link:
    previous = plan.link
    exported = dict(previous.exported) if previous else {}
    exported.update(plan.values)
    return Link(
        entra_id=plan.user.id,
        goto_id=plan.target_id,
        kind="user",
        matched_by=matched_by or "created",
        owned=True,
        exported=exported,
        licenses=list(previous.licenses) if previous else [],
        active=True,
        applied_at=read_at,
        etag=previous.etag if previous else None,
    )


def _step(plan: Plan, name: str, description: str) -> None:
    plan.steps.append(ProvisioningStep(name, StepType.EXPORT, Status.SUCCESS, description))
