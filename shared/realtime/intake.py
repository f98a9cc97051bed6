"""The Graph webhook intake: answers the validation handshake, validates notification batches
(shape, size, clientState in constant time, tenant) and turns the valid ones into queue
messages. It never acts on a notification itself: Graph wants a 2xx within 3 s
(reference/microsoft-graph.md §5.4), and a notification is only a ping.

Webhook input is hostile until validated: nothing from the request reaches a log except counts
and our own reason codes.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.model import utcnow
from shared.store.subscriptions import SubscriptionRecord

log = logging.getLogger("gotosync.intake")

MAX_BODY_BYTES = 1_000_000  # Graph's batches are a few KB; anything near this is not Graph
MAX_ITEMS = 1_000
MAX_TOKEN_CHARS = 2_048
ITEMS_PER_MESSAGE = 50  # keeps each queue message far below the 64 KB limit
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})

SubscriptionLookup = Callable[[str], Awaitable[SubscriptionRecord | None]]
Enqueue = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class IntakeResponse:
    status: int
    body: str = ""
    content_type: str = "application/json"
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


def validation_response(token: str) -> IntakeResponse:
    """§5.3: 200, text/plain, the URL-decoded token and nothing else."""
    if not token or len(token) > MAX_TOKEN_CHARS or any(ord(c) < 32 for c in token):
        return IntakeResponse(400, json.dumps({"error": "invalid validationToken"}))
    return IntakeResponse(200, token, "text/plain")


def _error(status: int, reason: str) -> IntakeResponse:
    return IntakeResponse(status, json.dumps({"error": reason}), rejected={reason: 1})


def _parse(body: bytes) -> tuple[list[Any] | None, IntakeResponse | None]:
    if len(body) > MAX_BODY_BYTES:
        return None, _error(413, "body too large")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None, _error(400, "body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        return None, _error(400, "body must be an object with a value array")
    items = data["value"]
    if not items or len(items) > MAX_ITEMS:
        return None, _error(400, f"value must hold 1 to {MAX_ITEMS} notifications")
    return items, None


def _shape_problem(item: Any, lifecycle: bool) -> str:
    if not isinstance(item, dict):
        return "notification is not an object"
    for key in ("subscriptionId", "clientState", "tenantId"):
        if not isinstance(item.get(key), str) or not item[key]:
            return f"notification lacks {key}"
    if len(item["clientState"]) > 128:
        return "clientState too long"
    if lifecycle:
        return "" if item.get("lifecycleEvent") in LIFECYCLE_EVENTS else "unknown lifecycleEvent"
    if item.get("changeType") not in CHANGE_TYPES:
        return "unknown changeType"
    data = item.get("resourceData")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not _GUID.match(data["id"]):
        return "resourceData.id is not a GUID"
    return ""


async def accept_notifications(
    body: bytes,
    *,
    tenant_id: str,
    lookup: SubscriptionLookup,
    enqueue: Enqueue,
    lifecycle: bool = False,
) -> IntakeResponse:
    """Validates a batch; enqueues the valid notifications; says what Graph should hear.

    202 when something was enqueued; 4xx with no side effect when nothing was valid; 500 when
    the queue could not take the batch, so that Graph delivers it again.
    """
    items, problem = _parse(body)
    if problem is not None:
        log.warning("notification batch rejected: %s", next(iter(problem.rejected)))
        return problem
    assert items is not None
    subs: dict[str, SubscriptionRecord | None] = {}
    rejected: dict[str, int] = {}
    accepted: list[dict[str, Any]] = []
    for item in items:
        reason = _shape_problem(item, lifecycle)
        if not reason:
            sid = item["subscriptionId"]
            if sid not in subs:
                subs[sid] = await lookup(sid) if _GUID.match(sid) else None
            sub = subs[sid]
            if sub is None:
                reason = "unknown subscription"
            elif not hmac.compare_digest(sub.client_state.encode(), item["clientState"].encode()):
                reason = "clientState mismatch"
            elif tenant_id and not hmac.compare_digest(tenant_id.lower().encode(), item["tenantId"].lower().encode()):
                reason = "wrong tenant"
            else:
                accepted.append(_message_item(item, sub, lifecycle))
        if reason:
            rejected[reason] = rejected.get(reason, 0) + 1
    if rejected:
        # Counts and our own reason codes only: nothing from the request is logged.
        log.warning("notifications rejected: %s", json.dumps(rejected, sort_keys=True))
    if not accepted:
        forged = any(r in rejected for r in ("clientState mismatch", "wrong tenant", "unknown subscription"))
        return IntakeResponse(403 if forged else 400, json.dumps({"error": "no valid notification"}), rejected=rejected)
    received = utcnow().isoformat()
    try:
        for start in range(0, len(accepted), ITEMS_PER_MESSAGE):
            await enqueue({"v": 1, "receivedAt": received, "items": accepted[start : start + ITEMS_PER_MESSAGE]})
    except Exception:  # the storage SDK raises many kinds; Graph must retry whatever it was
        log.exception("enqueue failed; answering 500 so that Graph delivers again")
        return IntakeResponse(500, json.dumps({"error": "could not queue the notifications"}), rejected=rejected)
    return IntakeResponse(202, json.dumps({"accepted": len(accepted)}), accepted=len(accepted), rejected=rejected)


def _message_item(item: dict[str, Any], sub: SubscriptionRecord, lifecycle: bool) -> dict[str, Any]:
    """Only fields we validated go on the queue; the rest of the notification is dropped."""
    if lifecycle:
        return {"kind": "lifecycle", "event": item["lifecycleEvent"], "subscriptionId": sub.id}
    object_id = item["resourceData"]["id"].lower()
    kind = "user" if sub.resource == "/users" or sub.resource.startswith("/users/") else "group"
    return {"kind": kind, "id": object_id, "changeType": item["changeType"], "subscriptionId": sub.id}
