"""Incremental and targeted runs write to a linked GoTo user without reading it first (the link
says what gotosync last sent). A user deleted in GoTo by hand is then found by the 404 that
answers the write: the run looks the user up afresh and decides again in the same run. It is
created once (never a second account) when it is in scope, and nothing is disabled or created
on the 404 alone when it is not."""

from __future__ import annotations

from typing import Any

import pytest

from shared.model import Initiator
from tests.fixtures.world import World
from tests.safety.conftest import ProvisionedWorld, deprovisions, journal_mark


def org_accounts(world: World, user_name: str) -> list[dict[str, Any]]:
    """The active GoTo users of the organization with this userName."""
    return [
        u for u in world.goto.users() if str(u["userName"]).lower() == user_name.lower() and u["active"] and u["inOrg"]
    ]


def delete_in_goto(world: World, user_id: str) -> str:
    """Deletes the user's GoTo account by hand (as an admin would in GoTo); returns its key."""
    key = str(world.goto.user_by_username(world.upn(user_id))["key"])  # type: ignore[index]
    world.goto.scim_delete_user(world.goto.org_user(key))
    return key


async def run(world: World, user_id: str, entrance: str) -> dict[str, int]:
    if entrance == "webhook":
        async with world.runtime() as rt:
            result = await rt.engine.sync_users([user_id], initiated_by=Initiator.WEBHOOK)
    else:
        result = await world.cycle()
    return result.by_action


@pytest.mark.parametrize("entrance", ["webhook", "incremental cycle"])
async def test_a_linked_user_deleted_in_goto_by_hand_is_created_once_by_its_next_change(
    provisioned: ProvisionedWorld, entrance: str
) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[0]
    upn = world.upn(uid)
    delete_in_goto(world, uid)
    mark = journal_mark(world)
    world.graph.update_user(uid, displayName="Back Again")
    assert await run(world, uid, entrance) == {"Create": 1}
    (account,) = org_accounts(world, upn)
    assert account["displayName"] == "Back Again"
    assert deprovisions(world, mark) == []
    async with world.store() as store:
        link = await store.links.get(uid)
        entry = (await store.logs.query(user=uid, action="Create"))[0]  # the newest
    assert link is not None and link.live and link.goto_id == account["key"]
    assert "deleted outside gotosync" in entry.reason
    assert any("no longer exists" in step.description for step in entry.steps)
    # The link stands for the user again: the next change is one write.
    world.goto.counters.reset()
    world.graph.update_user(uid, displayName="Renamed Once More")
    assert await run(world, uid, "webhook") == {"Update": 1}
    assert world.goto.counters.total(path_prefix="/identity/") == 1
    assert org_accounts(world, upn)[0]["displayName"] == "Renamed Once More"


async def test_a_linked_user_deleted_in_goto_and_blocked_in_entra_is_neither_disabled_nor_created(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[1]
    upn = world.upn(uid)
    delete_in_goto(world, uid)
    mark = journal_mark(world)
    world.graph.block_user(uid)
    async with world.runtime() as rt:
        result = await rt.engine.sync_users([uid], initiated_by=Initiator.WEBHOOK)
        (record,) = result.plans
        assert record.kind.value == "skip" and record.reason.startswith("not provisioned")
        assert await rt.store.escrow.get(uid) is None
    assert world.goto.journal_entries(mark) == []  # nothing disabled, nothing created
    assert org_accounts(world, upn) == []
    assert deprovisions(world, mark) == []
