"""Group plans: Entra groups assigned to the app become GoTo (SCIM) groups with the GoTo keys of
their provisioned members, as Entra's "GoTo" gallery app does (docs/groups.md). Pure.

One member diff serves the planner and the exporter's 409 adoption alike: a member is pushed
when its user link is owned, active and live; a member is removed only when gotosync manages it
(a GoTo key of a user link, or in the group link's last export): users added in GoTo by hand
and nested groups are left alone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.model import Action, Assignment, Link, ProvisioningStep, Status, StepType

MATCHED_BY_NAME = "displayName"


class GroupKind(enum.StrEnum):
    CREATE = "Create"  # no link, no GoTo group with that displayName
    LINK = "Link"  # a GoTo group with the same displayName: link it (and bring its members in step)
    UPDATE = "Update"  # linked: rename and/or member changes
    DELETE = "Delete"  # linked, no longer assigned: delete the GoTo group
    FORGET = "Forget"  # linked, no longer assigned, but the GoTo group is already gone (or not ours)
    NONE = "None"  # in step
    FAIL = "Fail"  # cannot be planned (several GoTo groups with that name)

    @property
    def writes(self) -> bool:
        return self in (GroupKind.CREATE, GroupKind.LINK, GroupKind.UPDATE, GroupKind.DELETE)

    @property
    def deprovisions(self) -> bool:
        return self is GroupKind.DELETE


@dataclass(frozen=True)
class GroupPlan:
    """What happens to one Entra group. Member lists are GoTo user keys, sorted."""

    entra_id: str
    display_name: str  # Entra's displayName (for a delete: the name last sent)
    kind: GroupKind
    goto_id: str = ""
    members: list[str] = field(default_factory=list)  # wanted GoTo members (user keys)
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    rename_from: str | None = None  # GoTo's current displayName when it must change
    link: Link | None = None
    matched_by: str = "created"
    reason: str = ""
    error_code: str = ""
    steps: tuple[ProvisioningStep, ...] = ()
    managed_keys: frozenset[str] = frozenset()  # GoTo keys of users gotosync manages (the member diff's base)

    @property
    def changes_members(self) -> bool:
        return bool(self.add or self.remove)

    @property
    def log_action(self) -> Action:
        if self.kind is GroupKind.CREATE:
            return Action.CREATE
        if self.kind is GroupKind.DELETE:
            return Action.DELETE
        if self.kind in (GroupKind.UPDATE, GroupKind.LINK) and (self.changes_members or self.rename_from is not None):
            return Action.UPDATE
        return Action.OTHER

    @property
    def log_status(self) -> Status:
        if self.kind is GroupKind.FAIL:
            return Status.FAILURE
        return Status.SKIPPED if self.kind in (GroupKind.NONE, GroupKind.FORGET) else Status.SUCCESS

    def exported(self) -> dict[str, Any]:
        return {"displayName": self.display_name, "members": list(self.members)}


def user_members(group: Mapping[str, Any]) -> set[str]:
    """The user keys among a GoTo group's members (nested-group members are never touched)."""
    out: set[str] = set()
    for m in group.get("members") or []:
        if isinstance(m, Mapping) and m.get("value") is not None and str(m.get("type", "user")).lower() == "user":
            out.add(str(m["value"]))
    return out


def member_diff(
    wanted: list[str], current: set[str], managed_keys: frozenset[str], link: Link | None
) -> tuple[list[str], list[str]]:
    """(add, remove): the wanted keys GoTo lacks, and the GoTo members gotosync manages (or put
    there, per the link's last export) that are no longer wanted."""
    ours = set(managed_keys) | set((link.exported.get("members") if link else None) or [])
    return sorted(set(wanted) - current), sorted((current & ours) - set(wanted))


def _step(name: str, step_type: StepType, status: Status, description: str, **details: Any) -> ProvisioningStep:
    return ProvisioningStep(name, step_type, status, description, details)


