"""The deployment commands of the `gotosync` CLI: `authorize` (GoTo consent, refresh token into
Key Vault or the local file) and `grant-permissions` (Graph app roles for the managed identity).

cli/main.py adds these parsers and dispatches to the handlers; heavy imports (msgraph, the Key
Vault SDK) happen only when a command runs. A refusal is raised as a gotosync error, which
cli/main.py translates like every other (shared/errors.py).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import webbrowser
from typing import Any

from rich.console import Console

from cli.render import emit, print_authorized, print_grants
from shared.ops import InvalidInput
from shared.settings import Settings

REQUIRED_SCOPES = ("identity:scim.org",)


def add_deploy_parsers(sub: Any) -> None:
    auth = sub.add_parser(
        "authorize",
        help="consent to GoTo once (OAuth authorization code) and store the refresh token",
        description="Prints a GoTo sign-in URL; sign in as a GoTo organization admin. The refresh token goes to "
        "Key Vault when KEY_VAULT_URL is set, else to GOTO_REFRESH_TOKEN_FILE (~/.gotosync/goto-refresh-token).",
    )
    auth.add_argument("--client-id", help="GoTo OAuth client id (default: GOTO_CLIENT_ID)")
    auth.add_argument(
        "--port",
        type=int,
        default=0,
        help="loopback port of the redirect http://127.0.0.1:PORT/callback (default: a free one; "
        "give one if your GoTo OAuth client only accepts a registered redirect URI)",
    )
    auth.add_argument("--scope", help="space-separated scopes (default: none asked, GoTo grants the client's)")
    auth.add_argument("--authorize-url", help="authorize endpoint (default: next to GOTO_TOKEN_URL)")
    auth.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (default 300)")
    auth.add_argument("--no-browser", action="store_true", help="only print the URL")
    auth.add_argument(
        "--store-client-secret",
        action="store_true",
        help="also store the client secret in Key Vault as goto-client-secret (what GOTO_CLIENT_SECRET refers to)",
    )
    auth.add_argument("--json", action="store_true")

    grant = sub.add_parser(
        "grant-permissions",
        help="give the Function app's managed identity its Microsoft Graph application permissions",
        description="Run as a Privileged Role Administrator (az login). Needed only when the deployment did not "
        "grant them (grantGraphPermissions=false).",
    )
    grant.add_argument(
        "--principal-id", required=True, help="object (principal) id of the managed identity: "
        "azd env get-value AZURE_MANAGED_IDENTITY_PRINCIPAL_ID",
    )  # fmt: skip
    grant.add_argument(
        "--permission",
        action="append",
        default=[],
        help="a Graph application permission (repeatable; default: the four gotosync need)",
    )
    grant.add_argument("--dry-run", action="store_true", help="show what would be granted")
    grant.add_argument("--json", action="store_true")


def _client_secret(settings: Settings) -> str:
    from shared.goto.token_store import unresolved_reference

    secret = settings.goto_client_secret
    if secret and not unresolved_reference(secret):
        return secret
    if sys.stdin.isatty():
        return getpass.getpass("GoTo OAuth client secret: ").strip()
    return ""


async def _secret_for(settings: Settings, args: argparse.Namespace, store: Any) -> str:
    """The client secret: the setting, a prompt, or (authorizing again) the vault's copy."""
    from shared.goto.token_store import CLIENT_SECRET_SECRET, KeyVaultRefreshTokenStore

    if args.store_client_secret and not isinstance(store, KeyVaultRefreshTokenStore):
        raise InvalidInput("--store-client-secret", "needs KEY_VAULT_URL")
    secret = _client_secret(settings)
    if not secret and isinstance(store, KeyVaultRefreshTokenStore) and not args.store_client_secret:
        secret = await store.load_secret(CLIENT_SECRET_SECRET) or ""  # authorizing again: the vault has it
    if not secret:
        raise InvalidInput("GOTO_CLIENT_SECRET", "authorize needs the OAuth client secret (or a terminal to ask it)")
    return secret


def _show_url(args: argparse.Namespace) -> Any:
    prompt = Console(stderr=True)  # stdout stays one JSON document with --json

    async def show(url: str) -> None:
        prompt.print("Open this URL and sign in to GoTo as an organization admin:", style="bold")
        prompt.print(url, soft_wrap=True, markup=False, highlight=False)
        if not args.no_browser:
            await asyncio.to_thread(webbrowser.open, url)

    return show


async def cmd_authorize(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from shared.goto.authorize import authorize
    from shared.goto.token_store import CLIENT_SECRET_SECRET, refresh_token_store

    client_id = args.client_id or settings.goto_client_id
    if not client_id:
        raise InvalidInput("--client-id", "authorize needs the OAuth client id: --client-id or GOTO_CLIENT_ID")
    store = refresh_token_store(settings)
    try:
        secret = await _secret_for(settings, args, store)
        result = await authorize(
            client_id,
            secret,
            store,
            token_url=settings.goto_token_url,
            authorize_url=args.authorize_url,
            scope=args.scope,
            port=args.port,
            wait_seconds=args.timeout,
            show_url=_show_url(args),
        )
        if args.store_client_secret:
            await store.save_secret(CLIENT_SECRET_SECRET, secret)  # type: ignore[attr-defined]
    finally:
        await store.aclose()
    scopes = (result.scope or "").split()
    doc = {
        "principal": result.principal,
        "scopes": scopes,
        "storedIn": result.stored_in,
        "clientSecretStored": bool(args.store_client_secret),
        "missingScopes": [s for s in REQUIRED_SCOPES if scopes and s not in scopes],
    }
    emit(args, console, doc, print_authorized, doc, CLIENT_SECRET_SECRET)
    return 0


async def cmd_grant_permissions(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from shared.deploy.permissions import DEFAULT_PERMISSIONS, grant_permissions
    from shared.entra.graph import make_graph_client

    client, credential = make_graph_client(settings.graph_base_url, settings.graph_static_token)
    try:
        grants = await grant_permissions(
            client, args.principal_id, args.permission or DEFAULT_PERMISSIONS, dry_run=args.dry_run
        )
    finally:
        await credential.close()
    emit(args, console, [g.__dict__ for g in grants], print_grants, grants)
    return 0
