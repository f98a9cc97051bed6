"""Long-lived clients for the real-time entrances, one set per event loop and configuration.

A Functions worker process serves many invocations on one event loop: opening the store, the
queue and the Graph/GoTo clients once keeps the webhook intake far under Graph's 3-second limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractAsyncContextManager
from typing import Any

from shared.realtime.keeper import SubscriptionKeeper
from shared.realtime.queue import NotificationQueue
from shared.runtime import Runtime, open_runtime, open_store
from shared.settings import Settings
from shared.store import Store


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None
        self._queue: NotificationQueue | None = None
        self._runtime_cm: AbstractAsyncContextManager[Runtime] | None = None
        self._runtime: Runtime | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> Store:
        async with self._lock:
            if self._store is None:
                self._store = await open_store(self.settings)
            return self._store

    async def queue(self) -> NotificationQueue:
        async with self._lock:
            if self._queue is None:
                self._queue = make_queue(self.settings)
                await self._queue.ensure()
            return self._queue

    async def runtime(self) -> Runtime:
        async with self._lock:
            if self._runtime is None:
                self._runtime_cm = open_runtime(self.settings)
                self._runtime = await self._runtime_cm.__aenter__()
            return self._runtime

    async def keeper(self) -> SubscriptionKeeper:
        rt = await self.runtime()
        return SubscriptionKeeper(rt.reader.client, rt.reader, rt.store, rt.settings)

    async def aclose(self) -> None:
        if self._runtime_cm is not None:
            await self._runtime_cm.__aexit__(None, None, None)
        if self._store is not None:
            await self._store.close()
        if self._queue is not None:
            await self._queue.close()
        self._store = self._queue = self._runtime = self._runtime_cm = None


def make_queue(settings: Settings, name: str | None = None) -> NotificationQueue:
    """A Storage queue client: the notification queue, or the one `name`d (the continuations')."""
    name = name or settings.notification_queue
    if settings.storage_connection_string:
        return NotificationQueue.from_connection_string(settings.storage_connection_string, name)
    if settings.storage_table_endpoint:
        from azure.identity.aio import DefaultAzureCredential

        account_url = settings.storage_table_endpoint.replace(".table.", ".queue.")
        return NotificationQueue.from_account_url(account_url, name, DefaultAzureCredential())
    raise ValueError("no storage configured for the queues (GOTOSYNC_STORAGE or GOTOSYNC_TABLE_ENDPOINT)")


_cache: dict[tuple[int, str], Services] = {}


def _key(settings: Settings) -> str:
    return "|".join(
        (settings.storage_connection_string, settings.storage_table_endpoint, settings.table_prefix,
         settings.graph_base_url, settings.goto_scim_url, settings.service_principal_id)
    )  # fmt: skip


def services_for(settings: Settings) -> Services:
    """The Services of the running event loop for this configuration (created on first use)."""
    key = (id(asyncio.get_running_loop()), _key(settings))
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = Services(settings)
    return found


async def close_services() -> None:
    """Closes every cached client of the running loop (tests, and the local host's shutdown)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _cache if k[0] == loop_id]:
        services = _cache.pop(key)
        with contextlib.suppress(Exception):
            await services.aclose()


def forget_closed_loops(keep: Any = None) -> None:
    """Drops entries of event loops that no longer run (their clients died with them)."""
    for key in list(_cache):
        if keep is None or key[0] != id(keep):
            _cache.pop(key, None)
