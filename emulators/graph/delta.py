"""Delta query for users and groups (docs/reference/microsoft-graph.md#delta-query) over the
tenant's change log.

Every mutation appends ``(seq, kind, id, changed properties, member change)``; a delta token
holds the seq it was issued at plus the first request's ``$select``/``$filter``. An initial round
walks the live object index (O(page) per page); a later round aggregates the changes between
the token's seq and the round's snapshot seq. Tokens are signed, so garbled or foreign ones are
recognised and answered with 410 Gone, like tokens past their 7-day lifetime."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Any
from urllib.parse import quote

from .errors import GraphError, bad_request, unsupported_query
from .model import (
    GROUP_DEFAULT_SELECT,
    GROUP_DELTA_SELECT,
    GROUP_TYPE_NAME,
    LIFECYCLE,
    USER_DEFAULT_SELECT,
    USER_SELECT,
    USER_TYPE,
    USER_TYPE_NAME,
    DirectoryObject,
    Group,
    Tenant,
)
from .odata import filter_ids, is_guid, parse_filter, parse_select, require_no

_WINDOW_CACHE_SIZE = 16


class _Agg:
    """What changed for one object inside a window."""

    __slots__ = ("lifecycle", "members", "props")

    def __init__(self) -> None:
        self.props: set[str] = set()
        self.lifecycle = False
        self.members: dict[str, tuple[bool, str]] = {}


def delta(
    tenant: Tenant, kind: str, params: Mapping[str, str], *, minimal: bool, base_url: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """One page of ``/users/delta`` or ``/groups/delta``: (body, extra response headers)."""
    collection = "users" if kind == "user" else "groups"
    with tenant.lock:
        # No $top/$expand/$orderby on user and group delta; the page size is Graph's
        # (docs/reference/microsoft-graph.md#delta-rounds).
        require_no(params, ("$top", "$expand", "$orderby", "$skip", "$search", "$count"), "delta queries")
        headers = {"Preference-Applied": "return=minimal"} if minimal else {}
        if "$skiptoken" in params:
            state = _decode(tenant, kind, params["$skiptoken"], "p", base_url)
        elif params.get("$deltatoken"):
            raw = params["$deltatoken"]
            if raw.lower() == "latest":
                # docs/reference/microsoft-graph.md#starting-from-now: no data, only a deltaLink.
                select, ids = _options(params, kind, tenant.config.delta_filter_max_ids)
                token = _issue(tenant, kind, "d", {"s": tenant.seq, "sel": select, "f": ids})
                body = {
                    "@odata.context": f"{base_url}/$metadata#{collection}",
                    "value": [],
                    "@odata.deltaLink": f"{base_url}/{collection}/delta?$deltatoken={token}",
                }
                return body, headers
            token_state = _decode(tenant, kind, raw, "d", base_url)
            state = {"m": "c", "s": token_state["s"], "t": tenant.seq, **_carry(token_state), "p": 0, "c": 0}
        else:
            # Initial round; an empty $deltatoken (the 410 Location form) also starts over.
            select, ids = _options(params, kind, tenant.config.delta_filter_max_ids)
            state = {"m": "i", "s": 0, "t": tenant.seq, "sel": select, "f": ids, "p": 0, "c": 0}

        page: list[dict[str, Any]] = []
        next_position: tuple[int, int] | None = None
        for position, chunk, entry in _entries(tenant, kind, state, minimal):
            if len(page) == tenant.config.delta_page_size:
                next_position = (position, chunk)
                break
            page.append(entry)

        body = {"@odata.context": f"{base_url}/$metadata#{collection}", "value": page}
        if next_position is not None:
            payload = {k: state[k] for k in ("m", "s", "t", "sel", "f")}
            payload.update(p=next_position[0], c=next_position[1], at=state.get("at", tenant.clock.time()))
            body["@odata.nextLink"] = f"{base_url}/{collection}/delta?$skiptoken={_issue(tenant, kind, 'p', payload)}"
        else:
            token = _issue(tenant, kind, "d", {"s": state["t"], "sel": state["sel"], "f": state["f"]})
            body["@odata.deltaLink"] = f"{base_url}/{collection}/delta?$deltatoken={token}"
        return body, headers


def _carry(state: Mapping[str, Any]) -> dict[str, Any]:
    return {"sel": state.get("sel"), "f": state.get("f")}


def _options(params: Mapping[str, str], kind: str, max_ids: int) -> tuple[list[str] | None, list[str] | None]:
    if kind == "user":
        select = parse_select(params.get("$select"), USER_SELECT, USER_TYPE_NAME)
    else:
        select = parse_select(params.get("$select"), GROUP_DELTA_SELECT, GROUP_TYPE_NAME)
    raw = params.get("$filter")
    if not raw:
        return select, None
    type_name = USER_TYPE_NAME if kind == "user" else GROUP_TYPE_NAME
    ids = filter_ids(parse_filter(raw, {"id": "id"}, type_name))
    if ids is None:
        raise unsupported_query("Delta queries support only $filter=id eq '...' or id eq '...'.")
    if len(ids) > max_ids:
        # At most 50 ids per delta filter (docs/reference/microsoft-graph.md#delta-rounds).
        raise unsupported_query(f"Delta $filter can contain at most {max_ids} ids; got {len(ids)}.")
    for object_id in ids:
        if not is_guid(object_id):
            raise bad_request(f"Invalid object identifier '{object_id}'.")
    return select, list(dict.fromkeys(ids))


def _issue(tenant: Tenant, kind: str, token_type: str, payload: Mapping[str, Any]) -> str:
    data = {"v": token_type, "k": kind, "e": tenant.token_epoch, "at": tenant.clock.time(), **payload}
    return tenant.codec.encode(data)


def _gone(tenant: Tenant, kind: str, code: str, message: str, base_url: str, select: Any = None) -> GraphError:
    """410 Gone with a Location to restart from (an empty deltatoken = full resync;
    docs/reference/microsoft-graph.md#expired-delta-links)."""
    collection = "users" if kind == "user" else "groups"
    location = f"{base_url}/{collection}/delta?"
    if isinstance(select, list) and select:
        location += "$select=" + quote(",".join(select), safe=",") + "&"
    return GraphError(410, code, message, {"Location": location + "$deltatoken="})


def _decode(tenant: Tenant, kind: str, token: str, token_type: str, base_url: str) -> dict[str, Any]:
    payload = tenant.codec.decode(token)
    if payload is None or payload.get("v") != token_type or payload.get("k") != kind:
        message = "The delta token is not valid; a full resync is required."
        raise _gone(tenant, kind, "resyncRequired", message, base_url)
    select = payload.get("sel")
    if payload.get("e") != tenant.token_epoch or int(payload.get("s", -1)) > tenant.seq:
        raise _gone(
            tenant,
            kind,
            "resyncRequired",
            "The sync state for this delta token is no longer available; a full resync is required.",
            base_url,
            select,
        )
    if tenant.clock.time() - float(payload.get("at", 0)) > tenant.config.delta_token_lifetime_seconds:
        # Directory delta tokens live 7 days (docs/reference/microsoft-graph.md#expired-delta-links); past that,
        # start over.
        raise _gone(tenant, kind, "syncStateNotFound", "The delta token has expired.", base_url, select)
    return payload


def _selection(kind: str, select: list[str] | None) -> tuple[list[str], bool]:
    """(properties to render, whether members@delta is tracked)."""
    if kind == "user":
        return list(select or USER_DEFAULT_SELECT), False
    if select is None:
        return list(GROUP_DEFAULT_SELECT), True
    return [p for p in select if p != "members"], "members" in select


def _entries(tenant: Tenant, kind: str, state: dict[str, Any], minimal: bool) -> Iterator[tuple[int, int, dict]]:
    """(position, chunk, entry) from the state's position on; the position of an entry is what a
    nextLink resumes at."""
    store: Mapping[str, DirectoryObject] = tenant.users if kind == "user" else tenant.groups
    props, members_tracked = _selection(kind, state.get("sel"))
    ids: list[str] | None = state.get("f")
    start, first_chunk = int(state["p"]), int(state["c"])

    if state["m"] == "i":
        source: Iterator[tuple[int, str]]
        if ids is not None:
            source = ((i, object_id) for i, object_id in enumerate(ids) if i >= start)
        else:
            source = (tenant.user_index if kind == "user" else tenant.group_index).iter_from(start)
        for position, object_id in source:
            obj = store.get(object_id)
            if obj is None or obj.deleted:
                continue
            rendered = _full(tenant, obj, props, members_tracked, None)
            for chunk in range(first_chunk if position == start else 0, len(rendered)):
                yield position, chunk, rendered[chunk]
        return

    window = _window(tenant, kind, int(state["s"]), int(state["t"]), ids)
    for position in range(start, len(window)):
        object_id, agg = window[position]
        rendered = _changed(tenant, kind, object_id, agg, int(state["s"]), props, members_tracked, minimal)
        for chunk in range(first_chunk if position == start else 0, len(rendered)):
            yield position, chunk, rendered[chunk]


def _window(tenant: Tenant, kind: str, since: int, until: int, ids: list[str] | None) -> list[tuple[str, _Agg]]:
    """Changed objects in (since, until], in order of first change. Cached: a round's pages
    share one window, so a big window is aggregated once, not once per page."""
    key = (kind, since, until, tuple(ids) if ids else None)
    cached = tenant.window_cache.get(key)
    if cached is not None:
        tenant.window_cache.move_to_end(key)
        return cached  # type: ignore[no-any-return]
    wanted = set(ids) if ids else None
    aggregated: dict[str, _Agg] = {}
    changes = tenant.changes
    for i in range(bisect_right(changes, since, key=itemgetter(0)), len(changes)):
        seq, change_kind, object_id, props, member = changes[i]
        if seq > until:
            break
        if change_kind != kind or (wanted is not None and object_id not in wanted):
            continue
        agg = aggregated.get(object_id)
        if agg is None:
            agg = aggregated[object_id] = _Agg()
        if props is LIFECYCLE:
            agg.lifecycle = True
        elif member is not None:
            member_id, added, odata_type = member
            agg.members[member_id] = (added, odata_type)
        else:
            agg.props |= props
    window = list(aggregated.items())
    tenant.window_cache[key] = window
    while len(tenant.window_cache) > _WINDOW_CACHE_SIZE:
        tenant.window_cache.popitem(last=False)
    return window


def _member_entry(member_id: str, odata_type: str, added: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"@odata.type": odata_type, "id": member_id}
    if not added:
        entry["@removed"] = {"reason": "deleted"}
    return entry


def _current_members(tenant: Tenant, group: Group) -> list[dict[str, Any]]:
    out = []
    for member_id in group.members.snapshot():
        if tenant.is_active(member_id):
            out.append(_member_entry(member_id, USER_TYPE if member_id in tenant.users else "#microsoft.graph.group"))
    return out


def _with_members(tenant: Tenant, body: dict[str, Any], members: list[dict[str, Any]] | None) -> list[dict]:
    """A large group is split across entries; later entries carry id + members@delta only
    (docs/reference/microsoft-graph.md#group-members-in-delta)."""
    if members is None:
        return [body]
    size = max(1, tenant.config.delta_members_per_entry)
    if len(members) <= size:
        return [{**body, "members@delta": members}]
    chunks = [members[i : i + size] for i in range(0, len(members), size)]
    return [{**body, "members@delta": chunks[0]}] + [{"id": body["id"], "members@delta": c} for c in chunks[1:]]


def _full(
    tenant: Tenant,
    obj: DirectoryObject,
    props: list[str],
    members_tracked: bool,
    member_changes: list[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    body = tenant.render(obj, props)
    if not members_tracked or not isinstance(obj, Group):
        return [body]
    return _with_members(tenant, body, _current_members(tenant, obj) if member_changes is None else member_changes)


def _changed(
    tenant: Tenant,
    kind: str,
    object_id: str,
    agg: _Agg,
    since: int,
    props: list[str],
    members_tracked: bool,
    minimal: bool,
) -> list[dict[str, Any]]:
    store: Mapping[str, DirectoryObject] = tenant.users if kind == "user" else tenant.groups
    obj = store.get(object_id)
    if obj is None:
        tombstone = tenant.tombstones.get(object_id)
        if tombstone is None or tombstone.created_seq > since:
            return []  # created and purged inside the window: the client never saw it
        return [{"id": object_id, "@removed": {"reason": "deleted"}}]
    if obj.deleted:
        if not agg.lifecycle or obj.created_seq > since:
            return []
        return [{"id": object_id, "@removed": {"reason": "changed"}}]
    if agg.lifecycle:
        # Created or restored: full state, no annotation (docs/reference/microsoft-graph.md#removed-objects).
        return _full(tenant, obj, props, members_tracked, None)
    # $select decides what is tracked (docs/reference/microsoft-graph.md#delta-rounds): a change to an
    # unselected property yields nothing.
    changed = [p for p in props if p in agg.props]
    member_changes = [_member_entry(m, t, added) for m, (added, t) in agg.members.items()] if members_tracked else []
    if not changed and not member_changes:
        return []
    if minimal:
        body: dict[str, Any] = {"id": obj.id}
        body.update({p: tenant.value(obj, p) for p in changed})
    else:
        body = tenant.render(obj, props)
    if not members_tracked:
        return [body]
    return _with_members(tenant, body, member_changes or None) if member_changes else [body]
