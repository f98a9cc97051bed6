"""Builds the msgraph-sdk client: managed identity (DefaultAzureCredential) in Azure, a static
bearer token for the local Graph emulator."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken
from msgraph import GraphServiceClient

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


class StaticTokenCredential:
    """An async TokenCredential that always returns one token (local emulator runs only)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def make_graph_client(base_url: str, static_token: str = "") -> tuple[GraphServiceClient, Any]:
    """The client and its credential (close the credential when done)."""
    credential: Any
    if static_token:
        credential = StaticTokenCredential(static_token)
    else:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    client = GraphServiceClient(credentials=credential, scopes=GRAPH_SCOPES)
    client.request_adapter.base_url = base_url.rstrip("/")
    return client, credential
