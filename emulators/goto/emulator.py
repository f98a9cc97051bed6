"""The GoTo emulator as a server: builds the aiohttp application (SCIM, Admin, OAuth and control
routes plus the middleware stack) and runs it via :class:`emulators.common.ThreadedServer`.

Middleware order (outermost first):
1. guard — records the request path for error bodies, turns model errors into responses in the
   selected style and any unexpected exception into a 500 without a stack trace;
2. common.fault_middleware — request counters and injected faults (502/504/latency/...);
3. rate limit — a token bucket per API (docs/reference/goto-api.md#rate-limits), 429 with an
   optional Retry-After (docs/reference/goto-api.md#u8).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ..common import CONTROL_PREFIX, Counters, Faults, Served, ThreadedServer, fault_middleware
from .admin import add_admin_routes
from .control import add_goto_control_routes
from .journal import current_request
from .model import DEFAULT_DOMAINS, DEFAULT_G2M_SEATS, GoToError, GoToModel, GoToSwitches, OAuthError
from .oauth import add_oauth_routes
from .scim import add_scim_routes
from .wire import (
    ADMIN_PREFIX,
    IDENTITY_PREFIX,
    OAUTH_PREFIX,
    api_of,
    current_path,
    json_response,
    render_error,
    render_goto_error,
    render_oauth_error,
)

log = logging.getLogger("emulators.goto")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 256 * 1024 * 1024  # seeds of 100k users go through the control surface


# What an injected status answers with, in GoTo's words (other statuses: emulators.common's).
GOTO_FAULT_TEXT = {
    400: ("invalid.request", "Bad request (injected fault)"),
    404: ("user.not.found", "User not found (injected fault)"),
    409: ("user.exists", "Username is already in use. (injected fault)"),
}


def guard_middleware(model: GoToModel) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        token = current_path.set(path)
        journal_token = current_request.set((request.method, path))
        try:
            return await handler(request)
        except GoToError as exc:
            return render_goto_error(model, exc, path)
        except OAuthError as exc:
            return render_oauth_error(exc)
        except web.HTTPException as exc:
            if path.startswith(CONTROL_PREFIX) or api_of(path) is None or exc.status not in (404, 405):
                raise
            code = "not.found" if exc.status == 404 else "method.not.allowed"
            return render_error(model, exc.status, code, exc.reason, path=path)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            # Never leak a stack trace to the client; log it for the person running the tests.
            log.exception("unhandled error on %s %s", request.method, path)
            if path.startswith(CONTROL_PREFIX):
                return json_response({"error": "internal error (see the emulator log)"}, 500)
            return render_error(model, 500, "internal.error", "Internal server error", path=path)
        finally:
            current_path.reset(token)
            current_request.reset(journal_token)

    return guard


def rate_limit_middleware(model: GoToModel) -> Any:
    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        api = api_of(request.path)
        if api is not None:
            wait = model.rate_check(api)
            if wait > 0:
                response = render_error(model, 429, "too.many.requests", "Rate limit exceeded", scim_type="tooMany")
                if model.switches.retry_after_on_429:
                    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
        return await handler(request)

    return rate_limit


class GoToEmulator(Served, GoToModel):
    """A local GoTo: SCIM at ``/identity/v1``, Admin API at ``/admin/rest/v1``, OAuth at
    ``/oauth``, control surface at ``/_emulator``. All of :class:`GoToModel`'s control methods
    are available directly on the emulator (users(), add_user(), issue_access_token(), ...)."""

    def __init__(
        self,
        switches: GoToSwitches | None = None,
        verified_domains: Iterable[str] = DEFAULT_DOMAINS,
        seats: int = DEFAULT_G2M_SEATS,
        seed: Mapping[str, Any] | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rng_seed: int = 0,
        fault_seed: int = 0,
    ) -> None:
        super().__init__(
            switches=switches, verified_domains=verified_domains, seats=seats, seed=seed, rng_seed=rng_seed
        )
        self.faults = Faults(fault_seed)
        self.counters = Counters()
        self.host = host
        self.port = port
        self._server: ThreadedServer | None = None

    def make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                guard_middleware(self),
                fault_middleware(self.faults, self.counters, self._fault_error, GOTO_FAULT_TEXT),
                rate_limit_middleware(self),
            ],
            client_max_size=MAX_BODY,
        )
        add_scim_routes(app, self)
        add_admin_routes(app, self)
        add_oauth_routes(app, self)
        add_goto_control_routes(app, self)
        return app

    def _fault_error(self, status: int, code: str, message: str) -> web.Response:
        return render_error(self, status, code, message)

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return self._server.url

    @property
    def scim_url(self) -> str:
        return self.url + IDENTITY_PREFIX

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PREFIX

    @property
    def oauth_url(self) -> str:
        return self.url + OAUTH_PREFIX

    @property
    def token_url(self) -> str:
        return self.oauth_url + "/token"

    @property
    def authorize_url(self) -> str:
        return self.oauth_url + "/authorize"

    def auth_headers(self, token: str | None = None, **token_kwargs: Any) -> dict[str, str]:
        """``{"Authorization": "Bearer ..."}`` with ``token`` or a freshly issued one."""
        return {"Authorization": f"Bearer {token or self.issue_access_token(**token_kwargs)}"}
