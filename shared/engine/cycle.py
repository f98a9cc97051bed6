"""Sync cycles: the initial (full) cycle and the incremental cycle, as Entra runs them, with a
lease that is renewed while the cycle runs, checkpoints, the deletion guards, escrow retries
and batched provisioning logs; and targeted runs for named users.

A run first reads (shared/engine/reading.py: whole reads or none) and plans every affected
object, then checks the guards on the whole plan (docs/safety.md), then exports. A dry run
stops after planning and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared import telemetry
from shared.engine.commit import Committer
from shared.engine.effects import Context, Effects, Record, user_effects
from shared.engine.export import Outcome, export
from shared.engine.gate import NOTHING, PROCEED, STALE, Decision, decide, held_reason, is_stale
from shared.engine.group_effects import GroupRecord
from shared.engine.groups import assigned_members, sync_groups
from shared.engine.guard import (
    DELETION_QUARANTINE,
    FAILURE_QUARANTINE,
    DeletionGuard,
    duplicate_names,
    failure_quarantine,
)
from shared.engine.licenses import DEFAULT_ACCESS, LicenseMap, config_digest, resolve_names
from shared.engine.matching import Owners, RemoteMatcher
from shared.engine.plan import Kind, Plan, Policy, failed_read, plan_user
from shared.engine.reading import (
    Candidate,
    FullRead,
    NeedsFullRead,
    Orphan,
    Reading,
    ReadResult,
    snapshot_hash,
)
from shared.engine.resume import ListingResume
from shared.entra.reader import CursorFailed, DeltaExpired, EntraReader, GraphReadError
from shared.errors import ErrorPolicy, GotosyncError
from shared.fanout import read_ahead, started
from shared.goto.admin import GoToAdminClient
from shared.goto.errors import AuthError, NotFound
from shared.goto.scim import GoToScimClient
from shared.goto.token_store import CredentialStoreError
from shared.mapping import MappingConfig, SourceContext, evaluate_user, load_mapping
from shared.model import (
    Action,
    CycleKind,
    CycleProgress,
    Initiator,
    JobState,
    Link,
    ProvisioningLogEntry,
    ProvisioningStep,
    SourceUser,
    Status,
    StepType,
    utcnow,
)
from shared.settings import Settings
from shared.store import Store, StoreError
from shared.store.lease import LeaseHeartbeat, LeaseLost

log = logging.getLogger("gotosync.cycle")

LEASE_NAME = "cycle"
CHECKPOINT_EVERY = 200  # objects, or
CHECKPOINT_SECONDS = 3.0  # seconds, whichever comes first: `gotosync status` shows live progress
DUPLICATE_QUARANTINE = "DuplicateTargetValues"

ProgressCallback = Callable[[CycleProgress], None]


@dataclass
class CycleResult:
    cycle_id: str
    kind: CycleKind
    dry_run: bool
    started: datetime
    ended: datetime
    plans: list[Record] = field(default_factory=list)  # each object's plan, gate decision and outcome
    by_action: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    staged: int = 0
    skipped_reason: str = ""  # set when the cycle did not run (lease held, provisioning off)
    groups: list[GroupRecord] = field(default_factory=list)  # each assigned group's plan and outcome
    continuing: bool = False  # the budget ran out: the cycle hands itself on to its next invocation
    coalesced: list[str] = field(default_factory=list)  # targeted: skipped, a newer read was already applied

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
            "continuing": self.continuing,
        }


def _resumable(job: JobState, resume: str | None) -> CycleProgress | None:
    """The cycle this invocation continues: the one a continuation message names, or (for the
    timer) any cycle that handed itself on. CycleNotRun when a continuation has nothing to
    continue (its cycle ended, or another took over): a duplicate message is harmless."""
    current = job.current
    live = current is not None and current.ended is None and not current.dry_run
    if resume is not None:
        if not live or current is None or current.cycle_id != resume or not current.continuing:
            raise CycleNotRun(f"cycle {resume} has nothing left to continue")
        return current
    return current if live and current is not None and current.continuing else None


class CycleNotRun(GotosyncError):
    """The cycle did not start: another holds the lease, or provisioning is off."""

    code = "CycleNotRun"
    exit_code = 3
    http_status = 409
    heading = "not run"


class PlanRefused(GotosyncError):
    """The whole plan was refused before anything was written (it would give two users the
    same userName); the job is quarantined with the names."""

    code = "DuplicateTargetValues"
    policy = ErrorPolicy.QUARANTINE
    exit_code = 1
    http_status = 422
    heading = "plan refused"
    fix = "fix the userName mapping, then restart"


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
        self.guard = DeletionGuard(settings.deletion_threshold, settings.deletion_threshold_percent)
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

    # ---------------------------------------------------------------- entry points

    async def run_cycle(
        self,
        *,
        full: bool = False,
        dry_run: bool = False,
        initiated_by: Initiator = Initiator.TIMER,
        progress: ProgressCallback | None = None,
        stop_after: int | None = None,
        resume: str | None = None,
        budget_seconds: float | None = None,
    ) -> CycleResult:
        """One invocation of a cycle. A cycle that runs out of its time budget
        (CYCLE_TIME_BUDGET_SECONDS, or `budget_seconds`; dry runs have none) checkpoints and
        returns `continuing`: the next invocation — its continuation message (`resume`, its id)
        or the next timer tick — resumes the same cycle. `stop_after` (tests) aborts after that
        many exports, like a timeout kill."""
        job = await self.store.job.get()
        if not job.enabled and initiated_by is Initiator.TIMER and not dry_run:
            raise CycleNotRun("provisioning is off")
        resuming = _resumable(job, resume) if not dry_run else None
        cycle_id = resuming.cycle_id if resuming else str(uuid.uuid4())
        if dry_run:
            run = _Run(self, cycle_id, self._cycle_kind(job, full), True, initiated_by, progress, stop_after, None)
            return await run.execute(job)
        ttl = self.settings.cycle_lease_seconds
        lease = await self.store.lease.acquire(LEASE_NAME, f"{cycle_id}/{uuid.uuid4().hex[:8]}", ttl)
        if lease is None:
            raise CycleNotRun(await self._lease_holder())
        try:
            async with LeaseHeartbeat(self.store.lease, lease, ttl / 3) as heartbeat:
                job = await self.store.job.get()  # read again under the lease
                resuming = _resumable(job, resume)
                kind = resuming.kind if resuming else self._cycle_kind(job, full)
                run = _Run(self, cycle_id, kind, False, initiated_by, progress, stop_after, heartbeat)
                run.budget = budget_seconds if budget_seconds is not None else self.settings.cycle_time_budget_seconds
                run.resume(resuming)
                return await run.execute(job)
        finally:
            with contextlib.suppress(Exception):  # an outage must not hide the cycle's own error
                await self.store.lease.release(lease)

    def _cycle_kind(self, job: JobState, full: bool) -> CycleKind:
        interrupted = job.current is not None and job.current.ended is None and not job.current.dry_run
        if full or not job.has_watermark or (interrupted and job.current and job.current.kind is CycleKind.INITIAL):
            return CycleKind.INITIAL
        if job.config_hash and job.config_hash != self.config_hash:
            log.info("the mapping, scoping filters or role licenses changed: a full cycle re-evaluates everyone")
            return CycleKind.INITIAL
        return CycleKind.INCREMENTAL

    async def _lease_holder(self) -> str:
        held = await self.store.lease.get(LEASE_NAME)
        if held is None:
            return "another cycle holds the lease"
        beat = held.renewed.isoformat(timespec="seconds") if held.renewed else "unknown"
        return (
            f"another cycle holds the lease (owner {held.owner}, fence {held.fence}, last heartbeat {beat}, "
            f"expires {held.expires.isoformat(timespec='seconds')})"
        )

    async def sync_users(
        self,
        user_ids: Iterable[str],
        *,
        initiated_by: Initiator,
        dry_run: bool = False,
        job: JobState | None = None,
        changed_before: Mapping[str, datetime] | None = None,
        reads: contextlib.AbstractAsyncContextManager[Any] | None = None,
    ) -> CycleResult:
        """The pipeline for the named users now, each read afresh from Graph (a notification or
        an admin's request is only a ping). Does not take the cycle lease: a write whose Entra
        read is older than the link's applied-at is dropped instead (see _Run._process). Never
        deletes on a negative read: such users are handed to the next cycle.

        A linked user's GoTo side is the one its link records (one write per change, no read),
        except on demand and in dry runs, which show an admin the user as GoTo has it.
        `changed_before` (the worker): user id -> the time by which its change was made; users
        whose link carries a newer read are skipped (`CycleResult.coalesced`). `reads` (the
        worker): entered for the reads only, not the writes (runs that take turns to read)."""
        ids = sorted(set(user_ids))
        run = _Run(self, str(uuid.uuid4()), CycleKind.TARGETED, dry_run, initiated_by, None, None, None)
        trust = not dry_run and initiated_by is not Initiator.ON_DEMAND
        return await run.execute_targeted(ids, job, trust_links=trust, changed_before=changed_before, reads=reads)


class _Run:
    """One run through the pipeline: read, plan, gate, export, effects, commit."""

    def __init__(
        self,
        engine: SyncEngine,
        cycle_id: str,
        kind: CycleKind,
        dry_run: bool,
        initiated_by: Initiator,
        progress: ProgressCallback | None,
        stop_after: int | None,
        heartbeat: LeaseHeartbeat | None,
    ) -> None:
        self.e = engine
        self.cycle_id = cycle_id
        self.kind = kind
        self.dry_run = dry_run
        self.initiated_by = initiated_by
        self.on_progress = progress
        self.stop_after = stop_after
        self.heartbeat = heartbeat
        self.started = utcnow()
        self.state = CycleProgress(
            cycle_id=cycle_id, kind=kind, initiated_by=initiated_by, started=self.started, dry_run=dry_run
        )
        self.counts: Counter[str] = Counter()
        self.commit = Committer(engine.store, batched=kind is not CycleKind.TARGETED, dry_run=dry_run)
        self.checkpointing = asyncio.Lock()
        self.exports_done = 0
        self.attempted = 0  # objects this run tried to write (or could not plan): the failure share's base
        self.failed = 0
        self.last_checkpoint = time.monotonic()
        self.licenses: LicenseMap | None = None
        self.held = ""  # why this run's disables and deletes are held ("" = they are not)
        self.group_records: list[GroupRecord] = []
        self.budget: float | None = None  # seconds this invocation may work before handing on
        self.clock_started = time.monotonic()
        self.out_of_time = False
        self.resumed = False  # continues a cycle an earlier invocation handed on

    def resume(self, progress: CycleProgress | None) -> None:
        """Continue a cycle that handed itself on: same id, kind, start and counts; the delta
        links an initial cycle took at its start."""
        if progress is None:
            return
        self.kind = progress.kind
        self.started = progress.started or self.started
        self.counts = Counter(progress.counts)
        self.state = dataclasses.replace(progress, continuing=False, invocations=progress.invocations + 1)
        self.resumed = True

    @property
    def staged(self) -> int:
        """Disables and deletes (users and groups) this run held back."""
        return sum(n for key, n in self.counts.items() if key.startswith(f"{Action.STAGED_DELETE.value}/"))

    def _time_is_up(self) -> bool:
        """The invocation's budget is spent: stop starting exports and hand the cycle on."""
        if self.budget is None or self.dry_run or self.kind is CycleKind.TARGETED:
            return False
        if time.monotonic() - self.clock_started >= self.budget:
            self.out_of_time = True
        return self.out_of_time

    # ---------------------------------------------------------------- running

    async def execute(self, job: JobState) -> CycleResult:
        self.job_assignments_hash = job.assignments_hash
        if not self.dry_run:
            await self.e.store.job.update(self._take_current)
        async with self._guarded():
            read, records = await self._users(job)
            if self.out_of_time:
                await self._hand_on()
                return self._result(records, continuing=True)
            await self._sync_groups(read, records, job)
            if not self.dry_run:
                self._log_orphans(read.orphans)
                await self._finish(read, self.staged)
            return self._result(records)

    async def _hand_on(self) -> None:
        """The budget is spent: what was done is committed and the cycle is marked continuing, so
        that its next invocation resumes it (nothing is lost: every create left its intent and
        every done object its link; nothing is repeated: done objects plan as in step)."""
        log.info("cycle %s handing on after %d object(s) (invocation %d)", self.cycle_id, self.state.processed,
                 self.state.invocations)  # fmt: skip
        self.state.continuing = True
        await self._checkpoint()

    def _take_current(self, job: JobState) -> None:
        job.current = self.state  # fences out any earlier holder's checkpoints (see _fenced)

    async def _users(self, job: JobState) -> tuple[ReadResult, list[Record]]:
        """The user pass: incremental (the affected users), or full, page by page."""
        if self.kind is not CycleKind.INITIAL:
            try:
                read = await Reading(self.e).incremental(job)
            except (DeltaExpired, NeedsFullRead) as exc:
                log.warning("%s", exc)
                self.kind = self.state.kind = CycleKind.INITIAL
            else:
                return read, await self._run(read, job)
        return await self._run_full(job)

    async def _run_full(self, job: JobState) -> tuple[ReadResult, list[Record]]:
        """A full cycle holds one page of users at a time: each page is planned and its creates
        and updates exported at once; disables and deletes wait for the end of the listing,
        where the deletion guards count them all. The budget is checked between pages; a cycle
        handed on goes on with the listing where it stood (shared/engine/resume.py)."""
        reading = Reading(self.e)
        # The license list (Admin API: the account, then its licenses) depends on none of the
        # reads before the first page, so it is read alongside them instead of after them.
        async with started(self.e.license_map) as licensing:
            ctx = await reading.full_context(self.state.delta_links if all(self.state.delta_links) else None)
            self.state.delta_links = ctx.delta_links
            self.state.total = len(ctx.wanted)
            self.licenses = await licensing if ctx.wanted else None
        listing, names = await self._listing(ctx)
        deferred: list[tuple[Plan, Candidate]] = []
        records: list[Record] = []
        try:
            listed = await self._list_users(reading, ctx, listing, names, deferred, records)
        except CursorFailed as exc:
            log.warning("cycle %s: %s; the users are listed again from the first page", self.cycle_id, exc)
            listing.restart()
            ctx.seen.clear()
            names.clear()
            listed = await self._list_users(reading, ctx, listing, names, deferred, records)
        if listed:
            records += await self._full_page(await reading.full_missing(ctx), ctx, names, deferred)
            if not self._time_is_up():
                decisions = self._gate(deferred, job, ctx.stored.managed_count())
                records += await self._apply(deferred, decisions, set(ctx.escrow))
        if self.out_of_time:
            await self._save_listing(listing)
        return ctx.result(), records

    async def _listing(self, ctx: FullRead) -> tuple[ListingResume, dict[str, str]]:
        """The pages of /users the cycle's earlier invocations finished (none for a new cycle),
        their users marked seen in `ctx` (ListingResume.prepare), and the names they took."""
        if not self.resumed:
            return ListingResume(self.cycle_id, self.e.config_hash), {}
        listing = await ListingResume.load(self.e.store, self.cycle_id, self.e.config_hash)
        names = listing.prepare(ctx)
        if listing.earlier:
            log.info("cycle %s goes on with the users listing after page %d (%d users listed before, %d to read "
                     "again by id)", self.cycle_id, len(listing.earlier), listing.earlier[-1].listed,
                     listing.again)  # fmt: skip
        return listing, names

    async def _list_users(
        self,
        reading: Reading,
        ctx: FullRead,
        listing: ListingResume,
        names: dict[str, str],
        deferred: list[tuple[Plan, Candidate]],
        records: list[Record],
    ) -> bool:
        """The /users listing from where the cycle stands, page by page; False when the budget
        ran out before its end. A page counts as finished only when the budget did not run out
        during its exports (otherwise some may not have started: it is read again)."""
        # The next page of users is read from Graph while this one is exported: GoTo's rate,
        # not Graph's latency, sets the pace.
        async with contextlib.aclosing(read_ahead(reading.full_pages(ctx, listing.position))) as pages:
            async for page in pages:
                before = len(deferred)
                records += await self._full_page(page.candidates, ctx, names, deferred)
                if not self.out_of_time and not self.dry_run:
                    listing.finished(page, {p.user.id for p, _ in deferred[before:]})
                if self._time_is_up():
                    return False
        return True

    async def _save_listing(self, listing: ListingResume) -> None:
        """Where the listing stands, saved as the cycle is handed on. Not saving it is no harm
        (the next invocation goes on from an earlier page, or the first): a failure is logged."""
        if self.dry_run:
            return
        if self.heartbeat is not None:
            self.heartbeat.check()
        try:
            saved = await listing.save(self.e.store)
        except StoreError as exc:
            log.warning("cycle %s: where the users listing stands was not saved: %s", self.cycle_id, exc)
            return
        log.info("cycle %s saved %d page(s) of the users listing", self.cycle_id, saved)

    async def _full_page(
        self,
        candidates: list[Candidate],
        ctx: FullRead,
        names: dict[str, str],
        deferred: list[tuple[Plan, Candidate]],
    ) -> list[Record]:
        plans = [(self._plan_one(c), c) for c in candidates]
        await self._refuse_clashes([p for p, _ in plans], names)
        deferred += [(p, c) for p, c in plans if p.kind.deprovisions]
        now = [(p, c) for p, c in plans if not p.kind.deprovisions]
        return await self._apply(now, [PROCEED if p.kind.writes else NOTHING for p, _ in now], set(ctx.escrow))

    async def execute_targeted(
        self,
        user_ids: list[str],
        job: JobState | None = None,
        *,
        trust_links: bool = False,
        changed_before: Mapping[str, datetime] | None = None,
        reads: contextlib.AbstractAsyncContextManager[Any] | None = None,
    ) -> CycleResult:
        job = job if job is not None else await self.e.store.job.get()
        self.job_assignments_hash = job.assignments_hash
        async with self._guarded():
            reading = Reading(self.e)
            async with reads or contextlib.nullcontext():
                read = await reading.targeted(user_ids, job, trust_links=trust_links, changed_before=changed_before)
            read.managed = job.managed_users
            records = await self._run(read, job)
            if self.staged and not self.dry_run:
                await self._hold_deletions(self.staged)
            return replace(self._result(records), coalesced=read.coalesced)

    async def _run(self, read: ReadResult, job: JobState) -> list[Record]:
        """Plan every candidate, gate the whole plan, then apply it."""
        plans = await self._plan(read, job)
        return await self._apply(plans, self._gate(plans, job, read.managed), read.escrowed)

    async def _apply(
        self, plans: list[tuple[Plan, Candidate]], decisions: list[Decision], escrowed: set[str]
    ) -> list[Record]:
        """Export and commit each object (a dry run only counts); the objects whose link write
        lost a race are read and decided once more. The records are kept for dry and targeted
        runs (reports, on-demand answers), not for cycles: a cycle holds no more than a page."""
        if self.dry_run:
            records = [Record(plan, decision) for (plan, _), decision in zip(plans, decisions, strict=True)]
            for record in records:
                self._count(record.log_action.value, record.log_status.value)
            return records
        records = await self._export_all(plans, decisions, escrowed)
        await self.commit.flush()
        if self.commit.conflicts:
            conflicts, self.commit.conflicts = self.commit.conflicts, []
            await self._redecide(conflicts)
        return records if self.kind is CycleKind.TARGETED else []

    async def _redecide(self, user_ids: list[str]) -> None:
        """Objects whose link write lost a race: another run wrote after our read. Read each
        again and run it once more (a targeted run: it needs no lease), GoTo's user read rather
        than taken from the link: which of the two writes GoTo kept is not known."""
        ids = sorted(set(user_ids))
        log.info("re-deciding %d object(s) whose link changed under this run", len(ids))
        again = _Run(self.e, self.cycle_id, CycleKind.TARGETED, False, self.initiated_by, None, None, None)
        result = await again.execute_targeted(ids)
        for record in result.plans:
            self._count(record.log_action.value, record.log_status.value)

    async def _sync_groups(self, read: ReadResult, records: list[Record], job: JobState) -> None:
        """Users first, then groups and memberships (Entra's order for group-capable apps), on
        the same gate and committer. A quiet incremental cycle leaves groups alone."""
        groups = read.groups
        if not self.e.settings.provision_groups or groups is None:
            return
        users_changed = any(r.exported and not r.failed for r in records)
        if self.kind is not CycleKind.INITIAL and not groups.changed and not users_changed:
            return
        await self.commit.flush()  # the users' links are batched: groups read them
        if not groups.assigned <= set(groups.members):
            members, listed = await assigned_members(self.e, groups.assigned - set(groups.members))
            groups.members.update(members)
            groups.listed.update(listed)
        result = await sync_groups(
            self.e,
            provision_groups=True,
            cycle_id=self.cycle_id,
            initiated_by=self.initiated_by,
            dry_run=self.dry_run,
            log_unchanged=self.kind is CycleKind.INITIAL,
            assignments=read.snapshot,
            members={gid: groups.members[gid] for gid in groups.assigned},
            job=job,
            commit=self.commit,
            held=self.held,
        )
        self.group_records = result.records
        for record in result.records:
            self._count(record.log_action.value, record.log_status.value)
        self.attempted += result.attempted
        self.failed += result.failed
        if result.auth_error is not None:
            raise result.auth_error  # _guarded quarantines the job and flushes the logs

    # ---------------------------------------------------------------- deciding

    async def _plan(self, read: ReadResult, job: JobState) -> list[tuple[Plan, Candidate]]:
        """Every candidate's plan, then the whole-plan check: no userName twice."""
        if read.candidates:
            self.licenses = await self.e.license_map()
        plans = [(self._plan_one(c), c) for c in read.candidates]
        self.state.total = len(plans)
        await self._refuse_duplicates([p for p, _ in plans], read.taken_names)
        return plans

    def _plan_one(self, cand: Candidate) -> Plan:
        if cand.error is not None:
            return failed_read(cand.user, cand.link, *cand.error)
        return plan_user(cand.user, cand.link, cand.match, self.e.mapping, self.e.policy, self.licenses)

    async def _refuse_clashes(self, plans: list[Plan], names: dict[str, str]) -> None:
        """A full cycle's page: a userName planned for a user that an earlier page planned for
        another refuses the cycle before this page is exported (`names`: what was planned)."""
        page: dict[str, str] = {}
        for p in plans:
            name = p.values.get("userName")
            if p.kind in (Kind.CREATE, Kind.UPDATE, Kind.ENABLE, Kind.NONE) and isinstance(name, str) and name:
                page.setdefault(name.casefold(), p.user.id)
        await self._refuse_duplicates(plans, {k: v for k, v in names.items() if k not in page or page[k] != v})
        names.update(page)

    async def _refuse_duplicates(self, plans: list[Plan], taken: dict[str, str]) -> None:
        """A plan that would give two users the same userName is refused as a whole."""
        wanted = [
            (p.user.id, str(p.values.get("userName")))
            for p in plans
            if p.kind in (Kind.CREATE, Kind.UPDATE, Kind.ENABLE, Kind.NONE) and p.values.get("userName")
        ]
        clashes = duplicate_names(wanted, taken)
        if not clashes:
            return
        reason = f"{DUPLICATE_QUARANTINE}: the mapping gives the same userName to more than one user: {clashes}"
        if not self.dry_run:
            await self._quarantine(DUPLICATE_QUARANTINE, reason.partition(": ")[2])
        raise PlanRefused(f"nothing was written: {reason}; fix the mapping, then restart")

    def _gate(self, plans: list[tuple[Plan, Candidate]], job: JobState, managed: int | None) -> list[Decision]:
        """The deletion guards over the whole run, then one decision per plan."""
        base = managed if managed is not None else job.managed_users
        deprovisions = sum(1 for p, _ in plans if p.kind.deprovisions)
        held = held_reason(deprovisions, job, self.e.guard, base)
        self.held = held or ""
        return [
            decide(writes=p.kind.writes, deprovisions=p.kind.deprovisions, plan_reason=p.reason, held=held)
            for p, _ in plans
        ]

    # ---------------------------------------------------------------- exporting

    async def _export_all(
        self, plans: list[tuple[Plan, Candidate]], decisions: list[Decision], escrowed: set[str]
    ) -> list[Record]:
        sem = asyncio.Semaphore(self._export_width())
        abort = asyncio.Event()
        records: list[Record | None] = [None] * len(plans)

        async def one(i: int) -> None:
            async with sem:
                if abort.is_set() or self._time_is_up():
                    return
                if self.heartbeat is not None:
                    self.heartbeat.check()  # a lost lease stops every export not yet started
                plan, cand = plans[i]
                records[i] = await self._process(plan, cand, decisions[i], plan.user.id in escrowed)
                if self.stop_after is not None and self.exports_done >= self.stop_after:
                    abort.set()

        tasks = [asyncio.create_task(one(i)) for i in range(len(plans))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        if abort.is_set():
            raise CycleInterrupted(f"cycle {self.cycle_id} stopped after {self.exports_done} exports")
        return [r for r in records if r is not None]

    def _export_width(self) -> int:
        """Objects exported at once: CYCLE_CONCURRENCY per GoTo API an export waits on. With
        licenses managed, an object takes a SCIM slot and then an Admin API slot; each API has its
        own budget, and twice the objects keep both streams busy side by side instead of each
        waiting its turn behind the other. CYCLE_CONCURRENCY=1 stays one object at a time, in order."""
        width = self.e.settings.cycle_concurrency
        return width * 2 if self.licenses is not None and width > 1 else width

    async def _process(self, plan: Plan, cand: Candidate, decision: Decision, escrowed: bool) -> Record:
        t0 = time.perf_counter()
        decision, base, outcome = await self._export_one(plan, cand, decision)
        extra: tuple[ProvisioningStep, ...] = ()
        if outcome is not None and _link_gone(plan, cand, outcome):
            extra = (_gone_step(plan, outcome),)
            plan, cand, decision, base, outcome = await self._decide_again(cand, base)
        record = Record(plan, decision, outcome)
        ctx = Context(
            cycle_id=self.cycle_id,
            run=self.kind,
            initiated_by=self.initiated_by,
            read_at=cand.read_at,
            base=base,
            matched=cand.match.target,
            escrow=cand.escrow,
            escrowed=escrowed,
            confirm_after_s=float(self.e.settings.deletion_confirmation_seconds),
            duration_ms=int((time.perf_counter() - t0) * 1000),
            extra_steps=extra,
        )
        effects = user_effects(record, ctx)
        await self.commit.apply(effects)
        self._tally(effects)
        if outcome is not None and isinstance(outcome.error, AuthError):
            raise outcome.error
        await self._after_object()
        return record

    async def _export_one(
        self, plan: Plan, cand: Candidate, decision: Decision
    ) -> tuple[Decision, Link | None, Outcome | None]:
        """The last reads before the write, then the write: (decision, the link row the link
        write will be conditional on, the export's outcome or None when nothing was exported)."""
        decision, base = await self._before_export(plan, cand, decision)
        if not decision.export:
            return decision, base, None
        set_licenses = self.e.set_licenses if self.licenses is not None else None
        rebuilt = cand.match.rebuilt
        outcome = await export(plan, self.e.scim, cand.match.target, set_licenses, self._owner_of, rebuilt=rebuilt)
        self.exports_done += 1
        return decision, base, outcome

    async def _decide_again(
        self, cand: Candidate, base: Link | None
    ) -> tuple[Plan, Candidate, Decision, Link | None, Outcome | None]:
        """The GoTo user that the link stood for answered 404 (deleted in GoTo by hand): the
        user is looked up in GoTo afresh, the link's user read this time, and decided and
        exported once more (a create, or a match by attributes). The 404 alone never
        deprovisions anyone: the user's scope is the one already read."""
        link = base or cand.link
        matcher = RemoteMatcher(self.e.scim, self.e.matching_values, Owners(()), self._owner_of)
        cand = replace(cand, link=link, match=await matcher.match(cand.user, link))
        plan = self._plan_one(cand)
        kind, held = plan.kind, self.held or None
        gate = decide(writes=kind.writes, deprovisions=kind.deprovisions, plan_reason=plan.reason, held=held)
        decision, base, outcome = await self._export_one(plan, cand, gate)
        return plan, cand, decision, base, outcome

    async def _before_export(self, plan: Plan, cand: Candidate, decision: Decision) -> tuple[Decision, Link | None]:
        """The last reads before a write: a cycle's read may be older than a webhook's write that
        landed meanwhile (the stale-write guard); a create records its intent first. Returns the
        decision and the link row (with its ETag) the object's link write will be conditional on."""
        if not decision.export:
            return decision, cand.link
        if plan.kind is Kind.CREATE:
            written = await self.commit.intent(_intent(plan, cand))
            if written is None:
                return replace(STALE, reason="another run linked this user meanwhile; the next run decides"), cand.link
            return decision, written
        if self.kind is CycleKind.TARGETED:
            current = cand.link  # read a moment ago; the conditional write catches a race
        else:
            current = await self.e.store.links.get(plan.user.id, "user")
            if is_stale(cand.link, current, cand.read_at):
                return STALE, current
        return await self._seat_intent(plan, decision, current)

    async def _seat_intent(self, plan: Plan, decision: Decision, current: Link | None) -> tuple[Decision, Link | None]:
        """A seat change on a linked user records the seats it is about to set before the Admin
        API call, as a create records its intent, so that a crash in between is not forgotten."""
        if plan.licenses is None or current is None or not current.live:
            return decision, current
        written = await self.commit.intent(replace(current, seats_pending=list(plan.licenses[1])))
        if written is None:
            lost = replace(STALE, reason="another run changed this user's link meanwhile; the next run decides")
            return lost, current
        return decision, written

    async def _owner_of(self, goto_id: str) -> str | None:
        return await self.e.store.links.owner_of(goto_id)

    def _tally(self, effects: Effects) -> None:
        self._count(effects.action, effects.status)
        self.attempted += effects.attempted
        self.failed += effects.failed
        self.state.processed += 1

    async def _after_object(self) -> None:
        now = time.monotonic()
        due = self.state.processed % CHECKPOINT_EVERY == 0 or now - self.last_checkpoint >= CHECKPOINT_SECONDS
        if due and not self.checkpointing.locked():
            # One checkpoint at a time; exports running meanwhile are covered by the next one.
            async with self.checkpointing:
                self.last_checkpoint = now
                await self._checkpoint()

    def _log_orphans(self, orphans: list[Orphan]) -> None:
        entries = []
        for orphan in orphans:
            self._count(Action.OTHER.value, Status.WARNING.value)
            entries.append(
                ProvisioningLogEntry(
                    cycle_id=self.cycle_id,
                    change_id=str(uuid.uuid4()),
                    action=Action.OTHER,
                    status=Status.WARNING,
                    source_id=orphan.entra_id,
                    source_name=orphan.entra_id,
                    target_id=orphan.goto_id,
                    target_name=orphan.user_name,
                    initiated_by=self.initiated_by,
                    reason=f"GoTo user {orphan.user_name} ({orphan.goto_id}) {orphan.reason}; it is left alone: "
                    "remove it in GoTo, or assign the user so that the next cycle adopts it",
                    error_code="OrphanedTargetEntry",
                )
            )
        self.commit.add_logs(entries)

    def _count(self, action: str, status: str) -> None:
        self.counts[f"{action}/{status}"] += 1
        if not self.dry_run:
            telemetry.metrics().record_action(action, status)
        self.state.counts = dict(self.counts)
        if self.on_progress is not None:
            self.on_progress(self.state)

    # ---------------------------------------------------------------- job state

    @contextlib.asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        """GoTo refusing the credentials quarantines the job (Entra's EncounteredQuarantineException);
        whatever happens, the effects computed so far are committed (unless the lease is lost:
        then another holder owns the job and nothing more is written)."""
        try:
            yield
        except AuthError as exc:
            await self._quarantine("EncounteredQuarantineException", _credentials_problem(exc))
            raise
        except (GraphReadError, PlanRefused) as exc:
            await self._note_stop(exc)
            raise
        finally:
            if self.heartbeat is None or not self.heartbeat.lost.is_set():
                await self.commit.flush()

    def _fenced(self, job: JobState) -> None:
        """Job writes of a cycle are refused once another cycle has taken the job over."""
        if self.heartbeat is not None and job.current is not None and job.current.cycle_id != self.cycle_id:
            raise LeaseLost(f"cycle {job.current.cycle_id} took the job over from cycle {self.cycle_id}")

    async def _checkpoint(self) -> None:
        if self.dry_run:
            return
        await self.commit.flush()
        if self.kind is CycleKind.TARGETED:
            return  # a targeted run is not the job's cycle: it leaves the cycle status alone
        snapshot = CycleProgress(**{**self.state.__dict__})

        def mutate(job: JobState) -> None:
            self._fenced(job)
            job.current = snapshot

        await self.e.store.job.update(mutate)
        if self.heartbeat is not None:
            await self.heartbeat.renew_now()

    async def _finish(self, read: ReadResult, staged: int) -> None:
        await self.commit.flush()
        if self.heartbeat is not None:
            self.heartbeat.check()
        digest = snapshot_hash(read.snapshot)
        if digest != self.job_assignments_hash:
            await self.e.store.assignments.replace(read.snapshot)
        if read.groups is not None:
            await read.groups.save(self.e.store, self.e.settings.transitive_members)
        self.state.ended = utcnow()
        telemetry.metrics().record_cycle(self.kind.value, (self.state.ended - self.started).total_seconds())
        done = CycleProgress(**{**self.state.__dict__})
        failing = failure_quarantine(self.failed, self.attempted)
        managed = read.managed
        held = self.held

        def mutate(job: JobState) -> None:
            self._fenced(job)
            job.users_delta_link, job.groups_delta_link = read.delta_links
            job.assignments_hash = digest
            job.config_hash = self.e.config_hash  # a full cycle ran with it (or it is the first one stored)
            job.current = None
            job.last = done
            job.staged_deletes = staged
            if managed is not None:
                job.managed_users = managed
            _settle_quarantine(job, staged, held, failing, self.failed)
            job.allow_deletes_once = False
            job.last_stop, job.last_stop_at = "", None
            if failing is None:
                job.last_success = done.ended  # ran to its end with at most 40% of its writes failed

        await self.e.store.job.update(mutate)
        try:  # the console's list of last cycles; the job's own state is saved already
            await self.e.store.cycles.append(done, staged=staged)
        except StoreError as exc:
            log.warning("cycle %s not added to the cycle history: %s", self.cycle_id, exc)
        if self.kind is CycleKind.INITIAL:
            try:  # its listing's rows, and any an earlier cycle stopped before its end left
                await self.e.store.listing.purge()
            except StoreError as exc:
                log.warning("cycle %s: the saved users listing was not removed: %s", self.cycle_id, exc)
        if failing is not None:
            log.error("%s", failing)

    async def _hold_deletions(self, staged: int) -> None:
        reason = self.held

        def mutate(job: JobState) -> None:
            if not job.quarantine_reason.startswith(DELETION_QUARANTINE):
                job.quarantine_reason = f"{DELETION_QUARANTINE}: {reason}; allow deletes or fix and restart"
                job.quarantined_since = utcnow()
            job.staged_deletes = max(job.staged_deletes, staged)

        await self.e.store.job.update(mutate)

    async def _note_stop(self, exc: Exception) -> None:
        """A cycle stopped by a read error or a refused plan says so in the job's status."""
        if self.dry_run or self.kind is CycleKind.TARGETED:
            return
        what = (
            f"{type(exc).__name__}: {exc}; the cycle stopped before deciding anything, nothing was disabled or deleted"
        )

        def mutate(job: JobState) -> None:
            job.last_stop, job.last_stop_at = what, utcnow()

        with contextlib.suppress(Exception):  # the read error is what the caller must see
            await self.e.store.job.update(mutate)

    async def _quarantine(self, code: str, reason: str) -> None:
        if self.dry_run:
            return

        def mutate(job: JobState) -> None:
            job.quarantine_reason = f"{code}: {reason}"
            job.quarantined_since = job.quarantined_since or utcnow()

        await self.e.store.job.update(mutate)

    def _result(self, records: list[Record], continuing: bool = False) -> CycleResult:
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
            plans=records,
            by_action=dict(by_action),
            by_status=dict(by_status),
            staged=self.staged,
            groups=list(self.group_records),
            continuing=continuing,
        )


def _link_gone(plan: Plan, cand: Candidate, outcome: Outcome) -> bool:
    """Whether a write to the GoTo user rebuilt from the link met 404: the user is gone."""
    return (
        cand.match.rebuilt
        and plan.kind in (Kind.UPDATE, Kind.ENABLE, Kind.DISABLE)
        and not outcome.ok
        and not outcome.partial
        and isinstance(outcome.error, NotFound)
    )


def _gone_step(plan: Plan, outcome: Outcome) -> ProvisioningStep:
    return ProvisioningStep(
        "EntryExportError",
        StepType.EXPORT,
        Status.FAILURE,
        f"GoTo user {plan.target_id} no longer exists ({outcome.error}): it was deleted outside gotosync; "
        "the user was looked up again and decided afresh",
        {"code": outcome.error.code if outcome.error is not None else ""},
    )


def _intent(plan: Plan, cand: Candidate) -> Link:
    """The create intent: the Entra id and the values about to be sent (the userName among
    them), written before the POST so that a crash after it leaves a trace."""
    return Link(
        entra_id=plan.user.id,
        goto_id="",
        matched_by="intent",
        exported=dict(plan.values),
        active=True,
        applied_at=cand.read_at,
        pending=True,
        etag=cand.link.etag if cand.link is not None else None,
    )


def _credentials_problem(exc: AuthError) -> str:
    if isinstance(exc, CredentialStoreError):
        return f"the GoTo credentials could not be read from their store: {exc}"
    return f"GoTo refused the credentials: {exc}"


def _settle_quarantine(job: JobState, staged: int, guard_reason: str, failing: str | None, failures: int) -> None:
    """The quarantine a finished cycle leaves: raised by its staged deletions or its failure
    share; lifted when what raised it is gone."""
    reason = job.quarantine_reason
    if staged and not reason.startswith(DELETION_QUARANTINE):
        job.quarantine_reason = f"{DELETION_QUARANTINE}: {guard_reason}; allow deletes or fix and restart"
        job.quarantined_since = utcnow()
    elif not staged and job.allow_deletes_once and reason.startswith(DELETION_QUARANTINE):
        job.quarantine_reason, job.quarantined_since = "", None  # the admin allowed the deletes and they were done
    elif failing is not None and not reason.startswith(DELETION_QUARANTINE):
        if not reason.startswith(FAILURE_QUARANTINE):
            job.quarantined_since = utcnow()
        job.quarantine_reason = failing
    elif reason.startswith(FAILURE_QUARANTINE) and failing is None:
        job.quarantine_reason, job.quarantined_since = "", None  # the failures are fixed
    elif reason.startswith(DUPLICATE_QUARANTINE):
        job.quarantine_reason, job.quarantined_since = "", None  # the plan was accepted this time
    elif reason.startswith("EncounteredQuarantineException") and failures == 0:
        job.quarantine_reason, job.quarantined_since = "", None  # the credentials work again


class CycleInterrupted(GotosyncError):
    """The cycle stopped before its end (a function timeout, or `stop_after` in tests)."""

    code = "CycleInterrupted"
