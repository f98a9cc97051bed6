"""Cycles that continue across invocations: a cycle that runs out of its time budget hands
itself on, the next invocation resumes the same cycle, and at its end GoTo holds every user
exactly once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.engine.cycle import CycleNotRun
from shared.model import CycleKind, Initiator
from shared.ops.status import load_status
from tests.fixtures.world import World


async def test_an_initial_cycle_on_a_tiny_budget_ends_across_invocations_with_each_user_created_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=70, assign=60)
    # Each create takes a while: the budget runs out many times before the cycle ends.
    world.goto.faults.inject("latency", r"^/identity/v1/Users$", method="POST", latency_ms=100)
    results = []
    async with world.runtime(cycle_concurrency=8) as rt:
        while not results or results[-1].continuing:
            results.append(await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=0.25))
            assert len(results) < 100
            if results[-1].continuing:
                status = await load_status(rt.store, rt.settings)
                assert status["currentCycle"]["state"] == "continuing"
        job = await rt.store.job.get()
    assert len(results) > 1 and {r.cycle_id for r in results} == {results[0].cycle_id}
    assert {r.kind for r in results} == {CycleKind.INITIAL}
    assert job.current is None and job.last is not None and job.last.invocations == len(results)
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 60  # each user created once
    expected = {world.upn(uid).lower() for uid in world.assigned_user_ids()}
    in_goto = [u["userName"].lower() for u in world.goto.users() if u["userName"].lower() != "admin@contoso.com"]
    assert sorted(in_goto) == sorted(expected)
    assert job.has_watermark  # the last invocation stored the delta links the first one took


async def test_a_continuation_for_a_cycle_that_ended_or_is_unknown_does_nothing(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=4)
    done = await world.cycle()
    async with world.runtime() as rt:
        with pytest.raises(CycleNotRun, match="nothing left to continue"):
            await rt.engine.run_cycle(initiated_by=Initiator.TIMER, resume=done.cycle_id)
        with pytest.raises(CycleNotRun, match="nothing left to continue"):
            await rt.engine.run_cycle(initiated_by=Initiator.TIMER, resume="some-other-cycle")
    assert world.goto.counters.writes() == 4
