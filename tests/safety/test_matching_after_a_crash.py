"""Matching survives crashes: every create is recorded (as an intent) before its POST, and a
user is matched by its link, then that intent, then externalId where GoTo keeps it, then the
mapped matching attributes. A GoTo user that belongs to another Entra user is never taken over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.engine.cycle import LEASE_NAME, PlanRefused
from shared.model import utcnow
from tests.engine.test_mapping_integration import mapping_file
from tests.fixtures.world import World
from tests.safety.conftest import VISIBLE, ProvisionedWorld, creates, deprovisions, journal_mark

ROOT = Path(__file__).parents[2]
GOTOSYNC = Path(sys.executable).parent / "gotosync"


async def _kill_cycle_after_creates(world: World, n: int) -> None:
    """Runs `gotosync sync` in its own process and kills it (SIGKILL) once GoTo has created n
    users, or when it has ended on its own. The wait is woken by each request GoTo's counters
    see (the cycle's next POSTs follow its creates), not by polling."""
    env = {**os.environ, **world.env(cycle_lease_seconds=6)}
    proc = await asyncio.create_subprocess_exec(
        str(GOTOSYNC), "sync", env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    reached = asyncio.ensure_future(world.goto.counters.wait_until(lambda _: len(creates(world)) >= n))
    ended = asyncio.ensure_future(proc.wait())
    try:
        done, _ = await asyncio.wait({reached, ended}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert done, f"timed out waiting for {n} creates"
    finally:
        reached.cancel()
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await ended


async def _lease_expired(world: World) -> None:
    async with world.store() as store:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (held := await store.lease.get(LEASE_NAME)) is not None and not held.expired(utcnow()):
            assert loop.time() < deadline, "the dead process's lease never expired"
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("external_ids", ["store", "drop"])
async def test_a_crash_between_creates_and_their_links_then_a_upn_change_leaves_one_account_each(
    make_world: Callable[..., World], external_ids: str
) -> None:
    world = make_world(users=20, assign=20, goto={"active": "honour", "extension_attrs": external_ids})
    world.goto.faults.inject("latency", r"^/identity/v1/Users$", method="POST", latency_ms=100)
    await _kill_cycle_after_creates(world, 8)
    world.goto.faults.clear()
    created = {e["key"] for e in creates(world)}
    assert created, "the killed cycle created nobody"
    for uid in world.assigned_user_ids():
        upn = world.upn(uid)
        world.graph.update_user(uid, userPrincipalName="renamed." + upn)
    await _lease_expired(world)
    result = await world.cycle()
    assert result.by_status.get("Failure", 0) == 0
    users = [u for u in world.goto.users() if str(u["userName"]).startswith("renamed.")]
    assert len(users) == 20 and all(u["active"] for u in users)
    assert len(world.goto.users()) == 21  # and GoTo's own admin: no second account for anyone
    assert created <= {u["key"] for u in users}  # the accounts made before the crash were adopted
    async with world.store() as store:
        links = await store.links.all("user")
    assert len(links) == 20 and all(lk.live for lk in links)


async def test_a_goto_user_carrying_the_users_object_id_is_adopted_by_externalid(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=2, assign=2, goto=VISIBLE)
    uid = world.assigned_user_ids()[0]
    key = world.goto.add_user(userName="an.old.name@contoso.com", externalId=uid, displayName="Old")
    result = await world.cycle()
    assert result.by_action == {"Update": 1, "Create": 1}
    assert world.goto.user(key)["userName"].lower() == world.upn(uid).lower()  # type: ignore[index]
    async with world.store() as store:
        link = await store.links.get(uid)
    assert link is not None and link.goto_id == key and link.matched_by == "externalId"


async def test_an_orphan_carrying_the_id_of_an_unmanaged_user_is_reported_and_left_alone(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=3, assign=1, goto=VISIBLE)
    stranger = list(world.graph.tenant.users)[2]
    key = world.goto.add_user(userName="someone@contoso.com", externalId=stranger)
    mark = journal_mark(world)
    result = await world.cycle()
    assert result.by_status.get("Warning") == 1
    assert world.goto.user(key)["active"] is True and deprovisions(world, mark) == []  # type: ignore[index]
    async with world.store() as store:
        (entry,) = await store.logs.query(status="Warning")
    assert entry.error_code == "OrphanedTargetEntry" and entry.target_id == key


async def test_a_goto_account_linked_to_another_user_is_never_taken_over(provisioned: ProvisionedWorld) -> None:
    world = await provisioned(users=3, assign=2)
    owner, other = world.assigned_user_ids()
    newcomer = list(world.graph.tenant.users)[2]
    # The newcomer's mapped userName (its UPN) is the owner's GoTo userName: a clash in Entra data.
    owner_upn = world.upn(owner)
    world.graph.update_user(owner, userPrincipalName="moved." + owner_upn)
    await world.cycle()  # the owner's GoTo account follows the rename
    world.goto.faults.clear()
    key = world.goto.user_by_username("moved." + owner_upn)["key"]  # type: ignore[index]
    world.graph.update_user(newcomer, userPrincipalName="moved." + owner_upn.replace("@", "+x@"))
    world.goto.add_user(userName="moved." + owner_upn.replace("@", "+x@"), externalId=owner)
    world.graph.assign(newcomer, "MeetingOrganizer")
    mark = journal_mark(world)
    result = await world.cycle()
    assert result.by_status.get("Failure") == 1
    async with world.store() as store:
        (entry,) = await store.logs.query(status="Failure")
        assert entry.error_code == "DuplicateSourceEntries" and owner in entry.reason
        assert (await store.links.get(newcomer)) is None
    assert world.goto.user(key)["userName"].lower() == ("moved." + owner_upn).lower()  # type: ignore[index]
    assert deprovisions(world, mark) == []
    del other


async def test_a_mapping_that_gives_two_users_one_username_is_refused_as_a_whole(
    provisioned: ProvisionedWorld, tmp_path: Path
) -> None:
    world = await provisioned(users=4, assign=4)
    for uid in world.assigned_user_ids():
        world.graph.update_user(uid, department="Everyone")
    # A mapping mistake: the department where the UPN was meant.
    expression = 'Append(ToLower([department]), "@contoso.com")'
    mapping = mapping_file(tmp_path, userName={"type": "expression", "expression": expression, "matchingPrecedence": 1})
    mark = journal_mark(world)
    with pytest.raises(PlanRefused, match=r"everyone@contoso\.com"):
        await world.cycle(settings={"mapping_file": mapping})
    assert world.goto.journal_entries(mark) == []  # nothing at all was written to GoTo
    async with world.store() as store:
        job = await store.job.get()
    assert job.quarantine_reason.startswith("DuplicateTargetValues") and "everyone@contoso.com" in job.quarantine_reason
