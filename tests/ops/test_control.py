"""On/off, restart with Entra's reset scopes, and allow deletes: persisted in the job state,
never racing a running cycle, links always kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared.engine.cycle import LEASE_NAME
from shared.model import JobState, utcnow
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http


def job_of(world: World) -> JobState:
    async def read() -> JobState:
        async with world.store() as store:
            return await store.job.get()

    return asyncio.run(read())


async def quarantine_and_escrow(world: World) -> None:
    async with world.store() as store:
        await store.escrow.record_failure(world.assigned_user_ids()[0], "user", "Conflict", "GoTo said 409", utcnow())

        def quarantine(job: JobState) -> None:
            job.quarantine_reason = "EncounteredQuarantineException: GoTo refused the credentials"
            job.quarantined_since = utcnow()

        await store.job.update(quarantine)


def test_stop_and_start_are_persisted_and_shown_in_status(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world()
    code, doc = cli("stop", "--json")
    assert code == 0 and doc["provisioning"] == "off" and "a cycle already running finishes" in doc["notes"][0]
    assert job_of(world).enabled is False
    assert cli("status", "--json")[1]["nextRun"] is None
    code, doc = cli("start", "--json")
    assert doc["provisioning"] == "on" and job_of(world).enabled is True
    assert cli("status", "--json")[1]["nextRun"] is not None


def test_restart_clears_watermark_escrows_and_quarantine_and_keeps_links(
    ops_world: Callable[..., World], cli: CliRun
) -> None:
    world = ops_world(users=6, assign=4)
    cli("sync", "--json")
    asyncio.run(quarantine_and_escrow(world))
    assert job_of(world).has_watermark

    code, doc = cli("restart", "--json")

    assert code == 0 and doc["scopes"] == ["Watermark", "Escrows", "QuarantineState"]
    assert doc["escrowsDropped"] == 1 and doc["watermarkCleared"] is True
    assert doc["quarantineLifted"].startswith("EncounteredQuarantineException") and doc["quarantine"] is None
    assert doc["nextCycle"] == "Initial" and doc["deletesAllowed"] is False
    job = job_of(world)
    assert not job.has_watermark and job.assignments_hash == "" and job.quarantine_reason == ""
    world.goto.counters.reset()
    code, result = cli("sync", "--json")
    # every object re-evaluated, found through its kept link: nothing to write
    assert result["kind"] == "Initial" and result["countsByAction"] == {"Other": 4}
    assert world.goto.counters.writes() == 0


def test_restart_with_one_scope_touches_only_that(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=6, assign=4)
    cli("sync", "--json")
    asyncio.run(quarantine_and_escrow(world))
    code, doc = cli("restart", "--scope", "Escrows", "--json")
    assert code == 0 and doc["scopes"] == ["Escrows"] and doc["escrowsDropped"] == 1
    job = job_of(world)
    assert job.has_watermark and job.quarantine_reason.startswith("EncounteredQuarantineException")
    code, doc = cli("restart", "--scope", "QuarantineState,Watermark", "--json")
    assert doc["scopes"] == ["QuarantineState", "Watermark"] and doc["quarantine"] is None
    code, doc = cli("restart", "--scope", "Full", "--json")
    assert doc["scopes"] == ["Watermark", "Escrows", "QuarantineState"] and doc["deletesAllowed"] is False


def test_connector_data_store_and_unknown_scopes_are_refused(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world()
    cli("sync", "--json")
    code, text = cli("restart", "--scope", "ConnectorDataStore")
    assert code == 2 and "ConnectorDataStore: not supported" in text and "links" in text
    code, text = cli("restart", "--scope", "Everything")
    assert code == 2 and "unknown reset scope 'Everything'" in text
    assert job_of(world).has_watermark  # nothing was reset


def test_restart_waits_for_a_running_cycle(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world()
    cli("sync", "--json")

    async def hold() -> None:
        async with world.store() as store:
            await store.lease.acquire(LEASE_NAME, "running-cycle", 600)

    asyncio.run(hold())
    code, text = cli("restart")
    assert code == 3 and "a sync cycle is running" in text
    code, text = cli("allow-deletes")
    assert code == 3
    assert job_of(world).has_watermark


def test_allow_deletes_now_carries_out_what_the_threshold_held(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=8, assign=6, deletion_threshold=2)
    cli("sync", "--json")
    leaving = world.assigned_user_ids()[:3]
    for uid in leaving:
        world.graph.unassign(uid)
    code, held = cli("sync", "--json")
    assert held["staged"] == 3 and job_of(world).quarantine_reason.startswith("DeletionThresholdExceeded")
    assert all(world.goto_user(world.upn(u))["active"] is True for u in leaving)  # type: ignore[index]

    code, doc = cli("allow-deletes", "--now", "--json")

    assert code == 0 and doc["heldDeletes"] == 3 and doc["quarantineLifted"].startswith("DeletionThresholdExceeded")
    # An incremental cycle: the held users were escrowed, so exactly they are re-evaluated.
    assert doc["cycle"]["kind"] == "Incremental"
    assert doc["cycle"]["countsByAction"] == {"Disable": 3} and doc["cycle"]["staged"] == 0
    assert all(world.goto_user(world.upn(u))["active"] is False for u in leaving)  # type: ignore[index]
    job = job_of(world)
    assert job.allow_deletes_once is False and job.quarantine_reason == "" and job.staged_deletes == 0


async def test_allow_deletes_still_finds_held_users_after_a_quiet_cycle(ops_world: Callable[..., World]) -> None:
    # A cycle after the staging one advances the watermark past the held users: they stay held
    # (escrowed, the quarantine kept), and the cycle after allow-deletes still finds them.
    world = ops_world(users=8, assign=6, deletion_threshold=2)
    await world.cycle()
    leaving = world.assigned_user_ids()[:3]
    for uid in leaving:
        world.graph.unassign(uid)
    assert (await world.cycle()).staged == 3
    assert (await world.cycle()).staged == 3
    status, doc = await http("ops_allow_deletes", "POST", {"now": True})
    assert status == 200 and doc["cycle"]["kind"] == "Incremental"
    assert doc["cycle"]["countsByAction"]["Disable"] == 3
    assert all(world.goto_user(world.upn(u))["active"] is False for u in leaving)  # type: ignore[index]


async def test_http_control_endpoints(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=8, assign=6, deletion_threshold=2)
    await world.cycle()

    status, doc = await http("ops_provisioning", "POST", {"enabled": False})
    assert status == 200 and doc["provisioning"] == "off"
    status, body = await http("ops_provisioning", "POST", {"enabled": "no"})
    assert status == 400 and body["error"]["field"] == "enabled"
    status, body = await http("ops_provisioning", "POST", {})
    assert status == 400 and body["error"]["field"] == "enabled"
    status, doc = await http("ops_provisioning", "POST", {"enabled": True})
    assert doc["provisioning"] == "on"

    status, body = await http("ops_restart", "POST", {"scopes": ["ConnectorDataStore"]})
    assert status == 400 and body["error"]["field"] == "scopes"
    status, body = await http("ops_restart", "POST", {"scopes": 3})
    assert status == 400 and body["error"]["field"] == "scopes"
    status, doc = await http("ops_restart", "POST", {"scopes": ["Escrows"]})
    assert status == 200 and doc["scopes"] == ["Escrows"]

    for uid in world.assigned_user_ids()[:3]:
        world.graph.unassign(uid)
    assert (await world.cycle()).staged == 3
    status, doc = await http("ops_allow_deletes", "POST", {})
    assert status == 200 and doc["deletesAllowed"] is True and doc["quarantine"] is None
    assert "cycle" not in doc
    result = await world.cycle()
    assert result.by_action.get("Disable") == 3 and result.staged == 0

    async with world.store() as store:
        lease = await store.lease.acquire(LEASE_NAME, "running-cycle", 600)
        status, body = await http("ops_restart", "POST", {})
        assert status == 409 and body["error"]["code"] == "CycleRunning"
        assert lease is not None
        await store.lease.release(lease)
