"""One request budget per GoTo API, shared by every process of an installation: the timer's
cycle, the queue worker's instances, the admin API's on-demand runs and the CLI.

GoTo counts all of an account's calls to one API together, whichever instance sends them. The
budget is a schedule kept in one row per API: `next` is the first send time nobody has taken
yet. A process takes a run of `count` slots `interval` apart with one conditional update (the
ETag it read), so two processes never hold the same slot: the loser of a race reads the row
again and takes the slots after the winner's. Times are Unix microseconds: the processes compare
their own clocks with the one that wrote the row, so clock skew between instances shifts slots by
that skew (milliseconds where clocks are synchronised).

The rows live in the lease table (partition "budget"): like a lease they coordinate processes,
and they cost no table of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from ._base import Repository, row_missing, storage_call
from ._codec import as_int, check_key, int64
from .errors import ConcurrencyError

log = logging.getLogger("gotosync.budget")

PARTITION = "budget"
ATTEMPTS = 8  # conditional rounds before a reservation gives up (each lost round means another process won)
MICROS = 1_000_000


@dataclass(frozen=True)
class Reservation:
    """A run of `count` slots: the first at `start` (Unix seconds), each `interval` after the last."""

    start: float
    count: int
    interval: float

    def slots(self) -> list[float]:
        return [self.start + i * self.interval for i in range(self.count)]


@dataclass
class _Known:
    next_us: int
    etag: str


class BudgetRepository(Repository):
    """Table `{prefix}lease`, partition "budget": one row per budget name (e.g. "goto-scim")."""

    def __init__(self, table: Any, endpoint: str) -> None:
        super().__init__(table, endpoint)
        # The row as this process last wrote it: the next reservation tries that ETag first and
        # reads the row only when another process wrote in between (one round trip, not two).
        self._known: dict[str, _Known] = {}

    @storage_call
    async def reserve(
        self, name: str, count: int, interval: float, *, now: float, not_before: float = 0.0, horizon: float = 0.0
    ) -> Reservation:
        """Takes `count` consecutive slots `interval` seconds apart, the first at the row's `next`
        or `now` (or `not_before`), whichever is latest, and moves `next` past them.

        `horizon` > 0: a `next` more than that far beyond `now` is taken for a wrong clock (the
        process that wrote it runs ahead), not a queue: the run starts at `now` instead, and a
        warning says so. Raises ConcurrencyError when other processes won every one of the
        ATTEMPTS rounds."""
        check_key(name, "budget name")
        if count < 1 or interval <= 0:
            raise ValueError("a reservation takes count >= 1 slots, interval > 0 apart")
        earliest = _us(max(now, not_before))
        span = round(interval * MICROS) * count
        for _ in range(ATTEMPTS):
            known = self._known.get(name) or await self._read(name)
            if known is None:
                if await self._insert(name, earliest + span):
                    return Reservation(earliest / MICROS, count, interval)
                continue  # another process inserted it first: read theirs
            start = max(known.next_us, earliest)
            if horizon > 0 and start - _us(now) > _us(horizon):
                log.warning(
                    "the shared GoTo budget %r is booked %.0f s ahead of this machine's clock: a clock is wrong; "
                    "starting from now",
                    name,
                    (start - _us(now)) / MICROS,
                )
                start = earliest
            if await self._update(name, start + span, known.etag):
                return Reservation(start / MICROS, count, interval)
        raise ConcurrencyError(self.table_name, PARTITION, name, f"lost {ATTEMPTS} rounds to other processes")

    @storage_call
    async def peek(self, name: str) -> float | None:
        """The row's `next` (Unix seconds), or None when no process has reserved yet."""
        known = await self._read(name)
        return None if known is None else known.next_us / MICROS

    async def _read(self, name: str) -> _Known | None:
        try:
            entity = await self._table.get_entity(PARTITION, name)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None
        known = _Known(as_int(entity.get("next")), entity.metadata["etag"])
        self._known[name] = known
        return known

    async def _insert(self, name: str, next_us: int) -> bool:
        try:
            answer = await self._table.create_entity(_entity(name, next_us))
        except ResourceExistsError:
            return False
        self._known[name] = _Known(next_us, answer["etag"])
        return True

    async def _update(self, name: str, next_us: int, etag: str) -> bool:
        try:
            answer = await self._table.update_entity(
                _entity(name, next_us),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            if isinstance(exc, ResourceNotFoundError) and not row_missing(exc):
                raise
            self._known.pop(name, None)  # someone else wrote (or removed) it: read it again
            return False
        self._known[name] = _Known(next_us, answer["etag"])
        return True


def _entity(name: str, next_us: int) -> dict[str, Any]:
    return {"PartitionKey": PARTITION, "RowKey": name, "next": int64(next_us)}


def _us(seconds: float) -> int:
    return round(seconds * MICROS)
