"""The one bounded fan-out: never more than `limit` calls in flight, results in input order."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.fanout import bounded


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
