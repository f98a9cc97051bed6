"""`gotosync authorize`: the one-time OAuth authorization-code consent that yields GoTo's refresh
token (docs/reference/goto-api.md#oauth), with a loopback redirect (RFC 8252 §7.3), stored in a
:class:`~shared.goto.token_store.RefreshTokenStore`.

The admin opens the printed URL and signs in to GoTo as an organization admin; GoTo redirects
the browser to ``http://127.0.0.1:<port>/callback?code=…&state=…``, where a short-lived server
here takes the code. The code is exchanged at the token endpoint with HTTP Basic client
authentication, and the refresh token goes to Key Vault or the local 0600 file — never to the
screen or a log.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import web

from .errors import AuthError, Op, TransientError, parse_error_body, redact
from .token_store import RefreshTokenStore

CALLBACK_PATH = "/callback"
LOOPBACK_HOST = "127.0.0.1"


class AuthorizationFailed(AuthError):
    """The consent did not complete: denied, wrong ``state``, no code, or no answer in time."""

    code = "AuthorizationFailed"
    heading = "authorize failed"


@dataclass(frozen=True)
class AuthorizeResult:
    refresh_token: str = field(repr=False)
    principal: str | None
    scope: str | None
    stored_in: str


def authorize_url_for(token_url: str) -> str:
    """GoTo's authorize endpoint sits next to its token endpoint (``/oauth/authorize`` and
    ``/oauth/token``, also in the emulator)."""
    base, sep, last = token_url.rstrip("/").rpartition("/")
    if not sep or last != "token":
        raise ValueError(f"cannot derive the authorize URL from {token_url!r}: pass --authorize-url")
    return f"{base}/authorize"


def build_authorize_url(
    authorize_url: str, client_id: str, redirect_uri: str, state: str, scope: str | None = None
) -> str:
    params = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri, "state": state}
    if scope:
        # Omitting scope reportedly grants every scope of the client
        # (docs/reference/goto-api.md#oauth); so it is optional.
        params["scope"] = scope
    return authorize_url + ("&" if "?" in authorize_url else "?") + urlencode(params)


class LoopbackReceiver:
    """A one-shot HTTP server on 127.0.0.1 that waits for the redirect carrying the code."""

    def __init__(self, state: str, host: str = LOOPBACK_HOST, port: int = 0) -> None:
        self._state = state
        self._host = host
        self._port = port
        self._result: asyncio.Future[str] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def redirect_uri(self) -> str:
        return f"http://{self._host}:{self.port}{CALLBACK_PATH}"

    async def __aenter__(self) -> LoopbackReceiver:
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(CALLBACK_PATH, self._callback)
        self._runner = web.AppRunner(app, access_log=None)  # the query string holds the code
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the free port the OS picked for port 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _finish(self, outcome: str | BaseException) -> None:
        assert self._result is not None
        if self._result.done():
            return
        if isinstance(outcome, BaseException):
            self._result.set_exception(outcome)
        else:
            self._result.set_result(outcome)

    async def _callback(self, request: web.Request) -> web.Response:
        q = request.query
        assert self._result is not None
        if self._result.done():
            return _page(409, "This authorization was already handled. Start `gotosync authorize` again if needed.")
        # The state is checked first: a request without our state did not come from our URL.
        if not hmac.compare_digest(q.get("state", ""), self._state):
            self._finish(
                AuthorizationFailed(
                    "authorize GoTo failed: the redirect carried a wrong or no `state` "
                    "(not the URL this command printed, or a forged request); start again"
                )
            )
            return _page(400, "The state parameter does not match. Nothing was stored; start again.")
        if "error" in q:
            error = q.get("error", "")
            detail = q.get("error_description", "")
            self._finish(
                AuthorizationFailed(
                    f"authorize GoTo failed: GoTo answered {error}" + (f": {detail}" if detail else ""),
                    goto_code=error,
                    detail=detail,
                )
            )
            return _page(400, f"GoTo answered {error}. Nothing was stored.")
        code = q.get("code", "")
        if not code:
            self._finish(AuthorizationFailed("authorize GoTo failed: the redirect carried no code"))
            return _page(400, "No authorization code in the redirect. Nothing was stored.")
        self._finish(code)
        return _page(200, "gotosync received the authorization. You can close this tab.")

    async def wait_for_code(self, wait_seconds: float) -> str:
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), wait_seconds)
        except TimeoutError:
            raise AuthorizationFailed(
                f"authorize GoTo failed: no redirect reached {self.redirect_uri} within {wait_seconds:g} s"
            ) from None


def _page(status: int, text: str) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    return web.Response(status=status, text=text + "\n", content_type="text/plain", headers=headers)


async def exchange_code(
    http: httpx.AsyncClient, token_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str
) -> dict[str, Any]:
    """``grant_type=authorization_code`` with HTTP Basic client authentication
    (docs/reference/goto-api.md#oauth)."""
    op = Op("exchange authorization code", "authorization_code")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    try:
        response = await http.post(token_url, data=form, auth=httpx.BasicAuth(client_id, client_secret))
    except httpx.TransportError as exc:
        raise TransientError(f"exchange authorization code failed: {type(exc).__name__}", op=op) from None
    text = redact(response.text, [client_secret, code])
    if response.status_code != 200:
        parsed = parse_error_body(text, response.headers)
        raise AuthError(
            f"exchange authorization code failed: HTTP {response.status_code} {parsed.goto_code or ''}: "
            f"{parsed.detail or 'no error body'}",
            status=response.status_code,
            op=op,
            detail=parsed.detail,
            body=parsed.raw,
            goto_code=parsed.goto_code,
        )
    try:
        data = response.json()
    except ValueError:
        raise AuthError("exchange authorization code failed: the token response is not JSON", op=op) from None
    if not isinstance(data, dict) or not data.get("refresh_token"):
        raise AuthError(
            "exchange authorization code failed: the token response has no refresh_token "
            "(is the refresh_token grant enabled on the GoTo OAuth client?)",
            op=op,
        )
    return data


async def authorize(
    client_id: str,
    client_secret: str,
    store: RefreshTokenStore,
    *,
    token_url: str,
    authorize_url: str | None = None,
    scope: str | None = None,
    host: str = LOOPBACK_HOST,
    port: int = 0,
    wait_seconds: float = 300.0,
    show_url: Callable[[str], Any] = print,
    http_client: httpx.AsyncClient | None = None,
) -> AuthorizeResult:
    """Runs the consent and stores the refresh token; returns who consented and to what.

    ``show_url`` gets the URL to open (print it, open a browser, or in tests drive it).
    """
    if not client_id or not client_secret:
        raise AuthorizationFailed("authorize GoTo failed: the OAuth client id and secret are both required")
    state = secrets.token_urlsafe(32)
    started = time.monotonic()
    async with LoopbackReceiver(state, host, port) as receiver:
        endpoint = authorize_url or authorize_url_for(token_url)
        url = build_authorize_url(endpoint, client_id, receiver.redirect_uri, state, scope)
        shown = show_url(url)
        if asyncio.iscoroutine(shown):
            await shown
        code = await receiver.wait_for_code(max(1.0, wait_seconds - (time.monotonic() - started)))
        redirect_uri = receiver.redirect_uri
    http = http_client or httpx.AsyncClient(timeout=30.0)
    try:
        data = await exchange_code(http, token_url, client_id, client_secret, code, redirect_uri)
    finally:
        if http_client is None:
            await http.aclose()
    await store.save(data["refresh_token"])
    return AuthorizeResult(
        refresh_token=data["refresh_token"],
        principal=data.get("principal"),
        scope=data.get("scope"),
        stored_in=store.description,
    )
