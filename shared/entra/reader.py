"""Reads the provisioning scope from Entra through msgraph-sdk: the app's roles and
assignments, the members of assigned groups, users with the properties the mapping needs,
and the users/groups delta rounds that make incremental cycles cheap.

Query options go on the first request only; nextLink and deltaLink URLs are followed exactly
as given (reference/microsoft-graph.md §4, §8).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from shared.model import DEFAULT_ACCESS_ROLE_ID, Assignment
from shared.redaction import scrub

PAGE_SIZE = 999  # Graph's maximum page size for users, groups, members and assignments


class DeltaExpired(Exception):
    """The stored delta link is no longer valid (410 Gone or syncStateNotFound): resync fully."""


class GraphReadError(Exception):
    """A Graph read failed; the message names the call and Graph's error code."""

    def __init__(self, what: str, status: int | None, code: str, message: str) -> None:
        # Graph's message is upstream text: scrubbed like every other (shared.redaction).
        super().__init__(scrub(f"Graph {what} failed: {status} {code}: {message}"))
        self.status = status
        self.code = code


@dataclass
class UserChange:
    """One entry of a users delta round."""

    id: str
    attributes: dict[str, Any]
    removed: str = ""  # "" | "changed" (soft delete) | "deleted" (hard delete)


@dataclass
class MembershipChange:
    group_id: str
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    group_removed: str = ""


def _graph_error(what: str, exc: ODataError) -> GraphReadError:
    code = exc.error.code if exc.error and exc.error.code else "unknown"
    message = exc.error.message if exc.error and exc.error.message else str(exc)
    return GraphReadError(what, exc.response_status_code, code, message)