@dataclass(frozen=True)
class _Inputs:
    """What every group's plan reads: user links by Entra id, GoTo groups by key and by name."""

    pushable: dict[str, str]  # Entra user id -> GoTo key, for owned, active, live user links
    managed_keys: frozenset[str]
    goto_groups: Mapping[str, Mapping[str, Any]]
    by_name: dict[str, list[str]]


def _inputs(user_links: Mapping[str, Link], goto_groups: Mapping[str, Mapping[str, Any]]) -> _Inputs:
    pushable = {
        uid: lk.goto_id for uid, lk in user_links.items() if lk.owned and lk.active and lk.live and lk.kind == "user"
    }
    managed = frozenset(lk.goto_id for lk in user_links.values() if lk.live)
    by_name: dict[str, list[str]] = {}
    for key, g in goto_groups.items():
        name = g.get("displayName")
        if isinstance(name, str):
            by_name.setdefault(name.casefold(), []).append(str(key))
    return _Inputs(pushable, managed, goto_groups, by_name)


def plan_groups(
    assigned_groups: Mapping[str, Assignment],
    members: Mapping[str, set[str]],
    user_links: Mapping[str, Link],
    group_links: Mapping[str, Link],
    goto_groups: Mapping[str, Mapping[str, Any]],
    *,
    provision_groups: bool = True,
) -> list[GroupPlan]:
    """One plan per assigned group and per group link whose group is no longer assigned.

    `assigned_groups`: Entra group id -> assignment (only principal_type "Group" are used).
    `members`: Entra group id -> Entra user ids. `user_links` / `group_links`: by Entra id.
    `goto_groups`: by GoTo key, each with ``displayName`` and ``members``."""
    if not provision_groups:
        return []
    groups = {gid: a for gid, a in assigned_groups.items() if a.principal_type == "Group"}
    inputs = _inputs(user_links, goto_groups)
    plans = [
        _plan_assigned(gid, groups[gid].display_name, members.get(gid, set()), group_links.get(gid), inputs)
        for gid in sorted(groups)
    ]
    plans += [_plan_unassigned(gid, group_links[gid], goto_groups) for gid in sorted(set(group_links) - set(groups))]
    return plans


def _plan_assigned(gid: str, name: str, source: set[str], link: Link | None, inputs: _Inputs) -> GroupPlan:
    wanted = sorted({inputs.pushable[u] for u in source if u in inputs.pushable})
    steps = [
        _step(
            "EntryImport",
            StepType.IMPORT,
            Status.SUCCESS,
            f"Retrieved group '{name}' and its {len(source)} member(s) from Microsoft Entra ID",
            members=len(source),
        ),
        _step(
            "EntrySynchronizationScoping",
            StepType.SCOPING,
            Status.SUCCESS,
            "The group is assigned to the application",
            members_pushed=len(wanted),
            members_not_provisioned=sorted(u for u in source if u not in inputs.pushable),
        ),
    ]
    base = GroupPlan(
        gid, name, GroupKind.NONE, members=wanted, link=link, managed_keys=inputs.managed_keys, steps=tuple(steps)
    )
    if link is not None and link.goto_id in inputs.goto_groups:
        matched = _with(base, _step("EntryMatching", StepType.MATCHING, Status.SUCCESS, "Found the linked GoTo group"))
        return _plan_match(matched, link.goto_id, inputs.goto_groups[link.goto_id], "link")
    return _plan_by_name(base, inputs)


