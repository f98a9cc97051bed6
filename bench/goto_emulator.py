"""Benchmark of the GoTo emulator at 100,000 users: memory (RSS), listing every user over SCIM
(paging off = one response; paging on = pages of 1,000) and filtered lookups, over real HTTP on
127.0.0.1 with the rate limit lifted. Prints a Markdown table.

    python bench/goto_emulator.py [--users 100000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulators.goto import GoToEmulator, GoToSwitches

U = "/identity/v1/Users"


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    n = args.users
    rows: list[tuple[str, str]] = []

    base_rss = rss_mib()
    goto = GoToEmulator(switches=GoToSwitches(rate_limit=0, users_max_page_size=1000))
    t_load = timed(
        lambda: [
            goto.add_user(userName=f"user{i:06d}@contoso.com", givenName=f"Given{i}", familyName=f"Family{i % 997}")
            for i in range(n)
        ]
    )
    loaded_rss = rss_mib()
    rows.append(("users loaded (Python control API)", f"{n:,} in {t_load:.2f} s ({n / t_load:,.0f} users/s)"))
    rows.append(("RSS before / after load", f"{base_rss:.0f} MiB / {loaded_rss:.0f} MiB"))
    rows.append(("memory per user (RSS delta / users)", f"{(loaded_rss - base_rss) * 2**20 / n:,.0f} bytes"))

    goto.start()
    try:
        with httpx.Client(base_url=goto.url, headers=goto.auth_headers(), timeout=120) as http:
            # Paging off (the documented behaviour): one response with every user.
            times = []
            size = 0
            for _ in range(3):
                start = time.perf_counter()
                r = http.get(U)
                times.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text[:200]
                size = len(r.content)
                assert r.json()["totalResults"] == n + 1
            rows.append(
                (
                    "GET /Users, paging off (one response)",
                    f"median {statistics.median(times):.2f} s, {size / 2**20:.1f} MiB, {n + 1:,} resources",
                )
            )
            peak_rss = rss_mib()

            # Paging on: pages of 1,000 through startIndex/count.
            goto.set_switch("users_paging", True)
            start = time.perf_counter()
            seen = 0
            pages = 0
            index = 1
            while True:
                body = http.get(U, params={"startIndex": index, "count": 1000}).json()
                got = len(body["resources"])
                seen += got
                pages += 1
                index += got
                if got == 0 or index > body["totalResults"]:
                    break
            t_paged = time.perf_counter() - start
            assert seen == n + 1
            rows.append(
                (
                    "GET /Users, paging on (count=1000)",
                    f"{pages} pages in {t_paged:.2f} s ({seen / t_paged:,.0f} users/s)",
                )
            )
            goto.set_switch("users_paging", False)

            # Filtered lookups: userName eq goes through the index (O(1)).
            rng = random.Random(1)
            latencies = []
            for _ in range(args.lookups):
                name = f"user{rng.randrange(n):06d}@contoso.com"
                start = time.perf_counter()
                r = http.get(U, params={"filter": f'userName eq "{name}"'})
                latencies.append(time.perf_counter() - start)
                assert r.json()["totalResults"] == 1
            total = sum(latencies)
            latencies.sort()
            rows.append(
                (
                    f'filter userName eq "…" ({args.lookups:,} sequential)',
                    f"{args.lookups / total:,.0f} req/s, p50 {latencies[len(latencies) // 2] * 1000:.2f} ms, "
                    f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms",
                )
            )

            # Filters that scan (no index): sw on userName, eq on name.familyName.
            for label, flt, count in (
                ('filter userName sw "user09999" (scan)', 'userName sw "user09999"', 20),
                ('filter name.familyName eq "Family7" (scan)', 'name.familyName eq "Family7"', 20),
            ):
                times = []
                results = 0
                for _ in range(count):
                    start = time.perf_counter()
                    r = http.get(U, params={"filter": flt})
                    times.append(time.perf_counter() - start)
                    results = r.json()["totalResults"]
                rows.append((label, f"median {statistics.median(times) * 1000:.1f} ms ({results} matches)"))
            rows.append(("RSS peak after the full listing", f"{max(peak_rss, rss_mib()):.0f} MiB"))
    finally:
        goto.stop()

    print(f"## GoTo emulator benchmark ({n:,} users, Python {sys.version.split()[0]})\n")
    print("| Measurement | Result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
