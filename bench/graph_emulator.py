"""Benchmark of the Graph emulator at tenant scale: 100,000 users, groups with members and a
realistic number of app role assignments, served by ``python -m emulators.graph`` in its own
process and read over real HTTP. Prints a Markdown table (for docs/benchmarks.md).

    python bench/graph_emulator.py [--users 100000] [--groups 2000] [--assign-users 25000]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
SELECT = (
    "id,userPrincipalName,accountEnabled,mail,mailNickname,displayName,givenName,surname,jobTitle,"
    "department,employeeId,companyName,employeeOrgData"
)


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def follow(http: httpx.Client, url: str, key: str = "@odata.nextLink") -> tuple[int, int, dict[str, Any]]:
    """Follows nextLinks; returns (items, pages, last page)."""
    items = pages = 0
    while True:
        body = http.get(url).json()
        pages += 1
        items += len(body["value"])
        if key not in body or "@odata.nextLink" not in body:
            return items, pages, body
        url = body["@odata.nextLink"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--assign-users", type=int, default=25_000, help="users assigned directly")
    parser.add_argument("--assign-groups", type=int, default=200, help="groups assigned")
    parser.add_argument("--changes", type=int, default=1_000)
    args = parser.parse_args()

    rows: list[tuple[str, str]] = []
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.graph",
            "--port",
            "0",
            "--generate-users",
            str(args.users),
            "--generate-groups",
            str(args.groups),
            "--seed",
            "7",
            "--profile",
            "plain",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)/v1\.0", line)
        if not match:
            raise SystemExit(f"emulator did not start: {line!r}")
        base = match.group(1)
        rows.append(
            (f"start + generate {args.users:,} users, {args.groups:,} groups", f"{time.perf_counter() - started:.1f} s")
        )
        process = psutil.Process(proc.pid)
        rows.append(("RSS after generate", mib(process.memory_info().rss)))

        http = httpx.Client(headers={"Authorization": "Bearer bench"}, timeout=120)
        control = httpx.Client(base_url=base, timeout=120)
        state = control.get("/_emulator/state").json()
        sp_id = state["servicePrincipal"]["id"]
        roles = ["MeetingOrganizer"] * 8 + ["WebinarOrganizer"] * 2 + ["Admin", None]

        # Assignments: ids come from the user and group listings, over HTTP like a client would.
        rng = random.Random(7)
        user_ids = [u["id"] for u in _all(http, f"{base}/v1.0/users?$top=999&$select=id")]
        group_ids = [g["id"] for g in _all(http, f"{base}/v1.0/groups?$top=999&$select=id")]
        chosen = rng.sample(user_ids, min(args.assign_users, len(user_ids)))
        chosen_groups = rng.sample(group_ids, min(args.assign_groups, len(group_ids)))
        t0 = time.perf_counter()
        batch = [{"principalId": p, "role": rng.choice(roles)} for p in chosen + chosen_groups]
        for i in range(0, len(batch), 5_000):
            control.post("/_emulator/assignments", json=batch[i : i + 5_000]).raise_for_status()
        rows.append((f"assign {len(chosen):,} users + {len(chosen_groups):,} groups", _secs(t0)))
        rows.append(("RSS with assignments", mib(process.memory_info().rss)))

        t0 = time.perf_counter()
        items, pages, _ = follow(http, f"{base}/v1.0/users?$top=999")
        rows.append((f"list users $top=999, default props ({items:,} users, {pages} pages)", _secs(t0)))
        t0 = time.perf_counter()
        items, pages, _ = follow(http, f"{base}/v1.0/users?$top=999&$select={SELECT}")
        rows.append((f"list users $top=999, GoTo $select ({items:,} users, {pages} pages)", _secs(t0)))
        t0 = time.perf_counter()
        items, pages, _ = follow(http, f"{base}/v1.0/servicePrincipals/{sp_id}/appRoleAssignedTo?$top=999")
        rows.append((f"list appRoleAssignedTo $top=999 ({items:,} assignments, {pages} pages)", _secs(t0)))

        t0 = time.perf_counter()
        items, pages, last = follow_delta(http, f"{base}/v1.0/users/delta()?$select={SELECT}")
        rows.append((f"users/delta initial round ({items:,} users, {pages} pages of 100)", _secs(t0)))
        delta_link = last["@odata.deltaLink"]
        rows.append(("RSS after the initial delta round", mib(process.memory_info().rss)))

        t0 = time.perf_counter()
        for n, user_id in enumerate(rng.sample(user_ids, args.changes)):
            attrs = {"department": f"Dept {n}"} if n % 2 else {"jobTitle": f"Title {n}"}
            control.patch(f"/_emulator/users/{user_id}", json=attrs).raise_for_status()
        rows.append((f"apply {args.changes:,} user changes via the control surface", _secs(t0)))
        t0 = time.perf_counter()
        items, pages, last = follow_delta(http, delta_link)
        rows.append((f"users/delta incremental round ({items:,} changed users, {pages} pages)", _secs(t0)))

        t0 = time.perf_counter()
        items, pages, _ = follow_delta(http, f"{base}/v1.0/groups/delta()?$select=displayName,members")
        rows.append((f"groups/delta initial round with members ({items:,} groups, {pages} pages)", _secs(t0)))
        rows.append(("RSS at the end", mib(process.memory_info().rss)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print(f"\nGraph emulator, {args.users:,} users ({sys.platform}, Python {sys.version.split()[0]})\n")
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def _all(http: httpx.Client, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while url:
        body = http.get(url).json()
        out += body["value"]
        url = body.get("@odata.nextLink")
    return out


def follow_delta(http: httpx.Client, url: str) -> tuple[int, int, dict[str, Any]]:
    items = pages = 0
    while True:
        body = http.get(url).json()
        pages += 1
        items += len(body["value"])
        if "@odata.deltaLink" in body:
            return items, pages, body
        url = body["@odata.nextLink"]


def _secs(t0: float) -> str:
    return f"{time.perf_counter() - t0:.2f} s"


if __name__ == "__main__":
    main()
