"""The drift sweep's entrances: `gotosync drift [--dry-run] [--json]`, `POST /api/ops/drift` and
the timer on %DRIFT_SWEEP_SCHEDULE%, each a translation of the same sweep, each recorded in the
audit trail when it writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.functions.timer import TimerRequest

from tests.fixtures.goto import goto_client
from tests.fixtures.world import World
from tests.functions.test_sync_timer import FUNCTIONS
from tests.ops.conftest import CliRun, http


def rename_by_hand(world: World, user_id: str, name: str = "Renamed By Hand") -> str:
    key = str(world.goto_user(world.upn(user_id))["key"])  # type: ignore[index]
    with goto_client(world.goto) as goto:
        goto.patch(f"/identity/v1/Users/{key}", json={"displayName": name}).raise_for_status()
    return key


def test_the_cli_lists_the_repairs_in_a_dry_run_then_makes_them(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=6, assign=4)
    assert cli("sync", "--json")[0] == 0
    uid = world.assigned_user_ids()[0]
    name = world.graph.user(uid)["displayName"]
    key = rename_by_hand(world, uid)
    world.goto.counters.reset()

    code, planned = cli("drift", "--dry-run", "--json")
    assert code == 0 and planned["dryRun"] is True and planned["countsByAction"] == {"Update": 1}
    (repair,) = planned["repairs"]
    assert repair["id"] == uid and repair["action"] == "Update"
    assert repair["modifiedProperties"] == [{"attribute": "displayName", "old": "Renamed By Hand", "new": name}]
    assert world.goto.counters.writes() == 0

    code, text = cli("drift")
    assert code == 0 and "Drift sweep" in text and "Renamed" in text and "Update" in text
    assert world.goto.user(key)["displayName"] == name
    code, entries = cli("logs", "--json", "--user", uid)
    assert entries[0]["initiatedBy"] == "Drift" and entries[0]["reason"].startswith("Drift repair")

    code, again = cli("drift", "--json")
    assert code == 0 and again["repairs"] == [] and again["inStep"] == 4


def test_the_cli_says_why_the_sweep_did_not_run(ops_world: Callable[..., World], cli: CliRun) -> None:
    ops_world(users=3, assign=2)
    assert cli("sync", "--json")[0] == 0
    assert cli("stop", "--json")[0] == 0
    code, text = cli("drift")
    assert code == 3 and "provisioning is off" in text


async def test_the_admin_endpoint_runs_the_sweep_and_records_who_asked(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=6, assign=4)
    await world.cycle()
    uid = world.assigned_user_ids()[1]
    key = rename_by_hand(world, uid)

    status, planned = await http("ops_drift", "POST", {"dryRun": True})
    assert status == 200 and planned["dryRun"] is True and len(planned["repairs"]) == 1
    assert world.goto.user(key)["displayName"] == "Renamed By Hand"

    status, done = await http("ops_drift", "POST", {})
    assert status == 200 and done["countsByStatus"] == {"Success": 1}
    assert world.goto.user(key)["displayName"] == world.graph.user(uid)["displayName"]
    async with world.store() as store:
        (entry,) = [e for e in await store.audit.recent(10) if e.action == "drift sweep"]
    assert entry.cycle_id == done["sweepId"]

    status, refused = await http("ops_drift", "POST", {"dryRun": "yes"})
    assert status == 400 and refused["error"]["field"] == "dryRun"


def test_the_app_registers_the_drift_sweep_on_its_schedule_setting() -> None:
    trigger = FUNCTIONS["drift_sweep"].get_trigger()
    assert trigger.type == "timerTrigger" and trigger.schedule == "%DRIFT_SWEEP_SCHEDULE%"


async def test_a_timer_tick_repairs_and_does_nothing_while_provisioning_is_off(
    ops_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ops_world(users=5, assign=3)
    await world.cycle()
    uid = world.assigned_user_ids()[0]
    key = rename_by_hand(world, uid)
    handler = FUNCTIONS["drift_sweep"].get_user_function()
    async with world.store() as store:
        await store.job.update(lambda j: setattr(j, "enabled", False))
    world.goto.counters.reset()
    await handler(TimerRequest(past_due=False))
    assert world.goto.counters.total() == 0 and world.goto.user(key)["displayName"] == "Renamed By Hand"
    async with world.store() as store:
        await store.job.update(lambda j: setattr(j, "enabled", True))
    await handler(TimerRequest(past_due=False))
    assert world.goto.user(key)["displayName"] == world.graph.user(uid)["displayName"]
