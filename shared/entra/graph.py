"""Builds the msgraph-sdk client: managed identity (DefaultAzureCredential) in Azure, a static
bearer token for the local Graph emulator. Its middleware is msgraph-sdk's own, except that
`GraphRetryHandler` (shared/entra/retry.py) replaces kiota's RetryHandler, which ignores a
fractional `Retry-After`."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_options
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from msgraph_core.middleware.options import GraphTelemetryHandlerOption

from .retry import GraphRetryHandler

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


def _http_client(retry: GraphRetryHandler) -> Any:
    """msgraph-sdk's default pipeline with our retry handler in place of kiota's."""
    middleware = [
        retry if isinstance(m, RetryHandler) else m for m in KiotaClientFactory.get_default_middleware(graph_options)
    ]
    telemetry = graph_options.get(GraphTelemetryHandlerOption.get_key())
    middleware.append(GraphTelemetryHandler(options=telemetry) if telemetry else GraphTelemetryHandler())
    return GraphClientFactory.create_with_custom_middleware(middleware)


def make_graph_client(
    base_url: str, static_token: str = "", *, retry: GraphRetryHandler | None = None
) -> tuple[GraphServiceClient, Any]:
    """The client and its credential (close the credential when done). `retry` replaces the
    default GraphRetryHandler (tests inject a recording sleep)."""
    credential: Any
    if static_token:
        credential = StaticTokenCredential(static_token)
    else:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    auth = AzureIdentityAuthenticationProvider(credential, scopes=GRAPH_SCOPES)
    adapter = GraphRequestAdapter(auth, client=_http_client(retry or GraphRetryHandler()))
    client = GraphServiceClient(request_adapter=adapter)
    client.request_adapter.base_url = base_url.rstrip("/")
    return client, credential
