"""A minimal Admin API at ``/admin/rest/v1`` (docs/reference/goto-api.md#admin-api-and-licenses):
the caller's profile, account users and the license pool with fixed seats.

LOWER FIDELITY: GoTo's Admin API is known only from a GoTo guide and public clients; paths and
shapes not confirmed there are marked in the docs. Keys are JSON numbers here, as in the
fixture of a public connector; the client must still treat them as opaque strings
(docs/reference/goto-api.md#ids).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, unquote_plus

from aiohttp import web

from .model import ACCOUNT_ADMIN_ROLES, SCOPE_ADMIN, GoToError, GoToModel, License, User, bad_request
from .wire import ADMIN_PREFIX, authorize_request, json_response, read_json_object

DEFAULT_PAGE_SIZE = 100  # undocumented; chosen for the emulator
MAX_PAGE_SIZE = 1000
_EMAIL_FILTER = re.compile(r'^\s*email\s+eq\s+"([^"]*)"\s*$', re.IGNORECASE)


def render_user(m: GoToModel, u: User) -> dict[str, Any]:
    return {
        "key": int(u.key),
        "email": u.user_name,
        "firstName": u.given_name or "",
        "lastName": u.family_name or "",
        "locale": u.locale,
        "timeZone": u.timezone,
        "status": "ACTIVE" if u.active else "SUSPENDED",
        "adminRoles": list(u.admin_roles),
        "licenseKeys": [int(k) for k in m.licenses_of(u.key)],
        "products": m.products_of(u.key),
    }


def render_license(lic: License) -> dict[str, Any]:
    # Field set of a public connector's fixture (docs/reference/goto-api.md#seats).
    out: dict[str, Any] = {
        "key": int(lic.key),
        "seats": lic.seats,
        "userCount": len(lic.user_keys),
        "enabled": lic.enabled,
        "type": lic.type,
        "description": lic.description,
        "channel": lic.channel,
        "externallyManaged": False,
        "devicesOnly": False,
        "devicesAllowed": False,
        "userKeys": [int(k) for k in lic.user_keys],
        "invitedUserKeys": [],
        "childLicenseKeys": [],
        "deviceKeys": [],
        "deviceCount": 0,
        "products": list(lic.products),
    }
    if "G2M" in lic.products:
        out["entitlements"] = {"g2m": {"recordingProvisioned": True, "coOrganizerProvisioned": True}}
    return out


def _page(items: list[Any], offset: int, page_size: int) -> tuple[list[Any], dict[str, int]]:
    page = items[offset : offset + page_size]
    # toIndex is inclusive (offset + len - 1); an empty page has toIndex = fromIndex - 1.
    return page, {"total": len(items), "fromIndex": offset, "toIndex": offset + len(page) - 1}


def _raw_query_param(request: web.Request, name: str, strict: bool) -> str | None:
    """A query parameter decoded the way GoTo does it: with ``strict``, '+' stays a literal plus
    (spaces in the filter must be sent as %20, not +;
    docs/reference/goto-api.md#admin-api-and-licenses)."""
    for part in request.rel_url.raw_query_string.split("&"):
        key, sep, value = part.partition("=")
        if sep and unquote_plus(key) == name:
            return unquote(value) if strict else unquote_plus(value)
    return None


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer", code="invalid.parameter") from None
    if value < 0:
        raise bad_request(f"{name} must be >= 0", code="invalid.parameter")
    return value


class AdminHandlers:
    def __init__(self, model: GoToModel) -> None:
        self.model = model

    def _auth(self, request: web.Request) -> Any:
        at = authorize_request(request, self.model, scopes=(SCOPE_ADMIN,), roles=ACCOUNT_ADMIN_ROLES)
        self.model.check_account(request.match_info["accountKey"])
        return at

    def _paths_enabled(self) -> None:
        if not self.model.switches.admin_license_paths:
            raise GoToError(404, "not.found", "Not found")

    async def me(self, request: web.Request) -> web.Response:
        at = authorize_request(request, self.model, scopes=(SCOPE_ADMIN,))
        m = self.model
        with m.lock:
            user = m.account_principal(at.principal)
            body = render_user(m, user)
            body.update(
                {
                    "accountKey": int(m.account_key),
                    "orgAdmin": user.org_admin,
                    "products": m.products_of(user.key),
                }
            )
        return json_response(body)

    async def list_users(self, request: web.Request) -> web.Response:
        self._auth(request)
        m = self.model
        raw = _raw_query_param(request, "filter", m.switches.admin_strict_filter_encoding)
        email = None
        if raw is not None:
            match = _EMAIL_FILTER.match(raw)
            if match is None:
                raise bad_request(
                    f'Invalid filter {raw!r}: only email eq "address" is supported', code="invalid.filter"
                )
            email = match[1]
        offset = _int_query(request, "offset", 0)
        page_size = min(_int_query(request, "pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        with m.lock:
            page, info = _page(m.account_users(email), offset, page_size)
            body = {"results": [render_user(m, u) for u in page], **info}
        return json_response(body)

    async def get_user(self, request: web.Request) -> web.Response:
        self._auth(request)
        with self.model.lock:
            body = render_user(self.model, self.model.account_user(request.match_info["userKey"]))
        return json_response(body)

    async def add_users(self, request: web.Request) -> web.Response:
        self._auth(request)
        body = await read_json_object(request)
        users = body.get("users")
        if not isinstance(users, list) or not users:
            raise bad_request("users must be a non-empty list")
        license_keys = body.get("licenseKeys", [])
        if not isinstance(license_keys, list):
            raise bad_request("licenseKeys must be a list")
        m = self.model
        with m.lock:
            added = m.admin_add_users(users, license_keys)
            out = [{"key": int(u.key), "email": u.user_name} for u in added]
        # Existing users come back too, not rejected; connectors see 201 either way
        # (docs/reference/goto-api.md#admin-api-and-licenses).
        return json_response(out, 201)

    async def update_user(self, request: web.Request) -> web.Response:
        self._auth(request)
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            user = m.account_user(request.match_info["userKey"])
            m.admin_update_user(user, body)
            out = render_user(m, user)
        return json_response(out)

    async def delete_user(self, request: web.Request) -> web.Response:
        self._paths_enabled()
        self._auth(request)
        with self.model.lock:
            self.model.admin_delete_user(self.model.account_user(request.match_info["userKey"]))
        return web.Response(status=204)

    async def list_licenses(self, request: web.Request) -> web.Response:
        self._auth(request)
        m = self.model
        with m.lock:
            page, info = _page(m.all_licenses(), 0, MAX_PAGE_SIZE)
            body = {"results": [render_license(lic) for lic in page], **info}
        return json_response(body)

    async def get_license(self, request: web.Request) -> web.Response:
        self._auth(request)
        with self.model.lock:
            lic = self.model.find_license(request.match_info["licenseKey"])
            if lic is None:
                raise GoToError(404, "license.not.found", "License not found")
            body = render_license(lic)
        return json_response(body)

    async def assign_license(self, request: web.Request) -> web.Response:
        self._paths_enabled()
        self._auth(request)
        body = await read_json_object(request)
        keys = body.get("userKeys")
        if not isinstance(keys, list) or not keys:
            raise bad_request("userKeys must be a non-empty list")
        with self.model.lock:
            lic = self.model.admin_assign(request.match_info["licenseKey"], keys)
            out = render_license(lic)
        return json_response(out)

    async def unassign_license(self, request: web.Request) -> web.Response:
        self._paths_enabled()
        self._auth(request)
        with self.model.lock:
            self.model.admin_unassign(request.match_info["licenseKey"], request.match_info["userKey"])
        return web.Response(status=204)


def add_admin_routes(app: web.Application, model: GoToModel) -> None:
    h = AdminHandlers(model)
    p = ADMIN_PREFIX
    a = f"{p}/accounts/{{accountKey}}"
    r = app.router
    r.add_get(f"{p}/me", h.me)
    r.add_get(f"{a}/users", h.list_users)
    r.add_post(f"{a}/users", h.add_users)
    r.add_get(f"{a}/users/{{userKey}}", h.get_user)
    r.add_put(f"{a}/users/{{userKey}}", h.update_user)
    r.add_delete(f"{a}/users/{{userKey}}", h.delete_user)
    r.add_get(f"{a}/licenses", h.list_licenses)
    r.add_get(f"{a}/licenses/{{licenseKey}}", h.get_license)
    r.add_post(f"{a}/licenses/{{licenseKey}}/users", h.assign_license)
    r.add_delete(f"{a}/licenses/{{licenseKey}}/users/{{userKey}}", h.unassign_license)
