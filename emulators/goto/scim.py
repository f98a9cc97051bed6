"""The SCIM / Identity API at ``/identity/v1`` (docs/reference/goto-api.md#scim-endpoints).

This module owns the wire format: parsing filters, request bodies (merge-style definitions and
RFC 7644 PatchOp) and rendering users, groups and list envelopes in the selected dialect
(docs/reference/goto-api.md#u1).
Organization rules (validation, uniqueness, membership) live in :mod:`.model`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .model import (
    ENTERPRISE_ATTRS,
    GROUP_MEMBERS_MAX,
    ROLE_ORG_READ,
    ROLE_ORG_WRITE,
    SCOPE_SCIM_ME,
    SCOPE_SCIM_ORG,
    USER_FILTER_ATTRS,
    GoToError,
    GoToModel,
    Group,
    User,
    UserChanges,
    bad_request,
)
from .wire import IDENTITY_PREFIX, authorize_request, json_response, read_json_object

CORE1 = "urn:scim:schemas:core:1.0"
CORE1_USER = "urn:scim:schemas:core:1.0:User"
CORE1_GROUP = "urn:scim:schemas:core:1.0:Group"
CORE2_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE2_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GETGO = "urn:scim:schemas:extension:getgo:1.0"
PATCHOP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST2 = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SPC2 = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
SCHEMA2 = "urn:ietf:params:scim:schemas:core:2.0:Schema"

_CORE1_URNS = {CORE1.lower(), CORE1_USER.lower(), CORE1_GROUP.lower()}
_CORE2_URNS = {CORE2_USER.lower(), CORE2_GROUP.lower()}

READ_ROLES = (ROLE_ORG_READ, ROLE_ORG_WRITE)
WRITE_ROLES = (ROLE_ORG_WRITE,)
ORG_SCOPES = (SCOPE_SCIM_ORG,)
ME_SCOPES = (SCOPE_SCIM_ME, SCOPE_SCIM_ORG)


# ============================================================================================
# Filters (docs/reference/goto-api.md#filters-and-paging)
# ============================================================================================

_FILTER = re.compile(r'^\s*(?P<attr>[A-Za-z][\w.:$-]*)\s+(?P<op>[A-Za-z]+)\s+"(?P<val>(?:[^"\\]|\\.)*)"\s*$')
_ATTR_PREFIXES = (CORE1.lower() + ":", CORE2_USER.lower() + ":", CORE2_GROUP.lower() + ":")


def parse_filter(text: str, attrs: tuple[str, ...], ops: tuple[str, ...]) -> tuple[str, str, str]:
    """``attr op "value"`` with one of ``attrs`` (case-insensitive) and ``ops``; else 400.

    Users support eq/sw on four attributes, groups eq/sw/co on displayName; and/or, pr, ne
    and every other attribute are treated as unsupported (UNCONFIRMED, assumed absent)."""

    def fail(why: str) -> GoToError:
        return bad_request(f"Invalid filter {text!r}: {why}", code="invalid.filter", scim_type="invalidFilter")

    m = _FILTER.match(text)
    if m is None:
        raise fail('expected one expression: attribute op "value" (op in ' + ", ".join(ops) + ")")
    attr = m["attr"].lower()
    for prefix in _ATTR_PREFIXES:
        if attr.startswith(prefix):
            attr = attr[len(prefix) :]
    canonical = next((a for a in attrs if a.lower() == attr), None)
    if canonical is None:
        raise fail(f"filtering on {m['attr']!r} is not supported (supported: {', '.join(attrs)})")
    op = m["op"].lower()
    if op not in ops:
        raise fail(f"operator {m['op']!r} is not supported (supported: {', '.join(ops)})")
    try:
        value = json.loads(f'"{m["val"]}"')
    except ValueError:
        raise fail("bad escape in the value") from None
    return canonical, op, value


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer", code="invalid.parameter") from None


# ============================================================================================
# Rendering
# ============================================================================================


class Renderer:
    """Builds SCIM JSON for one request, reading the switches once."""

    def __init__(self, model: GoToModel, request: web.Request) -> None:
        sw = model.switches
        self.model = model
        self.scim2 = sw.dialect == "scim2"
        self.honour_active = sw.active == "honour"
        self.store_ext = sw.extension_attrs == "store"
        self.getgo_all = sw.getgo_extension == "all"
        self.base = f"{request.scheme}://{request.host}{IDENTITY_PREFIX}"

    def user(self, u: User, *, me: bool = False) -> dict[str, Any]:
        schemas = [CORE2_USER if self.scim2 else CORE1]
        name: dict[str, str] = {}
        if u.given_name is not None:
            name["givenName"] = u.given_name
        if u.family_name is not None:
            name["familyName"] = u.family_name
        meta: dict[str, Any] = {"created": u.created, "location": f"{self.base}/Users/{u.key}"}
        if self.scim2:
            meta = {"resourceType": "User", **meta, "lastModified": u.last_modified}
        out: dict[str, Any] = {
            "schemas": schemas,
            "id": u.key,
            "userName": u.user_name,
            "displayName": u.shown_display_name,
            "name": name,
            "locale": u.locale,
            "timezone": u.timezone,
            "meta": meta,
        }
        if u.title is not None:
            out["title"] = u.title
        if self.honour_active:
            out["active"] = u.active
        if self.store_ext:
            if u.external_id is not None:
                out["externalId"] = u.external_id
            if u.emails:
                out["emails"] = [dict(e) for e in u.emails]
            if u.enterprise:
                schemas.append(ENTERPRISE)
                out[ENTERPRISE] = dict(u.enterprise)
        if (me or self.getgo_all) and u.in_account:
            # docs/reference/goto-api.md#u15: on /Users/me by default;
            # the entitlement strings beyond "acctadmin" are unknown.
            schemas.append(GETGO)
            entitlements = ["acctadmin"] if (u.admin_roles or u.org_admin) else []
            out[GETGO] = {
                "accounts": [
                    {"value": self.model.account_key, "display": self.model.account_name, "entitlements": entitlements}
                ]
            }
        return out

    def group(self, g: Group, *, members: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {"created": g.created, "location": f"{self.base}/Groups/{g.key}"}
        if self.scim2:
            meta = {"resourceType": "Group", **meta, "lastModified": g.last_modified}
        out: dict[str, Any] = {
            "schemas": [CORE2_GROUP if self.scim2 else CORE1],
            "id": g.key,
            "displayName": g.display_name,
        }
        if members:
            if self.scim2:
                out["members"] = [{"value": v, "type": t.capitalize()} for v, t in g.members.items()]
            else:
                out["members"] = [{"type": t, "value": v} for v, t in g.members.items()]
        if self.store_ext and g.external_id is not None:
            out["externalId"] = g.external_id
        out["meta"] = meta
        return out

    def envelope(self, resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
        if self.scim2:
            return {
                "schemas": [LIST2],
                "totalResults": total,
                "itemsPerPage": len(resources),
                "startIndex": start,
                "Resources": resources,
            }
        # docs/reference/goto-api.md#filters-and-paging:
        # {"resources": [...], "totalResults": n} — lower-case, nothing else documented.
        return {"resources": resources, "totalResults": total}


# ============================================================================================
# Request bodies
# ============================================================================================


def _lower_map(body: dict[str, Any]) -> dict[str, Any]:
    # SCIM attribute names are case-insensitive (RFC 7643 §2.1).
    return {str(k).lower(): v for k, v in body.items()}


def check_schemas(model: GoToModel, body: dict[str, Any]) -> None:
    """Schemas by dialect (docs/reference/goto-api.md#u1): scim1 accepts only 1.x core URNs, scim2 only 2.0 core
    URNs, mixed both. Bodies without ``schemas`` (the documented UserDefinition has none) are
    accepted everywhere."""
    schemas = _lower_map(body).get("schemas")
    if schemas is None:
        return
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise bad_request("schemas must be a list of URNs", scim_type="invalidSyntax")
    dialect = model.switches.dialect
    for urn in (s.lower() for s in schemas):
        if dialect == "scim1" and urn in _CORE2_URNS:
            raise bad_request(f"Schema {urn} is not supported (SCIM 1.x service)", code="invalid.schema")
        if dialect == "scim2" and urn in _CORE1_URNS:
            raise bad_request(f"Schema {urn} is not supported (SCIM 2.0 service)", code="invalid.schema")


def parse_bool(value: Any, attr: str = "active") -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    # Entra sends PatchOp booleans as the strings "True"/"False".
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"{attr} must be a boolean")


def parse_emails(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request("emails must be a list")
    out = []
    for e in value:
        if not isinstance(e, dict):
            raise bad_request("each email must be an object")
        lm = _lower_map(e)
        if not isinstance(lm.get("value"), str):
            raise bad_request("each email needs a string value")
        item: dict[str, Any] = {"value": lm["value"]}
        if "type" in lm:
            item["type"] = lm["type"]
        if "primary" in lm:
            item["primary"] = parse_bool(lm["primary"], "emails.primary")
        out.append(item)
    return out


def parse_enterprise(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"{ENTERPRISE} must be an object")
    lm = _lower_map(value)
    out: dict[str, Any] = {}
    for attr in ENTERPRISE_ATTRS:
        if attr.lower() in lm:
            v = lm[attr.lower()]
            if v is not None and not isinstance(v, str):
                raise bad_request(f"{attr} must be a string")
            out[attr] = v
    return out


_USER_SIMPLE = {
    "username": "user_name",
    "displayname": "display_name",
    "locale": "locale",
    "timezone": "timezone",
    "title": "title",
    "password": "password",
    "externalid": "external_id",
}


def user_attrs_from_object(obj: dict[str, Any]) -> UserChanges:
    """Maps a (partial) user definition to internal names; unknown attributes are ignored."""
    lm = _lower_map(obj)
    c: UserChanges = {}
    for attr, internal in _USER_SIMPLE.items():
        if attr in lm:
            c[internal] = lm[attr]
    if "name" in lm:
        name = lm["name"]
        if name is None:
            c["given_name"] = c["family_name"] = None
        elif not isinstance(name, dict):
            raise bad_request("name must be an object")
        else:
            nm = _lower_map(name)
            if "givenname" in nm:
                c["given_name"] = nm["givenname"]
            if "familyname" in nm:
                c["family_name"] = nm["familyname"]
    if "active" in lm:
        c["active"] = parse_bool(lm["active"])
    if "emails" in lm:
        c["emails"] = parse_emails(lm["emails"])
    if ENTERPRISE.lower() in lm:
        c["enterprise"] = parse_enterprise(lm[ENTERPRISE.lower()])
    return c


def apply_policies(model: GoToModel, c: UserChanges) -> UserChanges:
    """The ``active`` (docs/reference/goto-api.md#u3) and extension-attribute
    (docs/reference/goto-api.md#u4) switches."""
    sw = model.switches
    if "active" in c:
        if sw.active == "reject":
            raise bad_request("Attribute 'active' is not supported", code="invalid.attribute")
        if sw.active == "ignore":
            del c["active"]
    ext = [k for k in ("external_id", "emails", "enterprise") if k in c]
    if ext:
        if sw.extension_attrs == "reject":
            names = {"external_id": "externalId", "emails": "emails", "enterprise": ENTERPRISE}
            raise bad_request("Unsupported attribute(s): " + ", ".join(names[k] for k in ext), code="invalid.attribute")
        if sw.extension_attrs == "drop":
            for k in ext:
                del c[k]
    return c


def is_patchop(body: dict[str, Any]) -> bool:
    lm = _lower_map(body)
    schemas = lm.get("schemas")
    return "operations" in lm or (isinstance(schemas, list) and PATCHOP.lower() in [str(s).lower() for s in schemas])


def check_patch_style(model: GoToModel, body: dict[str, Any]) -> bool:
    """Returns True for a PatchOp body; 400 when the style is not accepted (docs/reference/goto-api.md#u2)."""
    patchop = is_patchop(body)
    mode = model.switches.patch_mode
    if patchop and mode == "merge":
        raise bad_request("PatchOp requests are not supported; send the changed attributes", code="invalid.patch")
    if not patchop and mode == "patchop":
        raise bad_request(
            f"PATCH must be a {PATCHOP} request with Operations", code="invalid.patch", scim_type="invalidSyntax"
        )
    return patchop


def operations(body: dict[str, Any]) -> list[tuple[str, str | None, Any]]:
    ops = _lower_map(body).get("operations")
    if not isinstance(ops, list) or not ops:
        raise bad_request("Operations must be a non-empty list", code="invalid.patch", scim_type="invalidSyntax")
    out = []
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request("each operation must be an object", code="invalid.patch", scim_type="invalidSyntax")
        lm = _lower_map(op)
        kind = str(lm.get("op", "")).lower()
        if kind not in ("add", "replace", "remove"):
            raise bad_request(f"unsupported op {lm.get('op')!r}", code="invalid.patch", scim_type="invalidSyntax")
        path = lm.get("path")
        if path is not None and not isinstance(path, str):
            raise bad_request("path must be a string", code="invalid.patch", scim_type="invalidPath")
        out.append((kind, path or None, lm.get("value")))
    return out


_EMAIL_TYPE_PATH = re.compile(r'^emails\[type eq "([^"]*)"\]\.value$', re.IGNORECASE)
_MEMBER_VALUE_PATH = re.compile(r'^members\[value eq "([^"]*)"\]$', re.IGNORECASE)


def _merge(c: UserChanges, more: UserChanges) -> None:
    for k, v in more.items():
        if k == "enterprise" and v is not None and c.get("enterprise") is not None:
            c["enterprise"].update(v)
        else:
            c[k] = v


def user_changes_from_patchop(body: dict[str, Any], user: User) -> UserChanges:
    """RFC 7644 PatchOp for users, with the paths Entra's GoTo app uses
    (docs/reference/entra-provisioning.md#goto-gallery-app)."""
    c: UserChanges = {}
    for kind, path, value in operations(body):
        if path is None:
            if kind == "remove" or not isinstance(value, dict):
                raise bad_request("an operation without path needs an object value", scim_type="noTarget")
            _merge(c, user_attrs_from_object(value))
            continue
        p = path.strip()
        pl = p.lower()
        for prefix in (CORE2_USER.lower() + ":", CORE1.lower() + ":"):
            if pl.startswith(prefix):
                p, pl = p[len(prefix) :], pl[len(prefix) :]
        v = None if kind == "remove" else value
        ent = ENTERPRISE.lower()
        if pl.startswith(ent + ":"):
            sub = pl[len(ent) + 1 :]
            attr = next((a for a in ENTERPRISE_ATTRS if a.lower() == sub), None)
            if attr is None:
                raise bad_request(f"unsupported path {path!r}", scim_type="invalidPath")
            if v is not None and not isinstance(v, str):
                raise bad_request(f"{attr} must be a string")
            c.setdefault("enterprise", {})
            if c["enterprise"] is None:
                c["enterprise"] = {}
            c["enterprise"][attr] = v
        elif pl == ent:
            _merge(c, {"enterprise": parse_enterprise(v)})
        elif pl in _USER_SIMPLE:
            c[_USER_SIMPLE[pl]] = v
        elif pl in ("name.givenname", "name.familyname"):
            c["given_name" if pl.endswith("givenname") else "family_name"] = v
        elif pl == "name":
            if v is not None and not isinstance(v, dict):
                raise bad_request("name must be an object")
            _merge(c, user_attrs_from_object({"name": v}))
        elif pl == "active":
            c["active"] = True if v is None else parse_bool(v)
        elif pl == "emails":
            emails = parse_emails(v)
            if kind == "add" and emails:
                emails = list(c.get("emails") or user.emails or []) + emails
            c["emails"] = emails
        elif (m := _EMAIL_TYPE_PATH.match(p)) is not None:
            wanted = m[1].lower()
            current = c.get("emails") or user.emails or []
            emails = [dict(e) for e in current if str(e.get("type", "")).lower() != wanted]
            if v is not None:
                if not isinstance(v, str):
                    raise bad_request("email value must be a string")
                emails.append({"value": v, "type": m[1], "primary": not emails})
            c["emails"] = emails or None
        else:
            raise bad_request(f"unsupported path {path!r}", scim_type="invalidPath")
    return c


Member = tuple[str | None, str]


def parse_members(model: GoToModel, value: Any) -> list[Member]:
    """``{"type": "user"|"group", "value": key}``, both required by the spec (docs/reference/goto-api.md#groups).
    Outside the scim1 dialect a missing type is inferred (Entra sends only ``value``)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request("members must be a list", code="invalid.member")
    strict = model.switches.dialect == "scim1"
    out: list[Member] = []
    for m in value:
        if not isinstance(m, dict):
            raise bad_request("each member must be an object", code="invalid.member")
        lm = _lower_map(m)
        v = lm.get("value")
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str) or not v:
            raise bad_request("each member needs a value (the user or group key)", code="invalid.member")
        t = lm.get("type")
        if t is None:
            if strict:
                raise bad_request('each member needs a type ("user" or "group")', code="invalid.member")
        elif not isinstance(t, str) or t.lower() not in ("user", "group"):
            raise bad_request('member type must be "user" or "group"', code="invalid.member")
        out.append((t.lower() if isinstance(t, str) else None, v))
    return out


def count_members(body: dict[str, Any]) -> int:
    """Members in one request body, over every place they can appear (at most
    100, docs/reference/goto-api.md#groups)."""
    lm = _lower_map(body)
    n = len(lm["members"]) if isinstance(lm.get("members"), list) else 0
    ops = lm.get("operations")
    if isinstance(ops, list):
        for op in ops:
            if not isinstance(op, dict):
                continue
            ol = _lower_map(op)
            value = ol.get("value")
            path = str(ol.get("path") or "").lower()
            if path == "members" and isinstance(value, list):
                n += len(value)
            elif _MEMBER_VALUE_PATH.match(path):
                n += 1
            elif not path and isinstance(value, dict):
                members = _lower_map(value).get("members")
                n += len(members) if isinstance(members, list) else 0
    return n


def _group_external_id(model: GoToModel, present: bool, value: Any) -> Any:
    """Group externalId follows the extension_attrs switch (docs/reference/goto-api.md#u14). Returns ... for
    "no change"."""
    if not present:
        return ...
    if model.switches.extension_attrs == "reject":
        raise bad_request("Unsupported attribute(s): externalId", code="invalid.attribute")
    if model.switches.extension_attrs == "drop":
        return ...
    if value is not None and not isinstance(value, str):
        raise bad_request("externalId must be a string")
    return value


# ============================================================================================
# Discovery documents
# ============================================================================================

_USER_SCHEMA_ATTRS = [
    ("id", "string", True, "Unique key of the user"),
    ("userName", "string", False, "Usually the e-mail address; its domain must be verified; at most 128 characters"),
    ("displayName", "string", False, "Name to display"),
    ("name", "complex", False, "givenName and familyName, at most 60 characters each"),
    ("locale", "string", False, "ISO-639 language, optionally _ and an ISO-3166 country (en_US)"),
    ("timezone", "string", False, "Time-zone id (IANA)"),
    ("meta", "complex", True, "created and location"),
    ("password", "string", False, "Write-only"),
]


def user_schema(scim2: bool) -> dict[str, Any]:
    if scim2:
        return {
            "schemas": [SCHEMA2],
            "id": CORE2_USER,
            "name": "User",
            "description": "User account",
            "attributes": [
                {
                    "name": n,
                    "type": t,
                    "multiValued": False,
                    "description": d,
                    "required": n == "userName",
                    "caseExact": False,
                    "mutability": "readOnly" if ro else ("writeOnly" if n == "password" else "readWrite"),
                    "returned": "never" if n == "password" else "default",
                    "uniqueness": "server" if n in ("id", "userName") else "none",
                }
                for n, t, ro, d in _USER_SCHEMA_ATTRS
            ],
            "meta": {"resourceType": "Schema", "location": f"/Schemas/{CORE2_USER}"},
        }
    # A SCIM 1.x ResourceSchema (docs/reference/goto-api.md#scim-endpoints).
    return {
        "id": CORE1_USER,
        "name": "User",
        "description": "User account",
        "schema": CORE1,
        "endpoint": "/Users",
        "attributes": [
            {
                "name": n,
                "type": t,
                "multiValued": False,
                "description": d,
                "schema": CORE1,
                "readOnly": ro,
                "required": n == "userName",
                "caseExact": False,
            }
            for n, t, ro, d in _USER_SCHEMA_ATTRS
        ],
    }


def service_provider_config(model: GoToModel, scim2: bool) -> dict[str, Any]:
    # The supported flags are undocumented (docs/reference/goto-api.md#patch-styles); these describe what this
    # stand-in does.
    patch = model.switches.patch_mode != "merge" if scim2 else True
    body: dict[str, Any] = {
        "schemas": [SPC2 if scim2 else CORE1],
        "documentationUrl": "https://developer.goto.com/",
        "patch": {"supported": patch},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": model.switches.users_max_page_size},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a GoTo OAuth 2.0 access token",
                "primary": True,
            }
        ],
    }
    if not scim2:
        body["xmlDataFormat"] = {"supported": False}
    return body


# ============================================================================================
# Handlers
# ============================================================================================


class ScimHandlers:
    def __init__(self, model: GoToModel) -> None:
        self.model = model

    def _auth(self, request: web.Request, write: bool, scopes: tuple[str, ...] = ORG_SCOPES) -> Any:
        return authorize_request(request, self.model, scopes=scopes, roles=WRITE_ROLES if write else READ_ROLES)

    # ---------------------------------------------------------------- users

    async def list_users(self, request: web.Request) -> web.Response:
        self._auth(request, write=False)
        m = self.model
        raw_filter = request.query.get("filter")
        flt = parse_filter(raw_filter, USER_FILTER_ATTRS, ("eq", "sw")) if raw_filter is not None else None
        start_param, count_param = _int_param(request, "startIndex"), _int_param(request, "count")
        with m.lock:
            sw = m.switches
            users = m.find_users(flt)
            total = len(users)
            start = 1
            if sw.users_paging:
                # Paging is undocumented for users (docs/reference/goto-api.md#u5); when on, SCIM semantics
                # (1-based index).
                start = max(1, start_param or 1)
                count = sw.users_page_size if count_param is None else max(0, count_param)
                count = min(count, sw.users_max_page_size)
                users = users[start - 1 : start - 1 + count]
            r = Renderer(m, request)
            body = r.envelope([r.user(u) for u in users], total, start)
        return json_response(body)

    async def get_user(self, request: web.Request) -> web.Response:
        self._auth(request, write=False)
        with self.model.lock:
            user = self.model.org_user(request.match_info["key"])
            body = Renderer(self.model, request).user(user)
        return json_response(body)

    async def create_user(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            check_schemas(m, body)
            c = apply_policies(m, user_attrs_from_object(body))
            user = m.scim_create_user(c)
            out = Renderer(m, request).user(user)
        return json_response(out, 201, {"Location": out["meta"]["location"]})

    async def replace_user(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        return await self._replace(request, lambda: self.model.org_user(request.match_info["key"]))

    async def update_user(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        return await self._update(request, lambda: self.model.org_user(request.match_info["key"]))

    async def _replace(self, request: web.Request, find: Callable[[], User], me: bool = False) -> web.Response:
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            user = find()
            check_schemas(m, body)
            c = apply_policies(m, user_attrs_from_object(body))
            m.scim_replace_user(user, c)
            out = Renderer(m, request).user(user, me=me)
        return json_response(out)

    async def _update(self, request: web.Request, find: Callable[[], User], me: bool = False) -> web.Response:
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            user = find()
            if check_patch_style(m, body):
                c = user_changes_from_patchop(body, user)
            else:
                check_schemas(m, body)
                c = user_attrs_from_object(body)
            m.scim_update_user(user, apply_policies(m, c))
            out = Renderer(m, request).user(user, me=me)
        return json_response(out)

    async def delete_user(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        with self.model.lock:
            self.model.scim_delete_user(self.model.org_user(request.match_info["key"]))
            scim2 = self.model.switches.dialect == "scim2"
        # DELETE answers 200 (not 204) with no body documented (docs/reference/goto-api.md#scim-endpoints); SCIM 2.0
        # servers answer 204.
        return web.Response(status=204 if scim2 else 200)

    def _me(self, request: web.Request, write: bool) -> Callable[[], User]:
        at = authorize_request(request, self.model, scopes=ME_SCOPES)
        return lambda: self.model.principal_user(at.principal)

    async def get_me(self, request: web.Request) -> web.Response:
        find = self._me(request, write=False)
        with self.model.lock:
            body = Renderer(self.model, request).user(find(), me=True)
        return json_response(body)

    async def replace_me(self, request: web.Request) -> web.Response:
        return await self._replace(request, self._me(request, write=True), me=True)

    async def update_me(self, request: web.Request) -> web.Response:
        return await self._update(request, self._me(request, write=True), me=True)

    # ---------------------------------------------------------------- groups

    async def list_groups(self, request: web.Request) -> web.Response:
        self._auth(request, write=False)
        m = self.model
        raw_filter = request.query.get("filter")
        flt = parse_filter(raw_filter, ("displayName",), ("eq", "sw", "co")) if raw_filter is not None else None
        start = max(1, _int_param(request, "startIndex") or 1)
        count = _int_param(request, "count")
        sort_by = request.query.get("sortBy")
        order = request.query.get("sortOrder", "ascending").lower()
        if order not in ("ascending", "descending"):
            raise bad_request("sortOrder must be ascending or descending", code="invalid.parameter")
        sort_keys: dict[str, Callable[[Group], Any]] = {
            "displayname": lambda g: g.display_name.lower(),
            "id": lambda g: g.key,
            "meta.created": lambda g: g.created,
        }
        if sort_by is not None and sort_by.lower() not in sort_keys:
            raise bad_request(f"sortBy {sort_by!r} is not supported", code="invalid.parameter")
        excluded = {a.strip().lower() for a in request.query.get("excludedAttributes", "").split(",")}
        with m.lock:
            groups = m.find_groups(flt)
            if sort_by is not None:
                groups = sorted(groups, key=sort_keys[sort_by.lower()], reverse=order == "descending")
            elif order == "descending":
                groups = groups[::-1]
            total = len(groups)
            page = groups[start - 1 :] if count is None else groups[start - 1 : start - 1 + max(0, count)]
            r = Renderer(m, request)
            body = r.envelope([r.group(g, members="members" not in excluded) for g in page], total, start)
        return json_response(body)

    async def get_group(self, request: web.Request) -> web.Response:
        self._auth(request, write=False)
        excluded = {a.strip().lower() for a in request.query.get("excludedAttributes", "").split(",")}
        with self.model.lock:
            group = self.model.get_group(request.match_info["key"])
            body = Renderer(self.model, request).group(group, members="members" not in excluded)
        return json_response(body)

    def _check_member_count(self, body: dict[str, Any]) -> None:
        if count_members(body) > GROUP_MEMBERS_MAX:
            raise bad_request("At most 100 members may be sent in one request", code="invalid.members")

    async def create_group(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            check_schemas(m, body)
            self._check_member_count(body)
            lm = _lower_map(body)
            ext = _group_external_id(m, "externalid" in lm, lm.get("externalid"))
            group = m.scim_create_group(
                lm.get("displayname"), parse_members(m, lm.get("members")), None if ext is ... else ext
            )
            out = Renderer(m, request).group(group)
        return json_response(out, 201, {"Location": out["meta"]["location"]})

    async def replace_group(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            group = m.get_group(request.match_info["key"])
            check_schemas(m, body)
            self._check_member_count(body)
            lm = _lower_map(body)
            if lm.get("displayname") is None:
                raise bad_request("displayName is required", code="invalid.displayName")
            ext = _group_external_id(m, True, lm.get("externalid"))
            m.scim_update_group(
                group,
                display_name=lm["displayname"],
                set_members=parse_members(m, lm.get("members")),
                external_id=ext,
            )
            out = Renderer(m, request).group(group)
        return json_response(out)

    async def update_group(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        body = await read_json_object(request)
        m = self.model
        with m.lock:
            group = m.get_group(request.match_info["key"])
            self._check_member_count(body)
            members: list[Member] = [(t, v) for v, t in group.members.items()]
            changed_members = False
            display_name: Any = None
            external_id: Any = ...
            if check_patch_style(m, body):
                for kind, path, value in operations(body):
                    pl = (path or "").strip().lower()
                    for prefix in (CORE2_GROUP.lower() + ":", CORE1.lower() + ":"):
                        if pl.startswith(prefix):
                            pl = pl[len(prefix) :]
                    if not pl:
                        if kind == "remove" or not isinstance(value, dict):
                            raise bad_request("an operation without path needs an object value", scim_type="noTarget")
                        vm = _lower_map(value)
                        if "displayname" in vm:
                            display_name = vm["displayname"]
                            if display_name is None:
                                raise bad_request("displayName is required", code="invalid.displayName")
                        if "externalid" in vm:
                            external_id = _group_external_id(m, True, vm["externalid"])
                        if "members" in vm:
                            new = parse_members(m, vm["members"])
                            members = members + new if kind == "add" else new
                            changed_members = True
                    elif pl == "displayname":
                        if kind == "remove" or value is None:
                            raise bad_request("displayName is required", code="invalid.displayName")
                        display_name = value
                    elif pl == "externalid":
                        external_id = _group_external_id(m, True, None if kind == "remove" else value)
                    elif pl == "members":
                        changed_members = True
                        if kind == "remove":
                            if value is None:
                                members = []
                            else:
                                gone = {v for _, v in parse_members(m, value)}
                                members = [x for x in members if x[1] not in gone]
                        elif kind == "add":
                            members = members + parse_members(m, value)
                        else:
                            members = parse_members(m, value)
                    elif (mv := _MEMBER_VALUE_PATH.match(path or "")) is not None and kind == "remove":
                        changed_members = True
                        members = [x for x in members if x[1] != mv[1]]
                    else:
                        raise bad_request(f"unsupported path {path!r}", scim_type="invalidPath")
            else:
                # The merge-style body is a GroupDefinition, whose model requires displayName
                # (docs/reference/goto-api.md#patch-styles).
                check_schemas(m, body)
                lm = _lower_map(body)
                if lm.get("displayname") is None:
                    raise bad_request("displayName is required", code="invalid.displayName")
                display_name = lm["displayname"]
                external_id = _group_external_id(m, "externalid" in lm, lm.get("externalid"))
                if "members" in lm:
                    new = parse_members(m, lm["members"])
                    # Whether members adds or replaces is unknown (docs/reference/goto-api.md#u13); replace is
                    # the natural reading.
                    members = members + new if m.switches.members_patch == "add" else new
                    changed_members = True
            m.scim_update_group(
                group,
                display_name=display_name,
                set_members=members if changed_members else None,
                external_id=external_id,
            )
            out = Renderer(m, request).group(group)
        return json_response(out)

    async def delete_group(self, request: web.Request) -> web.Response:
        self._auth(request, write=True)
        with self.model.lock:
            self.model.scim_delete_group(self.model.get_group(request.match_info["key"]))
            scim2 = self.model.switches.dialect == "scim2"
        return web.Response(status=204 if scim2 else 200)

    # ---------------------------------------------------------------- discovery

    async def service_provider_configs(self, request: web.Request) -> web.Response:
        authorize_request(request, self.model, scopes=ORG_SCOPES + ME_SCOPES)
        with self.model.lock:
            body = service_provider_config(self.model, self.model.switches.dialect == "scim2")
        return json_response(body)

    async def service_provider_config_singular(self, request: web.Request) -> web.Response:
        # The singular SCIM 2.0 path is not in the spec (docs/reference/goto-api.md#scim-endpoints); served only
        # outside scim1 (docs/reference/goto-api.md#u1).
        if self.model.switches.dialect == "scim1":
            raise GoToError(404, "not.found", "Not found", scim_type=None)
        authorize_request(request, self.model, scopes=ORG_SCOPES + ME_SCOPES)
        with self.model.lock:
            body = service_provider_config(self.model, True)
        return json_response(body)

    async def user_schema(self, request: web.Request) -> web.Response:
        authorize_request(request, self.model, scopes=ORG_SCOPES + ME_SCOPES)
        return json_response(user_schema(self.model.switches.dialect == "scim2"))


def add_scim_routes(app: web.Application, model: GoToModel) -> None:
    h = ScimHandlers(model)
    p = IDENTITY_PREFIX
    r = app.router
    # /Users/me before /Users/{key} so that "me" is never taken for a key.
    r.add_get(f"{p}/Users/me", h.get_me)
    r.add_put(f"{p}/Users/me", h.replace_me)
    r.add_patch(f"{p}/Users/me", h.update_me)
    r.add_get(f"{p}/Users", h.list_users)
    r.add_post(f"{p}/Users", h.create_user)
    r.add_get(f"{p}/Users/{{key}}", h.get_user)
    r.add_put(f"{p}/Users/{{key}}", h.replace_user)
    r.add_patch(f"{p}/Users/{{key}}", h.update_user)
    r.add_delete(f"{p}/Users/{{key}}", h.delete_user)
    r.add_get(f"{p}/Groups", h.list_groups)
    r.add_post(f"{p}/Groups", h.create_group)
    r.add_get(f"{p}/Groups/{{key}}", h.get_group)
    r.add_put(f"{p}/Groups/{{key}}", h.replace_group)
    r.add_patch(f"{p}/Groups/{{key}}", h.update_group)
    r.add_delete(f"{p}/Groups/{{key}}", h.delete_group)
    r.add_get(f"{p}/ServiceProviderConfigs", h.service_provider_configs)
    r.add_get(f"{p}/ServiceProviderConfig", h.service_provider_config_singular)
    r.add_get(f"{p}/Schemas/Users", h.user_schema)
