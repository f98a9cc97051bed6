"""Sync cycles: the initial (full) cycle and the incremental cycle, as Entra runs them, with a
lease, checkpoints, the deletion threshold, escrow retries and batched provisioning logs.

A cycle first plans every affected object (reads only), then checks the deletion threshold on
the whole plan, then exports. A dry run stops after planning and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared import telemetry
from shared.engine.export import Outcome, export
from shared.engine.groups import sync_groups
from shared.engine.licenses import DEFAULT_ACCESS, LicenseMap, config_digest, resolve_names
from shared.engine.plan import Kind, Match, Plan, Policy, plan_user
from shared.engine.scim_paths import get_value
from shared.entra.reader import DeltaExpired, EntraReader, UserChange
from shared.goto.admin import GoToAdminClient
from shared.goto.errors import AuthError, GoToError
from shared.goto.scim import GoToScimClient
from shared.mapping import MappingConfig, SourceContext, evaluate_user, load_mapping
from shared.model import (
    Assignment,
    CycleKind,
    CycleProgress,
    Initiator,
    JobState,
    Link,
    ModifiedProperty,
    ProvisioningLogEntry,
    SourceUser,
    Status,
    utcnow,
)
from shared.settings import Settings
from shared.store import Store, StoreError

log = logging.getLogger("gotosync.cycle")

LEASE_NAME = "cycle"
DELETION_QUARANTINE = "DeletionThresholdExceeded"
LEASE_SECONDS = 900
CHECKPOINT_EVERY = 200  # objects, or
CHECKPOINT_SECONDS = 3.0  # seconds, whichever comes first: `gotosync status` shows live progress
LOG_BATCH = 100

ProgressCallback = Callable[[CycleProgress], None]


@dataclass
class CycleResult:
    cycle_id: str
    kind: CycleKind
    dry_run: bool
    started: datetime
    ended: datetime
    plans: list[Plan] = field(default_factory=list)
    by_action: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    staged: int = 0
    skipped_reason: str = ""  # set when the cycle did not run (lease held, provisioning off)

    @property
    def duration_s(self) -> float:
        return (self.ended - self.started).total_seconds()

    def summary(self) -> dict[str, Any]:
        return {
            "cycleId": self.cycle_id,
            "kind": self.kind.value,
            "dryRun": self.dry_run,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "durationSeconds": round(self.duration_s, 3),
            "countsByAction": dict(sorted(self.by_action.items())),
            "countsByStatus": dict(sorted(self.by_status.items())),
            "staged": self.staged,
            "notRun": self.skipped_reason,
        }


class CycleNotRun(Exception):
    """The cycle did not start: another holds the lease, or provisioning is off."""


@dataclass
class _Candidate:
    user: SourceUser
    link: Link | None
    match: Match
    read_at: datetime


class SyncEngine:
    """Runs cycles for one app. Stateless between calls: everything lives in the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        reader: EntraReader,
        scim: GoToScimClient,
        mapping: MappingConfig | None = None,
        admin: GoToAdminClient | None = None,
    ) -> None:
        """`mapping`: the attribute mapping (default: MAPPING_FILE, loaded and validated here;
        MappingConfigError names every problem). `admin`: the Admin API client, needed when
        ROLE_LICENSES is set (licenses are then managed; otherwise never called)."""
        self.settings = settings
        self.store = store
        self.reader = reader
        self.scim = scim
        self.mapping = mapping if mapping is not None else load_mapping(settings.mapping_file)
        self.matching = tuple(self.mapping.matching())
        self._matching_only = MappingConfig(users=self.matching)
        self.admin = admin
        if settings.role_licenses and admin is None:
            raise ValueError("ROLE_LICENSES is set: the engine needs the GoTo Admin API client")
        self.policy = Policy(
            default_access_only=settings.default_access_only,
            skip_out_of_scope_deletions=settings.skip_out_of_scope_deletions,
            hard_delete_action=settings.hard_delete_action,
            verified_domains=settings.verified_domains,
            default_access_licensed=DEFAULT_ACCESS in settings.role_licenses,
        )
        self.select = self.mapping.graph_select()
        # The effective configuration: when it differs from the one the last full cycle ran
        # with, the next cycle is a full one (as Entra restarts after a mapping change).
        self.config_hash = config_digest(self.mapping.digest(), settings.role_licenses, settings.default_access_only)

    def matching_values(self, user: SourceUser) -> list[tuple[str, str]]:
        """(target attribute, value) for each matching attribute in precedence order that has a
        value for this user: the mapped (possibly computed) value GoTo is searched for."""
        result = evaluate_user(
            self._matching_only,
            SourceContext(
                attributes=user.attributes,
                object_id=user.id,
                is_soft_deleted=False,
                app_roles=tuple(sorted(user.roles)),
                creating=False,
            ),
        )
        out = []
        for m in self.matching:
            value = result.values.get(m.target)
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str) and value:
                out.append((m.target, value))
        return out

    async def license_map(self) -> LicenseMap | None:
        """ROLE_LICENSES resolved against the account's licenses (one Admin API read); None when
        licenses are not managed (ROLE_LICENSES empty: the Admin API is never called)."""
        if not self.settings.role_licenses or self.admin is None:
            return None
        return resolve_names(self.settings.role_licenses, await self.admin.licenses())

    async def set_licenses(self, user_key: str, license_keys: list[str]) -> None:
        assert self.admin is not None
        await self.admin.set_user_licenses(await self.admin.account_key(), user_key, license_keys)

    # ---------------------------------------------------------------- entry point

    async def run_cycle(
        self,
        *,
        full: bool = False,
        dry_run: bool = False,
        initiated_by: Initiator = Initiator.TIMER,
        progress: ProgressCallback | None = None,
        stop_after: int | None = None,
    ) -> CycleResult:
        """One cycle. `stop_after` (tests) aborts after that many exports, like a timeout kill."""
        cycle_id = str(uuid.uuid4())
        job = await self.store.job.get()
        if not job.enabled and initiated_by is Initiator.TIMER and not dry_run:
            raise CycleNotRun("provisioning is off")
        lease = None
        if not dry_run:
            lease = await self.store.lease.acquire(LEASE_NAME, cycle_id, LEASE_SECONDS)
            if lease is None:
                raise CycleNotRun("another cycle holds the lease")
        try:
            interrupted = job.current is not None and job.current.ended is None and not job.current.dry_run
            kind = CycleKind.INCREMENTAL
            if full or not job.has_watermark or (interrupted and job.current and job.current.kind is CycleKind.INITIAL):
                kind = CycleKind.INITIAL
            elif job.config_hash and job.config_hash != self.config_hash:
                log.info("the mapping, scoping filters or role licenses changed: a full cycle re-evaluates everyone")
                kind = CycleKind.INITIAL
            run = _Run(self, cycle_id, kind, dry_run, initiated_by, progress, stop_after, lease)
            return await run.execute(job)
        finally:
            if lease is not None:
                await self.store.lease.release(lease)

    async def sync_users(
        self, user_ids: Iterable[str], *, initiated_by: Initiator, dry_run: bool = False
    ) -> CycleResult:
        """The pipeline for the named users now, each read afresh from Graph (a notification or
        an admin's request is only a ping). Does not take the cycle lease: a write whose Entra
        read is older than the link's applied-at is dropped instead (see _Run._process)."""
        ids = sorted(set(user_ids))
        run = _Run(self, str(uuid.uuid4()), CycleKind.TARGETED, dry_run, initiated_by, None, None, None)
        return await run.execute_targeted(ids)


