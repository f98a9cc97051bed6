"""The timer trigger in-process: the registered function, called as the Functions host would."""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import function_app
from emulators.functions_host import app_functions
from shared.store import Store
from tests.fixtures.world import World

FUNCTIONS = app_functions(function_app.app)


def settings_env(world: World) -> dict[str, str]:
    return world.env()


def test_the_app_registers_the_sync_timer_on_the_schedule_setting() -> None:
    timer = FUNCTIONS["sync_cycle"]
    trigger = timer.get_trigger()
    assert trigger.type == "timerTrigger"
    assert trigger.schedule == "%SYNC_SCHEDULE%"


async def test_timer_tick_runs_the_initial_then_an_incremental_cycle(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(users=6, assign=4)
    for key, value in settings_env(world).items():
        monkeypatch.setenv(key, value)
    handler = FUNCTIONS["sync_cycle"].get_user_function()
    await handler(TimerRequest(past_due=False))
    assert len([u for u in world.goto.users() if u["inOrg"]]) == 5  # 4 users + the GoTo admin
    world.graph.update_user(world.assigned_user_ids()[0], displayName="Timer Renamed")
    await handler(TimerRequest(past_due=True))
    assert world.goto.user_by_username(world.upn(world.assigned_user_ids()[0]))["displayName"] == "Timer Renamed"
    async with Store(
        connection_string=world.settings.storage_connection_string, prefix=world.settings.table_prefix
    ) as s:
        job = await s.job.get()
    assert job.last is not None and job.last.kind.value == "Incremental"
    assert job.last_success is not None


async def test_timer_does_nothing_while_provisioning_is_off(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(users=3, assign=3)
    for key, value in settings_env(world).items():
        monkeypatch.setenv(key, value)
    async with world.store() as s:
        await s.job.update(lambda j: setattr(j, "enabled", False))
    await FUNCTIONS["sync_cycle"].get_user_function()(TimerRequest())
    assert world.goto.counters.writes() == 0


def test_function_app_is_only_a_composition_root() -> None:
    assert isinstance(function_app.app, func.FunctionApp)


async def test_a_cycle_out_of_budget_hands_itself_on_and_sync_continue_finishes_it(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulators.functions_host import FunctionsHost

    world = make_world(users=14, assign=12)
    world.goto.faults.inject("latency", r"^/identity/v1/Users$", method="POST", latency_ms=300)
    env = world.env(
        cycle_time_budget_seconds=1, cycle_concurrency=2, continuation_queue="c" + world.settings.table_prefix
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    await FUNCTIONS["sync_cycle"].get_user_function()(TimerRequest(past_due=False))
    async with world.store() as s:
        job = await s.job.get()
    assert job.current is not None and job.current.continuing  # handed on, not waiting for the next tick
    host = FunctionsHost(function_app.app)
    await host.start(queues=False)
    try:
        handled = await host.drain()  # sync_continue picks the message up (and any it hands on)
    finally:
        await host.stop()
    async with world.store() as s:
        job = await s.job.get()
    assert handled >= 1 and job.current is None and job.last is not None and job.last.invocations > 1
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 12
