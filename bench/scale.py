"""Initial cycles at scale, measured as they run in Azure: gotosync in a process of its own,
the emulators and Azurite in theirs (figures go to docs/benchmarks.md; nothing is asserted).

N users all directly assigned with a role, none yet in GoTo. `gotosync sync` runs as a
separate process per invocation with a time budget (CYCLE_TIME_BUDGET_SECONDS); an invocation
that ends with its cycle continuing is followed by the next one (as the continuation queue's
message would start it in Azure), until the cycle ends.

Reported: wall time, users/s, invocations, the peak RSS of a gotosync process, its CPU time and
CPU per created user, Graph requests, GoTo requests per created user; and, for a run with
GoTo's limit on, the projected time for 100,000 users at that rate; for each resumed invocation, the
seconds from its start to its first create (what it reads again first) and the users done by then,
and its hand-over (from the last create before it), which `bench/projection.py` projects from.

    python bench/scale.py --users 10000 [--rate-limit 0] [--budget 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from emulators.azurite import Azurite
from emulators.goto.model import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT
from shared.settings import SETTINGS
from shared.store import Store

ROOT = Path(__file__).resolve().parent.parent
GOTOSYNC = Path(sys.executable).parent / "gotosync"


class Served:
    """An emulator in its own process, ready when it prints its URL."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.strip().rsplit(" ", 1)[-1]
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    @property
    def base(self) -> str:
        return self.url.removesuffix("/v1.0")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def assign_everyone(graph: Served, role: str) -> int:
    """Assigns every user of the Graph emulator with `role`; returns how many."""
    ids: list[str] = []
    headers = {"Authorization": "Bearer bench"}
    with httpx.Client(timeout=120) as client:
        url: str | None = f"{graph.url}/users?$select=id&$top=999"
        while url:
            page = client.get(url, headers=headers).json()
            ids += [u["id"] for u in page["value"]]
            url = page.get("@odata.nextLink")
        for start in range(0, len(ids), 5000):
            body = [{"principalId": uid, "role": role} for uid in ids[start : start + 5000]]
            client.post(f"{graph.base}/_emulator/assignments", json=body).raise_for_status()
    return len(ids)


def counters(emulator: Served) -> dict[str, int]:
    return httpx.get(f"{emulator.base}/_emulator/counters", timeout=30).json()


def total(counts: dict[str, Any], prefix: str = "") -> int:
    """Requests whose "METHOD /path" starts with `prefix`."""
    return sum(int(n) for key, n in counts.items() if str(key).startswith(prefix))


