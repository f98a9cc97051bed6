"""Bursts of changes through the real-time path: every request to GoTo counts (10 per second),
so a changed user costs one write, and the worker does not read or write a user again for a
notification that a newer applied read already covers (coalescing across messages)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from shared import telemetry
from shared.engine import reading
from shared.model import Status, utcnow
from shared.realtime.keeper import SubscriptionKeeper
from shared.realtime.messages import ItemKind, QueueItem, QueueMessage
from shared.realtime.worker import READS_AT_ONCE, WorkerResult, handle_message
from shared.runtime import Runtime
from tests.fixtures.world import ProvisionedWorld, World
from tests.realtime.conftest import Live

VISIBLE = {"active": "honour", "extension_attrs": "store"}
DEPARTMENT = "department"
GOTO_SCIM = "/identity/"
USER_READ = r"^/v1\.0/users/[^/]+$"  # a user's own read in Graph (not its groups)


@pytest.fixture
def no_clock_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read counts as newer than a notification as soon as it is later (the margin for clocks
    of different instances is for production; these tests run on one clock and never wait)."""
    monkeypatch.setattr(reading, "COALESCE_MARGIN", timedelta(0))


def ping(user_id: str) -> QueueMessage:
    """A notification about one user, as the intake queues it on receipt (now)."""
    return QueueMessage((QueueItem(ItemKind.USER, user_id, "updated"),), utcnow())


async def handle(rt: Runtime, message: QueueMessage) -> WorkerResult:
    return await handle_message(rt, message, SubscriptionKeeper(rt.reader.client, rt.reader, rt.store, rt.settings))


@pytest.mark.usefixtures("no_clock_margin")
async def test_notifications_that_an_applied_newer_read_covers_are_skipped_unread(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=3, assign=3)
    uid = world.assigned_user_ids()[0]
    world.graph.update_user(uid, displayName="Renamed Once")
    queued = [ping(uid) for _ in range(5)]  # Graph's notification of the change, and copies
    async with world.runtime() as rt:
        first = await handle(rt, queued[0])
        assert first.by_action == {"Update": 1} and first.coalesced == []
        world.graph.counters.reset()
        world.goto.counters.reset()
        later = [await handle(rt, message) for message in queued[1:]]
        assert all(r.coalesced == [uid] and r.by_action == {} for r in later)
        assert world.graph.counters.total() == 0 and world.goto.counters.total() == 0
        # A notification received after that read may carry a newer change: it is run.
        newer = await handle(rt, ping(uid))
    assert newer.coalesced == [] and world.graph.counters.total() > 0
    assert world.goto.counters.total() == 0  # nothing changed since: no GoTo request either


@pytest.mark.usefixtures("no_clock_margin")
async def test_messages_naming_one_user_at_once_make_one_read_and_one_write(provisioned: ProvisionedWorld) -> None:
    world = await provisioned(users=3, assign=3)
    uid = world.assigned_user_ids()[1]
    world.graph.update_user(uid, displayName="Renamed Once")
    world.graph.update_user(uid, department="Reorganised")
    queued = [ping(uid), ping(uid)]  # one notification per change
    world.graph.counters.reset()
    world.goto.counters.reset()
    async with world.runtime() as rt:
        # The host runs several messages at once (host.json queues.batchSize): both name this user.
        results = await asyncio.gather(*(handle(rt, message) for message in queued))
    assert sorted(len(r.coalesced) for r in results) == [0, 1]
    assert world.graph.counters.total(path_regex=rf"/users/{uid}$") == 1
    assert world.goto.counters.total(path_prefix=GOTO_SCIM) == 1
    user = world.goto.user_by_username(world.upn(uid))
    assert user is not None and user["displayName"] == "Renamed Once"
    assert user["enterprise"][DEPARTMENT] == "Reorganised"


async def test_a_burst_of_renames_at_gotos_rate_ends_consistent_with_one_request_per_user_and_no_failure(
    make_live: Callable[..., Any],
) -> None:
    users = 100
    # GoTo takes 10 requests per second (its documented limit) and the worker paces itself so;
    # the initial cycle runs with the limit lifted.
    live: Live = await make_live(users=users, assign=users, goto=VISIBLE, settings={"goto_rate_limit": 10.0})
    await live.world.cycle(settings={"goto_rate_limit": 1000.0})
    await live.keeper_pass()
    live.world.goto.update_switches(rate_limit=10, rate_burst=10)
    ids = live.world.assigned_user_ids()
    live.world.goto.counters.reset()
    started = utcnow()
    with telemetry.recording() as recorded:
        for i, uid in enumerate(ids):  # a reorganisation: two changes, so two notifications, each
            live.world.graph.update_user(uid, displayName=f"Burst {i}")
        for uid in ids:
            live.world.graph.update_user(uid, department="Reorganised")
        await live.settle()
    for i, uid in enumerate(ids):
        user = live.world.goto.user_by_username(live.world.upn(uid))
        assert user is not None and user["displayName"] == f"Burst {i}"
        assert user["enterprise"][DEPARTMENT] == "Reorganised"
    assert live.world.goto.counters.total(path_prefix=GOTO_SCIM) <= 1.1 * users
    assert recorded.total(telemetry.GOTO_THROTTLED) == 0
    store = await live.store()
    assert await store.logs.query(status=Status.FAILURE, since=started) == []
    assert await store.escrow.all() == []


async def test_worker_runs_take_turns_to_read_so_the_first_write_while_the_others_read(
    make_world: Callable[..., World],
) -> None:
    runs = READS_AT_ONCE + 1
    world = make_world(users=runs + 1, assign=runs)
    group = world.graph.create_group("Everyone")
    world.graph.add_member(group, world.assigned_user_ids()[0])
    world.graph.assign(group, "MeetingOrganizer")  # groups are assigned: a run reads each user's groups
    await world.cycle()
    ids = world.assigned_user_ids()
    for uid in ids:
        world.graph.update_user(uid, displayName=f"Renamed {uid[:8]}")
    # Graph holds every read of a user a moment: long enough to tell runs that read together
    # from runs that wait for a turn.
    world.graph.faults.inject("latency", USER_READ, method="GET", latency_ms=1500)
    world.graph.counters.reset()
    groups_read_when_all_users_were: list[int] = []

    def every_user_read(counters: Any) -> bool:
        if counters.total("GET", path_regex=USER_READ) < runs:
            return False
        groups_read_when_all_users_were.append(counters.total("GET", path_regex=r"/memberOf"))
        return True

    async with world.runtime() as rt:
        messages = [QueueMessage((QueueItem(ItemKind.USER, uid, "updated"),)) for uid in ids]
        handled = [asyncio.create_task(handle(rt, message)) for message in messages]  # the host runs them at once
        async with asyncio.timeout(60):
            await world.graph.counters.wait_until(every_user_read)
        results = await asyncio.gather(*handled)
    # The last run read its user only once a run before it had read its user and that user's
    # groups: READS_AT_ONCE runs read at a time, the next one when a turn is free.
    assert groups_read_when_all_users_were[0] >= 1
    assert all(r.by_action == {"Update": 1} for r in results)
    for uid in ids:
        user = world.goto.user_by_username(world.upn(uid))
        assert user is not None and user["displayName"] == f"Renamed {uid[:8]}"
