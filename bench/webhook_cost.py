"""What one change costs on the real-time path, in a small and a large tenant (figures go to
docs/benchmarks.md; nothing is asserted).

For each tenant size: the demo tenant, one initial cycle, the subscription keeper, then N
sequential renames of assigned users, each through Graph's notification, the webhook intake
(Functions host stand-in), the Storage queue (Azurite) and the worker. For every change the
requests the worker sends are traced in order (Graph, GoTo, Table Storage; the queue's own
polling is left out), and the latency from the change in the Graph emulator to the change in
GoTo is measured.

Reported per size: requests (round trips) from the worker's start to the GoTo PATCH, Graph
requests per change, all requests per change, and the latency p50/p99.

    python bench/webhook_cost.py [--sizes 300,20000] [--changes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from bench.world import realtime_world
from emulators.world import LocalWorld, WorldOptions
from shared.model import utcnow
from shared.realtime.services import services_for


class Tracer:
    """Every HTTP request this process sends, in order: (kind, method, path)."""

    def __init__(self, classify: Callable[[str], str]) -> None:
        self.classify = classify
        self.events: list[tuple[str, str, str]] = []

    def install(self) -> None:
        from azure.core.pipeline.transport import AioHttpTransport

        tracer = self
        send_httpx = httpx.AsyncClient.send
        send_azure = AioHttpTransport.send

        async def httpx_send(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            tracer.record(str(request.url), request.method)
            return await send_httpx(client, request, **kwargs)

        async def azure_send(transport: Any, request: Any, **kwargs: Any) -> Any:
            tracer.record(str(request.url), request.method)
            return await send_azure(transport, request, **kwargs)

        httpx.AsyncClient.send = httpx_send  # type: ignore[method-assign]
        AioHttpTransport.send = azure_send  # type: ignore[method-assign]

    def record(self, url: str, method: str) -> None:
        kind = self.classify(url)
        if kind:
            self.events.append((kind, method, urlsplit(url).path))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def classifier(world: LocalWorld) -> Callable[[str], str]:
    ports = {
        urlsplit(world.graph.graph_url).port: "graph",
        urlsplit(world.goto.scim_url).port: "goto",
        urlsplit(world.azurite.endpoint("table")).port: "table",
    }
    return lambda url: ports.get(urlsplit(url).port, "")


async def measure(users: int, changes: int) -> dict[str, object]:
    options = WorldOptions(users=users, groups=20, goto_rate_limit=0)
    async with realtime_world(options, {"ROLE_LICENSES": ""}) as rw:
        world, host = rw.world, rw.host
        tracer = Tracer(classifier(world))
        await rw.first_cycle()
        store = await services_for(rw.settings).store()
        linked = [lk for lk in await store.links.all("user") if lk.active and lk.live]
        assignments = len(await store.assignments.load())
        tracer.install()
        await _rename(world, linked[-1].entra_id, "Warm-up")  # the first change also fetches a GoTo token
        latencies: list[float] = []
        to_patch: list[int] = []
        per_change: list[Counter[str]] = []
        for i in range(changes):
            uid = linked[(i * 7919) % len(linked)].entra_id
            upn = world.graph.user(uid)["userPrincipalName"]
            name = f"Renamed {i}"
            start = len(tracer.events)
            t0 = time.perf_counter()
            world.graph.update_user(uid, displayName=name)
            while (world.goto.user_by_username(upn) or {}).get("displayName") != name:
                await asyncio.sleep(0.002)
                if time.perf_counter() - t0 > 30:
                    raise TimeoutError(f"change {i} did not arrive")
            latencies.append(time.perf_counter() - t0)
            await host.drain()  # the worker's writes after the PATCH (link, log) finish too
            events = tracer.events[start:]
            worker = _worker_events(events)
            patch = next(
                n for n, (kind, method, _) in enumerate(worker, 1) if kind == "goto" and method in ("PATCH", "PUT")
            )
            to_patch.append(patch)
            if "--trace" in sys.argv:
                print(i, round(latencies[-1], 3), [(k, m, path[-40:]) for k, m, path in worker[:patch]], flush=True)
            per_change.append(Counter(kind for kind, _, _ in worker))
        return {
            "users": users,
            "assignments": assignments,
            "changes": changes,
            "worker requests to the PATCH (median)": statistics.median(to_patch),
            "worker requests to the PATCH (max)": max(to_patch),
            "Graph requests per change (max)": max(c["graph"] for c in per_change),
            "requests per change (median, all)": statistics.median(sum(c.values()) for c in per_change),
            "latency p50 s": round(statistics.median(latencies), 3),
            "latency p99 s": round(pct(latencies, 99), 3),
            "measured_at": utcnow().isoformat(timespec="seconds"),
        }


async def _rename(world: LocalWorld, uid: str, name: str) -> None:
    upn = world.graph.user(uid)["userPrincipalName"]
    t0 = time.perf_counter()
    world.graph.update_user(uid, displayName=name)
    while (world.goto.user_by_username(upn) or {}).get("displayName") != name:
        await asyncio.sleep(0.002)
        if time.perf_counter() - t0 > 30:
            raise TimeoutError(f"{name} did not arrive")


def _worker_events(events: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The worker's requests: from the job read that starts its run (the intake before it reads
    only the subscriptions table)."""
    start = next((n for n, (kind, _, path) in enumerate(events) if kind == "table" and "job" in path), 0)
    return events[start:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="300,20000", help="comma-separated tenant sizes (users)")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--trace", action="store_true", help="print each change's requests up to the PATCH")
    args = parser.parse_args()
    rows = [asyncio.run(measure(int(size), args.changes)) for size in args.sizes.split(",")]
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
