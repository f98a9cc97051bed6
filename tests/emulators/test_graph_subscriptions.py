"""Graph emulator: subscriptions, the validation handshake and notification delivery
(docs/reference/microsoft-graph.md#change-notifications). The receiver runs on the test's loop; waits
use ``wait_deliveries_idle_async``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emulators.graph import GraphEmulator
from tests.fixtures.graph import WebhookReceiver

CLIENT_STATE = "s3cr3t-client-state"


def expiry(minutes: float = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def emulator(graph_emulator_factory: Callable[..., GraphEmulator]) -> GraphEmulator:
    return graph_emulator_factory(users=5, groups=0)


@pytest.fixture
async def http(emulator: GraphEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=emulator.graph_url, headers={"Authorization": "Bearer t"}, timeout=30
    ) as client:
        yield client


async def subscribe(
    http: httpx.AsyncClient, receiver: WebhookReceiver, resource: str = "/users", **extra: Any
) -> httpx.Response:
    body = {
        "changeType": "updated,deleted",
        "notificationUrl": receiver.notification_url(),
        "resource": resource,
        "expirationDateTime": expiry(),
        "clientState": CLIENT_STATE,
        **extra,
    }
    return await http.post("/subscriptions", json=body)


async def test_create_runs_the_handshake_and_returns_201(
    http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    response = await subscribe(http, webhook_receiver)

    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["resource"] == "/users"
    assert sub["changeType"] == "updated,deleted"
    assert sub["clientState"] == CLIENT_STATE
    assert sub["notificationUrl"] == webhook_receiver.notification_url()
    assert len(webhook_receiver.validations) == 1
    # The token is opaque text with spaces: the receiver saw it decoded.
    assert " " in webhook_receiver.validations[0]
    listed = (await http.get("/subscriptions")).json()["value"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert (await http.get(f"/subscriptions/{sub['id']}")).json()["id"] == sub["id"]


@pytest.mark.parametrize("mode", ["wrong", "encoded"])
async def test_bad_echo_fails_validation(http: httpx.AsyncClient, webhook_receiver: WebhookReceiver, mode: str) -> None:
    webhook_receiver.validation = mode

    response = await subscribe(http, webhook_receiver)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ValidationError"
    assert error["message"].startswith("Subscription validation request failed.")
    assert (await http.get("/subscriptions")).json()["value"] == []


async def test_late_echo_fails_validation(
    graph_emulator_factory: Callable[..., GraphEmulator], webhook_receiver: WebhookReceiver
) -> None:
    emulator = graph_emulator_factory(users=1, groups=0, validation_timeout_seconds=0.3)
    webhook_receiver.validation = "hang"

    async with httpx.AsyncClient(base_url=emulator.graph_url, headers={"Authorization": "Bearer t"}) as http:
        response = await subscribe(http, webhook_receiver)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError"


async def test_unreachable_endpoint_fails_validation(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}")

    response = await subscribe(http, receiver)

    assert response.status_code == 400


async def test_lifecycle_url_is_validated_too(http: httpx.AsyncClient, webhook_receiver: WebhookReceiver) -> None:
    response = await subscribe(
        http, webhook_receiver, lifecycleNotificationUrl=webhook_receiver.notification_url("/lc")
    )

    assert response.status_code == 201
    assert len(webhook_receiver.validations) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Expiry times are taken when the test runs, not when it is collected: a long session
        # would otherwise bring "5 minutes past the maximum lifetime" back within it.
        ("expirationDateTime", lambda: expiry(41_760 + 5)),
        ("expirationDateTime", lambda: expiry(-5)),
        ("clientState", "x" * 129),
        ("changeType", "created"),
        ("resource", "/servicePrincipals"),
        ("resource", "/users/delta"),
    ],
)
async def test_invalid_subscription_is_rejected_before_the_handshake(
    http: httpx.AsyncClient, webhook_receiver: WebhookReceiver, field: str, value: str | Callable[[], str]
) -> None:
    response = await subscribe(http, webhook_receiver, **{field: value() if callable(value) else value})

    assert response.status_code == 400
    assert webhook_receiver.validations == []


async def test_maximum_lifetime_and_128_char_client_state_are_accepted(
    http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    response = await subscribe(http, webhook_receiver, expirationDateTime=expiry(41_760 - 1), clientState="x" * 128)

    assert response.status_code == 201


async def test_quota_per_app_and_tenant_gives_403(
    graph_emulator_factory: Callable[..., GraphEmulator], webhook_receiver: WebhookReceiver
) -> None:
    emulator = graph_emulator_factory(users=1, groups=0, subscription_quota_per_app=2)
    async with httpx.AsyncClient(base_url=emulator.graph_url, headers={"Authorization": "Bearer t"}) as http:
        statuses = [(await subscribe(http, webhook_receiver)).status_code for _ in range(3)]

    assert statuses == [201, 201, 403]


async def test_renewal_is_capped_and_delete_returns_204(
    http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    sub_id = (await subscribe(http, webhook_receiver)).json()["id"]

    renewed = await http.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": expiry(41_000)})
    too_long = await http.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": expiry(41_760 + 60)})
    immutable = await http.patch(f"/subscriptions/{sub_id}", json={"resource": "/groups"})
    deleted = await http.delete(f"/subscriptions/{sub_id}")

    assert renewed.status_code == 200
    assert datetime.fromisoformat(renewed.json()["expirationDateTime"]) > datetime.now(UTC) + timedelta(days=28)
    assert too_long.status_code == 400
    assert immutable.status_code == 400
    assert deleted.status_code == 204
    assert (await http.get(f"/subscriptions/{sub_id}")).status_code == 404


async def test_removed_subscription_renewal_gets_404(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    sub_id = (await subscribe(http, webhook_receiver)).json()["id"]

    emulator.remove_subscription(sub_id)
    response = await http.patch(f"/subscriptions/{sub_id}", json={"expirationDateTime": expiry(120)})

    assert response.status_code == 404


async def test_expired_subscription_is_deleted_on_the_emulator_clock(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    sub_id = (await subscribe(http, webhook_receiver)).json()["id"]

    emulator.advance_clock(2 * 3600)

    assert (await http.get(f"/subscriptions/{sub_id}")).status_code == 404
    assert emulator.subscriptions() == []


async def test_blocking_a_user_delivers_an_updated_notification_with_client_state(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    url = webhook_receiver.notification_url(query="route=users&x=1")
    sub = (await subscribe(http, webhook_receiver, notificationUrl=url)).json()
    user_id = next(iter(emulator.tenant.users))

    emulator.block_user(user_id)
    await emulator.wait_deliveries_idle_async()

    assert len(webhook_receiver.items) == 1
    item = webhook_receiver.items[0]
    assert item["subscriptionId"] == sub["id"]
    assert item["clientState"] == CLIENT_STATE
    assert item["changeType"] == "updated"
    assert item["tenantId"] == emulator.tenant_id
    assert item["resource"] == f"Users/{user_id}"
    assert item["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
    assert item["resourceData"]["id"] == user_id
    assert item["resourceData"]["@odata.type"] == "#Microsoft.Graph.User"
    assert item["resourceData"]["@odata.id"] == f"Users/{user_id}"
    assert item["id"]
    assert webhook_receiver.received_urls == ["/notify?route=users&x=1"]  # query string preserved
    assert emulator.delivered == webhook_receiver.received


async def test_creation_and_soft_delete_arrive_as_updated_and_hard_delete_as_deleted(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    await subscribe(http, webhook_receiver)

    user_id = emulator.create_user(displayName="Short Lived")
    emulator.soft_delete_user(user_id)
    emulator.hard_delete_user(user_id)
    await emulator.wait_deliveries_idle_async()

    assert [(i["changeType"], i["resourceData"]["id"]) for i in webhook_receiver.items] == [
        ("updated", user_id),
        ("updated", user_id),
        ("deleted", user_id),
    ]


async def test_deleted_only_subscription_ignores_updates(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    await subscribe(http, webhook_receiver, changeType="deleted")
    user_id = next(iter(emulator.tenant.users))

    emulator.update_user(user_id, jobTitle="Ignored")
    emulator.hard_delete_user(user_id)
    await emulator.wait_deliveries_idle_async()

    assert [i["changeType"] for i in webhook_receiver.items] == ["deleted"]


async def test_group_members_subscription_fires_only_for_that_groups_membership(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    alice, bob = list(emulator.tenant.users)[:2]
    watched = emulator.create_group("Watched")
    other = emulator.create_group("Other")
    await subscribe(http, webhook_receiver, resource=f"/groups/{watched}/members")

    emulator.add_member(watched, alice)
    emulator.add_member(other, bob)
    emulator.update_group(watched, description="not a membership change")
    emulator.update_user(alice, jobTitle="not a membership change either")
    await emulator.wait_deliveries_idle_async()

    assert [i["resourceData"]["id"] for i in webhook_receiver.items] == [watched]
    assert webhook_receiver.items[0]["resource"] == f"Groups/{watched}"


async def test_notifications_ready_together_share_one_post(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    first = (await subscribe(http, webhook_receiver)).json()["id"]
    second = (await subscribe(http, webhook_receiver)).json()["id"]

    emulator.update_user(next(iter(emulator.tenant.users)), jobTitle="Batched")
    await emulator.wait_deliveries_idle_async()

    assert len(webhook_receiver.received) == 1
    assert {i["subscriptionId"] for i in webhook_receiver.received[0]["value"]} == {first, second}


async def test_failed_delivery_is_retried_until_acknowledged(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    await subscribe(http, webhook_receiver)
    webhook_receiver.statuses = [500, 503, 202]

    emulator.block_user(next(iter(emulator.tenant.users)))
    await emulator.wait_deliveries_idle_async()

    assert len(webhook_receiver.items) == 1
    assert [a.status for a in emulator.deliverer.attempts] == [500, 503, 202]
    assert [a.attempt for a in emulator.deliverer.attempts] == [1, 2, 3]


async def test_delivery_is_dropped_after_the_give_up_time(
    graph_emulator_factory: Callable[..., GraphEmulator], webhook_receiver: WebhookReceiver
) -> None:
    emulator = graph_emulator_factory(users=1, groups=0, retry_give_up_seconds=0.1, retry_base_seconds=0.02)
    async with httpx.AsyncClient(base_url=emulator.graph_url, headers={"Authorization": "Bearer t"}) as http:
        await subscribe(http, webhook_receiver)
    webhook_receiver.statuses = [500]

    emulator.block_user(next(iter(emulator.tenant.users)))
    await emulator.wait_deliveries_idle_async()

    assert webhook_receiver.items == []
    assert len(emulator.deliverer.dropped) == 1
    assert len(emulator.deliverer.attempts) >= 2


async def test_lifecycle_reauthorization_pauses_delivery_until_reauthorize(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    lifecycle_url = webhook_receiver.notification_url("/lifecycle")
    sub = (await subscribe(http, webhook_receiver, lifecycleNotificationUrl=lifecycle_url)).json()
    user_id = next(iter(emulator.tenant.users))

    emulator.send_lifecycle_event(sub["id"], "reauthorizationRequired")
    emulator.block_user(user_id)
    await emulator.wait_deliveries_idle_async()
    while_paused = list(webhook_receiver.items)
    assert (await http.post(f"/subscriptions/{sub['id']}/reauthorize")).status_code == 204
    await emulator.wait_deliveries_idle_async()

    assert while_paused == [
        {
            "subscriptionId": sub["id"],
            "subscriptionExpirationDateTime": sub["expirationDateTime"],
            "tenantId": emulator.tenant_id,
            "clientState": CLIENT_STATE,
            "lifecycleEvent": "reauthorizationRequired",
        }
    ]
    assert webhook_receiver.received_urls[0] == "/lifecycle"
    assert [i.get("changeType") for i in webhook_receiver.items[1:]] == ["updated"]


async def test_subscription_removed_lifecycle_event_drops_the_subscription(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    lifecycle_url = webhook_receiver.notification_url("/lifecycle")
    sub_id = (await subscribe(http, webhook_receiver, lifecycleNotificationUrl=lifecycle_url)).json()["id"]

    emulator.send_lifecycle_event(sub_id, "subscriptionRemoved")
    await emulator.wait_deliveries_idle_async()

    assert webhook_receiver.items[0]["lifecycleEvent"] == "subscriptionRemoved"
    assert (await http.get(f"/subscriptions/{sub_id}")).status_code == 404


async def test_subscription_through_the_control_surface_lifecycle_route(
    emulator: GraphEmulator, http: httpx.AsyncClient, webhook_receiver: WebhookReceiver
) -> None:
    lifecycle_url = webhook_receiver.notification_url("/lifecycle")
    sub_id = (await subscribe(http, webhook_receiver, lifecycleNotificationUrl=lifecycle_url)).json()["id"]

    async with httpx.AsyncClient(base_url=emulator.url) as control:
        response = await control.post(f"/_emulator/subscriptions/{sub_id}/lifecycle", json={"event": "missed"})
        bad = await control.post(f"/_emulator/subscriptions/{sub_id}/lifecycle", json={"event": "nope"})
        await control.post("/_emulator/deliveries/wait", json={"timeout": 5})

    assert response.status_code == 200
    assert bad.status_code == 400
    assert webhook_receiver.items[0]["lifecycleEvent"] == "missed"
