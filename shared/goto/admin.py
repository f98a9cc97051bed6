"""The GoTo Admin API client (``/admin/rest/v1``): the caller's account and its licenses (seats).

GoToMeeting seats are granted here, not over SCIM (docs/reference/goto-api.md#api-surfaces,
docs/reference/goto-api.md#admin-api-and-licenses). The sources are thin, so the shapes are
read tolerantly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from shared.scim.schemas import GETGO_URN

from .auth import TokenProvider
from .errors import SERVICE_INCOMPATIBLE, AuthError, Conflict, GoToError, LicenseLimitExceeded, NotFound, Op
from .scim import GoToScimClient
from .transport import Transport, TransportClient, decode_json


class GoToAdminClient(TransportClient):
    """Async client for the Admin API. ``scim`` (optional) is a second source for the account
    key: the getgo extension on ``/identity/v1/Users/me`` (docs/reference/goto-api.md#oauth)."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        account_key: str | None = None,
        scim: GoToScimClient | None = None,
        transport: Transport | None = None,
        **transport_options: Any,
    ) -> None:
        """`transport_options` are Transport's pacing, retry and dry-run options (rate_limit,
        burst, max_concurrency, timeout, max_attempts, backoff_base, backoff_cap,
        max_retry_after, read_only, http_transport), as for GoToScimClient."""
        self._t = transport or Transport(base_url, token_provider, **transport_options)
        self._account_key = str(account_key) if account_key else None
        self._scim = scim
        self._account_lock = asyncio.Lock()

    async def me(self) -> dict[str, Any]:
        """GET /me: the caller's profile (``key``, ``accountKey``, ``adminRoles``, ``products``...)."""
        op = Op("read admin profile", "me")
        data = decode_json(await self._t.request("GET", "/me", op), op)
        return data if isinstance(data, dict) else {}

    async def account_key(self) -> str:
        """The account that holds the licenses: from settings, else ``/admin/rest/v1/me``, else the
        getgo extension of ``/identity/v1/Users/me``. Read once per client (the token response no
        longer carries it, docs/reference/goto-api.md#oauth)."""
        if self._account_key:
            return self._account_key
        async with self._account_lock:
            if self._account_key:
                return self._account_key
            first_error: GoToError | None = None
            try:
                key = (await self.me()).get("accountKey")
            except (AuthError, NotFound) as exc:
                key, first_error = None, exc
            if not key and self._scim is not None:
                accounts = ((await self._scim.get_me()).get(GETGO_URN) or {}).get("accounts") or []
                key = next((a.get("value") for a in accounts if isinstance(a, dict) and a.get("value")), None)
            if not key:
                if first_error is not None:
                    raise first_error
                raise GoToError(
                    "read account key failed: neither /me nor /Users/me names an account",
                    code=SERVICE_INCOMPATIBLE,
                    op=Op("read account key"),
                )
            self._account_key = str(key)
            return self._account_key

    async def licenses(self) -> list[dict[str, Any]]:
        """GET /accounts/{accountKey}/licenses: ``key``, ``seats``, ``userCount``, ``userKeys``, ``products``..."""
        account = await self.account_key()
        op = Op("list licenses", account)
        data = decode_json(await self._t.request("GET", f"/accounts/{_q(account)}/licenses", op), op)
        return _items(data, op)

    async def license_by_key(self, license_key: str) -> dict[str, Any] | None:
        return next((lic for lic in await self.licenses() if str(lic.get("key")) == str(license_key)), None)

    async def licenses_of(self, user_key: str) -> list[str]:
        """The license keys a user holds, read from the licenses' ``userKeys``."""
        return [
            str(lic.get("key"))
            for lic in await self.licenses()
            if str(user_key) in {str(k) for k in lic.get("userKeys") or []}
        ]

    async def set_user_licenses(
        self, account_key: str, user_key: str, license_keys: Iterable[str]
    ) -> dict[str, Any] | None:
        """PUT /accounts/{accountKey}/users/{userKey} ``{"licenseKeys": [...]}``: the user's whole
        license set (an empty list releases every seat). Over-assignment raises ``LicenseLimitExceeded``."""
        keys = [str(k) for k in license_keys]
        op = Op("set licenses", f"user {user_key} -> {', '.join(keys) or 'none'}", anchored=True)
        path = f"/accounts/{_q(account_key)}/users/{_q(user_key)}"
        try:
            response = await self._t.request("PUT", path, op, json={"licenseKeys": keys})
        except Conflict as exc:
            # This body carries nothing but license keys, so a 409 can only be about seats, even
            # when the error body is empty and could not say so (docs/reference/goto-api.md#u7).
            raise LicenseLimitExceeded(
                exc.message.replace(exc.code, LicenseLimitExceeded.code, 1),
                status=exc.status,
                op=op,
                detail=exc.detail,
                body=exc.body,
                goto_code=exc.goto_code,
            ) from exc
        data = decode_json(response, op)
        return data if isinstance(data, dict) else None


def _q(value: str) -> str:
    return quote(str(value), safe="")


def _items(data: Any, op: Op) -> list[dict[str, Any]]:
    if data is None:
        return []
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for key in ("results", "licenses", "resources", "Resources", "items"):
            if isinstance(data.get(key), list):
                return [d for d in data[key] if isinstance(d, dict)]
        embedded = data.get("_embedded")
        if isinstance(embedded, dict):
            for value in embedded.values():
                if isinstance(value, list):
                    return [d for d in value if isinstance(d, dict)]
    raise GoToError(f"{op.subject}: unexpected list answer", code=SERVICE_INCOMPATIBLE, op=op)
