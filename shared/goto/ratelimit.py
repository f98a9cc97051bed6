"""Client-side pacing for one GoTo API: a token bucket (requests per second) plus a cap on
requests in flight. GoTo limits each API separately (10 req/s by default,
docs/reference/goto-api.md#rate-limits), so each client owns one ``RateLimiter``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

_EPSILON = 1e-9


class TokenBucket:
    """An asyncio token bucket. Waiters are served in arrival order (``asyncio.Lock`` is FIFO).

    With ``burst=1`` consecutive sends are at least ``1/rate`` apart, so no one-second window
    ever holds more than ``rate`` requests, whatever algorithm the server counts with.
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
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0 - _EPSILON:  # float refill may land a hair under 1
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """Holds every sender for ``seconds`` (after a 429: the whole API is throttled, not one call)."""
        if seconds <= 0:
            return
        now = self._clock()
        self._refill(now)
        self._tokens = min(self._tokens, 1.0)
        self._paused_until = max(self._paused_until, now + seconds)


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