def run_invocation(env: dict[str, str], *args: str) -> tuple[float, float, float, int]:
    """(wall s, peak RSS MiB, CPU s, exit code) of one `gotosync sync` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(GOTOSYNC), "sync", "--json", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    peak = 0
    watcher = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, watcher.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    out, err = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0 or os.environ.get("BENCH_VERBOSE"):
        print(err[-3000:], out[-1500:], file=sys.stderr)
    return time.perf_counter() - t0, peak / 2**20, cpu, proc.returncode


async def cycle_state(connection_string: str, prefix: str) -> tuple[bool, int, int]:
    """(the cycle has ended, processed, total) from the job row."""
    async with Store.from_connection_string(connection_string, prefix) as store:
        job = await store.job.get()
    ended = job.current is None and job.last is not None
    progress = job.current or job.last
    return ended, progress.processed if progress else 0, progress.total if progress else 0


def create_times(goto: Served) -> list[datetime]:
    """When GoTo created each user (its write journal), in order."""
    journal = httpx.get(f"{goto.base}/_emulator/journal", timeout=300).json()
    entries = journal["entries"] if isinstance(journal, dict) else journal
    return sorted(datetime.fromisoformat(e["time"]) for e in entries if "created" in e.get("events", []))


def resumed_setup(times: list[datetime], starts: list[datetime]) -> str:
    """For each resumed invocation: the seconds from its start to its first create (what it
    reads again before it goes on), with the users created before it."""
    out = []
    for start in starts[1:]:
        done = bisect.bisect_left(times, start)
        if done < len(times):
            out.append(f"{(times[done] - start).total_seconds():.1f} s ({done:,})")
    return "; ".join(out) or "-"


def handovers(times: list[datetime], starts: list[datetime]) -> str:
    """For each resumed invocation: users done, and the seconds from the last create before it
    to its own first create (the end of the invocation before, a new process, the reads
    repeated), as `bench/projection.py --handover` takes them."""
    out = []
    for start in starts[1:]:
        done = bisect.bisect_left(times, start)
        if 0 < done < len(times):
            out.append(f"{done}:{(times[done] - times[done - 1]).total_seconds():.1f}")
    return ",".join(out) or "-"


def projection(times: list[datetime], wall: float, rate_limit: float) -> dict[str, object]:
    """The elapsed time for 100,000 users at this rate: the run's fixed part (everything before
    the first create and after the last, from GoTo's write journal) plus 100,000 creates at the
    pace measured between the first and the last create."""
    if len(times) < 2:
        return {}
    span = (times[-1] - times[0]).total_seconds()
    pace = (len(times) - 1) / span
    fixed = wall - span
    projected = fixed + 100_000 / pace
    ideal = 100_000 / rate_limit
    return {
        "creates/s between first and last": round(pace, 2),
        "fixed part s": round(fixed, 1),
        "projected 100,000 users": f"{projected / 3600:.2f} h",
        "N/rate": f"{ideal / 3600:.2f} h",
        "over N/rate": f"{100 * (projected / ideal - 1):.1f}%",
    }


POINT_LOOKUP = ROOT / "bench" / "azurite_point_lookup.cjs"


def world_env(
    azurite: Azurite, graph: Served, goto: Served, state: dict[str, Any], rate_limit: float
) -> dict[str, str]:
    """The app settings that point gotosync at this world (GoTo's limit 0: lifted)."""
    return {
        "GOTOSYNC_STORAGE": azurite.connection_string,
        "ENTRA_TENANT_ID": state["tenantId"],
        "ENTRA_SERVICE_PRINCIPAL_ID": state["servicePrincipal"]["id"],
        "GRAPH_BASE_URL": graph.url,
        "GRAPH_STATIC_TOKEN": "bench",
        "GOTO_SCIM_URL": f"{goto.url}/identity/v1",
        "GOTO_ADMIN_URL": f"{goto.url}/admin/rest/v1",
        "GOTO_TOKEN_URL": f"{goto.url}/oauth/token",
        "GOTO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "GOTO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "GOTO_PAT": DEFAULT_PAT,
        "GOTO_RATE_LIMIT": str(rate_limit or 10_000),
        "GOTO_VERIFIED_DOMAINS": "contoso.com",
    }


def measure(users: int, rate_limit: float, budget: int, concurrency: int, plain_azurite: bool) -> dict[str, object]:
    # Azurite finds an entity by scanning its partition (see azurite_point_lookup.cjs): without
    # the preload, a tenant of 50,000 measures Azurite, not gotosync.
    azurite = Azurite(node_args=() if plain_azurite else ("--require", str(POINT_LOOKUP)))
    azurite.start()
    graph = Served("emulators.graph", "--generate-users", str(users), "--profile", "plain", "--seed", "1")
    goto = Served("emulators.goto", "--rate-limit", str(rate_limit), "--rate-burst", str(max(1, int(rate_limit))),
                  "--seats", str(users + 10))  # fmt: skip
    try:
        state = httpx.get(f"{graph.base}/_emulator/state", timeout=120).json()
        assigned = assign_everyone(graph, "MeetingOrganizer")
        prefix = "s" + uuid.uuid4().hex[:10]
        env = {
            **os.environ,
            **world_env(azurite, graph, goto, state, rate_limit),
            "GOTOSYNC_TABLE_PREFIX": prefix,
            "GOTO_MAX_CONCURRENCY": str(concurrency),
            "CYCLE_CONCURRENCY": str(concurrency),
            "CYCLE_TIME_BUDGET_SECONDS": str(budget),
        }
        t0 = time.perf_counter()
        invocations = []
        starts: list[datetime] = []
        while True:
            starts.append(datetime.now(UTC))
            invocations.append(run_invocation(env))
            ended, _, _ = asyncio.run(cycle_state(azurite.connection_string, prefix))
            if ended or invocations[-1][3] != 0 or len(invocations) > 500:
                break
        wall = time.perf_counter() - t0
        goto_counts, graph_counts = counters(goto), counters(graph)
        httpx.delete(f"{goto.base}/_emulator/counters", timeout=30)
        sweep = run_invocation(env, "--full")  # everyone in step: what a no-change full cycle costs
        created = total(goto_counts, "POST /identity/v1/Users")
        cpu = sum(i[2] for i in invocations)
        row: dict[str, object] = {
            "users": assigned,
            "GoTo limit": f"{rate_limit:g} req/s" if rate_limit else "lifted",
            "wall s": round(wall, 1),
            "users/s": round(created / wall, 1) if wall else 0,
            "invocations": len(invocations),
            "peak RSS MiB": round(max(i[1] for i in invocations), 1),
            "CPU s": round(cpu, 1),
            "CPU ms per created user": round(1000 * cpu / created, 2) if created else None,
            "Graph requests": total(graph_counts),
            "GoTo requests per created user": round(total(goto_counts) / created, 3) if created else None,
            "created": created,
            "ended": ended,
            "no-change full cycle s": round(sweep[0], 1),
            "no-change full cycle GoTo requests": total(counters(goto)),
        }
        times = create_times(goto)
        if times:
            ended_at = starts[0].timestamp() + wall
            row["before the first create s"] = round((times[0] - starts[0]).total_seconds(), 1)
            row["after the last create s"] = round(ended_at - times[-1].timestamp(), 1)
        row["resumed invocations: set-up (users done)"] = resumed_setup(times, starts)
        row["resumed invocations: hand-over (done:s)"] = handovers(times, starts)
        if rate_limit:
            row.update(projection(times, wall, rate_limit))
        return row
    finally:
        goto.stop()
        graph.stop()
        azurite.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="10000", help="comma-separated tenant sizes")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="GoTo requests/s per API (0: lifted)")
    parser.add_argument("--budget", type=int, default=int(SETTINGS["cycle_time_budget_seconds"].default),
                        help="CYCLE_TIME_BUDGET_SECONDS per invocation")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--plain-azurite", action="store_true", help="Azurite without the point-lookup preload")
    args = parser.parse_args()
    rows = [measure(int(n), args.rate_limit, args.budget, args.concurrency, args.plain_azurite)
            for n in args.users.split(",")]  # fmt: skip
    print(json.dumps(rows, indent=2))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
