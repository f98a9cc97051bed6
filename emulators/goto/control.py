"""The GoTo emulator's HTTP control surface under ``/_emulator`` (never rate-limited, faulted or
counted): state dump, seeding, switches, clock, tokens, pre-existing users, seats, plus the
shared faults/counters routes of :mod:`emulators.common`. Every route maps onto a Python method of
the model, so tests in-process and tools out-of-process see the same thing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..common import CONTROL_PREFIX, add_control_routes
from .model import ACCESS_TOKEN_LIFETIME

if TYPE_CHECKING:
    from .emulator import GoToEmulator

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request, default: Any = None) -> Any:
    raw = await request.read()
    if not raw.strip():
        if default is not None:
            return default
        raise ValueError("a JSON body is required")
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("malformed JSON body") from None


def _safe(handler: Handler) -> Handler:
    """ValueError/KeyError/TypeError from the model become 400 with the message."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(str(exc.args[0]) if exc.args else type(exc).__name__)

    return wrapped


def add_goto_control_routes(app: web.Application, emu: GoToEmulator) -> None:
    add_control_routes(app, emu.faults, emu.counters)
    p = CONTROL_PREFIX

    async def get_state(request: web.Request) -> web.Response:
        objects = request.query.get("objects", "1").lower() not in ("0", "false", "no")
        return web.json_response(emu.state(include_objects=objects))

    async def post_seed(request: web.Request) -> web.Response:
        data = await _body(request)
        reset = request.query.get("reset", "true").lower() not in ("0", "false", "no")
        emu.seed(data, reset=reset)
        return web.json_response(emu.state(include_objects=False))

    async def post_reset(request: web.Request) -> web.Response:
        emu.reset()
        return web.json_response(emu.state(include_objects=False))

    async def get_switches(request: web.Request) -> web.Response:
        return web.json_response(emu.switches.as_dict())

    async def post_switches(request: web.Request) -> web.Response:
        data = await _body(request)
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object of switch values")
        return web.json_response(emu.update_switches(**data))

    async def post_clock(request: web.Request) -> web.Response:
        data = await _body(request)
        seconds = data.get("seconds") if isinstance(data, dict) else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError('body must be {"seconds": <number>}')
        now = emu.advance_clock(float(seconds))
        return web.json_response({"now": now, "offset": emu.clock.offset})

    async def post_token(request: web.Request) -> web.Response:
        data = await _body(request, default={})
        scopes = data.get("scopes", data.get("scope"))
        expires_in = int(data.get("expiresIn", ACCESS_TOKEN_LIFETIME))
        token = emu.issue_access_token(
            scopes=scopes,
            principal=data.get("principal"),
            admin=bool(data.get("admin", True)),
            roles=data.get("roles"),
            expires_in=expires_in,
        )
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}, status=201)

    async def post_users(request: web.Request) -> web.Response:
        data = await _body(request)
        users = data.get("users", [data]) if isinstance(data, dict) else data
        if not isinstance(users, list):
            raise ValueError('body must be a user object, a list of them or {"users": [...]}')
        keys = [emu.add_user(**u) for u in users]
        return web.json_response({"keys": keys}, status=201)

    async def post_groups(request: web.Request) -> web.Response:
        data = await _body(request)
        key = emu.add_group(data["displayName"], data.get("members", ()), external_id=data.get("externalId"))
        return web.json_response({"key": key}, status=201)

    async def post_seats(request: web.Request) -> web.Response:
        data = await _body(request)
        license = data.get("license", data.get("licenseKey"))
        if license is None or "seats" not in data:
            raise ValueError('body must be {"license": "G2M" | <licenseKey>, "seats": <n>}')
        emu.set_seats(str(license), int(data["seats"]))
        return web.json_response(emu.licenses())

    async def post_pat(request: web.Request) -> web.Response:
        data = await _body(request, default={})
        pat = emu.create_pat(principal=data.get("principal"), token=data.get("token"), scopes=data.get("scopes"))
        return web.json_response({"pat": pat}, status=201)

    async def post_client(request: web.Request) -> web.Response:
        data = await _body(request)
        emu.register_client(
            data["clientId"],
            data["clientSecret"],
            data.get("redirectUris", ()),
            grant_types=data.get("grantTypes"),
            scopes=data.get("scopes"),
        )
        return web.json_response({"clientId": data["clientId"]}, status=201)

    async def post_revoke(request: web.Request) -> web.Response:
        data = await _body(request, default={})
        token = data.get("token") if isinstance(data, dict) else None
        revoked = int(emu.revoke_refresh_token(token)) if token else emu.revoke_all_refresh_tokens()
        return web.json_response({"revoked": revoked})

    async def post_domain(request: web.Request) -> web.Response:
        data = await _body(request)
        emu.add_verified_domain(str(data["domain"]))
        return web.json_response({"verifiedDomains": emu.verified_domains})

    async def get_journal(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        if since < 0:
            raise ValueError("since must be >= 0")
        return web.json_response(emu.journal_entries(since))

    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/state", get_state),
        ("POST", "/seed", post_seed),
        ("POST", "/reset", post_reset),
        ("GET", "/switches", get_switches),
        ("POST", "/switches", post_switches),
        ("POST", "/clock/advance", post_clock),
        ("POST", "/tokens", post_token),
        ("POST", "/users", post_users),
        ("POST", "/groups", post_groups),
        ("POST", "/seats", post_seats),
        ("POST", "/pats", post_pat),
        ("POST", "/clients", post_client),
        ("POST", "/refresh-tokens/revoke", post_revoke),
        ("POST", "/domains", post_domain),
        ("GET", "/journal", get_journal),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, p + path, _safe(handler))
