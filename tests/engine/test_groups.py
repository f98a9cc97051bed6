"""Group provisioning: the pure planner, then sync_groups against the Graph and GoTo emulators
and Azurite, after a user cycle (users first, then groups and memberships, as Entra does)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.engine.groups import GroupKind, GroupSyncResult, plan_groups, sync_groups
from shared.model import Action, Assignment, Initiator, Link, Status
from tests.fixtures.world import World

# --------------------------------------------------------------------------------- planner


def group(gid: str, name: str) -> Assignment:
    return Assignment(gid, "Group", name, frozenset(), frozenset({"MeetingOrganizer"}))


def ulink(uid: str, key: str, *, active: bool = True, owned: bool = True) -> Link:
    return Link(entra_id=uid, goto_id=key, active=active, owned=owned)


def glink(gid: str, key: str, name: str, members: list[str]) -> Link:
    return Link(entra_id=gid, goto_id=key, kind="group", exported={"displayName": name, "members": members})


def goto(name: str, *keys: str, nested: tuple[str, ...] = ()) -> dict[str, Any]:
    members = [{"type": "user", "value": k} for k in keys] + [{"type": "group", "value": k} for k in nested]
    return {"displayName": name, "members": members}


USERS = {"u1": ulink("u1", "k1"), "u2": ulink("u2", "k2"), "u3": ulink("u3", "k3")}


def test_planner_creates_an_assigned_group_with_its_provisioned_members() -> None:
    [plan] = plan_groups({"g": group("g", "Sales")}, {"g": {"u1", "u2", "u3"}}, USERS, {}, {}, provision_groups=True)
    assert plan.kind is GroupKind.CREATE and plan.log_action is Action.CREATE
    assert plan.display_name == "Sales" and plan.members == ["k1", "k2", "k3"]


def test_planner_does_nothing_when_group_provisioning_is_off() -> None:
    assert plan_groups({"g": group("g", "Sales")}, {"g": {"u1"}}, USERS, {}, {}, provision_groups=False) == []


def test_planner_ignores_user_assignments() -> None:
    user = Assignment("u1", "User", "Jane", frozenset(), frozenset())
    assert plan_groups({"u1": user}, {}, USERS, {}, {}, provision_groups=True) == []


def test_planner_links_an_existing_goto_group_with_the_same_display_name() -> None:
    goto_groups = {"G9": goto("sales", "k1", "k8")}  # GoTo names are unique case-insensitively
    [plan] = plan_groups({"g": group("g", "Sales")}, {"g": {"u1", "u2"}}, USERS, {}, goto_groups, provision_groups=True)
    assert plan.kind is GroupKind.LINK and plan.goto_id == "G9" and plan.matched_by == "displayName"
    assert plan.add == ["k2"]
    assert plan.remove == []  # k8 is not a user gotosync manages: left alone
    assert plan.rename_from == "sales"  # the exact case Entra has


def test_planner_adds_and_removes_members_against_goto_current_members() -> None:
    links = {"g": glink("g", "G1", "Sales", ["k1", "k2"])}
    goto_groups = {"G1": goto("Sales", "k1", "k2", nested=("G7",))}
    [plan] = plan_groups(
        {"g": group("g", "Sales")}, {"g": {"u1", "u3"}}, USERS, links, goto_groups, provision_groups=True
    )
    assert plan.kind is GroupKind.UPDATE and plan.log_action is Action.UPDATE
    assert plan.add == ["k3"] and plan.remove == ["k2"]  # the nested group G7 is not touched
    assert plan.rename_from is None


def test_planner_renames_when_the_display_name_changed_in_entra() -> None:
    links = {"g": glink("g", "G1", "Sales", ["k1"])}
    [plan] = plan_groups(
        {"g": group("g", "Sales EMEA")},
        {"g": {"u1"}},
        USERS,
        links,
        {"G1": goto("Sales", "k1")},
        provision_groups=True,
    )
    assert plan.kind is GroupKind.UPDATE and plan.rename_from == "Sales" and plan.display_name == "Sales EMEA"
    assert not plan.add and not plan.remove


def test_planner_deletes_the_goto_group_when_the_group_is_unassigned() -> None:
    links = {"g": glink("g", "G1", "Sales", ["k1"])}
    [plan] = plan_groups({}, {}, USERS, links, {"G1": goto("Sales", "k1")}, provision_groups=True)
    assert plan.kind is GroupKind.DELETE and plan.goto_id == "G1" and plan.log_action is Action.DELETE
    assert plan.display_name == "Sales"


def test_planner_forgets_the_link_when_the_unassigned_group_is_already_gone_in_goto() -> None:
    links = {"g": glink("g", "G1", "Sales", ["k1"])}
    [plan] = plan_groups({}, {}, USERS, links, {}, provision_groups=True)
    assert plan.kind is GroupKind.FORGET


def test_planner_leaves_out_members_that_are_not_provisioned_users() -> None:
    users = {"u1": ulink("u1", "k1"), "u2": ulink("u2", "k2", owned=False), "u4": ulink("u4", "")}
    [plan] = plan_groups(
        {"g": group("g", "Sales")}, {"g": {"u1", "u2", "u3", "u4"}}, users, {}, {}, provision_groups=True
    )
    assert plan.members == ["k1"]


def test_planner_removes_disabled_users_from_the_goto_group() -> None:
    users = {**USERS, "u2": ulink("u2", "k2", active=False)}
    links = {"g": glink("g", "G1", "Sales", ["k1", "k2"])}
    [plan] = plan_groups(
        {"g": group("g", "Sales")},
        {"g": {"u1", "u2"}},
        users,
        links,
        {"G1": goto("Sales", "k1", "k2")},
        provision_groups=True,
    )
    assert plan.remove == ["k2"] and plan.add == [] and plan.members == ["k1"]


def test_planner_finds_nothing_to_do_for_a_group_in_step() -> None:
    links = {"g": glink("g", "G1", "Sales", ["k1", "k2"])}
    [plan] = plan_groups(
        {"g": group("g", "Sales")},
        {"g": {"u1", "u2"}},
        USERS,
        links,
        {"G1": goto("Sales", "k2", "k1")},
        provision_groups=True,
    )
    assert plan.kind is GroupKind.NONE and plan.log_action is Action.OTHER


def test_planner_recreates_a_linked_group_deleted_in_goto() -> None:
    links = {"g": glink("g", "G1", "Sales", ["k1"])}
    [plan] = plan_groups({"g": group("g", "Sales")}, {"g": {"u1"}}, USERS, links, {}, provision_groups=True)
    assert plan.kind is GroupKind.CREATE and plan.members == ["k1"]


# --------------------------------------------------------------------------------- end to end


@dataclass
class EngineLike:
    reader: Any
    scim: Any
    store: Any
    settings: Any


class HidesGroups:
    """The real SCIM client, except that its group listing comes back empty: what a run sees when
    another writer creates the group between its listing and its create."""

    def __init__(self, scim: Any) -> None:
        self._scim = scim

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scim, name)

    async def list_groups(self, page_size: int = 100) -> AsyncIterator[dict[str, Any]]:
        for _ in ():
            yield {}


async def run_groups(
    world: World,
    *,
    dry_run: bool = False,
    write_logs: bool = True,
    hide_groups: bool = False,
    settings: dict[str, Any] | None = None,
) -> GroupSyncResult:
    async with world.runtime(**(settings or {})) as rt:
        scim = HidesGroups(rt.scim) if hide_groups else rt.scim
        result = await sync_groups(
            EngineLike(rt.reader, scim, rt.store, rt.settings),
            provision_groups=True,
            cycle_id="test-cycle",
            initiated_by=Initiator.CLI,
            dry_run=dry_run,
        )
        del write_logs  # the run's committer writes its log entries
        return result


def goto_key(world: World, uid: str) -> str:
    user = world.goto.user_by_username(world.upn(uid))
    assert user is not None
    return str(user["key"])


def member_keys(world: World, name: str) -> set[str]:
    found = world.goto.group_by_name(name)
    assert found is not None, name
    return {m["value"] for m in found["members"]}


@pytest.fixture
def sales(make_world: Callable[..., World]) -> tuple[World, str, list[str]]:
    """A world with 3 users assigned through the group "Sales" (and 2 assigned directly)."""
    world = make_world(users=8, assign=2)
    free = [u for u in world.graph.tenant.users if u not in world.assigned_user_ids()][:3]
    gid = world.graph.create_group("Sales")
    for uid in free:
        world.graph.add_member(gid, uid)
    world.graph.assign(gid, "MeetingOrganizer")
    return world, gid, free


async def test_an_assigned_group_appears_in_goto_with_its_members(sales: tuple[World, str, list[str]]) -> None:
    world, gid, members = sales
    await world.cycle()
    result = await run_groups(world)
    assert result.by_action == {"Create": 1} and result.by_status == {"Success": 1}
    created = world.goto.group_by_name("Sales")
    assert created is not None
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in members}
    async with world.store() as store:
        link = await store.links.get(gid, "group")
        logs = [e for e in await store.logs.query() if e.identity_type == "Group"]
    assert link is not None and link.goto_id == created["key"]
    assert link.exported["displayName"] == "Sales"
    assert sorted(link.exported["members"]) == sorted(goto_key(world, uid) for uid in members)
    [entry] = logs
    assert entry.action is Action.CREATE and entry.status is Status.SUCCESS and entry.source_id == gid


async def test_a_member_removed_in_entra_leaves_the_goto_group(sales: tuple[World, str, list[str]]) -> None:
    world, gid, members = sales
    await world.cycle()
    await run_groups(world)
    leaving = members[0]
    key = goto_key(world, leaving)
    world.graph.remove_member(gid, leaving)
    await world.cycle()  # the user is no longer assigned: disabled, its link inactive
    result = await run_groups(world)
    assert result.by_action == {"Update": 1} and result.by_status == {"Success": 1}
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in members[1:]}
    assert key not in member_keys(world, "Sales")
    [entry] = [e for e in result.entries if e.action is Action.UPDATE]
    [change] = [m for m in entry.modified if m.name == "members"]
    assert change.old == {"removed": [key]} and change.new == {"added": []}


async def test_a_member_added_in_entra_joins_the_goto_group(sales: tuple[World, str, list[str]]) -> None:
    world, gid, members = sales
    await world.cycle()
    await run_groups(world)
    newcomer = next(u for u in world.graph.tenant.users if u not in [*members, *world.assigned_user_ids()])
    world.graph.add_member(gid, newcomer)
    await world.cycle()
    await run_groups(world)
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in [*members, newcomer]}


async def test_unassigning_the_group_deletes_the_goto_group(sales: tuple[World, str, list[str]]) -> None:
    world, gid, _ = sales
    await world.cycle()
    await run_groups(world)
    world.graph.unassign(gid)
    await world.cycle()
    result = await run_groups(world)
    assert result.by_action == {"Delete": 1} and result.by_status == {"Success": 1}
    assert world.goto.group_by_name("Sales") is None
    async with world.store() as store:
        assert await store.links.get(gid, "group") is None


async def test_a_second_run_without_change_writes_nothing(sales: tuple[World, str, list[str]]) -> None:
    world, _, _ = sales
    await world.cycle()
    await run_groups(world)
    world.goto.counters.reset()
    result = await run_groups(world)
    assert world.goto.counters.writes() == 0
    assert result.entries == []
    assert result.by_status == {"Skipped": 1}


async def test_a_renamed_group_is_renamed_in_goto(sales: tuple[World, str, list[str]]) -> None:
    world, gid, members = sales
    await world.cycle()
    await run_groups(world)
    world.graph.update_group(gid, displayName="Sales EMEA")
    result = await run_groups(world)
    assert result.by_action == {"Update": 1} and result.by_status == {"Success": 1}
    assert world.goto.group_by_name("Sales") is None
    assert member_keys(world, "Sales EMEA") == {goto_key(world, uid) for uid in members}


async def test_an_existing_goto_group_with_the_same_name_is_linked_not_duplicated(
    sales: tuple[World, str, list[str]],
) -> None:
    world, gid, members = sales
    await world.cycle()
    existing = world.goto.add_group("Sales", members=[goto_key(world, members[0])])
    result = await run_groups(world)
    assert result.by_status == {"Success": 1}
    assert [g["key"] for g in world.goto.groups()] == [existing]
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in members}
    async with world.store() as store:
        link = await store.links.get(gid, "group")
    assert link is not None and link.goto_id == existing and link.matched_by == "displayName"


async def test_a_dry_run_writes_nothing(sales: tuple[World, str, list[str]]) -> None:
    world, gid, _ = sales
    await world.cycle()
    world.goto.counters.reset()
    result = await run_groups(world, dry_run=True)
    assert world.goto.counters.writes() == 0 and result.entries == []
    assert [p.kind for p in result.plans] == [GroupKind.CREATE]
    async with world.store() as store:
        assert await store.links.get(gid, "group") is None


async def test_one_failing_group_does_not_stop_the_others(make_world: Callable[..., World]) -> None:
    world = make_world(users=6, assign=0)
    users = list(world.graph.tenant.users)
    bad = world.graph.create_group("x" * 129)  # GoTo accepts at most 128 characters
    good = world.graph.create_group("Support")
    for gid, uid in ((bad, users[0]), (good, users[1])):
        world.graph.add_member(gid, uid)
        world.graph.assign(gid, "MeetingOrganizer")
    await world.cycle()
    result = await run_groups(world)
    assert result.by_status == {"Failure": 1, "Success": 1}
    [failed] = [e for e in result.entries if e.status is Status.FAILURE]
    assert failed.source_id == bad and failed.error_code == "SchemaPropertyCanOnlyAcceptValue"
    assert member_keys(world, "Support") == {goto_key(world, users[1])}


async def test_a_create_refused_as_duplicate_adopts_the_goto_group_by_name(
    sales: tuple[World, str, list[str]],
) -> None:
    world, gid, members = sales
    await world.cycle()
    existing = world.goto.add_group("Sales")  # created meanwhile: the run's listing did not show it
    result = await run_groups(world, hide_groups=True)
    assert result.by_status == {"Success": 1}
    assert [g["key"] for g in world.goto.groups()] == [existing]
    assert member_keys(world, "Sales") == {goto_key(world, uid) for uid in members}
    async with world.store() as store:
        link = await store.links.get(gid, "group")
    assert link is not None and link.goto_id == existing and link.matched_by == "displayName"
    [entry] = result.entries
    assert any(s.name == "EntryExportAdd" and s.status is Status.WARNING for s in entry.steps)


@pytest.mark.parametrize("patch_style", ["put", "patchop", "merge", "auto"])
async def test_member_removal_and_rename_whatever_a_members_patch_does(
    make_world: Callable[..., World], patch_style: str
) -> None:
    # GoTo may read a merge PATCH of `members` as "add" (docs/reference/goto-api.md#u13); the client
    # then never relies on it.
    world = make_world(users=8, assign=0, goto={"members_patch": "add", "patch_mode": "both"})
    users = list(world.graph.tenant.users)[:3]
    gid = world.graph.create_group("Sales")
    for uid in users:
        world.graph.add_member(gid, uid)
    world.graph.assign(gid, "MeetingOrganizer")
    overrides = {"goto_patch_style": patch_style}
    await world.cycle(settings=overrides)
    await run_groups(world, settings=overrides)
    world.graph.remove_member(gid, users[0])
    world.graph.update_group(gid, displayName="Sales EMEA")
    await world.cycle(settings=overrides)
    result = await run_groups(world, settings=overrides)
    assert result.by_status == {"Success": 1}, result.entries
    assert world.goto.group_by_name("Sales") is None
    assert member_keys(world, "Sales EMEA") == {goto_key(world, uid) for uid in users[1:]}


async def test_cycles_provision_assigned_groups_after_their_users_when_the_setting_is_on(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=6, assign=0, goto={"active": "honour"})
    graph = world.graph
    ids = list(graph.tenant.users)
    group = graph.create_group("GoTo Sales")
    for uid in ids[:3]:
        graph.add_member(group, uid)
    graph.assign(group, "MeetingOrganizer")
    first = await world.cycle(settings={"provision_groups": True})
    assert first.by_action == {"Create": 4}  # three users, then the group
    goto_group = world.goto.group_by_name("GoTo Sales")
    keys = {world.goto.user_by_username(world.upn(uid))["key"] for uid in ids[:3]}  # type: ignore[index]
    assert goto_group is not None and {m["value"] for m in goto_group["members"]} == keys
    graph.remove_member(group, ids[0])
    second = await world.cycle(settings={"provision_groups": True})
    assert second.by_action == {"Disable": 1, "Update": 1}
    goto_group = world.goto.group_by_name("GoTo Sales")
    assert goto_group is not None and len(goto_group["members"]) == 2
    off = await world.cycle()  # the setting off: groups are left as they are
    assert off.by_action == {}
