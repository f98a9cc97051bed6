"""An escrow retry re-establishes the evidence its action rested on: a failed delete stays a
delete while the user is still absent from Graph and its recycle bin, a failed disable stays a
disable while the user is still out of scope."""

from __future__ import annotations

from tests.safety.conftest import ProvisionedWorld, deprovisions, journal_mark

USER_PATH = r"^/identity/v1/Users/[^/]+$"


async def test_a_failed_delete_is_retried_as_a_delete_not_a_disable(provisioned: ProvisionedWorld) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[0]
    mark = journal_mark(world)
    world.graph.hard_delete_user(uid)
    world.goto.faults.inject(503, USER_PATH, method="DELETE", count=5)  # every attempt of one export
    failed = await world.cycle()
    assert failed.by_status.get("Failure") == 1 and deprovisions(world, mark) == []
    async with world.store() as store:
        escrow = await store.escrow.get(uid)
    assert escrow is not None and "@removed with reason 'deleted'" in escrow.evidence
    retried = await world.cycle()  # the delta has moved on: the escrow entry carries the evidence
    assert retried.by_action.get("Delete") == 1
    assert [e["events"] for e in deprovisions(world, mark)] == [["deleted"]]


async def test_a_failed_disable_is_retried_as_a_disable_while_the_user_is_still_blocked(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[1]
    mark = journal_mark(world)
    world.graph.block_user(uid)
    world.goto.faults.inject(503, USER_PATH, method="PATCH|PUT", count=5)
    failed = await world.cycle()
    assert failed.by_status.get("Failure") == 1 and deprovisions(world, mark) == []
    retried = await world.cycle()
    assert retried.by_action.get("Disable") == 1
    assert [e["events"] for e in deprovisions(world, mark)] == [["disabled"]]


async def test_a_failed_disable_of_a_user_unblocked_meanwhile_is_not_retried(provisioned: ProvisionedWorld) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[2]
    mark = journal_mark(world)
    world.graph.block_user(uid)
    world.goto.faults.inject(503, USER_PATH, method="PATCH|PUT", count=5)
    await world.cycle()
    world.graph.unblock_user(uid)
    retried = await world.cycle()
    assert "Disable" not in retried.by_action and deprovisions(world, mark) == []
