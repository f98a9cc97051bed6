"""The refresh-token stores and the provider that keeps GoTo's rotating refresh token in them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from cli.main import main as cli_main
from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT
from shared.entra.graph import StaticTokenCredential
from shared.goto import AuthError, OAuthTokenProvider, StaticTokenProvider
from shared.goto.token_store import (
    CredentialStoreError,
    FileRefreshTokenStore,
    KeyVaultRefreshTokenStore,
    StoredRefreshTokenProvider,
    TokenNotSaved,
    key_vault_error,
    refresh_token_store,
    unresolved_reference,
)
from shared.runtime import goto_token_provider
from shared.settings import Settings, SettingsError
from tests.fixtures.ports import closed_port

from .test_authorize import run_authorize

UNRESOLVED = "@Microsoft.KeyVault(VaultName=kv-x;SecretName=goto-refresh-token)"


class FakeSecretClient:
    """azure.keyvault.secrets.aio.SecretClient, in memory: versions per name."""

    def __init__(self, fail_writes: int = 0) -> None:
        self.versions: dict[str, list[str]] = {}
        self.fail_writes = fail_writes
        self.closed = False

    async def get_secret(self, name: str):
        if not self.versions.get(name):
            raise ResourceNotFoundError(f"A secret with (name/id) {name} was not found in this key vault.")
        return SimpleNamespace(name=name, value=self.versions[name][-1])

    async def set_secret(self, name: str, value: str, **kwargs):
        if self.fail_writes:
            self.fail_writes -= 1
            raise ServiceRequestError("connection reset")
        assert kwargs.get("content_type") == "text/plain"
        self.versions.setdefault(name, []).append(value)
        return SimpleNamespace(name=name, value=value)

    async def close(self) -> None:
        self.closed = True


def kv_store(client: FakeSecretClient) -> KeyVaultRefreshTokenStore:
    return KeyVaultRefreshTokenStore("https://kv-x.vault.azure.net/", client=client)


async def test_file_store_round_trip_and_missing_file(tmp_path):
    store = FileRefreshTokenStore(tmp_path / "a" / "b" / "token")
    assert await store.load() is None
    await store.save("r1")
    await store.save("r2")
    assert await store.load() == "r2"
    assert [p.name for p in store.path.parent.iterdir()] == ["token"]  # no temp files left behind


async def test_key_vault_store_reads_the_latest_version_and_none_when_missing():
    client = FakeSecretClient()
    store = kv_store(client)
    assert await store.load() is None
    await store.save("r1")
    await store.save("r2")
    assert await store.load() == "r2"
    assert client.versions["goto-refresh-token"] == ["r1", "r2"]
    assert store.description == "Key Vault secret 'goto-refresh-token' in https://kv-x.vault.azure.net"
    await store.aclose()
    assert not client.closed  # a client handed in belongs to the caller


def test_the_store_follows_the_settings(tmp_path):
    vault = refresh_token_store(Settings(key_vault_url="https://kv-x.vault.azure.net/"))
    assert isinstance(vault, KeyVaultRefreshTokenStore)
    local = refresh_token_store(Settings(goto_refresh_token_file=str(tmp_path / "t")))
    assert isinstance(local, FileRefreshTokenStore) and local.path == tmp_path / "t"
    default = refresh_token_store(Settings())
    assert str(default.path).endswith(".gotosync/goto-refresh-token") and "~" not in str(default.path)


def test_unresolved_key_vault_references_are_recognised():
    assert unresolved_reference(UNRESOLVED)
    assert unresolved_reference(" @microsoft.keyvault(SecretUri=https://x/secrets/y/)")
    assert not unresolved_reference("a-real-token")
    assert not unresolved_reference("")


def test_token_provider_choice():
    assert isinstance(goto_token_provider(Settings(goto_access_token="t")), StaticTokenProvider)
    with pytest.raises(SettingsError, match="GOTO_CLIENT_ID"):
        goto_token_provider(Settings())
    pat = goto_token_provider(Settings(goto_client_id="c", goto_client_secret="s", goto_pat="p"))
    assert type(pat) is OAuthTokenProvider
    # An unresolved PAT reference is named as such (not reported as a missing refresh token) ...
    with pytest.raises(SettingsError, match=r"^GOTO_PAT is a Key Vault reference that App Service could not resolve"):
        goto_token_provider(Settings(goto_client_id="c", goto_client_secret="s", goto_pat=UNRESOLVED))
    # ... unless a real refresh token is given, which goes before a PAT anyway.
    assert isinstance(
        goto_token_provider(
            Settings(goto_client_id="c", goto_client_secret="s", goto_pat=UNRESOLVED, goto_refresh_token="r")
        ),
        StoredRefreshTokenProvider,
    )
    with pytest.raises(SettingsError, match="GOTO_CLIENT_SECRET is required with GOTO_PAT"):
        goto_token_provider(Settings(goto_client_id="c", goto_pat="p"))
    with pytest.raises(SettingsError, match="GOTO_CLIENT_SECRET is a Key Vault reference"):
        goto_token_provider(Settings(goto_client_id="c", goto_client_secret=UNRESOLVED.replace("refresh-token", "x")))


def provider(goto, store, seed: str = "") -> StoredRefreshTokenProvider:
    return StoredRefreshTokenProvider(
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, store, seed=seed, token_url=goto.token_url
    )


async def test_key_vault_goes_before_a_stale_app_setting(make_goto_emulator, tmp_path):
    """App Service caches Key Vault references for up to a day: after a rotation GOTO_REFRESH_TOKEN
    still holds the old (revoked) token. The vault is read first, so it is never even sent."""
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    first = (await run_authorize(goto, tmp_path))[0].refresh_token
    client = FakeSecretClient()
    store = kv_store(client)
    tokens = provider(goto, store, seed=first)
    try:
        await tokens.get_token()  # vault empty: the seed is used, and its rotation lands in the vault
    finally:
        await tokens.aclose()
    rotated = client.versions["goto-refresh-token"][-1]
    again = provider(goto, kv_store(client), seed=first)
    try:
        await again.get_token()
        assert again.source == store.description
    finally:
        await again.aclose()
    assert rotated != first


async def test_another_instance_rotated_the_token_meanwhile(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    first = (await run_authorize(goto, tmp_path))[0].refresh_token
    client = FakeSecretClient()
    await kv_store(client).save(first)
    a, b = provider(goto, kv_store(client)), provider(goto, kv_store(client))
    try:
        await a.get_token()
        await b.get_token()  # b loaded nothing yet: it reads the vault now and gets a's rotation
        await a.get_token(force_refresh=True)  # a's own token was rotated away by b: it re-reads the vault
    finally:
        await a.aclose()
        await b.aclose()
    assert len(client.versions["goto-refresh-token"]) == 4
    assert client.versions["goto-refresh-token"][-1] in goto.refresh_tokens()


async def test_a_rotated_token_that_cannot_be_saved_is_not_used_and_its_save_is_retried(
    make_goto_emulator, tmp_path, caplog
):
    """GoTo revokes the old refresh token when it rotates: an access token whose new refresh token
    is only in memory would leave the next run with nothing but a revoked token. So a failed save
    is an error (no access token handed out), and the next attempt saves first, then refreshes."""
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    first = (await run_authorize(goto, tmp_path))[0].refresh_token
    client = FakeSecretClient(fail_writes=1)
    tokens = provider(goto, kv_store(client), seed=first)
    caplog.set_level(logging.INFO, logger="gotosync.goto.tokens")
    try:
        with pytest.raises(TokenNotSaved, match=r"could not be saved.*cannot reach the vault") as info:
            await tokens.get_token()
        assert info.value.retryable  # the transport tries again, which saves first
        assert "goto-refresh-token" not in client.versions
        assert tokens._token is None  # the access token that came with it was not kept
        unsaved = tokens._unsaved
        assert await tokens.get_token()
    finally:
        await tokens.aclose()
    versions = client.versions["goto-refresh-token"]
    assert versions[0] == unsaved  # saved before it was spent ...
    assert versions[-1] == tokens._refresh_token and versions[-1] in goto.refresh_tokens()  # ... then rotated again
    for record in caplog.records:
        for secret in (first, *versions):
            assert secret not in record.getMessage()
    assert first not in str(info.value) and unsaved not in str(info.value)


async def test_pat_grant_does_not_touch_the_store(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    settings = Settings(
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=DEFAULT_CLIENT_SECRET,
        goto_pat=DEFAULT_PAT,
        goto_token_url=goto.token_url,
        goto_refresh_token_file=str(tmp_path / "never"),
    )
    tokens = goto_token_provider(settings)
    try:
        assert await tokens.get_token()
    finally:
        await tokens.aclose()
    assert not (tmp_path / "never").exists()


async def test_a_non_grant_error_is_not_retried_with_another_token(make_goto_emulator, tmp_path):
    goto = make_goto_emulator(rate_limit=0)
    _, store, _ = await run_authorize(goto, tmp_path)
    tokens = StoredRefreshTokenProvider(
        DEFAULT_CLIENT_ID, "wrong-secret", store, seed="other", token_url=goto.token_url
    )
    try:
        with pytest.raises(AuthError, match="invalid_client"):
            await tokens.get_token()
    finally:
        await tokens.aclose()
    assert tokens._tried == set()


def test_importing_the_runtime_loads_neither_key_vault_nor_telemetry():
    code = (
        "import sys, shared.runtime, shared.telemetry, cli.main\n"
        "bad = [m for m in sys.modules if m.startswith(('azure.keyvault', 'azure.monitor'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


async def test_the_client_secret_comes_from_the_vault_when_its_reference_is_not_resolved(
    make_goto_emulator, tmp_path, monkeypatch
):
    """Right after `gotosync authorize --store-client-secret` App Service has not yet resolved the
    GOTO_CLIENT_SECRET reference (nor has an admin's shell any): the vault is read directly."""
    goto = make_goto_emulator(rate_limit=0)
    first = (await run_authorize(goto, tmp_path))[0].refresh_token
    vault = FakeSecretClient()
    await kv_store(vault).save(first)
    monkeypatch.setattr(KeyVaultRefreshTokenStore, "_secrets", lambda self: vault)
    settings = Settings(
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=UNRESOLVED.replace("goto-refresh-token", "goto-client-secret"),
        goto_refresh_token=UNRESOLVED,
        goto_token_url=goto.token_url,
        key_vault_url="https://kv-x.vault.azure.net/",
    )
    tokens = goto_token_provider(settings)
    try:
        with pytest.raises(AuthError, match=r"no GoTo client secret.*'goto-client-secret'.*--store-client-secret"):
            await tokens.get_token()
        await kv_store(vault).save_secret("goto-client-secret", DEFAULT_CLIENT_SECRET)
        assert await tokens.get_token()
    finally:
        await tokens.aclose()
    shell = goto_token_provider(settings.with_overrides(goto_client_secret=""))  # an admin's workstation
    try:
        assert await shell.get_token()
    finally:
        await shell.aclose()


async def test_an_unreachable_key_vault_is_one_clear_error_without_chained_tracebacks():
    from azure.keyvault.secrets.aio import SecretClient

    url = f"https://127.0.0.1:{closed_port()}"
    client = SecretClient(url, StaticTokenCredential("t"), retry_total=0)
    store = KeyVaultRefreshTokenStore(url, client=client)
    try:
        for call in (store.load(), store.save("rt-x")):
            with pytest.raises(CredentialStoreError) as info:
                await call
            message = str(info.value)
            assert message.startswith("cannot ") and f"Key Vault secret 'goto-refresh-token' in {url}" in message
            assert "cannot reach the vault" in message and "KEY_VAULT_URL" in message
            assert "\n" not in message
            assert info.value.__cause__ is None and info.value.__suppress_context__  # one error, not three
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\nAttempted credentials:\n\t..."),
         "no Azure credential could sign in to the vault"),
        (HttpResponseError(message="Forbidden", response=SimpleNamespace(status_code=403, reason="Forbidden",
                                                                          headers={}, text=lambda: "")),
         "'Key Vault Secrets Officer'"),
        (ServiceRequestError("connection reset"), "cannot reach the vault"),
    ],
)  # fmt: skip
def test_key_vault_failures_are_explained_in_one_line(error, says):
    err = key_vault_error("read", "goto-pat", "https://kv-x.vault.azure.net", error)
    assert says in str(err) and "\n" not in str(err) and "goto-pat" in str(err)
    assert err.code == "CredentialStoreUnavailable"


def test_the_cli_says_the_vault_is_unreachable_in_one_line(make_world, tmp_path, monkeypatch, capsys):
    world = make_world(users=2, assign=1)
    env = world.env(
        goto_access_token="",
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=DEFAULT_CLIENT_SECRET,
        key_vault_url=f"https://127.0.0.1:{closed_port()}",
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli_main(["sync"]) == 5
    err = capsys.readouterr().err
    assert err.startswith("gotosync: cannot read Key Vault secret 'goto-refresh-token'") and "cannot reach" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert cli_main(["test-connection", "--json"]) == 1
    goto = json.loads(capsys.readouterr().out)["checks"][0]
    assert goto["code"] == "CredentialStoreUnavailable" and "KEY_VAULT_URL" in goto["fix"]
