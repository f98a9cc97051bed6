"""The aiohttp application of the Graph emulator: the ``/v1.0`` surface (routing, bearer auth,
Graph's error shape, absolute nextLinks, ``$batch``, subscriptions with the validation
handshake) and the ``/_emulator`` control surface. Handlers take the tenant lock only inside
model calls and never await while holding it."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from yarl import URL

from emulators import common

from .delivery import validate_endpoint
from .delta import delta
from .errors import GraphError, bad_request
from .model import Page, Tenant
from .odata import normalize_query
from .seeding import generate, load_seed

if TYPE_CHECKING:
    from .emulator import GraphEmulator

log = logging.getLogger(__name__)

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
API_PREFIX = "/v1.0"
CONTROL = common.CONTROL_PREFIX
HTTP_SESSION = web.AppKey("graph_http_session", aiohttp.ClientSession)
_request_ids: ContextVar[tuple[str, str] | None] = ContextVar("graph_request_ids", default=None)


# --- responses -----------------------------------------------------------------------------------
def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status)
    response.headers["Content-Type"] = ODATA_JSON
    if headers:
        response.headers.update(headers)
    return response


def graph_error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Graph's error body; also the error factory handed to ``common.fault_middleware``."""
    request_id, client_request_id = _request_ids.get() or (str(uuid.uuid4()), str(uuid.uuid4()))
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    return json_response(body, status, headers)


# What an injected status answers with, in Graph's words (other statuses: emulators.common's).
GRAPH_FAULT_TEXT = {
    400: ("Request_BadRequest", "Invalid request (injected fault)."),
    404: (
        "Request_ResourceNotFound",
        "Resource does not exist or one of its queried reference-property objects are not present (injected fault).",
    ),
    409: ("Request_MultipleObjectsWithSameKeyValue", "Another object with the same value exists (injected fault)."),
}


def control_error(status: int, message: str, code: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    return web.json_response(body, status=status)


# --- middlewares ---------------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request ids on every response; any failure becomes an error in the right shape (Graph's
    on /v1.0, a plain one on the control surface) — never a stack trace."""
    client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    request_id = str(uuid.uuid4())
    _request_ids.set((request_id, client_request_id))
    control = request.path.startswith(CONTROL)
    try:
        response = await handler(request)
    except GraphError as exc:
        response = (
            control_error(exc.status, exc.message, exc.code)
            if control
            else graph_error_response(exc.status, exc.code, exc.message, exc.headers)
        )
    except web.HTTPException as exc:
        if exc.status == 405:
            code, message = "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
        elif exc.status == 404:
            code, message = "NotFound", f"The requested path '{request.path}' was not found."
        else:
            code, message = "BadRequest", exc.reason
        if control:
            response = control_error(exc.status, message, code)
        else:
            response = graph_error_response(exc.status, code, message)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        log.exception("unexpected error in the Graph emulator for %s %s", request.method, request.path)
        message = f"The emulator failed unexpectedly ({type(exc).__name__})."
        response = control_error(500, message) if control else graph_error_response(500, "InternalServerError", message)
    if not control and not response.prepared:
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
    return response


def auth_middleware(required: bool) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if required and request.path.startswith(API_PREFIX):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise GraphError(
                    401,
                    "InvalidAuthenticationToken",
                    "Access token is empty." if not header else "Access token validation failure.",
                    {
                        "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'
                    },
                )
        return await handler(request)

    return middleware


# --- /v1.0 routing -------------------------------------------------------------------------------
@dataclass
class Ctx:
    request: web.Request
    match: re.Match[str]
    emulator: GraphEmulator
    params: dict[str, str]

    @property
    def tenant(self) -> Tenant:
        return self.emulator.tenant

    @property
    def origin(self) -> str:
        return f"{self.request.scheme}://{self.request.host}"

    @property
    def base(self) -> str:
        return self.origin + API_PREFIX

    @property
    def eventual(self) -> bool:
        return self.request.headers.get("ConsistencyLevel", "").lower() == "eventual"

    def arg(self, name: str) -> str:
        return self.match.group(name)

    def next_link(self, token: str) -> str:
        """An absolute URL with the original query options and a fresh $skiptoken
        (docs/reference/microsoft-graph.md#paging)."""
        pairs = [(k, v) for k, v in self.request.query.items() if k.lower().lstrip("$") != "skiptoken"]
        pairs.append(("$skiptoken", token))
        query = urlencode(pairs, quote_via=quote, safe="$,'()")
        return f"{self.origin}{self.request.rel_url.raw_path}?{query}"

    def page(self, page: Page, context: str) -> web.Response:
        body: dict[str, Any] = {"@odata.context": f"{self.base}/$metadata#{context}"}
        if page.count is not None:
            body["@odata.count"] = page.count
        body["value"] = page.items
        if page.next_token:
            body["@odata.nextLink"] = self.next_link(page.next_token)
        return json_response(body)

    def entity(self, body: dict[str, Any], context: str, status: int = 200) -> web.Response:
        return json_response({"@odata.context": f"{self.base}/$metadata#{context}", **body}, status)


V1Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        return json.loads(raw)
    except ValueError:
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. "
            "Please ensure Content-Type header is set and payload is of valid JSON format.",
        ) from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body


