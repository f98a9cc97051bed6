"""Client-side pacing for one GoTo API: a token bucket (requests per second) plus a cap on
requests in flight. GoTo limits each API separately (10 req/s by default,
docs/reference/goto-api.md#rate-limits), so each client owns one ``RateLimiter``.

GoTo counts all of an account's calls to one API together, whichever instance sends them, so a
``RateLimiter`` may also hold a ``SharedBudget``: the API's schedule kept in Table Storage and
shared by every process of the installation. The local bucket then only paces the sends the
shared budget could not (storage unreachable), at the rate divided by the instance count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("shared.goto")


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


class Run(Protocol):
    """A run of booked slots (shared/store/budget.py Reservation)."""

    count: int

    def slots(self) -> list[float]: ...


class Ledger(Protocol):
    """Where the shared schedules are kept (shared/store/budget.py BudgetRepository)."""

    async def reserve(
        self, name: str, count: int, interval: float, *, now: float, not_before: float = 0.0, horizon: float = 0.0
    ) -> Run: ...


@dataclass
class BudgetStats:
    bookings: int = 0  # round trips to the ledger that booked slots
    booked: int = 0  # slots booked
    used: int = 0  # booked slots a request was sent on
    voided: int = 0  # booked slots that went by unused (held too long, or inside a pause)
    outages: int = 0  # times the ledger failed and was set aside for `retry_after`
    fallbacks: int = 0  # sends paced by the local bucket instead


class SharedBudget:
    """One GoTo API's request schedule, shared with every other process through `ledger`.

    A send takes the next slot this process holds; when it holds none, it books up to `batch`
    consecutive slots in one round trip (no more than the senders waiting, so an idle process
    books one slot at a time and wastes none), starting no sooner than the booking's answer is
    expected back (the last round trip's time), so that its slots are not gone by when they
    arrive. A held slot that has gone by (more than one interval late) is void, never sent on: a
    late send could land next to another process's slot. Times are Unix seconds, the one clock
    every host shares.

    Degrades safely: when the ledger fails or does not answer within `timeout`, `acquire`
    returns False at once (the caller paces with its local bucket, at the rate divided by the
    instance count) and the ledger is not asked again for `retry_after` seconds.
    """

    def __init__(
        self,
        ledger: Ledger,
        name: str,
        rate: float,
        *,
        instances: int = 1,
        batch: int = 4,
        timeout: float = 5.0,
        retry_after: float = 60.0,
        horizon: float = 300.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or instances < 1 or batch < 1:
            raise ValueError("a shared budget takes rate > 0, instances >= 1 and batch >= 1")
        self.ledger = ledger
        self.name = name
        self.interval = 1.0 / rate
        self.fallback_rate = rate / instances
        self.batch = batch
        self.timeout = timeout
        self.retry_after = retry_after
        self.horizon = horizon
        self.stats = BudgetStats()
        self._clock = clock
        self._sleep = sleep
        self._held: deque[float] = deque()
        self._lock = asyncio.Lock()  # one booking at a time; the others take from what it booked
        self._waiting = 0
        self._down_until = 0.0
        self._not_before = 0.0  # the end of the last pause (429) this process knows of
        self._round_trip = 0.0  # how long the last booking took

    @property
    def available(self) -> bool:
        """False while the ledger is set aside after a failure."""
        return self._clock() >= self._down_until

    async def acquire(self) -> bool:
        """Waits for a shared slot and returns True; False at once when the ledger is set aside."""
        self._waiting += 1
        try:
            while True:
                slot = await self._next_slot()
                if slot is None:
                    self.stats.fallbacks += 1
                    return False
                wait = slot - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                if slot >= self._not_before:
                    self.stats.used += 1
                    return True
                self.stats.voided += 1  # a pause began while this sender slept
        finally:
            self._waiting -= 1

    async def pause(self, seconds: float) -> None:
        """A 429: every process holds off. The pause is booked in the ledger, so the shared
        schedule moves past it; the slots this process held before it are void."""
        now = self._clock()
        self._not_before = max(self._not_before, now + seconds)
        self.stats.voided += len(self._held)
        self._held.clear()
        async with self._lock:
            await self._book(1, now)

    async def _next_slot(self) -> float | None:
        async with self._lock:
            late = self._clock() - self.interval
            while self._held:
                slot = self._held.popleft()
                if slot >= late and slot >= self._not_before:
                    return slot
                self.stats.voided += 1
            if not await self._book(max(1, min(self.batch, self._waiting)), self._clock()):
                return None
            return self._held.popleft()

    async def _book(self, count: int, now: float) -> bool:
        if not self.available:
            return False
        asked = self._clock()
        try:
            run = await asyncio.wait_for(
                self.ledger.reserve(
                    self.name,
                    count,
                    self.interval,
                    now=now + self._round_trip,
                    not_before=self._not_before,
                    horizon=self.horizon,
                ),
                self.timeout,
            )
        except Exception as exc:
            self._down_until = self._clock() + self.retry_after
            self.stats.outages += 1
            log.warning(
                "the shared GoTo budget %r is unavailable (%s); pacing this instance alone at %.2f req/s for %.0f s",
                self.name,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
                self.fallback_rate,
                self.retry_after,
            )
            return False
        self._round_trip = min(max(0.0, self._clock() - asked), self.interval * self.batch)
        self.stats.bookings += 1
        self.stats.booked += run.count
        self._held.extend(run.slots())
        return True


class RateLimiter:
    """A concurrency semaphore and the pacing: the shared budget when given (its local bucket
    pacing only what the budget could not), else a token bucket. ``rate=None`` disables both."""

    def __init__(
        self,
        rate: float | None = 10.0,
        burst: float = 1.0,
        max_concurrency: int = 4,
        budget: SharedBudget | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.budget = budget if rate else None
        if self.budget is not None:
            self.bucket: TokenBucket | None = TokenBucket(self.budget.fallback_rate)
        else:
            self.bucket = TokenBucket(rate, burst) if rate else None
        self.max_concurrency = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        # The semaphore first, then the token: the request leaves right after its token is taken,
        # so a queue of waiters cannot turn into a burst.
        async with self._semaphore:
            shared = self.budget is not None and await self.budget.acquire()
            if not shared and self.bucket is not None:
                await self.bucket.acquire()
            yield

    async def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.bucket is not None:
            self.bucket.pause(seconds)
        if self.budget is not None:
            await self.budget.pause(seconds)
