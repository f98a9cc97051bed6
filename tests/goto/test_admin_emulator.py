"""GoToAdminClient against the GoTo emulator over HTTP: account key, licenses, seats."""

from __future__ import annotations

import pytest

from shared.goto import DryRunBlocked, LicenseLimitExceeded

from .conftest import admin, scim


async def test_account_key_is_read_once_from_admin_me(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    async with admin(goto) as client:
        assert await client.account_key() == goto.account_key
        assert await client.account_key() == goto.account_key
        assert (await client.me())["email"] == "admin@contoso.com"
    assert goto.counters.total("GET", "/admin/rest/v1/me") == 2  # one for account_key, one for me()


async def test_account_key_falls_back_to_the_getgo_extension(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    token = goto.issue_access_token(scopes=["identity:scim.me", "identity:scim.org"])  # no Admin API scope
    async with scim(goto, token) as identity, admin(goto, token, scim=identity) as client:
        assert await client.account_key() == goto.account_key
    assert goto.counters.total("GET", "/identity/v1/Users/me") == 1


async def test_licenses_have_string_keys_to_compare(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    g2m = goto.license_key("G2M")
    async with admin(goto) as client:
        licenses = await client.licenses()
        assert g2m in {str(lic["key"]) for lic in licenses}
        assert (await client.license_by_key(g2m))["seats"] == 1000
        assert await client.license_by_key("999") is None


async def test_set_user_licenses_assigns_and_releases_seats(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    g2m = goto.license_key("G2M")
    key = goto.add_user(userName="lic@contoso.com")
    async with admin(goto) as client:
        account = await client.account_key()
        await client.set_user_licenses(account, key, [g2m])
        assert goto.licenses_of(key) == [g2m]
        assert await client.licenses_of(key) == [g2m]
        await client.set_user_licenses(account, key, [])
        assert goto.licenses_of(key) == []


@pytest.mark.parametrize(
    ("status", "error_body"), [(409, "auto"), (403, "gotocode"), (400, "gotocode"), (409, "empty")]
)
async def test_over_assignment_is_license_limit_exceeded(make_goto_emulator, status, error_body):
    goto = make_goto_emulator(rate_limit=0, over_assign_status=status, error_body=error_body)
    goto.set_seats("G2M", 1)
    g2m = goto.license_key("G2M")
    first, second = goto.add_user(userName="one@contoso.com"), goto.add_user(userName="two@contoso.com")
    async with admin(goto) as client:
        account = await client.account_key()
        await client.set_user_licenses(account, first, [g2m])
        with pytest.raises(LicenseLimitExceeded) as info:
            await client.set_user_licenses(account, second, [g2m])
    assert info.value.code == "LicenseLimitExceeded"
    assert info.value.status == status
    assert not info.value.retryable
    assert "set licenses" in str(info.value)
    assert goto.licenses_of(second) == []
    assert goto.counters.total("PUT") == 2  # never retried


async def test_admin_and_scim_have_separate_limiters_and_stats(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    goto.faults.inject(503, path="^/admin/rest/v1/me$", count=1)
    async with admin(goto) as client, scim(goto) as identity:
        await client.me()
        await identity.get_me()
        assert client.stats.transient == 1
        assert identity.stats.transient == 0
        assert client._t.limiter is not identity._t.limiter


async def test_admin_dry_run_refuses_license_changes(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    key = goto.add_user(userName="dry@contoso.com")
    async with admin(goto, read_only=True) as client:
        account = await client.account_key()
        assert await client.licenses()
        with pytest.raises(DryRunBlocked):
            await client.set_user_licenses(account, key, [goto.license_key("G2M")])
        assert client.blocked[0].body == {"licenseKeys": [goto.license_key("G2M")]}
    assert goto.counters.writes() == 0
