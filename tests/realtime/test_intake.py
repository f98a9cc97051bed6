"""The webhook intake through the real HTTP function: handshake, and hostile batches answered
with the right status and no side effect (nothing queued)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import azure.functions as func

import function_app
from emulators.functions_host import app_functions
from shared.model import utcnow
from shared.realtime.intake import MAX_BODY_BYTES
from shared.realtime.services import services_for
from shared.store.subscriptions import SubscriptionRecord
from tests.realtime.conftest import Live

FUNCTIONS = app_functions(function_app.app)
notify = FUNCTIONS["graph_notifications"].get_user_function()
lifecycle = FUNCTIONS["graph_lifecycle"].get_user_function()

SUB_ID = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
SECRET = "s3cret-client-state"


def request(body: bytes | str, params: dict[str, str] | None = None) -> func.HttpRequest:
    raw = body.encode() if isinstance(body, str) else body
    return func.HttpRequest("POST", "http://127.0.0.1/api/graph/notify", params=params or {}, body=raw)


def notification(live: Live, user_id: str, **changes: Any) -> dict[str, Any]:
    item = {
        "id": str(uuid.uuid4()),
        "subscriptionId": SUB_ID,
        "subscriptionExpirationDateTime": (utcnow() + timedelta(days=2)).isoformat(),
        "clientState": SECRET,
        "changeType": "updated",
        "resource": f"Users/{user_id}",
        "tenantId": live.settings.tenant_id,
        "resourceData": {"@odata.type": "#Microsoft.Graph.User", "@odata.id": f"Users/{user_id}", "id": user_id},
    }
    item.update(changes)
    return item


async def prepared(make_live: Callable[..., Any]) -> Live:
    live = await make_live(users=3, assign=3)
    store = await live.store()
    await store.subscriptions.put(
        SubscriptionRecord(SUB_ID, "/users", "updated,deleted", utcnow() + timedelta(days=2), SECRET)
    )
    return live


async def queued(live: Live) -> int:
    return await (await services_for(live.settings).queue()).length()


async def test_validation_handshake_echoes_the_decoded_token_as_plain_text(make_live: Callable[..., Any]) -> None:
    live = await make_live(users=1, assign=0)
    token = "Validation: Testing client application reachability for subscription Request-Id: 1 <&>"
    resp = await notify(request(b"", {"validationToken": token}))
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.get_body().decode() == token
    assert await queued(live) == 0


async def test_valid_notification_is_queued_and_answered_202(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    uid = live.world.assigned_user_ids()[0]
    resp = await notify(request(json.dumps({"value": [notification(live, uid)]})))
    assert resp.status_code == 202
    assert await queued(live) == 1


async def test_forged_client_state_is_refused_without_side_effect(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    uid = live.world.assigned_user_ids()[0]
    resp = await notify(request(json.dumps({"value": [notification(live, uid, clientState="guess")]})))
    assert resp.status_code == 403
    assert await queued(live) == 0


async def test_wrong_tenant_is_refused(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    uid = live.world.assigned_user_ids()[0]
    item = notification(live, uid, tenantId=str(uuid.uuid4()))
    assert (await notify(request(json.dumps({"value": [item]})))).status_code == 403
    assert await queued(live) == 0


async def test_unknown_subscription_is_refused(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    item = notification(live, live.world.assigned_user_ids()[0], subscriptionId=str(uuid.uuid4()))
    assert (await notify(request(json.dumps({"value": [item]})))).status_code == 403
    assert await queued(live) == 0


async def test_malformed_and_oversized_bodies_get_4xx(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    uid = live.world.assigned_user_ids()[0]
    assert (await notify(request("{not json"))).status_code == 400
    assert (await notify(request(json.dumps({"value": "x"})))).status_code == 400
    assert (await notify(request(json.dumps({"value": []})))).status_code == 400
    bad_id = notification(live, uid)
    bad_id["resourceData"]["id"] = "'; DROP TABLE users; --"
    assert (await notify(request(json.dumps({"value": [bad_id]})))).status_code == 400
    assert (await notify(request(b"x" * (MAX_BODY_BYTES + 1)))).status_code == 413
    assert await queued(live) == 0


async def test_mixed_batch_queues_only_the_valid_notifications(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    ids = live.world.assigned_user_ids()
    batch = [notification(live, ids[0]), notification(live, ids[1], clientState="forged")]
    resp = await notify(request(json.dumps({"value": batch})))
    assert resp.status_code == 202
    assert json.loads(resp.get_body()) == {"accepted": 1}
    message = (await (await services_for(live.settings).queue()).receive())[0]
    assert [i["id"] for i in message.body["items"]] == [ids[0]]


async def test_failed_enqueue_answers_500_so_that_graph_retries(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    queue = await services_for(live.settings).queue()
    await queue._client.delete_queue()  # the queue vanished under us: sending fails
    queue._created = True
    uid = live.world.assigned_user_ids()[0]
    resp = await notify(request(json.dumps({"value": [notification(live, uid)]})))
    assert resp.status_code == 500


async def test_lifecycle_notification_is_validated_and_queued(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    item = {
        "subscriptionId": SUB_ID,
        "subscriptionExpirationDateTime": utcnow().isoformat(),
        "tenantId": live.settings.tenant_id,
        "clientState": SECRET,
        "lifecycleEvent": "reauthorizationRequired",
    }
    resp = await lifecycle(request(json.dumps({"value": [item]})))
    assert resp.status_code == 202
    forged = {**item, "clientState": "nope"}
    assert (await lifecycle(request(json.dumps({"value": [forged]})))).status_code == 403
    assert await queued(live) == 1
