"""The Graph webhook intake: answers the validation handshake, validates notification batches
(shape, size, clientState in constant time, tenant) and turns the valid ones into queue
messages. It never acts on a notification itself: Graph wants a 2xx within 3 s
(https://learn.microsoft.com/graph/change-notifications-delivery-webhooks), and a notification
is only a ping.

Change notifications and lifecycle notifications are told apart per item (`changeType` or
`lifecycleEvent`, which Graph never sends together), so one route takes both: Graph may deliver
lifecycle notifications to the notification URL itself
(https://learn.microsoft.com/graph/change-notifications-lifecycle-events).

Webhook input is hostile until validated: nothing from the request reaches a log except counts
and our own reason codes, and a request costs at most `MAX_SUBSCRIPTION_LOOKUPS` table reads.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.fanout import bounded
from shared.model import utcnow
from shared.realtime.messages import ItemKind, QueueItem, QueueMessage
from shared.store.subscriptions import SubscriptionRecord

log = logging.getLogger("gotosync.intake")

MAX_BODY_BYTES = 1_000_000  # Graph's batches are a few KB; anything near this is not Graph
MAX_ITEMS = 1_000
MAX_TOKEN_CHARS = 2_048
MAX_CLIENT_STATE_CHARS = 128  # Graph's own limit for clientState
# Distinct subscription ids looked up (one table read each) per request. Graph allows at most
# 100 subscriptions on directory resources per app and tenant, so a real batch never names
# more of ours; ids past the cap are dropped unread and counted as "subscription lookup limit".
MAX_SUBSCRIPTION_LOOKUPS = 100
LOOKUP_CONCURRENCY = 10  # reads in flight at once for one request
ITEMS_PER_MESSAGE = 50  # keeps each queue message far below the 64 KB limit
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
FORGERY_REASONS = frozenset(
    {"clientState mismatch", "wrong tenant", "unknown subscription", "subscription lookup limit"}
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}

SubscriptionLookup = Callable[[str], Awaitable[SubscriptionRecord | None]]
Enqueue = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class IntakeResponse:
    status: int
    body: str = ""
    content_type: str = "application/json"
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))
    lookups: int = 0


def tenant_problem(tenant_id: str) -> str:
    """Why the webhook cannot run with this tenant id ("" when it can). Without it the tenant of
    a notification could not be checked, so the intake refuses to work at all."""
    if not tenant_id:
        return "ENTRA_TENANT_ID is not set: the webhook cannot check the tenant of a notification"
    if not _GUID.match(tenant_id):
        return "ENTRA_TENANT_ID must be the tenant id (a GUID), not a domain name"
    return ""


def misconfigured(setting: str) -> IntakeResponse:
    """500 naming the setting (never its value): Graph retries, the admin sees what to fix."""
    body = json.dumps({"error": "Misconfigured", "setting": setting})
    return IntakeResponse(500, body, rejected={"misconfigured": 1})


def validation_response(token: str) -> IntakeResponse:
    """The handshake: 200, text/plain, the URL-decoded token and nothing else; `nosniff` so that
    no browser ever renders the echo as anything but text."""
    if not token or len(token) > MAX_TOKEN_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in token):
        return IntakeResponse(400, json.dumps({"error": "invalid validationToken"}))
    return IntakeResponse(200, token, "text/plain")


def _error(status: int, reason: str) -> IntakeResponse:
    return IntakeResponse(status, json.dumps({"error": reason}), rejected={reason: 1})


def _parse(body: bytes) -> tuple[list[Any] | None, IntakeResponse | None]:
    if len(body) > MAX_BODY_BYTES:
        return None, _error(413, "body too large")
    try:
        data = json.loads(body)
    except RecursionError:
        # Deeply nested JSON: a client error, never a 500 (Graph would deliver it again).
        return None, _error(400, "body is nested too deeply")
    except (UnicodeDecodeError, ValueError):
        return None, _error(400, "body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        return None, _error(400, "body must be an object with a value array")
    items = data["value"]
    if not items or len(items) > MAX_ITEMS:
        return None, _error(400, f"value must hold 1 to {MAX_ITEMS} notifications")
    return items, None


def _shape_problem(item: Any) -> str:
    if not isinstance(item, dict):
        return "notification is not an object"
    for key in ("subscriptionId", "clientState", "tenantId"):
        if not isinstance(item.get(key), str) or not item[key]:
            return f"notification lacks {key}"
    if len(item["clientState"]) > MAX_CLIENT_STATE_CHARS:
        return "clientState too long"
    if "lifecycleEvent" in item:
        if "changeType" in item:
            return "both changeType and lifecycleEvent"
        return "" if item["lifecycleEvent"] in LIFECYCLE_EVENTS else "unknown lifecycleEvent"
    if item.get("changeType") not in CHANGE_TYPES:
        return "unknown changeType"
    data = item.get("resourceData")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not _GUID.match(data["id"]):
        return "resourceData.id is not a GUID"
    return ""


async def _lookup_all(ids: list[str], lookup: SubscriptionLookup) -> dict[str, SubscriptionRecord | None]:
    """One read per id, at most LOOKUP_CONCURRENCY at once (ids are distinct, capped GUIDs)."""
    found = await bounded(lookup, ids, LOOKUP_CONCURRENCY)
    return dict(zip(ids, found, strict=True))


def _lookup_ids(shaped: list[tuple[Any, str]]) -> list[str]:
    """The distinct, well-formed subscription ids to read, first come first served, capped."""
    ids: list[str] = []
    seen: set[str] = set()
    for item, problem in shaped:
        if problem:
            continue
        sid = item["subscriptionId"]
        if sid not in seen and _GUID.match(sid):
            seen.add(sid)
            ids.append(sid)
            if len(ids) == MAX_SUBSCRIPTION_LOOKUPS:
                break
    return ids


def _raw(text: str) -> bytes:
    """Bytes for a constant-time comparison; JSON may carry lone surrogates, which must not raise."""
    return text.encode("utf-8", "surrogatepass")


def _item_problem(item: dict[str, Any], sub: SubscriptionRecord | None, tenant_id: str) -> str:
    if sub is None:
        return "unknown subscription"
    if not hmac.compare_digest(_raw(sub.client_state), _raw(item["clientState"])):
        return "clientState mismatch"
    if not hmac.compare_digest(_raw(tenant_id.lower()), _raw(item["tenantId"].lower())):
        return "wrong tenant"
    return ""


@dataclass
class _Batch:
    accepted: list[QueueItem] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    lifecycle_seen: set[tuple[str, str]] = field(default_factory=set)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def accept(self, item: dict[str, Any], sub: SubscriptionRecord) -> None:
        message = _message_item(item, sub)
        if message.kind is ItemKind.LIFECYCLE:
            key = (sub.id, message.event)
            if key in self.lifecycle_seen:
                self.reject("duplicate lifecycle notification")
                return
            self.lifecycle_seen.add(key)
        self.accepted.append(message)


async def _validate(items: list[Any], tenant_id: str, lookup: SubscriptionLookup) -> tuple[_Batch, int]:
    shaped = [(item, _shape_problem(item)) for item in items]
    ids = _lookup_ids(shaped)
    subs = await _lookup_all(ids, lookup)
    batch = _Batch()
    for item, problem in shaped:
        if problem:
            batch.reject(problem)
            continue
        sid = item["subscriptionId"]
        if sid not in subs and _GUID.match(sid):
            batch.reject("subscription lookup limit")
            continue
        reason = _item_problem(item, subs.get(sid), tenant_id)
        if reason:
            batch.reject(reason)
        else:
            batch.accept(item, subs[sid])  # type: ignore[arg-type]  # checked by _item_problem
    return batch, len(ids)


async def accept_notifications(
    body: bytes,
    *,
    tenant_id: str,
    lookup: SubscriptionLookup,
    enqueue: Enqueue,
) -> IntakeResponse:
    """Validates a batch; enqueues the valid notifications; says what Graph should hear.

    202 when something was enqueued; 4xx with no side effect when nothing was valid; 500 when
    the queue could not take the batch (Graph delivers it again) or when ENTRA_TENANT_ID is
    missing (nothing can be checked without it).
    """
    problem = tenant_problem(tenant_id)
    if problem:
        log.error("webhook misconfigured: %s", problem)
        return misconfigured("ENTRA_TENANT_ID")
    items, refused = _parse(body)
    if refused is not None:
        log.warning("notification batch rejected: %s", next(iter(refused.rejected)))
        return refused
    assert items is not None
    batch, lookups = await _validate(items, tenant_id, lookup)
    if batch.rejected:
        # Counts and our own reason codes only: nothing from the request is logged.
        log.warning("notifications rejected: %s (%d lookups)", json.dumps(batch.rejected, sort_keys=True), lookups)
    if not batch.accepted:
        status = 403 if FORGERY_REASONS & set(batch.rejected) else 400
        body_out = json.dumps({"error": "no valid notification"})
        return IntakeResponse(status, body_out, rejected=batch.rejected, lookups=lookups)
    received = utcnow()
    try:
        for start in range(0, len(batch.accepted), ITEMS_PER_MESSAGE):
            chunk = tuple(batch.accepted[start : start + ITEMS_PER_MESSAGE])
            await enqueue(QueueMessage(chunk, received).to_json())
    except Exception:  # the storage SDK raises many kinds; Graph must retry whatever it was
        log.exception("enqueue failed; answering 500 so that Graph delivers again")
        body_out = json.dumps({"error": "could not queue the notifications"})
        return IntakeResponse(500, body_out, rejected=batch.rejected, lookups=lookups)
    count = len(batch.accepted)
    return IntakeResponse(
        202, json.dumps({"accepted": count}), accepted=count, rejected=batch.rejected, lookups=lookups
    )


def _message_item(item: dict[str, Any], sub: SubscriptionRecord) -> QueueItem:
    """Only fields we validated go on the queue; the rest of the notification is dropped."""
    if "lifecycleEvent" in item:
        return QueueItem(ItemKind.LIFECYCLE, subscription_id=sub.id, event=item["lifecycleEvent"])
    object_id = item["resourceData"]["id"].lower()
    kind = ItemKind.USER if sub.resource == "/users" or sub.resource.startswith("/users/") else ItemKind.GROUP
    return QueueItem(kind, object_id, item["changeType"], sub.id)
