"""Contract of the lease repository: one holder at a time, expiry, renew, release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shared.store import Lease, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_free_lease_is_acquired_until_now_plus_ttl(store: Store) -> None:
    lease = await store.lease.acquire("cycle", "instance-a", 60, now=T0)
    assert lease is not None
    assert (lease.name, lease.owner, lease.expires) == ("cycle", "instance-a", T0 + timedelta(seconds=60))
    assert lease.etag
    held = await store.lease.get("cycle")
    assert held is not None
    assert (held.owner, held.expires, held.etag) == ("instance-a", lease.expires, lease.etag)


async def test_a_held_lease_is_refused_to_another_owner(store: Store) -> None:
    assert await store.lease.acquire("cycle", "instance-a", 60, now=T0) is not None
    assert await store.lease.acquire("cycle", "instance-b", 60, now=T0 + timedelta(seconds=59)) is None
    held = await store.lease.get("cycle")
    assert held is not None
    assert held.owner == "instance-a"


async def test_of_two_concurrent_acquirers_exactly_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        store.lease.acquire("cycle", "instance-a", 60, now=T0),
        store.lease.acquire("cycle", "instance-b", 60, now=T0),
    )
    winners = [lease for lease in results if lease is not None]
    assert len(winners) == 1
    held = await store.lease.get("cycle")
    assert held is not None
    assert held.owner == winners[0].owner


async def test_of_many_concurrent_takeovers_of_an_expired_lease_exactly_one_wins(store: Store) -> None:
    assert await store.lease.acquire("cycle", "crashed", 10, now=T0) is not None
    later = T0 + timedelta(minutes=5)
    results = await asyncio.gather(*(store.lease.acquire("cycle", f"instance-{i}", 60, now=later) for i in range(6)))
    winners = [lease for lease in results if lease is not None]
    assert len(winners) == 1
    held = await store.lease.get("cycle")
    assert held is not None
    assert held.owner == winners[0].owner


async def test_an_expired_lease_is_taken_over_and_the_old_holder_loses_it(store: Store) -> None:
    old = await store.lease.acquire("cycle", "instance-a", 60, now=T0)
    assert old is not None
    new = await store.lease.acquire("cycle", "instance-b", 60, now=T0 + timedelta(seconds=61))
    assert new is not None
    assert new.owner == "instance-b"
    assert await store.lease.renew(old, now=T0 + timedelta(seconds=62)) is False
    await store.lease.release(old)  # must not free the new holder's lease
    held = await store.lease.get("cycle")
    assert held is not None
    assert held.owner == "instance-b"


async def test_a_zero_ttl_lease_is_free_at_once(store: Store) -> None:
    assert await store.lease.acquire("cycle", "instance-a", 0, now=T0) is not None
    assert await store.lease.acquire("cycle", "instance-b", 60, now=T0) is not None


async def test_renew_extends_the_lease_and_keeps_others_out(store: Store) -> None:
    lease = await store.lease.acquire("cycle", "instance-a", 60, now=T0)
    assert lease is not None
    first_etag = lease.etag
    assert await store.lease.renew(lease, now=T0 + timedelta(seconds=50)) is True
    assert lease.expires == T0 + timedelta(seconds=110)
    assert lease.etag != first_etag
    # past the original expiry, within the renewed one
    assert await store.lease.acquire("cycle", "instance-b", 60, now=T0 + timedelta(seconds=100)) is None
    assert await store.lease.renew(lease, ttl_seconds=600, now=T0 + timedelta(seconds=100)) is True
    assert lease.expires == T0 + timedelta(seconds=700)
    assert lease.ttl_seconds == 600


async def test_renew_of_a_released_lease_fails(store: Store) -> None:
    lease = await store.lease.acquire("cycle", "instance-a", 60, now=T0)
    assert lease is not None
    stale = Lease(lease.name, lease.owner, lease.expires, lease.etag, lease.ttl_seconds)
    await store.lease.release(lease)
    assert await store.lease.renew(stale, now=T0) is False


async def test_release_frees_the_lease_for_another_owner(store: Store) -> None:
    lease = await store.lease.acquire("cycle", "instance-a", 600, now=T0)
    assert lease is not None
    await store.lease.release(lease)
    assert await store.lease.get("cycle") is None
    assert await store.lease.acquire("cycle", "instance-b", 60, now=T0 + timedelta(seconds=1)) is not None
    await store.lease.release(lease)  # releasing twice is harmless


async def test_the_holder_reacquiring_extends_its_own_lease(store: Store) -> None:
    assert await store.lease.acquire("cycle", "instance-a", 60, now=T0) is not None
    again = await store.lease.acquire("cycle", "instance-a", 60, now=T0 + timedelta(seconds=30))
    assert again is not None
    assert again.expires == T0 + timedelta(seconds=90)


async def test_leases_with_different_names_are_independent(store: Store) -> None:
    assert await store.lease.acquire("cycle", "instance-a", 60, now=T0) is not None
    assert await store.lease.acquire("subscription-keeper", "instance-b", 60, now=T0) is not None


async def test_a_heartbeat_and_a_checkpoint_renewing_at_once_do_not_lose_the_lease(store: Store) -> None:
    from shared.store.lease import LeaseHeartbeat

    lease = await store.lease.acquire("cycle", "instance-a", 60)
    assert lease is not None
    async with LeaseHeartbeat(store.lease, lease, interval=3600) as heartbeat:
        await asyncio.gather(*(heartbeat.renew_now() for _ in range(8)))  # all with the same holder
        assert not heartbeat.lost.is_set()
    held = await store.lease.get("cycle")
    assert held is not None and held.owner == "instance-a" and held.etag == lease.etag
