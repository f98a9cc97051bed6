"""Wires the engine's parts from Settings: the store, the Graph reader, the GoTo clients (SCIM,
and the Admin API for licenses), and the attribute mapping (MAPPING_FILE).

Every entrance (timer, CLI, later the webhook worker) opens its engine here, so that all of
them run with the same configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shared.engine.cycle import SyncEngine
from shared.entra.graph import make_graph_client
from shared.entra.reader import EntraReader
from shared.goto.admin import GoToAdminClient
from shared.goto.auth import OAuthTokenProvider, StaticTokenProvider, TokenProvider
from shared.goto.ratelimit import SharedBudget
from shared.goto.scim import GoToScimClient
from shared.mapping import MappingConfig, MappingConfigError, load_mapping
from shared.settings import Settings, SettingsError
from shared.store import LeaseRepository, Store

SCIM_BUDGET = "goto-scim"  # GoTo limits each API separately: one shared budget per API
ADMIN_BUDGET = "goto-admin"


@dataclass
class Runtime:
    settings: Settings
    store: Store
    reader: EntraReader
    scim: GoToScimClient
    engine: SyncEngine
    admin: GoToAdminClient | None = None  # the Admin API (licenses); None when not opened


def goto_token_provider(settings: Settings, store: Store | None = None) -> TokenProvider:
    """GOTO_ACCESS_TOKEN (a fixed bearer token); GOTO_PAT when no refresh token is set; else the refresh-token
    grant with the token kept in Key Vault (KEY_VAULT_URL) or the local file, where every rotated
    token is saved and from where it is loaded when GOTO_REFRESH_TOKEN is empty. Its refreshes
    take the lease in `store` (an open store), else in a store of their own opened on first
    refresh (none without storage settings)."""
    from shared.goto.token_store import (
        FixedLeases,
        StoredRefreshTokenProvider,
        client_secret_from,
        refresh_token_store,
        unresolved_reference,
    )

    if settings.goto_access_token:
        if unresolved_reference(settings.goto_access_token):
            raise SettingsError(
                "GOTO_ACCESS_TOKEN is a Key Vault reference that App Service could not resolve: create the secret "
                "goto-access-token in the vault (docs/scim-targets.md), then restart the app"
            )
        return StaticTokenProvider(settings.goto_access_token)
    if not settings.goto_client_id:
        raise SettingsError(
            "GoTo credentials are missing: set GOTO_CLIENT_ID and GOTO_CLIENT_SECRET, then run `gotosync authorize` "
            "(or set GOTO_REFRESH_TOKEN or GOTO_PAT; or GOTO_ACCESS_TOKEN, the bearer token of a SCIM 2.0 app)"
        )
    secret = client_secret_from(settings)
    refresh_unresolved = unresolved_reference(settings.goto_refresh_token)
    refresh_token = "" if refresh_unresolved else settings.goto_refresh_token
    if unresolved_reference(settings.goto_pat) and not refresh_token:
        raise SettingsError(
            "GOTO_PAT is a Key Vault reference that App Service could not resolve (the secret 'goto-pat' is "
            "missing, or the app's identity may not read it): create the secret, check the identity's "
            "'Key Vault Secrets User' (or Officer) role on the vault, and restart the app; or empty GOTO_PAT "
            "to use the refresh token (`gotosync authorize`)"
        )
    pat = "" if unresolved_reference(settings.goto_pat) else settings.goto_pat
    if pat and not refresh_token:
        if not secret:
            raise SettingsError("GOTO_CLIENT_SECRET is required with GOTO_PAT (and must resolve: restart the app)")
        return OAuthTokenProvider(settings.goto_client_id, secret, pat=pat, token_url=settings.goto_token_url)
    return StoredRefreshTokenProvider(
        settings.goto_client_id,
        secret,
        refresh_token_store(settings),
        seed=refresh_token,
        seed_unresolved=refresh_unresolved,
        leases=FixedLeases(store.lease) if store is not None else OwnLeases(settings),
        token_url=settings.goto_token_url,
    )


class OwnLeases:
    """The token-refresh lease for a token provider made without an open store (test
    connection): a store of its own, opened on the first refresh and closed with the provider.
    Without storage settings there is no lease table (a local run): None."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Store | None = None

    async def repository(self) -> LeaseRepository | None:
        if self._store is None:
            s = self._settings
            if not (s.storage_connection_string or s.storage_table_endpoint):
                return None
            self._store = await open_store(s)
        return self._store.lease

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None


