"""Graph emulator: ``python -m emulators.graph`` (help, start in the foreground, clean stop)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^graph emulator listening on (http://127\.0\.0\.1:(\d+)/v1\.0)$")


def test_help_describes_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulators.graph", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0
    for option in ("--host", "--port", "--seed-file", "--generate-users", "--generate-groups", "--seed", "--profile"):
        assert option in result.stdout


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "tenant.json"
    path.write_text(
        json.dumps(
            {
                "users": [{"userPrincipalName": "seeded@contoso.com", "displayName": "Seeded"}],
                "assignments": [{"principal": "seeded@contoso.com", "role": "MeetingOrganizer"}],
            }
        )
    )
    return path


@pytest.fixture
def server(seed_file: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.graph",
            "--port",
            "0",
            "--seed-file",
            str(seed_file),
            "--generate-users",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    match = LISTENING.match(line)
    assert match, f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
    yield proc, match.group(1)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_server_serves_the_seeded_tenant_and_stops_cleanly_on_sigterm(
    server: tuple[subprocess.Popen[str], str],
) -> None:
    proc, graph_url = server

    users = httpx.get(f"{graph_url}/users", headers={"Authorization": "Bearer t"}, params={"$top": "999"}).json()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)

    assert len(users["value"]) == 6
    assert "seeded@contoso.com" in {u["userPrincipalName"] for u in users["value"]}
    assert code in (0, -signal.SIGTERM)
    assert proc.poll() is not None


def test_server_stops_cleanly_on_sigint(server: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = server

    proc.send_signal(signal.SIGINT)

    assert proc.wait(timeout=10) in (0, -signal.SIGINT)
