"""A world with the Functions host stand-in serving gotosync's HTTP functions on 127.0.0.1, so
that the Graph emulator can deliver change notifications to the real intake. The configuration
is the deployed default: the notification URL carries a key scoped to the intake function, and
GRAPH_LIFECYCLE_URL is empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

import function_app
from emulators.functions_host import FunctionsHost
from shared.realtime.services import close_services, services_for
from shared.settings import Settings
from tests.fixtures.world import World


@dataclass
class Live:
    world: World
    host: FunctionsHost
    settings: Settings

    async def keeper_pass(self) -> Any:
        return await self.host.invoke("subscription_keeper")

    async def settle(self) -> int:
        """Waits until Graph has delivered everything, then lets the worker drain the queue."""
        await self.world.graph.wait_deliveries_idle_async(timeout=20)
        return await self.host.drain()

    async def store(self) -> Any:
        return await services_for(self.settings).store()


@pytest.fixture
async def make_live(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Any]]:
    hosts: list[FunctionsHost] = []

    async def make(settings: dict[str, Any] | None = None, **world_kwargs: Any) -> Live:
        world = make_world(**world_kwargs)
        host = FunctionsHost(function_app.app)
        # As deployed: Graph holds a key that opens the intake function only.
        webhook_key = host.add_function_key("graph_notifications", "graph-webhook")
        await host.start(queues=False)  # tests drain the queue themselves: no background polling
        hosts.append(host)
        overrides = {
            "graph_notification_url": host.function_url("graph/notify", webhook_key),
            "graph_lifecycle_url": "",  # the default: lifecycle notifications come to the same URL
            "notification_queue": "n" + world.settings.table_prefix,
            **(settings or {}),
        }
        for key, value in world.env(**overrides).items():
            monkeypatch.setenv(key, value)
        world.settings = world.settings.with_overrides(**overrides)
        return Live(world, host, world.settings)

    yield make
    for host in hosts:
        await host.stop()
    await close_services()
