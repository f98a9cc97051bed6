"""The SCIM client in the ``scim2`` profile against scim2-server, an independent SCIM 2.0 service
provider (pytest-scim2-server), behind a bearer token and a schema-strict gate, paging at 20.
Every outcome is read back through scim2-server's own HTTP API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.goto import GoToScimClient, StaticTokenProvider
from shared.goto.errors import AuthError, BadRequest

from .conftest import PAGE_SIZE, ScimServer

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
FAST = {"backoff_base": 0.001, "backoff_cap": 0.005}


def client(server: ScimServer, **kwargs: Any) -> GoToScimClient:
    kwargs = {"rate_limit": None, "profile": "scim2", **FAST, **kwargs}
    token = kwargs.pop("token", server.token)
    return GoToScimClient(server.url, StaticTokenProvider(token), **kwargs)


def person(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "userName": f"{name}@contoso.com",
        "name": {"givenName": name.title(), "familyName": "Doe"},
        "displayName": f"{name.title()} Doe",
        "active": True,
        **extra,
    }


async def test_a_user_is_created_with_its_schemas_and_the_enterprise_extension(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        created = await scim.create_user(
            person(
                "ada",
                externalId="entra-1",
                emails=[{"type": "work", "value": "ada@contoso.com", "primary": True}],
                **{ENTERPRISE: {"department": "Research", "employeeNumber": "42"}},
            )
        )
    held = scim2.resource("Users", created["id"])
    assert held is not None
    assert held["userName"] == "ada@contoso.com" and held["name"] == {"givenName": "Ada", "familyName": "Doe"}
    assert held["externalId"] == "entra-1" and held["active"] is True
    assert held["emails"] == [{"type": "work", "value": "ada@contoso.com", "primary": True}]
    assert held[ENTERPRISE] == {"department": "Research", "employeeNumber": "42"}
    assert set(held["schemas"]) == {USER, ENTERPRISE}
    [post] = scim2.requests("POST", "/Users")
    assert post.content_type == "application/scim+json" and post.accept == "application/scim+json"


async def test_user_updates_reach_the_server_as_patchop(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        home = [{"type": "other", "value": "ben@home.example"}]
        created = await scim.create_user(
            person("ben", title="Clerk", emails=home, **{ENTERPRISE: {"department": "Sales"}})
        )
        key = created["id"]
        before = scim2.resource("Users", key)
        assert before is not None
        changes = {
            "name.givenName": "Benjamin",
            "title": None,  # cleared in Entra
            'emails[type eq "work"].value': "ben@contoso.com",  # there was no work e-mail yet
            f"{ENTERPRISE}:department": "Poetry",
        }
        await scim.update_user(key, changes, before)
        assert scim.patch_style_in_use == "patchop"
    held = scim2.resource("Users", key)
    assert held is not None
    assert held["name"]["givenName"] == "Benjamin" and "title" not in held
    assert held[ENTERPRISE]["department"] == "Poetry"
    assert {e["type"]: e["value"] for e in held["emails"]} == {"other": "ben@home.example", "work": "ben@contoso.com"}
    [patch] = scim2.requests("PATCH", f"/Users/{key}")
    assert patch.content_type == "application/scim+json"


async def test_a_work_e_mail_is_changed_and_then_removed(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        created = await scim.create_user(person("cy", emails=[{"type": "work", "value": "cy@contoso.com"}]))
        key = created["id"]
        await scim.update_user(key, {'emails[type eq "work"].value': "c.y@contoso.com"}, scim2.resource("Users", key))
        assert [e["value"] for e in scim2.resource("Users", key)["emails"]] == ["c.y@contoso.com"]  # type: ignore[index]
        await scim.update_user(key, {'emails[type eq "work"].value': None}, scim2.resource("Users", key))
    assert "emails" not in scim2.resource("Users", key)  # type: ignore[operator]


async def test_a_disabled_user_is_inactive_on_the_server(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        created = await scim.create_user(person("dee"))
        await scim.disable_user(created["id"], scim2.resource("Users", created["id"]))  # type: ignore[arg-type]
    assert scim2.resource("Users", created["id"])["active"] is False  # type: ignore[index]


async def test_a_deleted_user_is_gone_and_a_second_delete_says_so(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        created = await scim.create_user(person("eve"))
        assert await scim.delete_user(created["id"]) is True
        assert scim2.resource("Users", created["id"]) is None
        assert await scim.get_user(created["id"]) is None
        assert await scim.delete_user(created["id"]) is False


async def test_the_put_style_sends_whole_users_and_groups_with_their_schemas(scim2: ScimServer) -> None:
    async with client(scim2, patch_style="put") as scim:
        created = await scim.create_user(person("fay", **{ENTERPRISE: {"department": "Ops"}}))
        other = await scim.create_user(person("gus"))
        key = created["id"]
        await scim.update_user(key, {"name.familyName": "Fox"}, scim2.resource("Users", key))  # type: ignore[arg-type]
        group = await scim.create_group("Ops", [key])
        await scim.update_group_members(group["id"], add=[other["id"]], remove=[key], display_name="Ops")
    held = scim2.resource("Users", key)
    assert held is not None and held["name"]["familyName"] == "Fox" and held[ENTERPRISE] == {"department": "Ops"}
    assert members(scim2, group["id"]) == {other["id"]: "User"}
    assert scim2.requests("PUT", f"/Users/{key}") and scim2.requests("PUT", f"/Groups/{group['id']}")


def members(server: ScimServer, group_key: str) -> dict[str, str]:
    """value -> type of the group's members, as the server holds them."""
    group = server.resource("Groups", group_key)
    assert group is not None
    return {m["value"]: m["type"] for m in group.get("members", [])}


