"""Test connection: can gotosync reach and use GoTo, Microsoft Graph and its storage? Each
part is checked on its own (one failing does not hide the others) and each failure says what
to fix.

GoTo is checked the way Entra's Test Connection does it
(docs/reference/entra-provisioning.md#test-connection): `GET /Users?filter=userName eq
"<random GUID>"` must answer 200 with an empty list. A refused token is refreshed
once first (the GoTo transport does that on any 401/403).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from azure.core.exceptions import ClientAuthenticationError

from shared.entra.graph import make_graph_client
from shared.entra.reader import EntraReader, GraphReadError
from shared.goto.errors import AUTHORIZE_AGAIN, AuthError, GoToError, NotFound, TransientError
from shared.goto.scim import GoToScimClient
from shared.goto.token_store import CredentialStoreError
from shared.redaction import scrub
from shared.runtime import goto_token_provider
from shared.settings import Settings, SettingsError
from shared.store import Store, StoreError

GRAPH_PERMISSIONS = ("Application.Read.All", "User.Read.All", "GroupMember.Read.All")


@dataclass(frozen=True)
class Check:
    name: str  # "GoTo" | "Microsoft Graph" | "Storage"
    ok: bool
    detail: str  # what was found
    fix: str = ""  # what to do about it
    code: str = ""  # short failure kind: Unauthorized, Unreachable, Forbidden, NotFound, Misconfigured, ...

    def document(self) -> dict[str, Any]:
        # Details quote upstream answers: scrubbed once more on the way out, whatever made them.
        return {
            "name": self.name,
            "ok": self.ok,
            "code": self.code or None,
            "detail": scrub(self.detail),
            "fix": scrub(self.fix),
        }


@dataclass(frozen=True)
class ConnectionReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def document(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.document() for c in self.checks]}


async def check_connection(settings: Settings) -> ConnectionReport:
    """GoTo, Graph and storage, checked at once."""
    checks = await asyncio.gather(
        _guard("GoTo", check_goto, settings),
        _guard("Microsoft Graph", check_graph, settings),
        _guard("Storage", check_storage, settings),
    )
    return ConnectionReport(tuple(checks))


async def _guard(name: str, check: Callable[[Settings], Awaitable[Check]], settings: Settings) -> Check:
    try:
        return await check(settings)
    except SettingsError as exc:
        return Check(name, False, str(exc), "set the app setting named above", "Misconfigured")
    except Exception as exc:  # an unforeseen failure of one part must not hide the other checks
        return Check(
            name, False, scrub(f"{type(exc).__name__}: {exc}"), "see the detail; this failure is not classified"
        )


# ---------------------------------------------------------------------------- GoTo


async def check_goto(settings: Settings) -> Check:
    name = "GoTo"
    tokens = goto_token_provider(settings)
    probe = str(uuid.uuid4())
    scim = GoToScimClient(
        settings.goto_scim_url,
        tokens,
        rate_limit=None,
        max_attempts=2,
        backoff_cap=1.0,
        timeout=15.0,
        profile=settings.scim_profile,
    )
    try:
        found = await scim.find_users("userName", probe)
        refreshed = scim.stats.token_refreshes > 0
    except CredentialStoreError as exc:
        return Check(
            name,
            False,
            str(exc),
            "check KEY_VAULT_URL and the identity's role on the vault (or GOTO_REFRESH_TOKEN_FILE for a local run)",
            exc.code,
        )
    except AuthError as exc:
        fix = AUTHORIZE_AGAIN
        if settings.goto_access_token:
            fix = "GOTO_ACCESS_TOKEN is not accepted: set a valid bearer token, or remove it and " + fix
        return Check(name, False, _goto_auth_detail(exc, settings), fix, "Unauthorized")
    except TransientError as exc:
        if exc.code in _NOT_GOTO:  # the refresh lease or the token store, not GoTo, failed
            return Check(name, False, str(exc), _NOT_GOTO[exc.code], exc.code)
        if exc.status is None:
            where = settings.goto_token_url if _from_token_endpoint(exc) else settings.goto_scim_url
            return Check(
                name,
                False,
                f"cannot reach GoTo at {where}: {exc}",
                "check GOTO_SCIM_URL and GOTO_TOKEN_URL, DNS and the outbound network (firewall, VNet)",
                "Unreachable",
            )
        return Check(name, False, f"GoTo is failing: {exc}", "GoTo is having trouble; test again later", exc.code)
    except NotFound as exc:
        return Check(
            name,
            False,
            f"{settings.goto_scim_url}/Users does not exist: {exc}",
            "check GOTO_SCIM_URL (GoTo's SCIM base is https://api.getgo.com/identity/v1)",
            "NotFound",
        )
    except GoToError as exc:
        return Check(name, False, f"GoTo refused the test query: {exc}", "see GoTo's answer above", exc.code)
    finally:
        await scim.aclose()
        aclose = getattr(tokens, "aclose", None)
        if aclose is not None:
            await aclose()
    if found:
        return Check(
            name,
            False,
            f"GoTo answered a filter on a random userName with {len(found)} user(s) instead of none: it does not "
            "honour SCIM filters, so matching by userName would adopt the wrong users",
            "check that GOTO_SCIM_URL points at GoTo's SCIM (Identity) API",
            "SystemForCrossDomainIdentityManagementServiceIncompatible",
        )
    detail = f'GET /Users?filter=userName eq "{probe}" answered with an empty list'
    if refreshed:
        detail += " (after getting a new access token: the first one was refused)"
    return Check(name, True, detail)


_NOT_GOTO = {
    "StorageUnavailable": "the GoTo token refresh takes a lease in gotosync's storage: fix the storage check first",
    "TokenNotSaved": "check KEY_VAULT_URL and the identity's 'Key Vault Secrets Officer' role (or the token file), "
    "then test again: the new refresh token is saved before anything else",
}


def _from_token_endpoint(exc: GoToError) -> bool:
    return exc.op is not None and exc.op.name == "get access token"


def _goto_auth_detail(exc: AuthError, settings: Settings) -> str:
    if _from_token_endpoint(exc):
        return f"GoTo's token endpoint refused gotosync's credentials: {exc}"
    source = "GOTO_ACCESS_TOKEN" if settings.goto_access_token else "the access token obtained from the refresh token"
    return f"GoTo refused {source} (HTTP {exc.status}) even after asking for a new one: {exc}"


# ---------------------------------------------------------------------------- Graph


async def check_graph(settings: Settings) -> Check:
    name = "Microsoft Graph"
    settings.require("service_principal_id")
    sp_id = settings.service_principal_id
    client, credential = make_graph_client(settings.graph_base_url, settings.graph_static_token)
    reader = EntraReader(client, sp_id, settings.graph_base_url)
    try:
        roles = await reader.app_roles()
        assignments = await reader.assignments(roles)
    except GraphReadError as exc:
        return _graph_failure(exc, sp_id)
    except httpx.TransportError as exc:
        return Check(
            name,
            False,
            f"cannot reach Microsoft Graph at {settings.graph_base_url}: {type(exc).__name__}: {exc}",
            "check GRAPH_BASE_URL, DNS and the outbound network",
            "Unreachable",
        )
    except ClientAuthenticationError as exc:
        return Check(
            name,
            False,
            f"no access token for Microsoft Graph: {exc.message}",
            "enable the Function app's managed identity (locally: sign in with `az login`)",
            "Unauthorized",
        )
    finally:
        await credential.close()
    users = sum(1 for a in assignments.values() if a.principal_type == "User")
    groups = len(assignments) - users
    named_roles = sorted(v for v in roles.values() if v)
    return Check(
        name,
        True,
        f"read service principal {sp_id}: app roles {', '.join(named_roles) or '(Default Access only)'}; "
        f"{users} user(s) and {groups} group(s) assigned",
    )


def _graph_failure(exc: GraphReadError, sp_id: str) -> Check:
    name = "Microsoft Graph"
    if exc.status == 403:
        return Check(
            name,
            False,
            f"Graph refused the read (403 {exc.code}): {exc}",
            "grant the Function app's managed identity the Microsoft Graph application permissions "
            f"{', '.join(GRAPH_PERMISSIONS)} (with admin consent; `gotosync grant-permissions`)",
            "Forbidden",
        )
    if exc.status == 401:
        return Check(
            name,
            False,
            f"Graph did not accept the access token (401 {exc.code}): {exc}",
            "check the managed identity (or GRAPH_STATIC_TOKEN for a local run) and the tenant",
            "Unauthorized",
        )
    if exc.status in (400, 404):
        return Check(
            name,
            False,
            f"service principal {sp_id!r} not found ({exc.status} {exc.code})",
            "check ENTRA_SERVICE_PRINCIPAL_ID: the Object ID on the enterprise application's Overview page "
            "(not the Application (client) ID)",
            "NotFound",
        )
    return Check(name, False, str(exc), "Graph is failing; test again later", exc.code or "GraphError")


# ---------------------------------------------------------------------------- storage


def _store_for_check(settings: Settings) -> Store:
    # One attempt: a test should say "unreachable" at once, not after the SDK's retries.
    if settings.storage_connection_string:
        return Store.from_connection_string(settings.storage_connection_string, settings.table_prefix, retry_total=0)
    if settings.storage_table_endpoint:
        return Store.from_endpoint(settings.storage_table_endpoint, prefix=settings.table_prefix, retry_total=0)
    raise SettingsError("GOTOSYNC_STORAGE (or AzureWebJobsStorage, or GOTOSYNC_TABLE_ENDPOINT) is required")


async def check_storage(settings: Settings) -> Check:
    name = "Storage"
    store = _store_for_check(settings)
    try:
        await store.open()
        job = await store.job.get()
    except StoreError as exc:
        return Check(
            name,
            False,
            str(exc),
            "check GOTOSYNC_STORAGE (the connection string), or with a managed identity GOTOSYNC_TABLE_ENDPOINT and "
            "the identity's 'Storage Table Data Contributor' role on the storage account",
            "Unreachable" if "cannot reach" in str(exc) else "Forbidden" if "access denied" in str(exc) else "Failed",
        )
    finally:
        await store.close()
    return Check(
        name, True, f"read the job state from {store.endpoint} (provisioning {'on' if job.enabled else 'off'})"
    )
