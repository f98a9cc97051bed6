"""An honest cycle lease: renewed while the cycle runs, a failed renewal stops the exports at
once, and a lease whose holder is gone is taken over after its time-to-live (a minute by
default), with owner, fencing token and heartbeat in status."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.engine.cycle import LEASE_NAME
from shared.model import CycleKind, CycleProgress, Initiator, utcnow
from shared.ops.control import allow_deletes
from shared.ops.status import load_status
from shared.store.lease import LeaseLost
from tests.safety.conftest import ProvisionedWorld, creates

USERS = r"^/identity/v1/Users$"


async def test_a_lease_left_by_a_killed_cycle_is_taken_over_once_its_heartbeat_is_older_than_the_ttl(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=4, assign=4)
    dead = "cycle-of-a-killed-process"
    async with world.runtime() as rt:
        # A cycle killed 61 s ago: its last heartbeat renewed the lease for 60 s.
        await rt.store.lease.acquire(LEASE_NAME, dead, 60, now=utcnow() - timedelta(seconds=61))
        progress = CycleProgress(cycle_id=dead, kind=CycleKind.INCREMENTAL, started=utcnow() - timedelta(minutes=2))
        await rt.store.job.update(lambda j: setattr(j, "current", progress))
        status = await load_status(rt.store, rt.settings)
        assert status["currentCycle"]["state"] == "interrupted"
        assert status["lease"]["owner"] == dead and status["lease"]["state"].startswith("expired")
        await allow_deletes(rt.store)  # admin actions are not blocked either
        result = await rt.engine.run_cycle(initiated_by=Initiator.TIMER)
    assert result.kind is CycleKind.INCREMENTAL
    async with world.store() as store:
        job = await store.job.get()
    assert job.current is None and job.last is not None and job.last.cycle_id == result.cycle_id


async def test_a_live_holder_is_named_when_a_second_cycle_is_refused(provisioned: ProvisionedWorld) -> None:
    world = await provisioned(users=2, assign=2)
    async with world.runtime() as rt:
        held = await rt.store.lease.acquire(LEASE_NAME, "the-running-cycle", 60)
        assert held is not None and held.fence >= 2  # the initial cycle held it before: a higher token
        from shared.engine.cycle import CycleNotRun

        with pytest.raises(CycleNotRun, match="owner the-running-cycle, fence"):
            await rt.engine.run_cycle(initiated_by=Initiator.TIMER)
        status = await load_status(rt.store, rt.settings)
        assert status["lease"]["owner"] == "the-running-cycle" and status["lease"]["state"] == "held"


async def test_a_cycle_that_loses_its_lease_stops_exporting_at_once(provisioned: ProvisionedWorld) -> None:
    world = await provisioned(users=1, assign=1)
    for i in range(30):
        world.graph.assign(world.graph.create_user(givenName=f"New{i}", surname="Hire"), "MeetingOrganizer")
    world.goto.faults.inject("latency", USERS, method="POST", latency_ms=200)
    async with world.runtime(cycle_lease_seconds=6, cycle_concurrency=1) as rt:
        task = asyncio.create_task(rt.engine.run_cycle(initiated_by=Initiator.TIMER))
        async with asyncio.timeout(30):  # the cycle is exporting: its third create has reached GoTo
            await world.goto.counters.wait_until(lambda counters: counters.total("POST", path_regex=USERS) >= 3)
        assert not task.done()
        held = await rt.store.lease.get(LEASE_NAME)
        assert held is not None
        await rt.store.lease.release(held)  # another instance takes the lease over...
        thief = await rt.store.lease.acquire(LEASE_NAME, "another-instance", 60)
        assert thief is not None and thief.fence > held.fence
        with pytest.raises(LeaseLost):
            await task
    # ... and the first cycle stopped at its next heartbeat, long before its 30 creates were done.
    assert len(creates(world)) < 30
    async with world.store() as store:
        job = await store.job.get()
    assert job.last is not None and job.last.processed == 1  # the lost cycle never wrote its end
