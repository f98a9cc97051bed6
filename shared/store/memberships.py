"""The members of the assigned groups, as last read: fed by full cycles (a listing of each
assigned group) and by the groups delta (the members who joined or left), so that a quiet cycle
and a real-time group change cost no member listing from Graph.

Partition = the Entra group id; one row per member user id, and a marker row (`_`) that says
the partition holds a whole member list (a group without it is unknown, not empty).
"""

from __future__ import annotations

from collections.abc import Iterable

from azure.core.exceptions import ResourceNotFoundError

from shared.model import utcnow

from ._base import Operation, Repository, delete, row_missing, storage_call, submit_batches, upsert
from ._codec import check_key

MARKER = "_"  # sorts before every GUID: the first row of a known group's partition


class MembershipRepository(Repository):
    """Table `{prefix}members`: partition = group id, row = member user id (+ the marker row)."""

    @storage_call
    async def get(self, group_id: str) -> set[str] | None:
        """The stored members of one group, or None when its member list is not known."""
        check_key(group_id, "group id")
        rows = self._table.query_entities(
            "PartitionKey eq @g", parameters={"g": group_id}, select=["RowKey"], results_per_page=1000
        )
        keys = [str(entity["RowKey"]) async for entity in rows]
        if MARKER not in keys:
            return None
        return {k for k in keys if k != MARKER}

    @storage_call
    async def known(self, group_id: str) -> bool:
        try:
            await self._table.get_entity(group_id, MARKER, select=["RowKey"])
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return False
        return True

    @storage_call
    async def replace(self, group_id: str, members: Iterable[str]) -> None:
        """Make the stored member list of `group_id` exactly `members` (and known)."""
        stored = await self.get(group_id) or set()
        wanted = set(members)
        ops: list[Operation] = [upsert({"PartitionKey": group_id, "RowKey": MARKER, "synced": utcnow()})]
        ops += [upsert({"PartitionKey": group_id, "RowKey": check_key(uid, "member id")}) for uid in wanted - stored]
        ops += [delete(group_id, uid) for uid in stored - wanted]
        await submit_batches(self._table, ops)

    @storage_call
    async def apply(self, group_id: str, added: Iterable[str], removed: Iterable[str]) -> bool:
        """A groups-delta change to a known member list; False (nothing written) when the list is
        not known: a partial list must never pass for a whole one."""
        if not await self.known(group_id):
            return False
        ops: list[Operation] = [upsert({"PartitionKey": group_id, "RowKey": check_key(u, "member id")}) for u in added]
        ops += [delete(group_id, u) for u in removed]
        if ops:
            await submit_batches(self._table, ops)
        return True

    @storage_call
    async def forget(self, group_id: str) -> None:
        """The group is no longer assigned (or was deleted): drop its member list."""
        rows = self._table.query_entities(
            "PartitionKey eq @g", parameters={"g": group_id}, select=["PartitionKey", "RowKey"], results_per_page=1000
        )
        keys = [str(entity["RowKey"]) async for entity in rows]
        await submit_batches(self._table, [delete(group_id, k) for k in keys])

    @storage_call
    async def groups(self) -> set[str]:
        """The groups whose member list is known."""
        rows = self._table.query_entities(
            "RowKey eq @m", parameters={"m": MARKER}, select=["PartitionKey"], results_per_page=1000
        )
        return {str(entity["PartitionKey"]) async for entity in rows}
