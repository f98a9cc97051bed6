"""Contract of the shared request budget (shared/store/budget.py): slots booked in one row per
API with conditional updates, so that processes booking at once never hold the same slot and
leave no hole between their runs."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.store import Store

T0 = 1_800_000_000.0  # Unix seconds
TENTH = 0.1


def at(expected: object) -> object:
    """Equal to the microsecond (pytest.approx's relative default would allow half an hour at T0)."""
    return pytest.approx(expected, rel=0, abs=2e-6)


async def test_the_first_booking_starts_now_and_the_row_moves_past_it(store: Store) -> None:
    run = await store.budget.reserve("goto-scim", 3, TENTH, now=T0)
    assert run.slots() == at([T0, T0 + 0.1, T0 + 0.2])
    assert await store.budget.peek("goto-scim") == at(T0 + 0.3)


async def test_a_booking_made_before_the_last_run_ends_starts_where_it_ends(store: Store) -> None:
    await store.budget.reserve("goto-scim", 4, TENTH, now=T0)
    run = await store.budget.reserve("goto-scim", 2, TENTH, now=T0 + 0.05)
    assert run.start == at(T0 + 0.4)


async def test_after_an_idle_spell_a_booking_starts_now_without_a_burst_of_saved_slots(store: Store) -> None:
    await store.budget.reserve("goto-scim", 1, TENTH, now=T0)
    run = await store.budget.reserve("goto-scim", 2, TENTH, now=T0 + 60)
    assert run.start == at(T0 + 60)
    assert await store.budget.peek("goto-scim") == at(T0 + 60.2)


async def test_a_pause_is_booked_so_every_later_booking_starts_after_it(store: Store) -> None:
    await store.budget.reserve("goto-scim", 1, TENTH, now=T0, not_before=T0 + 5)
    run = await store.budget.reserve("goto-scim", 1, TENTH, now=T0 + 1)
    assert run.start == at(T0 + 5.1)


async def test_each_api_has_its_own_budget(store: Store) -> None:
    await store.budget.reserve("goto-scim", 10, TENTH, now=T0)
    run = await store.budget.reserve("goto-admin", 1, TENTH, now=T0)
    assert run.start == at(T0)


async def test_a_process_whose_cached_row_is_stale_books_after_the_other_process(
    storage_connection_string: str, table_prefix: str
) -> None:
    async with (
        Store(connection_string=storage_connection_string, prefix=table_prefix) as a,
        Store(connection_string=storage_connection_string, prefix=table_prefix) as b,
    ):
        await a.budget.reserve("goto-scim", 2, TENTH, now=T0)  # a's cache: next = T0 + 0.2
        await b.budget.reserve("goto-scim", 3, TENTH, now=T0)  # b books T0 + 0.2 .. 0.4
        run = await a.budget.reserve("goto-scim", 1, TENTH, now=T0)
    assert run.start == at(T0 + 0.5)


async def test_a_row_booked_far_ahead_by_a_wrong_clock_does_not_hold_everyone(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await store.budget.reserve("goto-scim", 1, TENTH, now=T0 + 3600)  # a machine an hour ahead
    with caplog.at_level(logging.WARNING, logger="gotosync.budget"):
        run = await store.budget.reserve("goto-scim", 1, TENTH, now=T0, horizon=300)
    assert run.start == at(T0)
    assert "a clock is wrong" in caplog.text


async def test_a_queue_within_the_horizon_is_waited_for(store: Store) -> None:
    await store.budget.reserve("goto-scim", 100, TENTH, now=T0)  # 10 s of slots taken
    run = await store.budget.reserve("goto-scim", 1, TENTH, now=T0, horizon=300)
    assert run.start == at(T0 + 10)


async def test_bad_bookings_are_refused_before_any_call(store: Store) -> None:
    with pytest.raises(ValueError, match="count >= 1"):
        await store.budget.reserve("goto-scim", 0, TENTH, now=T0)
    with pytest.raises(ValueError, match="budget name"):
        await store.budget.reserve("goto/scim", 1, TENTH, now=T0)


@pytest.fixture
async def stores(storage_connection_string: str, table_prefix: str):  # type: ignore[no-untyped-def]
    """Four stores on one prefix: four processes, each with its own cached row."""
    opened = [Store(connection_string=storage_connection_string, prefix=table_prefix) for _ in range(4)]
    for s in opened:
        await s.open()
    try:
        yield opened
    finally:
        for s in opened:
            await s.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rounds=st.lists(
        st.lists(st.tuples(st.integers(0, 3), st.integers(1, 6)), min_size=1, max_size=4), min_size=1, max_size=3
    )
)
async def test_processes_booking_at_once_hold_disjoint_slots_with_no_hole_between_them(
    stores: list[Store], rounds: list[list[tuple[int, int]]]
) -> None:
    """Oracle: every slot booked, sorted, is exactly one interval after the one before it (no
    slot twice, none skipped), and their number is the number asked for."""
    name = "t" + uuid.uuid4().hex[:8]
    booked: list[float] = []
    for bookings in rounds:  # each round: up to four processes booking at the same moment
        runs = await asyncio.gather(
            *(stores[who].budget.reserve(name, count, TENTH, now=T0) for who, count in bookings)
        )
        for run, (_, count) in zip(runs, bookings, strict=True):
            assert len(run.slots()) == count
            booked.extend(run.slots())
    booked.sort()
    assert len(booked) == sum(count for bookings in rounds for _, count in bookings)
    assert booked[0] == at(T0)
    gaps = [b - a for a, b in itertools.pairwise(booked)]
    assert gaps == at([TENTH] * len(gaps))
