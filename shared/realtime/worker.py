"""The queue worker: turns queued notifications into pipeline runs for the objects they name.

A notification is only a ping: the worker coalesces duplicates, re-reads every object from
Graph and runs the same per-object pipeline as the cycles (logged as initiated by the webhook).
Out-of-order and repeated notifications are harmless for that reason, and because an export is
dropped when the link shows a newer read was already applied.

Coalescing across messages: a burst reaches the worker as many messages naming the same users
(Graph sends a notification per change; the assignment watch adds its own). A user whose link
already carries a read taken after the message was received is skipped unread (counted as
coalesced), and the invocations one process runs at once never work on one user together: a
message naming a user that another invocation is running waits for that run, whose link write
then usually makes it a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared import telemetry
from shared.engine.cycle import CycleNotRun
from shared.engine.groups import apply_member_changes
from shared.entra.reader import DeltaExpired
from shared.model import Action, Initiator, ProvisioningLogEntry, Status, utcnow
from shared.realtime.keeper import SubscriptionKeeper
from shared.realtime.messages import QueueMessage, parse_message
from shared.runtime import Runtime

log = logging.getLogger("gotosync.worker")

MAX_DEQUEUE = 5  # host.json queues.maxDequeueCount: the last attempt ends as a logged failure
# Worker runs of one process that read (Graph, the links, the snapshot) at once; the others wait
# their turn. See UserRuns.
READS_AT_ONCE = 4


@dataclass
class WorkerResult:
    users: set[str] = field(default_factory=set)
    by_action: dict[str, int] = field(default_factory=dict)
    lifecycle: list[str] = field(default_factory=list)
    skipped: str = ""
    coalesced: list[str] = field(default_factory=list)  # named, but a newer read was already applied


class UserRuns:
    """The users that this process's worker invocations are running now (one per event loop:
    the host runs up to `queues.batchSize` messages at once). `hold` waits until no other run
    holds any of the given users, then holds them for its own run.

    `reading`: the runs take turns to read, READS_AT_ONCE at a time. A run reads all the users
    of its message before it writes any, so when a burst's 16 messages all read at once, none
    writes until nearly all have read, and GoTo's budget goes unused meanwhile (18 s of a
    1,000-rename burst). Taking turns, the first runs write while the later ones read, and GoTo's
    rate, not the reads, paces the burst; reads run far ahead of GoTo's 10 requests per second."""

    def __init__(self) -> None:
        self._held: dict[str, asyncio.Future[None]] = {}
        self.reading = asyncio.Semaphore(READS_AT_ONCE)

    @contextlib.asynccontextmanager
    async def hold(self, user_ids: Iterable[str]) -> AsyncIterator[None]:
        ids = set(user_ids)
        while busy := {self._held[uid] for uid in ids if uid in self._held}:
            await asyncio.wait(busy)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for uid in ids:
            self._held[uid] = done
        try:
            yield
        finally:
            for uid in ids:
                if self._held.get(uid) is done:
                    del self._held[uid]
            done.set_result(None)


_RUNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UserRuns] = weakref.WeakKeyDictionary()


def user_runs() -> UserRuns:
    """The UserRuns of the running event loop."""
    loop = asyncio.get_running_loop()
    runs = _RUNS.get(loop)
    if runs is None:
        runs = _RUNS[loop] = UserRuns()
    return runs


