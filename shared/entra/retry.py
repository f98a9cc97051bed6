"""Retries of Microsoft Graph requests that wait exactly as long as Graph asks.

Graph answers throttled requests with 429 and `Retry-After`, documented with a fractional value
(`Retry-After: 2.128`, https://learn.microsoft.com/graph/throttling). The retry handler that
msgraph-sdk installs (kiota-http's RetryHandler) parses the header with `int()`, so such a value
is ignored and it backs off on its own schedule (seconds more, or less, than asked). This
middleware takes its place in the client built by `shared.entra.graph.make_graph_client`.
Sleep, clock and jitter are injectable so that tests measure the waits, not the wall clock.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY, BaseMiddleware
from kiota_http.middleware.options import RetryHandlerOption

RETRY_STATUSES = frozenset({429, 503, 504})
MAX_RETRIES = 3  # retries after the first attempt (msgraph-sdk's default too)
MAX_RETRY_AFTER = 180.0  # a longer Retry-After is not slept through: the caller gets the answer
BACKOFF_BASE = 1.0  # without Retry-After: 1, 2, 4 s (times 0.5-1 jitter), at most BACKOFF_CAP
BACKOFF_CAP = 30.0
RETRY_ATTEMPT = "Retry-Attempt"

Sleep = Callable[[float], Awaitable[None]]


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait: delta-seconds (fractions accepted, as Graph sends them) or an HTTP date;
    None when absent or unreadable, 0 for a date in the past."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _replayable(request: httpx.Request) -> bool:
    """A streamed body cannot be sent twice; everything msgraph-sdk sends here is buffered."""
    return request.headers.get("Content-Type") != "application/octet-stream"


class GraphRetryHandler(BaseMiddleware):
    """Retries 429, 503 and 504 up to `max_retries` times, waiting `Retry-After` when given
    (up to MAX_RETRY_AFTER), else an exponential backoff with jitter. A request's own
    `RetryHandlerOption` (should_retry, max_retry) is honoured as msgraph-sdk's would be."""

    def __init__(
        self,
        *,
        max_retries: int = MAX_RETRIES,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        super().__init__()
        self.max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def _limit(self, request: httpx.Request) -> int:
        options = request.extensions.get(REQUEST_OPTIONS_KEY) or {}
        option = options.get(RetryHandlerOption.get_key()) if isinstance(options, dict) else None
        if isinstance(option, RetryHandlerOption):
            return option.max_retry if option.should_retry else 0
        return self.max_retries

    def delay(self, response: httpx.Response, attempt: int, limit: int) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None: do not retry."""
        if response.status_code not in RETRY_STATUSES or attempt >= limit:
            return None
        asked = parse_retry_after(response.headers.get("retry-after"), self._clock())
        if asked is not None:
            return asked if asked <= MAX_RETRY_AFTER else None
        return min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * (0.5 + self._rng() / 2)

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        limit = self._limit(request) if _replayable(request) else 0
        attempt = 0
        while True:
            response = await super().send(request, transport)
            wait = self.delay(response, attempt, limit)
            if wait is None:
                return response
            await response.aclose()
            await self._sleep(wait)
            attempt += 1
            request.headers[RETRY_ATTEMPT] = str(attempt)
