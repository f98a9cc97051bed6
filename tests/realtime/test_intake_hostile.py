"""Hostile webhook input: deeply nested JSON, floods of unknown subscription ids, a missing
tenant id, and arbitrary bodies. Each gets a clear 4xx (or a 500 naming the setting), costs a
bounded number of table reads and queues nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.model import utcnow
from shared.realtime.intake import MAX_SUBSCRIPTION_LOOKUPS, accept_notifications
from shared.store.subscriptions import SubscriptionRecord
from tests.realtime.conftest import Live
from tests.realtime.test_intake import SECRET, SUB_ID, lifecycle, notification, notify, prepared, queued, request

TENANT = "0a6a5d8c-7d43-4f59-9d1e-6a1d3b7c2f10"
USER = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_NESTING = {
    "bare arrays": nested(200_000),
    "objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "inside value": b'{"value":[' + nested(150_000) + b"]}",
    "inside resourceData": (
        b'{"value":[{"subscriptionId":"x","clientState":"y","tenantId":"z","changeType":"updated",'
        b'"resourceData":' + nested(150_000) + b"}]}"
    ),
    "unclosed": b"[" * 300_000,
}


@pytest.mark.parametrize("body", HOSTILE_NESTING.values(), ids=HOSTILE_NESTING.keys())
async def test_deeply_nested_json_is_answered_400_not_500(make_live: Callable[..., Any], body: bytes) -> None:
    live = await prepared(make_live)
    resp = await notify(request(body))
    assert resp.status_code == 400
    assert await queued(live) == 0


async def test_a_thousand_unknown_subscription_ids_cost_at_most_the_lookup_cap(
    make_live: Callable[..., Any],
) -> None:
    live = await prepared(make_live)
    store = await live.store()
    reads: list[str] = []

    async def counting(sub_id: str) -> SubscriptionRecord | None:
        reads.append(sub_id)
        return await store.subscriptions.get(sub_id)

    uid = live.world.assigned_user_ids()[0]
    flood = [notification(live, uid, subscriptionId=str(uuid.uuid4())) for _ in range(999)]
    body = json.dumps({"value": [notification(live, uid), *flood]}).encode()
    answer = await accept_notifications(
        body, tenant_id=live.settings.tenant_id, lookup=counting, enqueue=(await _queue(live)).send
    )
    assert len(reads) == MAX_SUBSCRIPTION_LOOKUPS == answer.lookups
    assert len(set(reads)) == len(reads)  # never the same id twice
    assert answer.status == 202 and answer.accepted == 1  # the real one, first in the batch, got through
    assert answer.rejected == {
        "unknown subscription": MAX_SUBSCRIPTION_LOOKUPS - 1,
        "subscription lookup limit": 999 - (MAX_SUBSCRIPTION_LOOKUPS - 1),
    }
    assert await queued(live) == 1


async def test_a_flood_of_unknown_ids_alone_is_refused_as_forged_without_a_read_past_the_cap(
    make_live: Callable[..., Any],
) -> None:
    live = await prepared(make_live)
    store = await live.store()
    reads = 0

    async def counting(sub_id: str) -> SubscriptionRecord | None:
        nonlocal reads
        reads += 1
        return await store.subscriptions.get(sub_id)

    uid = live.world.assigned_user_ids()[0]
    flood = [notification(live, uid, subscriptionId=str(uuid.uuid4())) for _ in range(1_000)]
    answer = await accept_notifications(
        json.dumps({"value": flood}).encode(),
        tenant_id=live.settings.tenant_id,
        lookup=counting,
        enqueue=(await _queue(live)).send,
    )
    assert answer.status == 403
    assert reads == MAX_SUBSCRIPTION_LOOKUPS
    assert await queued(live) == 0


async def _queue(live: Live) -> Any:
    from shared.realtime.services import services_for

    return await services_for(live.settings).queue()


@pytest.mark.parametrize("tenant", ["", "contoso.onmicrosoft.com"])
async def test_without_a_tenant_id_the_intake_refuses_everything_naming_the_setting(
    make_live: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tenant: str
) -> None:
    live = await prepared(make_live)
    monkeypatch.setenv("ENTRA_TENANT_ID", tenant)
    uid = live.world.assigned_user_ids()[0]
    item = notification(live, uid, tenantId=tenant or "anything")
    for handler in (notify, lifecycle):
        resp = await handler(request(json.dumps({"value": [item]})))
        assert resp.status_code == 500
        assert json.loads(resp.get_body()) == {"error": "Misconfigured", "setting": "ENTRA_TENANT_ID"}
    handshake = await notify(request(b"", {"validationToken": "hello"}))
    assert handshake.status_code == 500  # no subscription can be created against this intake
    assert await queued(live) == 0


async def test_a_bad_setting_is_named_in_a_500_not_a_traceback(
    make_live: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await prepared(make_live)
    monkeypatch.setenv("CYCLE_CONCURRENCY", "many")
    resp = await notify(request(json.dumps({"value": [notification(live, live.world.assigned_user_ids()[0])]})))
    assert resp.status_code == 500
    assert json.loads(resp.get_body()) == {"error": "Misconfigured", "setting": "CYCLE_CONCURRENCY"}
    assert b"many" not in resp.get_body()


async def test_the_validation_echo_is_plain_text_with_nosniff(make_live: Callable[..., Any]) -> None:
    await prepared(make_live)
    token = "<html><script>alert(1)</script></html>"
    resp = await notify(request(b"", {"validationToken": token}))
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.get_body().decode() == token
    refused = await notify(request(b"", {"validationToken": "a\x00b"}))
    assert refused.status_code == 400 and refused.headers["X-Content-Type-Options"] == "nosniff"
    assert b"a\x00b" not in refused.get_body()  # only a validated token is ever echoed


async def test_change_and_lifecycle_notifications_share_one_route(make_live: Callable[..., Any]) -> None:
    live = await prepared(make_live)
    uid = live.world.assigned_user_ids()[0]
    life = {
        "subscriptionId": SUB_ID,
        "subscriptionExpirationDateTime": utcnow().isoformat(),
        "tenantId": live.settings.tenant_id,
        "clientState": SECRET,
        "lifecycleEvent": "missed",
    }
    resp = await notify(request(json.dumps({"value": [notification(live, uid), life, dict(life)]})))
    assert resp.status_code == 202 and json.loads(resp.get_body()) == {"accepted": 2}  # the copy is dropped
    message = (await (await _queue(live)).receive())[0]
    kinds = sorted(i["kind"] for i in message.body["items"])
    assert kinds == ["lifecycle", "user"]
    both = notification(live, uid, lifecycleEvent="missed")
    assert (await notify(request(json.dumps({"value": [both]})))).status_code == 400


# --- arbitrary bodies, without storage: the lookup is the injected callable the intake takes ---

RECORD = SubscriptionRecord(SUB_ID, "/users", "updated,deleted", utcnow() + timedelta(days=2), SECRET)


def valid_item() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "subscriptionId": SUB_ID,
        "clientState": SECRET,
        "changeType": "updated",
        "resource": f"Users/{USER}",
        "tenantId": TENANT,
        "resourceData": {"id": USER},
    }


def run(body: bytes) -> tuple[Any, list[dict[str, Any]], list[str]]:
    sent: list[dict[str, Any]] = []
    reads: list[str] = []

    async def lookup(sub_id: str) -> SubscriptionRecord | None:
        reads.append(sub_id)
        return RECORD if sub_id == SUB_ID else None

    async def enqueue(message: dict[str, Any]) -> None:
        sent.append(message)

    answer = asyncio.run(accept_notifications(body, tenant_id=TENANT, lookup=lookup, enqueue=enqueue))
    return answer, sent, reads


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bodies_are_refused_cleanly_and_queue_nothing(body: bytes) -> None:
    answer, sent, reads = run(body)
    assert answer.status in (400, 403)
    assert sent == []
    assert len(reads) <= MAX_SUBSCRIPTION_LOOKUPS


MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "clientState": lambda i: {**i, "clientState": i["clientState"] + "x"},
    "tenant": lambda i: {**i, "tenantId": str(uuid.uuid4())},
    "subscription": lambda i: {**i, "subscriptionId": str(uuid.uuid4())},
    "changeType": lambda i: {**i, "changeType": "created,updated"},
    "resourceData": lambda i: {**i, "resourceData": {"id": "../users"}},
    "not an object": lambda i: [i],
    "lifecycle too": lambda i: {**i, "lifecycleEvent": "missed"},
    "no clientState": lambda i: {k: v for k, v in i.items() if k != "clientState"},
}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(st.just("valid"), st.sampled_from(sorted(MUTATIONS)), json_values.map(lambda v: ("junk", v))),
        min_size=1,
        max_size=30,
    )
)
def test_exactly_the_untouched_notifications_are_queued(plan: list[Any]) -> None:
    items = []
    for step in plan:
        if step == "valid":
            items.append(valid_item())
        elif isinstance(step, tuple):
            items.append(step[1])
        else:
            items.append(MUTATIONS[step](valid_item()))
    expected = plan.count("valid")  # the oracle: only items nobody touched are ours
    answer, sent, reads = run(json.dumps({"value": items}).encode())
    queued_items = [i for m in sent for i in m["items"]]
    assert len(queued_items) == expected == answer.accepted
    assert all(
        i == {"kind": "user", "id": USER, "changeType": "updated", "subscriptionId": SUB_ID} for i in queued_items
    )
    assert answer.status == (202 if expected else answer.status)
    assert expected or answer.status in (400, 403)
    assert len(set(reads)) == len(reads)
