"""OAuthTokenProvider against the emulator's /oauth/token (refresh-token and PAT grants)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT
from shared.goto import AuthError, OAuthTokenProvider

from .conftest import scim


async def consent(goto) -> str:
    """The one-time authorization-code consent, done by hand: returns a refresh token."""
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            goto.authorize_url,
            params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code", "redirect_uri": "https://app.example/cb"},
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = await http.post(
            goto.token_url,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example/cb"},
            auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        )
        return tokens.json()["refresh_token"]


def provider(goto, saved: list[str], **kwargs) -> OAuthTokenProvider:
    async def save(token: str) -> None:
        saved.append(token)

    return OAuthTokenProvider(
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, token_url=goto.token_url, save_refresh_token=save, **kwargs
    )


@pytest.mark.parametrize(("rotation", "rotated"), [("never", False), ("always", True)])
async def test_refresh_grant_saves_a_refresh_token_only_when_rotated(make_goto_emulator, rotation, rotated):
    goto = make_goto_emulator(rate_limit=0, refresh_rotation=rotation)
    refresh = await consent(goto)
    saved: list[str] = []
    tokens = provider(goto, saved, refresh_token=refresh)
    try:
        first = await tokens.get_token()
        assert await tokens.get_token() == first  # cached until ~5 min before expiry
        second = await tokens.get_token(force_refresh=True)
        assert second != first
    finally:
        await tokens.aclose()
    assert len(saved) == (2 if rotated else 0)
    assert tokens.principal == "admin@contoso.com"


async def test_expired_access_token_is_refreshed_once_on_403(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    refresh = await consent(goto)
    tokens = provider(goto, [], refresh_token=refresh)
    try:
        async with scim(goto, token_provider=tokens) as client:
            await client.get_me()
            goto.advance_clock(3601)  # GoTo's clock moves; the provider still thinks the token is fresh
            assert (await client.get_me())["userName"] == "admin@contoso.com"
            assert client.stats.token_refreshes == 1
    finally:
        await tokens.aclose()


async def test_pat_grant(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    tokens = provider(goto, [], pat=DEFAULT_PAT)
    try:
        async with scim(goto, token_provider=tokens) as client:
            assert (await client.get_me())["userName"] == "admin@contoso.com"
    finally:
        await tokens.aclose()


async def test_revoked_refresh_token_is_an_auth_error_without_secrets(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    refresh = await consent(goto)
    goto.revoke_all_refresh_tokens()
    tokens = provider(goto, [], refresh_token=refresh)
    try:
        with pytest.raises(AuthError) as info:
            await tokens.get_token()
    finally:
        await tokens.aclose()
    assert info.value.status == 400
    assert "invalid_grant" in str(info.value)
    assert refresh not in str(info.value)
    assert DEFAULT_CLIENT_SECRET not in str(info.value)


async def test_token_refresh_happens_before_expiry(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    now = [0.0]
    tokens = provider(goto, [], pat=DEFAULT_PAT, clock=lambda: now[0])
    try:
        first = await tokens.get_token()
        now[0] = 3600 - 301
        assert await tokens.get_token() == first
        now[0] = 3600 - 299  # inside the 5-minute margin
        assert await tokens.get_token() != first
    finally:
        await tokens.aclose()
    assert goto.counters.total("POST", "/oauth/token") == 2


async def test_a_throttled_token_endpoint_is_retried(make_goto_emulator):
    goto = make_goto_emulator(rate_limit=0)
    goto.faults.inject(429, path="^/oauth/token$", count=1)
    tokens = provider(goto, [], pat=DEFAULT_PAT)
    try:
        async with scim(goto, token_provider=tokens) as client:
            assert (await client.get_me())["userName"] == "admin@contoso.com"
            assert client.stats.retries == 1
    finally:
        await tokens.aclose()
    assert goto.counters.total("POST", "/oauth/token") == 2
