"""scim2-server (an independent SCIM 2.0 service provider, via the pytest-scim2-server plugin)
set up as a strict generic SCIM app that gotosync is pointed at in the ``scim2`` profile.

The plugin's session fixtures are overridden here, for this folder only:
- ``scim2_server_provider``: the default RFC 7643 schemas, with ``filter.maxResults`` 20, so the
  server pages every list at 20 whatever ``count`` asks (RFC 7644 §3.4.2.4 lets it);
- ``scim2_server_app``: the plugin's WSGI application, behind a bearer token and the strict gate
  of ``strict.py`` (scim2-server itself accepts bodies without ``schemas``).

``scim2`` (per test) empties the server and its request log and gives the URL, the token, and
reads through the server's own HTTP API.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pytest_scim2_server import Server
from scim2_models import Filter, InvalidSyntaxException, ScimProvider, UnauthorizedException
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.storage import ScimStorage
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

from .strict import SCIM_JSON, violations

PAGE_SIZE = 20


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    accept: str | None


class StrictScimApp(WSGIApplication):
    """scim2-server behind a bearer token, refusing with 400 what a schema-strict server would."""

    def __init__(self, storage: ScimStorage, provider: ScimProvider, service: ScimService, token: str) -> None:
        super().__init__(storage, provider, service)
        self.token = token
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def check_auth(self, request: ScimRequest) -> None:
        if not secrets.compare_digest(request.header("Authorization") or "", f"Bearer {self.token}"):
            raise UnauthorizedException(detail="a valid bearer token is required")

    def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        accept, content_type = request.header("Accept"), request.header("Content-Type")
        with self._lock:
            self.seen.append(Seen(request.method.upper(), request.path, dict(request.query), content_type, accept))
        if self.needs_auth(request):
            self.check_auth(request)
        problems = violations(request.method, request.path, accept, content_type, request.body)
        if problems:
            raise InvalidSyntaxException(detail="; ".join(problems))
        return super().dispatch_request(request)


@pytest.fixture(scope="session")
def scim2_server_provider() -> ScimProvider:
    config = load_default_service_provider_config()
    config = config.model_copy(update={"filter": Filter(supported=True, max_results=PAGE_SIZE)})
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )


@pytest.fixture(scope="session")
def scim2_server_app(scim2_server_storage: ScimStorage, scim2_server_service: ScimService) -> WSGIApplication:
    return StrictScimApp(
        scim2_server_storage, scim2_server_service.provider, scim2_server_service, secrets.token_urlsafe(24)
    )


@dataclass
class ScimServer:
    """The running scim2-server, as a test sees it."""

    url: str  # the SCIM base URL gotosync is given (GOTO_SCIM_URL)
    token: str  # the bearer token it accepts (GOTO_ACCESS_TOKEN)
    app: StrictScimApp
    http: httpx.Client = field(repr=False)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def resource(self, endpoint: str, key: str) -> dict[str, Any] | None:
        """``GET /{endpoint}/{key}`` through the server's own API; None on 404."""
        response = self.get(f"/{endpoint}/{key}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def find(self, endpoint: str, attribute: str, value: str) -> list[dict[str, Any]]:
        response = self.get(f"/{endpoint}", filter=f'{attribute} eq "{value}"')
        response.raise_for_status()
        return response.json()["Resources"]

    def one(self, endpoint: str, attribute: str, value: str) -> dict[str, Any]:
        [found] = self.find(endpoint, attribute, value)
        return found

    def total(self, endpoint: str) -> int:
        return int(self.get(f"/{endpoint}", count=0).json()["totalResults"])

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.app.seen if s.method == method and s.path == path]


@pytest.fixture
def scim2(scim2_server: Server, scim2_server_storage: InMemoryStorage) -> Iterator[ScimServer]:
    app = scim2_server.app
    assert isinstance(app, StrictScimApp)
    scim2_server_storage.resources = []  # the server lives for the session; each test starts empty
    app.seen.clear()
    url = f"http://127.0.0.1:{scim2_server.port}/v2"
    headers = {"Authorization": f"Bearer {app.token}", "Accept": SCIM_JSON}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        yield ScimServer(url, app.token, app, http)
