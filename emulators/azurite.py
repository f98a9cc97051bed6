"""Azurite, the Azure Storage emulator (npm, pinned in package.json), as a child process.

Started in memory on free loopback ports; ready when it says so on stdout (no polling);
stopped by PID. Used by the test fixtures and by the local world of ``make demo``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE_JS = ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_READY = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (\S+)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class AzuriteError(RuntimeError):
    pass


class Azurite:
    """One Azurite process with blob, queue and table services on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1", start_timeout: float = 60.0, node_args: tuple[str, ...] = ()) -> None:
        self.host = host
        self.node_args = node_args  # e.g. ("--require", preload) for a benchmark
        self.start_timeout = start_timeout
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    @property
    def output(self) -> list[str]:
        """What Azurite printed (for diagnostics)."""
        return list(self._output)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def endpoint(self, service: str) -> str:
        return f"http://{self.host}:{self.ports[service]}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint('blob')};QueueEndpoint={self.endpoint('queue')};"
            f"TableEndpoint={self.endpoint('table')};"
        )

    def start(self) -> str:
        node = shutil.which("node")
        if node is None:
            raise AzuriteError("node is not on PATH: Azurite needs Node.js (see README)")
        if not AZURITE_JS.exists():
            raise AzuriteError(f"{AZURITE_JS} is missing: run `npm ci` (make does it for you)")
        self.ports = {name: free_port(self.host) for name in ("blob", "queue", "table")}
        cmd = [
            node,
            *self.node_args,
            str(AZURITE_JS),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            # Longer than aiohttp's 15 s client keep-alive: the client closes idle connections
            # first. With Azurite's default of 5 s, a pooled connection reused just as Azurite
            # closes it fails with "connection reset" (seen in 10,000-user cycles).
            "--blobKeepAliveTimeout", "60", "--queueKeepAliveTimeout", "60", "--tableKeepAliveTimeout", "60",
            "--blobHost", self.host, "--blobPort", str(self.ports["blob"]),
            "--queueHost", self.host, "--queuePort", str(self.ports["queue"]),
            "--tableHost", self.host, "--tablePort", str(self.ports["table"]),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not Azurite; we stop it ourselves
        )
        ready: set[str] = set()
        done = threading.Event()

        def read() -> None:
            assert self.process is not None
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self._output.append(line.rstrip())
                m = _READY.search(line)
                if m:
                    ready.add(m.group(1))
                    if len(ready) == 3:
                        done.set()
            done.set()  # EOF: the process ended

        threading.Thread(target=read, name="azurite-stdout", daemon=True).start()
        done.wait(self.start_timeout)
        if len(ready) < 3:
            tail = "\n".join(self._output[-20:])
            self.stop()
            raise AzuriteError(f"Azurite did not start within {self.start_timeout:.0f} s:\n{tail}")
        return self.connection_string

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
