"""Runs that race on one user: every link write is conditional on the row the run read, so a
run whose GoTo write landed after a newer run's is found out and the user decided again."""

from __future__ import annotations

import asyncio

from shared.model import Initiator
from tests.fixtures.world import ProvisionedWorld

DEPARTMENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_a_webhook_run_whose_older_write_landed_last_is_re_decided_and_goto_ends_current(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=2, assign=2)
    uid = world.assigned_user_ids()[0]
    key = world.goto.user_by_username(world.upn(uid))["key"]  # type: ignore[index]
    world.graph.update_user(uid, department="First")
    # GoTo holds the first run's write for a moment: long enough for a second run to go through.
    world.goto.faults.inject("latency", rf"^/identity/v1/Users/{key}$", method="PATCH|PUT", count=1, latency_ms=1500)
    writes = world.goto.counters.writes()
    async with world.runtime() as slow_instance, world.runtime() as fast_instance:
        slow = asyncio.create_task(slow_instance.engine.sync_users([uid], initiated_by=Initiator.WEBHOOK))
        async with asyncio.timeout(20):  # the first run's write has reached GoTo
            await world.goto.counters.wait_until(lambda counters: counters.writes() > writes)
        assert not slow.done()
        world.graph.update_user(uid, department="Second")
        fast = await fast_instance.engine.sync_users([uid], initiated_by=Initiator.WEBHOOK)
        assert fast.by_status == {"Success": 1}
        await slow  # its write lands after the second run's: "First" is in GoTo for a moment...
    user = world.goto.user(key)
    assert user is not None and user["enterprise"]["department"] == "Second"  # ...and is put right
    async with world.store() as store:
        link = await store.links.get(uid)
    assert link is not None and link.exported[f"{DEPARTMENT}:department"] == "Second"
