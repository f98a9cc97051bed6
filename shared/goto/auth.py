"""GoTo access tokens: a static token, or OAuth refresh-token / personal-access-token grants
against ``/oauth/token`` (docs/reference/goto-api.md#oauth). The authorization-code consent
that yields the first refresh token is a separate step and lives elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import httpx

from shared import redaction
from shared.redaction import summary

from .errors import AuthError, GoToError, Op, RateLimited, TransientError, parse_error_body, parse_retry_after, redact

DEFAULT_TOKEN_URL = "https://authentication.logmeininc.com/oauth/token"


@runtime_checkable
class TokenProvider(Protocol):
    async def get_token(self, force_refresh: bool = False) -> str: ...


class StaticTokenProvider:
    """A fixed access token (tests, or an operator pasting a token). It cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token
        redaction.register(token)

    async def get_token(self, force_refresh: bool = False) -> str:
        return self._token


class OAuthTokenProvider:
    """Access tokens from GoTo's token endpoint, renewed ``refresh_margin`` seconds before expiry.

    Grants: ``refresh_token`` (the unattended route after consent) or ``personal_access_token``.
    Client authentication is HTTP Basic. GoTo returns a ``refresh_token`` only when it has issued
    a new one; only then is ``save_refresh_token`` called, otherwise the old one stays valid.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        refresh_token: str | None = None,
        pat: str | None = None,
        token_url: str = DEFAULT_TOKEN_URL,
        save_refresh_token: Callable[[str], Awaitable[None]] | None = None,
        refresh_margin: float = 300.0,
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if bool(refresh_token) == bool(pat):
            raise ValueError("give exactly one of refresh_token or pat")
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._secrets = [client_secret, f"{client_id}:{client_secret}"]
        redaction.register(*self._secrets, refresh_token, pat)
        self._refresh_token = refresh_token
        self._pat = pat
        self._token_url = token_url
        self._save = save_refresh_token
        self._margin = refresh_margin
        self._clock = clock
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None
        self._token: str | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self.principal: str | None = None
        self.scope: str | None = None

    async def get_token(self, force_refresh: bool = False) -> str:
        seen = self._generation
        async with self._lock:
            fresh = self._token is not None and self._clock() < self._expires_at - self._margin
            if fresh and (not force_refresh or self._generation != seen):
                # A caller told to force a refresh while another caller already refreshed
                # (several 401s at once) takes the new token instead of refreshing again.
                return self._token  # type: ignore[return-value]
            await self._fetch()
            return self._token  # type: ignore[return-value]

    def _known_secrets(self) -> list[str]:
        return [*self._secrets, self._pat or "", self._refresh_token or ""]

    async def _fetch(self) -> None:
        if self._pat:
            form = {"grant_type": "personal_access_token", "pat": self._pat}
        else:
            form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token or ""}
        op = Op("get access token", form["grant_type"])
        try:
            response = await self._http.post(self._token_url, data=form, auth=self._auth)
        except httpx.TimeoutException:
            raise TransientError("get access token failed: Timeout", code="Timeout", op=op) from None
        except httpx.TransportError as exc:
            cause = type(exc).__name__
            raise TransientError(f"get access token failed: {cause}", code="InternalError", op=op) from None
        if response.status_code != 200:
            raise self._refused(response, op, form["grant_type"])
        try:
            data = response.json()
            token = data["access_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthError("get access token failed: the token response has no access_token", op=op) from None
        if not isinstance(token, str) or not token:
            raise AuthError("get access token failed: the token response has no access_token", op=op)
        redaction.register(token)
        rotated = data.get("refresh_token")
        if isinstance(rotated, str) and rotated and not self._pat and rotated != self._refresh_token:
            redaction.register(rotated)
            self._refresh_token = rotated
            if self._save is not None:
                # Saved before the access token is taken: a token whose rotated refresh token is
                # not stored must not be used (the next run would find only the revoked one).
                await self._save(rotated)
        self._token = token
        self._expires_at = self._clock() + _seconds(data.get("expires_in"))
        self._generation += 1
        self.principal = data.get("principal")
        self.scope = data.get("scope")

    def _refused(self, response: httpx.Response, op: Op, grant: str) -> GoToError:
        """The token endpoint's refusal: GoTo's error code and a scrubbed one-line summary; never
        the body as it came (a wrong GOTO_TOKEN_URL or a proxy may echo the whole request)."""
        secrets = self._known_secrets()
        # Scrubbed before it is parsed (and cut): a secret must not survive in halves.
        parsed = parse_error_body(redact(response.text, secrets), response.headers)
        code = summary(parsed.goto_code, secrets, limit=80)
        detail = summary(parsed.detail, secrets)
        cls: type[GoToError] = AuthError
        if response.status_code == 429:
            cls = RateLimited  # the token endpoint is rate-limited like every GoTo API
        elif response.status_code >= 500:
            cls = TransientError
        hint = (
            " (the stored refresh token is no longer valid: authorize GoTo again)"
            if (code == "invalid_grant" and not self._pat)
            else ""
        )
        return cls(
            f"get access token ({grant}) failed: HTTP {response.status_code} {code}: {detail or 'no error body'}{hint}",
            status=response.status_code,
            op=op,
            detail=detail,
            body=parsed.raw,
            goto_code=code,
            retry_after=parse_retry_after(response.headers.get("retry-after"), time.time()),
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def _seconds(value: object, default: float = 3600.0) -> float:
    """``expires_in`` as seconds (a number, or a number as text); ``default`` when absent or odd."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default
