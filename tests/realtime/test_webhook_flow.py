"""Changes reach GoTo through the webhook path alone: Graph emulator -> subscription -> intake
(real HTTP, Functions host stand-in) -> Storage queue (Azurite) -> worker -> pipeline -> GoTo.
No sync cycle runs after the initial one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from shared.model import Initiator, Link, utcnow
from shared.realtime.services import services_for
from tests.realtime.conftest import Live

VISIBLE = {"active": "honour", "extension_attrs": "store"}


async def provisioned(make_live: Callable[..., Any], **kwargs: Any) -> Live:
    live = await make_live(goto=VISIBLE, **kwargs)
    await live.world.cycle()
    await live.keeper_pass()
    return live


def goto_user(live: Live, user_id: str) -> dict[str, Any] | None:
    return live.world.goto.user_by_username(live.world.upn(user_id))


async def test_keeper_creates_the_users_and_group_member_subscriptions_through_the_handshake(
    make_live: Callable[..., Any],
) -> None:
    live = await make_live(users=6, assign=2)
    group = live.world.graph.create_group("GoTo Users")
    live.world.graph.assign(group, "MeetingOrganizer")
    await live.keeper_pass()
    resources = sorted(s["resource"] for s in live.world.graph.subscriptions())
    assert resources == sorted(["/users", f"/groups/{group}/members"])
    store = await live.store()
    stored = {s.resource: s for s in await store.subscriptions.all()}
    assert set(stored) == set(resources)
    assert stored[f"/groups/{group}/members"].delta_link
    assert all(len(s.client_state) >= 64 for s in stored.values())


async def test_user_blocked_in_entra_is_disabled_in_goto_through_the_webhook_alone(
    make_live: Callable[..., Any],
) -> None:
    live = await provisioned(make_live, users=5, assign=5)
    uid = live.world.assigned_user_ids()[0]
    live.world.graph.block_user(uid)
    assert await live.settle() >= 1
    assert goto_user(live, uid)["active"] is False  # type: ignore[index]
    store = await live.store()
    entry = (await store.logs.query(user=uid))[0]
    assert entry.initiated_by is Initiator.WEBHOOK and entry.action.value == "Disable"


async def test_renamed_user_is_updated_through_the_webhook(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, users=4, assign=4)
    uid = live.world.assigned_user_ids()[1]
    live.world.graph.update_user(uid, displayName="Pushed Name")
    await live.settle()
    assert goto_user(live, uid)["displayName"] == "Pushed Name"  # type: ignore[index]


async def test_user_added_to_an_assigned_group_is_created(make_live: Callable[..., Any]) -> None:
    live = await make_live(users=8, assign=0, goto=VISIBLE)
    graph = live.world.graph
    ids = list(graph.tenant.users)
    group = graph.create_group("GoTo Meeting")
    graph.add_member(group, ids[0])
    graph.assign(group, "MeetingOrganizer")
    await live.world.cycle()
    await live.keeper_pass()
    graph.add_member(group, ids[3])
    await live.settle()
    assert goto_user(live, ids[3]) is not None
    graph.remove_member(group, ids[0])
    await live.settle()
    assert goto_user(live, ids[0])["active"] is False  # type: ignore[index]


async def test_duplicate_and_out_of_order_notifications_end_in_the_latest_state(
    make_live: Callable[..., Any],
) -> None:
    live = await provisioned(make_live, users=3, assign=3)
    uid = live.world.assigned_user_ids()[0]
    graph = live.world.graph
    graph.update_user(uid, displayName="First")
    graph.update_user(uid, displayName="Second")
    graph.block_user(uid)
    graph.unblock_user(uid)
    await live.world.graph.wait_deliveries_idle_async(timeout=20)
    queue = await services_for(live.settings).queue()
    messages = await queue.receive(max_messages=32, visibility_timeout=1)
    # Deliver them again, newest first: every one is only a ping.
    for m in reversed(messages):
        await queue.send(m.body)
        await queue.delete(m)
    for m in messages:
        await queue.send(m.body)
    await live.host.drain()
    target = goto_user(live, uid)
    assert target is not None and target["displayName"] == "Second" and target["active"] is True


async def test_direct_assignment_is_caught_by_the_assignment_watch(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, users=6, assign=2)
    newcomer = list(live.world.graph.tenant.users)[5]
    live.world.graph.assign(newcomer, "WebinarOrganizer")
    await live.host.invoke("assignment_watch")
    await live.host.drain()
    assert goto_user(live, newcomer) is not None
    gone = live.world.assigned_user_ids()[0]
    live.world.graph.unassign(gone)
    await live.host.invoke("assignment_watch")
    await live.host.drain()
    assert goto_user(live, gone)["active"] is False  # type: ignore[index]
    async with live.world.runtime() as rt:
        quiet = await rt.engine.run_cycle()
    assert quiet.by_action == {}  # the cycle after finds nothing left to do


async def test_keeper_renews_before_expiry_and_recreates_a_removed_subscription(
    make_live: Callable[..., Any],
) -> None:
    live = await provisioned(make_live, users=3, assign=3)
    store = await live.store()
    (users_sub,) = [s for s in await store.subscriptions.all() if s.resource == "/users"]
    keeper = await services_for(live.settings).keeper()
    # Move Graph's clock (and ours, for the keeper) to two days before the expiry.
    offset = (users_sub.expires - utcnow()) - timedelta(days=2)
    live.world.graph.advance_clock(offset.total_seconds())
    report = await keeper.ensure(now=utcnow() + offset)
    assert report.renewed == ["/users"]
    renewed = await store.subscriptions.get(users_sub.id)
    assert renewed is not None and renewed.expires > users_sub.expires
    live.world.graph.remove_subscription(users_sub.id)
    offset2 = (renewed.expires - utcnow()) - timedelta(days=1)
    live.world.graph.advance_clock((offset2 - offset).total_seconds())
    report = await keeper.ensure(now=utcnow() + offset2)
    assert report.recreated == ["/users"]
    assert [s["resource"] for s in live.world.graph.subscriptions()] == ["/users"]
    (fresh,) = await store.subscriptions.all()
    assert fresh.id != users_sub.id
    uid = live.world.assigned_user_ids()[0]
    live.world.graph.block_user(uid)
    await live.settle()
    assert goto_user(live, uid)["active"] is False  # type: ignore[index]


async def test_reauthorization_required_is_handled_and_deliveries_resume(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, users=3, assign=3)
    store = await live.store()
    (users_sub,) = await store.subscriptions.all()
    live.world.graph.send_lifecycle_event(users_sub.id, "reauthorizationRequired")
    uid = live.world.assigned_user_ids()[2]
    live.world.graph.update_user(uid, displayName="After Reauth")  # held by Graph until reauthorized
    await live.settle()  # the lifecycle message: reauthorize, then a catch-up cycle
    await live.settle()  # the held notification, now delivered
    assert goto_user(live, uid)["displayName"] == "After Reauth"  # type: ignore[index]


async def test_stale_cycle_read_loses_to_a_newer_webhook_write(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, users=3, assign=3)
    uid = live.world.assigned_user_ids()[0]
    store = await live.store()
    link = await store.links.get(uid)
    assert link is not None
    # A webhook applied a read taken "later" than any read the next cycle can take.
    newer = Link(**{**link.__dict__, "applied_at": utcnow() + timedelta(hours=1), "etag": None})
    await store.links.put(newer)
    live.world.graph.update_user(uid, displayName="Stale Read")
    live.world.goto.counters.reset()
    result = await live.world.cycle()
    assert live.world.goto.counters.writes() == 0
    assert result.by_action == {"Other": 1}
    entry = (await store.logs.query(user=uid))[0]
    assert "newer read" in entry.reason


async def test_poison_message_ends_as_a_logged_failure(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, users=2, assign=2)
    queue = await services_for(live.settings).queue()
    await queue.send({"v": 1, "items": "not a list"})
    await live.host.drain()
    store = await live.store()
    failures = await store.logs.query(status=None)
    assert any(e.status.value == "Failure" and "malformed" in e.reason for e in failures)
    assert await queue.length() == 0


async def test_past_the_group_limit_one_groups_subscription_replaces_per_group_ones(
    make_live: Callable[..., Any], monkeypatch: Any
) -> None:
    live = await make_live(users=6, assign=0, goto=VISIBLE)
    graph = live.world.graph
    ids = list(graph.tenant.users)
    groups = [graph.create_group(f"GoTo {i}") for i in range(3)]
    for i, gid in enumerate(groups):
        graph.add_member(gid, ids[i])
        graph.assign(gid, "MeetingOrganizer")
    monkeypatch.setenv("SUBSCRIPTION_GROUP_LIMIT", "2")
    await live.world.cycle()
    await live.keeper_pass()
    assert sorted(s["resource"] for s in graph.subscriptions()) == ["/groups", "/users"]
    graph.add_member(groups[1], ids[4])  # the fallback syncs the group's current members
    await live.settle()
    assert goto_user(live, ids[4]) is not None


async def test_a_member_added_to_an_assigned_group_joins_its_goto_group_without_a_cycle(
    make_live: Callable[..., Any],
) -> None:
    live = await make_live(users=8, assign=0, goto=VISIBLE, settings={"provision_groups": True})
    graph, goto = live.world.graph, live.world.goto
    ids = list(graph.tenant.users)
    group = graph.create_group("GoTo Sales")
    for uid in ids[:2]:
        graph.add_member(group, uid)
    graph.assign(group, "MeetingOrganizer")
    await live.world.cycle(settings={"provision_groups": True})
    await live.keeper_pass()
    graph.add_member(group, ids[5])
    await live.settle()  # the notification reaches the worker; no cycle runs
    joined = goto_user(live, ids[5])
    sales = goto.group_by_name("GoTo Sales")
    assert joined is not None and sales is not None
    assert joined["key"] in {m["value"] for m in sales["members"]}
    graph.remove_member(group, ids[0])
    await live.settle()
    sales = goto.group_by_name("GoTo Sales")
    assert sales is not None and goto_user(live, ids[0])["key"] not in {m["value"] for m in sales["members"]}  # type: ignore[index]
