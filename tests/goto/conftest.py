"""Helpers for the GoTo client tests that run against the GoTo emulator over real HTTP."""

from __future__ import annotations

from typing import Any

from emulators.goto import GoToEmulator
from shared.goto import GoToAdminClient, GoToScimClient, StaticTokenProvider

# Tiny backoff so retries never slow a test down; tests never sleep to synchronise.
FAST = {"backoff_base": 0.001, "backoff_cap": 0.005}


def scim(goto: GoToEmulator, token: str | None = None, **kwargs: Any) -> GoToScimClient:
    kwargs = {"rate_limit": None, **FAST, **kwargs}
    provider = kwargs.pop("token_provider", None) or StaticTokenProvider(token or goto.issue_access_token())
    return GoToScimClient(goto.scim_url, provider, **kwargs)


def admin(goto: GoToEmulator, token: str | None = None, **kwargs: Any) -> GoToAdminClient:
    kwargs = {"rate_limit": None, **FAST, **kwargs}
    provider = kwargs.pop("token_provider", None) or StaticTokenProvider(token or goto.issue_access_token())
    return GoToAdminClient(goto.admin_url, provider, **kwargs)


def user(name: str, given: str = "Jane", family: str = "Doe", **extra: Any) -> dict[str, Any]:
    return {"userName": f"{name}@contoso.com", "name": {"givenName": given, "familyName": family}, **extra}


class FlakyTokens:
    """Hands out ``first`` until asked to refresh, then ``then`` (a bad token that a refresh fixes)."""

    def __init__(self, first: str, then: str) -> None:
        self.first, self.then = first, then
        self.refreshes = 0

    async def get_token(self, force_refresh: bool = False) -> str:
        if force_refresh:
            self.refreshes += 1
        return self.then if self.refreshes else self.first
