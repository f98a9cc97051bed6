"""Reads the provisioning scope from Entra through msgraph-sdk: the app's roles and
assignments, the members of assigned groups, users with the properties the mapping needs,
and the users/groups delta rounds that make incremental cycles cheap.

Query options go on the first request only; nextLink and deltaLink URLs are followed exactly
as given (docs/reference/microsoft-graph.md#delta-rounds, docs/reference/microsoft-graph.md#paging).

A read that may be incomplete is an error, never an empty answer: a collection page without a
`value` array, an empty or 204 answer, an error-shaped 200, a listing shorter than Graph's own
count, or a delta round without its final deltaLink raise `IncompleteRead` (docs/safety.md).
Absence is reported as such (`UserRead.state`), never turned into a deletion here.
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

from shared.errors import ErrorPolicy, GotosyncError
from shared.model import DEFAULT_ACCESS_ROLE_ID, Assignment, UserRead, UserState, utcnow
from shared.redaction import scrub

PAGE_SIZE = 999  # Graph's maximum page size for users, groups, members and assignments


class DeltaExpired(GotosyncError):
    """The stored delta link is no longer valid (410 Gone or syncStateNotFound): resync fully."""

    code = "DeltaExpired"
    policy = ErrorPolicy.RETRY
    exit_code = 5
    http_status = 502


class GraphReadError(GotosyncError):
    """A Graph read failed; the message names the call and Graph's error code."""

    code = "GraphReadFailed"  # each instance carries Graph's own code
    policy = ErrorPolicy.RETRY
    exit_code = 5
    http_status = 502
    fix = "{test_connection} says what to fix"

    def __init__(self, what: str, status: int | None, code: str, message: str) -> None:
        # Graph's message is upstream text: scrubbed like every other (shared.redaction).
        super().__init__(scrub(f"Graph {what} failed: {status} {code}: {message}"))
        self.what = what
        self.status = status
        self.code = code
        self.detail = message


class IncompleteRead(GraphReadError):
    """A 2xx answer that cannot be trusted to be whole (no `value`, empty, 204, wrong shape,
    shorter than Graph's count, no final deltaLink). Nothing may be concluded from it."""

    def __init__(self, what: str, message: str, status: int | None = None) -> None:
        super().__init__(what, status, "IncompleteRead", message)


class CursorFailed(GraphReadError):
    """Graph answered the saved nextLink a resumed /users listing starts at with an error (an
    expired $skiptoken, say: whether and when one expires is not documented). Raised before any
    page is given out, so the caller can start the listing again at its first page."""

    def __init__(self, cause: GraphReadError) -> None:
        super().__init__("list of users (resumed at a saved nextLink)", cause.status, cause.code, cause.detail)


@dataclass(frozen=True)
class ListingPosition:
    """Where a /users listing stands after a page: the nextLink of the next page ("" once the
    listing has ended), the users listed so far, and Graph's count from the listing's first
    page (None when Graph gave none). Enough to go on with the listing in a later invocation."""

    next_link: str
    listed: int
    expected: int | None


@dataclass
class UsersPage:
    """One page of the /users listing: its users (selected properties) and where the listing
    stands after it."""

    users: list[dict[str, Any]]
    after: ListingPosition


