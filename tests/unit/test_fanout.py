"""The one bounded fan-out: never more than `limit` calls in flight, results in input order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.fanout import bounded, read_ahead, started


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(), max_size=40), st.integers(min_value=-2, max_value=10))
def test_bounded_keeps_order_and_never_exceeds_its_limit(items: list[int], limit: int) -> None:
    in_flight = 0
    most = 0

    async def double(n: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)  # let the others start: the limit is what holds them back
        in_flight -= 1
        return 2 * n

    assert asyncio.run(bounded(double, items, limit)) == [2 * n for n in items]
    assert most <= max(1, limit)


async def _pages(log: list[str], count: int, fail_at: int | None = None) -> AsyncIterator[int]:
    for n in range(count):
        log.append(f"read {n}")
        if n == fail_at:
            raise ValueError(f"page {n} is incomplete")
        yield n
    log.append("end")


async def test_read_ahead_reads_the_next_page_while_the_consumer_works_on_one() -> None:
    log: list[str] = []
    got = []
    async with contextlib.aclosing(read_ahead(_pages(log, 3))) as pages:
        async for page in pages:
            await asyncio.sleep(0)  # the consumer's work yields to the loop, as an export does
            log.append(f"use {page}")
            got.append(page)
    assert got == [0, 1, 2]
    # Each page is read before the one before it is used, and never two pages ahead.
    assert log == ["read 0", "read 1", "use 0", "read 2", "use 1", "end", "use 2"]


async def test_read_ahead_raises_a_failed_read_where_its_page_would_be() -> None:
    log: list[str] = []
    got: list[int] = []

    async def consume() -> None:
        async with contextlib.aclosing(read_ahead(_pages(log, 3, fail_at=1))) as pages:
            async for page in pages:
                got.append(page)

    with pytest.raises(ValueError, match="page 1 is incomplete"):
        await consume()
    assert got == [0]


async def test_leaving_read_ahead_early_stops_the_read_in_flight_and_closes_the_pages() -> None:
    log: list[str] = []
    async with contextlib.aclosing(read_ahead(_pages(log, 5))) as pages:
        async for page in pages:
            if page == 1:
                break
    assert "end" not in log and "read 4" not in log
    assert len([e for e in log if e.startswith("read")]) <= 3


async def test_started_runs_a_read_alongside_the_block_and_hands_its_answer_when_awaited() -> None:
    log: list[str] = []

    async def licenses() -> str:
        log.append("licenses asked")
        await asyncio.sleep(0)
        log.append("licenses answered")
        return "G2M"

    async with started(licenses) as answer:
        log.append("block reads")
        await asyncio.sleep(0)  # the block's own read yields to the loop
        log.append("block read")
        assert await answer == "G2M"
    assert log == ["block reads", "licenses asked", "block read", "licenses answered"]


async def test_started_cancels_an_unawaited_read_and_keeps_its_error_to_itself() -> None:
    gate = asyncio.Event()
    cancelled = []

    async def never_needed() -> str:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "unused"

    async def failing() -> str:
        raise ValueError("the Admin API is down")

    async with started(never_needed):
        await asyncio.sleep(0)
    assert cancelled == [True]
    async with started(failing):
        await asyncio.sleep(0)  # it fails while the block runs; nobody awaits it: no error here
    with pytest.raises(ValueError, match="Admin API is down"):
        async with started(failing) as answer:
            await answer
