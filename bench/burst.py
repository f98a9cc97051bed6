"""A burst of changes in Entra through the real-time path (figures go to docs/benchmarks.md;
nothing is asserted).

The demo tenant (default 20,000 users), one initial cycle with GoTo's rate limit lifted, the
subscriptions created by the keeper; then GoTo's documented limit is switched on in the emulator
(10 req/s) and the worker's client paces itself at the same rate. N assigned users are renamed
at once in the Graph emulator (optionally with a department change each as well, so that Graph
sends two notifications per user); Graph posts its notifications to the intake (the Functions host
stand-in), the intake queues them (Azurite), and the host's queue worker runs them.

Reported: the time from the first change until every renamed user shows the new name in GoTo,
the goal (1.1 x N / rate), when GoTo applied the first and the last PATCH and their pace between
(GoTo's write journal), Graph and GoTo requests (per change), GoTo 429s (as gotosync's
client counted them), Failure log entries and escrow entries of the burst, and the users the worker
skipped because a newer read was already applied (coalesced).

    python bench/burst.py [--users 20000] [--changes 1000] [--updates-per-user 1] [--rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import realtime_world
from emulators.functions_host import FunctionsHost, apply_env
from emulators.world import LocalWorld, WorldOptions
from shared import telemetry
from shared.model import Initiator, Status, utcnow
from shared.realtime.services import services_for
from shared.runtime import open_runtime
from shared.settings import Settings

GOTO_SCIM = "/identity/"
COALESCED = "gotosync.webhook.coalesced"  # users the worker skipped: a newer read was already applied


async def measure(users: int, changes: int, updates: int, rate: float, give_up_s: float) -> dict[str, object]:
    options = WorldOptions(users=users, groups=20, goto_rate_limit=0)
    async with realtime_world(options, {"ROLE_LICENSES": ""}) as rw:
        world, host, settings = rw.world, rw.host, rw.settings
        t0 = time.perf_counter()
        async with open_runtime(settings.with_overrides(goto_rate_limit=10_000.0, goto_max_concurrency=16)) as rt:
            initial = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
            while initial.continuing:  # the set-up cycle runs to its end, whatever its time budget
                initial = await rt.engine.run_cycle(initiated_by=Initiator.CLI, resume=initial.cycle_id)
        print(f"initial cycle: {initial.by_action} in {time.perf_counter() - t0:.0f} s", flush=True)
        # From here on GoTo takes `rate` requests per second and the worker paces itself so.
        apply_env({"GOTO_RATE_LIMIT": str(rate)})
        world.goto.update_switches(rate_limit=rate, rate_burst=max(1, int(rate)))
        await host.invoke("subscription_keeper")
        services = services_for(Settings.from_env())
        store = await services.store()
        rt = await services.runtime()
        linked = sorted(
            (lk for lk in await store.links.all("user") if lk.active and lk.live), key=lambda lk: lk.entra_id
        )
        chosen = [linked[(i * 7919) % len(linked)].entra_id for i in range(min(changes, len(linked)))]
        chosen = list(dict.fromkeys(chosen))
        upns = {uid: world.graph.user(uid)["userPrincipalName"] for uid in chosen}
        await world.graph.wait_deliveries_idle_async(60)
        await host.drain()
        world.graph.counters.reset()
        world.goto.counters.reset()
        stats = rt.scim.stats
        throttled_before, requests_before = stats.throttled, stats.requests
        journal_seq = max((e["seq"] for e in world.goto.journal_entries()), default=0)
        started_at = utcnow()
        with telemetry.recording() as recorded:
            made, converged, settled = await _burst(world, host, chosen, upns, updates, give_up_s)
        patches = patch_times(world, journal_seq, started_at)
        failures = await store.logs.query(status=Status.FAILURE, since=started_at)
        escrowed = await store.escrow.all()
        n = len(chosen)
        graph_requests = world.graph.counters.total()
        goto_scim = world.goto.counters.total(path_prefix=GOTO_SCIM)
        return {
            "users": users,
            "changes": n,
            "notifications per user": updates,
            "changes made in s": round(made, 2),
            "consistent in GoTo after s": round(converged, 1),
            "queue drained after s": round(settled, 1),
            "first PATCH after s": round(patches[0], 1),
            "PATCHes/s first to last": round((len(patches) - 1) / (patches[-1] - patches[0]), 2),
            "last PATCH after s": round(patches[-1], 1),
            "goal s (1.1 x changes / rate)": round(1.1 * n / rate, 1),
            "Graph requests": graph_requests,
            "Graph per change": round(graph_requests / n, 3),
            "GoTo SCIM requests": goto_scim,
            "GoTo per change": round(goto_scim / n, 3),
            "GoTo PATCH": world.goto.counters.total("PATCH", GOTO_SCIM),
            "GoTo GET": world.goto.counters.total("GET", GOTO_SCIM),
            "GoTo 429": stats.throttled - throttled_before,
            "GoTo client requests": stats.requests - requests_before,
            "skipped as coalesced": int(recorded.total(COALESCED)),
            "Failure entries": len(failures),
            "escrowed": len(escrowed),
            "measured_at": utcnow().isoformat(timespec="seconds"),
        }


def patch_times(world: LocalWorld, since: int, started_at: datetime) -> list[float]:
    """Seconds from the first change to each PATCH GoTo applied (its write journal): where the
    time goes before the first, between the first and the last, and after the last."""
    entries = world.goto.journal_entries(since)
    return sorted(
        (datetime.fromisoformat(e["time"]) - started_at).total_seconds() for e in entries if e["method"] == "PATCH"
    )


async def _burst(
    world: LocalWorld, host: FunctionsHost, chosen: list[str], upns: dict[str, str], updates: int, give_up_s: float
) -> tuple[float, float, float]:
    """Renames every chosen user at once (then `updates - 1` department changes each); returns the
    seconds to make the changes, until GoTo shows every new name, and until the queue is empty."""
    start = time.perf_counter()
    for i, uid in enumerate(chosen):
        world.graph.update_user(uid, displayName=f"Burst {i}")
    for step in range(1, updates):
        for uid in chosen:
            world.graph.update_user(uid, department=f"Reorganised {step}")
    made = time.perf_counter() - start
    department = f"Reorganised {updates - 1}" if updates > 1 else None
    pending = {uid: f"Burst {i}" for i, uid in enumerate(chosen)}
    while pending:
        await asyncio.sleep(0.5)  # a poll of GoTo's state, not a synchronisation
        for uid, name in list(pending.items()):
            seen = world.goto.user_by_username(upns[uid]) or {}
            if seen.get("displayName") == name and (department is None or _department(seen) == department):
                del pending[uid]
        if time.perf_counter() - start > give_up_s:
            raise TimeoutError(f"{len(pending)} of {len(chosen)} changes not in GoTo after {give_up_s:.0f} s")
    converged = time.perf_counter() - start
    await world.graph.wait_deliveries_idle_async(60)
    await host.drain()  # the last links and log entries are written
    return made, converged, time.perf_counter() - start


def _department(user: dict[str, object]) -> object:
    enterprise = user.get("enterprise")
    return enterprise.get("department") if isinstance(enterprise, dict) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000, help="tenant size")
    parser.add_argument("--changes", type=int, default=1_000, help="users renamed at once")
    parser.add_argument("--updates-per-user", type=int, default=1, help="changes (so notifications) per user")
    parser.add_argument("--rate", type=float, default=10.0, help="GoTo requests per second (emulator and client)")
    parser.add_argument("--give-up", type=float, default=900.0, help="seconds")
    args = parser.parse_args()
    row = asyncio.run(measure(args.users, args.changes, args.updates_per_user, args.rate, args.give_up))
    width = max(len(k) for k in row)
    for key, value in row.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
