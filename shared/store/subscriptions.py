"""Graph change-notification subscriptions that gotosync owns: what each watches, when it
expires, its clientState secret, and (for group-member subscriptions) the group's delta link."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from ._base import Repository, row_missing, storage_call
from ._codec import bounded_text, check_key, dt_from_entity, dt_to_entity

PARTITION = "sub"
EVENTS = "event"  # lifecycle events already handled: row = "{subscription id}_{event}"


@dataclass
class SubscriptionRecord:
    id: str
    resource: str  # "/users", "/groups", "/groups/{id}/members"
    change_type: str
    expires: datetime
    client_state: str  # per-subscription secret, compared in constant time on every notification
    group_id: str = ""
    delta_link: str = ""  # for "/groups/{id}/members": where the next membership delta round starts
    created: datetime | None = None
    etag: str | None = None


def _to_entity(sub: SubscriptionRecord) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": check_key(sub.id, "subscription id"),
        "resource": bounded_text(sub.resource),
        "change_type": sub.change_type,
        "expires": dt_to_entity(sub.expires),
        "client_state": sub.client_state,
        "group_id": sub.group_id,
        "delta_link": sub.delta_link,
        "created": dt_to_entity(sub.created),
    }


def _from_entity(entity: TableEntity) -> SubscriptionRecord:
    expires = dt_from_entity(entity.get("expires"))
    assert expires is not None
    return SubscriptionRecord(
        id=entity["RowKey"],
        resource=entity.get("resource", ""),
        change_type=entity.get("change_type", ""),
        expires=expires,
        client_state=entity.get("client_state", ""),
        group_id=entity.get("group_id", ""),
        delta_link=entity.get("delta_link", ""),
        created=dt_from_entity(entity.get("created")),
        etag=entity.metadata.get("etag"),
    )


class SubscriptionRepository(Repository):
    """Table `{prefix}subscriptions`: partition "sub", row = Graph subscription id; partition
    "event", row = "{subscription id}_{lifecycle event}" (when that event was last handled)."""

    @storage_call
    async def get(self, sub_id: str) -> SubscriptionRecord | None:
        try:
            entity = await self._table.get_entity(PARTITION, sub_id)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return None
        return _from_entity(entity)

    @storage_call
    async def put(self, sub: SubscriptionRecord) -> SubscriptionRecord:
        answer = await self._table.upsert_entity(_to_entity(sub), mode=UpdateMode.REPLACE)
        return dataclasses.replace(sub, etag=answer["etag"])

    @storage_call
    async def delete(self, sub_id: str) -> None:
        await self._table.delete_entity(PARTITION, sub_id)

    @storage_call
    async def all(self) -> list[SubscriptionRecord]:
        query = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})
        return [_from_entity(e) async for e in query]

    @storage_call
    async def delete_if_unchanged(self, sub: SubscriptionRecord) -> bool:
        """Deletes the record only if nobody changed or deleted it since it was read (its etag):
        of several workers acting on one subscription, exactly one gets True."""
        if sub.etag is None:
            raise ValueError(f"subscription record {sub.id} has no etag: read it before a conditional delete")
        # A conditional update first: the service answers 412 or 404 to all but one of them (a
        # delete of a row that is already gone raises nothing in azure-data-tables).
        marker = {"PartitionKey": PARTITION, "RowKey": sub.id, "recreating": True}
        try:
            answer = await self._table.update_entity(
                marker, mode=UpdateMode.MERGE, etag=sub.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return False
        await self._table.delete_entity(
            PARTITION, sub.id, etag=answer["etag"], match_condition=MatchConditions.IfNotModified
        )
        return True

    @storage_call
    async def claim_event(self, sub_id: str, event: str, now: datetime, window: timedelta | None) -> bool:
        """True for the first claim of (subscription, lifecycle event), and again once `window`
        has passed since the last one (None: never again). A conditional insert, then a
        conditional replace: concurrent claims of one event get True exactly once."""
        row = f"{check_key(sub_id, 'subscription id')}_{check_key(event, 'lifecycle event')}"
        entity = {"PartitionKey": EVENTS, "RowKey": row, "at": dt_to_entity(now)}
        try:
            await self._table.create_entity(entity)
            return True
        except ResourceExistsError:
            pass
        try:
            current = await self._table.get_entity(EVENTS, row)
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
            return False  # released meanwhile by a failing claimant: its retry will handle it
        last = dt_from_entity(current.get("at"))
        if window is None or (last is not None and now - last < window):
            return False
        try:
            await self._table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    @storage_call
    async def release_event(self, sub_id: str, event: str) -> None:
        """Undoes a claim whose handling failed, so that the queue's retry handles it again."""
        try:
            await self._table.delete_entity(EVENTS, f"{sub_id}_{event}")
        except ResourceNotFoundError as exc:
            if not row_missing(exc):
                raise
