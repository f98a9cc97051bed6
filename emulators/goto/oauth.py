"""The OAuth 2.0 endpoints of GoTo's authentication host (docs/reference/goto-api.md#oauth), served
by the emulator at ``/oauth/authorize`` and ``/oauth/token`` (real host:
authentication.logmeininc.com).

The authorize endpoint auto-consents (no login page): it redirects straight back to the client
with a single-use code. The token endpoint requires HTTP Basic client authentication and a
form-urlencoded body, and offers authorization_code, refresh_token and personal_access_token;
client_credentials only behind its switch (docs/reference/goto-api.md#u9). Token state lives in
:mod:`.model`.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from .model import GoToModel, OAuthError
from .wire import OAUTH_PREFIX, json_response, render_oauth_error


def basic_credentials(request: web.Request) -> tuple[str, str]:
    """``Authorization: Basic base64(client_id:client_secret)``; anything else is a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise OAuthError(401, "invalid_client", "HTTP Basic client authentication is required")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(401, "invalid_client", "Malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError(401, "invalid_client", "Malformed Basic credentials")
    return client_id, secret


class OAuthHandlers:
    def __init__(self, model: GoToModel) -> None:
        self.model = model

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            target, code = self.model.authorize(
                client_id=q.get("client_id", ""),
                response_type=q.get("response_type", ""),
                redirect_uri=q.get("redirect_uri"),
                scope=q.get("scope"),
                # Emulator extension: choose who "signs in" (default: the seeded admin).
                principal=q.get("login_hint"),
            )
        except OAuthError as exc:
            return render_oauth_error(exc)
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        location = target + ("&" if "?" in target else "?") + urlencode(params)
        return web.Response(status=302, headers={"Location": location})

    async def token(self, request: web.Request) -> web.Response:
        try:
            client_id, secret = basic_credentials(request)
            if request.content_type != "application/x-www-form-urlencoded":
                raise OAuthError(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
            raw = await request.read()
            try:
                form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise OAuthError(400, "invalid_request", "Malformed form body") from None
            body = self.model.token_grant(client_id, secret, form)
        except OAuthError as exc:
            return render_oauth_error(exc)
        return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def add_oauth_routes(app: web.Application, model: GoToModel) -> None:
    h = OAuthHandlers(model)
    app.router.add_get(f"{OAUTH_PREFIX}/authorize", h.authorize)
    app.router.add_post(f"{OAUTH_PREFIX}/token", h.token)
