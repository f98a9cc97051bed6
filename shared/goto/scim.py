"""The GoTo SCIM / Identity API client (``/identity/v1``): users and organization groups.

It speaks the documented SCIM 1.x dialect and tolerates SCIM 2.0 answers; every undocumented
behaviour (docs/reference/goto-api.md#unconfirmed-behaviours) is either handled both ways or
chosen by a constructor setting.

The ``scim2`` profile points the same client at any SCIM 2.0 service provider and makes what it
sends strict RFC 7643/7644 (https://www.rfc-editor.org/rfc/rfc7643,
https://www.rfc-editor.org/rfc/rfc7644): ``schemas`` on every body, canonical member types,
PatchOp updates, ``application/scim+json``; GoTo's own quirks and limits are left out.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from shared.scim.dialect import PatchStyle, ScimProfile
from shared.scim.filters import escape_filter_value, matches_eq, scim_filter
from shared.scim.limits import MAX_MEMBERS_PER_REQUEST, group_name_problem, user_problem
from shared.scim.paths import get_value, has_value, parse_path, set_value
from shared.scim.resource import apply_changes, patchop_body, put_body, strict_patchop_body, with_schemas
from shared.scim.schemas import GETGO_URN, GROUP_URN, PATCHOP_URN, USER_URN, is_extension

from .auth import TokenProvider
from .errors import SERVICE_INCOMPATIBLE, AuthError, BadRequest, GoToError, NotFound, Op
from .listing import ListAnswer
from .ratelimit import SharedBudget
from .transport import JSON_MEDIA_TYPE, Transport, TransportClient, decode_json

log = logging.getLogger("shared.goto")

PATCH_STYLES: tuple[str, ...] = tuple(s.value for s in PatchStyle)
# goto: GoTo's SCIM API as documented and observed (the default). scim2: any strict SCIM 2.0 app.
SCIM_PROFILES: tuple[str, ...] = tuple(p.value for p in ScimProfile)

SCIM_MEDIA_TYPE = "application/scim+json"
# RFC 7643 §4.2: the canonical values of a group member's "type".
MEMBER_TYPES = {"user": "User", "group": "Group"}

MAX_PAGES = 100_000

# Attributes outside GoTo's documented user model (docs/reference/goto-api.md#u3,
# docs/reference/goto-api.md#u4): sent only when settings allow.
ACTIVE_ATTRS = frozenset({"active"})
EXTENSION_ATTRS = frozenset({"externalid", "emails"})


# --- GoTo's merge-style PATCH and the settings that keep attributes out -------------------------


def merge_body(changes: Mapping[str, Any], full_resource: Mapping[str, Any]) -> dict[str, Any]:
    """The documented merge-style PATCH body (docs/reference/goto-api.md#patch-styles): nested
    JSON holding only what changes.

    A multi-valued attribute (``emails[type eq "work"].value``) cannot be patched element-wise in
    this style, so the whole list is sent, built from ``full_resource`` with the change applied.
    """
    body: dict[str, Any] = {}
    for path, value in changes.items():
        ref = parse_path(path)
        if ref.filtered and not has_value(body, ref.whole):
            set_value(body, ref.whole, copy.deepcopy(get_value(full_resource, ref.whole) or []))
        set_value(body, ref, copy.deepcopy(value))
    return body


def _core_attr(key: str) -> str:
    """The top-level attribute a resource key or change path names (``name`` for ``name.givenName``)."""
    try:
        return parse_path(key).attr
    except ValueError:
        return key


def strip_unsent(body: Mapping[str, Any], *, send_active: bool, send_extensions: bool) -> dict[str, Any]:
    """Drops what settings say GoTo must not receive: ``active`` (docs/reference/goto-api.md#u3);
    ``externalId``, ``emails`` and extension schemas (docs/reference/goto-api.md#u4). Works on
    resources and on ``changes`` keyed by path."""
    result: dict[str, Any] = {}
    for key, value in body.items():
        if is_extension(key):
            if send_extensions:
                result[key] = value
            continue
        attr = _core_attr(key).lower()
        if (not send_active and attr in ACTIVE_ATTRS) or (not send_extensions and attr in EXTENSION_ATTRS):
            continue
        result[key] = value
    if not send_extensions and isinstance(result.get("schemas"), list):
        result["schemas"] = [s for s in result["schemas"] if not is_extension(s)]
    return result


# --- pre-send validation ------------------------------------------------------------------------


def _bad(op: Op, code: str, cause: str) -> BadRequest:
    return BadRequest(f"{op.subject} not sent: {code}: {cause}", code=code, op=op, detail=cause)


def validate_user(
    resource: Mapping[str, Any],
    op: Op,
    *,
    verified_domains: Iterable[str] | None = None,
    partial: bool = False,
    goto_limits: bool = True,
) -> None:
    """GoTo's limits (``shared.scim.limits.user_problem``), raised as ``BadRequest`` before sending."""
    problem = user_problem(resource, verified_domains=verified_domains or (), partial=partial, goto_limits=goto_limits)
    if problem is not None:
        raise _bad(op, *problem)


def validate_group_name(display_name: Any, op: Op, *, goto_limits: bool = True) -> None:
    problem = group_name_problem(display_name, goto_limits=goto_limits)
    if problem is not None:
        raise _bad(op, *problem)


# --- list envelopes -----------------------------------------------------------------------------


def read_envelope(data: Any, op: Op) -> tuple[list[dict[str, Any]], int | None]:
    """Resources and totalResults from a list answer: GoTo's ``resources`` (1.x), SCIM 2.0's
    ``Resources``, or a bare JSON list. ``itemsPerPage`` and ``startIndex`` are not required."""
    if data is None:
        return [], 0
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)], None
    if not isinstance(data, dict):
        raise GoToError(f"{op.subject}: the list answer is not a JSON object", code=SERVICE_INCOMPATIBLE, op=op)
    resources = data.get("Resources")
    if resources is None:
        resources = data.get("resources")
    if resources is None:
        resources = []
    if not isinstance(resources, list):
        raise GoToError(f"{op.subject}: 'resources' is not a list", code=SERVICE_INCOMPATIBLE, op=op)
    total = data.get("totalResults")
    try:
        total = int(total) if total is not None else None
    except (TypeError, ValueError):
        total = None
    return [r for r in resources if isinstance(r, dict)], total


def _identity(resource: dict[str, Any]) -> str:
    rid = resource.get("id")
    return f"id:{rid}" if rid is not None else json.dumps(resource, sort_keys=True, default=str)


def _member(value: str | Mapping[str, Any], *, canonical: bool = False) -> dict[str, Any]:
    """``{"type", "value"}`` of a member given as a user key or as a member object. ``canonical``
    (the scim2 profile): the type as RFC 7643 §4.2 spells it, ``User`` / ``Group``; GoTo's own
    bodies keep GoTo's documented ``user`` / ``group``."""
    kind: Any = value.get("type", "user") if isinstance(value, Mapping) else "user"
    key = value["value"] if isinstance(value, Mapping) else value
    if canonical and isinstance(kind, str):
        kind = MEMBER_TYPES.get(kind.lower(), kind)
    return {"type": kind, "value": str(key)}


def _changed_members(
    current: list[dict[str, Any]], adds: list[dict[str, Any]], removes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The current members without those removed, then those added that were not there yet."""
    gone = {m["value"] for m in removes}
    desired = [m for m in current if m["value"] not in gone]
    present = {m["value"] for m in desired}
    for member in adds:
        if member["value"] not in present:
            present.add(member["value"])
            desired.append(member)
    return desired


def _members_patchop(chunk: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One PatchOp for up to 100 member changes. Removals use the RFC 7644 filter form, never
    ``"path":"members"`` with a value list, which a strict server reads as "remove all"."""
    operations: list[dict[str, Any]] = []
    added = [m for kind, m in chunk if kind == "add"]
    if added:
        operations.append({"op": "add", "path": "members", "value": added})
    for kind, m in chunk:
        if kind == "remove":
            operations.append({"op": "remove", "path": f'members[value eq "{escape_filter_value(m["value"])}"]'})
    return {"schemas": [PATCHOP_URN], "Operations": operations}


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- the client ---------------------------------------------------------------------------------


class GoToScimClient(TransportClient):
    """Async client for GoTo's SCIM API. Use as ``async with GoToScimClient(...) as scim:``.

    ``patch_style``: ``merge`` (documented), ``patchop`` (SCIM 2.0), ``put`` (full replace), or
    ``auto``: merge first, then PatchOp, then PUT, moving on only when GoTo rejects the body
    shape; the style that worked is kept for the client's life (``patch_style_in_use``).

    ``profile``: ``goto`` (GoTo's API as documented, the default) or ``scim2`` (any SCIM 2.0
    service provider, sent strict RFC 7643/7644: see the module docstring). With ``scim2``,
    ``auto`` means PatchOp and ``merge`` is refused (it is GoTo's dialect, not SCIM 2.0).
    """

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        rate_limit: float | None = 10.0,
        burst: float = 1.0,
        max_concurrency: int = 4,
        patch_style: PatchStyle | str = PatchStyle.AUTO,
        send_active: bool = True,
        send_extensions: bool = True,
        verified_domains: Iterable[str] | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
        read_only: bool = False,
        http_transport: httpx.AsyncBaseTransport | None = None,
        transport: Transport | None = None,
        profile: ScimProfile | str = ScimProfile.GOTO,
        budget: SharedBudget | None = None,
    ) -> None:
        if patch_style not in PATCH_STYLES:
            raise ValueError(f"patch_style must be one of {PATCH_STYLES}, not {patch_style!r}")
        if profile not in SCIM_PROFILES:
            raise ValueError(f"profile must be one of {SCIM_PROFILES}, not {profile!r}")
        self.profile = ScimProfile(profile)
        self.strict = self.profile is ScimProfile.SCIM2
        patch_style = PatchStyle(patch_style)
        if self.strict and patch_style is PatchStyle.MERGE:
            raise ValueError("patch_style 'merge' is GoTo's dialect; a SCIM 2.0 target takes patchop or put")
        self.patch_style = patch_style
        self.send_active = send_active
        self.send_extensions = send_extensions
        self.verified_domains = frozenset(d.lower() for d in verified_domains or ())
        self._resolved: PatchStyle | None = None if patch_style is PatchStyle.AUTO else patch_style
        if self.strict and self._resolved is None:
            self._resolved = PatchStyle.PATCHOP
        self._t = transport or Transport(
            base_url,
            token_provider,
            rate_limit=rate_limit,
            burst=burst,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=max_retry_after,
            read_only=read_only,
            http_transport=http_transport,
            media_type=SCIM_MEDIA_TYPE if self.strict else JSON_MEDIA_TYPE,
            budget=budget,
        )

    @property
    def patch_style_in_use(self) -> PatchStyle | None:
        """The PATCH style this session settled on (None while ``auto`` has not needed one yet)."""
        return self._resolved

    # --- discovery

    async def get_me(self) -> dict[str, Any]:
        op = Op("read own user", "me")
        return decode_json(await self._t.request("GET", "/Users/me", op), op) or {}

    async def service_provider_config(self) -> dict[str, Any] | None:
        """GoTo serves the SCIM 1.x plural path; a SCIM 2.0 server the singular one (asked first
        in the scim2 profile)."""
        paths = ("/ServiceProviderConfigs", "/ServiceProviderConfig")
        for path in reversed(paths) if self.strict else paths:
            op = Op("read service provider config", path)
            try:
                return decode_json(await self._t.request("GET", path, op), op)
            except NotFound:
                continue
        return None

    # --- users

    async def list_users(self, page_size: int = 100) -> AsyncIterator[dict[str, Any]]:
        """Every user of the organization, each once, whether or not GoTo pages /Users
        (docs/reference/goto-api.md#u5)."""
        async for user in self._list("/Users", Op("list users"), page_size):
            yield user

    async def find_users(self, attribute: str, value: str) -> list[dict[str, Any]]:
        """Users with ``attribute eq "value"`` (GoTo filters on userName, displayName, name.*)."""
        op = Op("find users", f"{attribute} eq {value}")
        params = {"filter": scim_filter(attribute, value)}
        resources, _ = read_envelope(decode_json(await self._t.request("GET", "/Users", op, params=params), op), op)
        return [r for r in resources if matches_eq(r, attribute, value)]

    async def get_user(self, key: str) -> dict[str, Any] | None:
        op = Op("read user", str(key), anchored=True)
        try:
            return decode_json(await self._t.request("GET", _user_path(key), op), op)
        except NotFound:
            return None

    async def create_user(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """POST /Users. A duplicate userName raises ``Conflict`` (the caller adopts by userName)."""
        op = Op("create user", str(resource.get("userName") or ""))
        body = strip_unsent(dict(resource), send_active=self.send_active, send_extensions=self.send_extensions)
        body.pop(GETGO_URN, None)
        if self.strict:
            body = with_schemas(body, USER_URN)
        self._validate_user(body, op)
        created = decode_json(await self._t.request("POST", "/Users", op, json=body), op)
        if not isinstance(created, dict) or not created.get("id"):
            # A create that answers without the new key: find it the way the engine would adopt it.
            found = await self.find_users("userName", str(get_value(body, "userName")))
            if len(found) != 1:
                raise GoToError(
                    f"{op.subject}: GoTo answered success without the new user's id",
                    code=SERVICE_INCOMPATIBLE,
                    op=op,
                )
            created = found[0]
        return created

    async def update_user(
        self,
        key: str,
        changes: Mapping[str, Any],
        full_resource: Mapping[str, Any],
        *,
        reread: bool = False,
        rebuilt: bool = False,
    ) -> dict[str, Any] | None:
        """Changes (SCIM path -> new value; None clears) sent in the session's PATCH style.

        Returns the updated user when GoTo sends it back (or, with ``reread``, re-reads it after
        a bodiless 200/204); else None. Changes that settings forbid are dropped first.

        ``rebuilt``: ``full_resource`` is what gotosync last sent, not GoTo's whole user. Where a
        body needs more than the changes (a full-definition PUT, or the whole list of a
        multi-valued attribute), the user is read first; a user that is gone raises NotFound.
        """
        op = Op("update user", str(full_resource.get("userName") or key), anchored=True)
        changes = strip_unsent(dict(changes), send_active=self.send_active, send_extensions=self.send_extensions)
        if not changes:
            return None
        self._validate_user(apply_changes({}, changes), op, partial=True)
        styles = [self._resolved] if self._resolved else [PatchStyle.MERGE, PatchStyle.PATCHOP, PatchStyle.PUT]
        for i, style in enumerate(styles):
            try:
                if rebuilt and self._needs_whole(style, changes):
                    full_resource, rebuilt = await self._whole_user(key, op), False
                response = await self._send_update(style, key, changes, full_resource, op)
            except BadRequest as exc:
                if self._resolved is None and _may_reject_shape(exc) and i + 1 < len(styles):
                    log.info("GoTo rejected a %s-style user update (%s); trying %s", style, exc.detail, styles[i + 1])
                    continue
                raise
            if self._resolved is None:
                self._resolved = style
                log.info("GoTo user updates: using %s style for this session", style)
            updated = decode_json(response, op)
            if isinstance(updated, dict) and updated:
                return updated
            return await self.get_user(key) if reread else None
        raise AssertionError("unreachable")

    def _needs_whole(self, style: PatchStyle, changes: Mapping[str, Any]) -> bool:
        """Whether an update in ``style`` sends more of the user than ``changes``: a PUT always;
        a merge (or strict PatchOp) body the whole list of a multi-valued attribute it changes."""
        if style is PatchStyle.PUT:
            return True
        if style is PatchStyle.PATCHOP and not self.strict:
            return False
        return any(parse_path(path).filtered for path in changes)

    async def _whole_user(self, key: str, op: Op) -> dict[str, Any]:
        current = await self.get_user(key)
        if current is None:
            raise NotFound(
                f"{op.subject} not sent: the user no longer exists in GoTo", status=404, code="InvalidAnchor", op=op
            )
        return current

    async def _send_update(
        self, style: PatchStyle, key: str, changes: Mapping[str, Any], full_resource: Mapping[str, Any], op: Op
    ) -> httpx.Response:
        if style is PatchStyle.MERGE:
            return await self._t.request("PATCH", _user_path(key), op, json=merge_body(changes, full_resource))
        if style is PatchStyle.PATCHOP:
            patch = strict_patchop_body(changes, full_resource) if self.strict else patchop_body(changes)
            return await self._t.request("PATCH", _user_path(key), op, json=patch)
        body = strip_unsent(
            put_body(changes, full_resource), send_active=self.send_active, send_extensions=self.send_extensions
        )
        if self.strict:
            body = with_schemas(body, USER_URN)
        self._validate_user(body, op)
        return await self._t.request("PUT", _user_path(key), op, json=body)

    def _validate_user(self, resource: Mapping[str, Any], op: Op, *, partial: bool = False) -> None:
        validate_user(
            resource, op, verified_domains=self.verified_domains, partial=partial, goto_limits=not self.strict
        )

    def _group_body(self, display_name: str, members: list[dict[str, Any]], external_id: Any = None) -> dict[str, Any]:
        """A group's full definition: GoTo's ``{displayName, members}``, or in the scim2
        profile with its ``schemas``; ``externalId`` only with ``send_extensions``."""
        body: dict[str, Any] = {"displayName": display_name}
        if members or not self.strict:
            body["members"] = members
        if external_id is not None and self.send_extensions:
            body["externalId"] = external_id
        return with_schemas(body, GROUP_URN) if self.strict else body

    def _member(self, value: str | Mapping[str, Any]) -> dict[str, Any]:
        return _member(value, canonical=self.strict)

    def _members_of(self, group: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """The members of a group as read, in the form this profile sends them back."""
        members = (group or {}).get("members") or []
        return [self._member(m) for m in members if isinstance(m, Mapping) and "value" in m]

    async def disable_user(
        self, key: str, full_resource: Mapping[str, Any], *, rebuilt: bool = False
    ) -> dict[str, Any] | None:
        """active=false through the session's update style (what GoTo does with it:
        docs/reference/goto-api.md#u3); ``rebuilt`` as for ``update_user``."""
        if not self.send_active:
            op = Op("disable user", str(full_resource.get("userName") or key), anchored=True)
            raise _bad(
                op,
                SERVICE_INCOMPATIBLE,
                "send_active is off, so GoTo never receives active=false; deprovision by delete or license removal",
            )
        return await self.update_user(key, {"active": False}, full_resource, rebuilt=rebuilt)

    async def delete_user(self, key: str) -> bool:
        """DELETE /Users/{key}: True when deleted (GoTo answers 200, SCIM 2.0 servers 204),
        False when the user was already gone."""
        op = Op("delete user", str(key), anchored=True)
        try:
            await self._t.request("DELETE", _user_path(key), op)
        except NotFound:
            return False
        return True

    # --- groups

    async def list_groups(self, page_size: int = 100) -> AsyncIterator[dict[str, Any]]:
        async for group in self._list("/Groups", Op("list groups"), page_size):
            yield group

    async def find_groups(self, display_name: str) -> list[dict[str, Any]]:
        op = Op("find groups", display_name)
        params = {"filter": scim_filter("displayName", display_name)}
        resources, _ = read_envelope(decode_json(await self._t.request("GET", "/Groups", op, params=params), op), op)
        return [g for g in resources if matches_eq(g, "displayName", display_name)]

    async def get_group(self, key: str, *, display_name: str | None = None) -> dict[str, Any] | None:
        op = Op("read group", display_name or str(key), anchored=True)
        try:
            return await self._group_call(
                key, display_name, op, partial(self._t.request, "GET", _group_path(key), op), decode=True
            )
        except NotFound:
            return None

    async def create_group(
        self,
        display_name: str,
        members: Iterable[str | Mapping[str, Any]] = (),
        *,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        """POST /Groups (409 -> ``Conflict`` on a duplicate displayName). Members beyond the
        100-per-request limit are added afterwards."""
        op = Op("create group", display_name)
        validate_group_name(display_name, op, goto_limits=not self.strict)
        member_list = [self._member(m) for m in members]
        body = self._group_body(display_name, member_list[:MAX_MEMBERS_PER_REQUEST], external_id)
        created = decode_json(await self._t.request("POST", "/Groups", op, json=body), op)
        if not isinstance(created, dict) or not created.get("id"):
            found = await self.find_groups(display_name)
            if len(found) != 1:
                raise GoToError(
                    f"{op.subject}: GoTo answered success without the new group's id",
                    code=SERVICE_INCOMPATIBLE,
                    op=op,
                )
            created = found[0]
        rest = member_list[MAX_MEMBERS_PER_REQUEST:]
        if rest:
            await self.update_group_members(str(created["id"]), add=rest, remove=[], display_name=display_name)
        return created

    async def update_group_members(
        self,
        key: str,
        add: Iterable[str | Mapping[str, Any]],
        remove: Iterable[str | Mapping[str, Any]],
        *,
        display_name: str | None = None,
    ) -> None:
        """Adds and removes members (user keys, or ``{"type","value"}`` for nested groups).

        With PatchOp: add/remove operations, at most 100 members per request. Otherwise the
        group is read and PUT back with its full member list, because whether a merge-style
        PATCH of ``members`` adds or replaces is undocumented (docs/reference/goto-api.md#u13)
        while PUT always replaces.
        """
        op = Op("update group members", display_name or str(key), anchored=True)
        adds = [self._member(m) for m in add]
        removes = [self._member(m) for m in remove]
        if not adds and not removes:
            return
        if self._resolved is PatchStyle.PATCHOP:
            await self._patch_members(key, display_name, op, adds, removes)
        else:
            await self._put_members(key, display_name, op, adds, removes)

    async def _patch_members(
        self, key: str, display_name: str | None, op: Op, adds: list[dict[str, Any]], removes: list[dict[str, Any]]
    ) -> None:
        path = _group_path(key)
        changes = [("add", m) for m in adds] + [("remove", m) for m in removes]
        for chunk in _chunks(changes, MAX_MEMBERS_PER_REQUEST):
            body = _members_patchop(chunk)
            await self._group_call(key, display_name, op, partial(self._t.request, "PATCH", path, op, json=body))

    async def _put_members(
        self, key: str, display_name: str | None, op: Op, adds: list[dict[str, Any]], removes: list[dict[str, Any]]
    ) -> None:
        """Reads the group and PUTs it back with its whole new member list."""
        path = _group_path(key)
        group = await self._group_call(
            key, display_name, op, partial(self._t.request, "GET", _group_path(key), op), decode=True
        )
        desired = _changed_members(self._members_of(group), adds, removes)
        if not self.strict and len(desired) > MAX_MEMBERS_PER_REQUEST:
            raise _bad(
                op,
                "SchemaPropertyCanOnlyAcceptValue",
                f"the group would have {len(desired)} members; a full-definition PUT carries at most "
                f"{MAX_MEMBERS_PER_REQUEST} (use patch_style='patchop' if GoTo accepts it)",
            )
        name = (group or {}).get("displayName") or display_name
        validate_group_name(name, op, goto_limits=not self.strict)
        body = self._group_body(name, desired, (group or {}).get("externalId"))
        await self._group_call(key, display_name, op, partial(self._t.request, "PUT", path, op, json=body))

    async def rename_group(self, key: str, old_name: str, new_name: str) -> None:
        """Changes a GoTo group's displayName, keeping its members.

        With PatchOp: ``replace displayName``.
        Otherwise a full-definition PUT (read, then PUT with the same members), because a merge
        PATCH without ``members`` might replace them (docs/reference/goto-api.md#u13); more than
        100 members cannot be PUT.
        """
        op = Op("rename group", old_name, anchored=True)
        validate_group_name(new_name, op, goto_limits=not self.strict)
        path = f"/Groups/{quote(str(key), safe='')}"
        transport, call = self._t, self._group_call
        if self.patch_style_in_use is PatchStyle.PATCHOP:
            body: dict[str, Any] = {
                "schemas": [PATCHOP_URN],
                "Operations": [{"op": "replace", "path": "displayName", "value": new_name}],
            }
            await call(key, old_name, op, partial(transport.request, "PATCH", path, op, json=body))
            return
        group = await call(key, old_name, op, partial(transport.request, "GET", path, op), decode=True)
        members = self._members_of(group)
        if not self.strict and len(members) > MAX_MEMBERS_PER_REQUEST:
            raise BadRequest(
                f"{op.subject}: the group has {len(members)} members; a full-definition PUT carries at most "
                f"{MAX_MEMBERS_PER_REQUEST} (use GOTO_PATCH_STYLE=patchop if GoTo accepts it)",
                code="SchemaPropertyCanOnlyAcceptValue",
                op=op,
            )
        body = self._group_body(new_name, members, (group or {}).get("externalId"))
        await call(key, old_name, op, partial(transport.request, "PUT", path, op, json=body))

    async def delete_group(self, key: str, *, display_name: str | None = None) -> bool:
        """True when deleted; False when the group does not exist (GoTo says so with a 401)."""
        op = Op("delete group", display_name or str(key), anchored=True)
        try:
            await self._group_call(key, display_name, op, partial(self._t.request, "DELETE", _group_path(key), op))
        except NotFound:
            return False
        return True

    async def _group_call(
        self,
        key: str,
        display_name: str | None,
        op: Op,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        decode: bool = False,
    ) -> Any:
        """GoTo answers 401 both for "not authorized" and for "group does not exist in organization"
        (docs/reference/goto-api.md#groups). A 401 on /Groups/{key} is therefore confirmed by
        looking the group up: if the lookup works and finds no group with this key, the group is
        gone (NotFound/InvalidAnchor).
        A SCIM 2.0 target answers 404 for an unknown group, so there a 401 is only a 401."""
        try:
            response = await send()
        except AuthError as exc:
            if self.strict or exc.status != 401 or await self._group_exists(key, display_name):
                raise
            raise NotFound(
                f"{op.subject} failed: group {key} does not exist in the organization "
                "(GoTo answered 401; a lookup of the organization's groups does not list it)",
                status=401,
                code="InvalidAnchor",
                op=op,
                detail=exc.detail,
                body=exc.body,
            ) from exc
        return decode_json(response, op) if decode else response

    async def _group_exists(self, key: str, display_name: str | None) -> bool:
        try:
            if display_name and any(str(g.get("id")) == str(key) for g in await self.find_groups(display_name)):
                return True
            # Not under that name (renamed?) or no name known: scan the (few) groups.
            return any([str(g.get("id")) == str(key) async for g in self.list_groups()])
        except AuthError:
            return True  # cannot even read groups: the 401 really was about authorization

    # --- paging

    async def _list(self, path: str, op: Op, page_size: int) -> AsyncIterator[dict[str, Any]]:
        """Pages with ``startIndex``/``count`` and stops on whichever comes first: totalResults
        reached, an empty page, or a page with nothing new (a server that ignores paging answers
        every request with the same full list, docs/reference/goto-api.md#u5). Each resource is
        yielded once."""
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        seen: set[str] = set()
        start = 1
        for _ in range(MAX_PAGES):
            params = {"startIndex": start, "count": page_size}
            answer = ListAnswer.of(await self._t.request("GET", path, op, params=params), op)
            fresh = 0
            for resource in answer:  # decoded one at a time: an unpaged answer is never held whole
                ident = _identity(resource)
                if ident in seen:
                    continue
                seen.add(ident)
                fresh += 1
                yield resource
            total = answer.total
            if fresh == 0 or (total is not None and len(seen) >= total) or answer.count > page_size:
                return
            # Without totalResults a short page may only mean the server caps page size: ask again.
            start += answer.count
        raise GoToError(f"{op.subject}: more than {MAX_PAGES} pages", code=SERVICE_INCOMPATIBLE, op=op)


def _may_reject_shape(exc: BadRequest) -> bool:
    """Whether a 400 may mean "this PATCH body style is not accepted"
    (docs/reference/goto-api.md#u2): said outright, or an empty 400 (error_body style ``empty``,
    docs/reference/goto-api.md#u7), which could say anything. Only ``auto`` asks."""
    if exc.code == SERVICE_INCOMPATIBLE:
        return True
    return exc.status == 400 and not exc.detail and not exc.goto_code


def _user_path(key: str) -> str:
    return f"/Users/{quote(str(key), safe='')}"


def _group_path(key: str) -> str:
    return f"/Groups/{quote(str(key), safe='')}"