class _Run:
    """The state of one running cycle."""

    def __init__(
        self,
        engine: SyncEngine,
        cycle_id: str,
        kind: CycleKind,
        dry_run: bool,
        initiated_by: Initiator,
        progress: ProgressCallback | None,
        stop_after: int | None,
        lease: Any,
    ) -> None:
        self.e = engine
        self.cycle_id = cycle_id
        self.kind = kind
        self.dry_run = dry_run
        self.initiated_by = initiated_by
        self.on_progress = progress
        self.stop_after = stop_after
        self.lease = lease
        self.started = utcnow()
        self.state = CycleProgress(
            cycle_id=cycle_id, kind=kind, initiated_by=initiated_by, started=self.started, dry_run=dry_run
        )
        self.counts: Counter[str] = Counter()
        self.pending_logs: list[ProvisioningLogEntry] = []
        self.pending_links: list[Link] = []
        self.checkpointing = asyncio.Lock()
        self.exports_done = 0
        self.last_checkpoint = time.monotonic()
        self.licenses: LicenseMap | None = None

    def _plan_all(self, candidates: list[_Candidate]) -> list[tuple[Plan, _Candidate]]:
        return [
            (plan_user(c.user, c.link, c.match, self.e.mapping, self.e.policy, self.licenses), c) for c in candidates
        ]

    async def execute(self, job: JobState) -> CycleResult:
        store = self.e.store
        self.job_assignments_hash = job.assignments_hash
        if not self.dry_run:
            job = await store.job.update(lambda j: setattr(j, "current", self.state))
        async with self._guarded():
            if self.kind is CycleKind.INITIAL:
                candidates, new_links, snapshot, escrowed = await self._read_full()
            else:
                try:
                    candidates, new_links, snapshot, escrowed = await self._read_incremental(job)
                except DeltaExpired as exc:
                    log.warning("%s", exc)
                    self.kind = self.state.kind = CycleKind.INITIAL
                    candidates, new_links, snapshot, escrowed = await self._read_full()
            plans, staged = await self._plan(candidates, job)
            if not self.dry_run:
                await self._export_all(plans, escrowed)
                if self.e.settings.provision_groups:
                    await self._sync_groups(snapshot)
                await self._finish(new_links, snapshot, staged)
            return self._result([p for p, _ in plans], staged)

    async def _sync_groups(self, assignments: dict[str, Assignment]) -> None:
        """Users first, then groups and memberships (Entra's order for group-capable apps)."""
        await self._flush_logs()  # the users' links are batched: groups read them
        groups = await sync_groups(
            self.e,
            provision_groups=True,
            cycle_id=self.cycle_id,
            initiated_by=self.initiated_by,
            log_unchanged=self.kind is CycleKind.INITIAL,
            assignments=assignments,
        )
        for entry in groups.entries:
            self._count(entry.action.value, entry.status.value)
        self.pending_logs.extend(groups.entries)
        if groups.auth_error is not None:
            raise groups.auth_error  # _guarded quarantines the job and flushes the logs

    async def execute_targeted(self, user_ids: list[str]) -> CycleResult:
        job = await self.e.store.job.get()
        self.job_assignments_hash = job.assignments_hash
        async with self._guarded():
            plans, staged = await self._plan(await self._read_targeted(user_ids), job)
            if not self.dry_run:
                wanted = set(user_ids)
                escrowed = {e.entra_id for e in await self.e.store.escrow.all() if e.entra_id in wanted}
                await self._export_all(plans, escrowed)
                if staged:
                    await self._hold_deletions(staged)
            return self._result([p for p, _ in plans], staged)

    async def _plan(self, candidates: list[_Candidate], job: JobState) -> tuple[list[tuple[Plan, _Candidate]], int]:
        """Every candidate's plan, then the deletion threshold over all of them. A dry run stops
        here: its counts are the plan's."""
        if candidates:
            self.licenses = await self.e.license_map()
        plans = self._plan_all(candidates)
        self.state.total = len(plans)
        staged = self._apply_threshold([p for p, _ in plans], job)
        if self.dry_run:
            for plan, _ in plans:
                self._count(plan.log_action.value, plan.log_status.value)
        return plans, staged

    @contextlib.asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        """GoTo refusing the credentials quarantines the job (Entra's EncounteredQuarantineException);
        whatever happens, the log entries written so far are flushed."""
        try:
            yield
        except AuthError as exc:
            await self._quarantine("EncounteredQuarantineException", f"GoTo refused the credentials: {exc}")
            raise
        finally:
            await self._flush_logs()

    async def _read_targeted(self, user_ids: list[str]) -> list[_Candidate]:
        reader, store = self.e.reader, self.e.store
        roles = await reader.app_roles()
        assignments = await reader.assignments(roles)
        groups = {pid: a for pid, a in assignments.items() if a.principal_type == "Group"}
        group_ids = set(groups)
        transitive = self.e.settings.transitive_members

        async def one(uid: str) -> _Candidate:
            read_at = utcnow()
            attrs = await reader.get_user(uid, self.e.select)
            if attrs is None:
                soft = await reader.in_recycle_bin(uid)
                source = SourceUser(uid, {"id": uid}, soft_deleted=soft, hard_deleted=not soft)
            else:
                held: set[str] = set()
                if uid in assignments and assignments[uid].principal_type == "User":
                    held |= assignments[uid].role_values
                in_groups = (await reader.member_of(uid, transitive) if groups else set()) & group_ids
                for gid in in_groups:
                    held |= groups[gid].role_values
                assigned = (uid in assignments) or bool(in_groups)
                source = SourceUser(uid, attrs, roles=frozenset(held), assigned=assigned)
            link = await store.links.get(uid, "user")
            return _Candidate(source, link, await self._match_remote(source, link), read_at)

        sem = asyncio.Semaphore(self.e.settings.cycle_concurrency)

        async def bounded(uid: str) -> _Candidate:
            async with sem:
                return await one(uid)

        candidates = await asyncio.gather(*(bounded(uid) for uid in user_ids))
        # Never provisioned and not in scope: nothing to do and nothing worth a log line.
        return [c for c in candidates if c.link is not None or c.user.assigned]

    # ---------------------------------------------------------------- reading

    async def _read_full(self) -> tuple[list[_Candidate], tuple[str, str], dict[str, Assignment], set[str]]:
        reader = self.e.reader
        # Delta links first: changes made while we read are replayed by the next round.
        links_now = await reader.latest_delta_links(self.e.select)
        roles = await reader.app_roles()
        assignments = await reader.assignments(roles)
        roles_of = await self._roles_by_user(assignments)
        stored_links = {lk.entra_id: lk for lk in await self.e.store.links.all("user")}
        wanted = set(roles_of) | set(stored_links)
        read_at = utcnow()
        users: dict[str, dict[str, Any]] = {}
        async for page in reader.iter_users(self.e.select):
            for attrs in page:
                if attrs["id"] in wanted:
                    users[attrs["id"]] = attrs
        index = await self._goto_index()
        # Linked but no longer listed: deleted in Entra. The recycle bin tells a soft delete
        # (disable) from a hard one (delete); there are few such users, one request each.
        missing = sorted(uid for uid in wanted if uid not in users)
        in_bin = await asyncio.gather(*(reader.in_recycle_bin(uid) for uid in missing))
        soft = {uid for uid, found in zip(missing, in_bin, strict=True) if found}
        candidates = []
        for uid in sorted(wanted):
            attrs = users.get(uid)
            if attrs is None:
                source = SourceUser(uid, {"id": uid}, soft_deleted=uid in soft, hard_deleted=uid not in soft)
            else:
                roles_here = roles_of.get(uid, frozenset())
                source = SourceUser(uid, attrs, roles=roles_here, assigned=uid in roles_of)
            link = stored_links.get(uid)
            candidates.append(_Candidate(source, link, self._match_in_index(source, link, index), read_at))
        escrowed = {e.entra_id for e in await self.e.store.escrow.all()}
        return candidates, links_now, assignments, escrowed

    async def _roles_by_user(self, assignments: dict[str, Assignment]) -> dict[str, frozenset[str]]:
        roles: dict[str, set[str]] = {}
        for a in assignments.values():
            if a.principal_type == "User":
                roles.setdefault(a.principal_id, set()).update(a.role_values)
        groups = [a for a in assignments.values() if a.principal_type == "Group"]
        member_lists = await asyncio.gather(
            *(self.e.reader.group_member_ids(g.principal_id, self.e.settings.transitive_members) for g in groups)
        )
        for group, members in zip(groups, member_lists, strict=True):
            for uid in members:
                roles.setdefault(uid, set()).update(group.role_values)
        return {uid: frozenset(r) for uid, r in roles.items()}

    async def _goto_index(self) -> dict[str, list[dict[str, Any]]]:
        """One paged listing of GoTo users, indexed by id and by each matching attribute."""
        index: dict[str, list[dict[str, Any]]] = {}
        async for resource in self.e.scim.list_users():
            index.setdefault("id:" + str(resource.get("id")), []).append(resource)
            for m in self.e.matching:
                value = _target_value(resource, m.target)
                if value:
                    index.setdefault(f"{m.target}:{value.lower()}", []).append(resource)
        return index

    def _match_in_index(self, user: SourceUser, link: Link | None, index: dict[str, list[dict[str, Any]]]) -> Match:
        link_lost = False
        if link is not None:
            hits = index.get("id:" + link.goto_id)
            if hits:
                return Match(hits[0], "link")
            link_lost = True
        tried = []
        values = self.e.matching_values(user)
        for target, value in values:
            hits = index.get(f"{target}:{value.lower()}", [])
            tried.append((target, value, len(hits)))
            if len(hits) == 1:
                return Match(hits[0], target, tuple(tried), link_lost=link_lost)
            if len(hits) > 1:
                return Match(None, target, tuple(tried), duplicates=len(hits), link_lost=link_lost)
        return Match(None, "", tuple(tried), link_lost=link_lost, no_value=not values)

    async def _match_remote(self, user: SourceUser, link: Link | None) -> Match:
        """Incremental cycles: the target lookup is repeated per object, as Entra does."""
        link_lost = False
        if link is not None:
            target = await self.e.scim.get_user(link.goto_id)
            if target is not None:
                return Match(target, "link")
            link_lost = True
        tried = []
        values = self.e.matching_values(user)
        for target, value in values:
            try:
                hits = await self.e.scim.find_users(target, value)
            except GoToError as exc:
                if isinstance(exc, AuthError):
                    raise
                # e.g. GoTo cannot filter on this matching attribute: this user fails, not the cycle.
                problem = (exc.code, f"GoTo refused the lookup {target} eq {value!r}: {exc}")
                return Match(None, target, tuple(tried), link_lost=link_lost, error=problem)
            tried.append((target, value, len(hits)))
            if len(hits) == 1:
                return Match(hits[0], target, tuple(tried), link_lost=link_lost)
            if len(hits) > 1:
                return Match(None, target, tuple(tried), duplicates=len(hits), link_lost=link_lost)
        return Match(None, "", tuple(tried), link_lost=link_lost, no_value=not values)

    async def _read_incremental(
        self, job: JobState
    ) -> tuple[list[_Candidate], tuple[str, str], dict[str, Assignment], set[str]]:
        reader, store = self.e.reader, self.e.store
        roles = await reader.app_roles()
        assignments = await reader.assignments(roles)
        # The stored snapshot is read only when the assignments changed since it was written.
        previous = assignments if snapshot_hash(assignments) == job.assignments_hash else await store.assignments.load()
        user_changes, users_link = await reader.users_delta(job.users_delta_link, self.e.select)
        group_changes, groups_link = await reader.groups_delta(job.groups_delta_link)

        affected: set[str] = set()
        for pid in set(assignments) | set(previous):
            now, before = assignments.get(pid), previous.get(pid)
            if now == before:
                continue
            kind = (now or before).principal_type  # type: ignore[union-attr]
            if kind == "User":
                affected.add(pid)
            else:
                # A group assigned, unassigned or given another role: all of its members.
                affected |= await reader.group_member_ids(pid, self.e.settings.transitive_members)
        assigned_groups = {pid for pid, a in assignments.items() if a.principal_type == "Group"}
        for gid, change in group_changes.items():
            if gid in assigned_groups or gid in previous:
                affected |= change.added | change.removed
        changed_by_id: dict[str, UserChange] = {c.id: c for c in user_changes}
        direct = {pid for pid, a in assignments.items() if a.principal_type == "User"}
        escrow_due = {e.entra_id for e in await store.escrow.due(utcnow())}
        affected |= escrow_due
        # Links are read only when there is something to decide (a quiet cycle stays cheap).
        links = {lk.entra_id: lk for lk in await store.links.all("user")} if (affected or changed_by_id) else {}
        # Group members are listed only when something changed (a quiet cycle stays cheap).
        others = [uid for uid in changed_by_id if uid not in links and uid not in direct]
        member_ids = await self._members_of(assigned_groups if (affected or others) else ())
        # A delta entry matters if the user is ours or could be in scope; others are noise.
        for uid in changed_by_id:
            if uid in links or uid in direct or uid in member_ids:
                affected.add(uid)

        roles_of: dict[str, set[str]] = {}
        for uid in affected:
            if uid in direct:
                roles_of.setdefault(uid, set()).update(assignments[uid].role_values)
        for gid in assigned_groups:
            for uid in member_ids.get_members(gid) & affected:
                roles_of.setdefault(uid, set()).update(assignments[gid].role_values)

        candidates = []
        for uid in sorted(affected):
            change = changed_by_id.get(uid)
            read_at = utcnow()
            if change is not None and change.removed:
                source = SourceUser(
                    uid,
                    change.attributes,
                    soft_deleted=change.removed == "changed",
                    hard_deleted=change.removed == "deleted",
                )
            else:
                attrs = await reader.get_user(uid, self.e.select)
                if attrs is None:
                    source = SourceUser(uid, {"id": uid}, soft_deleted=True)
                else:
                    source = SourceUser(uid, attrs, roles=frozenset(roles_of.get(uid, set())), assigned=uid in roles_of)
            link = links.get(uid)
            if link is None and not source.assigned:
                continue  # never provisioned and not in scope: nothing to do, nothing to log
            candidates.append(_Candidate(source, link, await self._match_remote(source, link), read_at))
        return candidates, (users_link, groups_link), assignments, escrow_due

    async def _members_of(self, group_ids: Iterable[str]) -> _Members:
        ids = sorted(group_ids)
        lists = await asyncio.gather(
            *(self.e.reader.group_member_ids(g, self.e.settings.transitive_members) for g in ids)
        )
        return _Members(dict(zip(ids, lists, strict=True)))

    # ---------------------------------------------------------------- deciding

    def _apply_threshold(self, plans: list[Plan], job: JobState) -> int:
        """Entra's accidental-deletions guard: per cycle, disables and deletes together. While the
        job is quarantined for it, every disable and delete waits for the admin (allow deletes,
        or fix the cause and restart): nothing slips through a cycle at a time."""
        threshold = self.e.settings.deletion_threshold
        deprovisions = [p for p in plans if p.kind.deprovisions]
        if not deprovisions or job.allow_deletes_once:
            return 0
        held = job.quarantine_reason.startswith(DELETION_QUARANTINE)
        if not held and (threshold <= 0 or len(deprovisions) <= threshold):
            return 0
        for plan in deprovisions:
            plan.staged = True
            why = (
                "provisioning is quarantined for exceeding the deletion threshold"
                if held
                else f"{len(deprovisions)} disables/deletes in this cycle exceed the deletion threshold of {threshold}"
            )
            plan.reason = f"staged: {why} ({plan.reason})"
        return len(deprovisions)

    # ---------------------------------------------------------------- exporting

    async def _export_all(self, plans: list[tuple[Plan, _Candidate]], escrowed: set[str]) -> None:
        sem = asyncio.Semaphore(self.e.settings.cycle_concurrency)
        abort = asyncio.Event()

        async def one(plan: Plan, cand: _Candidate) -> None:
            async with sem:
                if abort.is_set():
                    return
                await self._process(plan, cand, escrowed)
                if self.stop_after is not None and self.exports_done >= self.stop_after:
                    abort.set()

        tasks = [asyncio.create_task(one(p, c)) for p, c in plans]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        if abort.is_set():
            raise CycleInterrupted(f"cycle {self.cycle_id} stopped after {self.exports_done} exports")

    async def _process(self, plan: Plan, cand: _Candidate, escrowed: set[str]) -> None:
        t0 = time.perf_counter()
        store = self.e.store
        outcome: Outcome | None = None
        if plan.kind.writes and not plan.staged and await self._stale(plan, cand):
            plan.kind = Kind.SKIP
            plan.reason = "a newer read of this user was already applied; this older read is dropped"
        if plan.kind.writes and not plan.staged:
            set_licenses = self.e.set_licenses if self.licenses is not None else None
            outcome = await export(plan, self.e.scim, cand.match.target, cand.read_at, set_licenses)
            self.exports_done += 1
            if outcome.ok:
                if outcome.link is None:
                    await store.links.delete(plan.user.id, "user")
                else:
                    await self._put_link(outcome.link)
                if plan.user.id in escrowed:
                    await store.escrow.clear(plan.user.id, "user")
            else:
                assert outcome.error is not None
                if outcome.partial and outcome.link is not None:
                    await self._put_link(outcome.link)  # the SCIM write was done: keep what it did
                if isinstance(outcome.error, AuthError):
                    raise outcome.error
                await store.escrow.record_failure(
                    plan.user.id, "user", outcome.error.code, _failure_reason(outcome), utcnow()
                )
        elif plan.kind is Kind.NONE and cand.link is None and cand.match.target is not None:
            # Matched an existing GoTo user that is already in step: link it, nothing to write.
            await self._put_link(
                Link(
                    entra_id=plan.user.id,
                    goto_id=plan.target_id,
                    matched_by=cand.match.matched_by,
                    exported=dict(plan.values),
                    applied_at=cand.read_at,
                )
            )
        elif plan.kind is Kind.FAIL:
            await store.escrow.record_failure(plan.user.id, "user", plan.error_code, plan.reason, utcnow())
        elif plan.staged and not self.dry_run:
            # Held, not forgotten: escrowed so that every later cycle (incremental ones too,
            # whose delta has moved on) re-evaluates the user until the admin decides.
            await store.escrow.record_failure(plan.user.id, "user", "StagedDelete", plan.reason, utcnow())
        elif plan.user.id in escrowed and plan.kind in (Kind.NONE, Kind.SKIP):
            await store.escrow.clear(plan.user.id, "user")
        status = plan.log_status if outcome is None else (Status.SUCCESS if outcome.ok else Status.FAILURE)
        error_code = plan.error_code if outcome is None or outcome.ok else outcome.error.code  # type: ignore[union-attr]
        reason = plan.reason if outcome is None or outcome.ok else _failure_reason(outcome)
        self._count(plan.log_action.value, status.value)
        # Objects already in step are logged by full cycles and by on-demand requests (an admin
        # who asks about a user expects an answer in the log), not by incremental runs.
        if plan.kind is not Kind.NONE or self.kind is CycleKind.INITIAL or self.initiated_by is Initiator.ON_DEMAND:
            self.pending_logs.append(self._entry(plan, status, error_code, reason, t0))
        self.state.processed += 1
        if len(self.pending_logs) >= LOG_BATCH or len(self.pending_links) >= LOG_BATCH:
            await self._flush_logs()
        now = time.monotonic()
        due = self.state.processed % CHECKPOINT_EVERY == 0 or now - self.last_checkpoint >= CHECKPOINT_SECONDS
        if due and not self.checkpointing.locked():
            # One checkpoint at a time; exports running meanwhile are covered by the next one.
            async with self.checkpointing:
                self.last_checkpoint = now
                await self._checkpoint()

    async def _put_link(self, link: Link) -> None:
        """Targeted runs write links at once (others race with them); a cycle writes them in
        batches with its log entries. A cycle killed before a batch is written loses no user:
        the next run finds the GoTo user by userName (or by the 409 of a repeated create)."""
        if self.kind is CycleKind.TARGETED:
            await self.e.store.links.put(link)
        else:
            self.pending_links.append(link)

    async def _stale(self, plan: Plan, cand: _Candidate) -> bool:
        """A cycle's read can be older than a webhook's write that landed meanwhile (or the
        reverse): the link's applied-at says when the read behind the last export was taken.
        Without a link at read time there is nothing to be stale against: a create racing
        another create meets GoTo's 409 and adopts the user."""
        if cand.link is None:
            return False
        current = await self.e.store.links.get(plan.user.id, "user")
        return bool(current and current.applied_at and current.applied_at > cand.read_at)

    def _entry(self, plan: Plan, status: Status, error_code: str, reason: str, t0: float) -> ProvisioningLogEntry:
        return ProvisioningLogEntry(
            cycle_id=self.cycle_id,
            change_id=str(uuid.uuid4()),
            action=plan.log_action,
            status=status,
            source_id=plan.user.id,
            source_name=plan.user.upn or _exported_name(plan.link) or plan.user.display_name,
            target_id=plan.target_id,
            target_name=plan.target_name or str(plan.values.get("userName", "")),
            initiated_by=self.initiated_by,
            reason=reason,
            error_code=error_code,
            modified=_modified(plan),
            steps=list(plan.steps),
            duration_ms=int((time.perf_counter() - t0) * 1000),
        )

    def _count(self, action: str, status: str) -> None:
        self.counts[f"{action}/{status}"] += 1
        if not self.dry_run:
            telemetry.metrics().record_action(action, status)
        self.state.counts = dict(self.counts)
        if self.on_progress is not None:
            self.on_progress(self.state)

    async def _flush_logs(self) -> None:
        if self.pending_links and not self.dry_run:
            links, self.pending_links = self.pending_links, []
            await self.e.store.links.put_many(links)
        if self.pending_logs and not self.dry_run:
            batch, self.pending_logs = self.pending_logs, []
            await self.e.store.logs.write(batch)

    async def _checkpoint(self) -> None:
        if self.dry_run:
            return
        await self._flush_logs()
        if self.kind is CycleKind.TARGETED:
            return  # a targeted run is not the job's cycle: it leaves the cycle status alone
        snapshot = CycleProgress(**{**self.state.__dict__})
        await self.e.store.job.update(lambda j: setattr(j, "current", snapshot))
        if self.lease is not None:
            await self.e.store.lease.renew(self.lease)

    async def _finish(self, new_links: tuple[str, str], snapshot: dict[str, Assignment], staged: int) -> None:
        await self._flush_logs()
        digest = snapshot_hash(snapshot)
        if digest != self.job_assignments_hash:
            await self.e.store.assignments.replace(snapshot)
        self.state.ended = utcnow()
        telemetry.metrics().record_cycle(self.kind.value, (self.state.ended - self.started).total_seconds())
        done = CycleProgress(**{**self.state.__dict__})
        failures = sum(n for k, n in self.counts.items() if k.endswith("/Failure"))
        config_hash = self.e.config_hash

        def mutate(job: JobState) -> None:
            job.users_delta_link, job.groups_delta_link = new_links
            job.assignments_hash = digest
            job.config_hash = config_hash  # a full cycle ran with it (or it is the first one stored)
            job.current = None
            job.last = done
            job.staged_deletes = staged
            if staged and not job.quarantine_reason.startswith(DELETION_QUARANTINE):
                job.quarantine_reason = (
                    f"{DELETION_QUARANTINE}: {staged} disables/deletes staged; allow deletes or fix and restart"
                )
                job.quarantined_since = utcnow()
            elif not staged and job.allow_deletes_once and job.quarantine_reason.startswith(DELETION_QUARANTINE):
                job.quarantine_reason = ""  # the admin allowed the deletes and they were done
                job.quarantined_since = None
            elif job.quarantine_reason.startswith("EncounteredQuarantineException") and failures == 0:
                job.quarantine_reason = ""  # the credentials work again
                job.quarantined_since = None
            job.allow_deletes_once = False
            job.last_success = done.ended  # the cycle ran to its end (per-object failures are escrowed)

        await self.e.store.job.update(mutate)
        try:  # the console's list of last cycles; the job's own state is saved already
            await self.e.store.cycles.append(done, staged=staged)
        except StoreError as exc:
            log.warning("cycle %s not added to the cycle history: %s", self.cycle_id, exc)

    async def _hold_deletions(self, staged: int) -> None:
        def mutate(job: JobState) -> None:
            if not job.quarantine_reason.startswith(DELETION_QUARANTINE):
                job.quarantine_reason = (
                    f"{DELETION_QUARANTINE}: {staged} disables/deletes staged; allow deletes or fix and restart"
                )
                job.quarantined_since = utcnow()
            job.staged_deletes = max(job.staged_deletes, staged)

        await self.e.store.job.update(mutate)

    async def _quarantine(self, code: str, reason: str) -> None:
        if self.dry_run:
            return

        def mutate(job: JobState) -> None:
            job.quarantine_reason = f"{code}: {reason}"
            job.quarantined_since = job.quarantined_since or utcnow()

        await self.e.store.job.update(mutate)

    def _result(self, plans: list[Plan], staged: int) -> CycleResult:
        by_action: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for key, n in self.counts.items():
            action, status = key.split("/")
            by_action[action] += n
            by_status[status] += n
        return CycleResult(
            cycle_id=self.cycle_id,
            kind=self.kind,
            dry_run=self.dry_run,
            started=self.started,
            ended=utcnow(),
            plans=plans,
            by_action=dict(by_action),
            by_status=dict(by_status),
            staged=staged,
        )