def prefers_minimal(request: web.Request) -> bool:
    prefs = ",".join(request.headers.getall("Prefer", []))
    return any(p.strip().lower() == "return=minimal" for p in prefs.split(","))


def text_count(value: int) -> web.Response:
    return web.Response(text=str(value), content_type="text/plain")


# Service principals (docs/reference/microsoft-graph.md#app-role-assignments)
async def list_service_principals(ctx: Ctx) -> web.StreamResponse:
    return ctx.page(ctx.tenant.list_service_principals(ctx.params), "servicePrincipals")


async def get_service_principal(ctx: Ctx) -> web.StreamResponse:
    by_app_id = ctx.match.group("appid") is not None
    key = ctx.arg("appid") if by_app_id else ctx.arg("key")
    body = ctx.tenant.get_service_principal(key, ctx.params, by_app_id=by_app_id)
    return ctx.entity(body, "servicePrincipals/$entity")


async def app_role_assigned_to(ctx: Ctx) -> web.StreamResponse:
    by_app_id = ctx.match.group("appid") is not None
    key = ctx.arg("appid") if by_app_id else ctx.arg("key")
    page = ctx.tenant.list_app_role_assigned_to(key, ctx.params, ctx.eventual, by_app_id=by_app_id)
    return ctx.page(page, f"servicePrincipals('{ctx.tenant.sp['id']}')/appRoleAssignedTo")


# Users (docs/reference/microsoft-graph.md#users)
async def list_users(ctx: Ctx) -> web.StreamResponse:
    return ctx.page(ctx.tenant.list_users(ctx.params, ctx.eventual), "users")


async def count_users(ctx: Ctx) -> web.StreamResponse:
    return text_count(ctx.tenant.count_users(ctx.eventual))


async def get_user(ctx: Ctx) -> web.StreamResponse:
    return ctx.entity(ctx.tenant.get_user(ctx.arg("id"), ctx.params), "users/$entity")


async def users_delta(ctx: Ctx) -> web.StreamResponse:
    body, headers = delta(ctx.tenant, "user", ctx.params, minimal=prefers_minimal(ctx.request), base_url=ctx.base)
    return json_response(body, headers=headers)


async def principal_assignments(ctx: Ctx) -> web.StreamResponse:
    return ctx.page(ctx.tenant.list_principal_assignments(ctx.arg("id"), ctx.params), "appRoleAssignments")


async def member_of(ctx: Ctx) -> web.StreamResponse:
    transitive = ctx.match.group("nav").lower() == "transitivememberof"
    return ctx.page(ctx.tenant.list_member_of(ctx.arg("id"), ctx.params, transitive), "directoryObjects")


# Groups (docs/reference/microsoft-graph.md#groups-and-members)
async def list_groups(ctx: Ctx) -> web.StreamResponse:
    return ctx.page(ctx.tenant.list_groups(ctx.params, ctx.eventual), "groups")


