"""One bounded fan-out for every concurrent read or write over a collection: at most `limit`
calls in flight, results in input order. Call sites size `limit` from settings
(CYCLE_CONCURRENCY), never leave it unbounded. And `read_ahead`: a paged read one page ahead
of its consumer, and `started`: a read begun now, alongside the reads before it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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


_END = object()


async def _next(pages: AsyncIterator[T]) -> object:
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return _END


async def read_ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """The pages of `pages` in order, each next page read while the consumer works on the one it
    has: never more than one page ahead. A failed read raises where its page would have been
    yielded. Use inside `contextlib.aclosing`: leaving early cancels the read in flight."""
    ahead: asyncio.Future[object] = asyncio.ensure_future(_next(pages))
    try:
        while (page := await ahead) is not _END:
            ahead = asyncio.ensure_future(_next(pages))
            yield page  # type: ignore[misc]
    finally:
        ahead.cancel()
        await asyncio.wait([ahead])  # a cancellation of this caller still reaches it
        if not ahead.cancelled():
            ahead.exception()  # a read nobody will consume: its error is not this caller's
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()


@contextlib.asynccontextmanager
async def started(read: Callable[[], Awaitable[R]]) -> AsyncIterator[asyncio.Future[R]]:
    """`read()` begun now, for the block to await when it needs the answer (or not at all): a
    read that depends on nothing the block reads first runs alongside it. Leaving the block
    cancels it if it is still running; its error is the block's only where the block awaits it."""
    task = asyncio.ensure_future(read())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait([task])  # a cancellation of this caller still reaches it
        if not task.cancelled():
            task.exception()  # an answer nobody awaited: its error is not this caller's
