"""Provisioning logs: queried by user, action, status, cycle and time; exported as JSON and as
Entra's three CSV files joined on the change id (read back with the csv module, columns as
docs/operations.md documents them); and kept LOG_RETENTION_DAYS by the purge."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from shared.model import (
    Action,
    Initiator,
    ModifiedProperty,
    ProvisioningLogEntry,
    ProvisioningStep,
    Status,
    StepType,
    utcnow,
)
from shared.ops.logs_export import LOG_COLUMNS, LOGS_FILE, MODIFIED_COLUMNS, MODIFIED_FILE, STEP_COLUMNS, STEPS_FILE
from tests.fixtures.world import World
from tests.ops.conftest import FUNCTIONS, CliRun, http

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def two_cycles(world: World, cli: CliRun) -> tuple[str, str, str]:
    """An initial cycle (creates), then a rename: returns (first cycle, second cycle, renamed user id)."""
    first = cli("sync", "--json")[1]["cycleId"]
    renamed = world.assigned_user_ids()[0]
    world.graph.update_user(renamed, displayName="Renamed Person", department="Finance")
    second = cli("sync", "--json")[1]["cycleId"]
    return first, second, renamed


def test_logs_filter_by_user_action_status_cycle_and_time(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=6, assign=4)
    first, second, renamed = two_cycles(world, cli)
    upn = world.upn(renamed)

    assert len(cli("logs", "--json")[1]) == 5
    assert len(cli("logs", "--cycle", first, "--json")[1]) == 4
    (update,) = cli("logs", "--action", "update", "--json")[1]
    assert update["cycleId"] == second and update["source"]["name"] == upn
    assert {m["name"] for m in update["modifiedProperties"]} == {
        "displayName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    }
    assert [e["action"] for e in cli("logs", "--user", upn, "--json")[1]] == ["Update", "Create"]
    assert len(cli("logs", "--status", "Success", "--since", "1h", "--json")[1]) == 5
    assert cli("logs", "--until", "2000-01-01", "--json")[1] == []
    code, text = cli("logs", "--action", "Renamed")
    assert code == 2 and "action" in text and "StagedDelete" in text


def test_csv_export_is_entras_three_files_joined_on_change_id(
    ops_world: Callable[..., World], cli: CliRun, tmp_path: Path
) -> None:
    world = ops_world(users=6, assign=4)
    two_cycles(world, cli)
    code, doc = cli("logs", "--csv", str(tmp_path / "export"), "--json")
    assert code == 0 and doc["entries"] == 5

    def read(name: str) -> tuple[list[str], list[dict[str, str]]]:
        with (tmp_path / "export" / name).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    log_header, logs = read(LOGS_FILE)
    step_header, steps = read(STEPS_FILE)
    mod_header, modified = read(MODIFIED_FILE)
    assert (log_header, step_header, mod_header) == (list(LOG_COLUMNS), list(STEP_COLUMNS), list(MODIFIED_COLUMNS))
    change_ids = {row["Change ID"] for row in logs}
    assert len(change_ids) == 5
    assert {row["Change ID"] for row in steps} == change_ids  # every entry has its steps
    assert {row["Change ID"] for row in modified} <= change_ids
    update = next(row for row in logs if row["Provisioning Action"] == "Update")
    assert update["Source System"] == "Microsoft Entra ID" and update["Target System"] == "GoTo"
    assert update["Initiated By"] == "Cli" and update["Status"] == "Success"
    props = {row["Display Name"]: row for row in modified if row["Change ID"] == update["Change ID"]}
    assert props["displayName"]["New Value"] == "Renamed Person"
    numbered = [row["Step Number"] for row in steps if row["Change ID"] == update["Change ID"]]
    assert numbered == [str(n) for n in range(1, len(numbered) + 1)]
    created = next(row for row in logs if row["Provisioning Action"] == "Create")
    assert {row["Display Name"]: row["Old Value"] for row in modified if row["Change ID"] == created["Change ID"]}[
        "userName"
    ] == ""  # no old value: an empty cell


def test_every_csv_column_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for column in (*LOG_COLUMNS, *STEP_COLUMNS, *MODIFIED_COLUMNS):
        assert f"`{column}`" in text, column


async def test_non_text_values_are_json_in_the_csv(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    entry = ProvisioningLogEntry(
        cycle_id="c1", change_id="ch1", action=Action.DISABLE, status=Status.SUCCESS, source_id="u1",
        source_name="a@contoso.com", initiated_by=Initiator.TIMER,
        modified=[ModifiedProperty("active", True, False), ModifiedProperty("emails", None, ["a@contoso.com"])],
        steps=[ProvisioningStep("EntryImport", StepType.IMPORT, Status.SUCCESS, "read", {"id": "u1"})],
    )  # fmt: skip
    async with world.store() as store:
        await store.logs.write([entry])
    status, response = await http("ops_logs", params={"format": "csv"})
    assert status == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.get_body())) as archive:
        assert sorted(archive.namelist()) == sorted([LOGS_FILE, STEPS_FILE, MODIFIED_FILE])
        rows = list(csv.DictReader(io.StringIO(archive.read(MODIFIED_FILE).decode("utf-8"), newline="")))
        step_rows = list(csv.DictReader(io.StringIO(archive.read(STEPS_FILE).decode("utf-8"), newline="")))
    assert [(r["Display Name"], r["Old Value"], r["New Value"]) for r in rows] == [
        ("active", "true", "false"),
        ("emails", "", '["a@contoso.com"]'),
    ]
    assert step_rows[0]["Details"] == '{"id": "u1"}'


async def test_http_logs_json_and_bad_parameters(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4)
    result = await world.cycle()
    status, doc = await http("ops_logs", params={"cycle": result.cycle_id, "action": "create", "since": "1h"})
    assert status == 200 and doc["count"] == 4 and doc["limit"] == 1000
    assert {e["action"] for e in doc["entries"]} == {"Create"}
    status, doc = await http("ops_logs", params={"user": world.upn(world.assigned_user_ids()[1]), "limit": "1"})
    assert doc["count"] == 1
    for params, field in (
        ({"action": "Bogus"}, "action"),
        ({"status": "Fine"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1h", "until": "2h"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"format": "xml"}, "format"),
    ):
        status, body = await http("ops_logs", params=params)
        assert status == 400 and body["error"]["field"] == field, params


def entries_at_ages(days: list[float]) -> list[ProvisioningLogEntry]:
    now = utcnow()
    return [
        ProvisioningLogEntry(
            cycle_id="c",
            change_id=f"age-{age}",
            action=Action.UPDATE,
            status=Status.SUCCESS,
            source_id=f"u{age}",
            source_name=f"u{age}@contoso.com",
            at=now - timedelta(days=age),
        )
        for age in days
    ]


def stored_ages(world: World) -> list[str]:
    async def read() -> list[str]:
        async with world.store() as store:
            return sorted(e.change_id for e in await store.logs.query())

    return asyncio.run(read())


def test_purge_logs_drops_only_days_past_retention(
    ops_world: Callable[..., World], cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ops_world()

    async def seed() -> None:
        async with world.store() as store:
            await store.logs.write(entries_at_ages([45, 31, 29, 1, 0]))

    asyncio.run(seed())
    monkeypatch.setenv("LOG_RETENTION_DAYS", "30")
    code, doc = cli("purge-logs", "--json")
    assert code == 0 and doc["deleted"] == 2 and doc["retentionDays"] == 30
    assert stored_ages(world) == ["age-0", "age-1", "age-29"]
    code, doc = cli("purge-logs", "--days", "7", "--json")
    assert doc["deleted"] == 1 and stored_ages(world) == ["age-0", "age-1"]
    code, text = cli("purge-logs", "--days", "0")
    assert code == 2 and "--days" in text


def test_retention_timer_runs_on_its_schedule_setting(
    ops_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ops_world()
    trigger = FUNCTIONS["log_retention"].get_trigger()
    assert trigger.type == "timerTrigger" and trigger.schedule == "%RETENTION_SCHEDULE%"

    async def seed_and_tick() -> Any:
        async with world.store() as store:
            await store.logs.write(entries_at_ages([12, 3]))
        await FUNCTIONS["log_retention"].get_user_function()(TimerRequest())

    monkeypatch.setenv("LOG_RETENTION_DAYS", "10")
    asyncio.run(seed_and_tick())
    assert stored_ages(world) == ["age-3"]
