"""Group provisioning: Entra groups assigned to the app become GoTo (SCIM) organization groups,
with the GoTo keys of their provisioned members, as Entra's "GoTo" gallery app does
(docs/reference/entra-provisioning.md#goto-gallery-app, docs/reference/goto-api.md#groups). See docs/groups.md.

Runs after the user pass of a cycle (users first, then groups and memberships): a member is
pushed only once its user has a GoTo key. `plan_groups` decides (pure); `sync_groups` reads,
plans, and (unless a dry run) exports, writes the group links and returns the log entries.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.goto.errors import AuthError, Conflict, GoToError
from shared.goto.scim import GoToScimClient
from shared.model import (
    Action,
    Assignment,
    Initiator,
    Link,
    ModifiedProperty,
    ProvisioningLogEntry,
    ProvisioningStep,
    Status,
    StepType,
    utcnow,
)

log = logging.getLogger("gotosync.groups")

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


@dataclass
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
    steps: list[ProvisioningStep] = field(default_factory=list)

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

    def exported(self) -> dict[str, Any]:
        return {"displayName": self.display_name, "members": list(self.members)}


@dataclass
class GroupSyncResult:
    dry_run: bool
    plans: list[GroupPlan] = field(default_factory=list)
    entries: list[ProvisioningLogEntry] = field(default_factory=list)  # for store.logs.write
    by_action: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    auth_error: AuthError | None = None  # GoTo refused the credentials: the caller quarantines

    @property
    def failures(self) -> int:
        return self.by_status.get(Status.FAILURE.value, 0)


# --------------------------------------------------------------------------------- planning


def _user_members(group: Mapping[str, Any]) -> set[str]:
    """The user keys among a GoTo group's members (nested-group members are never touched)."""
    out: set[str] = set()
    for m in group.get("members") or []:
        if isinstance(m, Mapping) and m.get("value") is not None and str(m.get("type", "user")).lower() == "user":
            out.add(str(m["value"]))
    return out


