"""Real-time health for the console: the Graph subscriptions gotosync holds, the last change that
came in through a notification, and the notification queue's depth (and its poison queue's).

Each part is read on its own: a queue that cannot be read is reported as such and the other
parts are still shown. Subscription secrets (clientState) and delta links never leave here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from shared.model import Initiator, utcnow
from shared.settings import Settings
from shared.store import Store
from shared.store.subscriptions import SubscriptionRecord

NOTIFICATION_LOOKBACK = timedelta(days=7)
EXPIRING_SOON = timedelta(hours=2)  # the keeper renews every hour: less than two hours left means it missed a run

QueueLength = Callable[[str], Awaitable[int]]  # queue name -> approximate message count


async def queue_length(settings: Settings, name: str) -> int:
    """The approximate message count of queue `name` in gotosync's storage account; 0 when the
    queue does not exist yet (nothing was ever queued). Reads only: the queue is not created."""
    credential: Any = None
    if settings.storage_connection_string:
        client = QueueClient.from_connection_string(settings.storage_connection_string, name)
    elif settings.storage_table_endpoint:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
        client = QueueClient(settings.storage_table_endpoint.replace(".table.", ".queue."), name, credential=credential)
    else:
        raise ValueError("no storage configured (GOTOSYNC_STORAGE or GOTOSYNC_TABLE_ENDPOINT)")
    try:
        props = await client.get_queue_properties()
        return int(props.approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0
    finally:
        await client.close()
        if credential is not None:
            await credential.close()


def subscription_document(sub: SubscriptionRecord, now: datetime) -> dict[str, Any]:
    left = sub.expires - now
    state = "expired" if left <= timedelta(0) else "expiring" if left < EXPIRING_SOON else "active"
    return {
        "id": sub.id,
        "resource": sub.resource,
        "changeType": sub.change_type,
        "expires": sub.expires.isoformat(),
        "minutesLeft": max(int(left.total_seconds() // 60), 0),
        "state": state,
    }


async def _depth(length: QueueLength, name: str) -> dict[str, Any]:
    try:
        return {"name": name, "depth": await length(name)}
    except (AzureError, ValueError, OSError) as exc:
        return {"name": name, "depth": None, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


async def realtime_health(
    store: Store, settings: Settings, queue_length: QueueLength, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    subs, last = await asyncio.gather(
        store.subscriptions.all(),
        store.logs.query(initiated_by=Initiator.WEBHOOK, since=now - NOTIFICATION_LOOKBACK, limit=1),
    )
    queue, poison = await asyncio.gather(
        _depth(queue_length, settings.notification_queue), _depth(queue_length, f"{settings.notification_queue}-poison")
    )
    documents = sorted((subscription_document(s, now) for s in subs), key=lambda d: d["resource"])
    return {
        "notificationsOn": bool(settings.graph_notification_url),
        "subscriptions": documents,
        "subscriptionsNeedingAttention": sum(1 for d in documents if d["state"] != "active"),
        "lastNotification": None
        if not last
        else {
            "time": last[0].at.isoformat(),
            "user": last[0].source_name,
            "action": last[0].action.value,
            "status": last[0].status.value,
            "changeId": last[0].change_id,
        },
        "lookbackDays": NOTIFICATION_LOOKBACK.days,
        "queue": queue,
        "poisonQueue": poison,
    }
