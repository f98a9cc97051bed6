"""Named leases with a time-to-live, so that two cycles (or two keepers) never run at once.

Exclusivity comes from the table itself: a free lease is taken by inserting its row (only one
insert can succeed), a held or expired one is changed only under the ETag that was read, and
renew and release are conditional on the holder's ETag. No clock is trusted beyond comparing
one instance's `now` with the expiry another instance wrote: keep ttl well above clock skew.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.model import utcnow

from ._base import Repository, row_missing, storage_call
from ._codec import check_key, dt_from_entity, utc

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

    def expired(self, now: datetime | None = None) -> bool:
        return utc(now or utcnow()) >= self.expires


class LeaseRepository(Repository):
    """Table `{prefix}lease`: partition "lease", one row per lease name."""

    def _entity(self, name: str, owner: str, now: datetime, ttl_seconds: float) -> dict[str, Any]:
        return {
            "PartitionKey": PARTITION,
            "RowKey": name,
            "owner": owner,
            "expires": now + timedelta(seconds=ttl_seconds),
            "renewed": now,
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
        entity = self._entity(name, owner, now, ttl_seconds)
        for _ in range(_ATTEMPTS):
            try:
                answer = await self._table.create_entity(entity)
                return Lease(name, owner, entity["expires"], answer["etag"], ttl_seconds)
            except ResourceExistsError:
                pass
            try:
                current = await self._table.get_entity(PARTITION, name)
            except ResourceNotFoundError as exc:
                if not row_missing(exc):
                    raise
                continue  # released between our insert and our read: insert again
            expires = dt_from_entity(current.get("expires"))
            if current.get("owner") != owner and expires is not None and expires > now:
                return None
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
            return Lease(name, owner, entity["expires"], answer["etag"], ttl_seconds)
        return None

    @storage_call
    async def renew(self, lease: Lease, ttl_seconds: float | None = None, *, now: datetime | None = None) -> bool:
        """Extend `lease` to now + ttl (default: its own ttl). False when it was lost to another owner."""
        ttl = lease.ttl_seconds if ttl_seconds is None else ttl_seconds
        now = utc(now or utcnow())
        entity = self._entity(lease.name, lease.owner, now, ttl)
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
        return True

    @storage_call
    async def release(self, lease: Lease) -> None:
        """Give the lease up; does nothing if it was already taken over or released."""
        with contextlib.suppress(ResourceModifiedError):  # the SDK already ignores a 404 on delete
            await self._table.delete_entity(
                PARTITION, lease.name, etag=lease.etag, match_condition=MatchConditions.IfNotModified
            )

    @storage_call
    async def get(self, name: str) -> Lease | None:
        """Who holds lease `name` and until when (expired leases included), or None if there is none."""
        try:
            entity = await self._table.get_entity(PARTITION, name)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None
        return _lease_from_entity(entity)


def _lease_from_entity(entity: TableEntity) -> Lease:
    expires = dt_from_entity(entity.get("expires")) or _EPOCH
    renewed = dt_from_entity(entity.get("renewed"))
    ttl = (expires - renewed).total_seconds() if renewed is not None else 0.0
    return Lease(entity["RowKey"], entity.get("owner", ""), expires, entity.metadata["etag"], ttl)
