"""Groups on the one pipeline: they appear in a dry run, their deletes count in the deletion
guards, a 409 adoption uses the planner's member diff, a quiet cycle lists no members, and the
membership table follows the groups delta."""

from __future__ import annotations

from collections.abc import Callable

from shared.ops.report import dry_run_document
from tests.engine.test_groups import goto_key, member_keys, run_groups
from tests.fixtures.world import World

GROUPS_ON = {"provision_groups": True}


def assigned_group(world: World, name: str, members: list[str]) -> str:
    gid = world.graph.create_group(name)
    for uid in members:
        world.graph.add_member(gid, uid)
    world.graph.assign(gid, "MeetingOrganizer")
    return gid


async def test_a_dry_run_of_a_cycle_shows_what_it_would_do_to_groups(make_world: Callable[..., World]) -> None:
    world = make_world(users=4, assign=0)
    assigned_group(world, "Sales", list(world.graph.tenant.users)[:3])
    result = await world.cycle(dry_run=True, settings=GROUPS_ON)
    assert world.goto.counters.writes() == 0 and world.goto.groups() == []
    doc = dry_run_document(result)
    (group,) = doc["groups"]
    assert (group["group"], group["action"], group["kind"]) == ("Sales", "Create", "Create")
    assert result.by_action == {"Create": 4}  # three users and the group, none written


async def test_group_deletes_count_in_the_deletion_guard_and_wait_for_the_admin(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=8, assign=8)
    users = world.assigned_user_ids()
    groups = [assigned_group(world, f"Team {i}", users[i : i + 1]) for i in range(7)]
    await world.cycle(settings=GROUPS_ON)
    assert len(world.goto.groups()) == 7
    for gid in groups:
        world.graph.unassign(gid)
    held = await world.cycle(settings={**GROUPS_ON, "deletion_threshold": 5})
    assert held.by_action.get("StagedDelete") == 7 and len(world.goto.groups()) == 7
    async with world.store() as store:
        staged = [e for e in await store.escrow.all() if e.kind == "group"]
        job = await store.job.get()
    assert len(staged) == 7 and job.quarantine_reason.startswith("DeletionThresholdExceeded")


async def test_a_create_that_meets_a_409_removes_managed_members_as_the_planner_would(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=6, assign=6)
    await world.cycle()
    users = world.assigned_user_ids()
    gid = assigned_group(world, "Sales", users[:2])
    # Created meanwhile by someone else, with a member gotosync manages who is not in the group.
    world.goto.add_group("Sales", [goto_key(world, users[4])])
    result = await run_groups(world, hide_groups=True)
    assert result.by_status == {"Success": 1}
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in users[:2]}
    del gid


async def test_a_quiet_cycle_lists_no_group_members_and_a_member_change_comes_from_the_delta(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=6, assign=0)
    users = list(world.graph.tenant.users)
    gid = assigned_group(world, "Sales", users[:3])
    await world.cycle(settings=GROUPS_ON)
    world.graph.counters.reset()
    quiet = await world.cycle(settings=GROUPS_ON)
    assert quiet.by_action == {}
    assert world.graph.counters.total(path_regex=r"/members") == 0
    world.graph.add_member(gid, users[3])
    joined = await world.cycle(settings=GROUPS_ON)
    assert joined.by_action == {"Create": 1, "Update": 1}  # the user, then the group's members
    assert world.graph.counters.total(path_regex=r"/members") == 0  # the table knew the rest
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in users[:4]}
    async with world.store() as store:
        assert await store.memberships.get(gid) == set(users[:4])


async def test_a_cycle_with_no_group_assigned_or_linked_reads_no_groups_side(make_world: Callable[..., World]) -> None:
    """With no group to plan, the group pass does not list GoTo's groups (nor read every user
    link again: at 100,000 users that read is most of a cycle's end); once a group is assigned it does."""
    world = make_world(users=5, assign=5)
    world.goto.counters.reset()
    first = await world.cycle(settings=GROUPS_ON)
    assert first.by_action == {"Create": 5}
    assert world.goto.counters.total(path_regex=r"/Groups") == 0
    assigned_group(world, "Sales", world.assigned_user_ids()[:2])
    await world.cycle(full=True, settings=GROUPS_ON)
    assert world.goto.counters.total("GET", path_regex=r"/Groups") >= 1
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in world.assigned_user_ids()[:2]}
