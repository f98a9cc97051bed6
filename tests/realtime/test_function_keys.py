"""The key Graph holds (it is in every subscription's notification URL) opens the webhook intake
and nothing else; the host key opens every function, as in the real Functions host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.realtime.conftest import Live


def http_routes(live: Live) -> dict[str, tuple[str, str, bool]]:
    """function name -> (route, one allowed method, key-protected?) of every HTTP function."""
    routes = {}
    for name, fn in live.host.functions.items():
        trigger = fn.get_trigger()
        if trigger.type == "httpTrigger":
            methods = [str(getattr(m, "value", m)).upper() for m in (trigger.methods or ["GET"])]
            keyed = str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower() != "anonymous"
            routes[name] = (trigger.route, methods[0], keyed)
    return routes


def webhook_key(live: Live) -> str:
    return parse_qs(urlsplit(live.settings.graph_notification_url).query)["code"][0]


async def test_the_webhook_key_opens_the_intake_and_no_ops_route(make_live: Callable[..., Any]) -> None:
    live = await make_live(users=1, assign=0)
    key = webhook_key(live)
    assert key != live.host.function_key
    routes = http_routes(live)
    assert any(route.startswith("ops/") for route, _, _ in routes.values())
    async with httpx.AsyncClient(base_url=f"{live.host.url}/api") as client:
        handshake = await client.post("/graph/notify", params={"code": key, "validationToken": "t"})
        assert handshake.status_code == 200 and handshake.text == "t"
        for name, (route, method, keyed) in routes.items():
            if name in ("graph_notifications", "console_assets"):
                continue  # the intake itself; the console's static files are public (no data)
            route = route.replace("{operation}", "status")
            by_query = await client.request(method, f"/{route}", params={"code": key})
            by_header = await client.request(method, f"/{route}", headers={"x-functions-key": key})
            if keyed:
                assert (by_query.status_code, by_header.status_code) == (401, 401), name
            else:  # the console: a key is no sign-in (App Service Authentication sends to the sign-in page)
                assert by_query.status_code in (302, 401, 403) and by_header.status_code in (302, 401, 403), name


async def test_the_host_key_opens_every_function_and_no_key_opens_none(make_live: Callable[..., Any]) -> None:
    live = await make_live(users=1, assign=0)
    async with httpx.AsyncClient(base_url=f"{live.host.url}/api") as client:
        assert (await client.get("/ops/status", params={"code": live.host.function_key})).status_code != 401
        assert (await client.get("/ops/status")).status_code == 401
        assert (await client.get("/ops/status", params={"code": "guess"})).status_code == 401
        lifecycle = await client.post(
            "/graph/lifecycle", params={"code": live.host.function_key, "validationToken": "x"}
        )
        assert lifecycle.status_code == 200
        assert (await client.post("/graph/notify", params={"validationToken": "x"})).status_code == 401
