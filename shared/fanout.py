"""One bounded fan-out for every concurrent read or write over a collection: at most `limit`
calls in flight, results in input order. Call sites size `limit` from settings
(CYCLE_CONCURRENCY), never leave it unbounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def bounded(fn: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int) -> list[R]:
    """fn over items, at most `limit` at once (at least one), results in order."""
    sem = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with sem:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items)))
