"""Benchmarks of the sync engine (figures go to docs/benchmarks.md; nothing is asserted).

1. Initial cycle for N assigned users with GoTo's rate limit lifted: wall time, GoTo requests
   per created user (goal <= 1.02), Graph requests (goal <= ceil(N/999) + a few per page of
   assignments), extra RSS of the engine during the cycle.
2. The same with GoTo's 10 req/s limit on, for a smaller N: requests/s sustained (goal >= 90%
   of the limit), failures (goal 0).
3. A no-change incremental cycle: GoTo writes (goal 0), Graph requests (goal <= 5).

    python bench/sync_cycle.py [--users 10000] [--limited-users 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from emulators.azurite import Azurite
from emulators.goto import GoToEmulator, GoToSwitches
from emulators.graph import GraphEmulator
from shared.model import Initiator
from shared.runtime import open_runtime
from shared.settings import Settings


class PeakRss:
    """Samples this process's RSS every 50 ms in a thread; reports the peak above a baseline."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.baseline) / 2**20


async def scenario(azurite: Azurite, users: int, rate_limit: float) -> dict[str, object]:
    graph = GraphEmulator(seed=1)
    graph.generate(users=users, groups=0, seed=1, profile="plain")
    for uid in list(graph.tenant.users):
        graph.assign(uid, "MeetingOrganizer")
    goto = GoToEmulator(switches=GoToSwitches(rate_limit=rate_limit, rate_burst=max(1, int(rate_limit or 1))))
    graph.start()
    goto.start()
    settings = Settings(
        storage_connection_string=azurite.connection_string,
        table_prefix="b" + uuid.uuid4().hex[:10],
        service_principal_id=graph.sp_id,
        graph_base_url=graph.graph_url,
        graph_static_token="bench",
        goto_scim_url=goto.scim_url,
        goto_access_token=goto.issue_access_token(expires_in=24 * 3600),
        goto_rate_limit=rate_limit or 10_000.0,
        goto_max_concurrency=8 if rate_limit else 16,
        cycle_concurrency=16,
    )
    try:
        graph.counters.reset()
        goto.counters.reset()
        async with open_runtime(settings) as rt:
            with PeakRss() as rss:
                t0 = time.perf_counter()
                first = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
                wall = time.perf_counter() - t0
        goto_requests = goto.counters.total(path_prefix="/identity/v1")
        graph_requests = graph.counters.total()
        created = first.by_action.get("Create", 0)
        failures = first.by_status.get("Failure", 0)
        graph.counters.reset()
        goto.counters.reset()
        async with open_runtime(settings) as rt:
            t1 = time.perf_counter()
            quiet = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
            quiet_wall = time.perf_counter() - t1
        return {
            "users": users,
            "rate_limit": rate_limit or "off",
            "wall_s": round(wall, 1),
            "created": created,
            "failures": failures,
            "goto_requests": goto_requests,
            "goto_per_created": round(goto_requests / max(1, created), 3),
            "goto_req_per_s": round(goto_requests / wall, 1),
            "graph_requests": graph_requests,
            "graph_goal": math.ceil(users / 999) * 2 + 6,
            "extra_rss_mib": round(rss.extra_mib, 1),
            "quiet_kind": quiet.kind.value,
            "quiet_wall_s": round(quiet_wall, 2),
            "quiet_goto_writes": goto.counters.writes(),
            "quiet_graph_requests": graph.counters.total(),
        }
    finally:
        graph.stop()
        goto.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--limited-users", type=int, default=1_000)
    args = parser.parse_args()
    with Azurite() as azurite:
        try:
            rows = [asyncio.run(scenario(azurite, args.users, 0.0))]
            if args.limited_users:
                rows.append(asyncio.run(scenario(azurite, args.limited_users, 10.0)))
        except Exception:
            print("Azurite said:", *azurite.output[-20:], sep="\n")
            raise
    keys = list(rows[0])
    print(markdown_table(rows, keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
