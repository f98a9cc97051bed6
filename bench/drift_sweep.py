"""What the drift sweep costs (figures go to docs/benchmarks.md; nothing is asserted).

For N linked users (an initial cycle first; GoTo pages /Users, and gotosync asks 1,000 a page):

1. a sweep that finds nothing, with GoTo's rate limit lifted: wall time, GoTo and Graph
   requests, the sweep's extra RSS;
2. the same at GoTo's 10 requests/s (the emulator's token bucket, the client's own pacing);
3. a sweep after hand edits in GoTo: 1% renamed, 1% disabled, 1% deleted, and 0.5% that
   gotosync had disabled (unassigned in Entra) re-enabled: wall time and requests per repair;
4. with ROLE_LICENSES, for a smaller M: 1% of the seats removed by hand, one sweep.

    python bench/drift_sweep.py [--users 10000] [--licensed-users 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from bench.sync_cycle import PeakRss
from emulators.azurite import Azurite
from emulators.goto import GoToEmulator, GoToSwitches
from emulators.graph import GraphEmulator
from shared.engine.drift_sweep import DriftResult, sweep_drift
from shared.model import Initiator
from shared.runtime import open_runtime
from shared.settings import Settings

SWITCHES = {"active": "honour", "extension_attrs": "store", "users_paging": True}


class World:
    def __init__(self, azurite: Azurite, users: int, licensed: bool) -> None:
        self.graph = GraphEmulator(seed=1)
        self.graph.generate(users=users, groups=0, seed=1, profile="plain")
        self.ids = list(self.graph.tenant.users)
        for uid in self.ids:
            self.graph.assign(uid, "MeetingOrganizer")
        self.goto = GoToEmulator(switches=GoToSwitches(rate_limit=0, **SWITCHES), seats=users + 10)
        self.graph.start()
        self.goto.start()
        self.settings = Settings(
            storage_connection_string=azurite.connection_string,
            table_prefix="d" + uuid.uuid4().hex[:10],
            service_principal_id=self.graph.sp_id,
            graph_base_url=self.graph.graph_url,
            graph_static_token="bench",
            goto_scim_url=self.goto.scim_url,
            goto_admin_url=self.goto.admin_url,
            goto_access_token=self.goto.issue_access_token(expires_in=24 * 3600),
            goto_rate_limit=10_000.0,
            goto_max_concurrency=16,
            cycle_concurrency=16,
            role_licenses={"MeetingOrganizer": ("G2M",)} if licensed else {},
        )

    def stop(self) -> None:
        self.graph.stop()
        self.goto.stop()

    async def cycle(self, **overrides: Any) -> None:
        async with open_runtime(self.settings.with_overrides(**overrides)) as rt:
            result = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
        assert result.by_status.get("Failure", 0) == 0, result.summary()

    async def sweep(self, label: str, rate_limit: float | None = None) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if rate_limit:
            self.goto.update_switches(rate_limit=rate_limit, rate_burst=int(rate_limit))
            overrides = {"goto_rate_limit": rate_limit, "goto_max_concurrency": 4}
        self.graph.counters.reset()
        self.goto.counters.reset()
        async with open_runtime(self.settings.with_overrides(**overrides)) as rt:
            with PeakRss() as rss:
                t0 = time.perf_counter()
                result = await sweep_drift(rt.engine, initiated_by=Initiator.CLI)
                wall = time.perf_counter() - t0
        self.goto.update_switches(rate_limit=0)
        return row(label, result, wall, rss.extra_mib, self)

    def keys(self, ids: list[str]) -> list[str]:
        names = {str(self.graph.user(uid)["userPrincipalName"]).lower() for uid in ids}
        return [u["key"] for u in self.goto.users() if u["userName"].lower() in names]

    def by_hand(self, change: str, keys: list[str]) -> None:
        """GoTo edited by hand through its API, as an admin would (its own token, not gotosync's)."""
        seat = f"/admin/rest/v1/accounts/{self.goto.account_key}/licenses/{self.goto.license_key('G2M')}/users"
        with httpx.Client(base_url=self.goto.url, headers=self.goto.auth_headers(), timeout=30) as goto:
            for key in keys:
                user = f"/identity/v1/Users/{key}"
                if change == "rename":
                    answer = goto.patch(user, json={"displayName": "Renamed By Hand"})
                elif change in ("disable", "enable"):
                    answer = goto.patch(user, json={"active": change == "enable"})
                elif change == "delete":
                    answer = goto.delete(user)
                else:  # unseat
                    answer = goto.delete(f"{seat}/{key}")
                answer.raise_for_status()


def row(label: str, result: DriftResult, wall: float, rss: float, world: World) -> dict[str, Any]:
    repairs = len(result.records)
    scim = world.goto.counters.total(path_prefix="/identity/v1")
    admin = world.goto.counters.total(path_prefix="/admin/rest/v1")
    pages = world.goto.counters.total("GET", path_regex=r"^/identity/v1/Users$")
    return {
        "run": label,
        "linked": result.compared,
        "repairs": repairs,
        "by action": ", ".join(f"{k} {v}" for k, v in sorted(result.summary()["countsByAction"].items())) or "—",
        "wall s": round(wall, 2),
        "listing pages": pages,
        "GoTo SCIM req": scim,
        "GoTo Admin req": admin,
        "Graph req": world.graph.counters.total(),
        "GoTo req per repair (beyond the listing)": round((scim + admin - pages) / repairs, 2) if repairs else "—",
        "extra RSS MiB": round(rss, 1),
    }


async def unlicensed(azurite: Azurite, users: int) -> list[dict[str, Any]]:
    world = World(azurite, users, licensed=False)
    try:
        await world.cycle()
        rows = [await world.sweep("no drift, limit lifted"), await world.sweep("no drift, 10 req/s", 10.0)]
        one = max(1, users // 100)
        leavers = world.ids[-max(1, one // 2) :]
        for uid in leavers:
            world.graph.unassign(uid)
        await world.cycle()
        world.by_hand("enable", world.keys(leavers))
        world.by_hand("rename", world.keys(world.ids[:one]))
        world.by_hand("disable", world.keys(world.ids[one : 2 * one]))
        world.by_hand("delete", world.keys(world.ids[2 * one : 3 * one]))
        rows.append(await world.sweep("3.5% drifted, limit lifted"))
        rows.append(await world.sweep("after the repairs"))
        return rows
    finally:
        world.stop()


async def licensed(azurite: Azurite, users: int) -> list[dict[str, Any]]:
    world = World(azurite, users, licensed=True)
    try:
        await world.cycle()
        world.by_hand("unseat", world.keys(world.ids[: max(1, users // 100)]))
        return [await world.sweep("ROLE_LICENSES, 1% unseated")]
    finally:
        world.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--licensed-users", type=int, default=1_000)
    args = parser.parse_args()
    with Azurite() as azurite:
        try:
            rows = asyncio.run(unlicensed(azurite, args.users))
            if args.licensed_users:
                rows += asyncio.run(licensed(azurite, args.licensed_users))
        except Exception:
            print("Azurite said:", *azurite.output[-20:], sep="\n")
            raise
    keys = list(rows[0])
    print(markdown_table(rows, keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