def shared_budget(settings: Settings, store: Store, name: str) -> SharedBudget | None:
    """The GoTo API `name`'s request budget shared with every instance through `store`; None when
    GoTo is not paced (GOTO_RATE_LIMIT unset) or GOTO_SHARED_BUDGET is off."""
    if not settings.goto_rate_limit or not settings.goto_shared_budget:
        return None
    return SharedBudget(
        store.budget,
        name,
        settings.goto_rate_limit,
        instances=settings.goto_instances,
        batch=settings.goto_budget_batch,
    )


def alone_rate(settings: Settings) -> float | None:
    """The pace of an instance without the shared budget: GoTo's limit split between instances."""
    if not settings.goto_rate_limit:
        return None
    return settings.goto_rate_limit / (1 if settings.goto_shared_budget else settings.goto_instances)


def new_store(settings: Settings) -> Store:
    """The store the settings name, not opened yet."""
    if settings.storage_connection_string:
        return Store.from_connection_string(settings.storage_connection_string, prefix=settings.table_prefix)
    if settings.storage_table_endpoint:
        # No credential given: the store makes (and closes) a DefaultAzureCredential.
        return Store.from_endpoint(settings.storage_table_endpoint, prefix=settings.table_prefix)
    raise SettingsError("GOTOSYNC_STORAGE (or AzureWebJobsStorage, or GOTOSYNC_TABLE_ENDPOINT) is required")


async def open_store(settings: Settings) -> Store:
    store = new_store(settings)
    try:
        await store.open()
    except BaseException:
        await store.close()
        raise
    return store


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Store]:
    """The store alone (status, logs, control commands), closed when done."""
    store = await open_store(settings)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def open_runtime(settings: Settings, mapping: MappingConfig | None = None) -> AsyncIterator[Runtime]:
    """`mapping` replaces MAPPING_FILE (for `gotosync mapping preview --file`). A broken mapping
    file is a SettingsError naming MAPPING_FILE and every problem, raised before anything opens."""
    settings.require("service_principal_id")
    try:
        config = mapping if mapping is not None else load_mapping(settings.mapping_file)
    except MappingConfigError as exc:
        raise SettingsError(f"MAPPING_FILE: {exc}") from exc
    store = await open_store(settings)
    graph, credential = make_graph_client(settings.graph_base_url, settings.graph_static_token)
    tokens = goto_token_provider(settings, store)
    scim = GoToScimClient(
        settings.goto_scim_url,
        tokens,
        rate_limit=alone_rate(settings),
        max_concurrency=settings.goto_max_concurrency,
        patch_style=settings.goto_patch_style,
        send_active=settings.goto_send_active,
        profile=settings.scim_profile,
        budget=shared_budget(settings, store, SCIM_BUDGET),
    )
    # The Admin API client costs nothing until used: the engine calls it only with ROLE_LICENSES.
    admin = GoToAdminClient(
        settings.goto_admin_url,
        tokens,
        scim=scim,
        rate_limit=alone_rate(settings),
        max_concurrency=settings.goto_max_concurrency,
        budget=shared_budget(settings, store, ADMIN_BUDGET),
    )
    reader = EntraReader(graph, settings.service_principal_id, settings.graph_base_url)
    try:
        async with scim, admin:
            engine = SyncEngine(settings, store, reader, scim, mapping=config, admin=admin)
            yield Runtime(settings, store, reader, scim, engine, admin)
    finally:
        await store.close()
        await credential.close()
        if isinstance(tokens, OAuthTokenProvider):
            await tokens.aclose()
