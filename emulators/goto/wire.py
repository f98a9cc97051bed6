"""HTTP plumbing shared by the GoTo route modules: which API a path belongs to, error bodies in the
selected style (docs/reference/goto-api.md#u7), bearer-token checks
(docs/reference/goto-api.md#u6) and JSON request bodies."""

from __future__ import annotations

import contextvars
import json
from typing import Any

from aiohttp import web

from .model import GoToError, GoToModel, InvalidTokenError, OAuthError

IDENTITY_PREFIX = "/identity/v1"
ADMIN_PREFIX = "/admin/rest/v1"
OAUTH_PREFIX = "/oauth"

SCIM2_ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"

# The path of the request being served; lets the common fault middleware's error factory (which
# only gets status, code and message) still produce a GoTo-style {"code","uri"} body.
current_path: contextvars.ContextVar[str] = contextvars.ContextVar("goto_current_path", default="")


def api_of(path: str) -> str | None:
    """The rate-limited API a path belongs to (limits are per API,
    docs/reference/goto-api.md#rate-limits)."""
    if path.startswith("/identity/"):
        return "identity"
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith(OAUTH_PREFIX + "/"):
        return "oauth"
    return None


def _uri(path: str) -> str:
    # The one observed body (docs/reference/goto-api.md#error-bodies) has uri "/v1/Users" for
    # /identity/v1/Users.
    for prefix in ("/identity", "/admin/rest"):
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


def error_style(model: GoToModel, path: str) -> str:
    style = model.switches.error_body
    if style == "auto":
        return "scim2" if path.startswith("/identity/") and model.switches.dialect == "scim2" else "gotocode"
    return style


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def render_error(
    model: GoToModel,
    status: int,
    code: str,
    message: str,
    *,
    path: str | None = None,
    scim_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    """An error in the style the switches select: gotocode, empty or scim2
    (docs/reference/goto-api.md#u7)."""
    path = current_path.get() if path is None else path
    style = error_style(model, path)
    if style == "empty":
        return web.Response(status=status)
    if style == "scim2":
        body: dict[str, Any] = {"schemas": [SCIM2_ERROR_URN], "status": str(status), "detail": message}
        if scim_type:
            body["scimType"] = scim_type
        return json_response(body, status)
    # gotocode: the {"code","uri"} shape (docs/reference/goto-api.md#error-bodies), plus a human-readable
    # message (emulator addition).
    body = {"code": code, "uri": _uri(path), "message": message}
    body.update(extra or {})
    return json_response(body, status)


def render_goto_error(model: GoToModel, exc: GoToError, path: str | None = None) -> web.Response:
    if isinstance(exc, InvalidTokenError):
        return render_invalid_token(model, path)
    return render_error(model, exc.status, exc.code, exc.message, path=path, scim_type=exc.scim_type, extra=exc.extra)


def render_invalid_token(model: GoToModel, path: str | None = None) -> web.Response:
    """The spec says 403 "Invalid token passed"; one observation shows 401 with an empty body and
    only a WWW-Authenticate header (docs/reference/goto-api.md#u6)."""
    path = current_path.get() if path is None else path
    if model.switches.bad_token == "401-empty":
        return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    style = error_style(model, path)
    if style == "gotocode":
        # The invalid-token body seen on other GoTo APIs (docs/reference/goto-api.md#error-bodies).
        return json_response({"int_err_code": "InvalidToken", "msg": "Invalid token passed"}, 403)
    return render_error(model, 403, "invalid.token", "Invalid token passed", path=path)


def render_oauth_error(exc: OAuthError) -> web.Response:
    body: dict[str, Any] = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if exc.status == 401 else None
    return json_response(body, exc.status, headers)


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def authorize_request(
    request: web.Request, model: GoToModel, *, scopes: tuple[str, ...], roles: tuple[str, ...] = ()
) -> Any:
    """Checks the bearer token, that it has one of ``scopes`` and (when given) one of ``roles``.

    Raises InvalidTokenError (missing/unknown/expired) or 401 not.authorized (valid token, but
    the scope or the org/account role is missing; docs/reference/goto-api.md#scim-endpoints)."""
    token = bearer(request)
    at = model.authenticate(token) if token else None
    if at is None:
        raise InvalidTokenError()
    if not at.scopes.intersection(scopes) or (roles and not at.roles.intersection(roles)):
        raise GoToError(401, "not.authorized", "Client not sufficiently authorized", scim_type=None)
    return at


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; malformed or missing -> 400."""
    raw = await request.read()
    if not raw.strip():
        raise GoToError(400, "invalid.request", "A JSON request body is required", scim_type="invalidSyntax")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise GoToError(400, "invalid.json", "Malformed JSON in request body", scim_type="invalidSyntax") from None
    if not isinstance(body, dict):
        raise GoToError(400, "invalid.request", "The request body must be a JSON object", scim_type="invalidSyntax")
    return body
