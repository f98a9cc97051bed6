"""GoToScimClient against the GoTo emulator over HTTP: one test per GoTo quirk or switch."""

from __future__ import annotations

import asyncio

import pytest

from shared.goto import AuthError, BadRequest, Conflict, DryRunBlocked, NotFound, RateLimited
from shared.scim.schemas import ENTERPRISE_URN

from .conftest import FlakyTokens, scim, user

USERS = "/identity/v1/Users"


async def test_user_round_trip_create_get_find_update_disable_delete(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0, active="honour", extension_attrs="store")
    async with scim(goto) as client:
        created = await client.create_user(
            user("jane", externalId="e-1", emails=[{"type": "work", "value": "jane@contoso.com", "primary": True}])
        )
        key = created["id"]
        assert isinstance(key, str)
        assert len(key) == 19

        assert (await client.get_user(key))["userName"] == "jane@contoso.com"
        found = await client.find_users("userName", "JANE@contoso.com")
        assert [u["id"] for u in found] == [key]

        changes = {"name.givenName": "Janet", f"{ENTERPRISE_URN}:department": "Sales"}
        updated = await client.update_user(key, changes, created)
        assert updated["name"]["givenName"] == "Janet"
        assert goto.user(key)["enterprise"] == {"department": "Sales"}

        await client.disable_user(key, updated)
        assert goto.user(key)["active"] is False

        assert await client.delete_user(key) is True
        assert await client.get_user(key) is None
        assert await client.delete_user(key) is False  # already gone


