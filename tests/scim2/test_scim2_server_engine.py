"""gotosync end to end into a generic SCIM 2.0 app: the engine, with SCIM_PROFILE=scim2, a static
bearer token and no licenses, reading Entra from the Graph emulator and provisioning users,
groups and memberships into scim2-server (strict gate, pages of 20). What each cycle leaves is
read back through scim2-server's own HTTP API, never from gotosync's state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.world import World

from .conftest import ScimServer

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def scim_world(make_world: Callable[..., World], scim2: ScimServer) -> tuple[World, ScimServer]:
    """8 Entra users: 2 assigned directly, 3 through the assigned group "Sales", 3 not assigned.
    gotosync is pointed at scim2-server as an admin would: URL, bearer token, profile."""
    world = make_world(users=8, assign=2)
    world.settings = world.settings.with_overrides(
        goto_scim_url=scim2.url,
        goto_access_token=scim2.token,
        scim_profile="scim2",
        provision_groups=True,
        role_licenses={},
    )
    free = [u for u in world.graph.tenant.users if u not in world.assigned_user_ids()]
    gid = world.graph.create_group("Sales")
    for uid in free[:3]:
        world.graph.add_member(gid, uid)
    world.graph.assign(gid, "MeetingOrganizer")
    world.extra.update(group=gid, sales=free[:3], spare=free[3:])
    return world, scim2


def held_user(world: World, server: ScimServer, uid: str) -> dict[str, Any] | None:
    found = server.find("Users", "userName", world.upn(uid))
    assert len(found) <= 1
    return found[0] if found else None


def key_of(world: World, server: ScimServer, uid: str) -> str:
    user = held_user(world, server, uid)
    assert user is not None, world.upn(uid)
    return str(user["id"])


def group_members(server: ScimServer, name: str) -> dict[str, str]:
    group = server.one("Groups", "displayName", name)
    return {m["value"]: m["type"] for m in group.get("members", [])}


async def test_users_groups_and_memberships_are_provisioned_into_a_strict_scim_app(
    scim_world: tuple[World, ScimServer],
) -> None:
    world, server = scim_world
    result = await world.cycle()
    assert result.by_action == {"Create": 6} and result.by_status == {"Success": 6}  # 5 users, 1 group
    in_scope = [*world.assigned_user_ids(), *world.extra["sales"]]
    assert server.total("Users") == 5
    for uid in in_scope:
        source, held = world.graph.user(uid), held_user(world, server, uid)
        assert held is not None, source["userPrincipalName"]
        assert held["externalId"] == uid and held["active"] is True
        assert held["name"] == {"givenName": source["givenName"], "familyName": source["surname"]}
        assert held["displayName"] == source["displayName"]
        assert held.get(ENTERPRISE, {}).get("department") == source.get("department")
    for uid in world.extra["spare"]:
        assert held_user(world, server, uid) is None
    group = server.one("Groups", "displayName", "Sales")
    assert group["externalId"] == world.extra["group"]
    assert group_members(server, "Sales") == {key_of(world, server, uid): "User" for uid in world.extra["sales"]}
    # Nothing but SCIM 2.0 reached the server: every write passed the strict gate.
    writes = [s for s in server.app.seen if s.method in ("POST", "PUT", "PATCH")]
    assert writes and {s.content_type for s in writes} == {"application/scim+json"}


async def test_user_update_disable_and_delete_reach_the_scim_app(scim_world: tuple[World, ScimServer]) -> None:
    world, server = scim_world
    await world.cycle()
    changed, blocked, deleted = world.assigned_user_ids()[0], world.assigned_user_ids()[1], world.extra["sales"][0]
    deleted_key = key_of(world, server, deleted)
    world.graph.update_user(changed, surname="Byron", department="Poetry")
    world.graph.block_user(blocked)
    world.graph.hard_delete_user(deleted)
    result = await world.cycle()
    # One update for the changed user, one for "Sales", which loses the deleted user.
    assert result.by_action == {"Update": 2, "Disable": 1, "Delete": 1} and result.by_status == {"Success": 4}
    updated = held_user(world, server, changed)
    assert updated is not None
    assert updated["name"]["familyName"] == "Byron" and updated[ENTERPRISE]["department"] == "Poetry"
    assert held_user(world, server, blocked)["active"] is False  # type: ignore[index]
    assert server.resource("Users", deleted_key) is None
    # The deleted user was in "Sales": it is no longer one of the group's members.
    assert deleted_key not in group_members(server, "Sales")


async def test_group_membership_rename_and_removal_reach_the_scim_app(scim_world: tuple[World, ScimServer]) -> None:
    world, server = scim_world
    gid, sales, spare = world.extra["group"], world.extra["sales"], world.extra["spare"]
    await world.cycle()
    leaving, joining = sales[0], spare[0]
    world.graph.remove_member(gid, leaving)
    world.graph.add_member(gid, joining)
    await world.cycle()
    expected = {key_of(world, server, uid): "User" for uid in [*sales[1:], joining]}
    assert group_members(server, "Sales") == expected
    assert held_user(world, server, leaving)["active"] is False  # type: ignore[index]  # left the only assignment

    world.graph.update_group(gid, displayName="Sales EMEA")
    await world.cycle()
    assert server.find("Groups", "displayName", "Sales") == []
    assert group_members(server, "Sales EMEA") == expected

    world.graph.unassign(gid)
    result = await world.cycle()
    assert "Failure" not in result.by_status
    assert server.total("Groups") == 0
    for uid in [*sales[1:], joining]:  # their only assignment was the group
        assert held_user(world, server, uid)["active"] is False  # type: ignore[index]


async def test_users_already_in_the_scim_app_are_matched_across_pages_of_20_not_duplicated(
    make_world: Callable[..., World], scim2: ScimServer
) -> None:
    world = make_world(users=26, assign=25)
    world.settings = world.settings.with_overrides(
        goto_scim_url=scim2.url, goto_access_token=scim2.token, scim_profile="scim2"
    )
    for uid in world.assigned_user_ids():  # an admin's earlier import: same userName, nothing else
        response = scim2.http.post(
            "/Users",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": world.upn(uid)},
            headers={"Content-Type": "application/scim+json"},
        )
        assert response.status_code == 201
    scim2.app.seen.clear()
    result = await world.cycle()
    assert "Create" not in result.by_action and "Failure" not in result.by_status
    assert scim2.total("Users") == 25
    pages = [s.query["startIndex"] for s in scim2.requests("GET", "/Users") if "startIndex" in s.query]
    assert pages == ["1", "21"]
    for uid in world.assigned_user_ids():
        held = held_user(world, scim2, uid)
        assert held is not None and held["externalId"] == uid  # matched, then brought in step
