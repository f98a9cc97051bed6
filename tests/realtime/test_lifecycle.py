"""Lifecycle notifications on the default configuration (GRAPH_LIFECYCLE_URL empty: Graph posts
them to the notification URL) lead to their action, once, however often they are replayed; the
keeper ends with exactly one subscription per resource and one record each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from shared.model import utcnow
from shared.realtime.keeper import LIFETIME, SubscriptionKeeper
from shared.realtime.services import services_for
from tests.realtime.conftest import Live

VISIBLE = {"active": "honour", "extension_attrs": "store"}


async def provisioned(make_live: Callable[..., Any], groups: int = 0) -> Live:
    live = await make_live(users=6, assign=3, goto=VISIBLE)
    graph = live.world.graph
    members = list(graph.tenant.users)[3:]
    for i in range(groups):
        gid = graph.create_group(f"GoTo {i}")
        graph.add_member(gid, members[i])
        graph.assign(gid, "MeetingOrganizer")
    await live.world.cycle()
    await live.keeper_pass()
    await live.settle()
    return live


async def records(live: Live) -> dict[str, list[str]]:
    by_resource: dict[str, list[str]] = {}
    for r in await (await live.store()).subscriptions.all():
        by_resource.setdefault(r.resource, []).append(r.id)
    return by_resource


def at_graph(live: Live) -> dict[str, list[str]]:
    by_resource: dict[str, list[str]] = {}
    for s in live.world.graph.subscriptions():
        by_resource.setdefault(s["resource"], []).append(s["id"])
    return by_resource


async def assert_one_each(live: Live) -> None:
    graph, stored = at_graph(live), await records(live)
    assert all(len(ids) == 1 for ids in graph.values()), graph
    assert stored == graph  # one record per subscription, same ids, nothing else


def delta_reads(live: Live) -> int:
    return live.world.graph.counters.total(path_regex=r"/delta")


async def users_sub(live: Live) -> Any:
    (sub,) = [s for s in await (await live.store()).subscriptions.all() if s.resource == "/users"]
    return sub


async def test_subscriptions_ask_graph_for_lifecycle_notifications_at_the_notification_url(
    make_live: Callable[..., Any],
) -> None:
    live = await provisioned(make_live)
    (sub,) = live.world.graph.subscriptions()
    assert sub["lifecycleNotificationUrl"] == sub["notificationUrl"] == live.settings.graph_notification_url
    assert live.settings.graph_lifecycle_url == ""


async def test_reauthorization_required_reauthorizes_and_catches_up(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live)
    sub = await users_sub(live)
    graph = live.world.graph
    before = delta_reads(live)
    graph.send_lifecycle_event(sub.id, "reauthorizationRequired")
    await live.settle()
    assert graph.counters.total("POST", path_regex=rf"/subscriptions/{sub.id}/reauthorize$") == 1
    assert delta_reads(live) > before  # the catch-up cycle
    assert (await users_sub(live)).id == sub.id  # still the same subscription
    await assert_one_each(live)


async def test_subscription_removed_recreates_it_and_catches_up(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, groups=1)
    sub = await users_sub(live)
    before = delta_reads(live)
    live.world.graph.send_lifecycle_event(sub.id, "subscriptionRemoved")
    await live.settle()
    fresh = await users_sub(live)
    assert fresh.id != sub.id and fresh.client_state != sub.client_state
    assert delta_reads(live) > before
    await assert_one_each(live)
    uid = live.world.assigned_user_ids()[0]
    live.world.graph.update_user(uid, displayName="Through The New One")
    await live.settle()
    assert live.world.goto.user_by_username(live.world.upn(uid))["displayName"] == "Through The New One"  # type: ignore[index]


async def test_missed_runs_a_catch_up_cycle(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live)
    sub = await users_sub(live)
    uid = live.world.assigned_user_ids()[1]
    live.world.graph.update_user(uid, displayName="Changed Unseen")
    await live.world.graph.wait_deliveries_idle_async(timeout=20)
    await (await services_for(live.settings).queue())._client.clear_messages()  # the notification is lost
    live.world.graph.send_lifecycle_event(sub.id, "missed")
    await live.settle()
    assert live.world.goto.user_by_username(live.world.upn(uid))["displayName"] == "Changed Unseen"  # type: ignore[index]
    assert (await users_sub(live)).id == sub.id
    await assert_one_each(live)


async def test_a_batch_of_different_lifecycle_events_is_taken_whole(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live)
    sub = await users_sub(live)
    documented = [
        {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": sub.expires.isoformat(),
            "tenantId": live.settings.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        for event in ("reauthorizationRequired", "missed")
    ]
    async with httpx.AsyncClient() as client:
        resp = await client.post(live.settings.graph_notification_url, json={"value": documented})
    assert resp.status_code == 202 and resp.json() == {"accepted": 2}
    await live.host.drain()
    assert live.world.graph.counters.total("POST", path_regex=r"/reauthorize$") == 1


async def test_four_concurrent_replays_of_subscription_removed_leak_nothing(make_live: Callable[..., Any]) -> None:
    live = await provisioned(make_live, groups=1)
    sub = await users_sub(live)
    graph = live.world.graph
    graph.deliverer.clear_log()
    graph.send_lifecycle_event(sub.id, "subscriptionRemoved")
    await graph.wait_deliveries_idle_async(timeout=20)
    (payload,) = graph.delivered  # what Graph sent, clientState and all: an attacker replays it
    async with httpx.AsyncClient() as client:
        replies = await asyncio.gather(
            *(client.post(live.settings.graph_notification_url, content=json.dumps(payload)) for _ in range(4))
        )
    assert [r.status_code for r in replies] == [202] * 4  # the record is still there: all pass the intake
    await live.host.drain()  # five messages, handled concurrently
    await assert_one_each(live)
    assert sorted(at_graph(live)) == sorted(["/users", *[r for r in at_graph(live) if r.startswith("/groups/")]])
    assert len(at_graph(live)) == 2
    async with httpx.AsyncClient() as client:
        late = await client.post(live.settings.graph_notification_url, content=json.dumps(payload))
    assert late.status_code == 403  # the old subscription is unknown now
    report = await (await services_for(live.settings).keeper()).ensure()
    assert report.created == [] and report.deleted == [] and report.recreated == []
    await assert_one_each(live)


async def test_keeper_deletes_duplicates_and_unknown_subscriptions_on_our_url_only(
    make_live: Callable[..., Any],
) -> None:
    live = await provisioned(make_live)
    keeper = await services_for(live.settings).keeper()
    now = utcnow()
    duplicate = await keeper._create("/users", "", now)  # a lost race: two records for /users
    graph_http = httpx.AsyncClient(
        base_url=live.world.graph.graph_url, headers={"Authorization": "Bearer test-token"}, timeout=30
    )

    async def stray(url: str, expires_in: timedelta) -> str:
        body = {
            "changeType": "updated,deleted",
            "notificationUrl": url,
            "resource": "/users",
            "expirationDateTime": (now + expires_in).isoformat(),
            "clientState": "not-in-any-record",
        }
        resp = await graph_http.post("/subscriptions", json=body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    async with graph_http:
        old_orphan = await stray(live.settings.graph_notification_url, timedelta(days=3))
        young_orphan = await stray(live.settings.graph_notification_url, LIFETIME - timedelta(minutes=1))
        foreign = await stray(live.host.function_url("graph/lifecycle"), timedelta(days=3))
    report = await keeper.ensure()
    remaining = {s["id"] for s in live.world.graph.subscriptions()}
    assert old_orphan not in remaining
    assert young_orphan in remaining  # its creator may not have written its record yet
    assert foreign in remaining  # not on our notification URL: not ours to judge
    assert any("duplicate" in d for d in report.deleted) and any("unknown" in d for d in report.deleted)
    stored = await records(live)
    assert len(stored["/users"]) == 1 and stored["/users"][0] in remaining
    assert (duplicate.id in remaining) == (stored["/users"][0] == duplicate.id)


async def test_a_rotated_webhook_key_moves_every_subscription_to_the_new_url(
    make_live: Callable[..., Any], monkeypatch: Any
) -> None:
    live = await provisioned(make_live, groups=1)
    old_ids = {s["id"] for s in live.world.graph.subscriptions()}
    new_key = live.host.add_function_key("graph_notifications", "graph-webhook")  # replaces the old key
    new_url = live.host.function_url("graph/notify", new_key)
    monkeypatch.setenv("GRAPH_NOTIFICATION_URL", new_url)
    rt = await services_for(live.settings).runtime()
    keeper = SubscriptionKeeper(
        rt.reader.client, rt.reader, rt.store, rt.settings.with_overrides(graph_notification_url=new_url)
    )
    report = await keeper.ensure()
    assert sorted(report.recreated) == sorted(at_graph(live)) == sorted(await records(live))
    subs = live.world.graph.subscriptions()
    assert len(subs) == 2 and not old_ids & {s["id"] for s in subs}
    assert all(s["notificationUrl"] == s["lifecycleNotificationUrl"] == new_url for s in subs)
    await assert_one_each(live)
