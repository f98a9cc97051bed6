"""Lifecycle events are claimed once per (subscription, event), and a subscription record is
removed by exactly one of several concurrent recreators (Azurite, real conditional writes)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from shared.model import utcnow
from shared.store import Store
from shared.store.subscriptions import SubscriptionRecord

SUB = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"


async def test_concurrent_claims_of_one_event_succeed_exactly_once(store: Store) -> None:
    now = utcnow()
    claims = await asyncio.gather(*(store.subscriptions.claim_event(SUB, "missed", now, None) for _ in range(8)))
    assert sorted(claims) == [False] * 7 + [True]
    assert await store.subscriptions.claim_event(SUB, "reauthorizationRequired", now, None)  # another event
    later = now + timedelta(days=365)
    assert not await store.subscriptions.claim_event(SUB, "missed", later, None)  # None: never again


async def test_a_claim_comes_back_after_its_window_and_after_a_release(store: Store) -> None:
    now = utcnow()
    window = timedelta(minutes=5)
    assert await store.subscriptions.claim_event(SUB, "reauthorizationRequired", now, window)
    assert not await store.subscriptions.claim_event(SUB, "reauthorizationRequired", now + timedelta(minutes=4), window)
    after = now + timedelta(minutes=6)
    claims = await asyncio.gather(
        *(store.subscriptions.claim_event(SUB, "reauthorizationRequired", after, window) for _ in range(6))
    )
    assert claims.count(True) == 1
    await store.subscriptions.release_event(SUB, "reauthorizationRequired")
    assert await store.subscriptions.claim_event(SUB, "reauthorizationRequired", after, window)
    await store.subscriptions.release_event(SUB, "never-claimed")  # nothing to release: no error


async def test_one_of_several_conditional_deletes_wins_and_event_rows_are_not_records(store: Store) -> None:
    record = await store.subscriptions.put(
        SubscriptionRecord(SUB, "/users", "updated,deleted", utcnow() + timedelta(days=2), "secret")
    )
    await store.subscriptions.claim_event(SUB, "subscriptionRemoved", utcnow(), None)
    assert [r.id for r in await store.subscriptions.all()] == [SUB]
    results = await asyncio.gather(*(store.subscriptions.delete_if_unchanged(record) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await store.subscriptions.get(SUB) is None


async def test_a_record_changed_since_it_was_read_is_not_deleted(store: Store) -> None:
    first = await store.subscriptions.put(
        SubscriptionRecord(SUB, "/users", "updated,deleted", utcnow() + timedelta(days=2), "secret")
    )
    await store.subscriptions.put(first)  # renewed meanwhile: a new etag
    assert not await store.subscriptions.delete_if_unchanged(first)
    assert await store.subscriptions.get(SUB) is not None
