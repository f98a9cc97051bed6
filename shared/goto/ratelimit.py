"""Client-side pacing for one GoTo API: a token bucket (requests per second) plus a cap on
requests in flight. GoTo limits each API separately (10 req/s by default,
docs/reference/goto-api.md#rate-limits), so each client owns one ``RateLimiter``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class TokenBucket:
    """An asyncio token bucket kept as a schedule (GCRA, the generic cell rate algorithm): each
    send is given a slot, ``1/rate`` after the previous slot, and the sender sleeps until it.

    Slots follow one another on the schedule, not on the moment a sleeper actually woke up: a
    sender the event loop wakes a few milliseconds late does not push every later slot back, so
    the long-run pace is ``rate`` itself (a bucket that restarted its count at each late wake-up
    lost 3-4 % of the limit on a loaded machine). With ``burst=1`` no two slots are closer than
    ``1/rate``, so a window of W seconds holds at most ``W * rate + 1`` sends plus the one a late
    wake-up carried into it. Slots are handed out in arrival order.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 (use rate_limit=None for no limit)")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1.0) * self.interval  # how far ahead of the schedule a burst may go
        self._clock = clock
        self._sleep = sleep
        self._next = clock()  # the theoretical time of the next send (GCRA's TAT)
        self._paused_until = 0.0

    def reserve(self) -> float:
        """Takes the next slot and returns the clock time to send at (now or later)."""
        now = self._clock()
        slot = max(self._next - self._tolerance, now)
        self._next = max(self._next, slot) + self.interval
        return slot

    async def acquire(self) -> None:
        while True:
            wait = self.reserve() - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if self._clock() >= self._paused_until:
                return
            # A pause began while this sender slept: its slot is void, it takes one after the pause.

    def pause(self, seconds: float) -> None:
        """Holds every sender for ``seconds`` (after a 429: the whole API is throttled, not one
        call); the first slot after the pause starts the count again, without a burst."""
        if seconds <= 0:
            return
        until = self._clock() + seconds
        self._paused_until = max(self._paused_until, until)
        self._next = max(self._next, until + self._tolerance)


class RateLimiter:
    """A token bucket and a concurrency semaphore. ``rate=None`` disables the bucket."""

    def __init__(self, rate: float | None = 10.0, burst: float = 1.0, max_concurrency: int = 4) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.bucket = TokenBucket(rate, burst) if rate else None
        self.max_concurrency = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        # The semaphore first, then the token: the request leaves right after its token is taken,
        # so a queue of waiters cannot turn into a burst.
        async with self._semaphore:
            if self.bucket is not None:
                await self.bucket.acquire()
            yield

    def pause(self, seconds: float) -> None:
        if self.bucket is not None:
            self.bucket.pause(seconds)
