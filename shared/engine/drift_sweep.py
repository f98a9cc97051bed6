"""The drift sweep: one paged listing of GoTo users compared with the links, and each difference
repaired through the pipeline's own stages (shared/engine/drift.py decides, gate.py holds the
re-disables with the deletion guards, export.py writes, effects.py and commit.py keep the link
and the log).

Costs: ⌈U/1000⌉ GoTo requests for U GoTo users, a read by id for each linked user the listing
did not show (its deletion must be confirmed by a 404, never taken from a listing), one Admin
API license listing when ROLE_LICENSES is set, ⌈L/1000⌉ link pages, and then only the repairs.
No Graph request: the expected state is what gotosync last exported (docs/drift.md).

The sweep takes the cycle lease (it never interleaves with a cycle), does nothing while
provisioning is off or a cycle is unfinished (killed, or continuing in its next invocation), and
a dry run lists the repairs and writes nothing. It works to the cycles' time budget
(CYCLE_TIME_BUDGET_SECONDS): repairs not started by then are left to the next sweep, which
finds them still different.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from shared import telemetry
from shared.engine.commit import Committer
from shared.engine.cycle import LEASE_NAME, CycleNotRun, SyncEngine
from shared.engine.drift import Observed, drift_plan, held_seats
from shared.engine.effects import Context, Record, user_effects
from shared.engine.export import Outcome, export
from shared.engine.gate import Decision, decide, held_reason
from shared.engine.guard import DELETION_QUARANTINE
from shared.engine.plan import Kind, Plan
from shared.engine.reading import GOTO_PAGE, managed_count
from shared.fanout import bounded
from shared.goto.errors import AuthError, GoToError
from shared.model import CycleKind, CycleProgress, Initiator, JobState, Link, utcnow
from shared.store import StoreError
from shared.store.lease import LeaseHeartbeat

log = logging.getLogger("gotosync.drift")

T = TypeVar("T")
R = TypeVar("R")

# The sweep takes the cycle's own lease (LEASE_NAME): a sweep and a cycle never run at once.
OWNER_PREFIX = "drift-"  # the lease's owner while a sweep holds it (shown by `gotosync status`)


@dataclass(frozen=True)
class Repair:
    """One linked user whose GoTo account drifted: the link as read (with its ETag), the repair,
    and the GoTo user it was planned against (None: deleted)."""

    link: Link
    plan: Plan
    resource: dict[str, Any] | None
    read_at: datetime


@dataclass
class DriftResult:
    sweep_id: str
    dry_run: bool
    initiated_by: Initiator
    started: datetime
    ended: datetime | None = None
    listed: int = 0  # GoTo users in the listing
    compared: int = 0  # linked users compared with GoTo
    unmanaged: int = 0  # GoTo users no link of gotosync points at: never touched, only counted
    in_step: int = 0
    gone_disabled: int = 0  # disabled users deleted in GoTo: nothing to give back
    unread: int = 0  # linked users the listing did not show and a read by id could not reach
    raced: int = 0  # repairs another run's link write overtook twice: the next sweep looks again
    out_of_budget: int = 0  # repairs not started within the time budget: the next sweep finds them again
    records: list[Record] = field(default_factory=list)

    @property
    def staged(self) -> int:
        return sum(1 for r in self.records if r.staged)

    def counts(self) -> Counter[str]:
        return Counter(f"{r.log_action.value}/{r.log_status.value}" for r in self.records)

    def summary(self) -> dict[str, Any]:
        by_action: Counter[str] = Counter(r.log_action.value for r in self.records)
        by_status: Counter[str] = Counter(r.log_status.value for r in self.records)
        ended = self.ended or utcnow()
        return {
            "sweepId": self.sweep_id,
            "kind": CycleKind.DRIFT.value,
            "dryRun": self.dry_run,
            "initiatedBy": self.initiated_by.value,
            "started": self.started.isoformat(),
            "ended": ended.isoformat(),
            "durationSeconds": round((ended - self.started).total_seconds(), 3),
            "gotoUsersListed": self.listed,
            "linkedUsersCompared": self.compared,
            "unmanagedGotoUsers": self.unmanaged,
            "inStep": self.in_step,
            "repairCount": len(self.records),
            "countsByAction": dict(sorted(by_action.items())),
            "countsByStatus": dict(sorted(by_status.items())),
            "staged": self.staged,
            "deletedWhileDisabled": self.gone_disabled,
            "unread": self.unread,
            "leftToNextSweep": self.raced,
            "outOfTimeBudget": self.out_of_budget,
        }

    def document(self) -> dict[str, Any]:
        """The summary and every repair (planned, or done with its outcome)."""
        return {**self.summary(), "repairs": [repair_document(r, executed=not self.dry_run) for r in self.records]}


def repair_document(record: Record, *, executed: bool) -> dict[str, Any]:
    plan = record.plan
    status = record.log_status.value if executed else plan.log_status.value
    return {
        "id": plan.user.id,
        "user": record.target_name or str(plan.values.get("userName", "")),
        "action": record.log_action.value,
        "kind": plan.kind.value,
        "status": status,
        "errorCode": record.error_code if executed else "",
        "reason": record.reason,
        "staged": record.staged,
        "evidence": plan.evidence,
        "target": {"id": record.target_id, "userName": record.target_name},
        "modifiedProperties": [{"attribute": p, "old": old, "new": new} for p, old, new in plan.shown_changes()],
    }


async def sweep_drift(
    engine: SyncEngine,
    *,
    dry_run: bool = False,
    initiated_by: Initiator = Initiator.TIMER,
    budget_seconds: float | None = None,
) -> DriftResult:
    """One drift sweep. Raises CycleNotRun when provisioning is off (unless a dry run), when a
    cycle holds the lease or has not finished. Repairs not started within `budget_seconds`
    (default CYCLE_TIME_BUDGET_SECONDS) are left to the next sweep."""
    job = await engine.store.job.get()
    if not dry_run and not job.enabled:
        raise CycleNotRun("provisioning is off: the drift sweep leaves GoTo alone")
    budget = engine.settings.cycle_time_budget_seconds if budget_seconds is None else budget_seconds
    sweep = _Sweep(engine, dry_run, initiated_by, budget)
    if dry_run:
        return await sweep.run(job)
    _refuse_during_cycle(job)
    ttl = engine.settings.cycle_lease_seconds
    lease = await engine.store.lease.acquire(LEASE_NAME, OWNER_PREFIX + sweep.result.sweep_id, ttl)
    if lease is None:
        raise CycleNotRun(await _holder(engine))
    try:
        async with LeaseHeartbeat(engine.store.lease, lease, ttl / 3) as heartbeat:
            sweep.heartbeat = heartbeat
            job = await engine.store.job.get()  # again, under the lease
            if not job.enabled:
                raise CycleNotRun("provisioning is off: the drift sweep leaves GoTo alone")
            _refuse_during_cycle(job)
            return await sweep.run(job)
    finally:
        with contextlib.suppress(Exception):  # an outage must not hide the sweep's own error
            await engine.store.lease.release(lease)


def _refuse_during_cycle(job: JobState) -> None:
    """A cycle that has not ended (killed, or continuing in its next invocation) holds GoTo in
    mid-change: its links are not yet what it will leave, so the sweep waits for its end."""
    current = job.current
    if current is not None and current.ended is None and not current.dry_run:
        state = f"continuing (invocation {current.invocations})" if current.continuing else "unfinished"
        raise CycleNotRun(
            f"cycle {current.cycle_id} ({current.kind.value}, {current.processed} / {current.total}) is {state}: "
            "the drift sweep runs after it ends"
        )


async def _holder(engine: SyncEngine) -> str:
    held = await engine.store.lease.get(LEASE_NAME)
    if held is None:
        return "a cycle holds the lease"
    return f"a cycle holds the lease (owner {held.owner}, expires {held.expires.isoformat(timespec='seconds')})"


class _Sweep:
    """One sweep: observe (links, GoTo listing, seats), plan, gate, export, commit; the users
    whose link another run wrote meanwhile are observed and decided once more."""

    def __init__(self, engine: SyncEngine, dry_run: bool, initiated_by: Initiator, budget: float) -> None:
        self.e = engine
        self.dry_run = dry_run
        self.result = DriftResult(str(uuid.uuid4()), dry_run, initiated_by, utcnow())
        self.heartbeat: LeaseHeartbeat | None = None
        self.commit = Committer(engine.store, batched=True, dry_run=dry_run)
        self.seats_managed = bool(engine.settings.role_licenses) and engine.admin is not None
        self.manage_active = engine.settings.goto_send_active
        self.limit = engine.settings.cycle_concurrency
        self.held: str | None = None
        self.deprovisions = 0
        self.raced: list[str] = []
        self.deadline = time.monotonic() + budget  # set at the start: the listing counts too

    async def run(self, job: JobState) -> DriftResult:
        links = await self.e.store.links.all("user")
        managed = managed_count(links)
        repairs = await self._observe(links)
        try:
            await self._carry_out(repairs, job, managed)
            if not self.dry_run:
                await self.commit.flush()
                again = sorted(set(self.raced) | set(self.commit.conflicts))
                if again:
                    await self._once_more(again, job, managed)
        finally:
            if not self.dry_run and (self.heartbeat is None or not self.heartbeat.lost.is_set()):
                await self.commit.flush()
        self.result.ended = utcnow()
        if not self.dry_run:
            await self._finish()
        return self.result

    # ---------------------------------------------------------------- observe

    async def _seats(self) -> dict[str, frozenset[str]] | None:
        if not self.seats_managed:
            return None
        assert self.e.admin is not None
        return held_seats(await self.e.admin.licenses())

    async def _observe(self, links: list[Link]) -> list[Repair]:
        """The GoTo listing, streamed against the links; linked users it did not show are read by id."""
        by_goto = {lk.goto_id: lk for lk in links if lk.live and lk.owned}
        self.result.compared = len(by_goto)
        seats = await self._seats()
        read_at = utcnow()
        repairs: list[Repair] = []
        async for resource in self.e.scim.list_users(page_size=GOTO_PAGE):
            self.result.listed += 1
            link = by_goto.pop(str(resource.get("id", "")), None)
            if link is None:
                self.result.unmanaged += 1
                continue
            self._compare(link, resource, seats, read_at, repairs)
        unseen = list(by_goto.values())
        reads = await bounded(self._read_by_id, unseen, self.limit)
        for link, (ok, resource) in zip(unseen, reads, strict=True):
            if not ok:
                self.result.unread += 1
            else:
                self._compare(link, resource, seats, utcnow(), repairs)
        return repairs

    async def _read_by_id(self, link: Link) -> tuple[bool, dict[str, Any] | None]:
        """(read, the user or None on 404). A failed read is no evidence of anything."""
        try:
            return True, await self.e.scim.get_user(link.goto_id)
        except AuthError:
            raise
        except GoToError as exc:
            log.warning("drift sweep: GoTo user %s could not be read (%s); left to the next sweep", link.goto_id, exc)
            return False, None

    def _compare(
        self,
        link: Link,
        resource: dict[str, Any] | None,
        seats: dict[str, frozenset[str]] | None,
        read_at: datetime,
        into: list[Repair],
    ) -> None:
        held = None if seats is None else seats.get(link.goto_id, frozenset())
        plan = drift_plan(link, Observed(resource, held, read_at), manage_active=self.manage_active)
        if plan is not None:
            into.append(Repair(link, plan, resource, read_at))
        elif resource is None:
            self.result.gone_disabled += 1
        else:
            self.result.in_step += 1

    # ---------------------------------------------------------------- gate, export, commit

    def _gate(self, repairs: list[Repair], job: JobState, managed: int) -> list[Decision]:
        """The deletion guards over the sweep's re-disables. The admin's one-time "allow deletes"
        is left to the next cycle, which re-reads Entra before it disables anyone."""
        self.deprovisions += sum(1 for r in repairs if r.plan.kind.deprovisions)
        if self.held is None:
            guarded = dataclasses.replace(job, allow_deletes_once=False)
            self.held = held_reason(self.deprovisions, guarded, self.e.guard, managed)
        return [
            decide(
                writes=r.plan.kind.writes,
                deprovisions=r.plan.kind.deprovisions,
                plan_reason=r.plan.reason,
                held=self.held,
            )
            for r in repairs
        ]

    async def _carry_out(self, repairs: list[Repair], job: JobState, managed: int) -> None:
        decisions = self._gate(repairs, job, managed)
        if self.dry_run:
            self.result.records += [Record(r.plan, d) for r, d in zip(repairs, decisions, strict=True)]
            return
        pairs = list(zip(repairs, decisions, strict=True))
        done = await _all_or_none(self._one, pairs, self.limit)
        self.result.records += [r for r in done if r is not None]

    async def _one(self, pair: tuple[Repair, Decision]) -> Record | None:
        repair, decision = pair
        if self.heartbeat is not None:
            self.heartbeat.check()  # a lost lease stops every export not yet started
        if decision.export and time.monotonic() > self.deadline:
            self.result.out_of_budget += 1  # still different in GoTo: the next sweep repairs it
            return None
        t0 = time.perf_counter()
        base = await self._base(repair, decision)
        if base is None:
            self.raced.append(repair.link.entra_id)
            return None
        outcome: Outcome | None = None
        if decision.export:
            setter = self.e.set_licenses if self.seats_managed else None
            outcome = await export(repair.plan, self.e.scim, repair.resource, setter, self.e.store.links.owner_of)
        record = Record(repair.plan, decision, outcome)
        await self.commit.apply(user_effects(record, self._context(repair, base, t0)))
        telemetry.metrics().record_action(record.log_action.value, record.log_status.value)
        if outcome is not None and isinstance(outcome.error, AuthError):
            raise outcome.error
        return record

    async def _base(self, repair: Repair, decision: Decision) -> Link | None:
        """The link row the repair's link write is conditional on; None when another run wrote
        the link since the sweep read it (then the user is observed again). A re-create first
        records its intent, as every create does."""
        if not decision.export:
            return repair.link
        current = await self.e.store.links.get(repair.link.entra_id, "user")
        if current is None or current.etag != repair.link.etag:
            return None
        if repair.plan.kind is not Kind.CREATE:
            return current
        return await self.commit.intent(_intent(repair))

    def _context(self, repair: Repair, base: Link, t0: float) -> Context:
        return Context(
            cycle_id=self.result.sweep_id,
            run=CycleKind.DRIFT,
            initiated_by=Initiator.DRIFT,
            # Not an Entra read: the link keeps the time of the read behind its last export.
            read_at=repair.link.applied_at or repair.read_at,
            base=base,
            matched=repair.resource,
            escrow=None,
            escrowed=False,  # an escrow entry stands for an Entra change; a repair does not settle it
            confirm_after_s=float(self.e.settings.deletion_confirmation_seconds),
            duration_ms=int((time.perf_counter() - t0) * 1000),
        )

    async def _once_more(self, entra_ids: list[str], job: JobState, managed: int) -> None:
        """Users whose link another run wrote under the sweep: read both again, decide once more;
        a second race leaves the user to the next sweep."""
        log.info("drift sweep: %d user(s) changed under the sweep; looked at again", len(entra_ids))
        self.raced = []
        self.commit.conflicts = []
        seats = await self._seats()
        repairs: list[Repair] = []
        for entra_id in entra_ids:
            link = await self.e.store.links.get(entra_id, "user")
            if link is None or not link.live or not link.owned:
                continue
            ok, resource = await self._read_by_id(link)
            if ok:
                self._compare(link, resource, seats, utcnow(), repairs)
        await self._carry_out(repairs, job, managed)
        await self.commit.flush()
        self.result.raced = len(set(self.raced) | set(self.commit.conflicts))

    async def _finish(self) -> None:
        result = self.result
        assert result.ended is not None
        telemetry.metrics().record_cycle(CycleKind.DRIFT.value, (result.ended - result.started).total_seconds())
        if result.staged:
            await self._hold(result.staged)
        progress = CycleProgress(
            cycle_id=result.sweep_id,
            kind=CycleKind.DRIFT,
            initiated_by=result.initiated_by,
            started=result.started,
            ended=result.ended,
            total=len(result.records),
            processed=len(result.records),
            counts=dict(result.counts()),
        )
        try:  # the console's list of last cycles
            await self.e.store.cycles.append(progress, staged=result.staged)
        except StoreError as exc:
            log.warning("drift sweep %s not added to the cycle history: %s", result.sweep_id, exc)

    async def _hold(self, staged: int) -> None:
        """Held re-disables quarantine the job as a cycle's held deletions do; each is escrowed,
        so the next cycle re-reads the user from Entra (allow deletes, or fix and restart)."""
        reason = self.held or ""

        def mutate(job: JobState) -> None:
            if not job.quarantine_reason.startswith(DELETION_QUARANTINE):
                job.quarantine_reason = f"{DELETION_QUARANTINE}: {reason}; allow deletes or fix and restart"
                job.quarantined_since = utcnow()
            job.staged_deletes = max(job.staged_deletes, staged)

        await self.e.store.job.update(mutate)


def _intent(repair: Repair) -> Link:
    """The create intent of a re-create, written over the link (conditionally on it) before the POST."""
    return Link(
        entra_id=repair.link.entra_id,
        goto_id="",
        matched_by="intent",
        exported=dict(repair.plan.values),
        active=True,
        applied_at=repair.link.applied_at,
        pending=True,
        etag=repair.link.etag,
    )


async def _all_or_none(fn: Callable[[T], Awaitable[R]], items: list[T], limit: int) -> list[R]:
    """fn over items, at most `limit` at once, results in order; the first error (a lost lease,
    GoTo refusing the credentials) cancels every call not yet finished."""
    sem = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with sem:
            return await fn(item)

    tasks = [asyncio.create_task(one(i)) for i in items]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
