"""The console over HTTP, as a browser (or an attacker) reaches it through the Functions host
stand-in: who gets in, what is refused and how, the page's security headers, and the audit
entries that name the signed-in admin."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from emulators.easy_auth import LOCAL_ADMIN
from tests.console.conftest import ConsoleWorld

PAGE_HEADERS = {"X-Gotosync-Console": "1"}
FORGED = base64.b64encode(
    json.dumps(
        {"auth_typ": "aad", "claims": [{"typ": "roles", "val": "Gotosync.Admin"}, {"typ": "name", "val": "eve"}]}
    ).encode()
).decode()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # A browser keeps cookies for 127.0.0.1; aiohttp does only when told so.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        yield s


async def signed_in(session: aiohttp.ClientSession, live: ConsoleWorld, user: str | None = None) -> None:
    async with session.get(live.sign_in_url(user), allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == "/api/console"


def writes(live: ConsoleWorld, **extra: str) -> dict[str, str]:
    return {**PAGE_HEADERS, "Content-Type": "application/json", "Origin": live.url, **extra}


async def test_without_a_session_the_page_sends_to_sign_in_and_the_api_refuses(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    async with session.get(f"{live.url}/api/console", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/.auth/login/aad?post_login_redirect_uri=/api/console"
    async with session.get(f"{live.url}/.auth/login/aad?post_login_redirect_uri=/api/console") as response:
        assert response.status == 401 and "function key" in await response.text()
    for op in ("overview", "logs", "me"):
        async with session.get(f"{live.url}/api/console/ops/{op}", headers=PAGE_HEADERS) as response:
            body = await response.json()
            assert response.status == 401 and body["error"]["code"] == "Unauthenticated", op
    async with session.post(f"{live.url}/api/console/ops/provisioning", json={"enabled": False}) as response:
        assert response.status == 401
    async with live.world.store() as store:
        assert (await store.job.get()).enabled is True


async def test_a_principal_header_sent_by_the_caller_is_never_believed(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    forged = {"X-MS-CLIENT-PRINCIPAL": FORGED, "X-MS-CLIENT-PRINCIPAL-NAME": "eve", **PAGE_HEADERS}
    async with session.get(f"{live.url}/api/console/ops/overview", headers=forged) as response:
        assert response.status == 401
    async with session.post(
        f"{live.url}/api/console/ops/provisioning", json={"enabled": False}, headers={**forged, "Origin": live.url}
    ) as response:
        assert response.status == 401
    key = {"code": live.host.function_key}  # a function key signs nobody in to the console either
    async with session.get(f"{live.url}/api/console/ops/me", headers=forged, params=key) as response:
        assert response.status == 401
    async with live.world.store() as store:
        assert (await store.job.get()).enabled is True


async def test_a_signed_in_user_without_the_admin_role_is_refused_with_what_to_do(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    await signed_in(session, live, "reader@localhost")
    async with session.get(f"{live.url}/api/console") as response:
        text = await response.text()
        assert response.status == 403 and "Gotosync.Admin" in text and "reader@localhost" in text
    async with session.get(f"{live.url}/api/console/ops/status", headers=PAGE_HEADERS) as response:
        body = await response.json()
        assert response.status == 403 and "Gotosync.Admin" in body["error"]["fix"]


async def test_an_app_without_app_service_authentication_keeps_the_console_closed(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console(easy_auth=False)
    headers = {"X-MS-CLIENT-PRINCIPAL": FORGED, **PAGE_HEADERS}
    async with session.get(f"{live.url}/api/console", headers=headers) as response:
        assert response.status == 503 and "App Service Authentication" in await response.text()
    async with session.get(f"{live.url}/api/console/ops/overview", headers=headers) as response:
        assert response.status == 503 and (await response.json())["error"]["code"] == "ConsoleClosed"


async def test_the_admin_gets_the_page_with_strict_security_headers_and_no_secret(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    await signed_in(session, live)
    async with session.get(f"{live.url}/api/console") as response:
        page = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert response.status == 200 and "provisioning console" in page
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
        assert live.host.function_key not in page and "<script>" not in page and "style=" not in page
    async with session.get(f"{live.url}/api/console/ops/me", headers=PAGE_HEADERS) as response:
        me = await response.json()
        assert me == {
            "name": LOCAL_ADMIN.name,
            "objectId": LOCAL_ADMIN.object_id,
            "roles": ["Gotosync.Admin"],
            "admin": True,
        }
    async with session.get(f"{live.url}/api/console/ops/overview", headers=PAGE_HEADERS) as response:
        text = await response.text()
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        for secret in (live.host.function_key, live.world.settings.goto_access_token, "AccountKey"):
            assert secret not in text


async def test_assets_come_from_the_package_and_nothing_else_is_served(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    async with session.get(f"{live.url}/api/console/assets/app.js") as response:
        assert response.status == 200 and response.content_type == "text/javascript"
        etag = response.headers["ETag"]
    async with session.get(f"{live.url}/api/console/assets/app.js", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    for name in ("..%2Ffunctions.py", "index.html", "nope.js", "%2E%2E%2F%2E%2E%2Fhost.json"):
        async with session.get(f"{live.url}/api/console/assets/{name}") as response:
            assert response.status == 404, name


async def test_writes_from_another_site_are_refused(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    await signed_in(session, live)
    url = f"{live.url}/api/console/ops/provisioning"
    attempts = {
        "another origin": writes(live, Origin="https://evil.example"),
        "no console header": {"Content-Type": "application/json", "Origin": live.url},
        "a form post": {**PAGE_HEADERS, "Content-Type": "application/x-www-form-urlencoded", "Origin": live.url},
        "cross-site fetch": writes(live, **{"Sec-Fetch-Site": "cross-site"}),
    }
    for name, headers in attempts.items():
        async with session.post(url, data=json.dumps({"enabled": False}), headers=headers) as response:
            body = await response.json()
            assert response.status == 403 and body["error"]["code"] == "CrossSiteRequest", name
    async with live.world.store() as store:
        assert (await store.job.get()).enabled is True
    async with session.post(url, data=json.dumps({"enabled": False}), headers=writes(live)) as response:
        assert response.status == 200 and (await response.json())["provisioning"] == "off"


async def test_the_console_names_the_signed_in_admin_in_the_audit_trail(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    await signed_in(session, live)
    upn = live.world.upn(live.world.assigned_user_ids()[0])
    for op, body in (
        ("provisioning", {"enabled": False}),
        ("provisioning", {"enabled": True}),
        ("provision", {"user": upn}),
    ):
        async with session.post(f"{live.url}/api/console/ops/{op}", json=body, headers=writes(live)) as response:
            assert response.status == 200, await response.text()
    async with session.get(f"{live.url}/api/console/ops/audit", headers=PAGE_HEADERS) as response:
        entries = (await response.json())["entries"]
    assert [e["action"] for e in entries] == ["provision", "start", "stop"]
    assert {(e["actor"], e["actorId"], e["via"]) for e in entries} == {
        (LOCAL_ADMIN.name, LOCAL_ADMIN.object_id, "console")
    }
    async with session.get(
        f"{live.url}/api/console/ops/logs", params={"initiator": "OnDemand"}, headers=PAGE_HEADERS
    ) as r:
        entry = (await r.json())["entries"][0]
    params = {"changeId": entry["changeId"], "time": entry["time"]}
    async with session.get(f"{live.url}/api/console/ops/log-entry", params=params, headers=PAGE_HEADERS) as response:
        assert (await response.json())["requestedBy"]["name"] == LOCAL_ADMIN.name


async def test_unknown_operations_and_wrong_methods_are_answered_as_such(
    make_console: Callable[..., Any], session: aiohttp.ClientSession
) -> None:
    live = await make_console()
    await signed_in(session, live)
    async with session.get(f"{live.url}/api/console/ops/drop-tables", headers=PAGE_HEADERS) as response:
        assert response.status == 404
    async with session.get(f"{live.url}/api/console/ops/restart", headers=PAGE_HEADERS) as response:
        assert response.status == 405
    async with session.get(f"{live.url}/.auth/logout") as response:
        assert response.status == 200
    async with session.get(f"{live.url}/api/console/ops/status", headers=PAGE_HEADERS) as response:
        assert response.status == 401  # signed out