def _step(name: str, step_type: StepType, status: Status, description: str, **details: Any) -> ProvisioningStep:
    return ProvisioningStep(name, step_type, status, description, details)


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

    `assigned_groups`: Entra group id → assignment (only principal_type "Group" are used).
    `members`: Entra group id → Entra user ids. `user_links` / `group_links`: by Entra id.
    `goto_groups`: by GoTo key, each with ``displayName`` and ``members``.

    A member is pushed when its user link is owned, active and has a GoTo key. Members are
    removed only when gotosync put them there or manages them (a GoTo key of a user link, or in
    the link's last export): users added in GoTo by hand and nested groups are left alone.
    """
    if not provision_groups:
        return []
    groups = {gid: a for gid, a in assigned_groups.items() if a.principal_type == "Group"}
    pushable = {
        uid: lk.goto_id for uid, lk in user_links.items() if lk.owned and lk.active and lk.goto_id and lk.kind == "user"
    }
    managed_keys = {lk.goto_id for lk in user_links.values() if lk.goto_id}
    by_name: dict[str, list[str]] = {}
    for key, g in goto_groups.items():
        name = g.get("displayName")
        if isinstance(name, str):
            by_name.setdefault(name.casefold(), []).append(str(key))

    plans: list[GroupPlan] = []
    for gid in sorted(groups):
        a = groups[gid]
        name = a.display_name
        source = members.get(gid, set())
        wanted = sorted({pushable[u] for u in source if u in pushable})
        left_out = sorted(u for u in source if u not in pushable)
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
                members_not_provisioned=left_out,
            ),
        ]
        link = group_links.get(gid)
        target: Mapping[str, Any] | None = None
        matched_by = "link"
        if link is not None and link.goto_id in goto_groups:
            target = goto_groups[link.goto_id]
            goto_id = link.goto_id
            steps.append(_step("EntryMatching", StepType.MATCHING, Status.SUCCESS, "Found the linked GoTo group"))
        else:
            hits = by_name.get(name.casefold(), [])
            gone = f"the linked GoTo group {link.goto_id} no longer exists; " if link is not None else ""
            steps.append(
                _step(
                    "EntryMatching",
                    StepType.MATCHING,
                    Status.SUCCESS if len(hits) < 2 else Status.FAILURE,
                    f"{gone}displayName '{name}': {len(hits)} GoTo group(s)",
                    attribute=MATCHED_BY_NAME,
                    value=name,
                    hits=len(hits),
                )
            )
            if len(hits) > 1:
                plans.append(
                    GroupPlan(
                        gid,
                        name,
                        GroupKind.FAIL,
                        members=wanted,
                        link=link,
                        reason=f"{len(hits)} GoTo groups are named '{name}'",
                        error_code="DuplicateTargetEntries",
                        steps=steps,
                    )
                )
                continue
            if not hits:
                steps.append(
                    _step(
                        "EntrySynchronizationAdd",
                        StepType.PROCESSING,
                        Status.SUCCESS,
                        f"Group '{name}' will be created in GoTo with {len(wanted)} member(s)",
                    )
                )
                plans.append(GroupPlan(gid, name, GroupKind.CREATE, members=wanted, add=wanted, link=link, steps=steps))
                continue
            goto_id = hits[0]
            target = goto_groups[goto_id]
            matched_by = MATCHED_BY_NAME
        current = _user_members(target)
        ours = managed_keys | set((link.exported.get("members") if link else None) or [])
        add = sorted(set(wanted) - current)
        remove = sorted((current & ours) - set(wanted))
        goto_name = target.get("displayName")
        rename_from = goto_name if isinstance(goto_name, str) and goto_name != name else None
        kind = GroupKind.LINK if matched_by == MATCHED_BY_NAME else GroupKind.UPDATE
        if kind is GroupKind.UPDATE and not add and not remove and rename_from is None:
            kind = GroupKind.NONE
            if link is not None and link.exported.get("members") != wanted:
                # GoTo is in step but the link is not (e.g. a member pushed meanwhile): refresh it.
                kind = GroupKind.UPDATE
        what = []
        if rename_from is not None:
            what.append(f"renamed from '{rename_from}'")
        if add:
            what.append(f"{len(add)} member(s) added")
        if remove:
            what.append(f"{len(remove)} member(s) removed")
        steps.append(
            _step(
                "EntrySynchronizationUpdate" if what else "EntrySynchronizationNone",
                StepType.PROCESSING,
                Status.SUCCESS if what or kind is not GroupKind.NONE else Status.SKIPPED,
                ("Group will be " + ", ".join(what)) if what else "The GoTo group is in step",
            )
        )
        plans.append(
            GroupPlan(
                gid,
                name,
                kind,
                goto_id=goto_id,
                members=wanted,
                add=add,
                remove=remove,
                rename_from=rename_from,
                link=link,
                matched_by=matched_by if kind is GroupKind.LINK else (link.matched_by if link else matched_by),
                steps=steps,
            )
        )

    for gid in sorted(set(group_links) - set(groups)):
        link = group_links[gid]
        name = str(link.exported.get("displayName") or gid)
        exists = link.goto_id in goto_groups
        kind = GroupKind.DELETE if exists and link.owned else GroupKind.FORGET
        if kind is GroupKind.DELETE:
            reason = "the group is no longer assigned to the application"
        elif not exists:
            reason = "the group is no longer assigned and its GoTo group no longer exists: link forgotten"
        else:
            reason = "the group is no longer assigned; its GoTo group was not created or linked by gotosync: left alone"
        plans.append(
            GroupPlan(
                gid,
                name,
                kind,
                goto_id=link.goto_id,
                link=link,
                reason=reason,
                steps=[
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
                ],
            )
        )
    return plans


# --------------------------------------------------------------------------------- syncing


class _EngineLike(Protocol):
    reader: Any
    scim: GoToScimClient
    store: Any
    settings: Any


async def sync_groups(
    engine: _EngineLike,
    *,
    provision_groups: bool,
    cycle_id: str = "",
    initiated_by: Initiator = Initiator.TIMER,
    dry_run: bool = False,
    log_unchanged: bool = False,
    assignments: Mapping[str, Assignment] | None = None,
) -> GroupSyncResult:
    """Reads the assignments, the members of each assigned group, the group and user links and
    GoTo's groups; plans; and (unless `dry_run`) exports and writes the group links. Returns the
    log entries for the caller to write (store.logs.write). A dry run exports and writes nothing
    and returns no entries: its `plans` and counts say what would happen.

    One group's failure never stops the others. `log_unchanged` (initial cycles) logs groups in
    step too, as Other/Skipped. `assignments`: the cycle's own read (saves two Graph requests)."""
    result = GroupSyncResult(dry_run=dry_run)
    if not provision_groups:
        return result
    cycle_id = cycle_id or str(uuid.uuid4())
    reader, scim, store = engine.reader, engine.scim, engine.store
    transitive = bool(getattr(engine.settings, "transitive_members", False))
    if assignments is None:
        assignments = await reader.assignments(await reader.app_roles())
    assigned = {pid: a for pid, a in assignments.items() if a.principal_type == "Group"}
    members: dict[str, set[str]] = {}
    for gid in sorted(assigned):
        members[gid] = await reader.members_unless_gone(gid, transitive)
    group_links = {lk.entra_id: lk for lk in await store.links.all("group")}
    user_links = {lk.entra_id: lk for lk in await store.links.all("user")}
    goto_groups = {str(g["id"]): g async for g in scim.list_groups() if g.get("id") is not None}
    plans = plan_groups(assigned, members, user_links, group_links, goto_groups, provision_groups=True)
    result.plans = plans

    counts: Counter[tuple[str, str]] = Counter()
    put: list[Link] = []
    for plan in plans:
        t0 = time.perf_counter()
        if dry_run:
            status = Status.FAILURE if plan.kind is GroupKind.FAIL else _planned_status(plan)
            counts[(plan.log_action.value, status.value)] += 1
            continue
        status, error_code, reason, new_link, forget = await _execute(scim, plan, result)
        if new_link is not None and _link_changed(plan.link, new_link):
            put.append(new_link)
        if forget:
            try:
                await store.links.delete(plan.entra_id, "group")
            except Exception as exc:  # a storage hiccup: the next run finds the link again and retries
                log.warning("could not forget the link of group %s: %s", plan.entra_id, exc)
        counts[(plan.log_action.value, status.value)] += 1
        if plan.kind is not GroupKind.NONE or log_unchanged or status is not Status.SKIPPED:
            result.entries.append(_entry(plan, status, error_code, reason, cycle_id, initiated_by, t0))
    if put:
        await store.links.put_many(put)
    for (action, status), n in counts.items():
        result.by_action[action] = result.by_action.get(action, 0) + n
        result.by_status[status] = result.by_status.get(status, 0) + n
    return result


def _planned_status(plan: GroupPlan) -> Status:
    return Status.SKIPPED if plan.kind in (GroupKind.NONE, GroupKind.FORGET) else Status.SUCCESS


def _link_changed(old: Link | None, new: Link) -> bool:
    if old is None:
        return True
    return (old.goto_id, old.matched_by, old.exported, old.owned, old.active) != (
        new.goto_id,
        new.matched_by,
        new.exported,
        new.owned,
        new.active,
    )


def _new_link(plan: GroupPlan, goto_id: str, matched_by: str) -> Link:
    base = plan.link or Link(entra_id=plan.entra_id, goto_id=goto_id, kind="group")
    return dataclasses.replace(
        base,
        goto_id=goto_id,
        kind="group",
        matched_by=matched_by,
        owned=True,
        active=True,
        exported=plan.exported(),
        applied_at=utcnow() if base.goto_id != goto_id or base.exported != plan.exported() else base.applied_at,
    )


async def _execute(
    scim: GoToScimClient, plan: GroupPlan, result: GroupSyncResult
) -> tuple[Status, str, str, Link | None, bool]:
    """(status, error code, reason, link to write or None, forget the link?)."""
    if plan.kind is GroupKind.FAIL:
        return Status.FAILURE, plan.error_code, plan.reason, None, False
    if plan.kind is GroupKind.FORGET:
        plan.steps.append(_step("EntryExportDelete", StepType.EXPORT, Status.SKIPPED, plan.reason))
        return Status.SKIPPED, "", plan.reason, None, True
    if plan.kind is GroupKind.NONE:
        return Status.SKIPPED, "", "the GoTo group is in step", None, False
    try:
        if plan.kind is GroupKind.DELETE:
            deleted = await scim.delete_group(plan.goto_id, display_name=plan.display_name)
            what = "Deleted the GoTo group" if deleted else "The GoTo group was already gone"
            plan.steps.append(_step("EntryExportDelete", StepType.EXPORT, Status.SUCCESS, what, key=plan.goto_id))
            return Status.SUCCESS, "", plan.reason, None, True
        if plan.kind is GroupKind.CREATE:
            return await _create(scim, plan)
        return await _update(scim, plan, plan.goto_id, plan.matched_by)
    except GoToError as exc:
        if isinstance(exc, AuthError):
            result.auth_error = result.auth_error or exc
        name = {GroupKind.CREATE: "EntryExportAdd", GroupKind.DELETE: "EntryExportDelete"}.get(
            plan.kind, "EntryExportUpdate"
        )
        plan.steps.append(
            _step(
                name,
                StepType.EXPORT,
                Status.FAILURE,
                str(exc),
                http_status=exc.status,
                code=exc.code,
                detail=exc.detail,
            )
        )
        log.warning("group %s (%s): %s", plan.display_name, plan.entra_id, exc)
        return Status.FAILURE, exc.code, str(exc), None, False


async def _create(scim: GoToScimClient, plan: GroupPlan) -> tuple[Status, str, str, Link | None, bool]:
    try:
        created = await scim.create_group(plan.display_name, plan.members, external_id=plan.entra_id)
    except Conflict as exc:
        # Entra's DuplicateTargetEntries case, resolved as the user path does: the group exists
        # (created meanwhile, or by a run that died before writing its link): adopt it by name.
        found = await scim.find_groups(plan.display_name)
        plan.steps.append(
            _step(
                "EntryExportAdd",
                StepType.EXPORT,
                Status.WARNING,
                f"GoTo already has a group named '{plan.display_name}' (409): {len(found)} found by displayName",
                http_status=exc.status,
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
        current = _user_members(target)
        ours = set(plan.members) | set((plan.link.exported.get("members") if plan.link else None) or [])
        plan.add = sorted(set(plan.members) - current)
        plan.remove = sorted((current & ours) - set(plan.members))
        name = target.get("displayName")
        plan.rename_from = name if isinstance(name, str) and name != plan.display_name else None
        plan.kind = GroupKind.LINK
        plan.matched_by = MATCHED_BY_NAME
        return await _update(scim, plan, str(target["id"]), MATCHED_BY_NAME)
    key = str(created["id"])
    plan.goto_id = key
    plan.steps.append(
        _step(
            "EntryExportAdd",
            StepType.EXPORT,
            Status.SUCCESS,
            f"Created GoTo group {key} with {len(plan.members)} member(s)",
            key=key,
        )
    )
    return Status.SUCCESS, "", "", _new_link(plan, key, "created"), False


async def _update(
    scim: GoToScimClient, plan: GroupPlan, key: str, matched_by: str
) -> tuple[Status, str, str, Link | None, bool]:
    plan.goto_id = key
    done: list[str] = []
    if plan.rename_from is not None:
        await scim.rename_group(key, plan.rename_from, plan.display_name)
        done.append(f"renamed from '{plan.rename_from}'")
    if plan.changes_members:
        await scim.update_group_members(key, plan.add, plan.remove, display_name=plan.display_name)
        done.append(f"{len(plan.add)} member(s) added, {len(plan.remove)} removed")
    if plan.kind is GroupKind.LINK:
        done.insert(0, f"linked to the GoTo group with displayName '{plan.display_name}'")
    plan.steps.append(
        _step(
            "EntryExportUpdate",
            StepType.EXPORT,
            Status.SUCCESS,
            "; ".join(done) or "link refreshed (GoTo already in step)",
            key=key,
        )
    )
    return Status.SUCCESS, "", "", _new_link(plan, key, matched_by), False


def _entry(
    plan: GroupPlan,
    status: Status,
    error_code: str,
    reason: str,
    cycle_id: str,
    initiated_by: Initiator,
    t0: float,
) -> ProvisioningLogEntry:
    modified: list[ModifiedProperty] = []
    if plan.rename_from is not None or plan.kind is GroupKind.CREATE:
        modified.append(ModifiedProperty("displayName", plan.rename_from, plan.display_name))
    if plan.add or plan.remove:
        modified.append(ModifiedProperty("members", {"removed": list(plan.remove)}, {"added": list(plan.add)}))
    return ProvisioningLogEntry(
        cycle_id=cycle_id,
        change_id=str(uuid.uuid4()),
        action=plan.log_action,
        status=status,
        source_id=plan.entra_id,
        source_name=plan.display_name,
        target_id=plan.goto_id,
        target_name=plan.display_name,
        identity_type="Group",
        initiated_by=initiated_by,
        reason=reason or plan.reason,
        error_code=error_code,
        modified=modified,
        steps=list(plan.steps),
        duration_ms=int((time.perf_counter() - t0) * 1000),
    )


__all__ = [
    "GroupKind",
    "GroupPlan",
    "GroupSyncResult",
    "plan_groups",
    "sync_groups",
]
