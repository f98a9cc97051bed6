"""The admin audit trail: who did what to the provisioning job, from the console, the HTTP
admin endpoints or the CLI (start, stop, restart, allow deletes, provision on demand, dry run,
test connection). Every entry names the admin as the caller presented itself (an Entra user
through App Service Authentication, or "function key" for a script), what was asked, and how
it ended.

Partition = the entry's UTC day (`yyyymmdd`, as the provisioning log), row = inverted time +
"_" + entry id: newest first within a day, and retention drops whole days. A "days" partition
lists the days that hold entries, so a query reads only those.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableEntity, UpdateMode

from shared.model import utcnow

from ._base import Operation, Repository, delete, storage_call, submit_batches
from ._codec import bounded_json, bounded_text, dt_from_entity, from_json, utc
from .logs import DAYS_PARTITION, _inverted, day_key

PAGE_SIZE = 1000


@dataclass
class AuditEntry:
    actor: str  # the admin's name (UPN) as the caller presented itself, or "function key"
    action: str  # "start", "stop", "restart", "allow-deletes", "provision", "dry-run", "test-connection"
    outcome: str = "done"  # "done", or "refused: …" / "failed: …"
    actor_id: str = ""  # the Entra object id of the admin, when known
    via: str = "console"  # "console" | "http" | "cli"
    target: str = ""  # the user or group an on-demand run was for; the scopes of a restart
    cycle_id: str = ""  # the run an on-demand request or an "allow deletes now" started
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)
    entry_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def document(self) -> dict[str, Any]:
        return {
            "time": self.at.isoformat(),
            "actor": self.actor,
            "actorId": self.actor_id,
            "via": self.via,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "cycleId": self.cycle_id,
            "detail": self.detail,
        }


def _to_entity(entry: AuditEntry) -> dict[str, Any]:
    return {
        "PartitionKey": day_key(entry.at),
        "RowKey": f"{_inverted(entry.at)}_{entry.entry_id}",
        "actor": bounded_text(entry.actor, 512),
        "actor_id": bounded_text(entry.actor_id, 128),
        "via": bounded_text(entry.via, 32),
        "action": bounded_text(entry.action, 64),
        "target": bounded_text(entry.target, 1024),
        "outcome": bounded_text(entry.outcome, 4000),
        "cycle_id": bounded_text(entry.cycle_id, 64),
        "detail": bounded_json(entry.detail),
        "at": utc(entry.at),
    }


def _from_entity(entity: TableEntity) -> AuditEntry:
    at = dt_from_entity(entity.get("at")) or datetime(1970, 1, 1, tzinfo=UTC)
    detail = from_json(entity.get("detail"), {})
    return AuditEntry(
        actor=entity.get("actor", ""),
        action=entity.get("action", ""),
        outcome=entity.get("outcome", ""),
        actor_id=entity.get("actor_id", ""),
        via=entity.get("via", ""),
        target=entity.get("target", ""),
        cycle_id=entity.get("cycle_id", ""),
        detail=detail if isinstance(detail, dict) else {},
        at=at,
        entry_id=str(entity.get("RowKey", "")).partition("_")[2],
    )


class AuditRepository(Repository):
    """Table `{prefix}audit`: partition = UTC day yyyymmdd, row = inverted time + "_" + entry id;
    plus partition "days" with one row per day that holds entries."""

    @storage_call
    async def write(self, entry: AuditEntry) -> None:
        await self._table.upsert_entity(_to_entity(entry), mode=UpdateMode.REPLACE)
        await self._table.upsert_entity({"PartitionKey": DAYS_PARTITION, "RowKey": day_key(entry.at)})

    async def _days(self) -> list[str]:
        pages = self._table.query_entities(
            "PartitionKey eq @days", parameters={"days": DAYS_PARTITION}, select=["RowKey"]
        )
        return sorted([str(e["RowKey"]) async for e in pages], reverse=True)

    @storage_call
    async def recent(
        self, limit: int = 50, *, cycle_id: str | None = None, days: Sequence[str] | None = None
    ) -> list[AuditEntry]:
        """The newest entries first (only those of `cycle_id`, when given; only in `days`, yyyymmdd,
        when given)."""
        if limit <= 0:
            return []
        clauses: list[str] = ["PartitionKey eq @day"]
        parameters: dict[str, Any] = {}
        if cycle_id is not None:
            clauses.append("cycle_id eq @cycle")
            parameters["cycle"] = cycle_id
        found: list[AuditEntry] = []
        for day in sorted(days, reverse=True) if days is not None else await self._days():
            pages = self._table.query_entities(
                " and ".join(clauses), parameters={**parameters, "day": day}, results_per_page=PAGE_SIZE
            )
            async for entity in pages:
                found.append(_from_entity(entity))
                if len(found) >= limit:
                    return found
        return found

    @storage_call
    async def purge(self, older_than: datetime) -> int:
        """Deletes every whole UTC day before the day of `older_than`; returns how many entries went."""
        cutoff = day_key(older_than)
        pages = self._table.query_entities(
            "PartitionKey lt @cutoff", parameters={"cutoff": cutoff}, select=["PartitionKey", "RowKey"]
        )
        operations: list[Operation] = [delete(e["PartitionKey"], e["RowKey"]) async for e in pages]
        if operations:
            await submit_batches(self._table, operations)
        old_days = [day for day in await self._days() if day < cutoff]
        if old_days:
            await submit_batches(self._table, [delete(DAYS_PARTITION, day) for day in old_days])
        return len(operations)
