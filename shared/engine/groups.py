"""Groups on the pipeline: assigned Entra groups become GoTo groups with their provisioned
members (docs/groups.md), through the same stages as users — read, plan
(shared/engine/group_plan.py), gate (the deletion guards count group deletes), export
(shared/engine/group_export.py), effects (shared/engine/group_effects.py) and the committer.

Runs after the user pass of a cycle (a member is pushed only once its user has a GoTo key).
The members of assigned groups come from the membership table (shared/store/memberships.py)
where it knows them, so that a quiet cycle lists no members from Graph. A real-time member
change (a group's delta) is applied to its GoTo group at once by `apply_member_changes`.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.engine.commit import Committer
from shared.engine.gate import Decision, decide, held_reason
from shared.engine.group_effects import GroupContext, GroupRecord, group_effects
from shared.engine.group_export import GroupOutcome, export_group
from shared.engine.group_plan import GroupKind, GroupPlan, member_diff, plan_groups, user_members
from shared.engine.guard import DeletionGuard
from shared.goto.errors import AuthError, GoToError
from shared.goto.scim import GoToScimClient
from shared.model import Assignment, Initiator, JobState, Link, ProvisioningLogEntry, Status, utcnow
from shared.store.links import CompactLinks

__all__ = [
    "GroupKind",
    "GroupPlan",
    "GroupSyncResult",
    "apply_member_changes",
    "assigned_members",
    "plan_groups",
    "sync_groups",
]


class _EngineLike(Protocol):
    reader: Any
    scim: GoToScimClient
    store: Any
    settings: Any


@dataclass
class GroupSyncResult:
    dry_run: bool
    records: list[GroupRecord] = field(default_factory=list)
    by_action: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    staged: int = 0
    attempted: int = 0
    failed: int = 0
    auth_error: AuthError | None = None  # GoTo refused the credentials: the caller quarantines
    entries: list[ProvisioningLogEntry] = field(default_factory=list)  # the log entries committed (none in a dry run)

    @property
    def plans(self) -> list[GroupPlan]:
        return [r.plan for r in self.records]

    @property
    def failures(self) -> int:
        return self.by_status.get(Status.FAILURE.value, 0)


async def assigned_members(
    engine: _EngineLike, group_ids: Iterable[str], *, refresh: bool = False
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(members by group, the lists read from Graph this time). From the membership table where
    it knows a group (unless `refresh`, or with TRANSITIVE_MEMBERS, which the delta cannot keep),
    else listed from Graph; a group that reads as deleted has no members."""
    transitive = bool(getattr(engine.settings, "transitive_members", False))
    members: dict[str, set[str]] = {}
    listed: dict[str, set[str]] = {}
    for gid in sorted(group_ids):
        stored = None if (refresh or transitive) else await engine.store.memberships.get(gid)
        if stored is None:
            stored = listed[gid] = await engine.reader.members_unless_gone(gid, transitive)
        members[gid] = stored
    return members, listed


async def sync_groups(
    engine: _EngineLike,
    *,
    provision_groups: bool,
    cycle_id: str = "",
    initiated_by: Initiator = Initiator.TIMER,
    dry_run: bool = False,
    log_unchanged: bool = False,
    assignments: Mapping[str, Assignment] | None = None,
    members: Mapping[str, set[str]] | None = None,
    job: JobState | None = None,
    commit: Committer | None = None,
    held: str = "",
) -> GroupSyncResult:
    """Plans every assigned group (and every group link whose group is no longer assigned),
    gates the plan, and (unless `dry_run`) exports and commits it. One group's failure never
    stops the others. `log_unchanged` (initial cycles) logs groups in step too. `assignments`
    and `members`: the cycle's own reads. `held`: why the run's user deprovisioning is held
    (group deletes are then held too)."""
    result = GroupSyncResult(dry_run=dry_run)
    if not provision_groups:
        return result
    run = _GroupRun(engine, cycle_id or str(uuid.uuid4()), initiated_by, dry_run, log_unchanged, commit)
    return await run.execute(assignments, members, job, held)


