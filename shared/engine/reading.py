"""The import step of every run: which users to look at, what Entra says about each, and which
GoTo user each one is. Three readers, one result:

- full (initial cycles): every assignment, every assigned group's members, the whole /users
  listing and one listing of GoTo users to match against;
- incremental: the assignment diff, the users and groups delta rounds, due escrow entries;
- targeted (webhook worker, assignment watch, on demand): named users, each read afresh.

Collection reads must be whole (the reader raises IncompleteRead otherwise) and stop the run
before anything is decided. A read of one user that fails makes a candidate that fails (and is
escrowed); it never stops the others. Absence is turned into evidence by shared/engine/evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.engine.evidence import from_delta_removal, from_read
from shared.engine.matching import GoToIndex, Owners, RemoteMatcher, match_in_index
from shared.engine.plan import Match
from shared.entra.reader import GraphReadError, GroupGone, ListingPosition, MembershipChange
from shared.fanout import bounded, started
from shared.model import Assignment, EscrowEntry, JobState, Link, SourceUser, UserRead, UserState, utcnow
from shared.store.links import CompactLinks

if TYPE_CHECKING:
    from shared.engine.cycle import SyncEngine

# A read counts as newer than a notification only this much after its receipt: the intake and
# the worker may run on different instances, whose clocks may differ a little.
COALESCE_MARGIN = timedelta(seconds=1)


class NeedsFullRead(Exception):
    """An incremental read cannot tell who is affected (an expired delta link, or an unassigned
    group that is already deleted, whose members can no longer be listed): read everything."""


@dataclass
class Candidate:
    """One user to plan: what Entra says, the stored link, the GoTo match, and (when a read of
    this user failed) the error that fails it instead."""

    user: SourceUser
    link: Link | None
    match: Match
    read_at: datetime
    escrow: EscrowEntry | None = None
    error: tuple[str, str] | None = None  # (code, reason): the user could not be read


@dataclass(frozen=True)
class ReadFailure:
    """A read of one user that failed: that user fails (and is escrowed), not the run."""

    id: str
    code: str
    reason: str


@dataclass
class Orphan:
    """A GoTo user that carries an Entra object id as externalId but no link points at it."""

    goto_id: str
    user_name: str
    entra_id: str
    reason: str


@dataclass
class Memberships:
    """The members of the app's assigned groups as this run knows them, and what the run must
    write to the membership table: lists it read from Graph, delta changes to known lists, and
    groups no longer assigned (forgotten)."""

    assigned: set[str]
    members: dict[str, set[str]] = field(default_factory=dict)  # only filled when the run needed them
    listed: dict[str, set[str]] = field(default_factory=dict)
    changes: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)  # gid -> (added, removed)
    unassigned: set[str] = field(default_factory=set)
    changed: bool = True  # anything that can change a GoTo group (a quiet incremental cycle: False)
    full: bool = False  # every assigned group was listed: the table is made exactly this

    async def save(self, store: Any, transitive: bool) -> None:
        """Writes what this run learnt to the membership table (not with TRANSITIVE_MEMBERS:
        the groups delta cannot keep nested members)."""
        if transitive:
            return
        for gid, members in sorted(self.listed.items()):
            await store.memberships.replace(gid, members)
        for gid, (added, removed) in sorted(self.changes.items()):
            if gid in self.assigned and gid not in self.listed:
                await store.memberships.apply(gid, added, removed)
        gone = (await store.memberships.groups()) - self.assigned if self.full else self.unassigned
        for gid in sorted(gone):
            await store.memberships.forget(gid)

    @classmethod
    def of(
        cls, now: dict[str, Assignment], before: dict[str, Assignment], deltas: dict[str, MembershipChange]
    ) -> Memberships:
        assigned = {pid for pid, a in now.items() if a.principal_type == "Group"}
        was = {pid for pid, a in before.items() if a.principal_type == "Group"}
        changes = {gid: (set(c.added), set(c.removed)) for gid, c in deltas.items() if gid in assigned | was}
        return cls(assigned, changes=changes, unassigned=was - assigned)

    def changed_members(self) -> set[str]:
        out: set[str] = set()
        for added, removed in self.changes.values():
            out |= added | removed
        return out


GOTO_PAGE = 1000  # GoTo users per listing page (a server that pages smaller answers with fewer)


@dataclass
class FullRead:
    """A full cycle's reads besides the users themselves, and the users it has seen so far."""

    delta_links: tuple[str, str]
    assignments: dict[str, Assignment]
    roles_of: dict[str, frozenset[str]]
    groups: Memberships
    evidence: str
    stored: CompactLinks
    escrow: dict[str, EscrowEntry]
    wanted: set[str]
    index: GoToIndex
    owners: Owners
    seen: set[str] = field(default_factory=set)

    def result(self) -> ReadResult:
        """What the cycle's end needs (its candidates were processed page by page)."""
        return ReadResult(
            [],
            self.delta_links,
            self.assignments,
            set(self.escrow),
            managed=self.stored.managed_count(),
            taken_names=self.stored.taken_names(set()),
            orphans=_orphans(self.index, self.stored, self.wanted),
            groups=self.groups,
        )


