"""The dry run: the whole plan with each object's attribute diff and what the deletion threshold
would hold, written nowhere (the GoTo emulator's write counter proves it), and equal to what the
real cycle then does (its provisioning log proves that)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.model import ProvisioningLogEntry
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http


def changes_of_plan(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {p["id"]: (p["action"], json.loads(json.dumps(p["changes"]))) for p in doc["plan"]}


def changes_of_log(entries: list[ProvisioningLogEntry]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        e.source_id: (e.action.value, json.loads(json.dumps({m.name: [m.old, m.new] for m in e.modified})))
        for e in entries
    }


def change_the_directory(world: World) -> dict[str, str]:
    """One change of each kind after a first cycle; returns the expected action per user id."""
    ids = list(world.graph.tenant.users)
    assigned = world.assigned_user_ids()
    world.graph.update_user(assigned[0], displayName="Renamed Person")
    world.graph.update_user(assigned[1], department="Finance")
    world.graph.unassign(assigned[2])
    world.graph.block_user(assigned[3])
    world.graph.assign(ids[9], "MeetingOrganizer")
    return {
        assigned[0]: "Update",
        assigned[1]: "Update",
        assigned[2]: "Disable",
        assigned[3]: "Disable",
        ids[9]: "Create",
    }


async def cycle_logs(world: World, cycle_id: str) -> list[ProvisioningLogEntry]:
    async with world.store() as store:
        return await store.logs.query(cycle_id=cycle_id)


def test_dry_run_writes_nothing_and_its_plan_is_what_the_next_cycle_does(
    ops_world: Callable[..., World], cli: CliRun
) -> None:
    world = ops_world(users=12, assign=8)
    assert cli("sync", "--json")[0] == 0
    expected = change_the_directory(world)
    world.goto.counters.reset()

    code, plan = cli("sync", "--dry-run", "--json")

    assert code == 0 and plan["dryRun"] is True and plan["kind"] == "Incremental"
    assert world.goto.counters.writes() == 0
    assert {p["id"]: p["action"] for p in plan["plan"]} == expected
    renamed = next(p for p in plan["plan"] if p["changes"].get("displayName"))
    assert renamed["changes"]["displayName"][1] == "Renamed Person"
    assert renamed["modifiedProperties"] == [{"attribute": "displayName", "old": renamed["changes"]["displayName"][0],
                                              "new": "Renamed Person"}]  # fmt: skip

    code, real = cli("sync", "--json")
    assert code == 0 and real["countsByAction"] == plan["countsByAction"]
    done = asyncio.run(cycle_logs(world, real["cycleId"]))
    assert changes_of_log(done) == changes_of_plan(plan)


def test_dry_run_table_shows_each_objects_diff(
    ops_world: Callable[..., World], cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    world = ops_world(users=6, assign=4)
    cli("sync", "--json")
    world.graph.update_user(world.assigned_user_ids()[0], displayName="Renamed Person")
    code, text = cli("sync", "--dry-run")
    assert code == 0
    assert "dry run: nothing was written" in text
    assert "displayName" in text and "Renamed Person" in text
    assert world.upn(world.assigned_user_ids()[0]) in text
    assert "Update" in text and "by action" in text


def test_dry_run_shows_what_the_deletion_threshold_would_hold(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=8, assign=6, deletion_threshold=2)
    cli("sync", "--json")
    for uid in world.assigned_user_ids()[:3]:
        world.graph.unassign(uid)
    world.goto.counters.reset()
    code, plan = cli("sync", "--dry-run", "--json")
    assert code == 0 and plan["staged"] == 3
    assert sorted(plan["stagedByThreshold"]) == sorted(world.upn(u) for u in world.assigned_user_ids()[:3])
    held = [p for p in plan["plan"] if p["staged"]]
    assert {(p["action"], p["kind"]) for p in held} == {("StagedDelete", "disable")}
    assert all("deletion threshold of 2" in p["reason"] for p in held)
    assert world.goto.counters.writes() == 0
    code, text = cli("sync", "--dry-run")
    assert "3 disables/deletes would be staged by the deletion threshold" in " ".join(text.split())


async def test_http_dry_run_is_a_full_plan_equal_to_the_full_cycle_that_follows(
    ops_world: Callable[..., World],
) -> None:
    world = ops_world(users=12, assign=8)
    await world.cycle()
    expected = change_the_directory(world)
    world.goto.counters.reset()

    status, plan = await http("ops_dry_run", "POST", {})

    assert status == 200 and plan["dryRun"] is True and plan["kind"] == "Initial"
    assert world.goto.counters.writes() == 0
    assert {p["id"]: p["action"] for p in plan["plan"]} == expected
    assert plan["inSync"] == 4  # 9 users are assigned or linked; 5 of them changed
    real = await world.cycle(full=True)
    # An initial cycle also logs "already in sync" (Other); the plan counts those, it does not list them.
    logged = {k: v for k, v in changes_of_log(await cycle_logs(world, real.cycle_id)).items() if v[0] != "Other"}
    assert logged == changes_of_plan(plan)


async def test_http_dry_run_rejects_a_bad_field(ops_world: Callable[..., World]) -> None:
    ops_world()
    status, body = await http("ops_dry_run", "POST", {"full": "yes"})
    assert status == 400 and body["error"]["field"] == "full"
    status, body = await http("ops_dry_run", "POST", raw_body=b"{not json")
    assert status == 400 and body["error"]["field"] == "body"
