"""Cycle history: one row per cycle that ran to its end (initial and incremental, and drift
sweeps; not targeted runs or dry runs), so that the console can show the last cycles and their
counts. The job row keeps only the current and the last one.

One partition; the row key is the inverted end time, so a query reads the newest first and
stops at its limit. Retention drops rows older than LOG_RETENTION_DAYS with the logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.data.tables import TableEntity

from shared.model import CycleProgress

from ._base import Operation, Repository, delete, storage_call, submit_batches
from ._codec import as_int, from_json, int64, safe_key_part, to_json, utc
from .job import progress_from_dict, progress_to_dict
from .logs import _inverted  # the log rows' ordering: newest first

PARTITION = "cycles"


def history_row_key(ended: datetime, cycle_id: str) -> str:
    return f"{_inverted(ended)}_{safe_key_part(cycle_id)}"


class CycleHistoryRepository(Repository):
    """Table `{prefix}cycles`: partition "cycles", row = inverted end time + "_" + cycle id."""

    @storage_call
    async def append(self, progress: CycleProgress, *, staged: int = 0) -> None:
        """Records a finished cycle (its `ended` must be set). Writing it again is harmless."""
        if progress.ended is None:
            raise ValueError("only a finished cycle goes into the history")
        await self._table.upsert_entity(
            {
                "PartitionKey": PARTITION,
                "RowKey": history_row_key(progress.ended, progress.cycle_id),
                "progress": to_json(progress_to_dict(progress)),
                "staged": int64(staged),
                "ended": utc(progress.ended),
            }
        )

    @storage_call
    async def recent(self, limit: int = 10) -> list[tuple[CycleProgress, int]]:
        """The newest `limit` cycles, newest first, each with the disables/deletes it staged."""
        if limit <= 0:
            return []
        pages = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": PARTITION}, results_per_page=min(limit, 1000)
        )
        found: list[tuple[CycleProgress, int]] = []
        async for entity in pages:
            found.append(_from_entity(entity))
            if len(found) >= limit:
                break
        return found

    @storage_call
    async def purge(self, older_than: datetime) -> int:
        """Deletes the cycles that ended before `older_than`; returns how many."""
        pages = self._table.query_entities(
            "PartitionKey eq @pk and RowKey gt @row",
            parameters={"pk": PARTITION, "row": _inverted(older_than)},
            select=["PartitionKey", "RowKey"],
        )
        operations: list[Operation] = [delete(e["PartitionKey"], e["RowKey"]) async for e in pages]
        if operations:
            await submit_batches(self._table, operations)
        return len(operations)


def _from_entity(entity: TableEntity) -> tuple[CycleProgress, int]:
    data: dict[str, Any] = from_json(entity.get("progress"), {}) or {}
    return progress_from_dict(data), as_int(entity.get("staged"))