async def count_groups(ctx: Ctx) -> web.StreamResponse:
    return text_count(ctx.tenant.count_groups(ctx.eventual))


async def get_group(ctx: Ctx) -> web.StreamResponse:
    return ctx.entity(ctx.tenant.get_group(ctx.arg("id"), ctx.params), "groups/$entity")


async def groups_delta(ctx: Ctx) -> web.StreamResponse:
    body, headers = delta(ctx.tenant, "group", ctx.params, minimal=prefers_minimal(ctx.request), base_url=ctx.base)
    return json_response(body, headers=headers)


def _cast(ctx: Ctx) -> str | None:
    cast = ctx.match.group("cast")
    return cast.lower() if cast else None


async def group_members(ctx: Ctx) -> web.StreamResponse:
    transitive = ctx.match.group("nav").lower() == "transitivemembers"
    if ctx.match.group("count"):
        if not ctx.eventual:
            raise GraphError(400, "Request_BadRequest", "$count requires the header 'ConsistencyLevel: eventual'.")
        counted = {**ctx.params, "$count": "true", "$top": "1"}
        lister = ctx.tenant.list_transitive_members if transitive else ctx.tenant.list_members
        return text_count(lister(ctx.arg("id"), counted, True, _cast(ctx)).count or 0)
    if transitive:
        page = ctx.tenant.list_transitive_members(ctx.arg("id"), ctx.params, ctx.eventual, _cast(ctx))
    else:
        page = ctx.tenant.list_members(ctx.arg("id"), ctx.params, ctx.eventual, _cast(ctx))
    return ctx.page(page, "directoryObjects")


async def group_assignments(ctx: Ctx) -> web.StreamResponse:
    return ctx.page(ctx.tenant.list_principal_assignments(ctx.arg("id"), ctx.params), "appRoleAssignments")


# Recycle bin
async def deleted_items(ctx: Ctx) -> web.StreamResponse:
    kind = ctx.arg("kind").lower()
    return ctx.page(ctx.tenant.list_deleted(kind, ctx.params), f"directoryObjects/microsoft.graph.{kind}")


async def deleted_item(ctx: Ctx) -> web.StreamResponse:
    return ctx.entity(ctx.tenant.get_deleted(ctx.arg("id"), ctx.params), "directoryObjects/$entity")


async def organization(ctx: Ctx) -> web.StreamResponse:
    org = {
        "id": ctx.tenant.tenant_id,
        "displayName": "Contoso",
        "verifiedDomains": [
            {"name": ctx.tenant.default_domain, "isDefault": True, "isInitial": False, "type": "Managed"},
        ],
    }
    return ctx.page(Page([org]), "organization")


# Subscriptions (docs/reference/microsoft-graph.md#change-notifications)
async def create_subscription(ctx: Ctx) -> web.StreamResponse:
    body = await read_json_object(ctx.request)
    sub = ctx.tenant.prepare_subscription(body)
    session: aiohttp.ClientSession = ctx.request.app[HTTP_SESSION]
    for url in filter(None, (sub.notification_url, sub.lifecycle_notification_url)):
        error = await validate_endpoint(session, url, ctx.tenant.config)
        if error is not None:
            raise GraphError(400, "ValidationError", error)
    return ctx.entity(ctx.tenant.add_subscription(sub), "subscriptions/$entity", status=201)


async def list_subscriptions(ctx: Ctx) -> web.StreamResponse:
    return ctx.page(Page(ctx.tenant.list_subscriptions()), "subscriptions")


async def get_subscription(ctx: Ctx) -> web.StreamResponse:
    return ctx.entity(ctx.tenant.get_subscription(ctx.arg("id")), "subscriptions/$entity")


async def update_subscription(ctx: Ctx) -> web.StreamResponse:
    body = await read_json_object(ctx.request)
    expiration, url = ctx.tenant.check_subscription_patch(ctx.arg("id"), body)
    if url is not None:
        error = await validate_endpoint(ctx.request.app[HTTP_SESSION], url, ctx.tenant.config)
        if error is not None:
            raise GraphError(400, "ValidationError", error)
    return ctx.entity(ctx.tenant.apply_subscription_patch(ctx.arg("id"), expiration, url), "subscriptions/$entity")


