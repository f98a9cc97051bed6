"""The last seen snapshot of the app's assignments (principal -> roles), for the incremental
cycle's assignment diff. Written as a diff against what is stored, in entity transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.model import Assignment

from ._base import Operation, Repository, delete, row_missing, storage_call, submit_batches, upsert
from ._codec import bounded_text, check_key, from_json, to_json


@dataclass(frozen=True)
class SnapshotWrite:
    """What replace() wrote: rows upserted and rows deleted (unchanged rows are not written)."""

    upserted: int
    deleted: int


def assignment_to_entity(assignment: Assignment) -> dict[str, Any]:
    return {
        "PartitionKey": check_key(assignment.principal_type, "principal_type"),
        "RowKey": check_key(assignment.principal_id, "principal_id"),
        "display_name": bounded_text(assignment.display_name),
        "role_ids": to_json(sorted(assignment.role_ids)),
        "role_values": to_json(sorted(assignment.role_values)),
    }


def assignment_from_entity(entity: TableEntity) -> Assignment:
    return Assignment(
        principal_id=entity["RowKey"],
        principal_type=entity["PartitionKey"],
        display_name=entity.get("display_name", ""),
        role_ids=frozenset(from_json(entity.get("role_ids"), [])),
        role_values=frozenset(from_json(entity.get("role_values"), [])),
    )


async def _assignments(rows: Any) -> Any:
    async for entity in rows:
        yield assignment_from_entity(entity)


FEW_USERS = 15  # named users per targeted query
# Targeted queries at once, at most: up to 60 users (a notification message names at most 50).
# More users: the whole snapshot in one paged read.
FEW_QUERIES = 4


class AssignmentRepository(Repository):
    """Table `{prefix}assignments`: partition = principal type ("User" / "Group"), row = principal id."""

    @storage_call
    async def load(self) -> dict[str, Assignment]:
        """The stored snapshot, keyed by principal id."""
        snapshot: dict[str, Assignment] = {}
        async for entity in self._table.list_entities(results_per_page=1000):
            assignment = assignment_from_entity(entity)
            snapshot[assignment.principal_id] = assignment
        return snapshot

    @storage_call
    async def replace(self, snapshot: Mapping[str, Assignment]) -> SnapshotWrite:
        """Make the stored snapshot equal to `snapshot`, writing only rows that differ.

        One paged read, then upserts of new/changed principals and deletes of the ones gone,
        in transactions of up to 100 per partition. Not atomic across partitions or batches: a
        crash midway leaves a mix, which the next replace() repairs.
        """
        stored = await self.load()
        operations: list[Operation] = []
        upserted = deleted = 0
        for principal_id, old in stored.items():
            new = snapshot.get(principal_id)
            if new is None or new.principal_type != old.principal_type:
                operations.append(delete(old.principal_type, old.principal_id))
                deleted += 1
        for assignment in snapshot.values():
            if stored.get(assignment.principal_id) != assignment:
                operations.append(upsert(assignment_to_entity(assignment)))
                upserted += 1
        if operations:
            await submit_batches(self._table, operations)
        return SnapshotWrite(upserted=upserted, deleted=deleted)

    @storage_call
    async def get(self, principal_id: str, principal_type: str) -> Assignment | None:
        """One principal's stored assignment (a point read), or None."""
        try:
            entity = await self._table.get_entity(principal_type, principal_id)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None
        return assignment_from_entity(entity)

    @storage_call
    async def of_type(self, principal_type: str) -> dict[str, Assignment]:
        """The stored assignments of one principal type ("Group": as many as the app has groups)."""
        rows = self._table.query_entities("PartitionKey eq @t", parameters={"t": principal_type}, results_per_page=1000)
        return {a.principal_id: a async for a in _assignments(rows)}

    @storage_call
    async def for_users(self, user_ids: list[str]) -> tuple[dict[str, Assignment], dict[str, Assignment]]:
        """(the named users' own assignments, every group assignment): a query per FEW_USERS
        named users (the first also returns the groups), at once, for up to FEW_QUERIES of them;
        what a targeted run needs, at a cost that does not grow with the tenant. More users: the
        whole snapshot in one paged read."""
        if len(user_ids) > FEW_USERS * FEW_QUERIES:
            everything = await self.load()
            users = {u: a for u in user_ids if (a := everything.get(u)) is not None and a.principal_type == "User"}
            return users, {pid: a for pid, a in everything.items() if a.principal_type == "Group"}
        chunks = [user_ids[i : i + FEW_USERS] for i in range(0, len(user_ids), FEW_USERS)] or [[]]
        answers = await asyncio.gather(*(self._named(chunk, groups=i == 0) for i, chunk in enumerate(chunks)))
        found = [a for answer in answers for a in answer]
        return (
            {a.principal_id: a for a in found if a.principal_type == "User"},
            {a.principal_id: a for a in found if a.principal_type == "Group"},
        )

    async def _named(self, user_ids: list[str], *, groups: bool) -> list[Assignment]:
        """The named users' rows (at most FEW_USERS), and every group's when `groups`."""
        wanted = " or ".join(f"RowKey eq @u{i}" for i in range(len(user_ids)))
        # The SDK substitutes a parameter up to the next space: keep one after each.
        named = f"( PartitionKey eq 'User' and ( {wanted} ) )" if user_ids else ""
        query = " or ".join(part for part in ("PartitionKey eq 'Group'" if groups else "", named) if part)
        params = {f"u{i}": check_key(uid, "user id") for i, uid in enumerate(user_ids)}
        return [
            a async for a in _assignments(self._table.query_entities(query, parameters=params, results_per_page=1000))
        ]

    @storage_call
    async def upsert(self, assignment: Assignment) -> None:
        await self._table.upsert_entity(assignment_to_entity(assignment), mode=UpdateMode.REPLACE)

    @storage_call
    async def delete(self, principal_id: str, principal_type: str) -> None:
        """Remove one principal (nothing happens if it is not stored)."""
        await self._table.delete_entity(principal_type, principal_id)
