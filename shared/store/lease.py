"""Named leases with a time-to-live, so that two cycles (or two keepers) never run at once.

Exclusivity comes from the table itself: a free lease is taken by inserting its row (only one
insert can succeed), a held or expired one is changed only under the ETag that was read, and
renew and release are conditional on the holder's ETag. No clock is trusted beyond comparing
one instance's `now` with the expiry another instance wrote: keep ttl well above clock skew.

Each acquisition increments the row's fencing token, so every holder has a number no earlier
holder had; a release frees the row but keeps the counter. `LeaseHeartbeat` renews a held lease
in the background and says at once when a renewal failed: the holder must stop writing then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.errors import ErrorPolicy, GotosyncError
from shared.model import utcnow

from ._base import Repository, row_missing, storage_call
from ._codec import as_int, check_key, dt_from_entity, int64, utc

log = logging.getLogger("gotosync.lease")

PARTITION = "lease"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ATTEMPTS = 3  # insert/read/replace rounds before giving up when the row keeps appearing and vanishing


@dataclass
class Lease:
    """A lease this process holds; renew() updates `expires` and `etag` in place."""

    name: str
    owner: str
    expires: datetime
    etag: str
    ttl_seconds: float = 0.0
    fence: int = 0  # the fencing token: higher than any earlier holder's
    renewed: datetime | None = None  # the holder's last heartbeat

    def expired(self, now: datetime | None = None) -> bool:
        return utc(now or utcnow()) >= self.expires

    @property
    def free(self) -> bool:
        """Released (no owner); an expired lease still names its last owner."""
        return not self.owner


class LeaseRepository(Repository):
    """Table `{prefix}lease`: partition "lease", one row per lease name."""

    def _entity(self, name: str, owner: str, now: datetime, ttl_seconds: float, fence: int) -> dict[str, Any]:
        return {
            "PartitionKey": PARTITION,
            "RowKey": name,
            "owner": owner,
            "expires": now + timedelta(seconds=ttl_seconds),
            "renewed": now,
            "fence": int64(fence),
        }

    @storage_call
    async def acquire(self, name: str, owner: str, ttl_seconds: float, *, now: datetime | None = None) -> Lease | None:
        """Take lease `name` for `owner` until now + ttl, or None while someone else holds it.

        An expired lease is taken over; `owner` re-acquiring its own lease extends it.
        Of two concurrent acquirers exactly one gets the lease.
        """
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        check_key(name, "lease name")
        now = utc(now or utcnow())
        for _ in range(_ATTEMPTS):
            entity = self._entity(name, owner, now, ttl_seconds, 1)
            try:
                answer = await self._table.create_entity(entity)
                return Lease(name, owner, entity["expires"], answer["etag"], ttl_seconds, 1, now)
            except ResourceExistsError:
                pass
            try:
                current = await self._table.get_entity(PARTITION, name)
            except ResourceNotFoundError as exc:
                if not row_missing(exc):
                    raise
                continue  # released between our insert and our read: insert again
            expires = dt_from_entity(current.get("expires"))
            holder = current.get("owner") or ""
            if holder and holder != owner and expires is not None and expires > now:
                return None
            fence = as_int(current.get("fence")) + (0 if holder == owner else 1)
            entity = self._entity(name, owner, now, ttl_seconds, fence)
            try:
                answer = await self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                return None  # another acquirer (or the holder renewing) wrote first
            except ResourceNotFoundError as exc:
                if not row_missing(exc):
                    raise
                continue
            return Lease(name, owner, entity["expires"], answer["etag"], ttl_seconds, fence, now)
        return None

    @storage_call
    async def renew(self, lease: Lease, ttl_seconds: float | None = None, *, now: datetime | None = None) -> bool:
        """Extend `lease` to now + ttl (default: its own ttl). False when it was lost to another owner."""
        ttl = lease.ttl_seconds if ttl_seconds is None else ttl_seconds
        now = utc(now or utcnow())
        entity = self._entity(lease.name, lease.owner, now, ttl, lease.fence)
        try:
            answer = await self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=lease.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return False
        lease.expires = entity["expires"]
        lease.etag = answer["etag"]
        lease.ttl_seconds = ttl
        lease.renewed = now
        return True

    @storage_call
    async def release(self, lease: Lease) -> None:
        """Give the lease up (the row stays, ownerless, keeping its fencing counter); does
        nothing if it was already taken over or released."""
        now = utcnow()
        entity = {**self._entity(lease.name, "", now, 0, lease.fence), "expires": _EPOCH}
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            await self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=lease.etag, match_condition=MatchConditions.IfNotModified
            )

    @storage_call
    async def get(self, name: str) -> Lease | None:
        """Who holds lease `name` and until when (expired leases included), or None if nobody
        does (never taken, or released)."""
        try:
            entity = await self._table.get_entity(PARTITION, name)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None
        lease = _lease_from_entity(entity)
        return None if lease.free else lease


def _lease_from_entity(entity: TableEntity) -> Lease:
    expires = dt_from_entity(entity.get("expires")) or _EPOCH
    renewed = dt_from_entity(entity.get("renewed"))
    ttl = max((expires - renewed).total_seconds(), 0.0) if renewed is not None else 0.0
    return Lease(
        entity["RowKey"],
        entity.get("owner", ""),
        expires,
        entity.metadata["etag"],
        ttl,
        as_int(entity.get("fence")),
        renewed,
    )


class LeaseLost(GotosyncError):
    """The lease could not be renewed (taken over, or storage unreachable): stop writing."""

    code = "LeaseLost"
    policy = ErrorPolicy.STOP
    exit_code = 3
    http_status = 409
    heading = "stopped"


class LeaseHeartbeat:
    """Renews `lease` every `interval` seconds while the holder works. A renewal that fails
    (the lease was taken over, or storage cannot be reached) sets `lost`; `check()` then raises
    LeaseLost, and the holder must stop writing at once."""

    def __init__(self, repo: LeaseRepository, lease: Lease, interval: float) -> None:
        self.repo = repo
        self.lease = lease
        self.interval = interval
        self.lost = asyncio.Event()
        self.why = ""
        self._task: asyncio.Task[None] | None = None
        # One renewal at a time: the heartbeat and a checkpoint renewing at once would each
        # present the same ETag, and the loser would take itself for taken over.
        self._renewing = asyncio.Lock()

    async def __aenter__(self) -> LeaseHeartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(f"lease {self.lease.name!r} (fence {self.lease.fence}) was lost: {self.why}")

    async def renew_now(self) -> None:
        """One renewal now (at a checkpoint); LeaseLost if it fails."""
        await self._renew()
        self.check()

    async def _beat(self) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(self.interval)
            await self._renew()

    async def _renew(self) -> None:
        async with self._renewing:
            await self._renew_once()

    async def _renew_once(self) -> None:
        if self.lost.is_set():
            return
        try:
            renewed = await self.repo.renew(self.lease)
        except Exception as exc:  # a storage outage: we cannot prove we still hold it
            self.why = f"renewal failed: {type(exc).__name__}: {exc}"
            self.lost.set()
            log.error("cycle lease lost, stopping: %s", self.why)
            return
        if not renewed:
            self.why = "another holder took it over (its heartbeat was missed)"
            self.lost.set()
            log.error("cycle lease lost, stopping: %s", self.why)
