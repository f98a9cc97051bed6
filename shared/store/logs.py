"""The provisioning log: one immutable row per decision about one object, kept per UTC day.

Partition = the entry's UTC day (`yyyymmdd`), so retention drops whole days and a time-range
query touches only the days in range. Row = inverted microsecond timestamp + "_" + change id:
unique, and ascending row order within a day is newest first. Writes are idempotent upserts
in entity transactions, so a cycle resumed after a timeout re-logs without duplicates.

Table Storage can neither list partitions nor sort descending, so one more partition, "days",
holds a row per day that has entries: a query reads it (one request), then only those days,
newest first, instead of probing every calendar day back from today.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableEntity

from shared.model import (
    Action,
    Initiator,
    ModifiedProperty,
    ProvisioningLogEntry,
    ProvisioningStep,
    Status,
    StepType,
)

from ._base import Operation, Repository, delete, storage_call, submit_batches, upsert
from ._codec import (
    as_int,
    bounded_json,
    bounded_text,
    dt_from_entity,
    from_json,
    int64,
    safe_key_part,
    utc,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INVERT_FROM = 10**19 - 1  # 19 digits: fixed width for every instant from 1970 on
PAGE_SIZE = 1000
PURGE_CHUNK = 1000  # keys read before their deletes are sent, so purging never holds a month in memory
DAYS_PARTITION = "days"  # sorts after every digit: "PartitionKey lt <yyyymmdd>" never reaches it


def day_key(at: datetime) -> str:
    """The partition of an entry logged at `at`: its UTC day as yyyymmdd."""
    return utc(at).strftime("%Y%m%d")


def _inverted(at: datetime) -> str:
    micros = max((utc(at) - _EPOCH) // timedelta(microseconds=1), 0)
    return f"{_INVERT_FROM - micros:019d}"


def row_key(at: datetime, change_id: str) -> str:
    """Inverted time first (newest sorts first), change id after (unique within the same microsecond)."""
    return f"{_inverted(at)}_{safe_key_part(change_id)}"


def _modified_overflow(dropped: int) -> dict[str, Any]:
    return {"name": "_truncated", "old": None, "new": f"{dropped} more modified properties not stored (size limit)"}


def _steps_overflow(dropped: int) -> dict[str, Any]:
    return {
        "name": "Truncated",
        "type": StepType.PROCESSING.value,
        "status": Status.WARNING.value,
        "description": f"{dropped} more steps not stored (size limit)",
        "details": {},
    }


def log_to_entity(entry: ProvisioningLogEntry) -> dict[str, Any]:
    modified = [{"name": m.name, "old": m.old, "new": m.new} for m in entry.modified]
    steps = [
        {
            "name": s.name,
            "type": s.step_type.value,
            "status": s.status.value,
            "description": s.description,
            "details": s.details,
        }
        for s in entry.steps
    ]
    return {
        "PartitionKey": day_key(entry.at),
        "RowKey": row_key(entry.at, entry.change_id),
        "cycle_id": bounded_text(entry.cycle_id),
        "change_id": bounded_text(entry.change_id),
        "action": entry.action.value,
        "status": entry.status.value,
        "source_id": bounded_text(entry.source_id),
        "source_name": bounded_text(entry.source_name),
        "target_id": bounded_text(entry.target_id),
        "target_name": bounded_text(entry.target_name),
        "identity_type": bounded_text(entry.identity_type),
        "initiated_by": entry.initiated_by.value,
        "reason": bounded_text(entry.reason),
        "error_code": bounded_text(entry.error_code),
        "modified": bounded_json(modified, overflow_item=_modified_overflow),
        "steps": bounded_json(steps, overflow_item=_steps_overflow),
        "duration_ms": int64(entry.duration_ms),
        "at": utc(entry.at),
        "evidence": bounded_text(entry.evidence),
    }


def log_from_entity(entity: TableEntity) -> ProvisioningLogEntry:
    at = dt_from_entity(entity.get("at"))
    return ProvisioningLogEntry(
        cycle_id=entity.get("cycle_id", ""),
        change_id=entity.get("change_id", ""),
        action=Action(entity.get("action", Action.OTHER.value)),
        status=Status(entity.get("status", Status.SUCCESS.value)),
        source_id=entity.get("source_id", ""),
        source_name=entity.get("source_name", ""),
        target_id=entity.get("target_id", ""),
        target_name=entity.get("target_name", ""),
        identity_type=entity.get("identity_type", "User"),
        initiated_by=Initiator(entity.get("initiated_by", Initiator.TIMER.value)),
        reason=entity.get("reason", ""),
        error_code=entity.get("error_code", ""),
        modified=[
            ModifiedProperty(name=m.get("name", ""), old=m.get("old"), new=m.get("new"))
            for m in from_json(entity.get("modified"), [])
        ],
        steps=[
            ProvisioningStep(
                name=s.get("name", ""),
                step_type=StepType(s.get("type", StepType.PROCESSING.value)),
                status=Status(s.get("status", Status.SUCCESS.value)),
                description=s.get("description", ""),
                details=s.get("details") or {},
            )
            for s in from_json(entity.get("steps"), [])
        ],
        duration_ms=as_int(entity.get("duration_ms")),
        at=at if at is not None else _EPOCH,
        evidence=entity.get("evidence", ""),
    )


def _matches_user(entry: ProvisioningLogEntry, needle: str) -> bool:
    return any(needle in value.casefold() for value in (entry.source_id, entry.source_name, entry.target_name))


class LogRepository(Repository):
    """Table `{prefix}logs`: partition = UTC day yyyymmdd, row = inverted time + "_" + change id;
    plus partition "days" with one row per day that holds entries."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._marked_days: set[str] = set()  # days this process has already listed in "days"

    @storage_call
    async def write(self, entries: Sequence[ProvisioningLogEntry]) -> None:
        """Store `entries` in transactions of up to 100 per day. Re-writing an entry is harmless."""
        operations: list[Operation] = [upsert(log_to_entity(entry)) for entry in entries]
        new_days = sorted({str(op[1]["PartitionKey"]) for op in operations} - self._marked_days)
        operations += [upsert({"PartitionKey": DAYS_PARTITION, "RowKey": day}) for day in new_days]
        if operations:
            await submit_batches(self._table, operations)
        self._marked_days.update(new_days)

    async def _days(self, lower: str | None = None, upper: str | None = None) -> list[str]:
        """Days holding entries within [lower, upper] (inclusive; None = open), newest first."""
        clauses = ["PartitionKey eq @days"]
        parameters: dict[str, Any] = {"days": DAYS_PARTITION}
        if lower is not None:
            clauses.append("RowKey ge @lower")
            parameters["lower"] = lower
        if upper is not None:
            clauses.append("RowKey le @upper")
            parameters["upper"] = upper
        pages = self._table.query_entities(
            " and ".join(clauses), parameters=parameters, select=["RowKey"], results_per_page=PAGE_SIZE
        )
        return sorted([str(entity["RowKey"]) async for entity in pages], reverse=True)

    @storage_call
    async def query(
        self,
        *,
        user: str | None = None,
        action: Action | str | None = None,
        status: Status | str | None = None,
        cycle_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        initiated_by: Initiator | str | None = None,
    ) -> list[ProvisioningLogEntry]:
        """Entries newest first, `since` <= at <= `until` (both optional, inclusive).

        `user` matches a case-insensitive substring of the source id, source name or target name
        (client-side: Table Storage has no substring filter); action, status and cycle_id are
        filtered by the service (so is `initiated_by`), and so are the time bounds (on the row key). Only days in range
        that hold entries are read, newest first, one partition at a time, so `limit` stops the
        reading early.
        """
        if limit is not None and limit <= 0:
            return []
        days = await self._days(
            day_key(since) if since is not None else None, day_key(until) if until is not None else None
        )

        clauses = ["PartitionKey eq @day"]
        parameters: dict[str, Any] = {}
        if since is not None:
            # instants >= since have an inverted time <= inverted(since); "`" sorts right after "_"
            clauses.append("RowKey lt @since_row")
            parameters["since_row"] = _inverted(since) + "`"
        if until is not None:
            clauses.append("RowKey ge @until_row")
            parameters["until_row"] = _inverted(until)
        filters = (("action", action), ("status", status), ("cycle_id", cycle_id), ("initiated_by", initiated_by))
        for name, value in filters:
            if value is not None:
                clauses.append(f"{name} eq @{name}")
                parameters[name] = getattr(value, "value", value)
        query_filter = " and ".join(clauses)
        needle = user.casefold() if user else None

        found: list[ProvisioningLogEntry] = []
        for day in days:
            pages = self._table.query_entities(
                query_filter, parameters={**parameters, "day": day}, results_per_page=PAGE_SIZE
            )
            async for entity in pages:
                entry = log_from_entity(entity)
                if needle is not None and not _matches_user(entry, needle):
                    continue
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    return found
        return found

    @storage_call
    async def find(self, change_id: str, near: datetime | None = None) -> ProvisioningLogEntry | None:
        """The entry with this change id: in the UTC day of `near` (one partition) when given,
        else in every day that holds entries, newest first."""
        days = [day_key(near)] if near is not None else await self._days()
        for day in days:
            pages = self._table.query_entities(
                "PartitionKey eq @day and change_id eq @change",
                parameters={"day": day, "change": change_id},
                results_per_page=10,
            )
            async for entity in pages:
                return log_from_entity(entity)
        return None

    @storage_call
    async def purge(self, older_than: datetime) -> int:
        """Delete every whole UTC day before the day of `older_than`. Returns how many entries went.

        The day containing `older_than` is kept whole: retention is by day, never by row.
        """
        cutoff = day_key(older_than)
        pages = self._table.query_entities(
            "PartitionKey lt @cutoff",
            parameters={"cutoff": cutoff},
            select=["PartitionKey", "RowKey"],
            results_per_page=PAGE_SIZE,
        )
        deleted = 0
        chunk: list[Operation] = []
        async for entity in pages:
            chunk.append(delete(entity["PartitionKey"], entity["RowKey"]))
            if len(chunk) >= PURGE_CHUNK:
                await submit_batches(self._table, chunk)
                deleted += len(chunk)
                chunk = []
        if chunk:
            await submit_batches(self._table, chunk)
            deleted += len(chunk)
        # the day rows go last, so a day stays listed until its entries are gone
        old_days = [day for day in await self._days() if day < cutoff]
        if old_days:
            await submit_batches(self._table, [delete(DAYS_PARTITION, day) for day in old_days])
            self._marked_days.difference_update(old_days)
        return deleted
