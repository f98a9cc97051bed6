"""The operations the console needs beyond the first admin endpoints, through their function-key
endpoints: the overview (rate, last cycles, held deletions, quarantine fix), real-time health,
GoTo seats, the mapping preview, log filters by initiator, one log entry with its fix and its
requester, and the audit trail that names who did what."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta

from shared.model import Action, CycleProgress, Initiator, ProvisioningLogEntry, Status, utcnow
from shared.ops.overview import cycle_rate
from shared.ops.retention import purge_logs
from shared.realtime.queue import NotificationQueue
from shared.store import AuditEntry
from shared.store.subscriptions import SubscriptionRecord
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http

ROLE_LICENSES = {"MeetingOrganizer": ("G2M",)}


def test_rate_and_time_left_follow_the_progress() -> None:
    now = utcnow()
    running = {"started": (now - timedelta(seconds=10)).isoformat(), "processed": 20, "total": 50}
    assert cycle_rate(running, now) == {"perSecond": 2.0, "secondsLeft": 15, "elapsedSeconds": 10}
    reading = {"started": now.isoformat(), "processed": 0, "total": 0}
    assert cycle_rate(reading, now)["secondsLeft"] is None  # type: ignore[index]
    assert cycle_rate(None, now) is None


async def test_overview_lists_the_last_cycles_with_their_counts(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4)
    await world.cycle()
    world.graph.update_user(world.assigned_user_ids()[0], displayName="Renamed Once")
    await world.cycle()
    await world.cycle(dry_run=True)  # a dry run is not a cycle of the job: not in the history

    status, doc = await http("ops_overview")

    assert status == 200 and doc["provisioning"] == "on" and doc["quarantineFix"] == ""
    kinds = [c["kind"] for c in doc["recentCycles"]]
    assert kinds == ["Incremental", "Initial"]  # newest first
    assert doc["recentCycles"][0]["countsByAction"] == {"Update": 1}
    assert doc["recentCycles"][1]["countsByAction"] == {"Create": 4}
    assert doc["recentCycles"][1]["countsByStatus"] == {"Success": 4}
    assert doc["heldDeletions"] == {"count": 0, "shown": []} and doc["rate"] is None


async def test_overview_shows_held_deletions_and_the_quarantine_fix(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=8, assign=6, deletion_threshold=2)
    await world.cycle()
    leaving = world.assigned_user_ids()[:3]
    for uid in leaving:
        world.graph.unassign(uid)
    await world.cycle()

    _, doc = await http("ops_overview")

    assert doc["quarantine"].startswith("DeletionThresholdExceeded") and "allow deletes" in doc["quarantineFix"]
    held = doc["heldDeletions"]
    assert held["count"] == 3 and {h["id"] for h in held["shown"]} == set(leaving)
    assert {h["userName"] for h in held["shown"]} == {world.upn(u) for u in leaving}
    assert doc["recentCycles"][0]["staged"] == 3


async def test_health_reports_subscriptions_queue_depth_and_the_last_notification(
    ops_world: Callable[..., World],
) -> None:
    world = ops_world(graph_notification_url="https://example.invalid/api/graph/notify?code=secret-key")
    now = utcnow()
    async with world.store() as store:
        await store.subscriptions.put(
            SubscriptionRecord("sub-users", "/users", "updated,deleted", now + timedelta(hours=50), "client-state-1")
        )
        await store.subscriptions.put(
            SubscriptionRecord(
                "sub-group", "/groups/g1/members", "updated", now + timedelta(minutes=30), "client-state-2"
            )
        )
        await store.logs.write(
            [
                ProvisioningLogEntry(
                    "c1", "ch-webhook", Action.UPDATE, Status.SUCCESS, "u1", "ana@contoso.com",
                    initiated_by=Initiator.WEBHOOK, at=now - timedelta(minutes=5),
                ),
                ProvisioningLogEntry("c2", "ch-timer", Action.CREATE, Status.SUCCESS, "u2", "bo@contoso.com", at=now),
            ]
        )  # fmt: skip
    queue = NotificationQueue.from_connection_string(world.settings.storage_connection_string, "gotosync-notifications")
    try:
        for n in range(3):
            await queue.send({"v": 1, "items": [{"kind": "user", "id": f"u{n}"}]})
    finally:
        await queue.close()

    status, doc = await http("ops_health")

    assert status == 200 and doc["notificationsOn"] is True
    assert [(s["resource"], s["state"]) for s in doc["subscriptions"]] == [
        ("/groups/g1/members", "expiring"),
        ("/users", "active"),
    ]
    assert doc["subscriptionsNeedingAttention"] == 1
    assert doc["lastNotification"]["user"] == "ana@contoso.com" and doc["lastNotification"]["changeId"] == "ch-webhook"
    assert doc["queue"] == {"name": "gotosync-notifications", "depth": 3}
    assert doc["poisonQueue"] == {"name": "gotosync-notifications-poison", "depth": 0}
    text = json.dumps(doc)
    assert "client-state" not in text and "secret-key" not in text  # no secret leaves the store


async def test_seats_show_each_license_its_use_and_the_roles_that_grant_it(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4, role_licenses=ROLE_LICENSES)
    await world.cycle()

    status, doc = await http("ops_seats")

    assert status == 200 and doc["managed"] is True
    g2m = next(lic for lic in doc["licenses"] if lic["products"][:1] == ["G2M"])
    expected = next(lic for lic in world.goto.licenses() if lic["code"] == "G2M")
    assert g2m["used"] == expected["userCount"] and g2m["seats"] == expected["seats"]
    assert g2m["free"] == expected["seats"] - expected["userCount"] and g2m["roles"] == ["MeetingOrganizer"]


async def test_mapping_preview_over_http_shows_each_attribute(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    upn = world.upn(world.assigned_user_ids()[0])
    status, doc = await http("ops_mapping_preview", params={"user": upn})
    assert status == 200 and doc["user"]["userPrincipalName"] == upn and doc["action"] == "Create"
    assert {a["target"] for a in doc["attributes"]} >= {"userName", "displayName"}
    status, body = await http("ops_mapping_preview")
    assert status == 400 and body["error"]["field"] == "user"


async def test_logs_filter_by_initiator(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4)
    await world.cycle()
    await http("ops_provision", "POST", {"user": world.upn(world.assigned_user_ids()[1])})

    status, doc = await http("ops_logs", params={"initiator": "OnDemand"})
    assert status == 200 and doc["count"] == 1 and doc["entries"][0]["initiatedBy"] == "OnDemand"
    status, doc = await http("ops_logs", params={"initiator": "cli"})
    assert doc["count"] == 4 and {e["initiatedBy"] for e in doc["entries"]} == {"Cli"}
    status, body = await http("ops_logs", params={"initiator": "robot"})
    assert status == 400 and body["error"]["field"] == "initiator" and "OnDemand" in body["error"]["message"]


async def test_one_log_entry_with_its_fix_and_the_admin_who_asked_for_it(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4)
    target = world.assigned_user_ids()[0]
    world.graph.update_user(target, givenName="G" * 64)  # GoTo takes at most 60 characters
    status, _ = await http("ops_provision", "POST", {"user": world.upn(target)})
    assert status == 200
    status, found = await http("ops_logs", params={"user": world.upn(target)})
    entry = found["entries"][0]

    status, doc = await http("ops_log_entry", params={"changeId": entry["changeId"], "time": entry["time"]})

    assert status == 200 and doc["changeId"] == entry["changeId"] and doc["status"] == "Failure"
    assert doc["errorCode"] == "SchemaPropertyCanOnlyAcceptValue" and "mapping" in doc["errorFix"]
    assert doc["requestedBy"] == {"name": "function key holder", "objectId": "", "via": "http", "action": "provision"}
    assert [s["type"] for s in doc["steps"]][:2] == ["Import", "Scoping"]
    status, again = await http("ops_log_entry", params={"changeId": entry["changeId"]})  # no time: every day
    assert again["changeId"] == entry["changeId"]
    status, body = await http("ops_log_entry", params={"changeId": "no-such-change"})
    assert status == 404
    status, body = await http("ops_log_entry", params={"changeId": "x' or 1 eq 1"})
    assert status == 400 and body["error"]["field"] == "changeId"


async def test_every_change_to_the_job_is_in_the_audit_trail(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4)
    await http("ops_provisioning", "POST", {"enabled": False})
    await http("ops_provisioning", "POST", {"enabled": True})
    await http("ops_restart", "POST", {"scopes": ["Escrows"]})
    await http("ops_provision", "POST", {"user": world.upn(world.assigned_user_ids()[0]), "dryRun": True})
    await http("ops_provision", "POST", {"user": world.upn(world.assigned_user_ids()[0])})

    status, doc = await http("ops_audit")

    assert status == 200
    assert [(e["action"], e["target"].split(" ")[0]) for e in doc["entries"]] == [
        ("provision", "user"),  # the dry run changed nothing: not recorded
        ("restart", "Escrows"),
        ("start", ""),
        ("stop", ""),
    ]
    assert {e["actor"] for e in doc["entries"]} == {"function key holder"} and doc["entries"][0]["cycleId"]


async def test_retention_drops_old_audit_entries_and_cycle_history(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=4, assign=2)
    long_ago = utcnow() - timedelta(days=40)
    async with world.store() as store:
        await store.audit.write(AuditEntry("old admin", "stop", at=long_ago))
        await store.audit.write(AuditEntry("new admin", "start"))
        await store.cycles.append(CycleProgress(cycle_id="old", started=long_ago, ended=long_ago))
    await world.cycle()
    async with world.store() as store:
        result = await purge_logs(store, 30)
        assert result.audit_deleted == 1 and result.cycles_deleted == 1
        assert [e.actor for e in await store.audit.recent()] == ["new admin"]
        assert [p.kind.value for p, _ in await store.cycles.recent()] == ["Initial"]


def test_the_cli_records_its_changes_with_the_local_account(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world()
    assert cli("stop", "--json")[0] == 0 and cli("restart", "--scope", "Escrows", "--json")[0] == 0

    async def read() -> list[AuditEntry]:
        async with world.store() as store:
            return await store.audit.recent()

    entries = asyncio.run(read())
    assert [(e.action, e.via, e.target) for e in entries] == [("restart", "cli", "Escrows"), ("stop", "cli", "")]
    assert entries[0].actor.endswith("(local account)")
