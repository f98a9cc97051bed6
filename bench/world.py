"""The world the real-time benches (burst.py, realtime_latency.py, webhook_cost.py) run in: the
local world (Azurite, the Graph and GoTo emulators, emulators/world.py), the Function app served by
the Functions host stand-in with its queue workers running, and the app settings pointing the app
at both, Graph's notifications going to the host's webhook intake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from emulators.functions_host import FunctionsHost, apply_env
from emulators.world import LocalWorld, WorldOptions
from shared.model import Initiator
from shared.realtime.services import close_services
from shared.runtime import open_runtime
from shared.settings import Settings

NOTIFY_ROUTE = "graph/notify"


@dataclass(frozen=True)
class RealtimeWorld:
    world: LocalWorld
    host: FunctionsHost
    webhook_key: str  # the intake's function key
    settings: Settings  # the app settings, also in the environment

    @property
    def notify_url(self) -> str:
        """The webhook intake, as Graph posts to it."""
        return self.host.function_url(NOTIFY_ROUTE, self.webhook_key)

    async def first_cycle(self) -> None:
        """One cycle, then the subscription keeper: every assigned user in GoTo, Graph subscribed."""
        async with open_runtime(self.settings) as rt:
            await rt.engine.run_cycle(initiated_by=Initiator.CLI)
        await self.host.invoke("subscription_keeper")


@asynccontextmanager
async def realtime_world(options: WorldOptions, env: dict[str, str] | None = None) -> AsyncIterator[RealtimeWorld]:
    """The started world and host, the app settings (`env` over the world's) in the environment;
    everything stopped and the app's shared services closed at the end."""
    import function_app

    world = LocalWorld(options).start()
    host = FunctionsHost(function_app.app)
    webhook_key = host.add_function_key("graph_notifications", "graph-webhook")
    try:
        await host.start(queues=True)
        app_env = world.env() | {
            "GRAPH_NOTIFICATION_URL": host.function_url(NOTIFY_ROUTE, webhook_key),
            "GRAPH_LIFECYCLE_URL": "",
            **(env or {}),
        }
        apply_env(app_env)
        yield RealtimeWorld(world, host, webhook_key, Settings.from_env(app_env))
    finally:
        await host.stop()
        await close_services()
        world.stop()
