"""Graph change-notification subscriptions that gotosync owns: what each watches, when it
expires, its clientState secret, and (for group-member subscriptions) the group's delta link."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from ._base import Repository, row_missing, storage_call
from ._codec import bounded_text, check_key, dt_from_entity, dt_to_entity

PARTITION = "sub"


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
    """Table `{prefix}subscriptions`: partition "sub", row = Graph subscription id."""

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
