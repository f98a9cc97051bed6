"""What httpcore's event-loop lookup costs each GoTo request, with and without sniffio (figures go
to docs/benchmarks.md; nothing is asserted).

httpcore asks which async library it runs under on every request (`import sniffio`, falling back
to asyncio when the import fails). Without sniffio installed, each of those lookups is a failed
import that searches `sys.path`. This script measures, in this process:

- the lookup itself (`httpcore._synchronization.current_async_library`), µs per call;
- the client CPU time per request of N sequential SCIM GETs through httpx to the GoTo emulator,
  which runs in its own process so that its CPU is not counted.

Each is measured with sniffio importable and with its import made to fail, as when it is not
installed (a finder that searches `sys.path` for it as the import system does, then fails).

    python bench/request_overhead.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.abc
import importlib.machinery
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from httpcore._synchronization import current_async_library

ROOT = Path(__file__).resolve().parent.parent


def start_goto() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.goto", "--rate-limit", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, url


class HideSniffio(importlib.abc.MetaPathFinder):
    """Searches `sys.path` for sniffio as the import system does, then reports it missing: an
    import fails at the cost it has when sniffio is not installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "sniffio":
            importlib.machinery.PathFinder.find_spec(name, None)
            raise ModuleNotFoundError("No module named 'sniffio'", name=name)
        return None


HIDE = HideSniffio()


def sniffio_hidden(hidden: bool) -> None:
    """Makes `import sniffio` fail as when it is not installed, or lets it import again."""
    sys.modules.pop("sniffio", None)
    if hidden and HIDE not in sys.meta_path:
        sys.meta_path.insert(0, HIDE)
    elif not hidden and HIDE in sys.meta_path:
        sys.meta_path.remove(HIDE)


async def lookup_us(calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        current_async_library()
    return 1e6 * (time.perf_counter() - start) / calls


async def cpu_ms_per_request(url: str, requests: int) -> float:
    async with httpx.AsyncClient(timeout=30) as client:
        token = (await client.post(f"{url}/_emulator/tokens", json={})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        users = f"{url}/identity/v1/Users?count=1"
        for _ in range(50):  # warm the connection pool and the imports
            (await client.get(users, headers=headers)).raise_for_status()
        start = time.process_time()
        for _ in range(requests):
            (await client.get(users, headers=headers)).raise_for_status()
        return 1000 * (time.process_time() - start) / requests


async def measure(url: str, requests: int) -> list[dict[str, Any]]:
    rows = []
    for installed in (False, True):
        sniffio_hidden(not installed)
        rows.append(
            {
                "sniffio": "installed" if installed else "missing",
                "lookup µs": round(await lookup_us(20_000), 2),
                "client CPU ms per request": round(await cpu_ms_per_request(url, requests), 3),
            }
        )
    sniffio_hidden(False)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    proc, url = start_goto()
    try:
        rows = asyncio.run(measure(url.removesuffix("/"), args.requests))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
