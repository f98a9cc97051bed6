"""App Service Authentication ("Easy Auth"), as the local Functions host stand-in plays it.

In Azure the platform signs users in with Microsoft Entra ID (`/.auth/login/aad`), keeps the
session in a cookie, removes any `X-MS-CLIENT-PRINCIPAL*` / `X-MS-TOKEN-*` header a client sends,
injects `X-MS-CLIENT-PRINCIPAL` (base64 JSON of the claims) for a signed-in caller, and tells the
app it is on with `WEBSITE_AUTH_ENABLED=True`
(https://learn.microsoft.com/en-us/azure/app-service/configure-authentication-user-identities).

Locally there is no Entra ID: signing in takes the host's function key instead
(`/.auth/login/aad?code=<key>&post_login_redirect_uri=/api/console`), and the session is one of
the local users configured here (`&user=<name>` picks another than the first). Everything else
is as the platform does it, so the app's code path is the same. The session cookie is HttpOnly
and SameSite=Strict: the key is used once, to sign in, and never reaches the page.
"""

from __future__ import annotations

import base64
import html
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

SESSION_COOKIE = "AppServiceAuthSession"
PLATFORM_VARIABLE = "WEBSITE_AUTH_ENABLED"
ROLE_TYPE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
NAME_TYPE = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
OID_TYPE = "http://schemas.microsoft.com/identity/claims/objectidentifier"
DEFAULT_LANDING = "/api/console"


@dataclass(frozen=True)
class LocalUser:
    name: str
    object_id: str
    roles: tuple[str, ...] = ()

    def principal(self) -> dict[str, Any]:
        """The claims document the platform would inject for this user."""
        claims = [
            {"typ": OID_TYPE, "val": self.object_id},
            {"typ": "preferred_username", "val": self.name},
            {"typ": "name", "val": self.name},
            *({"typ": "roles", "val": role} for role in self.roles),
        ]
        return {"auth_typ": "aad", "name_typ": NAME_TYPE, "role_typ": ROLE_TYPE, "claims": claims}


LOCAL_ADMIN = LocalUser("local-admin@localhost", "00000000-0000-4000-8000-00000000ad01", ("Gotosync.Admin",))


def _local_path(target: str | None) -> str:
    """Only a path on this host (no scheme, no other host, no `//host`): no open redirect."""
    if not target:
        return DEFAULT_LANDING
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return DEFAULT_LANDING
    return target


def _page(title: str, text: str, status: int) -> web.Response:
    body = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<link rel='stylesheet' href='/api/console/assets/console.css'></head>"
        f"<body><main class='message-page'><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></main></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


@dataclass
class EasyAuthEmulation:
    """The platform's part, for the stand-in: sign-in with the function key, sessions, and the
    principal headers. `users`: who may sign in (the first is the default)."""

    users: tuple[LocalUser, ...] = (LOCAL_ADMIN,)
    _sessions: dict[str, LocalUser] = field(default_factory=dict)
    _previous: str | None = None

    def switch_on(self) -> None:
        self._previous = os.environ.get(PLATFORM_VARIABLE)
        os.environ[PLATFORM_VARIABLE] = "True"

    def switch_off(self) -> None:
        if self._previous is None:
            os.environ.pop(PLATFORM_VARIABLE, None)
        else:
            os.environ[PLATFORM_VARIABLE] = self._previous

    def add_routes(self, app: web.Application, function_key: str) -> None:
        async def login(request: web.Request) -> web.StreamResponse:
            given = request.query.get("code", "")
            if not secrets.compare_digest(given.encode(), function_key.encode()):
                return _page(
                    "Sign in",
                    "Local sign-in takes the host's function key: open the console URL that "
                    "`make demo ARGS=--world` (or `python -m emulators.functions_host`) printed.",
                    401,
                )
            wanted = request.query.get("user")
            user = next((u for u in self.users if u.name == wanted), None) if wanted else self.users[0]
            if user is None:
                return _page("Sign in", "No such local user.", 400)
            session = secrets.token_urlsafe(32)
            self._sessions[session] = user
            response = web.HTTPFound(_local_path(request.query.get("post_login_redirect_uri")))
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Strict", path="/")
            return response

        async def logout(request: web.Request) -> web.StreamResponse:
            self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
            target = request.query.get("post_logout_redirect_uri")
            response: web.StreamResponse
            if target:
                response = web.HTTPFound(_local_path(target))
            else:
                response = _page("Signed out", "You are signed out of the console.", 200)
            response.del_cookie(SESSION_COOKIE, path="/")
            return response

        app.router.add_get("/.auth/login/aad", login)
        app.router.add_get("/.auth/logout", logout)

    def headers_for(self, request: web.Request) -> dict[str, str]:
        """The request's headers as the app sees them behind the platform: client-sent identity
        headers removed, the signed-in user's principal added."""
        headers = {
            k: v
            for k, v in request.headers.items()
            if not k.lower().startswith(("x-ms-client-principal", "x-ms-token-"))
        }
        user = self._sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if user is not None:
            encoded = base64.b64encode(json.dumps(user.principal()).encode()).decode()
            headers |= {
                "X-MS-CLIENT-PRINCIPAL": encoded,
                "X-MS-CLIENT-PRINCIPAL-ID": user.object_id,
                "X-MS-CLIENT-PRINCIPAL-NAME": user.name,
                "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
            }
        return headers
