"""The console's HTTP functions: the page, its static assets, and its API.

- `GET /api/console`: the page (index.html) for an admin; anyone else gets a sign-in redirect
  (App Service Authentication's `/.auth/login/aad`) or a page that says why not and what to do.
- `GET /api/console/assets/{name}`: the page's CSS, JavaScript modules and icon, from the
  package (no CDN, no build step). Public: they are this repository's code and hold no data.
- `GET|POST /api/console/ops/{operation}`: the operations of admin_api/operations.py, for the
  signed-in admin, plus `me` (who is signed in). Every request is authorized from the
  principal App Service Authentication injects (shared/ops/access.py); state-changing ones must
  also come from the page itself (same origin, console header, JSON body).

These functions are anonymous at the Functions level: a browser cannot hold a function key,
and no secret may reach the page. The principal check is what protects them, and it refuses
everything when App Service Authentication is off.
"""

from __future__ import annotations

import hashlib
import html
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import azure.functions as func

from admin_api.operations import OPERATIONS
from admin_api.translate import error_response, failure_response, json_response
from shared.ops.access import AccessDenied, Principal, Unauthenticated, authorize, check_same_origin
from shared.ops.audit import Actor

bp = func.Blueprint()

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
LOGIN = "/.auth/login/aad?post_login_redirect_uri=/api/console"
# No inline script or style anywhere, nothing from another origin, never framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    mimetype: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every file of console/static by name: the only names the assets route answers."""
    found = {}
    for path in sorted(STATIC.iterdir()):
        if path.is_file() and path.suffix in TYPES:
            body = path.read_bytes()
            found[path.name] = Asset(body, TYPES[path.suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return found


def _headers(req: func.HttpRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in req.headers.items()}


def _message_page(title: str, message: str, fix: str, status: int) -> func.HttpResponse:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · gotosync console</title>"
        "<link rel='stylesheet' href='/api/console/assets/console.css'></head>"
        f"<body><main class='message-page'><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        + (f"<p><strong>What to do:</strong> {html.escape(fix)}</p>" if fix else "")
        + "</main></body></html>"
    )
    return func.HttpResponse(body, status_code=status, mimetype="text/html", headers=PAGE_HEADERS)


@bp.function_name("console_page")
@bp.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def console_page(req: func.HttpRequest) -> func.HttpResponse:
    try:
        authorize(_headers(req), os.environ)
    except Unauthenticated:
        return func.HttpResponse(status_code=302, headers={"Location": LOGIN, "Cache-Control": "no-store"})
    except AccessDenied as exc:
        title = "Console closed" if exc.http_status == 503 else "Not allowed"
        return _message_page(title, str(exc), exc.fix, exc.http_status)
    page = assets()["index.html"]
    return func.HttpResponse(page.body, status_code=200, mimetype=page.mimetype, headers=PAGE_HEADERS)


@bp.function_name("console_assets")
@bp.route(route="console/assets/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def console_assets(req: func.HttpRequest) -> func.HttpResponse:
    asset = assets().get(req.route_params.get("name", ""))
    if asset is None or asset.mimetype == "text/html":
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain")
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if req.headers.get("if-none-match") == asset.etag:
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(asset.body, status_code=200, mimetype=asset.mimetype, headers=headers)


def _me(principal: Principal) -> func.HttpResponse:
    return json_response(principal.document())


@bp.function_name("console_api")
@bp.route(route="console/ops/{operation}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def console_api(req: func.HttpRequest) -> func.HttpResponse:
    headers = _headers(req)
    try:
        principal = authorize(headers, os.environ)
        check_same_origin(req.method, headers)
    except AccessDenied as exc:
        return failure_response(exc)
    name = req.route_params.get("operation", "")
    if name == "me" and req.method == "GET":
        return _me(principal)
    operation = OPERATIONS.get(name)
    if operation is None:
        return error_response(404, "NotFound", f"the console has no operation {name[:64]!r}")
    if req.method != operation.method:
        return error_response(405, "MethodNotAllowed", f"{name} takes {operation.method}")
    return await operation.handler(req, Actor(principal.name, principal.object_id, via="console"))
