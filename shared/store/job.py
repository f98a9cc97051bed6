"""The provisioning job's one state row: on/off, quarantine, current and last cycle, watermarks.

Every write is conditional on the ETag read with it, so a checkpoint from a cycle never
silently overwrites an admin's "stop" (or the other way round).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.model import CycleKind, CycleProgress, Initiator, JobState

from ._base import Repository, row_missing, storage_call
from ._codec import as_int, bounded_text, dt_from_entity, dt_to_entity, dt_to_iso, from_json, int64, to_json
from .errors import ConcurrencyError

PARTITION = "job"
ROW = "state"


def progress_to_dict(progress: CycleProgress) -> dict[str, Any]:
    return {
        "cycle_id": progress.cycle_id,
        "kind": progress.kind.value,
        "initiated_by": progress.initiated_by.value,
        "started": dt_to_iso(progress.started),
        "ended": dt_to_iso(progress.ended),
        "total": progress.total,
        "processed": progress.processed,
        "counts": dict(progress.counts),
        "dry_run": progress.dry_run,
        "continuing": progress.continuing,
        "invocations": progress.invocations,
        "delta_links": list(progress.delta_links),
    }


def progress_from_dict(data: dict[str, Any]) -> CycleProgress:
    return CycleProgress(
        cycle_id=data.get("cycle_id", ""),
        kind=CycleKind(data.get("kind", CycleKind.INITIAL.value)),
        initiated_by=Initiator(data.get("initiated_by", Initiator.TIMER.value)),
        started=dt_from_entity(data.get("started")),
        ended=dt_from_entity(data.get("ended")),
        total=int(data.get("total", 0)),
        processed=int(data.get("processed", 0)),
        counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
        dry_run=bool(data.get("dry_run", False)),
        continuing=bool(data.get("continuing", False)),
        invocations=int(data.get("invocations", 1)),
        delta_links=_pair(data.get("delta_links")),
    )


def _pair(value: Any) -> tuple[str, str]:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (value[0], value[1])
    return ("", "")


def job_to_entity(state: JobState) -> dict[str, Any]:
    # Delta links are opaque URLs of a few hundred characters: stored whole, never clipped
    # (a clipped watermark would be worse than none). CycleProgress stays small (its counts are
    # keyed by action/status pairs), so it needs no bound either.
    return {
        "PartitionKey": PARTITION,
        "RowKey": ROW,
        "enabled": state.enabled,
        "quarantine_reason": state.quarantine_reason,
        "quarantined_since": dt_to_entity(state.quarantined_since),
        "current": None if state.current is None else to_json(progress_to_dict(state.current)),
        "last": None if state.last is None else to_json(progress_to_dict(state.last)),
        "last_success": dt_to_entity(state.last_success),
        "users_delta_link": state.users_delta_link,
        "groups_delta_link": state.groups_delta_link,
        "config_hash": state.config_hash,
        "assignments_hash": state.assignments_hash,
        "staged_deletes": int64(state.staged_deletes),
        "allow_deletes_once": state.allow_deletes_once,
        "managed_users": int64(state.managed_users),
        "last_stop": bounded_text(state.last_stop),
        "last_stop_at": dt_to_entity(state.last_stop_at),
    }


def job_from_entity(entity: TableEntity) -> JobState:
    current = from_json(entity.get("current"), None)
    last = from_json(entity.get("last"), None)
    return JobState(
        enabled=bool(entity.get("enabled", True)),
        quarantine_reason=entity.get("quarantine_reason", ""),
        quarantined_since=dt_from_entity(entity.get("quarantined_since")),
        current=None if current is None else progress_from_dict(current),
        last=None if last is None else progress_from_dict(last),
        last_success=dt_from_entity(entity.get("last_success")),
        users_delta_link=entity.get("users_delta_link", ""),
        groups_delta_link=entity.get("groups_delta_link", ""),
        config_hash=entity.get("config_hash", ""),
        assignments_hash=entity.get("assignments_hash", ""),
        staged_deletes=as_int(entity.get("staged_deletes")),
        allow_deletes_once=bool(entity.get("allow_deletes_once", False)),
        etag=entity.metadata.get("etag"),
        managed_users=as_int(entity.get("managed_users")),
        last_stop=entity.get("last_stop", ""),
        last_stop_at=dt_from_entity(entity.get("last_stop_at")),
    )


class JobRepository(Repository):
    """Table `{prefix}job`, one row ("job", "state")."""

    @storage_call
    async def get(self) -> JobState:
        """The stored state with its ETag; defaults (etag None) when none was ever saved."""
        try:
            entity = await self._table.get_entity(PARTITION, ROW)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return JobState()
        return job_from_entity(entity)

    @storage_call
    async def save(self, state: JobState) -> JobState:
        """Write `state` if the row is still the one `state.etag` was read with (insert if etag is None).

        Returns a copy carrying the new ETag; `state` itself is left as it was.
        Raises ConcurrencyError when another writer saved in between.
        """
        entity = job_to_entity(state)
        try:
            if state.etag is None:
                answer = await self._table.create_entity(entity)
            else:
                answer = await self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=state.etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError as exc:
            raise ConcurrencyError(self.table_name, PARTITION, ROW, "another writer created the job state") from exc
        except ResourceModifiedError as exc:
            raise ConcurrencyError(self.table_name, PARTITION, ROW) from exc
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            raise ConcurrencyError(self.table_name, PARTITION, ROW, "the job state was deleted meanwhile") from exc
        return dataclasses.replace(state, etag=answer["etag"])

    async def update(self, mutator: Callable[[JobState], None], retries: int = 5) -> JobState:
        """Read, apply `mutator` (in place), save; on an ETag conflict re-read and apply again.

        `mutator` must be idempotent on a fresh read (it may run up to `retries + 1` times).
        Raises ConcurrencyError when every attempt lost.
        """
        if retries < 0:
            raise ValueError("retries must be >= 0")
        for attempt in range(retries + 1):
            state = await self.get()
            mutator(state)
            try:
                return await self.save(state)
            except ConcurrencyError:
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