class _GroupRun:
    def __init__(
        self,
        engine: _EngineLike,
        cycle_id: str,
        initiated_by: Initiator,
        dry_run: bool,
        log_unchanged: bool,
        commit: Committer | None,
    ) -> None:
        self.e = engine
        self.cycle_id = cycle_id
        self.initiated_by = initiated_by
        self.dry_run = dry_run
        self.log_unchanged = log_unchanged
        self.own_commit = commit is None
        self.commit = commit or Committer(engine.store, batched=True, dry_run=dry_run)
        self.counts: Counter[tuple[str, str]] = Counter()

    async def execute(
        self,
        assignments: Mapping[str, Assignment] | None,
        members: Mapping[str, set[str]] | None,
        job: JobState | None,
        held: str,
    ) -> GroupSyncResult:
        e = self.e
        if assignments is None:
            assignments = await e.reader.assignments(await e.reader.app_roles())
        assigned = {pid: a for pid, a in assignments.items() if a.principal_type == "Group"}
        if members is None:
            members, _ = await assigned_members(e, assigned)
        group_links = {lk.entra_id: lk for lk in await e.store.links.all("group")}
        if assigned or group_links:
            user_links = await e.store.links.compact("user")  # every user link, held compactly
            goto_groups = {str(g["id"]): g async for g in e.scim.list_groups() if g.get("id") is not None}
        else:  # no group assigned or linked: nothing to plan, so neither is read (D83)
            user_links, goto_groups = CompactLinks("user"), {}
        escrowed = {x.entra_id for x in await e.store.escrow.all() if x.kind == "group"} if not self.dry_run else set()
        read_at = utcnow()
        plans = plan_groups(assigned, members, user_links, group_links, goto_groups, provision_groups=True)
        decisions = self._gate(plans, job or await e.store.job.get(), held, len(group_links))
        result = GroupSyncResult(dry_run=self.dry_run)
        for plan, decision in zip(plans, decisions, strict=True):
            record = await self._process(plan, decision, read_at, plan.entra_id in escrowed, result)
            result.records.append(record)
        if self.own_commit:
            await self.commit.flush()
        for (action, status), n in self.counts.items():
            result.by_action[action] = result.by_action.get(action, 0) + n
            result.by_status[status] = result.by_status.get(status, 0) + n
        result.staged = sum(1 for r in result.records if r.staged)
        return result

    def _gate(self, plans: list[GroupPlan], job: JobState, held: str, managed: int) -> list[Decision]:
        guard = DeletionGuard(
            int(getattr(self.e.settings, "deletion_threshold", 0)),
            float(getattr(self.e.settings, "deletion_threshold_percent", 0.0)),
        )
        deletes = sum(1 for p in plans if p.kind.deprovisions)
        why = held or held_reason(deletes, job, guard, managed)
        return [
            decide(writes=p.kind.writes, deprovisions=p.kind.deprovisions, plan_reason=p.reason, held=why or None)
            for p in plans
        ]

    async def _process(
        self, plan: GroupPlan, decision: Decision, read_at: Any, escrowed: bool, result: GroupSyncResult
    ) -> GroupRecord:
        t0 = time.perf_counter()
        outcome: GroupOutcome | None = None
        if decision.export and not self.dry_run:
            outcome = await export_group(plan, self.e.scim)
            if outcome.error is not None and isinstance(outcome.error, AuthError):
                result.auth_error = result.auth_error or outcome.error
        record = GroupRecord(plan, decision, outcome)
        ctx = GroupContext(
            self.cycle_id,
            self.initiated_by,
            read_at,
            escrowed,
            self.log_unchanged,
            int((time.perf_counter() - t0) * 1000),
        )
        effects = group_effects(record, ctx)
        await self.commit.apply(effects)
        if effects.log is not None and not self.dry_run:
            result.entries.append(effects.log)
        self.counts[(effects.action, effects.status)] += 1
        result.attempted += effects.attempted
        result.failed += effects.failed
        return record


@dataclass
class MemberChangeResult:
    group_id: str
    added: list[str] = field(default_factory=list)  # GoTo keys
    removed: list[str] = field(default_factory=list)
    skipped: str = ""
    error: GoToError | None = None


async def apply_member_changes(
    engine: _EngineLike,
    group_id: str,
    joined: set[str],
    left: set[str],
    *,
    cycle_id: str = "",
    initiated_by: Initiator = Initiator.WEBHOOK,
) -> MemberChangeResult:
    """The real-time path for a group's membership: the users who joined or left an assigned,
    linked group (from its delta) reach its GoTo group at once, without a cycle. Costs a read of
    the group link, of the changed members' links and of the GoTo group, then one PATCH. A group
    not linked yet is left to the next cycle (which creates it with its members)."""
    store = engine.store
    result = MemberChangeResult(group_id)
    link = await store.links.get(group_id, "group")
    if link is None or not link.live:
        result.skipped = "the group is not linked to a GoTo group yet: the next cycle creates it"
        return result
    user_links = {uid: await store.links.get(uid, "user") for uid in sorted(joined | left)}
    current = await engine.scim.get_group(link.goto_id, display_name=str(link.exported.get("displayName") or ""))
    if current is None:
        result.skipped = "the linked GoTo group is gone: the next cycle recreates it"
        return result
    wanted = sorted(_members_after(link, user_links, joined, left))
    managed = frozenset(lk.goto_id for lk in user_links.values() if lk is not None and lk.live)
    add, remove = member_diff(wanted, user_members(current), managed, link)
    add = [k for k in add if k in _keys(user_links, joined)]  # only what this change is about
    remove = [k for k in remove if k in _keys(user_links, left)]
    if not add and not remove:
        result.skipped = "the GoTo group is already in step"
        return result
    name = str(link.exported.get("displayName") or group_id)
    plan = GroupPlan(
        group_id,
        name,
        GroupKind.UPDATE,
        goto_id=link.goto_id,
        members=wanted,
        add=add,
        remove=remove,
        link=link,
        matched_by=link.matched_by,
        reason=f"{len(add)} member(s) joined, {len(remove)} left in Entra",
        managed_keys=managed,
    )
    commit = Committer(store, batched=False, dry_run=False)
    run = _GroupRun(engine, cycle_id or str(uuid.uuid4()), initiated_by, False, False, commit)
    record = await run._process(plan, Decision(export=True), utcnow(), False, GroupSyncResult(dry_run=False))
    result.added, result.removed = list(record.add), list(record.remove)
    result.error = record.outcome.error if record.outcome is not None else None
    return result


def _keys(user_links: Mapping[str, Link | None], ids: set[str]) -> set[str]:
    return {lk.goto_id for uid, lk in user_links.items() if uid in ids and lk is not None and lk.live}


def _members_after(link: Link, user_links: Mapping[str, Link | None], joined: set[str], left: set[str]) -> set[str]:
    """The group link's exported member keys after this change: joiners with an active link in,
    leavers out."""
    keys = set(link.exported.get("members") or [])
    for uid in joined:
        lk = user_links.get(uid)
        if lk is not None and lk.live and lk.active and lk.owned:
            keys.add(lk.goto_id)
    for uid in left:
        lk = user_links.get(uid)
        if lk is not None and lk.goto_id:
            keys.discard(lk.goto_id)
    return keys