class CycleInterrupted(Exception):
    """The cycle stopped before its end (a function timeout, or `stop_after` in tests)."""


class _Members:
    def __init__(self, by_group: dict[str, set[str]]) -> None:
        self.by_group = by_group
        self.all = set().union(*by_group.values()) if by_group else set()

    def __contains__(self, uid: object) -> bool:
        return uid in self.all

    def get_members(self, gid: str) -> set[str]:
        return self.by_group.get(gid, set())


def snapshot_hash(assignments: dict[str, Assignment]) -> str:
    """A digest of who is assigned with which roles (order-independent)."""
    lines = sorted(
        f"{a.principal_type}|{a.principal_id}|{','.join(sorted(a.role_ids))}|{','.join(sorted(a.role_values))}"
        for a in assignments.values()
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _exported_name(link: Link | None) -> str:
    """A deleted user comes back from delta with its id only: name it by what we last sent."""
    value = link.exported.get("userName") if link else None
    return value if isinstance(value, str) else ""


def _modified(plan: Plan) -> list[ModifiedProperty]:
    return [ModifiedProperty(name, old, new) for name, old, new in plan.shown_changes()]


def _failure_reason(outcome: Outcome) -> str:
    if not outcome.partial:
        return str(outcome.error)
    plan = outcome.plan
    what = "assigned" if plan.licenses and plan.licenses[1] else "released"
    done = {Kind.CREATE: "created", Kind.DISABLE: "disabled"}.get(plan.kind, "updated")
    return f"the GoTo user was {done}, but its licenses could not be {what}: {outcome.error}"


def _target_value(resource: dict[str, Any], path: str) -> str:
    value = get_value(resource, path)
    return value if isinstance(value, str) else ""
