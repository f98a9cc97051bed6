"""The messages on the notification queue, typed: built by the webhook intake and the
assignment watch, parsed once by the queue worker. A message is a batch of pings (each names an
object that changed, never its new state)."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VERSION = 1


class ItemKind(enum.StrEnum):
    USER = "user"
    GROUP = "group"  # a group's members changed (its member subscription)
    LIFECYCLE = "lifecycle"


@dataclass(frozen=True)
class QueueItem:
    kind: ItemKind
    id: str = ""  # the object (user or group) id; "" for a lifecycle event
    change_type: str = ""  # created | updated | deleted | assignment
    subscription_id: str = ""
    event: str = ""  # lifecycle: reauthorizationRequired | subscriptionRemoved | missed

    def to_json(self) -> dict[str, str]:
        if self.kind is ItemKind.LIFECYCLE:
            return {"kind": self.kind.value, "event": self.event, "subscriptionId": self.subscription_id}
        doc = {"kind": self.kind.value, "id": self.id, "changeType": self.change_type}
        if self.subscription_id:
            doc["subscriptionId"] = self.subscription_id
        return doc


@dataclass(frozen=True)
class QueueMessage:
    items: tuple[QueueItem, ...]
    received_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"v": VERSION, "items": [i.to_json() for i in self.items]}
        if self.received_at is not None:
            doc["receivedAt"] = self.received_at.isoformat()
        return doc

    @property
    def users(self) -> set[str]:
        return {i.id for i in self.items if i.kind is ItemKind.USER and i.id}

    @property
    def groups(self) -> dict[str, str]:
        """group id -> the subscription that reported it."""
        return {i.id: i.subscription_id for i in self.items if i.kind is ItemKind.GROUP and i.id}

    @property
    def lifecycle(self) -> list[QueueItem]:
        return [i for i in self.items if i.kind is ItemKind.LIFECYCLE]


def user_pings(user_ids: Iterable[str], change_type: str) -> tuple[QueueItem, ...]:
    return tuple(QueueItem(ItemKind.USER, uid, change_type) for uid in user_ids)


def parse_message(raw: bytes | str | dict[str, Any]) -> QueueMessage:
    """The queue body as a QueueMessage; ValueError naming what is wrong. Items of an unknown
    kind or without the fields their kind needs are dropped (the intake never writes them)."""
    body = raw if isinstance(raw, dict) else json.loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ValueError("queue message has no items list")
    items = tuple(item for item in (_item(i) for i in body["items"]) if item is not None)
    return QueueMessage(items, _time(body.get("receivedAt")))


def _item(raw: Any) -> QueueItem | None:
    if not isinstance(raw, dict) or raw.get("kind") not in {k.value for k in ItemKind}:
        return None
    kind = ItemKind(raw["kind"])
    text = {k: str(raw.get(k) or "") for k in ("id", "changeType", "subscriptionId", "event")}
    if kind is ItemKind.LIFECYCLE:
        return QueueItem(kind, subscription_id=text["subscriptionId"], event=text["event"])
    if not text["id"]:
        return None
    return QueueItem(kind, text["id"], text["changeType"], text["subscriptionId"])


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
