"""The ``scim2`` target profile: canonical member types and GoTo's limits left out, the
SCIM_PROFILE setting, the wire format of both profiles, and the profile against the GoTo
emulator in its SCIM 2.0 dialect. The strict bodies themselves (and their hypothesis check
against scim2-models) are in tests/scim/test_resource.py; the independent server is in
tests/scim2/."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.goto import GoToScimClient, StaticTokenProvider
from shared.goto.errors import BadRequest, Op
from shared.goto.scim import _member, validate_user
from shared.scim.schemas import ENTERPRISE_URN, GROUP_URN
from shared.settings import Settings, SettingsError

from .conftest import FAST, scim

DEPT = f"{ENTERPRISE_URN}:department"
WORK = 'emails[type eq "work"].value'

# --- bodies


@pytest.mark.parametrize(
    ("given", "goto", "scim2"),
    [
        ("k1", "user", "User"),
        ({"type": "group", "value": 7}, "group", "Group"),
        ({"type": "User", "value": "k1"}, "User", "User"),
        ({"value": "k1"}, "user", "User"),
    ],
)
def test_member_types_are_canonical_only_in_the_scim2_profile(given: Any, goto: str, scim2: str) -> None:
    assert _member(given)["type"] == goto
    assert _member(given, canonical=True)["type"] == scim2
    assert isinstance(_member(given, canonical=True)["value"], str)


def test_goto_length_limits_are_not_applied_to_a_generic_scim_target() -> None:
    long_name = {"userName": "a" * 130 + "@contoso.com", "name": {"givenName": "G" * 61}}
    with pytest.raises(BadRequest):
        validate_user(long_name, Op("create user", "a"))
    validate_user(long_name, Op("create user", "a"), goto_limits=False)


# --- the setting


def test_the_scim_profile_setting_defaults_to_goto_and_names_itself_when_wrong() -> None:
    assert Settings.from_env({}).scim_profile == "goto"
    assert Settings.from_env({"SCIM_PROFILE": "SCIM2"}).scim_profile == "scim2"
    with pytest.raises(SettingsError, match="SCIM_PROFILE: expected one of goto, scim2"):
        Settings.from_env({"SCIM_PROFILE": "scim1"})


def test_a_scim2_target_takes_neither_merge_patches_nor_licenses() -> None:
    with pytest.raises(SettingsError, match="GOTO_PATCH_STYLE: merge is GoTo's dialect"):
        Settings.from_env({"SCIM_PROFILE": "scim2", "GOTO_PATCH_STYLE": "merge"})
    with pytest.raises(SettingsError, match="ROLE_LICENSES: licenses are assigned through GoTo's Admin API"):
        Settings.from_env({"SCIM_PROFILE": "scim2", "ROLE_LICENSES": '{"MeetingOrganizer": ["G2M"]}'})
    assert Settings.from_env({"SCIM_PROFILE": "scim2", "GOTO_PATCH_STYLE": "put"}).goto_patch_style == "put"


def test_the_client_refuses_an_unknown_profile_and_merge_in_scim2() -> None:
    tokens = StaticTokenProvider("t")
    with pytest.raises(ValueError, match="profile must be one of"):
        GoToScimClient("https://scim.example/v2", tokens, profile="scim1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="merge"):
        GoToScimClient("https://scim.example/v2", tokens, profile="scim2", patch_style="merge")
    assert GoToScimClient("https://scim.example/v2", tokens, profile="scim2").patch_style_in_use == "patchop"


# --- the wire


def recording() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "g1", "displayName": "Sales"})

    return seen, httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("profile", "media_type", "body"),
    [
        ("goto", "application/json", {"displayName": "Sales", "members": [{"type": "user", "value": "k1"}]}),
        (
            "scim2",
            "application/scim+json",
            {"schemas": [GROUP_URN], "displayName": "Sales", "members": [{"type": "User", "value": "k1"}]},
        ),
    ],
)
async def test_each_profile_sends_its_own_media_type_and_group_body(
    profile: str, media_type: str, body: dict[str, Any]
) -> None:
    seen, transport = recording()
    client = GoToScimClient(
        "https://scim.example/v2",
        StaticTokenProvider("t"),
        rate_limit=None,
        profile=profile,  # type: ignore[arg-type]
        send_extensions=False,
        http_transport=transport,
    )
    async with client:
        await client.create_group("Sales", ["k1"])
    [request] = seen
    assert request.headers["content-type"] == media_type and request.headers["accept"] == media_type
    assert json.loads(request.content) == body


# --- the GoTo emulator in its SCIM 2.0 dialect


async def test_the_scim2_profile_works_against_the_emulator_in_its_scim2_dialect(make_goto_emulator: Any) -> None:
    goto = make_goto_emulator(
        rate_limit=0,
        dialect="scim2",
        patch_mode="patchop",
        users_paging=True,
        users_max_page_size=20,
        extension_attrs="store",
        active="honour",
    )
    async with scim(goto, profile="scim2", **FAST) as client:
        keys = [(await client.create_user({"userName": f"u{i}@contoso.com"}))["id"] for i in range(45)]
        goto.counters.reset()
        listed = [u["id"] async for u in client.list_users(page_size=100)]
        list_requests = goto.counters.total("GET", "/identity/v1/Users")
        await client.update_user(keys[0], {DEPT: "Poetry", WORK: "u0@contoso.com"}, {"userName": "u0@contoso.com"})
        await client.disable_user(keys[1], {"userName": "u1@contoso.com"})
        group = await client.create_group("Sales", keys[:3])
        await client.update_group_members(group["id"], add=[keys[3]], remove=[keys[0]], display_name="Sales")
        await client.rename_group(group["id"], "Sales", "Sales EMEA")
    in_org = {u["key"] for u in goto.users() if u["inOrg"]}  # the 45 and the seeded admin
    assert len(listed) == len(in_org) and set(listed) == in_org and set(keys) <= in_org
    assert list_requests == 3  # 46 users in pages of 20, asked 100 at a time
    first, second = goto.user(keys[0]), goto.user(keys[1])
    assert first["enterprise"]["department"] == "Poetry" and first["emails"][0]["value"] == "u0@contoso.com"
    assert second["active"] is False
    held = goto.group_by_name("Sales EMEA")
    assert held is not None and {m["value"] for m in held["members"]} == set(keys[1:4])


def test_an_unresolved_key_vault_reference_for_the_bearer_token_is_a_clear_error() -> None:
    from shared.runtime import goto_token_provider

    reference = "@Microsoft.KeyVault(VaultName=kv;SecretName=goto-access-token)"
    # Refused as soon as the settings load (never sent as a token), naming the setting.
    with pytest.raises(SettingsError, match=r"GOTO_ACCESS_TOKEN is a Key Vault reference .* could not resolve"):
        goto_token_provider(Settings.from_env({"SCIM_PROFILE": "scim2", "GOTO_ACCESS_TOKEN": reference}))
    token = goto_token_provider(Settings.from_env({"SCIM_PROFILE": "scim2", "GOTO_ACCESS_TOKEN": "s3cret"}))
    assert isinstance(token, StaticTokenProvider)
