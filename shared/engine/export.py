"""The user exporter: carries out one user's plan against GoTo and says what became of it.

The only code of the user pipeline that writes to GoTo: the SCIM write first, then (when the
plan changes them) the user's licenses through the Admin API. It never changes the plan and
never touches the store: the outcome goes to shared/engine/effects.py. A dry run never reaches
it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.engine.matching import external_id_of
from shared.engine.plan import Kind, Plan, diff
from shared.goto.errors import Conflict, GoToError
from shared.goto.scim import GoToScimClient
from shared.model import ProvisioningStep, Status, StepType
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


@dataclass(frozen=True)
class Outcome:
    """What the export of one plan did. `licenses` is the license set the user holds after it
    (None: not touched). `partial`: the SCIM write was done but the license change failed."""

    ok: bool
    target_id: str = ""
    target_name: str = ""
    matched_by: str = ""
    licenses: list[str] | None = None
    error: GoToError | None = None
    partial: bool = False
    adopted: bool = False  # a create met a 409 and took the existing GoTo user over
    steps: tuple[ProvisioningStep, ...] = field(default_factory=tuple)


@dataclass
class _Doing:
    """What the export has done so far (its steps and the GoTo object it wrote)."""

    target_id: str
    target_name: str = ""
    matched_by: str = ""
    adopted: bool = False
    steps: list[ProvisioningStep] = field(default_factory=list)

    def step(self, name: str, description: str) -> None:
        self.steps.append(ProvisioningStep(name, StepType.EXPORT, Status.SUCCESS, description))

    def failed(self, exc: GoToError, description: str | None = None) -> None:
        self.steps.append(
            ProvisioningStep(
                "EntryExportError", StepType.EXPORT, Status.FAILURE, description or str(exc), {"code": exc.code}
            )
        )


async def export(
    plan: Plan,
    scim: GoToScimClient,
    target: dict[str, Any] | None,
    set_licenses: LicenseSetter | None = None,
    owner_of: OwnerLookup | None = None,
) -> Outcome:
    """Applies the plan's action, then its license change; never raises a GoToError (it is
    returned in the outcome). `owner_of` guards the adoption of an existing GoTo user on 409."""
    doing = _Doing(plan.target_id, plan.target_name, plan.matched_by)
    try:
        if plan.kind is Kind.CREATE:
            await _create(plan, scim, doing, owner_of)
        elif plan.kind in (Kind.UPDATE, Kind.ENABLE):
            await _update(plan, scim, target or {}, doing)
        elif plan.kind is Kind.DISABLE:
            await _disable(plan, scim, target or {}, doing)
        elif plan.kind is Kind.DELETE:
            await scim.delete_user(plan.target_id)
            doing.step("EntryExportDelete", f"Deleted GoTo user {plan.target_id}")
            return _done(doing, ok=True)
        else:
            raise ValueError(f"nothing to export for a {plan.kind} plan")
    except GoToError as exc:
        doing.failed(exc)
        return _done(doing, ok=False, error=exc)
    return await _licenses(plan, doing, set_licenses)


def _done(doing: _Doing, **kwargs: Any) -> Outcome:
    return Outcome(
        target_id=doing.target_id,
        target_name=doing.target_name,
        matched_by=doing.matched_by,
        adopted=doing.adopted,
        steps=tuple(doing.steps),
        **kwargs,
    )


async def _licenses(plan: Plan, doing: _Doing, set_licenses: LicenseSetter | None) -> Outcome:
    """After the SCIM write: the license change, if the plan has one (Admin API)."""
    if plan.licenses is None or set_licenses is None:
        return _done(doing, ok=True)
    held, wanted = plan.licenses
    try:
        await set_licenses(doing.target_id, wanted)
    except GoToError as exc:
        what = "assign" if wanted else "release"
        doing.failed(exc, f"could not {what} licenses {wanted or held}: {exc}")
        return _done(doing, ok=False, error=exc, partial=True)
    if wanted:
        doing.step("EntryExportUpdate", f"Set the licenses of GoTo user {doing.target_id}: {', '.join(wanted)}")
    else:
        released = ", ".join(held) or "all it held"
        doing.step("EntryExportUpdate", f"Released the licenses of GoTo user {doing.target_id}: {released}")
    return _done(doing, ok=True, licenses=list(wanted))


async def _create(plan: Plan, scim: GoToScimClient, doing: _Doing, owner_of: OwnerLookup | None) -> None:
    resource = build_resource(plan.values)
    try:
        created = await scim.create_user(resource)
    except Conflict:
        # Already there (an admin made it, or a run died between the POST and its intent):
        # adopt it by userName, then bring it in step, unless it is another Entra user's account.
        hits = await scim.find_users("userName", str(plan.values["userName"]))
        if len(hits) != 1:
            raise
        existing = hits[0]
        await _check_owner(plan, existing, owner_of)
        doing.matched_by, doing.target_id, doing.adopted = "userName", str(existing["id"]), True
        doing.target_name = str(existing.get("userName", ""))
        changes = diff(plan.values, existing, None)
        if changes:
            wanted = {p: new for p, (_, new) in changes.items()}
            await scim.update_user(doing.target_id, wanted, apply_changes(existing, wanted))
        doing.step("EntryExportAdd", f"GoTo user {plan.values['userName']} existed; linked it (adopted)")
        return
    doing.target_id = str(created.get("id", ""))
    doing.target_name = str(created.get("userName", plan.values.get("userName", "")))
    doing.matched_by = "created"
    doing.step("EntryExportAdd", f"Created GoTo user {doing.target_name} ({doing.target_id})")


async def _check_owner(plan: Plan, existing: dict[str, Any], owner_of: OwnerLookup | None) -> None:
    user_id = plan.user.id.lower()
    external = external_id_of(existing)
    owner = external if external and external != user_id else ""
    if not owner and owner_of is not None:
        linked = await owner_of(str(existing.get("id", "")))
        owner = linked if linked and linked.lower() != user_id else ""
    if owner:
        raise ClaimedByAnother(str(existing.get("userName", "")), owner)


async def _update(plan: Plan, scim: GoToScimClient, target: dict[str, Any], doing: _Doing) -> None:
    changes = {path: new for path, (_, new) in plan.changes.items()}
    if changes:  # none: only the licenses change
        await scim.update_user(plan.target_id, changes, apply_changes(target, changes))
        doing.step("EntryExportUpdate", f"Updated GoTo user {plan.target_id}: {', '.join(sorted(changes))}")


async def _disable(plan: Plan, scim: GoToScimClient, target: dict[str, Any], doing: _Doing) -> None:
    if "active" in plan.changes:  # absent: already disabled, only its licenses are released
        await scim.disable_user(plan.target_id, apply_changes(target, {"active": False}))
        doing.step("EntryExportUpdate", f"Disabled GoTo user {plan.target_id} (active=false)")