async def test_find_users_escapes_quotes_and_finds_nothing_for_unknown(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    async with scim(goto) as client:
        assert await client.find_users("userName", 'nobody"@contoso.com') == []
        assert await client.find_users("displayName", "back\\slash") == []


@pytest.mark.parametrize(
    ("paging", "max_page", "requests"),
    [(False, 1000, 1), (True, 1000, 3), (True, 40, 7)],
    ids=["server-ignores-paging", "server-pages", "server-caps-page-size"],
)
async def test_list_users_returns_everyone_once(make_goto_emulator, paging, max_page, requests):
    goto = make_goto_emulator(rate_limit=0, users_paging=paging, users_max_page_size=max_page)
    for i in range(250):
        goto.add_user(userName=f"user{i:03}@contoso.com")
    expected = {u["key"] for u in goto.users() if u["inOrg"]}
    async with scim(goto) as client:
        keys = [u["id"] async for u in client.list_users(page_size=100)]
    assert len(keys) == len(set(keys)) == len(expected) == 251
    assert set(keys) == expected
    assert goto.counters.total("GET", USERS) == requests


@pytest.mark.parametrize(
    ("dialect", "envelope"), [("scim1", "resources"), ("scim2", "Resources"), ("mixed", "resources")]
)
async def test_both_list_envelopes_are_read(make_goto_emulator, dialect, envelope):
    goto = make_goto_emulator(rate_limit=0, dialect=dialect)
    goto.add_user(userName="a@contoso.com")
    raw = (await asyncio.to_thread(_raw_list, goto)).keys()
    assert envelope in raw
    async with scim(goto) as client:
        names = sorted([u["userName"] async for u in client.list_users()])
        assert names == ["a@contoso.com", "admin@contoso.com"]
        assert [u["userName"] for u in await client.find_users("userName", "a@contoso.com")] == ["a@contoso.com"]


def _raw_list(goto):
    import httpx

    return httpx.get(goto.scim_url + "/Users", headers=goto.auth_headers()).json()


@pytest.mark.parametrize(
    ("patch_mode", "error_body", "style"),
    [
        ("merge", "auto", "merge"),
        ("patchop", "auto", "patchop"),
        ("both", "auto", "merge"),
        ("patchop", "scim2", "patchop"),
        ("patchop", "empty", "patchop"),  # an empty 400 cannot say why: auto still moves on
    ],
)
async def test_auto_patch_style_finds_what_the_server_accepts(make_goto_emulator, patch_mode, error_body, style):
    goto = make_goto_emulator(rate_limit=0, patch_mode=patch_mode, error_body=error_body)
    key = goto.add_user(userName="p@contoso.com", givenName="Pat", familyName="Old")
    async with scim(goto, patch_style="auto") as client:
        current = await client.get_user(key)
        await client.update_user(key, {"name.familyName": "New"}, current)
        assert client.patch_style_in_use == style
        assert goto.user(key)["familyName"] == "New"
        before = goto.counters.total("PATCH")
        await client.update_user(key, {"name.givenName": "Patty"}, current)
        assert goto.counters.total("PATCH") == before + 1  # the style is remembered
        assert goto.user(key)["givenName"] == "Patty"


async def test_merge_only_server_with_patchop_style_fails_without_fallback(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0, patch_mode="merge")
    key = goto.add_user(userName="q@contoso.com")
    async with scim(goto, patch_style="patchop") as client:
        with pytest.raises(BadRequest) as info:
            await client.update_user(key, {"name.givenName": "X"}, {"userName": "q@contoso.com"})
    assert info.value.code == "SystemForCrossDomainIdentityManagementServiceIncompatible"


async def test_put_style_sends_the_full_definition(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    key = goto.add_user(userName="r@contoso.com", givenName="Rae", familyName="Ray", title="Boss")
    async with scim(goto, patch_style="put") as client:
        current = await client.get_user(key)
        await client.update_user(key, {"name.givenName": "Ria"}, current)
    after = goto.user(key)
    assert (after["givenName"], after["familyName"], after["title"]) == ("Ria", "Ray", "Boss")
    assert goto.counters.total("PUT") == 1


async def test_an_update_from_the_last_sent_values_sends_the_changes_without_reading_the_user(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    key = goto.add_user(userName="s@contoso.com", givenName="Sam", familyName="Sun", title="Boss")
    last_sent = {"id": key, "userName": "s@contoso.com", "name": {"givenName": "Sam", "familyName": "Sun"}}
    async with scim(goto, patch_style="merge") as client:
        await client.update_user(key, {"name.givenName": "Sid"}, last_sent, rebuilt=True)
    assert goto.counters.total("GET") == 0 and goto.counters.total("PATCH") == 1
    after = goto.user(key)
    assert (after["givenName"], after["familyName"], after["title"]) == ("Sid", "Sun", "Boss")


@pytest.mark.parametrize(
    ("patch_style", "change"),
    [
        ("put", {"name.givenName": "Sid"}),  # a full definition: GoTo's whole user is needed
        ("merge", {'emails[type eq "work"].value': "s2@contoso.com"}),  # a whole list is sent
    ],
)
async def test_an_update_from_the_last_sent_values_reads_the_user_where_the_body_needs_more(
    make_goto_emulator, patch_style, change
):
    goto = make_goto_emulator(rate_limit=0, extension_attrs="store")
    key = goto.add_user(
        userName="s@contoso.com",
        givenName="Sam",
        familyName="Sun",
        title="Boss",
        emails=[{"type": "work", "value": "s@contoso.com"}, {"type": "home", "value": "sam@example.org"}],
    )
    # What gotosync last sent: neither the title nor the home address (set in GoTo by hand).
    last_sent = {
        "id": key,
        "userName": "s@contoso.com",
        "name": {"givenName": "Sam", "familyName": "Sun"},
        "emails": [{"type": "work", "value": "s@contoso.com"}],
    }
    async with scim(goto, patch_style=patch_style) as client:
        await client.update_user(key, change, last_sent, rebuilt=True)
    assert goto.counters.total("GET") == 1
    after = goto.user(key)
    assert after["title"] == "Boss"
    assert {"type": "home", "value": "sam@example.org"} in [
        {k: e[k] for k in ("type", "value")} for e in after["emails"]
    ]


async def test_an_update_from_the_last_sent_values_of_a_user_deleted_in_goto_is_not_found(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    key = goto.add_user(userName="t@contoso.com")
    goto.scim_delete_user(goto.org_user(key))  # deleted in GoTo by hand
    last_sent = {"id": key, "userName": "t@contoso.com"}
    async with scim(goto, patch_style="put") as client:
        with pytest.raises(NotFound):
            await client.update_user(key, {"displayName": "T"}, last_sent, rebuilt=True)
    assert goto.counters.total("PUT") == 0


async def test_settings_keep_active_and_extensions_out_of_bodies(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0, active="reject", extension_attrs="reject")
    async with scim(goto, send_active=False, send_extensions=False) as client:
        created = await client.create_user(
            user("s", active=True, externalId="e", emails=[{"value": "s@contoso.com"}], **{ENTERPRISE_URN: {"x": 1}})
        )
        await client.update_user(created["id"], {"active": False, "externalId": "e2", "name.givenName": "S"}, created)
        with pytest.raises(BadRequest, match="send_active is off"):
            await client.disable_user(created["id"], created)
    assert goto.user(created["id"])["givenName"] == "S"


async def test_429_burst_with_retry_after_then_success(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    goto.faults.inject(429, path="^/identity/v1/Users$", count=3, retry_after=0.01)
    async with scim(goto) as client:
        assert len([u async for u in client.list_users()]) == 1
        assert client.stats.throttled == 3
        assert client.stats.retries == 3
    assert goto.counters.total("GET", USERS) == 4


async def test_429_burst_without_retry_after_backs_off_then_succeeds(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    goto.faults.inject(429, path="^/identity/v1/Users$", count=4)
    async with scim(goto) as client:
        await client.find_users("userName", "admin@contoso.com")
        assert client.stats.throttled == 4
    assert goto.counters.total("GET", USERS) == 5


async def test_429_beyond_max_attempts_is_raised_as_retryable(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    goto.faults.inject(429, path="^/identity/v1/Users$", count=10)
    async with scim(goto, max_attempts=3) as client:
        with pytest.raises(RateLimited) as info:
            await client.find_users("userName", "admin@contoso.com")
    assert info.value.code == "TooManyRequests"
    assert info.value.retryable
    assert goto.counters.total("GET", USERS) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_then_succeed(make_goto_emulator, status):
    goto = make_goto_emulator(rate_limit=0)
    goto.faults.inject(status, path="^/identity/v1/Users$", method="POST", count=2)
    async with scim(goto) as client:
        created = await client.create_user(user("t"))
        assert client.stats.transient == 2
    assert goto.user(created["id"])["userName"] == "t@contoso.com"
    assert goto.counters.total("POST", USERS) == 3


async def test_400_is_not_retried(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    async with scim(goto) as client:
        with pytest.raises(BadRequest) as info:
            await client.create_user(user("u", locale="xx_YY"))  # GoTo's check, not ours
    assert "locale" in str(info.value)
    assert "create user 'u@contoso.com' failed: HTTP 400" in str(info.value)
    assert goto.counters.total("POST", USERS) == 1


async def test_pre_send_validation_never_calls_goto(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    async with scim(goto, verified_domains=["contoso.com"]) as client:
        for bad, code in [
            (user("v", given="g" * 61), "SchemaPropertyCanOnlyAcceptValue"),
            ({"userName": "v@fabrikam.com"}, "InvalidDomain"),
            ({"name": {"givenName": "x"}}, "MandatoryFieldsMissing"),
        ]:
            with pytest.raises(BadRequest) as info:
                await client.create_user(bad)
            assert info.value.code == code
        with pytest.raises(BadRequest):
            await client.create_group("g" * 129)
    assert goto.counters.total() == 0


async def test_unverified_domain_from_goto_is_invalid_domain(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    async with scim(goto) as client:  # no verified_domains setting: GoTo decides
        with pytest.raises(BadRequest) as info:
            await client.create_user({"userName": "w@fabrikam.com"})
    assert info.value.code == "InvalidDomain"


@pytest.mark.parametrize("dialect", ["scim1", "scim2"])
async def test_duplicate_create_is_conflict(make_goto_emulator, dialect):
    goto = make_goto_emulator(rate_limit=0, dialect=dialect)
    goto.add_user(userName="x@contoso.com")
    async with scim(goto) as client:
        with pytest.raises(Conflict) as info:
            await client.create_user(user("x"))
        assert info.value.code == "EntryConflict"
        assert (await client.find_users("userName", "x@contoso.com"))[0]["userName"] == "x@contoso.com"
    assert goto.counters.total("POST", USERS) == 1


@pytest.mark.parametrize("bad_token", ["403", "401-empty"])
async def test_bad_token_refreshes_once_then_auth_error(make_goto_emulator, bad_token):
    goto = make_goto_emulator(rate_limit=0, bad_token=bad_token)
    tokens = FlakyTokens("garbage", "still-garbage")
    async with scim(goto, token_provider=tokens) as client:
        with pytest.raises(AuthError) as info:
            await client.get_user("1234567890123456789")
    assert info.value.status == int(bad_token[:3])
    assert info.value.code == "Unauthorized"
    assert tokens.refreshes == 1
    assert goto.counters.total("GET") == 2
    assert "garbage" not in str(info.value)


@pytest.mark.parametrize("bad_token", ["403", "401-empty"])
async def test_bad_token_fixed_by_one_refresh(make_goto_emulator, bad_token):
    goto = make_goto_emulator(rate_limit=0, bad_token=bad_token)
    tokens = FlakyTokens("expired", goto.issue_access_token())
    async with scim(goto, token_provider=tokens) as client:
        assert (await client.get_me())["userName"] == "admin@contoso.com"
    assert tokens.refreshes == 1


async def test_missing_role_is_insufficient_rights(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    async with scim(goto, goto.issue_access_token(admin=False)) as client:
        with pytest.raises(AuthError) as info:
            await client.find_users("userName", "admin@contoso.com")
    assert info.value.code == "InsufficientRights"


async def test_delete_answers_200_in_scim1_and_204_in_scim2(make_goto_emulator):
    for dialect in ("scim1", "scim2"):
        goto = make_goto_emulator(rate_limit=0, dialect=dialect)
        key = goto.add_user(userName="d@contoso.com")
        async with scim(goto) as client:
            assert await client.delete_user(key) is True


async def test_service_provider_config_plural_then_singular(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0, dialect="scim1")
    async with scim(goto) as client:
        assert (await client.service_provider_config())["patch"] is not None
    assert goto.counters.total("GET", "/identity/v1/ServiceProviderConfigs") == 1


# --- groups


@pytest.mark.parametrize("dialect", ["scim1", "scim2"])
async def test_group_lifecycle_and_members_with_put(make_goto_emulator, dialect):
    goto = make_goto_emulator(rate_limit=0, dialect=dialect, members_patch="add")  # PUT does not depend on it
    keys = [goto.add_user(userName=f"m{i}@contoso.com") for i in range(5)]
    async with scim(goto, patch_style="merge") as client:
        group = await client.create_group("Sales", keys[:3])
        gkey = group["id"]
        await client.update_group_members(gkey, add=keys[3:], remove=keys[:2], display_name="Sales")
        assert {m["value"] for m in goto.group_by_name("Sales")["members"]} == set(keys[2:])
        assert [g["id"] for g in await client.find_groups("sales")] == [gkey]
        assert await client.delete_group(gkey, display_name="Sales") is True
    assert goto.group_by_name("Sales") is None


async def test_group_members_are_chunked_at_100_with_patchop(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0, patch_mode="patchop")
    keys = [goto.add_user(userName=f"c{i}@contoso.com") for i in range(250)]
    async with scim(goto, patch_style="patchop") as client:
        group = await client.create_group("Big", keys[:150])
        assert len(goto.group_by_name("Big")["members"]) == 150
        assert goto.counters.total("PATCH") == 1  # the 50 that did not fit in the POST
        await client.update_group_members(group["id"], add=keys[150:], remove=keys[:50])
    assert {m["value"] for m in goto.group_by_name("Big")["members"]} == set(keys[50:])
    assert goto.counters.total("PATCH") == 1 + 2  # 150 changes -> 100 + 50


async def test_unknown_group_401_is_confirmed_as_not_found(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    goto.add_group("Other")
    unknown = "1234567890123456789"
    async with scim(goto) as client:
        assert await client.get_group(unknown) is None
        assert await client.delete_group(unknown, display_name="Gone") is False
        with pytest.raises(NotFound) as info:
            await client.update_group_members(unknown, add=[], remove=["1"], display_name="Gone")
    assert info.value.code == "InvalidAnchor"
    assert "does not exist" in str(info.value)


async def test_group_401_for_a_real_authorization_failure_stays_auth_error(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    gkey = goto.add_group("Kept")
    read_only = goto.issue_access_token(roles=["ROLE_ORG_READ"])
    async with scim(goto, read_only) as client:
        with pytest.raises(AuthError):
            await client.delete_group(gkey, display_name="Kept")
    async with scim(goto, goto.issue_access_token(admin=False)) as client:
        with pytest.raises(AuthError):
            await client.delete_group("1234567890123456789")
    assert goto.group_by_name("Kept") is not None


# --- pacing and dry run


async def test_rate_limiter_keeps_40_requests_under_the_server_bucket(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=10, rate_burst=10)
    key = goto.add_user(userName="rl@contoso.com")
    async with scim(goto, rate_limit=10.0, max_concurrency=8) as client:
        results = await asyncio.gather(*(client.get_user(key) for _ in range(40)))
        assert all(r["id"] == key for r in results)
        assert client.stats.throttled == 0
        assert client.stats.statuses[429] == 0
    # Every 429 would have been retried, so a 429 shows up as a 41st request.
    assert goto.counters.total("GET", USERS) == 40


async def test_without_the_limiter_the_same_burst_is_throttled(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=10, rate_burst=10)
    key = goto.add_user(userName="rl@contoso.com")
    async with scim(goto, rate_limit=None, max_concurrency=8) as client:
        await asyncio.gather(*(client.get_user(key) for _ in range(20)), return_exceptions=True)
        assert client.stats.throttled > 0
    assert goto.counters.total("GET", USERS) > 20


async def test_dry_run_refuses_writes_and_records_them(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    key = goto.add_user(userName="dry@contoso.com", givenName="Dry")
    async with scim(goto, read_only=True) as client:
        current = await client.get_user(key)
        with pytest.raises(DryRunBlocked):
            await client.create_user(user("new"))
        with pytest.raises(DryRunBlocked):
            await client.update_user(key, {"name.givenName": "Wet"}, current)
        with pytest.raises(DryRunBlocked):
            await client.delete_user(key)
        with pytest.raises(DryRunBlocked):
            await client.create_group("G")
        assert [(b.method, b.url.rsplit("/", 1)[-1]) for b in client.blocked] == [
            ("POST", "Users"),
            ("PATCH", key),
            ("DELETE", key),
            ("POST", "Groups"),
        ]
        assert client.blocked[0].body["userName"] == "new@contoso.com"
        assert client.stats.blocked_writes == 4
    assert goto.counters.writes() == 0
    assert goto.user(key)["givenName"] == "Dry"


@pytest.mark.parametrize("patch_mode", ["merge", "patchop"])
async def test_work_email_and_enterprise_change_in_either_style(make_goto_emulator, patch_mode):
    goto = make_goto_emulator(rate_limit=0, patch_mode=patch_mode, extension_attrs="store", dialect="mixed")
    key = goto.add_user(
        userName="e@contoso.com",
        emails=[
            {"type": "work", "value": "e@contoso.com", "primary": True},
            {"type": "home", "value": "e@home.example"},
        ],
    )
    async with scim(goto) as client:
        current = await client.get_user(key)
        changes = {'emails[type eq "work"].value': "e.new@contoso.com", f"{ENTERPRISE_URN}:department": "R&D"}
        await client.update_user(key, changes, current)
        assert client.patch_style_in_use == patch_mode
    after = goto.user(key)
    assert {e["type"]: e["value"] for e in after["emails"]} == {"work": "e.new@contoso.com", "home": "e@home.example"}
    assert after["enterprise"] == {"department": "R&D"}
