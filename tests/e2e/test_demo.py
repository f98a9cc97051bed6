"""`make demo` end to end, as a user runs it: a child process that must finish and exit 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulators.demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_demo_runs_both_cycles_prints_summaries_and_stops_everything() -> None:
    done = run_demo("--users", "80", "--groups", "8", "--rate-limit", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Initial cycle" in out and "Incremental cycle" in out
    for change in ("rename", "department move", "unassign", "block sign-in", "soft delete", "hard delete"):
        assert change in out
    assert "provisioning log (latest cycle)" in out
    assert "Delete" in out and "Disable" in out and "Create" in out
    assert "reached GoTo in" in out and "disabled the GoTo user in" in out  # the webhook path
    assert "seats in use after the initial cycle: G2M" in out and "its seat was released" in out
    assert "stopped Azurite and both emulators" in out


def test_world_once_starts_azurite_both_emulators_and_the_console_and_stops_them() -> None:
    done = run_demo("--world", "--once", "--users", "40", "--groups", "4", "--port", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Graph emulator" in done.stdout and "GoTo emulator" in done.stdout and "Azurite" in done.stdout
    # The console's URL is printed only once the console answered a sign-in with it.
    assert re.search(r"provisioning console: http://127\.0\.0\.1:\d+/\.auth/login/aad\?code=\S+", done.stdout)
    assert "stopped Azurite and both emulators" in done.stdout
