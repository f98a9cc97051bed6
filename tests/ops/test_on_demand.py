"""Provision on demand: one user (by UPN, mail or object id) or every member of a group of any
size, through the pipeline now, with each step the log records; also while provisioning is off
or a cycle runs, and as a dry run that writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shared.engine.cycle import LEASE_NAME
from shared.model import Initiator
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http

STEP_NAMES = ["EntryImport", "EntrySynchronizationScoping", "EntryMatching", "EntrySynchronizationCreate",
              "EntryExportAdd"]  # fmt: skip


def never_provisioned_assigned_user(world: World) -> str:
    return world.assigned_user_ids()[0]


def test_one_user_by_upn_is_created_now_with_every_step_shown_and_logged(
    ops_world: Callable[..., World], cli: CliRun
) -> None:
    world = ops_world()
    uid = never_provisioned_assigned_user(world)
    upn = world.upn(uid)

    code, doc = cli("provision", upn, "--json")

    assert code == 0 and doc["dryRun"] is False and doc["initiatedBy"] == "OnDemand"
    assert doc["requested"] == {"kind": "user", "given": upn, "id": uid, "displayName": doc["requested"]["displayName"],
                                "resolvedBy": "userPrincipalName"}  # fmt: skip
    (obj,) = doc["objects"]
    assert (obj["action"], obj["status"], obj["logged"]) == ("Create", "Success", True)
    assert [s["name"] for s in obj["steps"]] == STEP_NAMES
    scope = obj["steps"][1]["details"]
    assert scope == {
        "Active in source system": "pass: enabled",
        "Assigned to application": "pass: assigned",
        "User has required role": "pass: MeetingOrganizer",
    }
    assert obj["steps"][2]["details"] == {f"userName eq {upn!r}": "0 hit(s)"}
    assert obj["changes"]["userName"] == [None, upn]
    assert world.goto_user(upn) is not None

    async def logged() -> list:
        async with world.store() as store:
            return await store.logs.query(cycle_id=doc["cycleId"])

    (entry,) = asyncio.run(logged())
    assert entry.initiated_by is Initiator.ON_DEMAND
    assert [s.name for s in entry.steps] == STEP_NAMES
    assert {m.name: [m.old, m.new] for m in entry.modified} == obj["changes"]


def test_user_found_by_mail_and_by_object_id(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world()
    first, second = world.assigned_user_ids()[:2]
    world.graph.update_user(first, mail="meeting.host@contoso.com")
    code, doc = cli("provision", "meeting.host@contoso.com", "--json")
    assert code == 0 and doc["requested"]["id"] == first and doc["requested"]["resolvedBy"] == "mail"
    code, doc = cli("provision", second, "--json")
    assert code == 0 and doc["requested"]["resolvedBy"] == "id"
    assert doc["objects"][0]["action"] == "Create"


def test_dry_run_on_demand_shows_the_plan_and_writes_nothing(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world()
    upn = world.upn(never_provisioned_assigned_user(world))
    world.goto.counters.reset()
    code, doc = cli("provision", upn, "--dry-run", "--json")
    assert code == 0 and doc["dryRun"] is True
    (obj,) = doc["objects"]
    assert (obj["action"], obj["logged"]) == ("Create", False)
    assert [s["name"] for s in obj["steps"]] == STEP_NAMES[:-1]  # no export step: nothing was sent
    assert world.goto.counters.writes() == 0 and world.goto_user(upn) is None
    code, logs = cli("logs", "--json")
    assert logs == []


def test_unassigned_user_shows_the_scope_check_that_failed(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=8, assign=5)
    outsider = next(u for u in world.graph.tenant.users if u not in world.assigned_user_ids())
    code, doc = cli("provision", world.upn(outsider), "--json")
    assert code == 0
    (obj,) = doc["objects"]
    assert (obj["action"], obj["status"], obj["logged"]) == ("Other", "Skipped", False)
    assert [s["type"] for s in obj["steps"]] == ["Import", "Scoping", "Processing"]
    assert obj["steps"][1]["details"]["Assigned to application"] == "fail: not assigned to the app"
    assert "not provisioned" in obj["reason"]


def test_on_demand_runs_while_provisioning_is_off_and_while_a_cycle_holds_the_lease(
    ops_world: Callable[..., World], cli: CliRun
) -> None:
    world = ops_world()
    first, second = world.assigned_user_ids()[:2]
    assert cli("stop", "--json")[1]["provisioning"] == "off"
    code, doc = cli("provision", world.upn(first), "--json")
    assert code == 0 and doc["objects"][0]["status"] == "Success"

    async def hold_lease() -> None:
        async with world.store() as store:
            assert await store.lease.acquire(LEASE_NAME, "a-running-cycle", 600) is not None

    asyncio.run(hold_lease())
    assert cli("sync", "--json")[0] == 3  # the cycle cannot start...
    code, doc = cli("provision", world.upn(second), "--json")  # ...on demand still runs
    assert code == 0 and doc["objects"][0]["action"] == "Create"
    assert world.goto_user(world.upn(second)) is not None


def test_a_group_of_fifty_members_is_provisioned_in_one_request(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=60, assign=0)
    members = list(world.graph.tenant.users)[:50]
    group = world.graph.create_group("GoTo Meeting Organizers")
    for uid in members:
        world.graph.add_member(group, uid)
    world.graph.assign(group, "MeetingOrganizer")

    code, doc = cli("provision", "--group", "GoTo Meeting Organizers", "--json")

    assert code == 0 and doc["members"] == 50 and doc["requested"]["resolvedBy"] == "displayName"
    assert doc["countsByAction"] == {"Create": 50} and doc["countsByStatus"] == {"Success": 50}
    assert sorted(o["id"] for o in doc["objects"]) == sorted(members)
    assert all(world.goto_user(world.upn(uid)) is not None for uid in members)


async def test_http_provision_a_group_by_id_and_a_user(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=10, assign=1)
    members = list(world.graph.tenant.users)[2:8]
    group = world.graph.create_group("Sales")
    for uid in members:
        world.graph.add_member(group, uid)
    world.graph.assign(group, "MeetingOrganizer")
    status, doc = await http("ops_provision", "POST", {"group": group, "dryRun": True})
    assert status == 200 and doc["dryRun"] is True and doc["countsByAction"] == {"Create": 6}
    assert world.goto.counters.writes() == 0
    status, doc = await http("ops_provision", "POST", {"group": group})
    assert status == 200 and doc["countsByStatus"] == {"Success": 6}
    status, doc = await http("ops_provision", "POST", {"user": world.upn(world.assigned_user_ids()[0])})
    assert status == 200 and doc["objects"][0]["steps"][0]["name"] == "EntryImport"


async def test_http_provision_names_the_bad_field_and_the_missing_user(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    status, body = await http("ops_provision", "POST", {})
    assert status == 400 and body["error"]["field"] == "user"
    status, body = await http("ops_provision", "POST", {"user": "a@contoso.com", "group": "Sales"})
    assert status == 400 and body["error"]["field"] == "group"
    status, body = await http("ops_provision", "POST", {"user": 42})
    assert status == 400 and body["error"]["field"] == "user"
    status, body = await http("ops_provision", "POST", {"user": "nobody@contoso.com"})
    assert status == 404 and "nobody@contoso.com" in body["error"]["message"]
    status, body = await http("ops_provision", "POST", {"group": "No Such Group"})
    assert status == 404
    assert world.goto.counters.writes() == 0


def test_cli_provision_says_when_nobody_matches(ops_world: Callable[..., World], cli: CliRun) -> None:
    ops_world()
    code, text = cli("provision", "nobody@contoso.com")
    assert code == 4 and "no Entra user" in text
    code, text = cli("provision")
    assert code == 2 and "user" in text


def test_cli_provision_prints_the_steps(
    ops_world: Callable[..., World], cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    world = ops_world()
    upn = world.upn(never_provisioned_assigned_user(world))
    code, text = cli("provision", upn)
    assert code == 0
    for line in ("1. Import", "2. Scope", "Assigned to application: pass: assigned", "3. Match",
                 f"userName eq {upn!r}: 0 hit(s)", "4. Action", "5. Export", "Create Success"):  # fmt: skip
        assert line in text, line


def test_on_demand_for_a_user_already_in_step_answers_in_the_log_too(
    ops_world: Callable[..., World], cli: CliRun
) -> None:
    world = ops_world()
    uid = never_provisioned_assigned_user(world)
    cli("provision", world.upn(uid), "--json")
    code, doc = cli("provision", world.upn(uid), "--json")
    (obj,) = doc["objects"]
    assert code == 0 and (obj["action"], obj["status"], obj["logged"]) == ("Other", "Skipped", True)

    async def logged() -> list:
        async with world.store() as store:
            return await store.logs.query(cycle_id=doc["cycleId"])

    (entry,) = asyncio.run(logged())
    assert entry.initiated_by is Initiator.ON_DEMAND and entry.reason == "already in sync"