async def delete_subscription(ctx: Ctx) -> web.StreamResponse:
    ctx.tenant.delete_subscription(ctx.arg("id"))
    return web.Response(status=204)


async def reauthorize_subscription(ctx: Ctx) -> web.StreamResponse:
    ctx.tenant.reauthorize_subscription(ctx.arg("id"))
    return web.Response(status=204)


# $batch (docs/reference/microsoft-graph.md#json-batching)
_HOP_HEADERS = {"content-length", "date", "server", "connection", "transfer-encoding", "keep-alive"}


async def batch(ctx: Ctx) -> web.StreamResponse:
    body = await read_json(ctx.request)
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format: 'requests' must be a non-empty array.")
    limit = ctx.tenant.config.batch_max_requests
    if len(requests) > limit:
        raise GraphError(400, "BadRequest", f"Invalid batch payload format. Maximum number of requests is {limit}.")
    by_id: dict[str, dict[str, Any]] = {}
    for item in requests:
        _check_batch_item(item, by_id)
    for item in requests:
        for dep in item.get("dependsOn") or []:
            if dep not in by_id or dep == item["id"]:
                raise GraphError(400, "BadRequest", f"Request '{item['id']}' depends on unknown request '{dep}'.")
    order = _topological(requests)
    results: dict[str, dict[str, Any]] = {}
    for item in order:
        failed = [d for d in item.get("dependsOn") or [] if results[d]["status"] >= 400]
        if failed:
            # A failed dependency yields 424 for the dependent request
            # (docs/reference/microsoft-graph.md#json-batching).
            results[item["id"]] = {
                "id": item["id"],
                "status": 424,
                "headers": {"Content-Type": "application/json"},
                "body": {"error": {"code": "FailedDependency", "message": f"Dependency '{failed[0]}' failed."}},
            }
            continue
        results[item["id"]] = await _loopback(ctx, item)
    responses = [results[item["id"]] for item in requests]
    if ctx.tenant.config.shuffle_batch_responses:
        random.shuffle(responses)
    return json_response({"responses": responses})


def _check_batch_item(item: Any, by_id: dict[str, dict[str, Any]]) -> None:
    if not isinstance(item, dict):
        raise GraphError(400, "BadRequest", "Invalid batch payload format: each request must be an object.")
    request_id, method, url = item.get("id"), item.get("method"), item.get("url")
    if not isinstance(request_id, str) or not request_id:
        raise GraphError(400, "BadRequest", "Invalid batch payload format: every request needs a string 'id'.")
    if request_id in by_id:
        raise GraphError(400, "BadRequest", f"Invalid batch payload format: duplicate request id '{request_id}'.")
    if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        raise GraphError(400, "BadRequest", f"Invalid batch payload format: bad method in request '{request_id}'.")
    if not isinstance(url, str) or not url or re.match(r"^[a-z]+://", url, re.IGNORECASE):
        raise GraphError(400, "BadRequest", f"Invalid batch payload format: '{request_id}' needs a relative url.")
    if url.lstrip("/").lower().startswith("$batch"):
        raise GraphError(400, "BadRequest", "Invalid batch payload format: nested $batch is not allowed.")
    headers = item.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise GraphError(400, "BadRequest", f"Invalid batch payload format: bad headers in request '{request_id}'.")
    if item.get("body") is not None and not any(k.lower() == "content-type" for k in headers):
        raise GraphError(400, "BadRequest", f"Request '{request_id}' has a body but no Content-Type header.")
    depends = item.get("dependsOn")
    if depends is not None and (not isinstance(depends, list) or not all(isinstance(d, str) for d in depends)):
        raise GraphError(400, "BadRequest", f"Invalid batch payload format: bad dependsOn in request '{request_id}'.")
    by_id[request_id] = item