def parse_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a queue body as dicts (kept for the poison path, which must cope with any
    body); the worker itself parses a message once into a QueueMessage."""
    return [item.to_json() for item in parse_message(body).items]


async def handle_message(
    rt: Runtime, message: QueueMessage | dict[str, Any], keeper: SubscriptionKeeper
) -> WorkerResult:
    """One queue message (a batch of validated pings), parsed once."""
    if not isinstance(message, QueueMessage):
        message = parse_message(message)
    result = WorkerResult()
    job = await rt.store.job.get()
    if not job.enabled:
        # Provisioning is off: nothing is applied; the cycle after it is turned on catches up.
        result.skipped = "provisioning is off"
        return result
    for item in message.lifecycle:
        result.lifecycle.append(await _lifecycle(rt, keeper, item.to_json()))
    changes = {gid: await _group_changes(rt, gid, sub_id) for gid, sub_id in message.groups.items()}
    from_groups: set[str] = set()
    for joined, left in changes.values():
        from_groups |= joined | left
    users = message.users | from_groups
    result.users = users
    if users:
        since = _changed_before(message, message.users - from_groups)
        runs = user_runs()
        async with runs.hold(users):
            cycle = await rt.engine.sync_users(
                users, initiated_by=Initiator.WEBHOOK, job=job, changed_before=since, reads=runs.reading
            )
        result.by_action = dict(cycle.by_action)
        result.coalesced = list(cycle.coalesced)
        if cycle.coalesced:
            telemetry.metrics().record_coalesced(len(cycle.coalesced))
    if rt.settings.provision_groups:
        for gid, (joined, left) in sorted(changes.items()):
            if joined or left:
                await apply_member_changes(rt.engine, gid, joined, left, initiated_by=Initiator.WEBHOOK)
    if message.received_at is not None:
        telemetry.metrics().record_webhook_latency((utcnow() - message.received_at).total_seconds())
    return result


def _changed_before(message: QueueMessage, users: set[str]) -> dict[str, datetime]:
    """User id -> the time by which its change was made: the intake's receipt of the
    notification, for the users the message names itself. A group's joiners and leavers (found
    by this run's delta round) and messages without a receipt time (the assignment watch's,
    whose snapshot is stored after it queues) are always run."""
    if message.received_at is None:
        return {}
    return dict.fromkeys(users, message.received_at)


async def _group_changes(rt: Runtime, group_id: str, sub_id: str) -> tuple[set[str], set[str]]:
    """(joined, left): who joined or left the group since its last delta round (one Graph
    request), also applied to the membership table."""
    sub = await rt.store.subscriptions.get(sub_id) if sub_id else None
    if sub is None or not sub.delta_link:
        # The /groups fallback (past the per-app subscription quota) keeps no per-group link:
        # sync the current members; departures are caught by the next cycle (docs/realtime.md).
        assignment = await rt.store.assignments.get(group_id, "Group")
        if assignment is None:
            return set(), set()
        return await rt.reader.members_unless_gone(group_id, rt.settings.transitive_members), set()
    try:
        changes, next_link = await rt.reader.groups_delta(sub.delta_link)
    except DeltaExpired:
        sub.delta_link = await rt.reader.group_delta_link(group_id)
        await rt.store.subscriptions.put(sub)
        members = await rt.reader.members_unless_gone(group_id, rt.settings.transitive_members)
        if not rt.settings.transitive_members:
            await rt.store.memberships.replace(group_id, members)
        return members, set()
    joined: set[str] = set()
    left: set[str] = set()
    for change in changes.values():
        joined |= change.added
        left |= change.removed
    if not rt.settings.transitive_members:
        await rt.store.memberships.apply(group_id, joined, left)
    sub.delta_link = next_link
    await rt.store.subscriptions.put(sub)
    return joined, left


# How long a handled lifecycle event of one subscription makes its copies no-ops. Graph sends
# reauthorizationRequired again every few minutes while it wants it; a removed subscription
# never comes back, so its removal is handled once for good.
LIFECYCLE_DEDUP: dict[str, timedelta | None] = {
    "reauthorizationRequired": timedelta(minutes=5),
    "missed": timedelta(minutes=5),
    "subscriptionRemoved": None,
}


async def _lifecycle(rt: Runtime, keeper: SubscriptionKeeper, item: dict[str, Any]) -> str:
    """Reauthorize or recreate, then catch up with an incremental cycle
    (https://learn.microsoft.com/graph/change-notifications-lifecycle-events).

    Idempotent: each (subscription, event) is claimed in the table first, so replays and
    concurrent copies do nothing; a failure releases the claim for the queue's retry."""
    sub_id = str(item.get("subscriptionId", ""))
    event = str(item.get("event", ""))
    sub = await rt.store.subscriptions.get(sub_id) if sub_id else None
    if sub is None or event not in LIFECYCLE_DEDUP:
        return f"{event} ignored: no such subscription"  # already recreated, or deleted
    if not await rt.store.subscriptions.claim_event(sub.id, event, utcnow(), LIFECYCLE_DEDUP[event]):
        return f"{event} ignored: already handled"
    try:
        if event == "reauthorizationRequired":
            await keeper.reauthorize(sub)
        elif event == "subscriptionRemoved" and await keeper.recreate(sub) is None:
            return f"{event} ignored: recreated by someone else"
    except Exception:
        await rt.store.subscriptions.release_event(sub.id, event)
        raise
    try:
        await rt.engine.run_cycle(initiated_by=Initiator.WEBHOOK)
    except CycleNotRun as exc:
        log.info("catch-up cycle not run (%s): the running cycle covers the gap", exc)
    return event


async def record_poison(rt: Runtime, body: dict[str, Any], error: str) -> None:
    """The last delivery of a message failed too: log a Failure per object, escrow it, move on."""
    try:
        items = parse_items(body)
    except ValueError:
        items = []
    ids = sorted({str(i["id"]) for i in items if i.get("kind") in ("user", "group") and i.get("id")})
    cycle_id = str(uuid.uuid4())
    entries = [
        ProvisioningLogEntry(
            cycle_id=cycle_id,
            change_id=str(uuid.uuid4()),
            action=Action.OTHER,
            status=Status.FAILURE,
            source_id=oid,
            source_name=oid,
            initiated_by=Initiator.WEBHOOK,
            reason=f"notification could not be processed after {MAX_DEQUEUE} attempts: {error}"[:1000],
            error_code="InternalError",
        )
        for oid in ids
    ] or [
        ProvisioningLogEntry(
            cycle_id=cycle_id,
            change_id=str(uuid.uuid4()),
            action=Action.OTHER,
            status=Status.FAILURE,
            source_id="",
            source_name="(malformed queue message)",
            initiated_by=Initiator.WEBHOOK,
            reason=f"queue message could not be processed: {error}"[:1000],
            error_code="InternalError",
        )
    ]
    await rt.store.logs.write(entries)
    for item in items:
        if item.get("kind") == "user" and item.get("id"):
            await rt.store.escrow.record_failure(str(item["id"]), "user", "InternalError", error[:500], entries[0].at)