@dataclass
class FullPage:
    """The wanted users of one /users page, as candidates, and where the listing stands after it."""

    candidates: list[Candidate]
    after: ListingPosition


@dataclass
class ReadResult:
    candidates: list[Candidate]
    delta_links: tuple[str, str] = ("", "")
    snapshot: dict[str, Assignment] = field(default_factory=dict)
    escrowed: set[str] = field(default_factory=set)
    managed: int | None = None  # live, active links (the relative deletion guard's base); None: unknown
    # userName (casefolded) -> Entra id, for live links of users not among the candidates: a
    # plan must not give one of these names to another user.
    taken_names: dict[str, str] = field(default_factory=dict)
    orphans: list[Orphan] = field(default_factory=list)
    groups: Memberships | None = None  # the assigned groups' members (None: not read by this run)
    coalesced: list[str] = field(default_factory=list)  # skipped: a newer read was already applied


def snapshot_hash(assignments: dict[str, Assignment]) -> str:
    """A digest of who is assigned with which roles (order-independent)."""
    lines = sorted(
        f"{a.principal_type}|{a.principal_id}|{','.join(sorted(a.role_ids))}|{','.join(sorted(a.role_values))}"
        f"|{a.display_name}"
        for a in assignments.values()
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def assignment_evidence(assignments: dict[str, Assignment], at: datetime) -> str:
    groups = sum(1 for a in assignments.values() if a.principal_type == "Group")
    return (
        f"a complete read of the app's {len(assignments)} assignments and of the members of its {groups} "
        f"assigned group(s) at {at.isoformat(timespec='seconds')}"
    )


def applied_since(link: Link | None, changed_before: datetime | None) -> bool:
    """Whether the link carries a read of the user taken after `changed_before` (the time by
    which a change was made), by more than COALESCE_MARGIN: that read saw the change, and the
    export it led to is done. Without a link, a time or an applied read: False."""
    if link is None or changed_before is None or link.applied_at is None:
        return False
    return link.applied_at > changed_before + COALESCE_MARGIN


def managed_count(links: Iterable[Link]) -> int:
    return sum(1 for lk in links if lk.live and lk.owned and lk.active)


def taken_names(links: Iterable[Link], exclude: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for lk in links:
        name = lk.exported.get("userName")
        if lk.live and lk.entra_id not in exclude and isinstance(name, str) and name:
            out[name.casefold()] = lk.entra_id
    return out


class Reading:
    """The reads of one run, bound to the engine's reader, store and GoTo client."""

    def __init__(self, engine: SyncEngine) -> None:
        self.e = engine
        self.reader = engine.reader
        self.store = engine.store
        self.transitive = engine.settings.transitive_members
        self.confirm_after = timedelta(seconds=engine.settings.deletion_confirmation_seconds)
        self.limit = engine.settings.cycle_concurrency

    # ------------------------------------------------------------------ scope of assignments

    async def roles_by_user(
        self, assignments: dict[str, Assignment]
    ) -> tuple[dict[str, frozenset[str]], dict[str, set[str]]]:
        """Each assigned user's role values, directly and through assigned groups (a group that
        reads as deleted gives nobody a role), and the members of each assigned group."""
        roles: dict[str, set[str]] = {}
        for a in assignments.values():
            if a.principal_type == "User":
                roles.setdefault(a.principal_id, set()).update(a.role_values)
        groups = [a for a in assignments.values() if a.principal_type == "Group"]
        lists = await bounded(lambda g: self.reader.members_unless_gone(g.principal_id, self.transitive), groups, 8)
        for group, members in zip(groups, lists, strict=True):
            for uid in members:
                roles.setdefault(uid, set()).update(group.role_values)
        by_group = {g.principal_id: members for g, members in zip(groups, lists, strict=True)}
        shared: dict[frozenset[str], frozenset[str]] = {}  # few distinct role sets: one object each
        return {uid: shared.setdefault(f := frozenset(r), f) for uid, r in roles.items()}, by_group

    # ------------------------------------------------------------------ full

    async def full_context(self, links_now: tuple[str, str] | None = None) -> FullRead:
        """What a full cycle reads before the users: the delta links (`links_now`: the ones the
        cycle took at its start, when it continues), the assignments and the assigned groups'
        members, the links and escrow, and one listing of GoTo users to match against."""
        reader = self.reader
        # Delta links first: changes made while we read are replayed by the next round.
        links_now = links_now or await reader.latest_delta_links(self.e.select)
        # The links, the escrow and GoTo's listing depend on nothing Graph answers: each is read
        # alongside the assignments (Graph, Table Storage and GoTo are three services; a resumed
        # invocation waits for the slowest of them, not for their sum).
        async with (
            started(lambda: self.store.links.compact("user")) as stored_read,
            started(self._user_escrow) as escrow_read,
            started(self._goto_index) as index_read,
        ):
            assignments = await reader.assignments(await reader.app_roles())
            roles_of, by_group = await self.roles_by_user(assignments)
            stored, escrow, index = await stored_read, await escrow_read, await index_read
        return FullRead(
            delta_links=links_now,
            assignments=assignments,
            roles_of=roles_of,
            groups=Memberships(set(by_group), members=dict(by_group), listed=dict(by_group), full=True),
            evidence=assignment_evidence(assignments, utcnow()),
            stored=stored,
            escrow=escrow,
            wanted=set(roles_of) | set(stored),
            index=index,
            owners=Owners(stored.live_goto_ids()),
        )

    async def _user_escrow(self) -> dict[str, EscrowEntry]:
        return {e.entra_id: e for e in await self.store.escrow.all() if e.kind == "user"}

    async def _goto_index(self) -> GoToIndex:
        """One listing of GoTo users, indexed by the attributes matching looks up."""
        index = GoToIndex(m.target for m in self.e.matching)
        async for resource in self.e.scim.list_users(page_size=GOTO_PAGE):
            index.add(resource)
        return index

    async def full_pages(self, ctx: FullRead, resume: ListingPosition | None = None) -> AsyncIterator[FullPage]:
        """The wanted users of each page of the /users listing, as candidates, one page at a time
        (a full cycle holds one page of users, never the tenant); `resume`: from where an earlier
        invocation left the listing (CursorFailed when Graph refuses it). The listing must be
        whole (the reader raises IncompleteRead otherwise)."""
        async for page in self.reader.iter_user_pages(self.e.select, resume):
            read_at = utcnow()
            out = []
            for attrs in page.users:
                uid = attrs["id"]
                if uid not in ctx.wanted or uid in ctx.seen:
                    continue
                ctx.seen.add(uid)
                roles, assigned = ctx.roles_of.get(uid, frozenset()), uid in ctx.roles_of
                user = SourceUser(uid, attrs, roles=roles, assigned=assigned, evidence=ctx.evidence)
                cand = Candidate(user, ctx.stored.get(uid), Match(None), read_at, ctx.escrow.get(uid))
                out.append(self._matched(cand, ctx))
            yield FullPage(out, page.after)

    async def full_missing(self, ctx: FullRead) -> list[Candidate]:
        """Wanted (linked or assigned) users the listing did not show, each read by id: the
        listing is no evidence of anything."""
        missing = sorted(ctx.wanted - ctx.seen)
        reads = await bounded(self._read_one, missing, self.limit)
        out = []
        for uid, read in zip(missing, reads, strict=True):
            roles, assigned = ctx.roles_of.get(uid, frozenset()), uid in ctx.roles_of
            cand = self._candidate(read, ctx.stored.get(uid), roles, assigned, ctx.evidence, ctx.escrow.get(uid), True)
            out.append(self._matched(cand, ctx))
        ctx.seen.update(missing)
        return out

    def _matched(self, cand: Candidate, ctx: FullRead) -> Candidate:
        if cand.error is None:
            cand.match = match_in_index(cand.user, cand.link, ctx.index, self.e.matching_values, ctx.owners)
        return cand

    # ------------------------------------------------------------------ incremental

    async def incremental(self, job: JobState) -> ReadResult:
        reader = self.reader
        assignments = await reader.assignments(await reader.app_roles())
        # The stored snapshot is read only when the assignments changed since it was written.
        same = snapshot_hash(assignments) == job.assignments_hash
        previous = assignments if same else await self.store.assignments.load()
        user_changes, users_link = await reader.users_delta(job.users_delta_link, self.e.select)
        group_changes, groups_link = await reader.groups_delta(job.groups_delta_link)
        groups = Memberships.of(assignments, previous, group_changes)
        changed = {c.id: c for c in user_changes}
        affected, due = await self._affected(assignments, previous, groups)
        # Links are read only when there is something to decide (a quiet cycle stays cheap).
        links = {lk.entra_id: lk for lk in await self.store.links.all("user")} if (affected or changed) else {}
        direct = {pid for pid, a in assignments.items() if a.principal_type == "User"}
        affected |= {uid for uid in changed if uid in links or uid in direct}
        # The members decide scope: anyone affected may hold a role through a group as well as
        # directly (a seat comes with each role), and a changed user nobody links may have joined one.
        if affected or changed:
            await self._members(groups)
        member_ids = set().union(*groups.members.values()) if groups.members else set()
        affected |= {uid for uid in changed if uid in member_ids}
        roles_of = _roles_of(affected, assignments, direct, groups.members)
        candidates = await self._incremental_candidates(sorted(affected), links, changed, due, roles_of, assignments)
        return ReadResult(
            candidates,
            (users_link, groups_link),
            assignments,
            set(due),
            managed=managed_count(links.values()) if links else None,
            taken_names=taken_names(links.values(), {c.user.id for c in candidates}),
            groups=groups,
        )

    async def _affected(
        self, assignments: dict[str, Assignment], previous: dict[str, Assignment], groups: Memberships
    ) -> tuple[set[str], dict[str, EscrowEntry]]:
        """The users an incremental cycle must look at before the users delta: assignment
        changes, group membership changes, and escrow entries whose retry is due."""
        affected = await self._assignment_diff(assignments, previous)
        affected |= groups.changed_members()
        due = {e.entra_id: e for e in await self.store.escrow.due(utcnow()) if e.kind == "user"}
        affected |= set(due)
        groups.changed = assignments != previous or bool(groups.changes) or bool(due)
        return affected, due

    async def _incremental_candidates(
        self,
        affected: list[str],
        links: dict[str, Link],
        changed: dict[str, Any],
        due: dict[str, EscrowEntry],
        roles_of: dict[str, set[str]],
        assignments: dict[str, Assignment],
    ) -> list[Candidate]:
        evidence = assignment_evidence(assignments, utcnow())
        owners = Owners(links.values())
        matcher = RemoteMatcher(self.e.scim, self.e.matching_values, owners, trust_link=True)
        # A retry reads GoTo: what was held or failed may rest on GoTo's state, not the link's
        # (a re-disable the drift sweep held: GoTo shows the user re-enabled by hand).
        fresh = RemoteMatcher(self.e.scim, self.e.matching_values, owners)

        async def one(uid: str) -> Candidate | None:
            link = links.get(uid)
            change = changed.get(uid)
            if change is not None and change.removed:
                user = from_delta_removal(uid, change.attributes, change.removed)
                cand = Candidate(user, link, Match(None), utcnow())
            else:
                read = await self._read_one(uid)
                escrow = due.get(uid) or await self._escrow_if_absent(read)
                roles = frozenset(roles_of.get(uid, set()))
                cand = self._candidate(read, link, roles, uid in roles_of, evidence, escrow, True)
            if link is None and not cand.user.assigned and cand.error is None:
                return None  # never provisioned and not in scope: nothing to do, nothing to log
            if cand.error is None:
                cand.match = await (fresh if uid in due else matcher).match(cand.user, link)
            return cand

        found = await bounded(one, affected, self.limit)
        return [c for c in found if c is not None]

    async def _assignment_diff(self, now: dict[str, Assignment], before: dict[str, Assignment]) -> set[str]:
        """Users whose assignment changed: directly, or all members of a changed group (from
        the membership table where it knows them: an unassigned, even deleted, group's members
        are known there)."""
        affected: set[str] = set()
        for pid in set(now) | set(before):
            current, previous = now.get(pid), before.get(pid)
            if _same_grant(current, previous):
                continue  # unchanged, or only renamed (a group's name matters to its GoTo group only)
            if (current or previous).principal_type == "User":  # type: ignore[union-attr]
                affected.add(pid)
            else:
                affected |= await self._group_members_for_diff(pid)
        return affected

    async def _group_members_for_diff(self, group_id: str) -> set[str]:
        stored = None if self.transitive else await self.store.memberships.get(group_id)
        if stored is not None:
            return stored
        try:
            return await self.reader.group_member_ids(group_id, self.transitive)
        except GroupGone as exc:
            # Its members can no longer be listed: only a full read knows who they were.
            raise NeedsFullRead(f"{exc}; its members are re-evaluated by a full read") from exc

    async def _members(self, groups: Memberships) -> None:
        """The members of every assigned group: stored (with this round's delta applied), or
        listed from Graph where the table does not know them (and then stored)."""
        ids = sorted(groups.assigned)
        stored = await bounded(lambda g: _none() if self.transitive else self.store.memberships.get(g), ids, 8)
        unknown = [g for g, known in zip(ids, stored, strict=True) if known is None]
        listed = await bounded(lambda g: self.reader.members_unless_gone(g, self.transitive), unknown, 8)
        groups.listed = dict(zip(unknown, listed, strict=True))
        for gid, known in zip(ids, stored, strict=True):
            if known is not None:
                added, removed = groups.changes.get(gid, (set(), set()))
                groups.members[gid] = (known | added) - removed
        groups.members.update(groups.listed)

    async def _escrow_if_absent(self, read: UserRead | ReadFailure) -> EscrowEntry | None:
        if isinstance(read, ReadFailure) or read.state is not UserState.ABSENT:
            return None
        return await self.store.escrow.get(read.id, "user")

    # ------------------------------------------------------------------ targeted

    async def targeted(
        self,
        user_ids: list[str],
        job: JobState,
        *,
        trust_links: bool = False,
        changed_before: Mapping[str, datetime] | None = None,
    ) -> ReadResult:
        """Named users, each read afresh. Their assignments come from the stored snapshot (kept
        current by cycles and the assignment watch), so a webhook run costs the same in any
        tenant; a user the snapshot would take out of scope is confirmed by a fresh read of the
        assignments before anything is disabled.

        `trust_links`: a live, owned link stands for its GoTo user (no GoTo read; see
        matching.py). `changed_before`: user id -> a time by which the change that names the
        user was made (a notification's receipt); a user whose link already carries a read
        taken after it (by more than `COALESCE_MARGIN`) is skipped unread (`coalesced`)."""
        since = changed_before or {}
        stored = await bounded(lambda uid: self.store.links.get(uid, "user"), user_ids, self.limit)
        links = dict(zip(user_ids, stored, strict=True))
        coalesced = [uid for uid in user_ids if applied_since(links[uid], since.get(uid))]
        skipped = set(coalesced)
        user_ids = [uid for uid in user_ids if uid not in skipped]
        if not user_ids:
            return ReadResult([], coalesced=coalesced)
        grants = await Grants.load(self, user_ids, job)
        owner_of = self.store.links.owner_of
        matcher = RemoteMatcher(self.e.scim, self.e.matching_values, Owners(()), owner_of, trust_link=trust_links)

        async def one(uid: str) -> Candidate | None:
            link = links[uid]
            read = await self._read_one(uid)
            roles, assigned, read = await grants.of(uid, read, confirm=link is not None and link.live)
            escrow = await self._escrow_if_absent(read)
            cand = self._candidate(read, link, roles, assigned, grants.evidence, escrow, False)
            if link is None and not cand.user.assigned and (cand.error is None or not grants.direct(uid)):
                # Never provisioned and not (known to be) in scope: nothing worth a log line. A
                # failed read of such a user is left to the next cycle, which reads everyone.
                return None
            if cand.error is None:
                cand.match = await matcher.match(cand.user, link)
            return cand

        found = await bounded(one, user_ids, self.limit)
        return ReadResult([c for c in found if c is not None], snapshot=grants.snapshot, coalesced=coalesced)

    # ------------------------------------------------------------------ one user

    async def _read_one(self, uid: str) -> UserRead | ReadFailure:
        """The user's read, or the failure that fails this user (not the run)."""
        try:
            return await self.reader.read_user(uid, self.e.select)
        except GraphReadError as exc:
            return ReadFailure(uid, exc.code, f"Entra could not be read for this user: {exc}")

    def _candidate(
        self,
        read: UserRead | ReadFailure,
        link: Link | None,
        roles: frozenset[str],
        assigned: bool,
        evidence: str,
        escrow: EscrowEntry | None,
        may_confirm: bool,
    ) -> Candidate:
        if isinstance(read, ReadFailure):
            user = SourceUser(read.id, {"id": read.id}, roles=roles, assigned=assigned)
            return Candidate(user, link, Match(None), utcnow(), escrow, error=(read.code, read.reason))
        user = from_read(
            read,
            roles=roles,
            assigned=assigned,
            assignment_evidence=evidence,
            escrow=escrow,
            confirm_after=self.confirm_after,
            may_confirm=may_confirm,
        )
        return Candidate(user, link, Match(None), read.read_at or utcnow(), escrow)


class Grants:
    """Who holds which app roles, for a targeted run: from the stored snapshot (one table query
    for the named users and the assigned groups) or, before the first cycle stored one, from
    Graph; confirmed from Graph before it takes a linked user out of scope."""

    def __init__(
        self, reading: Reading, users: dict[str, Assignment], groups: dict[str, Assignment], fresh: bool
    ) -> None:
        self.reading = reading
        self.users = users
        self.groups = groups
        self.fresh = fresh  # read from Graph in this run
        self.snapshot: dict[str, Assignment] = {**users, **groups} if fresh else {}
        self.evidence = _grant_evidence(fresh, len(groups))

    @classmethod
    async def load(cls, reading: Reading, user_ids: list[str], job: JobState) -> Grants:
        if not job.has_watermark:
            return await cls.from_graph(reading)
        users, groups = await reading.store.assignments.for_users(user_ids)
        return cls(reading, users, groups, fresh=False)

    @classmethod
    async def from_graph(cls, reading: Reading) -> Grants:
        assignments = await reading.reader.assignments(await reading.reader.app_roles())
        users = {pid: a for pid, a in assignments.items() if a.principal_type == "User"}
        groups = {pid: a for pid, a in assignments.items() if a.principal_type == "Group"}
        return cls(reading, users, groups, fresh=True)

    def direct(self, uid: str) -> bool:
        return uid in self.users

    async def of(
        self, uid: str, read: UserRead | ReadFailure, *, confirm: bool
    ) -> tuple[frozenset[str], bool, UserRead | ReadFailure]:
        """(roles, assigned, the read, or the failure that replaces it) for one user."""
        if not isinstance(read, UserRead) or read.attributes is None:
            return frozenset(), False, read
        try:
            in_groups = await self._groups_of(uid)
        except GraphReadError as exc:
            return frozenset(), False, ReadFailure(uid, exc.code, f"the groups of this user could not be read: {exc}")
        roles, assigned = self._roles(uid, in_groups)
        if confirm and not self.fresh and not any(roles):
            # The snapshot would take a linked user out of scope: read the assignments afresh.
            confirmed = await Grants.from_graph(self.reading)
            self.users, self.groups, self.fresh, self.evidence = (
                confirmed.users,
                confirmed.groups,
                True,
                confirmed.evidence,
            )
            self.snapshot = confirmed.snapshot
            in_groups = await self._groups_of(uid)
            roles, assigned = self._roles(uid, in_groups)
        return roles, assigned, read

    async def _groups_of(self, uid: str) -> set[str]:
        if not self.groups:
            return set()
        return await self.reading.reader.member_of(uid, self.reading.transitive) & set(self.groups)

    def _roles(self, uid: str, in_groups: set[str]) -> tuple[frozenset[str], bool]:
        roles: set[str] = set(self.users[uid].role_values) if uid in self.users else set()
        for gid in in_groups:
            roles |= self.groups[gid].role_values
        return frozenset(roles), uid in self.users or bool(in_groups)


def _grant_evidence(fresh: bool, groups: int) -> str:
    source = "a complete read of the app's assignments" if fresh else "the stored assignment snapshot"
    at = utcnow().isoformat(timespec="seconds")
    return f"{source} and the user's group memberships ({groups} assigned group(s)) at {at}"


def _same_grant(a: Assignment | None, b: Assignment | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.principal_type, a.role_ids, a.role_values) == (b.principal_type, b.role_ids, b.role_values)


async def _none() -> None:
    return None


def _roles_of(
    affected: set[str], assignments: dict[str, Assignment], direct: set[str], members: dict[str, set[str]]
) -> dict[str, set[str]]:
    roles_of: dict[str, set[str]] = {}
    for uid in affected & direct:
        roles_of.setdefault(uid, set()).update(assignments[uid].role_values)
    for gid, ids in members.items():
        for uid in ids & affected:
            roles_of.setdefault(uid, set()).update(assignments[gid].role_values)
    return roles_of


def _orphans(index: GoToIndex, links: CompactLinks, wanted: set[str]) -> list[Orphan]:
    """GoTo users carrying an Entra object id as externalId that no link points at: created by
    gotosync and never linked (a crash before the link and the intent), or a second account."""
    linked = set(links.live_goto_ids())
    out = []
    for entra_id, hits in sorted(index.external_ids().items()):
        for resource in hits:
            goto_id = str(resource.get("id", ""))
            if goto_id in linked:
                continue
            link = links.get(entra_id)
            if link is not None and link.live:
                why = f"a second GoTo account for Entra user {entra_id}, whose link points at {link.goto_id}"
            elif entra_id in wanted:
                continue  # matched by externalId in this cycle and linked by it
            else:
                why = f"carries the object id of Entra user {entra_id}, who is neither assigned nor linked"
            out.append(Orphan(goto_id, str(resource.get("userName", "")), entra_id, why))
    return out
