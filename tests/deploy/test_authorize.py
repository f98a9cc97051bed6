"""`gotosync authorize` against the GoTo emulator's OAuth endpoints: the loopback redirect, the
code exchange, the refresh token in the store, rotation persisted, and a revoked token refused
with a clear AuthError (on which the engine quarantines the job)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
import pytest

from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from shared.goto import AuthError
from shared.goto.authorize import AuthorizationFailed, authorize, authorize_url_for, build_authorize_url
from shared.goto.token_store import FileRefreshTokenStore, StoredRefreshTokenProvider
from shared.runtime import goto_token_provider
from shared.settings import Settings


class Browser:
    """Plays the admin's browser: opens the printed URL and follows GoTo's redirect to the loopback
    server (the emulator auto-consents)."""

    def __init__(self, rewrite=None) -> None:
        self.urls: list[str] = []
        self.answers: list[httpx.Response] = []
        self.tasks: list[asyncio.Task] = []
        self._rewrite = rewrite

    def __call__(self, url: str) -> None:
        self.urls.append(url)
        self.tasks.append(asyncio.get_running_loop().create_task(self._open(url)))

    async def _open(self, url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=not self._rewrite, timeout=10) as http:
            answer = await http.get(url)
            if self._rewrite:  # a tampered redirect: change it before "the browser" follows it
                answer = await http.get(self._rewrite(answer.headers["location"]))
            self.answers.append(answer)


async def run_authorize(goto, tmp_path: Path, browser: Browser | None = None, **kwargs):
    store = FileRefreshTokenStore(tmp_path / "tokens" / "goto-refresh-token")
    browser = browser or Browser()
    result = await authorize(
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        store,
        token_url=goto.token_url,
        show_url=browser,
        wait_seconds=kwargs.pop("wait_seconds", 10),
        **kwargs,
    )
    await asyncio.gather(*browser.tasks)
    return result, store, browser


async def test_authorize_stores_the_refresh_token_in_a_0600_file(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    result, store, browser = await run_authorize(goto, tmp_path)

    assert browser.answers[0].status_code == 200
    assert "You can close this tab" in browser.answers[0].text
    url = httpx.URL(browser.urls[0])
    assert str(url.copy_with(query=None)) == goto.authorize_url
    assert url.params["client_id"] == DEFAULT_CLIENT_ID
    assert url.params["response_type"] == "code"
    assert url.params["redirect_uri"].startswith("http://127.0.0.1:")
    assert url.params["redirect_uri"].endswith("/callback")
    assert len(url.params["state"]) >= 40

    assert result.principal == "admin@contoso.com"
    assert "identity:scim.org" in (result.scope or "")
    assert result.refresh_token in goto.refresh_tokens()
    assert await store.load() == result.refresh_token
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert result.refresh_token not in repr(result)


async def test_a_redirect_with_a_wrong_state_stores_nothing(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    browser = Browser(rewrite=lambda location: location.replace("state=", "state=forged"))
    with pytest.raises(AuthorizationFailed, match="state"):
        await run_authorize(goto, tmp_path, browser)
    assert browser.answers[0].status_code == 400
    assert not (tmp_path / "tokens" / "goto-refresh-token").exists()


async def test_a_denied_consent_names_goto_error(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)

    def deny(location: str) -> str:
        state = httpx.URL(location).params["state"]
        return str(httpx.URL(location).copy_with(query=None)) + f"?error=access_denied&state={state}"

    with pytest.raises(AuthorizationFailed, match="access_denied"):
        await run_authorize(goto, tmp_path, Browser(rewrite=deny))


async def test_no_redirect_in_time_is_a_clear_failure(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    with pytest.raises(AuthorizationFailed, match=r"no redirect reached http://127\.0\.0\.1:\d+/callback within 1 s"):
        await authorize(
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            FileRefreshTokenStore(tmp_path / "t"),
            token_url=goto.token_url,
            show_url=lambda url: None,
            wait_seconds=1,
        )


async def test_a_wrong_client_secret_fails_the_exchange_without_echoing_it(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    browser = Browser()
    with pytest.raises(AuthError, match="invalid_client") as info:
        await authorize(
            DEFAULT_CLIENT_ID,
            "not-the-secret",
            FileRefreshTokenStore(tmp_path / "t"),
            token_url=goto.token_url,
            show_url=browser,
            wait_seconds=10,
        )
    await asyncio.gather(*browser.tasks)
    assert "not-the-secret" not in str(info.value)
    assert not (tmp_path / "t").exists()


def test_authorize_url_sits_next_to_the_token_url():
    assert authorize_url_for("https://authentication.logmeininc.com/oauth/token") == (
        "https://authentication.logmeininc.com/oauth/authorize"
    )
    with pytest.raises(ValueError, match="--authorize-url"):
        authorize_url_for("https://example.com/oauth2/v2/tokens")
    url = build_authorize_url("https://a/oauth/authorize", "cid", "http://127.0.0.1:1/callback", "s", "identity:")
    assert httpx.URL(url).params["scope"] == "identity:"


def token_settings(goto, tmp_path: Path, **overrides) -> Settings:
    return Settings(
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=DEFAULT_CLIENT_SECRET,
        goto_token_url=goto.token_url,
        goto_refresh_token_file=str(tmp_path / "tokens" / "goto-refresh-token"),
        **overrides,
    )


async def test_rotated_refresh_tokens_are_persisted_through_the_store(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    result, store, _ = await run_authorize(goto, tmp_path)
    # GOTO_REFRESH_TOKEN empty: the runtime loads the token from the store.
    tokens = goto_token_provider(token_settings(goto, tmp_path))
    assert isinstance(tokens, StoredRefreshTokenProvider)
    try:
        await tokens.get_token()
        first_rotation = await store.load()
        assert first_rotation and first_rotation != result.refresh_token
        assert result.refresh_token not in goto.refresh_tokens()  # "always" revokes the old one
        await tokens.get_token(force_refresh=True)
        second_rotation = await store.load()
        assert second_rotation not in (first_rotation, result.refresh_token)
    finally:
        await tokens.aclose()

    # A new process (the next function invocation) starts from the persisted token.
    again = goto_token_provider(token_settings(goto, tmp_path))
    try:
        assert await again.get_token()
    finally:
        await again.aclose()
    assert await store.load() in goto.refresh_tokens()


async def test_a_stale_setting_falls_back_to_the_rotated_token_in_the_store(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    result, store, _ = await run_authorize(goto, tmp_path)
    seeded = goto_token_provider(token_settings(goto, tmp_path, goto_refresh_token=result.refresh_token))
    try:
        await seeded.get_token()  # rotates: the setting's token is now revoked, the file has the new one
    finally:
        await seeded.aclose()
    stale = goto_token_provider(token_settings(goto, tmp_path, goto_refresh_token=result.refresh_token))
    try:
        assert await stale.get_token()
        assert stale.source == f"the file {store.path}"  # the setting's token was refused; the file's worked
    finally:
        await stale.aclose()


async def test_a_revoked_refresh_token_is_a_clear_auth_error(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    result, store, _ = await run_authorize(goto, tmp_path)
    goto.revoke_refresh_token(result.refresh_token)
    tokens = goto_token_provider(token_settings(goto, tmp_path))
    try:
        with pytest.raises(AuthError) as info:
            await tokens.get_token()
    finally:
        await tokens.aclose()
    message = str(info.value)
    assert info.value.goto_code == "invalid_grant"
    assert info.value.status == 400
    assert "no longer valid" in message
    assert f"the file {store.path}" in message
    assert "gotosync authorize" in message
    assert result.refresh_token not in message


async def test_no_refresh_token_anywhere_says_to_run_authorize(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    tokens = goto_token_provider(token_settings(goto, tmp_path))
    try:
        with pytest.raises(AuthError, match=r"no GoTo refresh token.*gotosync authorize"):
            await tokens.get_token()
    finally:
        await tokens.aclose()


async def test_a_cycle_with_a_revoked_refresh_token_quarantines_the_job(make_world, tmp_path):
    world = make_world(users=3, assign=3)
    goto = world.goto
    result, _, _ = await run_authorize(goto, tmp_path)
    goto.revoke_refresh_token(result.refresh_token)
    overrides = {
        "goto_access_token": "",
        "goto_client_id": DEFAULT_CLIENT_ID,
        "goto_client_secret": DEFAULT_CLIENT_SECRET,
        "goto_refresh_token": result.refresh_token,
        "goto_token_url": goto.token_url,
        "goto_refresh_token_file": str(tmp_path / "other-file"),
    }
    with pytest.raises(AuthError, match="invalid_grant"):
        await world.cycle(settings=overrides)
    async with world.store() as store:
        job = await store.job.get()
    assert job.quarantine_reason.startswith("EncounteredQuarantineException")
    assert "invalid_grant" in job.quarantine_reason
    assert "gotosync authorize" in job.quarantine_reason
    assert result.refresh_token not in job.quarantine_reason
