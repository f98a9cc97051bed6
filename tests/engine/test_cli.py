"""The `gotosync` CLI: sync, status and logs as an admin runs them (JSON output)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cli.main import main, parse_since
from shared.settings import SETTINGS
from tests.fixtures.world import World
from tests.functions.test_sync_timer import settings_env


@pytest.fixture
def cli_world(make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch) -> World:
    world = make_world(users=8, assign=5)
    for key, value in settings_env(world).items():
        monkeypatch.setenv(key, value)
    return world


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith(("{", "[")) else out


def test_sync_json_prints_one_document_with_counts(cli_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "sync", "--json")
    assert code == 0
    assert doc["kind"] == "Initial"
    assert doc["countsByAction"] == {"Create": 5}
    assert doc["countsByStatus"] == {"Success": 5}
    assert doc["cycleId"] and isinstance(doc["durationSeconds"], float)


def test_dry_run_json_lists_the_plan_and_writes_nothing(cli_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "sync", "--dry-run", "--json")
    assert code == 0 and doc["dryRun"] is True
    assert {p["action"] for p in doc["plan"]} == {"Create"} and len(doc["plan"]) == 5
    assert cli_world.goto.counters.writes() == 0


def test_status_and_logs_after_a_cycle(cli_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "sync", "--json")
    code, status = run(capsys, "status", "--json")
    assert code == 0
    assert status["provisioning"] == "on" and status["quarantine"] is None
    assert status["lastCycle"]["kind"] == "Initial" and status["lastCycle"]["progress"] == 1.0
    assert status["watermark"] is True and status["escrowed"] == 0
    upn = cli_world.upn(cli_world.assigned_user_ids()[0])
    code, entries = run(capsys, "logs", "--user", upn, "--since", "1h", "--json")
    assert code == 0 and len(entries) == 1
    assert entries[0]["action"] == "Create" and entries[0]["source"]["name"] == upn
    assert [s["name"] for s in entries[0]["steps"]][:3] == [
        "EntryImport",
        "EntrySynchronizationScoping",
        "EntryMatching",
    ]


def test_a_wrong_setting_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DELETION_THRESHOLD", "lots")
    assert main(["status"]) == 2
    assert "DELETION_THRESHOLD" in capsys.readouterr().err


def test_settings_lists_every_declared_setting_even_when_one_is_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELETION_THRESHOLD", "lots")  # what an admin may be trying to fix
    code, listed = run(capsys, "settings", "--json")
    assert code == 0
    assert [s["variable"] for s in listed] == [s.env for s in SETTINGS.values()]
    flag = next(s for s in listed if s["variable"] == "PROVISION_GROUPS")
    assert flag["type"] == "bool" and flag["default"] == "false" and flag["accepts"] == "true/false"
    code, text = run(capsys, "settings")
    assert code == 0 and all(s.env in text for s in SETTINGS.values())


def test_since_accepts_durations_and_iso_times() -> None:
    assert parse_since("2026-01-02T03:04:05").tzinfo is not None
    assert parse_since("7d") < parse_since("1h")
