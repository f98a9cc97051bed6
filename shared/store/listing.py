"""Where a continuing full cycle's /users listing stands: one row per page it finished, so that
its next invocation goes on from the next page instead of listing the tenant again
(docs/sync-engine.md#cycles).

Partition: the cycle id; row: the page's place in the listing, from 0 (zero-padded). A row holds
where the listing stood after the page (its nextLink, the users listed so far, Graph's count),
which listing it belongs to (a new one when a listing had to start again at its first page),
the configuration the cycle planned with, the wanted users the page listed with the scope each
was planned with, and which of them had a disable or delete held for the end of the listing.

Users are packed: a GUID (what Graph's ids are) in 16 bytes, any other id as its UTF-8 bytes,
each after one small header (its scope's number in the row's scope table, the held flag); the
bytes are split over binary properties of at most 60,000 bytes (a property holds 64 KiB). A page
of 999 users takes about 17 KB. A page that would not fit in one entity (1 MiB) is not saved, nor
any after it: the next invocation then goes on from the last page saved, which is always safe.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.data.tables import TableEntity

from ._base import Operation, Repository, delete, storage_call, submit_batches, upsert
from ._codec import MAX_PROPERTY_CHARS, as_int, int64, safe_key_part

Scope = tuple[str, ...] | None
"""The app role values a user was planned with (sorted; "" is Default Access), or None: not assigned."""

CHUNK_BYTES = 60_000  # per binary property (at most 64 KiB)
MAX_ENTITY_BYTES = 900_000  # an entity holds at most 1 MiB: room left for keys and the other properties
_GUID, _TEXT, _HELD = 0, 1, 2  # the low bits of a user's header; the scope's number above them


@dataclass(frozen=True)
class ListedPage:
    """One page of /users a full cycle finished (exported and committed, or held for the end)."""

    page: int  # its place in the listing, from 0
    listing: str  # the listing it belongs to
    config: str  # the engine's configuration digest the cycle planned with
    next_link: str  # where the listing goes on ("" : it ended with this page)
    listed: int  # users the listing returned up to and including this page (Graph's count check)
    expected: int | None  # Graph's count, from the listing's first page
    users: Mapping[str, Scope] = field(default_factory=dict)  # wanted users listed -> their scope
    held: frozenset[str] = frozenset()  # of those, the ones whose disable or delete waits for the end

    def __post_init__(self) -> None:
        if not self.held <= set(self.users):
            raise ValueError("a held user is one the page listed")


class ListingRepository(Repository):
    """Table `{prefix}listing`: partition = cycle id, row = the page's place in the listing."""

    @storage_call
    async def save(self, cycle_id: str, pages: Sequence[ListedPage]) -> int:
        """Writes the pages (upserts) and returns how many: up to the first that would not fit
        in one entity, which is left out with every page after it."""
        entities: list[dict[str, Any]] = []
        for page in pages:
            entity = _to_entity(cycle_id, page)
            if entity is None:
                break
            entities.append(entity)
        if entities:
            await submit_batches(self._table, [upsert(e) for e in entities])
        return len(entities)

    @storage_call
    async def load(self, cycle_id: str) -> list[ListedPage]:
        """The cycle's listing from its first page on, in order, as far as it is whole: it stops
        at a missing page, a page of another listing than the first page's, or a row that cannot
        be read (a half-done write or removal leaves nothing that could be taken for more)."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": safe_key_part(cycle_id)})
        pages: list[ListedPage] = []
        async for entity in rows:  # in RowKey order: the pages' order
            page = _from_entity(entity)
            if page is None or page.page != len(pages) or (pages and page.listing != pages[0].listing):
                break
            pages.append(page)
        return pages

    @storage_call
    async def forget(self, cycle_id: str) -> int:
        """Removes the cycle's rows; returns how many."""
        return await self._delete("PartitionKey eq @pk", {"pk": safe_key_part(cycle_id)})

    @storage_call
    async def purge(self) -> int:
        """Removes every cycle's rows (a full cycle that ends: its own, and any that cycles
        stopped or killed before their end left behind); returns how many."""
        return await self._delete(None, {})

    async def _delete(self, query: str | None, parameters: dict[str, Any]) -> int:
        keys = ["PartitionKey", "RowKey"]
        if query is None:
            rows = self._table.list_entities(select=keys)
        else:
            rows = self._table.query_entities(query, parameters=parameters, select=keys)
        operations: list[Operation] = [delete(e["PartitionKey"], e["RowKey"]) async for e in rows]
        if operations:
            await submit_batches(self._table, operations)
        return len(operations)


