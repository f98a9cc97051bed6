"""Hostile-intake benchmark (figures go to docs/benchmarks.md; nothing is asserted).

Time the webhook intake takes to answer a batch of 1,000 notifications that name 1,000 distinct
unknown subscription ids, with the lookup cap (shared.realtime.intake.MAX_SUBSCRIPTION_LOOKUPS)
and, for comparison, with the cap lifted to 1,000 (the behaviour before it existed, though with
lookups 10 at a time) and one lookup at a time. The lookup reads a real subscriptions table in
Azurite; reads are counted. Graph's limit for an answer is 3 s.

    python bench/intake_flood.py [--runs 5]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import markdown_table
from emulators.azurite import Azurite
from shared.realtime import intake
from shared.store import Store
from shared.store.subscriptions import SubscriptionRecord

TENANT = "0a6a5d8c-7d43-4f59-9d1e-6a1d3b7c2f10"


def flood() -> bytes:
    items = [
        {
            "subscriptionId": str(uuid.uuid4()),
            "clientState": "guess",
            "changeType": "updated",
            "tenantId": TENANT,
            "resourceData": {"id": str(uuid.uuid4())},
        }
        for _ in range(intake.MAX_ITEMS)
    ]
    return json.dumps({"value": items}).encode()


async def measure(store: Store, cap: int, concurrency: int, runs: int) -> dict[str, Any]:
    intake.MAX_SUBSCRIPTION_LOOKUPS = cap
    intake.LOOKUP_CONCURRENCY = concurrency
    reads = 0

    async def lookup(sub_id: str) -> SubscriptionRecord | None:
        nonlocal reads
        reads += 1
        return await store.subscriptions.get(sub_id)

    async def enqueue(message: dict[str, Any]) -> None:
        raise AssertionError("nothing may be queued")

    times = []
    for _ in range(runs):
        reads = 0
        body = flood()
        t0 = time.perf_counter()
        answer = await intake.accept_notifications(body, tenant_id=TENANT, lookup=lookup, enqueue=enqueue)
        times.append(time.perf_counter() - t0)
        assert answer.status == 403
    return {
        "cap": cap,
        "concurrency": concurrency,
        "reads_per_request": reads,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
    }


async def run(runs: int) -> list[dict[str, Any]]:
    azurite = Azurite()
    azurite.start()
    cap, concurrency = intake.MAX_SUBSCRIPTION_LOOKUPS, intake.LOOKUP_CONCURRENCY
    try:
        async with Store(connection_string=azurite.connection_string, prefix="bench" + uuid.uuid4().hex[:8]) as store:
            await store.subscriptions.all()  # the table exists, as in a deployment
            return [
                await measure(store, cap, concurrency, runs),
                await measure(store, intake.MAX_ITEMS, concurrency, runs),
                await measure(store, intake.MAX_ITEMS, 1, runs),
            ]
    finally:
        azurite.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = asyncio.run(run(args.runs))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
