"""Escrow: objects whose last export failed, with their attempt count and next retry time.

The schedule is Entra's (docs/reference/entra-provisioning.md#escrow): after the first failure
an object is retried +6 h, +12 h and +24 h after that first failure, then every 24 h, and dropped
after 28 days. gotosync departs from it for transient codes (Entra says those are "retried in 40
minutes", i.e. at the next cycle): they are due again at once, until the same 28-day limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.model import EscrowEntry

from ._base import Repository, delete, row_missing, storage_call, submit_batches
from ._codec import as_int, bounded_text, check_key, dt_from_entity, dt_to_entity, int64, utc
from .errors import ConcurrencyError

TRANSIENT_CODES = frozenset(
    {
        "TooManyRequests",
        "InternalServerError",
        "Timeout",
        "WebExceptionProtocolError",
        "InternalError",
        "ServiceUnavailable",
    }
)
STAGED = "StagedDelete"  # held by the deletion threshold: re-evaluated every cycle until decided
# Absent from /users and directory/deletedItems once: re-read after the confirmation delay
# (the caller gives the due time) before anything is deleted.
DELETION_UNCONFIRMED = "DeletionUnconfirmed"
FIRST_RETRIES = (timedelta(hours=6), timedelta(hours=12), timedelta(hours=24))
RETRY_EVERY = timedelta(hours=24)
GIVE_UP_AFTER = timedelta(days=28)
_WRITE_ATTEMPTS = 5


def _retry_offset(slot: int) -> timedelta:
    """How long after the first failure retry slot `slot` (1, 2, 3, ...) falls: 6 h, 12 h, 24 h, 48 h, 72 h, ..."""
    if slot <= len(FIRST_RETRIES):
        return FIRST_RETRIES[slot - 1]
    return FIRST_RETRIES[-1] + RETRY_EVERY * (slot - len(FIRST_RETRIES))


def next_retry(attempts: int, first_failure: datetime, now: datetime, code: str) -> datetime | None:
    """When an object that has now failed `attempts` times (this failure included) is retried.

    None means give up: `now` is more than 28 days after `first_failure`, or the next slot
    would fall after that. Transient codes are retried at the next cycle (returns `now`).
    Other codes get the first slot after `now` among first+6 h, +12 h, +24 h, +48 h, +72 h, ...
    Slots are picked by time, not by counting `attempts`: a failure in between (a webhook
    retry, a transient error) neither uses up a slot nor pushes the object out of escrow
    early, and after a stop the next future slot is used, not a burst of catch-up retries.
    On schedule the two readings agree (failure n at its slot gets slot n).
    """
    if attempts < 1:
        raise ValueError("attempts counts this failure too: it is at least 1")
    first = utc(first_failure)
    now = utc(now)
    deadline = first + GIVE_UP_AFTER
    if now > deadline:
        return None
    if code in TRANSIENT_CODES or code == STAGED:
        return now
    slot = 1
    while first + _retry_offset(slot) <= now:  # at most ~30 rounds: now is within 28 days of first
        slot += 1
    retry = first + _retry_offset(slot)
    return retry if retry <= deadline else None


def escrow_to_entity(entry: EscrowEntry) -> dict[str, Any]:
    return {
        "PartitionKey": check_key(entry.kind, "kind"),
        "RowKey": check_key(entry.entra_id, "entra_id"),
        "attempts": int64(entry.attempts),
        "first_failure": dt_to_entity(entry.first_failure),
        "next_retry": dt_to_entity(entry.next_retry),
        "last_error_code": bounded_text(entry.last_error_code),
        "last_error": bounded_text(entry.last_error),
        "evidence": bounded_text(entry.evidence),
        "absent_since": dt_to_entity(entry.absent_since),
    }


def escrow_from_entity(entity: TableEntity) -> EscrowEntry:
    return EscrowEntry(
        entra_id=entity["RowKey"],
        kind=entity["PartitionKey"],
        attempts=as_int(entity.get("attempts")),
        first_failure=dt_from_entity(entity.get("first_failure")),
        next_retry=dt_from_entity(entity.get("next_retry")),
        last_error_code=entity.get("last_error_code", ""),
        last_error=entity.get("last_error", ""),
        evidence=entity.get("evidence", ""),
        absent_since=dt_from_entity(entity.get("absent_since")),
    )


class EscrowRepository(Repository):
    """Table `{prefix}escrow`: partition = kind ("user" / "group"), row = Entra object id."""

    @storage_call
    async def get(self, entra_id: str, kind: str = "user") -> EscrowEntry | None:
        try:
            return escrow_from_entity(await self._table.get_entity(kind, entra_id))
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None

    @storage_call
    async def record_failure(
        self,
        entra_id: str,
        kind: str,
        code: str,
        message: str,
        now: datetime,
        *,
        evidence: str = "",
        absent_since: datetime | None = None,
        due: datetime | None = None,
    ) -> EscrowEntry:
        """Count one more failure and schedule the retry (see `next_retry`; `due` overrides it,
        e.g. for a deletion waiting for its confirming read). `evidence` is what the failed
        action rested on; `absent_since` when the user was first read as absent.

        When the schedule gives up (28 days), the row is deleted and the entry is returned with
        next_retry None, so the caller can log that the object left escrow unresolved.
        Conditional on the ETag read, so a webhook worker and a cycle failing the same object at
        once both count.
        """
        now = utc(now)
        for _ in range(_WRITE_ATTEMPTS):
            try:
                entity: TableEntity | None = await self._table.get_entity(kind, entra_id)
            except ResourceNotFoundError as exc:
                if not row_missing(exc):
                    raise
                entity = None
            previous = escrow_from_entity(entity) if entity is not None else None
            attempts = (previous.attempts if previous else 0) + 1
            first = previous.first_failure if previous and previous.first_failure else now
            entry = EscrowEntry(
                entra_id=entra_id,
                kind=kind,
                attempts=attempts,
                first_failure=first,
                next_retry=next_retry(attempts, first, now, code),
                last_error_code=code,
                last_error=bounded_text(message),
                evidence=evidence,
                absent_since=utc(absent_since) if absent_since is not None else None,
            )
            if due is not None and entry.next_retry is not None:
                entry.next_retry = utc(due)
            try:
                if entry.next_retry is None:
                    if entity is not None:
                        await self._table.delete_entity(
                            kind, entra_id, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
                        )
                elif entity is None:
                    await self._table.create_entity(escrow_to_entity(entry))
                else:
                    await self._table.update_entity(
                        escrow_to_entity(entry),
                        mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another writer recorded or cleared this object meanwhile: count again
            except ResourceNotFoundError as exc:
                if not row_missing(exc):
                    raise
                continue
            return entry
        raise ConcurrencyError(self.table_name, kind, entra_id, "escrow row kept changing while recording a failure")

    @storage_call
    async def clear(self, entra_id: str, kind: str = "user") -> None:
        """The object succeeded (or was reset): forget its failures."""
        await self._table.delete_entity(kind, entra_id)

    @storage_call
    async def due(self, now: datetime) -> list[EscrowEntry]:
        """Entries whose retry time has come, oldest retry first."""
        pages = self._table.query_entities("next_retry le @now", parameters={"now": utc(now)}, results_per_page=1000)
        entries = [escrow_from_entity(entity) async for entity in pages]
        return sorted(entries, key=lambda e: (e.next_retry or now, e.kind, e.entra_id))

    @storage_call
    async def all(self) -> list[EscrowEntry]:
        return [escrow_from_entity(entity) async for entity in self._table.list_entities(results_per_page=1000)]

    @storage_call
    async def count(self) -> int:
        """How many objects are in escrow (reads keys only)."""
        count = 0
        async for _ in self._table.list_entities(select=["RowKey"], results_per_page=1000):
            count += 1
        return count

    @storage_call
    async def purge_all(self) -> int:
        """Forget every pending retry (restart with resetScope Escrows). Returns how many were dropped."""
        keys = [
            (entity["PartitionKey"], entity["RowKey"])
            async for entity in self._table.list_entities(select=["PartitionKey", "RowKey"], results_per_page=1000)
        ]
        await submit_batches(self._table, [delete(pk, rk) for pk, rk in keys])
        return len(keys)