def _plan_by_name(base: GroupPlan, inputs: _Inputs) -> GroupPlan:
    name, link = base.display_name, base.link
    hits = inputs.by_name.get(name.casefold(), [])
    gone = f"the linked GoTo group {link.goto_id} no longer exists; " if link is not None else ""
    matching = _step(
        "EntryMatching",
        StepType.MATCHING,
        Status.SUCCESS if len(hits) < 2 else Status.FAILURE,
        f"{gone}displayName '{name}': {len(hits)} GoTo group(s)",
        attribute=MATCHED_BY_NAME,
        value=name,
        hits=len(hits),
    )
    plan = _with(base, matching)
    if len(hits) > 1:
        reason = f"{len(hits)} GoTo groups are named '{name}'"
        return _with(
            plan,
            _step("EntrySynchronizationError", StepType.PROCESSING, Status.FAILURE, reason),
            kind=GroupKind.FAIL,
            reason=reason,
            error_code="DuplicateTargetEntries",
        )
    if not hits:
        what = f"Group '{name}' will be created in GoTo with {len(plan.members)} member(s)"
        step = _step("EntrySynchronizationCreate", StepType.PROCESSING, Status.SUCCESS, what)
        return _with(plan, step, kind=GroupKind.CREATE, add=list(plan.members), reason=what)
    return _plan_match(plan, hits[0], inputs.goto_groups[hits[0]], MATCHED_BY_NAME)


def _plan_match(plan: GroupPlan, goto_id: str, target: Mapping[str, Any], matched_by: str) -> GroupPlan:
    link = plan.link
    add, remove = member_diff(plan.members, user_members(target), plan.managed_keys, link)
    goto_name = target.get("displayName")
    rename_from = goto_name if isinstance(goto_name, str) and goto_name != plan.display_name else None
    kind = GroupKind.LINK if matched_by == MATCHED_BY_NAME else GroupKind.UPDATE
    if kind is GroupKind.UPDATE and not add and not remove and rename_from is None:
        # In step; but when the link is not (a member pushed meanwhile), the link is refreshed.
        kind = GroupKind.UPDATE if link is not None and link.exported.get("members") != plan.members else GroupKind.NONE
    what = [f"renamed from '{rename_from}'"] if rename_from is not None else []
    what += [f"{len(add)} member(s) added"] if add else []
    what += [f"{len(remove)} member(s) removed"] if remove else []
    description = ("Group will be " + ", ".join(what)) if what else "The GoTo group is in step"
    step = _step(
        "EntrySynchronizationUpdate" if what else "EntrySynchronizationNone",
        StepType.PROCESSING,
        Status.SUCCESS if what or kind is not GroupKind.NONE else Status.SKIPPED,
        description,
    )
    linked_by = matched_by if kind is GroupKind.LINK else (link.matched_by if link else matched_by)
    return _with(
        plan,
        step,
        kind=kind,
        goto_id=goto_id,
        add=add,
        remove=remove,
        rename_from=rename_from,
        matched_by=linked_by,
        reason=description,
    )


def _plan_unassigned(gid: str, link: Link, goto_groups: Mapping[str, Mapping[str, Any]]) -> GroupPlan:
    name = str(link.exported.get("displayName") or gid)
    exists = link.goto_id in goto_groups
    kind = GroupKind.DELETE if exists and link.owned else GroupKind.FORGET
    if kind is GroupKind.DELETE:
        reason = "the group is no longer assigned to the application"
    elif not exists:
        reason = "the group is no longer assigned and its GoTo group no longer exists: link forgotten"
    else:
        reason = "the group is no longer assigned; its GoTo group was not created or linked by gotosync: left alone"
    steps = (
        _step(
            "EntrySynchronizationScoping",
            StepType.SCOPING,
            Status.SUCCESS,
            "The group is not assigned to the application (out of scope)",
        ),
        _step(
            "EntrySynchronizationDelete" if kind is GroupKind.DELETE else "EntrySynchronizationNone",
            StepType.PROCESSING,
            Status.SUCCESS,
            f"GoTo group {link.goto_id} will be deleted" if kind is GroupKind.DELETE else reason,
        ),
    )
    return GroupPlan(gid, name, kind, goto_id=link.goto_id, link=link, reason=reason, steps=steps)


def _with(plan: GroupPlan, step: ProvisioningStep, **changes: Any) -> GroupPlan:
    from dataclasses import replace

    return replace(plan, steps=(*plan.steps, step), **changes)