async def make_users(scim: GoToScimClient, *names: str) -> list[str]:
    return [(await scim.create_user(person(n)))["id"] for n in names]


async def test_a_group_is_created_with_its_members_as_canonical_user_references(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        keys = await make_users(scim, "hal", "ida", "jon")
        group = await scim.create_group("Sales", keys, external_id="entra-group-1")
    held = scim2.resource("Groups", group["id"])
    assert held is not None and held["displayName"] == "Sales" and held["externalId"] == "entra-group-1"
    assert members(scim2, group["id"]) == dict.fromkeys(keys, "User")


async def test_group_members_are_added_and_removed(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        keys = await make_users(scim, "kim", "lea", "max", "ned")
        group = await scim.create_group("Support", keys[:2])
        await scim.update_group_members(group["id"], add=keys[2:], remove=[keys[0]], display_name="Support")
        nested = await scim.create_group("Support EMEA")
        await scim.update_group_members(group["id"], add=[{"type": "group", "value": nested["id"]}], remove=[])
    assert members(scim2, group["id"]) == {**dict.fromkeys(keys[1:], "User"), nested["id"]: "Group"}
    for patch in scim2.requests("PATCH", f"/Groups/{group['id']}"):
        assert patch.content_type == "application/scim+json"


async def test_a_renamed_group_keeps_its_members(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        keys = await make_users(scim, "oda", "pia")
        group = await scim.create_group("Finance", keys)
        await scim.rename_group(group["id"], "Finance", "Finance EMEA")
    held = scim2.resource("Groups", group["id"])
    assert held is not None and held["displayName"] == "Finance EMEA"
    assert members(scim2, group["id"]) == dict.fromkeys(keys, "User")
    assert scim2.find("Groups", "displayName", "Finance") == []


async def test_a_deleted_group_is_gone_and_an_unknown_group_reads_as_none(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        group = await scim.create_group("Legal")
        assert await scim.delete_group(group["id"], display_name="Legal") is True
        assert scim2.resource("Groups", group["id"]) is None
        assert await scim.get_group(group["id"]) is None
        assert await scim.delete_group(group["id"]) is False


async def test_every_user_and_group_is_listed_once_from_a_server_that_pages_at_20(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        created = set(await make_users(scim, *[f"user{i:02}" for i in range(45)]))
        groups = {(await scim.create_group(f"Team {i}"))["id"] for i in range(25)}
        listed = [u["id"] async for u in scim.list_users(page_size=100)]
        listed_groups = [g["id"] async for g in scim.list_groups(page_size=100)]
    assert len(listed) == len(created) == scim2.total("Users") and set(listed) == created
    assert len(listed_groups) == 25 and set(listed_groups) == groups
    pages = [s.query for s in scim2.requests("GET", "/Users") if "startIndex" in s.query]
    assert [p["startIndex"] for p in pages] == ["1", str(1 + PAGE_SIZE), str(1 + 2 * PAGE_SIZE)]
    assert {p["count"] for p in pages} == {"100"}  # asked for 100, served 20 at a time


async def test_a_user_is_found_by_a_user_name_holding_a_quote(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        created = await scim.create_user(person('o"neil'))
        found = await scim.find_users("userName", 'O"Neil@contoso.com')
        assert [u["id"] for u in found] == [created["id"]]
        assert await scim.find_users("userName", "nobody@contoso.com") == []


async def test_the_service_provider_config_is_read_from_the_singular_path(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        config = await scim.service_provider_config()
    assert config is not None and config["filter"] == {"supported": True, "maxResults": PAGE_SIZE}
    assert scim2.requests("GET", "/ServiceProviderConfigs") == []


async def test_a_wrong_bearer_token_is_an_auth_error_not_a_missing_group(scim2: ScimServer) -> None:
    async with client(scim2) as scim:
        group = await scim.create_group("Audit")
    async with client(scim2, token="not-the-token") as scim:
        with pytest.raises(AuthError) as caught:
            await scim.get_group(group["id"], display_name="Audit")
    assert caught.value.status == 401
    assert "not-the-token" not in str(caught.value) and scim2.token not in str(caught.value)
    assert scim2.requests("GET", "/Groups") == []  # no lookup that would turn the 401 into "gone"


async def test_the_goto_profile_is_refused_by_a_strict_server(scim2: ScimServer) -> None:
    """What the strict profile exists for: GoTo-tuned bodies (no ``schemas``, ``"type": "user"``,
    ``application/json``) are not SCIM 2.0 to a schema-strict server."""
    async with client(scim2) as strict:
        key = (await strict.create_user(person("quinn")))["id"]
    async with client(scim2, profile="goto") as loose:
        with pytest.raises(BadRequest) as caught:
            await loose.create_group("Marketing", [key])
    assert caught.value.status == 400
    for problem in ("'schemas' is missing", "application/json"):
        assert problem in (caught.value.detail or "")
    assert scim2.find("Groups", "displayName", "Marketing") == []


def test_the_strict_gate_refuses_a_lower_case_member_type_and_an_extension_without_its_urn() -> None:
    from .strict import violations

    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x"}
    group["members"] = [{"type": "user", "value": "1"}]
    user = {"schemas": [USER], "userName": "a@contoso.com", ENTERPRISE: {"department": "x"}}
    scim = "application/scim+json"
    assert violations("POST", "/Groups", scim, scim, json.dumps(group).encode()) == [
        "member type 'user' is not a canonical value (Group, User)"
    ]
    assert violations("POST", "/Users", scim, scim, json.dumps(user).encode()) == [
        f"the extension {ENTERPRISE} is sent without its URI in 'schemas'"
    ]
    assert violations("POST", "/Users", scim, scim, json.dumps({**user, "schemas": [USER, ENTERPRISE]}).encode()) == []


async def test_names_longer_than_goto_allows_reach_a_generic_scim_app(scim2: ScimServer) -> None:
    given = "G" * 70  # GoTo refuses more than 60 characters; RFC 7643 sets no limit
    async with client(scim2) as scim:
        created = await scim.create_user({**person("rex"), "name": {"givenName": given, "familyName": "Doe"}})
    assert scim2.resource("Users", created["id"])["name"]["givenName"] == given  # type: ignore[index]