def row_key(page: int) -> str:
    return f"{page:08d}"


def _to_entity(cycle_id: str, page: ListedPage) -> dict[str, Any] | None:
    packed, scopes = pack_users(page.users, page.held)
    scope_text = json.dumps(scopes, ensure_ascii=True, separators=(",", ":"))
    texts = (page.next_link, scope_text, page.listing, page.config)
    if any(len(t) > MAX_PROPERTY_CHARS for t in texts) or not page.next_link.isascii():
        return None
    if len(packed) + 2 * sum(len(t) for t in texts) > MAX_ENTITY_BYTES:
        return None
    chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)]
    entity: dict[str, Any] = {
        "PartitionKey": safe_key_part(cycle_id),
        "RowKey": row_key(page.page),
        "listing": page.listing,
        "config": page.config,
        "next_link": page.next_link,
        "listed": int64(page.listed),
        "scopes": scope_text,
        "chunks": len(chunks),
    }
    if page.expected is not None:
        entity["expected"] = int64(page.expected)
    for i, chunk in enumerate(chunks):
        entity[f"users{i}"] = chunk
    return entity


def _from_entity(entity: TableEntity) -> ListedPage | None:
    try:
        chunks = [bytes(entity[f"users{i}"]) for i in range(as_int(entity.get("chunks")))]
        scopes = _scopes(json.loads(entity["scopes"]))
        users, held = unpack_users(b"".join(chunks), scopes)
        expected = entity.get("expected")
        return ListedPage(
            page=int(entity["RowKey"]),
            listing=str(entity["listing"]),
            config=str(entity["config"]),
            next_link=str(entity.get("next_link") or ""),
            listed=as_int(entity["listed"]),
            expected=None if expected is None else as_int(expected),
            users=users,
            held=held,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _scopes(raw: Any) -> list[Scope]:
    if not isinstance(raw, list):
        raise ValueError("the scope table is not a list")
    out: list[Scope] = []
    for item in raw:
        if item is not None and not (isinstance(item, list) and all(isinstance(r, str) for r in item)):
            raise ValueError("a scope is neither null nor a list of role values")
        out.append(None if item is None else tuple(item))
    return out


# ---------------------------------------------------------------- packing


def pack_users(users: Mapping[str, Scope], held: frozenset[str] = frozenset()) -> tuple[bytes, list[Scope]]:
    """The users as bytes, and the table of scopes their headers number."""
    numbers: dict[Scope, int] = {}
    out = bytearray()
    for uid, scope in users.items():
        number = numbers.setdefault(scope, len(numbers))
        guid = _guid_bytes(uid)
        out += _varint(number << 2 | (_HELD if uid in held else 0) | (_GUID if guid is not None else _TEXT))
        if guid is not None:
            out += guid
        else:
            raw = uid.encode("utf-8")
            out += _varint(len(raw)) + raw
    return bytes(out), list(numbers)


def unpack_users(data: bytes, scopes: Sequence[Scope]) -> tuple[dict[str, Scope], frozenset[str]]:
    """The inverse of pack_users; ValueError when the bytes are not such a packing."""
    users: dict[str, Scope] = {}
    held: set[str] = set()
    i = 0
    while i < len(data):
        header, i = _read_varint(data, i)
        if header & _TEXT:
            size, i = _read_varint(data, i)
            uid = _take(data, i, size).decode("utf-8")
            i += size
        else:
            uid = str(uuid.UUID(bytes=_take(data, i, 16)))
            i += 16
        number = header >> 2
        if number >= len(scopes):
            raise ValueError("a user's scope is not in the scope table")
        users[uid] = scopes[number]
        if header & _HELD:
            held.add(uid)
    return users, frozenset(held)


def _guid_bytes(uid: str) -> bytes | None:
    """16 bytes when `uid` is a GUID in the canonical form it is read back in, else None."""
    if len(uid) != 36:
        return None
    try:
        parsed = uuid.UUID(uid)
    except ValueError:
        return None
    return parsed.bytes if str(parsed) == uid else None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("a number runs past the end of the packed users")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _take(data: bytes, i: int, size: int) -> bytes:
    if i + size > len(data):
        raise ValueError("a user runs past the end of the packed users")
    return data[i : i + size]
