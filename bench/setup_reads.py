"""What a continuing full cycle reads before its first create, with N users already done
(figures go to docs/benchmarks.md; nothing is asserted).

The world of `bench/scale.py` (the Graph and GoTo emulators and Azurite each in a process of
their own, Azurite with point lookups by key), N users assigned in Graph, each already in GoTo and
linked, as a resumed invocation finds them. Measured in one gotosync process: each read alone,
their sum, and `Reading.full_context` (the delta links kept, the links, the escrow and GoTo's
listing read alongside the assignments and the group members, D81), with gotosync's CPU for each.

    python bench/setup_reads.py --users 20000,50000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from bench.scale import POINT_LOOKUP, Served, assign_everyone, world_env
from emulators.azurite import Azurite
from shared.engine.reading import Reading
from shared.model import Link
from shared.runtime import open_runtime
from shared.settings import Settings


def graph_users(graph: Served) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    with httpx.Client(timeout=120) as client:
        url: str | None = f"{graph.url}/users?$select=id,userPrincipalName,givenName,surname&$top=999"
        while url:
            page = client.get(url, headers={"Authorization": "Bearer bench"}).json()
            users += page["value"]
            url = page.get("@odata.nextLink")
    return users


def seed_goto(goto: Served, users: list[dict[str, Any]]) -> list[str]:
    """Each user in GoTo with its Entra id as externalId; returns the GoTo ids."""
    keys: list[str] = []
    with httpx.Client(timeout=300) as client:
        for start in range(0, len(users), 5000):
            body = [
                {"userName": u["userPrincipalName"], "givenName": u.get("givenName") or "G",
                 "familyName": u.get("surname") or "F", "externalId": u["id"]}
                for u in users[start : start + 5000]
            ]  # fmt: skip
            answer = client.post(f"{goto.base}/_emulator/users", json={"users": body})
            answer.raise_for_status()
            keys += answer.json()["keys"]
    return keys


async def timed(read: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(wall s, this process's CPU s) of one read."""
    cpu, wall = time.process_time(), time.perf_counter()
    await read()
    return time.perf_counter() - wall, time.process_time() - cpu


async def measure_reads(
    settings: Settings, users: list[dict[str, Any]], goto_ids: list[str], repeat: int
) -> dict[str, str]:
    async with open_runtime(settings) as rt:
        links = [
            Link(entra_id=u["id"], goto_id=g, exported={"userName": u["userPrincipalName"], "externalId": u["id"]})
            for u, g in zip(users, goto_ids, strict=True)
        ]
        for start in range(0, len(links), 5000):
            await rt.engine.store.links.put_many(links[start : start + 5000])
        reading = Reading(rt.engine)
        reader = reading.reader

        async def graph_reads() -> None:
            await reading.roles_by_user(await reader.assignments(await reader.app_roles()))

        parts: dict[str, Callable[[], Awaitable[object]]] = {
            "assignments + members": graph_reads,
            "links": lambda: rt.engine.store.links.compact("user"),
            "escrow": reading._user_escrow,
            "GoTo listing + index": reading._goto_index,
            "all, alongside (full_context)": lambda: reading.full_context(("kept", "kept")),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in parts}
        for _ in range(repeat):
            for name, read in parts.items():
                runs[name].append(await timed(read))
    row = {"users done": f"{len(users):,}"}
    for name, samples in runs.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        row[name] = f"{wall:.1f} s (CPU {cpu:.1f} s)"
    alone = [n for n in parts if not n.startswith("all")]
    row["sum of the reads alone"] = f"{sum(statistics.median(s[0] for s in runs[n]) for n in alone):.1f} s"
    return row


def measure(users: int, repeat: int) -> dict[str, str]:
    azurite = Azurite(node_args=("--require", str(POINT_LOOKUP)))
    azurite.start()
    graph = Served("emulators.graph", "--generate-users", str(users), "--profile", "plain", "--seed", "1")
    goto = Served("emulators.goto", "--rate-limit", "0", "--seats", str(users + 10))
    try:
        state = httpx.get(f"{graph.base}/_emulator/state", timeout=120).json()
        assign_everyone(graph, "MeetingOrganizer")
        everyone = graph_users(graph)
        goto_ids = seed_goto(goto, everyone)
        prefix = "r" + uuid.uuid4().hex[:10]
        settings = Settings.from_env({**world_env(azurite, graph, goto, state, 0), "GOTOSYNC_TABLE_PREFIX": prefix})
        return asyncio.run(measure_reads(settings, everyone, goto_ids, repeat))
    finally:
        goto.stop()
        graph.stop()
        azurite.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="20000", help="comma-separated numbers of users done")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(int(n), args.repeat) for n in args.users.split(",")]
    print(json.dumps(rows, indent=2))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
