"""Benchmarks of GoTo pacing (figures go to docs/benchmarks.md; nothing is asserted).

1. Hosts: one, then two OS processes (two hosts) each sending GoTo SCIM requests as fast as
   their pacing allows, against the GoTo emulator limited to 10 req/s per API (burst 10, GoTo's
   documented limit): two processes each pacing alone, then two sharing the budget in Table
   Storage (Azurite). Achieved rate (requests GoTo let through / the span they took, from the
   emulator's own record) and 429s.
2. Seats: an initial cycle with ROLE_LICENSES set (each created user costs a SCIM POST and an
   Admin API seat assignment) at 10 req/s per API: users/s over the cycle's wall time and between
   its first and last create (with the fixed part: the wall time outside that span), and each
   API's achieved rate, with GoTo answering at once and with every answer `--latency-ms` late.

    python bench/rate_budget.py [--requests 200] [--users 600] [--latency-ms 250]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from emulators.azurite import Azurite
from emulators.goto import GoToEmulator, GoToSwitches
from emulators.graph import GraphEmulator
from shared.model import Initiator
from shared.runtime import open_runtime
from shared.settings import Settings
from tests.fixtures.budget_hosts import HostReads, run_hosts

RATE = 10.0


def achieved(passed: list[float]) -> float:
    """Requests per second over the span GoTo let them through in (n - 1 intervals)."""
    return (len(passed) - 1) / (passed[-1] - passed[0]) if len(passed) > 1 else 0.0


def hosts(azurite: Azurite, processes: int, mode: str, total: int) -> dict[str, object]:
    goto = GoToEmulator(switches=GoToSwitches(rate_limit=RATE, rate_burst=int(RATE)))
    goto.start()
    try:
        key = goto.add_user(userName="bench@contoso.com")
        token = goto.issue_access_token(expires_in=3600)
        prefix = "b" + uuid.uuid4().hex[:10]
        reads = HostReads(azurite.connection_string, prefix, goto.scim_url, token, key, total // processes, mode)
        run = run_hosts(reads, processes, timeout=900)
        passed = goto.passed.get("identity", [])
        return {
            "hosts": processes,
            "pacing": mode,
            "requests": total,
            "wall_s": round(run.seconds, 1),
            "achieved_req_per_s": round(achieved(passed), 2),
            "of_limit_pct": round(100 * achieved(passed) / RATE, 1),
            "goto_429": goto.throttled("identity"),
            "storage_round_trips": sum(int(o["bookings"] or 0) for o in run.outcomes),
        }
    finally:
        goto.stop()


async def seats(azurite: Azurite, users: int, latency_ms: int) -> dict[str, object]:
    graph = GraphEmulator(seed=1)
    graph.generate(users=users, groups=0, seed=1, profile="plain")
    for uid in list(graph.tenant.users):
        graph.assign(uid, "MeetingOrganizer")
    goto = GoToEmulator(switches=GoToSwitches(rate_limit=RATE, rate_burst=int(RATE)), seats=users + 10)
    if latency_ms:  # each GoTo answer this late, as from a GoTo an ocean away
        goto.faults.inject("latency", path="^/(identity|admin)/", latency_ms=latency_ms)
    graph.start()
    goto.start()
    settings = Settings(
        storage_connection_string=azurite.connection_string,
        table_prefix="b" + uuid.uuid4().hex[:10],
        service_principal_id=graph.sp_id,
        graph_base_url=graph.graph_url,
        graph_static_token="bench",
        goto_scim_url=goto.scim_url,
        goto_admin_url=goto.admin_url,
        goto_access_token=goto.issue_access_token(expires_in=24 * 3600),
        goto_rate_limit=RATE,
        role_licenses={"MeetingOrganizer": ["G2M"]},
    )
    try:
        async with open_runtime(settings) as rt:
            started = datetime.now(UTC)
            t0 = time.perf_counter()
            result = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
            wall = time.perf_counter() - t0
        created = result.by_action.get("Create", 0)
        scim, admin = goto.passed.get("identity", []), goto.passed.get("admin", [])
        first, last = creates(goto)
        span = (last - first).total_seconds()
        return {
            "users": users,
            "goto_latency_ms": latency_ms,
            "created": created,
            "failures": result.by_status.get("Failure", 0),
            "wall_s": round(wall, 1),
            "users_per_s": round(created / wall, 2),
            "users_per_s_first_to_last_create": round((created - 1) / span, 2) if span else None,
            "fixed_part_s": round(wall - span, 2),
            "before_first_create_s": round((first - started).total_seconds(), 2),
            "scim_requests": len(scim),
            "scim_req_per_s": round(achieved(scim), 2),
            "admin_requests": len(admin),
            "admin_req_per_s": round(achieved(admin), 2),
            "goto_429": goto.throttled(),
        }
    finally:
        graph.stop()
        goto.stop()


def creates(goto: GoToEmulator) -> tuple[datetime, datetime]:
    """When GoTo created the first user and the last (its write journal), as bench/scale.py's
    projection measures the pace; the rest of the wall time is the cycle's fixed part (the reads
    before the first create; the last seat and the end of the cycle after the last)."""
    times = sorted(datetime.fromisoformat(e["time"]) for e in goto.journal_entries() if "created" in e["events"])
    return times[0], times[-1]


def table(rows: list[dict[str, object]]) -> None:
    keys = list(rows[0])
    print(markdown_table(rows, keys))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="SCIM requests in the hosts scenario")
    parser.add_argument("--users", type=int, default=600, help="users created in the seats scenario")
    parser.add_argument("--latency-ms", type=int, default=250, help="GoTo's answer latency in a second seats run")
    args = parser.parse_args()
    with Azurite() as azurite:
        if args.requests:
            table([hosts(azurite, n, mode, args.requests) for n, mode in ((1, "shared"), (2, "alone"), (2, "shared"))])
        if args.users:
            latencies = sorted({0, args.latency_ms})
            table([asyncio.run(seats(azurite, args.users, ms)) for ms in latencies])
    return 0


if __name__ == "__main__":
    sys.exit(main())