def _topological(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done: set[str] = set()
    order: list[dict[str, Any]] = []
    pending = list(requests)
    while pending:
        ready = [r for r in pending if all(d in done for d in r.get("dependsOn") or [])]
        if not ready:
            raise GraphError(400, "BadRequest", "Invalid batch payload format: dependsOn forms a cycle.")
        for item in ready:
            order.append(item)
            done.add(item["id"])
        pending = [r for r in pending if r["id"] not in done]
    return order


async def _loopback(ctx: Ctx, item: dict[str, Any]) -> dict[str, Any]:
    """Inner requests go through this very server over HTTP, so auth, faults (inner 429s),
    counters and routing behave exactly as for direct calls."""
    session: aiohttp.ClientSession = ctx.request.app[HTTP_SESSION]
    headers = {k: v for k, v in (item.get("headers") or {}).items()}
    if "Authorization" in ctx.request.headers:
        headers.setdefault("Authorization", ctx.request.headers["Authorization"])
    data = item.get("body")
    payload = json.dumps(data).encode() if isinstance(data, dict | list) else data
    url = URL(f"{ctx.origin}{API_PREFIX}/{item['url'].lstrip('/')}")
    async with session.request(item["method"].upper(), url, headers=headers, data=payload) as response:
        raw = await response.read()
        result: dict[str, Any] = {
            "id": item["id"],
            "status": response.status,
            "headers": {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS},
        }
        if raw:
            if "json" in response.content_type:
                result["body"] = json.loads(raw)
            else:
                result["body"] = raw.decode(errors="replace")
        return result


_ID = r"(?P<id>[^/()]+)"
_SP = r"servicePrincipals(?:/(?P<key>[^/()]+)|\(appId='(?P<appid>[^']+)'\))"
ROUTES: list[tuple[re.Pattern[str], dict[str, V1Handler]]] = [
    (re.compile(p, re.IGNORECASE), handlers)
    for p, handlers in (
        (r"\$batch", {"POST": batch}),
        (r"organization", {"GET": organization}),
        (r"servicePrincipals", {"GET": list_service_principals}),
        (_SP, {"GET": get_service_principal}),
        (_SP + r"/appRoleAssignedTo", {"GET": app_role_assigned_to}),
        (r"users", {"GET": list_users}),
        (r"users/\$count", {"GET": count_users}),
        (r"users/(?:microsoft\.graph\.)?delta(?:\(\))?", {"GET": users_delta}),
        (r"users/" + _ID, {"GET": get_user}),
        (r"users/" + _ID + r"/appRoleAssignments", {"GET": principal_assignments}),
        (r"users/" + _ID + r"/(?P<nav>memberOf|transitiveMemberOf)", {"GET": member_of}),
        (r"groups", {"GET": list_groups}),
        (r"groups/\$count", {"GET": count_groups}),
        (r"groups/(?:microsoft\.graph\.)?delta(?:\(\))?", {"GET": groups_delta}),
        (r"groups/" + _ID, {"GET": get_group}),
        (
            r"groups/" + _ID + r"/(?P<nav>members|transitiveMembers)"
            r"(?:/microsoft\.graph\.(?P<cast>user|group))?(?P<count>/\$count)?",
            {"GET": group_members},
        ),
        (r"groups/" + _ID + r"/appRoleAssignments", {"GET": group_assignments}),
        (r"groups/" + _ID + r"/(?P<nav>memberOf|transitiveMemberOf)", {"GET": member_of}),
        (r"directory/deletedItems/microsoft\.graph\.(?P<kind>user|group)", {"GET": deleted_items}),
        (r"directory/deletedItems/" + _ID, {"GET": deleted_item}),
        (r"subscriptions", {"GET": list_subscriptions, "POST": create_subscription}),
        (
            r"subscriptions/" + _ID,
            {"GET": get_subscription, "PATCH": update_subscription, "DELETE": delete_subscription},
        ),
        (r"subscriptions/" + _ID + r"/reauthorize", {"POST": reauthorize_subscription}),
    )
]


def make_v1_handler(emulator: GraphEmulator) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        rest = request.path[len(API_PREFIX) :].strip("/")
        for pattern, handlers in ROUTES:
            match = pattern.fullmatch(rest)
            if match is None:
                continue
            handler = handlers.get(request.method.upper())
            if handler is None:
                raise GraphError(
                    405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
                )
            params = normalize_query(request.query.items())
            return await handler(Ctx(request, match, emulator, params))
        segment = rest.rsplit("/", 1)[-1] if rest else "v1.0"
        raise bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest")

    return dispatch


# --- /_emulator control surface ------------------------------------------------------------------
def add_graph_control_routes(app: web.Application, emulator: GraphEmulator) -> None:
    tenant = emulator.tenant
    routes = web.RouteTableDef()

    async def body_of(request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise GraphError(400, "BadRequest", "The body is not valid JSON.") from None

    async def object_body(request: web.Request) -> dict[str, Any]:
        body = await body_of(request)
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "The body must be a JSON object.")
        return body

    @routes.get(f"{CONTROL}/state")
    async def state(request: web.Request) -> web.Response:
        return web.json_response(emulator.summary())

    @routes.post(f"{CONTROL}/reset")
    async def reset(request: web.Request) -> web.Response:
        tenant.reset()
        return web.json_response(emulator.summary())

    @routes.post(f"{CONTROL}/seed")
    async def seed(request: web.Request) -> web.Response:
        body = await object_body(request)
        reset_first = request.query.get("reset", "true").lower() != "false"
        return web.json_response(load_seed(tenant, body, reset=reset_first))

    @routes.post(f"{CONTROL}/generate")
    async def generate_route(request: web.Request) -> web.Response:
        body = await object_body(request)
        allowed = {"users", "groups", "seed", "domain", "profile"}
        if set(body) - allowed:
            raise GraphError(400, "BadRequest", f"Unknown field(s): {', '.join(sorted(set(body) - allowed))}.")
        return web.json_response(generate(tenant, **body))

    @routes.post(f"{CONTROL}/users")
    async def create_user(request: web.Request) -> web.Response:
        return web.json_response({"id": tenant.create_user(**await object_body(request))}, status=201)

    @routes.patch(f"{CONTROL}/users/{{id}}")
    async def update_user(request: web.Request) -> web.Response:
        changed = tenant.update_user(request.match_info["id"], **await object_body(request))
        return web.json_response({"changed": sorted(changed)})

    user_actions = {
        "block": tenant.block_user,
        "unblock": tenant.unblock_user,
        "soft-delete": tenant.soft_delete_user,
        "restore": tenant.restore_user,
        "hard-delete": tenant.hard_delete_user,
    }

    @routes.post(f"{CONTROL}/users/{{id}}/{{action}}")
    async def user_action(request: web.Request) -> web.Response:
        action = user_actions.get(request.match_info["action"])
        if action is None:
            raise GraphError(404, "NotFound", f"Unknown user action '{request.match_info['action']}'.")
        action(request.match_info["id"])
        return web.Response(status=204)

    @routes.post(f"{CONTROL}/groups")
    async def create_group(request: web.Request) -> web.Response:
        body = await object_body(request)
        name = body.pop("displayName", None)
        if not isinstance(name, str) or not name:
            raise GraphError(400, "BadRequest", "displayName is required.")
        return web.json_response({"id": tenant.create_group(name, **body)}, status=201)

    @routes.patch(f"{CONTROL}/groups/{{id}}")
    async def update_group(request: web.Request) -> web.Response:
        changed = tenant.update_group(request.match_info["id"], **await object_body(request))
        return web.json_response({"changed": sorted(changed)})

    group_actions = {
        "soft-delete": tenant.soft_delete_group,
        "restore": tenant.restore_group,
        "hard-delete": tenant.hard_delete_group,
    }

    @routes.post(f"{CONTROL}/groups/{{id}}/{{action}}")
    async def group_action(request: web.Request) -> web.Response:
        action = group_actions.get(request.match_info["action"])
        if action is None:
            raise GraphError(404, "NotFound", f"Unknown group action '{request.match_info['action']}'.")
        action(request.match_info["id"])
        return web.Response(status=204)

    @routes.post(f"{CONTROL}/groups/{{id}}/members/{{member}}")
    async def add_member(request: web.Request) -> web.Response:
        added = tenant.add_member(request.match_info["id"], request.match_info["member"])
        return web.json_response({"added": added})

    @routes.delete(f"{CONTROL}/groups/{{id}}/members/{{member}}")
    async def remove_member(request: web.Request) -> web.Response:
        removed = tenant.remove_member(request.match_info["id"], request.match_info["member"])
        return web.json_response({"removed": removed})

    @routes.post(f"{CONTROL}/assignments")
    async def assign(request: web.Request) -> web.Response:
        body = await body_of(request)
        items = body if isinstance(body, list) else [body]
        ids = []
        for item in items:
            if not isinstance(item, dict) or not item.get("principalId"):
                message = "Each assignment needs 'principalId' (and 'role'; null = Default Access)."
                raise GraphError(400, "BadRequest", message)
            ids.append(tenant.assign(item["principalId"], item.get("role")))
        return web.json_response({"ids": ids} if isinstance(body, list) else {"id": ids[0]}, status=201)

    @routes.delete(f"{CONTROL}/assignments/{{principal}}")
    async def unassign(request: web.Request) -> web.Response:
        role: Any = request.query.get("role")
        removed = (
            tenant.unassign(request.match_info["principal"], role)
            if role
            else tenant.unassign(request.match_info["principal"])
        )
        return web.json_response({"removed": removed})

    @routes.post(f"{CONTROL}/clock/advance")
    async def advance(request: web.Request) -> web.Response:
        body = await object_body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise GraphError(400, "BadRequest", "'seconds' must be a non-negative number.")
        tenant.advance_clock(float(seconds))
        return web.json_response({"clock": tenant.summary()["clock"]})

    @routes.post(f"{CONTROL}/delta/expire")
    async def expire(request: web.Request) -> web.Response:
        tenant.expire_delta_tokens()
        return web.Response(status=204)

    @routes.post(f"{CONTROL}/subscriptions/{{id}}/lifecycle")
    async def lifecycle(request: web.Request) -> web.Response:
        body = await object_body(request)
        return web.json_response(tenant.send_lifecycle_event(request.match_info["id"], str(body.get("event"))))

    @routes.delete(f"{CONTROL}/subscriptions/{{id}}")
    async def remove_subscription(request: web.Request) -> web.Response:
        tenant.remove_subscription(request.match_info["id"])
        return web.Response(status=204)

    @routes.get(f"{CONTROL}/deliveries")
    async def deliveries(request: web.Request) -> web.Response:
        return web.json_response(emulator.deliveries_report())

    @routes.delete(f"{CONTROL}/deliveries")
    async def clear_deliveries(request: web.Request) -> web.Response:
        emulator.deliverer.clear_log()
        return web.Response(status=204)

    @routes.post(f"{CONTROL}/deliveries/wait")
    async def wait_deliveries(request: web.Request) -> web.Response:
        body = await object_body(request)
        try:
            await asyncio.to_thread(emulator.deliverer.wait_idle, float(body.get("timeout", 10)))
        except TimeoutError as exc:
            return control_error(504, str(exc))
        return web.Response(status=204)

    app.router.add_routes(routes)


# --- the application -----------------------------------------------------------------------------
def build_app(emulator: GraphEmulator) -> web.Application:
    config = emulator.tenant.config
    app = web.Application(
        middlewares=[
            context_middleware,
            common.fault_middleware(emulator.faults, emulator.counters, graph_error_response, GRAPH_FAULT_TEXT),
            auth_middleware(config.require_auth),
        ],
        client_max_size=16 * 1024**2,
    )
    common.add_control_routes(app, emulator.faults, emulator.counters)
    add_graph_control_routes(app, emulator)
    dispatch = make_v1_handler(emulator)
    app.router.add_route("*", API_PREFIX, dispatch)
    app.router.add_route("*", API_PREFIX + "/{tail:.*}", dispatch)

    async def on_startup(app: web.Application) -> None:
        app[HTTP_SESSION] = aiohttp.ClientSession()
        await emulator.deliverer.start(app[HTTP_SESSION])

    async def on_cleanup(app: web.Application) -> None:
        await emulator.deliverer.stop()
        await app[HTTP_SESSION].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
