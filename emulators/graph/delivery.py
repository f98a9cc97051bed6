"""Outbound HTTP of the Graph emulator: the subscription validation handshake
(docs/reference/microsoft-graph.md#validation-handshake) and the delivery of change and lifecycle
notifications (docs/reference/microsoft-graph.md#receiving-notifications,
docs/reference/microsoft-graph.md#lifecycle-events) with batching, exponential-backoff retries
and a bounded give-up time.

Mutations may happen on any thread (tests drive the emulator from outside its loop), so
``enqueue`` only appends under a lock and wakes the server loop with ``call_soon_threadsafe``;
all sending happens on that loop. Tests synchronise with ``wait_idle``, never with sleeps."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from .config import GraphConfig
from .model import Outgoing

log = logging.getLogger(__name__)

VALIDATION_FAILED = "Subscription validation request failed."


@dataclass
class DeliveryAttempt:
    url: str
    channel: str
    items: int
    attempt: int
    status: int | None
    error: str | None
    elapsed_ms: float


async def validate_endpoint(
    session: aiohttp.ClientSession, url: str, config: GraphConfig, token: str | None = None
) -> str | None:
    """Graph's handshake: POST ``{url}?validationToken=<url-encoded>`` (query string kept);
    the endpoint must answer 200, text/plain, body = the decoded token, within the timeout.
    Returns None on success, else the error message Graph would give."""
    token = token or f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    separator = "&" if "?" in url else "?"
    target = URL(url + separator + "validationToken=" + quote(token, safe=""), encoded=True)
    timeout = aiohttp.ClientTimeout(total=config.validation_timeout_seconds)
    try:
        async with session.post(
            target, data=b"", headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=timeout
        ) as response:
            body = await response.text()
            content_type = response.content_type
            status = response.status
    except TimeoutError:
        return (
            f"{VALIDATION_FAILED} Notification endpoint must respond with 200 OK to validation request "
            f"within {config.validation_timeout_seconds:g} seconds."
        )
    except (aiohttp.ClientError, OSError) as exc:
        return f"{VALIDATION_FAILED} Notification endpoint could not be reached: {type(exc).__name__}."
    if status != 200:
        return f"{VALIDATION_FAILED} Notification endpoint must respond with 200 OK to validation request."
    if body != token:
        return f"{VALIDATION_FAILED} Response must exactly match validationToken query parameter."
    if config.validation_requires_text_plain and content_type != "text/plain":
        return f"{VALIDATION_FAILED} Response Content-Type must be text/plain."
    return None


class Deliverer:
    """Queue + sender of notifications. ``outstanding`` counts items not yet delivered or dropped
    (ready, in flight, or waiting for a retry); held items of paused subscriptions are not."""

    def __init__(self, config: GraphConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._ready: list[Outgoing] = []
        self._outstanding = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.delivered: list[dict[str, Any]] = []
        self.delivered_to: list[tuple[str, dict[str, Any]]] = []
        self.dropped: list[dict[str, Any]] = []
        self.attempts: list[DeliveryAttempt] = []

    # --- any thread ----------------------------------------------------------------------------
    def enqueue(self, items: list[Outgoing]) -> None:
        with self._lock:
            self._ready.extend(items)
            self._outstanding += len(items)
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._poke)

    @property
    def outstanding(self) -> int:
        with self._lock:
            return self._outstanding

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Blocks until nothing is pending or retrying; TimeoutError otherwise."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._outstanding == 0, timeout):
                raise TimeoutError(f"{self._outstanding} notification(s) still pending after {timeout:g} s")

    def clear_log(self) -> None:
        with self._lock:
            self.delivered.clear()
            self.delivered_to.clear()
            self.dropped.clear()
            self.attempts.clear()

    # --- server loop ---------------------------------------------------------------------------
    async def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="graph-notifications")
        self._poke()

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with self._lock:
            self._loop = None
            dropped, self._ready = self._ready, []
            self.dropped.extend(o.item for o in dropped)
            self._outstanding = 0
            self._idle.notify_all()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.config.delivery_batch_window_seconds > 0:
                # Let notifications that are ready together travel together (one POST
                # may carry several, from several subscriptions;
                # docs/reference/microsoft-graph.md#receiving-notifications).
                await asyncio.sleep(self.config.delivery_batch_window_seconds)
            with self._lock:
                ready, self._ready = self._ready, []
            batches: dict[tuple[str, str], list[Outgoing]] = {}
            for outgoing in ready:
                batches.setdefault((outgoing.url, outgoing.channel), []).append(outgoing)
            size = max(1, self.config.delivery_max_items_per_post)
            for (url, channel), items in batches.items():
                for i in range(0, len(items), size):
                    task = asyncio.create_task(self._post(url, channel, items[i : i + size]))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)

    async def _post(self, url: str, channel: str, items: list[Outgoing]) -> None:
        assert self._session is not None
        now = time.monotonic()
        for outgoing in items:
            outgoing.attempts += 1
            if outgoing.first_attempt is None:
                outgoing.first_attempt = now
        payload = {"value": [o.item for o in items]}
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            timeout = aiohttp.ClientTimeout(total=self.config.delivery_timeout_seconds)
            async with self._session.post(URL(url), json=payload, timeout=timeout) as response:
                status = response.status
                await response.read()
        except TimeoutError:
            error = "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            error = type(exc).__name__
        attempt = max(o.attempts for o in items)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        record = DeliveryAttempt(url, channel, len(items), attempt, status, error, elapsed_ms)
        if status is not None and 200 <= status < 300:
            with self._lock:
                self.attempts.append(record)
                self.delivered.append(payload)
                self.delivered_to.append((url, payload))
                self._outstanding -= len(items)
                self._idle.notify_all()
            return
        retry: list[Outgoing] = []
        with self._lock:
            self.attempts.append(record)
            for outgoing in items:
                assert outgoing.first_attempt is not None
                if time.monotonic() - outgoing.first_attempt >= self.config.retry_give_up_seconds:
                    # After the retry window (4 h in Graph) the notification is discarded
                    # (docs/reference/microsoft-graph.md#receiving-notifications).
                    self.dropped.append(outgoing.item)
                    self._outstanding -= 1
                else:
                    retry.append(outgoing)
            self._idle.notify_all()
        if retry:
            delay = min(self.config.retry_base_seconds * 2 ** (attempt - 1), self.config.retry_max_interval_seconds)
            log.debug("delivery to %s failed (%s); retry of %d in %.2fs", url, status or error, len(retry), delay)
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle | None = None

            def requeue() -> None:
                if handle is not None:
                    self._timers.discard(handle)
                with self._lock:
                    self._ready.extend(retry)
                self._poke()

            handle = loop.call_later(delay, requeue)
            self._timers.add(handle)
