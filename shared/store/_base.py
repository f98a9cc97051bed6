"""What every repository shares: its table client, storage errors turned into `StoreError`, and
entity transactions cut to Table Storage's limits."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from .errors import StoreError

# Entity group transactions: at most 100 operations, one partition, 4 MiB of payload.
MAX_BATCH_OPERATIONS = 100
MAX_BATCH_BYTES = 3_500_000  # below 4 MiB, leaving room for the multipart envelope of each operation
BATCH_CONCURRENCY = 8  # transactions in flight at once, for one bulk write

Operation = tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], Mapping[str, Any]]

P = ParamSpec("P")
R = TypeVar("R")
RepoT = TypeVar("RepoT", bound="Repository")


def row_missing(exc: ResourceNotFoundError) -> bool:
    """A 404 about the row, not about the table: a missing table must surface as a StoreError,
    never read as "no such row" (which would hand out defaults or count as a lost race)."""
    return "TableNotFound" not in str(exc)


class Repository:
    """One table of the store."""

    def __init__(self, table: TableClient, endpoint: str) -> None:
        self._table = table
        self._endpoint = endpoint

    @property
    def table_name(self) -> str:
        return self._table.table_name

    @property
    def endpoint(self) -> str:
        return self._endpoint


def storage_call(
    fn: Callable[Concatenate[RepoT, P], Awaitable[R]],
) -> Callable[Concatenate[RepoT, P], Coroutine[Any, Any, R]]:
    """Turn any storage failure the method did not handle into a `StoreError` naming the endpoint."""

    @functools.wraps(fn)
    async def wrapper(self: RepoT, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(self, *args, **kwargs)
        except AzureError as exc:
            raise StoreError.from_azure(
                exc, endpoint=self.endpoint, table=self.table_name, operation=fn.__qualname__
            ) from exc

    return wrapper


def upsert(entity: Mapping[str, Any]) -> Operation:
    """A blind whole-row write (replace, not merge: properties absent from `entity` are removed)."""
    return ("upsert", entity, {"mode": UpdateMode.REPLACE})


def delete(partition_key: str, row_key: str) -> Operation:
    return ("delete", {"PartitionKey": partition_key, "RowKey": row_key})


def _approx_size(entity: Mapping[str, Any]) -> int:
    return len(json.dumps(entity, default=str)) + 300


async def submit_batches(
    table: TableClient, operations: Sequence[Operation], *, concurrency: int = BATCH_CONCURRENCY
) -> list[Mapping[str, Any]]:
    """Apply `operations` as entity transactions: grouped by partition, ≤ 100 and < 4 MiB each.

    Operations on the same row collapse to the last one (a transaction may name a row only
    once, and applying them in order would leave the last one's result anyway). A delete of a
    row that is already gone is dropped and its transaction retried, so purges may race.
    Transactions run `concurrency` at a time; each is atomic, the whole call is not.
    Returns the service's response metadata (with the new `etag`) for each input operation.
    """
    results: list[Mapping[str, Any]] = [{} for _ in operations]
    winners: dict[tuple[str, str], int] = {}
    same_row: dict[int, list[int]] = {}
    for index, op in enumerate(operations):
        key = (str(op[1]["PartitionKey"]), str(op[1]["RowKey"]))
        previous = winners.get(key)
        winners[key] = index
        same_row[index] = [*same_row.pop(previous, []), index] if previous is not None else [index]

    by_partition: dict[str, list[int]] = {}
    for (partition, _), index in winners.items():
        by_partition.setdefault(partition, []).append(index)

    chunks: list[list[int]] = []
    for indexes in by_partition.values():
        indexes.sort()
        chunk: list[int] = []
        size = 0
        for index in indexes:
            entity_size = _approx_size(operations[index][1])
            if chunk and (len(chunk) == MAX_BATCH_OPERATIONS or size + entity_size > MAX_BATCH_BYTES):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(index)
            size += entity_size
        if chunk:
            chunks.append(chunk)

    gate = asyncio.Semaphore(concurrency)

    async def run(chunk: list[int]) -> None:
        async with gate:
            pending = list(chunk)
            while pending:
                try:
                    answers = await table.submit_transaction([operations[i] for i in pending])
                except TableTransactionError as exc:
                    failed = pending[exc.index] if 0 <= exc.index < len(pending) else None
                    gone = exc.status_code == 404 and exc.error_code == "ResourceNotFound"
                    if failed is not None and operations[failed][0] == "delete" and gone:
                        pending.remove(failed)
                        continue
                    raise
                for index, answer in zip(pending, answers, strict=True):
                    for original in same_row[index]:
                        results[original] = answer
                return

    outcomes = await asyncio.gather(*(run(c) for c in chunks), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return results
