"""A targeted run (webhook worker, assignment watch, on demand) never deletes on a negative
read: a user it cannot find is handed to the next cycle, which deletes only on positive
evidence (a delta @removed 'deleted', or a second absent read after the confirmation delay)."""

from __future__ import annotations

import pytest

from shared.model import Initiator
from shared.store.escrow import DELETION_UNCONFIRMED
from tests.safety.conftest import ProvisionedWorld, deprovisions, journal_mark


@pytest.mark.parametrize("initiator", [Initiator.WEBHOOK, Initiator.ON_DEMAND])
async def test_a_transient_404_on_a_user_in_a_targeted_run_deletes_nothing(
    provisioned: ProvisionedWorld, initiator: Initiator
) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[0]
    mark = journal_mark(world)
    world.graph.faults.inject(404, rf"^/v1\.0/users/{uid}$", method="GET", count=1)
    async with world.runtime(deletion_confirmation_seconds=0) as rt:
        result = await rt.engine.sync_users([uid], initiated_by=initiator)
        (plan,) = result.plans
        assert (plan.kind.value, plan.error_code) == ("skip", DELETION_UNCONFIRMED)
        escrow = await rt.store.escrow.get(uid)
        assert escrow is not None and escrow.last_error_code == DELETION_UNCONFIRMED and escrow.absent_since
        assert deprovisions(world, mark) == []
        # The next cycle reads the user again: present, so nothing happens and the hold is lifted.
        await rt.engine.run_cycle(initiated_by=Initiator.TIMER)
        assert await rt.store.escrow.get(uid) is None
    assert deprovisions(world, mark) == []


async def test_a_user_hard_deleted_in_entra_is_deleted_by_the_cycle_on_the_delta_not_by_the_webhook(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[1]
    upn = world.upn(uid)
    mark = journal_mark(world)
    world.graph.hard_delete_user(uid)
    async with world.runtime() as rt:
        await rt.engine.sync_users([uid], initiated_by=Initiator.WEBHOOK)
        assert deprovisions(world, mark) == []  # the webhook run only hands it over
        result = await rt.engine.run_cycle(initiated_by=Initiator.TIMER)
    assert result.by_action.get("Delete") == 1
    (deleted,) = deprovisions(world, mark)
    assert deleted["events"] == ["deleted"] and deleted["userName"].lower() == upn.lower()
    async with world.store() as store:
        (entry,) = await store.logs.query(action="Delete")
    assert "@removed with reason 'deleted'" in entry.evidence


async def test_an_absent_user_is_deleted_only_when_a_second_read_after_the_delay_agrees(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=4, assign=4)
    uid = world.assigned_user_ids()[2]
    mark = journal_mark(world)
    world.graph.hard_delete_user(uid)
    # A full cycle has no delta to say "deleted": one absent read is recorded, nothing deleted.
    first = await world.cycle(full=True, settings={"deletion_confirmation_seconds": 3600})
    assert "Delete" not in first.by_action and deprovisions(world, mark) == []
    again = await world.cycle(full=True, settings={"deletion_confirmation_seconds": 3600})
    assert "Delete" not in again.by_action  # a second read, but before the delay: still held
    confirmed = await world.cycle(full=True, settings={"deletion_confirmation_seconds": 0})
    assert confirmed.by_action.get("Delete") == 1
    async with world.store() as store:
        (entry,) = await store.logs.query(action="Delete")
    assert "and again at" in entry.evidence
