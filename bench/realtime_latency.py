"""Real-time benchmark (figures go to docs/benchmarks.md; nothing is asserted).

1. Latency from a change in the Graph emulator to the change in GoTo, through Graph's
   notification, the webhook intake (served by the Functions host stand-in), the Storage queue
   (Azurite) and the worker, over N sequential renames: p50, p99 (goal p99 < 2 s locally).
2. Intake response time for valid notification batches posted straight to the intake:
   p50, p99 (goal p99 < 100 ms; Graph's limit is 3 s).

    python bench/realtime_latency.py [--changes 200] [--posts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from bench.world import realtime_world
from emulators.world import WorldOptions
from shared.model import utcnow
from shared.realtime.services import services_for


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(changes: int, posts: int) -> dict[str, object]:
    async with realtime_world(WorldOptions(users=300, groups=10, goto_rate_limit=10.0)) as rw:
        world, host, settings = rw.world, rw.host, rw.settings
        await rw.first_cycle()
        store = await services_for(settings).store()
        linked = [lk for lk in await store.links.all("user") if lk.active]
        latencies: list[float] = []
        for i in range(changes):
            uid = linked[i % len(linked)].entra_id
            upn = world.graph.user(uid)["userPrincipalName"]
            name = f"Renamed {i}"
            t0 = time.perf_counter()
            world.graph.update_user(uid, displayName=name)
            while (world.goto.user_by_username(upn) or {}).get("displayName") != name:
                await asyncio.sleep(0.005)
                if time.perf_counter() - t0 > 30:
                    raise TimeoutError(f"change {i} did not arrive")
            latencies.append(time.perf_counter() - t0)

        # The intake alone: the worker is paused so that its pipeline runs (Graph reads, GoTo
        # writes, in this same process and event loop as the emulators) do not stand in line.
        await host.stop_queue_workers()
        users_sub = next(s for s in await store.subscriptions.all() if s.resource == "/users")
        intake: list[float] = []
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(posts):
                uid = linked[i % len(linked)].entra_id
                body = {
                    "value": [
                        {
                            "id": str(uuid.uuid4()),
                            "subscriptionId": users_sub.id,
                            "subscriptionExpirationDateTime": users_sub.expires.isoformat(),
                            "clientState": users_sub.client_state,
                            "changeType": "updated",
                            "resource": f"Users/{uid}",
                            "tenantId": settings.tenant_id,
                            "resourceData": {"@odata.type": "#Microsoft.Graph.User", "id": uid},
                        }
                    ]
                }
                t0 = time.perf_counter()
                resp = await client.post(rw.notify_url, content=json.dumps(body))
                intake.append(time.perf_counter() - t0)
                assert resp.status_code == 202, resp.text
        return {
            "changes": changes,
            "latency_p50_s": round(statistics.median(latencies), 3),
            "latency_p99_s": round(pct(latencies, 99), 3),
            "latency_max_s": round(max(latencies), 3),
            "intake_posts": posts,
            "intake_p50_ms": round(statistics.median(intake) * 1000, 1),
            "intake_p99_ms": round(pct(intake, 99) * 1000, 1),
            "measured_at": utcnow().isoformat(timespec="seconds"),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    row = asyncio.run(run(args.changes, args.posts))
    print(markdown_table([row]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