class GroupGone(GotosyncError):
    """An assigned group reads as deleted (404, and found in directory/deletedItems): nobody is
    in scope through it any more. Raised only on that positive evidence."""

    code = "GroupGone"
    policy = ErrorPolicy.SKIP
    exit_code = 4
    http_status = 404

    def __init__(self, group_id: str) -> None:
        super().__init__(f"group {group_id} is deleted (found in directory/deletedItems)")
        self.group_id = group_id


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
        """One request; the answer must be a JSON object that is not an error. An empty body,
        a 204 or an error-shaped 200 is an IncompleteRead: it says nothing about the object."""
        info = (
            builder.to_get_request_information(config) if config is not None else builder.to_get_request_information()
        )
        self.requests += 1
        try:
            raw = await self.client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
        except ODataError as exc:
            raise _graph_error(what, exc) from exc
        if raw is None:
            raise IncompleteRead(what, "Graph answered 204 No Content where a body was expected", 204)
        if not raw:
            raise IncompleteRead(what, "Graph answered with an empty body")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise IncompleteRead(what, f"the response is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise IncompleteRead(what, "the response is not a JSON object")
        if "error" in data:
            raise IncompleteRead(what, f"a 2xx answer carries an error: {_error_text(data['error'])}")
        return data

    async def _pages(
        self, builder: Any, what: str, config: Any = None, *, delta: bool = False, start: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of a collection, following @odata.nextLink exactly as given. Each page must
        carry a `value` array; a delta round must end with its @odata.deltaLink. `start`: a
        nextLink saved earlier to go on from (CursorFailed when Graph does not answer it)."""
        if start is None:
            page = _checked_page(await self._get(builder, what, config), what)
        else:
            try:
                page = _checked_page(await self._get(builder.with_url(start), what, _headers_only(config)), what)
            except GraphReadError as exc:
                raise CursorFailed(exc) from exc
        while True:
            yield page
            next_link = page.get("@odata.nextLink")
            if not next_link:
                if delta and not page.get("@odata.deltaLink"):
                    raise IncompleteRead(what, "the delta round ended without its @odata.deltaLink")
                return
            if not isinstance(next_link, str):
                raise IncompleteRead(what, "@odata.nextLink is not a URL")
            page = _checked_page(await self._get(builder.with_url(next_link), what, _headers_only(config)), what)

    async def app_roles(self) -> dict[str, str]:
        """appRoleId -> role value; Default Access (the all-zero id) maps to ""."""
        sp = await self._get(
            self.client.service_principals.by_service_principal_id(self.sp_id),
            f"read of service principal {self.sp_id}",
            RequestConfiguration(query_parameters=_query(select=["id", "appRoles", "displayName"])),
        )
        if not isinstance(sp.get("appRoles"), list):
            raise IncompleteRead(f"read of service principal {self.sp_id}", "the answer has no appRoles array")
        roles = {DEFAULT_ACCESS_ROLE_ID: ""}
        for role in sp["appRoles"]:
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
            for a in page["value"]:
                if (
                    not isinstance(a, dict)
                    or a.get("principalType") not in ("User", "Group")
                    or not a.get("principalId")
                ):
                    continue
                pid = str(a["principalId"])
                entry = found.setdefault(
                    pid, {"type": a["principalType"], "name": a.get("principalDisplayName") or "", "ids": set()}
                )
                entry["ids"].add(str(a.get("appRoleId") or DEFAULT_ACCESS_ROLE_ID))
        # A tenant's principals hold a handful of distinct role sets: one frozenset each, shared.
        shared: dict[frozenset[str], frozenset[str]] = {}
        return {
            pid: Assignment(
                principal_id=pid,
                principal_type=e["type"],
                display_name=e["name"],
                role_ids=shared.setdefault(ids := frozenset(e["ids"]), ids),
                role_values=shared.setdefault(values := frozenset(_role_value(roles, i) for i in ids), values),
            )
            for pid, e in found.items()
        }

    async def group_member_ids(self, group_id: str, transitive: bool = False) -> set[str]:
        """Ids of the users in a group: direct members (Entra's rule) or, as a setting, nested ones.

        A 404 on the member list is not "nobody": the group itself is read. GroupGone only when
        it reads as deleted (found in directory/deletedItems); anything else is a read error."""
        group = self.client.groups.by_group_id(group_id)
        builder: Any = group.transitive_members if transitive else group.members
        config = RequestConfiguration(query_parameters=_query(select=["id"], top=PAGE_SIZE))
        what = f"list of members of group {group_id}"
        ids: set[str] = set()
        try:
            async for page in self._pages(builder, what, config):
                for m in page["value"]:
                    if isinstance(m, dict) and str(m.get("@odata.type", "")).endswith("user") and m.get("id"):
                        ids.add(str(m["id"]))
        except GraphReadError as exc:
            if exc.status == 404:
                await self._confirm_group_gone(group_id, what)
            raise
        return ids

    async def members_unless_gone(self, group_id: str, transitive: bool = False) -> set[str]:
        """group_member_ids, where a group that reads as deleted has no members."""
        try:
            return await self.group_member_ids(group_id, transitive)
        except GroupGone:
            return set()

    async def _confirm_group_gone(self, group_id: str, what: str) -> None:
        """After a 404 on a group's members: GroupGone if the group is in the recycle bin; a
        read error if the group still reads (a transient 404) or is absent from both."""
        try:
            await self._get(
                self.client.groups.by_group_id(group_id),
                f"read of group {group_id}",
                RequestConfiguration(query_parameters=_query(select=["id"])),
            )
        except GraphReadError as exc:
            if exc.status != 404:
                raise
        else:
            raise GraphReadError(what, 404, "TransientNotFound", "the member list answered 404 but the group exists")
        if await self.in_recycle_bin(group_id):
            raise GroupGone(group_id)
        raise GraphReadError(
            what, 404, "UnconfirmedNotFound", "the group is neither readable nor in directory/deletedItems"
        )

    async def iter_user_pages(
        self, select: list[str], resume: ListingPosition | None = None
    ) -> AsyncIterator[UsersPage]:
        """All users of the tenant, a page (up to 999) at a time, with the selected properties
        and where the listing stands after each page; `resume`: go on from a position an
        earlier invocation reached (its nextLink; CursorFailed if Graph refuses it).

        The first page asks Graph to count ($count=true, an advanced query): a listing that ends
        with fewer users than that count lost a page (a dropped nextLink) and is an
        IncompleteRead, also when the listing was read across invocations (the position carries
        the count and the users listed before). Users created during the listing only make it
        longer, never shorter; users deleted during it can make it short: the cycle then stops
        and the next one reads again (docs/safety.md)."""
        config = RequestConfiguration(query_parameters=_query(select=select, top=PAGE_SIZE, count=True))
        config.headers.add("ConsistencyLevel", "eventual")
        expected = resume.expected if resume is not None else None
        listed = resume.listed if resume is not None else 0
        start = resume.next_link if resume is not None else None
        if start != "":  # "": the listing had ended; only its count is left to check
            first = resume is None
            async for page in self._pages(self.client.users, "list of users", config, start=start):
                if first:
                    expected, first = _count(page), False  # on the first page only
                users = [_attributes(u, select) for u in page["value"] if isinstance(u, dict) and u.get("id")]
                listed += len(page["value"])
                next_link = page.get("@odata.nextLink") or ""
                if not isinstance(next_link, str):  # never taken for the end of the listing
                    raise IncompleteRead("list of users", "@odata.nextLink is not a URL")
                yield UsersPage(users, ListingPosition(next_link, listed, expected))
        if expected is not None and listed < expected:
            raise IncompleteRead(
                "list of users",
                f"the listing returned {listed} users where Graph counts {expected}: a page is missing",
            )

    async def get_user(self, user_id: str, select: list[str]) -> dict[str, Any] | None:
        """One user, or None on a 404 (absent from /users: it may be deleted, or the read may be
        wrong: see read_user for what a caller may conclude)."""
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
        got = str(user.get("id") or "")
        if not got or ("@" not in user_id and got.lower() != user_id.lower()):
            raise IncompleteRead(f"read of user {user_id}", "the answer is not that user")
        return _attributes(user, select)

    async def read_user(self, user_id: str, select: list[str]) -> UserRead:
        """One user with how its state is known: present, in the recycle bin (positive evidence
        of a soft delete), or absent from both /users and directory/deletedItems (which alone
        is not proof of a hard delete: see docs/safety.md)."""
        read_at = utcnow()
        attrs = await self.get_user(user_id, select)
        if attrs is not None:
            return UserRead(user_id, UserState.PRESENT, attrs, read_at)
        if await self.in_recycle_bin(user_id):
            return UserRead(user_id, UserState.IN_RECYCLE_BIN, None, read_at)
        return UserRead(user_id, UserState.ABSENT, None, read_at)

    async def member_of(self, user_id: str, transitive: bool = False) -> set[str]:
        """Ids of the groups a user is a direct (or, as a setting, nested) member of. A 404 is a
        read error (the user was read a moment ago), never "in no group"."""
        user = self.client.users.by_user_id(user_id)
        builder: Any = user.transitive_member_of if transitive else user.member_of
        config = RequestConfiguration(query_parameters=_query(select=["id"], top=PAGE_SIZE))
        ids: set[str] = set()
        async for page in self._pages(builder, f"list of groups of user {user_id}", config):
            for g in page["value"]:
                if isinstance(g, dict) and str(g.get("@odata.type", "")).endswith("group") and g.get("id"):
                    ids.add(str(g["id"]))
        return ids

    async def in_recycle_bin(self, object_id: str) -> bool:
        """Whether an object that no longer reads is in directory/deletedItems (restorable)."""
        try:
            item = await self._get(
                self.client.directory.deleted_items.by_directory_object_id(object_id),
                f"read of deleted item {object_id}",
            )
        except GraphReadError as exc:
            if exc.status == 404:
                return False
            raise
        if str(item.get("id", "")).lower() != object_id.lower():
            raise IncompleteRead(f"read of deleted item {object_id}", "the answer is not that object")
        return True

    async def latest_delta_links(self, select: list[str]) -> tuple[str, str]:
        """Delta links that start "now" ($deltatoken=latest), one request each. Taken before a
        full read, so that changes made during the read are replayed by the next round."""
        users_url = f"{self.base_url}/users/delta()?$select={quote(','.join(select))}&$deltatoken=latest"
        groups_url = f"{self.base_url}/groups/delta()?$select=members&$deltatoken=latest"
        users = await self._get(self.client.users.delta.with_url(users_url), "users delta (latest token)")
        groups = await self._get(self.client.groups.delta.with_url(groups_url), "groups delta (latest token)")
        if not users.get("@odata.deltaLink") or not groups.get("@odata.deltaLink"):
            raise IncompleteRead("delta (latest token)", "Graph returned no deltaLink")
        return str(users["@odata.deltaLink"]), str(groups["@odata.deltaLink"])

    async def group_delta_link(self, group_id: str) -> str:
        """A delta link that follows one group's membership from now on ($filter by id)."""
        flt = quote(f"id eq '{group_id}'")
        url = f"{self.base_url}/groups/delta()?$filter={flt}&$select=members&$deltatoken=latest"
        page = await self._get(self.client.groups.delta.with_url(url), f"delta link for group {group_id}")
        if not page.get("@odata.deltaLink"):
            raise IncompleteRead("group delta (latest token)", "Graph returned no deltaLink")
        return str(page["@odata.deltaLink"])

    async def users_delta(self, link: str, select: list[str]) -> tuple[list[UserChange], str]:
        """Changes since the stored delta link, and the next delta link."""
        changes: dict[str, UserChange] = {}
        page: dict[str, Any] = {}
        try:
            async for page in self._pages(self.client.users.delta.with_url(link), "users delta", delta=True):
                for u in page["value"]:
                    if not isinstance(u, dict) or not u.get("id"):
                        continue
                    removed = u.get("@removed")
                    reason = str(removed.get("reason", "deleted")) if isinstance(removed, dict) else ""
                    # Later pages win: Graph may repeat an object within a round.
                    changes[str(u["id"])] = UserChange(str(u["id"]), _attributes(u, select), reason)
        except GraphReadError as exc:
            raise _delta_error("users", exc) from exc
        return list(changes.values()), str(page["@odata.deltaLink"])

    async def groups_delta(self, link: str) -> tuple[dict[str, MembershipChange], str]:
        """Membership changes since the stored groups delta link, and the next link."""
        changes: dict[str, MembershipChange] = {}
        page: dict[str, Any] = {}
        try:
            async for page in self._pages(self.client.groups.delta.with_url(link), "groups delta", delta=True):
                for g in page["value"]:
                    if not isinstance(g, dict) or not g.get("id"):
                        continue
                    change = changes.setdefault(str(g["id"]), MembershipChange(str(g["id"])))
                    removed = g.get("@removed")
                    if isinstance(removed, dict):
                        change.group_removed = str(removed.get("reason", "deleted"))
                    for member in g.get("members@delta") or []:
                        _merge_member(change, member)
        except GraphReadError as exc:
            raise _delta_error("groups", exc) from exc
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


def _role_value(roles: dict[str, str], role_id: str) -> str:
    """A role id the app no longer lists is not Default Access: it keeps a value of its own (so
    nobody leaves scope because a role could not be named) and shows up in the logs."""
    if role_id in roles:
        return roles[role_id]
    return f"unknown-role:{role_id}"


def _headers_only(config: Any) -> Any:
    """The request headers of the first page (e.g. ConsistencyLevel: an advanced query's next
    pages need it too), without its query parameters (the nextLink carries those)."""
    if config is None or not getattr(config, "headers", None) or not config.headers.get_all():
        return None
    follow: RequestConfiguration[Any] = RequestConfiguration()
    follow.headers = config.headers
    return follow


def _checked_page(page: dict[str, Any], what: str) -> dict[str, Any]:
    """A collection page must carry a `value` array of objects."""
    if "value" not in page:
        raise IncompleteRead(what, "a page of the collection has no `value` array")
    if not isinstance(page["value"], list):
        raise IncompleteRead(what, f"`value` is a {type(page['value']).__name__}, not an array")
    return page


def _count(page: dict[str, Any]) -> int | None:
    count = page.get("@odata.count")
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('code', 'unknown')}: {str(error.get('message', ''))[:200]}"
    return str(error)[:200]


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
    count: bool | None = None

    def get_query_parameter(self, original_name: str) -> str:
        return {"select": "%24select", "top": "%24top", "count": "%24count"}.get(original_name, original_name)


def _query(*, select: list[str] | None = None, top: int | None = None, count: bool | None = None) -> _Query:
    return _Query(select=select, top=top, count=count)
