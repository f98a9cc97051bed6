"""The deployment commands of the `gotosync` CLI: `authorize` (GoTo consent, refresh token into
Key Vault or the local file) and `grant-permissions` (Graph app roles for the managed identity).

shared/cli.py adds these parsers and dispatches to the handlers; heavy imports (msgraph, the Key
Vault SDK) happen only when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import webbrowser
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
        help="a Graph application permission (repeatable; default: the four gotosync needs)",
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


async def cmd_authorize(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from shared.goto.authorize import authorize
    from shared.goto.errors import AuthError, GoToError
    from shared.goto.token_store import CLIENT_SECRET_SECRET, KeyVaultRefreshTokenStore, refresh_token_store

    client_id = args.client_id or settings.goto_client_id
    if not client_id:
        print("gotosync: authorize needs the OAuth client id: --client-id or GOTO_CLIENT_ID", file=sys.stderr)
        return 2
    store = refresh_token_store(settings)
    if args.store_client_secret and not isinstance(store, KeyVaultRefreshTokenStore):
        print("gotosync: --store-client-secret needs KEY_VAULT_URL", file=sys.stderr)
        await store.aclose()
        return 2
    secret = _client_secret(settings)
    if not secret and isinstance(store, KeyVaultRefreshTokenStore) and not args.store_client_secret:
        secret = await store.load_secret(CLIENT_SECRET_SECRET) or ""  # authorizing again: the vault has it
    if not secret:
        print("gotosync: authorize needs the OAuth client secret: GOTO_CLIENT_SECRET (or a terminal)", file=sys.stderr)
        await store.aclose()
        return 2

    prompt = Console(stderr=True)  # stdout stays one JSON document with --json

    async def show(url: str) -> None:
        prompt.print("Open this URL and sign in to GoTo as an organization admin:", style="bold")
        prompt.print(url, soft_wrap=True, markup=False, highlight=False)
        if not args.no_browser:
            await asyncio.to_thread(webbrowser.open, url)

    try:
        result = await authorize(
            client_id,
            secret,
            store,
            token_url=settings.goto_token_url,
            authorize_url=args.authorize_url,
            scope=args.scope,
            port=args.port,
            wait_seconds=args.timeout,
            show_url=show,
        )
        if args.store_client_secret:
            assert isinstance(store, KeyVaultRefreshTokenStore)
            await store.save_secret(CLIENT_SECRET_SECRET, secret)
    except (AuthError, GoToError) as exc:
        print(f"gotosync: authorize failed: {exc}", file=sys.stderr)
        return 5
    finally:
        await store.aclose()
    scopes = (result.scope or "").split()
    missing = [s for s in REQUIRED_SCOPES if scopes and s not in scopes]
    doc = {
        "principal": result.principal,
        "scopes": scopes,
        "storedIn": result.stored_in,
        "clientSecretStored": bool(args.store_client_secret),
        "missingScopes": missing,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        console.print(f"[green]GoTo authorized[/] by {escape(str(result.principal))}")
        console.print(f"scopes: {escape(' '.join(scopes) or '(not reported)')}")
        console.print(f"refresh token stored in {escape(result.stored_in)}")
        if args.store_client_secret:
            console.print(f"client secret stored as {CLIENT_SECRET_SECRET!r} in the same vault")
        if missing:
            console.print(f"[yellow]the token lacks {', '.join(missing)}: SCIM calls will be refused[/]")
    return 0


async def cmd_grant_permissions(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from shared.deploy.permissions import DEFAULT_PERMISSIONS, PermissionGrantError, grant_permissions
    from shared.entra.graph import make_graph_client

    client, credential = make_graph_client(settings.graph_base_url, settings.graph_static_token)
    try:
        grants = await grant_permissions(
            client, args.principal_id, args.permission or DEFAULT_PERMISSIONS, dry_run=args.dry_run
        )
    except PermissionGrantError as exc:
        print(f"gotosync: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        status = getattr(exc, "response_status_code", None)
        if status in (401, 403):
            print(
                "gotosync: Microsoft Graph refused the grant: sign in (az login) as a Privileged Role Administrator "
                f"or Global Administrator (HTTP {status})",
                file=sys.stderr,
            )
            return 5
        raise
    finally:
        await credential.close()
    if args.json:
        print(json.dumps([g.__dict__ for g in grants], indent=2))
        return 0
    table = Table("permission", "app role id", "status")
    for g in grants:
        table.add_row(g.permission, g.app_role_id, g.status)
    console.print(table)
    return 0