class EntraReader:
    """Graph reads for one app (service principal). Every method is one logical read.

    Requests are built by msgraph-sdk's request builders and sent through its request adapter
    (authentication, retry and redirect middleware), but responses are taken as JSON: the SDK's
    model parsing costs about 8-10 ms per object (its Entity factory runs thousands of imports
    per call), which would make a 10,000-user cycle spend minutes in CPU alone (docs/benchmarks.md).
    """

    def __init__(self, client: GraphServiceClient, service_principal_id: str, base_url: str) -> None:
        self.client = client
        self.sp_id = service_principal_id
        self.base_url = base_url.rstrip("/")
        self.requests = 0

    async def _get(self, builder: Any, what: str, config: Any = None) -> dict[str, Any]:
        info = (
            builder.to_get_request_information(config) if config is not None else builder.to_get_request_information()
        )
        self.requests += 1
        try:
            raw = await self.client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
        except ODataError as exc:
            raise _graph_error(what, exc) from exc
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise GraphReadError(what, None, "invalidJson", f"the response is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise GraphReadError(what, None, "invalidJson", "the response is not a JSON object")
        return data

    async def _pages(self, builder: Any, what: str, config: Any = None) -> AsyncIterator[dict[str, Any]]:
        """Every page of a collection, following @odata.nextLink exactly as given."""
        page = await self._get(builder, what, config)
        while True:
            yield page
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = await self._get(builder.with_url(next_link), what)

    async def app_roles(self) -> dict[str, str]:
        """appRoleId -> role value; Default Access (the all-zero id) maps to ""."""
        sp = await self._get(
            self.client.service_principals.by_service_principal_id(self.sp_id),
            f"read of service principal {self.sp_id}",
            RequestConfiguration(query_parameters=_query(select=["id", "appRoles", "displayName"])),
        )
        roles = {DEFAULT_ACCESS_ROLE_ID: ""}
        for role in sp.get("appRoles") or []:
            if isinstance(role, dict) and role.get("id"):
                roles[str(role["id"])] = str(role.get("value") or "")
        return roles

    async def assignments(self, roles: dict[str, str] | None = None) -> dict[str, Assignment]:
        """Every user and group assigned to the app, with the role values each holds."""
        roles = roles if roles is not None else await self.app_roles()
        builder = self.client.service_principals.by_service_principal_id(self.sp_id).app_role_assigned_to
        config = RequestConfiguration(query_parameters=_query(top=PAGE_SIZE))
        found: dict[str, dict[str, Any]] = {}
        async for page in self._pages(builder, "list of app role assignments", config):
            for a in page.get("value") or []:
                if a.get("principalType") not in ("User", "Group") or not a.get("principalId"):
                    continue
                pid = str(a["principalId"])
                entry = found.setdefault(
                    pid, {"type": a["principalType"], "name": a.get("principalDisplayName") or "", "ids": set()}
                )
                entry["ids"].add(str(a.get("appRoleId") or DEFAULT_ACCESS_ROLE_ID))
        return {
            pid: Assignment(
                principal_id=pid,
                principal_type=e["type"],
                display_name=e["name"],
                role_ids=frozenset(e["ids"]),
                role_values=frozenset(roles.get(i, "") for i in e["ids"]),
            )
            for pid, e in found.items()
        }

    async def group_member_ids(self, group_id: str, transitive: bool = False) -> set[str]:
        """Ids of the users in a group: direct members (Entra's rule) or, as a setting, nested ones."""
        group = self.client.groups.by_group_id(group_id)
        builder: Any = group.transitive_members if transitive else group.members
        config = RequestConfiguration(query_parameters=_query(select=["id"], top=PAGE_SIZE))
        ids: set[str] = set()
        try:
            async for page in self._pages(builder, f"list of members of group {group_id}", config):
                for m in page.get("value") or []:
                    if str(m.get("@odata.type", "")).endswith("user") and m.get("id"):
                        ids.add(str(m["id"]))
        except GraphReadError as exc:
            if exc.status == 404:
                return set()  # the group is gone: nobody is in scope through it
            raise
        return ids

    async def iter_users(self, select: list[str]) -> AsyncIterator[list[dict[str, Any]]]:
        """All users of the tenant, a page (up to 999) at a time, with the selected properties."""
        config = RequestConfiguration(query_parameters=_query(select=select, top=PAGE_SIZE))
        async for page in self._pages(self.client.users, "list of users", config):
            yield [_attributes(u, select) for u in page.get("value") or [] if u.get("id")]

    async def get_user(self, user_id: str, select: list[str]) -> dict[str, Any] | None:
        """One user, or None when it does not exist (hard deleted, or in the recycle bin)."""
        try:
            user = await self._get(
                self.client.users.by_user_id(user_id),
                f"read of user {user_id}",
                RequestConfiguration(query_parameters=_query(select=select)),
            )
        except GraphReadError as exc:
            if exc.status == 404:
                return None
            raise
        return _attributes(user, select) if user.get("id") else None

    async def member_of(self, user_id: str, transitive: bool = False) -> set[str]:
        """Ids of the groups a user is a direct (or, as a setting, nested) member of."""
        user = self.client.users.by_user_id(user_id)
        builder: Any = user.transitive_member_of if transitive else user.member_of
        config = RequestConfiguration(query_parameters=_query(select=["id"], top=PAGE_SIZE))
        ids: set[str] = set()
        try:
            async for page in self._pages(builder, f"list of groups of user {user_id}", config):
                for g in page.get("value") or []:
                    if str(g.get("@odata.type", "")).endswith("group") and g.get("id"):
                        ids.add(str(g["id"]))
        except GraphReadError as exc:
            if exc.status == 404:
                return set()
            raise
        return ids

    async def in_recycle_bin(self, object_id: str) -> bool:
        """Whether a user that /users no longer returns is soft deleted (restorable) or gone."""
        try:
            item = await self._get(
                self.client.directory.deleted_items.by_directory_object_id(object_id),
                f"read of deleted item {object_id}",
            )
        except GraphReadError as exc:
            if exc.status == 404:
                return False
            raise
        return bool(item.get("id"))

    async def latest_delta_links(self, select: list[str]) -> tuple[str, str]:
        """Delta links that start "now" ($deltatoken=latest), one request each. Taken before a
        full read, so that changes made during the read are replayed by the next round."""
        users_url = f"{self.base_url}/users/delta()?$select={quote(','.join(select))}&$deltatoken=latest"
        groups_url = f"{self.base_url}/groups/delta()?$select=members&$deltatoken=latest"
        users = await self._get(self.client.users.delta.with_url(users_url), "users delta (latest token)")
        groups = await self._get(self.client.groups.delta.with_url(groups_url), "groups delta (latest token)")
        if not users.get("@odata.deltaLink") or not groups.get("@odata.deltaLink"):
            raise GraphReadError("delta (latest token)", None, "noDeltaLink", "Graph returned no deltaLink")
        return str(users["@odata.deltaLink"]), str(groups["@odata.deltaLink"])

    async def group_delta_link(self, group_id: str) -> str:
        """A delta link that follows one group's membership from now on ($filter by id)."""
        flt = quote(f"id eq '{group_id}'")
        url = f"{self.base_url}/groups/delta()?$filter={flt}&$select=members&$deltatoken=latest"
        page = await self._get(self.client.groups.delta.with_url(url), f"delta link for group {group_id}")
        if not page.get("@odata.deltaLink"):
            raise GraphReadError("group delta (latest token)", None, "noDeltaLink", "Graph returned no deltaLink")
        return str(page["@odata.deltaLink"])

    async def users_delta(self, link: str, select: list[str]) -> tuple[list[UserChange], str]:
        """Changes since the stored delta link, and the next delta link."""
        changes: dict[str, UserChange] = {}
        page: dict[str, Any] = {}
        try:
            async for page in self._pages(self.client.users.delta.with_url(link), "users delta"):
                for u in page.get("value") or []:
                    if not u.get("id"):
                        continue
                    removed = u.get("@removed")
                    reason = str(removed.get("reason", "deleted")) if isinstance(removed, dict) else ""
                    # Later pages win: Graph may repeat an object within a round.
                    changes[str(u["id"])] = UserChange(str(u["id"]), _attributes(u, select), reason)
        except GraphReadError as exc:
            raise _delta_error("users", exc) from exc
        if not page.get("@odata.deltaLink"):
            raise GraphReadError("users delta", None, "noDeltaLink", "the round ended without a deltaLink")
        return list(changes.values()), str(page["@odata.deltaLink"])

    async def groups_delta(self, link: str) -> tuple[dict[str, MembershipChange], str]:
        """Membership changes since the stored groups delta link, and the next link."""
        changes: dict[str, MembershipChange] = {}
        page: dict[str, Any] = {}
        try:
            async for page in self._pages(self.client.groups.delta.with_url(link), "groups delta"):
                for g in page.get("value") or []:
                    if not g.get("id"):
                        continue
                    change = changes.setdefault(str(g["id"]), MembershipChange(str(g["id"])))
                    removed = g.get("@removed")
                    if isinstance(removed, dict):
                        change.group_removed = str(removed.get("reason", "deleted"))
                    for member in g.get("members@delta") or []:
                        _merge_member(change, member)
        except GraphReadError as exc:
            raise _delta_error("groups", exc) from exc
        if not page.get("@odata.deltaLink"):
            raise GraphReadError("groups delta", None, "noDeltaLink", "the round ended without a deltaLink")
        return changes, str(page["@odata.deltaLink"])


def _merge_member(change: MembershipChange, member: Any) -> None:
    """One members@delta item; large groups come split across entries and pages: merge them."""
    if not isinstance(member, dict) or "id" not in member:
        return
    if not str(member.get("@odata.type", "#microsoft.graph.user")).endswith("user"):
        return
    mid = str(member["id"])
    if "@removed" in member:
        change.removed.add(mid)
        change.added.discard(mid)
    else:
        change.added.add(mid)
        change.removed.discard(mid)


def _attributes(user: dict[str, Any], select: list[str]) -> dict[str, Any]:
    attrs = {prop: user.get(prop) for prop in select}
    attrs["id"] = str(user["id"])
    return attrs


def _delta_error(what: str, exc: GraphReadError) -> Exception:
    if exc.status == 410 or exc.code in ("syncStateNotFound", "resyncRequired"):
        return DeltaExpired(f"{what} delta link expired ({exc.status} {exc.code}): a full cycle follows")
    return exc


@dataclass
class _Query:
    """Query parameters for any request builder: kiota reads the dataclass fields and asks
    get_query_parameter for the names in the URL template ($select, $top)."""

    select: list[str] | None = None
    top: int | None = None

    def get_query_parameter(self, original_name: str) -> str:
        return {"select": "%24select", "top": "%24top"}.get(original_name, original_name)


def _query(*, select: list[str] | None = None, top: int | None = None) -> _Query:
    return _Query(select=select, top=top)
