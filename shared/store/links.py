"""Links: which GoTo object gotosync created or matched for each Entra user or group, and what it
last sent there. A cycle writes them in bulk (blind upserts in transactions); a path racing a
newer one (webhook vs cycle) writes with put_if_unchanged, conditional on the ETag it read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode

from shared.model import Link

from ._base import MAX_BATCH_OPERATIONS, Operation, Repository, row_missing, storage_call, submit_batches, upsert
from ._codec import bounded_json, bounded_text, check_key, dt_from_entity, dt_to_entity, from_json
from .errors import ConcurrencyError

PAGE_SIZE = 1000  # the service's maximum page


def link_to_entity(link: Link) -> dict[str, Any]:
    # `exported` feeds the next diff: if it must be cut to fit, keys are dropped (and a
    # "_truncated" count added) so that the dropped attributes are simply sent again.
    return {
        "PartitionKey": check_key(link.kind, "kind"),
        "RowKey": check_key(link.entra_id, "entra_id"),
        "goto_id": bounded_text(link.goto_id),
        "matched_by": bounded_text(link.matched_by),
        "owned": link.owned,
        "exported": bounded_json(link.exported),
        "licenses": bounded_json(list(link.licenses)),
        "active": link.active,
        "applied_at": dt_to_entity(link.applied_at),
        "pending": link.pending,
        "seats_pending": None if link.seats_pending is None else bounded_json(list(link.seats_pending)),
    }


def link_from_entity(entity: TableEntity) -> Link:
    return Link(
        entra_id=entity["RowKey"],
        goto_id=entity.get("goto_id", ""),
        kind=entity["PartitionKey"],
        matched_by=entity.get("matched_by", "created"),
        owned=bool(entity.get("owned", True)),
        exported=from_json(entity.get("exported"), {}),
        licenses=from_json(entity.get("licenses"), []),
        active=bool(entity.get("active", True)),
        applied_at=dt_from_entity(entity.get("applied_at")),
        etag=entity.metadata.get("etag"),
        pending=bool(entity.get("pending", False)),
        seats_pending=from_json(entity.get("seats_pending"), None),
    )


class _Row(NamedTuple):
    """A stored link as CompactLinks keeps it (a tuple: no per-row dict)."""

    goto_id: str
    matched_by: str
    owned: bool
    exported: str | None  # the JSON text, as stored
    licenses: str | None
    active: bool
    applied_at: datetime | None
    etag: str | None
    pending: bool
    seats_pending: str | None

    @property
    def live(self) -> bool:
        return bool(self.goto_id) and not self.pending


# The columns a full cycle's copy of the links keeps: not Timestamp, whose decoding was a third of
# the SDK's cost per row (D82).
COMPACT_COLUMNS = [
    "RowKey", "goto_id", "matched_by", "owned", "exported", "licenses", "active", "applied_at", "pending",
    "seats_pending",
]  # fmt: skip


def _flag(entity: TableEntity, name: str, default: bool) -> bool:
    value = entity.get(name)
    return default if value is None else bool(value)


class CompactLinks(Mapping[str, Link]):
    """Every link of one kind as a full cycle holds them: each as the row it is stored as (its
    exported values stay the JSON text they are stored as), decoded into a Link on access. About
    half the memory of Link objects; what the cycle counts over all links (managed, names taken,
    GoTo ids linked) is kept aside at load, so those passes decode nothing."""

    def __init__(self, kind: str = "user") -> None:
        self.kind = kind
        self._rows: dict[str, _Row] = {}
        self._names: dict[str, str] = {}  # entra id -> the userName last exported (live links)
        self._texts: dict[str, str] = {}  # one instance of each repeated short text

    def add(self, entity: TableEntity) -> None:
        share = self._share
        name = from_json(entity.get("exported"), {}).get("userName")
        # A column the row lacks reads as absent or as null (the query names its columns).
        row = _Row(
            entity.get("goto_id") or "",
            share(entity.get("matched_by") or "created"),
            _flag(entity, "owned", True),
            entity.get("exported"),
            share(entity.get("licenses")),
            _flag(entity, "active", True),
            dt_from_entity(entity.get("applied_at")),
            entity.metadata.get("etag"),
            _flag(entity, "pending", False),
            share(entity.get("seats_pending")),
        )
        entra_id = entity["RowKey"]
        self._rows[entra_id] = row
        if isinstance(name, str) and name:
            self._names[entra_id] = name
        else:
            self._names.pop(entra_id, None)

    def _share(self, text: Any) -> Any:
        return self._texts.setdefault(text, text) if isinstance(text, str) and len(text) < 200 else text

    def __getitem__(self, entra_id: str) -> Link:
        row = self._rows[entra_id]
        return Link(
            entra_id=entra_id,
            goto_id=row.goto_id,
            kind=self.kind,
            matched_by=row.matched_by,
            owned=row.owned,
            exported=from_json(row.exported, {}),
            licenses=from_json(row.licenses, []),
            active=row.active,
            applied_at=row.applied_at,
            etag=row.etag,
            pending=row.pending,
            seats_pending=from_json(row.seats_pending, None),
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def managed_count(self) -> int:
        """Live links to owned, active GoTo users (the relative deletion guard's base)."""
        return sum(1 for row in self._rows.values() if row.live and row.owned and row.active)

    def live_goto_ids(self) -> dict[str, str]:
        """GoTo id -> Entra id of every live link."""
        return {row.goto_id: uid for uid, row in self._rows.items() if row.live}

    def taken_names(self, exclude: set[str]) -> dict[str, str]:
        """userName (casefolded) -> Entra id of live links not in `exclude`."""
        rows = self._rows
        return {name.casefold(): uid for uid, name in self._names.items() if rows[uid].live and uid not in exclude}


def _conditional(write: Link | tuple[str, str, str | None]) -> Operation:
    if isinstance(write, Link):
        entity = link_to_entity(write)
        if write.etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": write.etag, "match_condition": _IF_SAME})
    kind, entra_id, etag = write
    keys = {"PartitionKey": kind, "RowKey": entra_id}
    if etag is None:
        return ("delete", keys)
    return ("delete", keys, {"etag": etag, "match_condition": _IF_SAME})


_IF_SAME = MatchConditions.IfNotModified


class LinkRepository(Repository):
    """Table `{prefix}links`: partition = kind ("user" / "group"), row = Entra object id."""

    @storage_call
    async def get(self, entra_id: str, kind: str = "user") -> Link | None:
        try:
            entity = await self._table.get_entity(kind, entra_id)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None
        return link_from_entity(entity)

    @storage_call
    async def put(self, link: Link) -> Link:
        """Write `link` whatever is stored (blind upsert). Returns a copy with the new ETag."""
        answer = await self._table.upsert_entity(link_to_entity(link), mode=UpdateMode.REPLACE)
        return dataclasses.replace(link, etag=answer["etag"])

    @storage_call
    async def put_if_unchanged(self, link: Link) -> Link:
        """Write `link` only if the row is still the one `link.etag` was read with.

        etag None means "only if there is no link yet". Returns a copy with the new ETag;
        raises ConcurrencyError when another writer changed, created or deleted the row.
        """
        entity = link_to_entity(link)
        try:
            if link.etag is None:
                answer = await self._table.create_entity(entity)
            else:
                answer = await self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=link.etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError as exc:
            raise ConcurrencyError(self.table_name, link.kind, link.entra_id, "a link was created meanwhile") from exc
        except ResourceModifiedError as exc:
            raise ConcurrencyError(self.table_name, link.kind, link.entra_id) from exc
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            raise ConcurrencyError(self.table_name, link.kind, link.entra_id, "the link was deleted meanwhile") from exc
        return dataclasses.replace(link, etag=answer["etag"])

    @storage_call
    async def delete(self, entra_id: str, kind: str = "user") -> None:
        """Forget the link (nothing happens if there is none)."""
        await self._table.delete_entity(kind, entra_id)

    @storage_call
    async def all(self, kind: str = "user") -> list[Link]:
        """Every link of `kind`, read in pages of 1,000 (the service follows continuation tokens)."""
        pages = self._table.query_entities(
            "PartitionKey eq @kind", parameters={"kind": kind}, results_per_page=PAGE_SIZE
        )
        return [link_from_entity(entity) async for entity in pages]

    @storage_call
    async def compact(self, kind: str = "user") -> CompactLinks:
        """Every link of `kind`, read in pages of 1,000 and held compactly (a full cycle's copy)."""
        out = CompactLinks(kind)
        pages = self._table.query_entities(
            "PartitionKey eq @kind", parameters={"kind": kind}, select=COMPACT_COLUMNS, results_per_page=PAGE_SIZE
        )
        async for entity in pages:
            out.add(entity)
        return out

    @storage_call
    async def owner_of(self, goto_id: str, kind: str = "user") -> str | None:
        """The Entra id whose live link points at GoTo object `goto_id`, or None. A filtered scan
        of one partition: for the rare lookups that found a GoTo object by attribute."""
        pages = self._table.query_entities(
            "PartitionKey eq @kind and goto_id eq @goto",
            parameters={"kind": kind, "goto": goto_id},
            select=["RowKey", "pending"],
            results_per_page=PAGE_SIZE,
        )
        async for entity in pages:
            if not entity.get("pending"):
                return str(entity["RowKey"])
        return None

    @storage_call
    async def write_many_if_unchanged(self, writes: list[Link | tuple[str, str, str | None]]) -> list[str]:
        """Conditional writes in transactions: a Link is written only if its row still has
        `link.etag` (None: only if there is no row); a (kind, entra_id, etag) tuple deletes the
        row on the same condition (etag None: whatever is stored). A transaction that loses a
        race is written one row at a time; returns the Entra ids whose write lost."""
        by_kind: dict[str, list[Link | tuple[str, str, str | None]]] = {}
        for write in writes:
            by_kind.setdefault(write.kind if isinstance(write, Link) else write[0], []).append(write)
        lost: list[str] = []
        for group in by_kind.values():
            for start in range(0, len(group), MAX_BATCH_OPERATIONS):
                lost += await self._write_chunk(group[start : start + MAX_BATCH_OPERATIONS])
        return lost

    async def _write_chunk(self, chunk: list[Link | tuple[str, str, str | None]]) -> list[str]:
        """One transaction; if it loses a race, each write on its own (the others still land)."""
        operations = [_conditional(w) for w in chunk]
        try:
            await submit_batches(self._table, operations)
            return []
        except TableTransactionError:
            pass
        lost: list[str] = []
        for write, operation in zip(chunk, operations, strict=True):
            try:
                await submit_batches(self._table, [operation])
            except (TableTransactionError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                lost.append(write.entra_id if isinstance(write, Link) else write[1])
        return lost

    @storage_call
    async def put_many(self, links: Iterable[Link]) -> list[Link]:
        """Blind upserts in transactions of up to 100 per kind. Returns copies with their new ETags.

        Two links for the same object: the later one wins.
        """
        items = list(links)
        answers = await submit_batches(self._table, [upsert(link_to_entity(link)) for link in items])
        return [dataclasses.replace(link, etag=answer.get("etag")) for link, answer in zip(items, answers, strict=True)]
