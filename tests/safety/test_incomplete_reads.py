"""A Graph read that may be incomplete is an error, never an empty list: it stops the cycle
before anything is decided, so no GoTo user is deleted or disabled on it (docs/safety.md)."""

from __future__ import annotations

import pytest

from shared.entra.reader import GraphReadError, IncompleteRead
from shared.ops.status import load_status
from tests.safety.conftest import ProvisionedWorld, deprovisions, journal_mark

USERS_LIST = r"^/v1\.0/users$"
ASSIGNMENTS = r"/appRoleAssignedTo$"


@pytest.mark.parametrize("kind", ["drop-value", "empty-200", "no-content", "error-200", "wrong-shape"])
async def test_a_bad_page_in_the_middle_of_the_users_list_deletes_and_disables_nobody(
    provisioned: ProvisionedWorld, kind: str
) -> None:
    world = await provisioned(users=12, assign=12, graph={"page_size_cap": 5})
    mark = journal_mark(world)
    world.graph.faults.inject(kind, USERS_LIST, method="GET", after=1, count=1)  # page 2 of 3
    with pytest.raises(IncompleteRead):
        await world.cycle(full=True)
    assert deprovisions(world, mark) == []
    assert sum(1 for u in world.goto.users() if u["active"]) == 13  # the 12 users and GoTo's admin
    async with world.runtime() as rt:
        status = await load_status(rt.store, rt.settings)
    assert "IncompleteRead" in status["lastStop"]["reason"] and "nothing was disabled" in status["lastStop"]["reason"]
    again = await world.cycle(full=True)  # the next read is whole: everyone is in step
    assert set(again.by_action) == {"Other"} and deprovisions(world, mark) == []
    async with world.runtime() as rt:
        assert (await load_status(rt.store, rt.settings))["lastStop"] is None


async def test_a_users_list_cut_short_by_a_dropped_next_link_is_caught_by_graphs_count(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=12, assign=12, graph={"page_size_cap": 5})
    mark = journal_mark(world)
    world.graph.faults.inject("drop-next-link", USERS_LIST, method="GET", count=1)
    with pytest.raises(IncompleteRead, match="where Graph counts 12"):
        await world.cycle(full=True)
    assert deprovisions(world, mark) == []


@pytest.mark.parametrize("kind", ["drop-value", "empty-200", "no-content"])
async def test_an_assignment_list_without_value_disables_nobody_and_releases_no_seat(
    provisioned: ProvisionedWorld, kind: str
) -> None:
    world = await provisioned(users=8, assign=8)
    mark = journal_mark(world)
    world.graph.update_user(world.assigned_user_ids()[0], department="Moved")  # an incremental cycle has work
    world.graph.faults.inject(kind, ASSIGNMENTS, method="GET", count=1)
    with pytest.raises(IncompleteRead):
        await world.cycle()
    assert deprovisions(world, mark) == []
    await world.cycle()
    assert deprovisions(world, mark) == []


async def test_a_404_on_an_assigned_groups_member_list_disables_nobody_while_the_group_exists(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=6, assign=0)
    group = world.graph.create_group("Sales")
    for uid in list(world.graph.tenant.users)[:6]:
        world.graph.add_member(group, uid)
    world.graph.assign(group, "MeetingOrganizer")
    first = await world.cycle(full=True)
    assert first.by_action.get("Create") == 6
    mark = journal_mark(world)
    world.graph.faults.inject(404, rf"/groups/{group}/members$", method="GET", count=1)
    with pytest.raises(GraphReadError, match="the group exists"):
        await world.cycle(full=True)
    assert deprovisions(world, mark) == []
    await world.cycle(full=True)
    assert deprovisions(world, mark) == []  # the group was read again: its members stay


async def test_members_of_an_assigned_group_that_reads_as_deleted_are_disabled_with_that_evidence(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=3, assign=0)
    group = world.graph.create_group("Temps")
    members = list(world.graph.tenant.users)[:3]
    for uid in members:
        world.graph.add_member(group, uid)
    world.graph.assign(group, "MeetingOrganizer")
    await world.cycle(full=True)
    mark = journal_mark(world)
    world.graph.soft_delete_group(group)
    result = await world.cycle(full=True)
    assert result.by_action.get("Disable") == 3
    assert {e["events"][0] for e in deprovisions(world, mark)} == {"disabled"}
    async with world.store() as store:
        entries = [e for e in await store.logs.query(action="Disable")]
    assert len(entries) == 3 and all("complete read of the app's" in e.evidence for e in entries)
