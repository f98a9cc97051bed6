"""The guards above the evidence: a relative deletion threshold beside the absolute one, the
failure-share quarantine, one object's trouble kept with that object, and scoping that cannot
be evaluated never taken for "out of scope"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shared.engine.guard import DeletionGuard, failure_quarantine
from shared.mapping.expressions.regex_guard import MAX_SUBJECT
from shared.ops.control import allow_deletes, parse_scopes, restart
from shared.ops.status import load_status
from tests.engine.test_mapping_integration import mapping_file
from tests.fixtures.world import World
from tests.safety.conftest import ProvisionedWorld, deprovisions, journal_mark


def test_the_relative_guard_holds_a_share_of_the_managed_users_that_the_absolute_one_lets_through() -> None:
    guard = DeletionGuard(absolute=500, percent=10)
    assert guard.exceeded(384, managed=415) is not None  # every assignment removed: held at 10%
    assert guard.exceeded(41, managed=415) is None  # 9.9%
    assert guard.exceeded(42, managed=415) is not None
    assert guard.exceeded(5, managed=10) is None  # five or fewer never trip the relative guard
    assert guard.exceeded(6, managed=10) is not None
    assert guard.exceeded(501, managed=100_000) is not None  # the absolute guard still counts
    assert DeletionGuard(absolute=0, percent=0).exceeded(10_000, managed=10_000) is None


def test_the_failure_share_quarantines_above_forty_percent_of_at_least_ten_objects() -> None:
    assert failure_quarantine(254, 254) is not None
    assert failure_quarantine(5, 12) is not None  # 42%
    assert failure_quarantine(4, 10) is None  # exactly 40%
    assert failure_quarantine(9, 9) is None  # too few objects to judge


async def test_unassigning_everyone_is_held_by_the_relative_guard_and_shown_in_status(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=20, assign=20)
    mark = journal_mark(world)
    for uid in world.assigned_user_ids():
        world.graph.unassign(uid)
    result = await world.cycle()
    assert result.staged == 20 and result.by_action == {"StagedDelete": 20}
    assert deprovisions(world, mark) == []
    async with world.runtime() as rt:
        status = await load_status(rt.store, rt.settings)
        assert status["quarantine"].startswith("DeletionThresholdExceeded")
        assert "above DELETION_THRESHOLD_PERCENT=10%" in status["quarantine"]
        assert "absolute 500, relative 10% of 20 managed users" in status["quarantine"]
        assert status["guards"] == {
            "deletionThreshold": 500,
            "deletionThresholdPercent": 10.0,
            "managedUsers": 20,
            "deletionConfirmationSeconds": 600,
        }
        await allow_deletes(rt.store)
    done = await world.cycle()
    assert done.by_action == {"Disable": 20}
    assert len(deprovisions(world, mark)) == 20


async def test_one_throttled_goto_request_escrows_that_user_and_the_cycle_goes_on(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=6, assign=6)
    first, *others = world.assigned_user_ids()
    for uid in world.assigned_user_ids():
        world.graph.update_user(uid, department="Renamed")
    first_key = world.goto.user_by_username(world.upn(first))["key"]  # type: ignore[index]
    # GoTo throttles one user's update (the one request a change costs) with a Retry-After
    # longer than gotosync waits.
    world.goto.faults.inject(429, rf"^/identity/v1/Users/{first_key}$", method="PATCH", count=1, retry_after=3600)
    result = await world.cycle()
    assert result.by_action == {"Update": 6} and result.by_status == {"Success": 5, "Failure": 1}
    async with world.store() as store:
        escrow = await store.escrow.get(first)
        assert escrow is not None and escrow.last_error_code == "TooManyRequests"
    retried = await world.cycle()
    assert retried.by_status == {"Success": 1}
    del others


async def test_a_cycle_where_most_writes_fail_quarantines_and_is_not_a_successful_cycle(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=12, assign=12)
    good = await world.cycle()
    async with world.store() as store:
        before = (await store.job.get()).last_success
    assert good.by_status == {"Success": 12} and before is not None
    for uid in world.assigned_user_ids():
        world.graph.update_user(uid, department="Elsewhere")
    world.goto.faults.inject(400, r"^/identity/v1/Users/[^/]+$", method="PATCH|PUT")
    bad = await world.cycle()
    assert bad.by_status == {"Failure": 12}
    async with world.runtime() as rt:
        job = await rt.store.job.get()
        assert job.quarantine_reason.startswith("EncounteredEscrowProportionThreshold: 12 of the 12 objects")
        assert job.last_success == before
        world.goto.faults.clear()
        await restart(rt.store, parse_scopes([]))  # the admin fixed the cause: Entra's restart
    fixed = await world.cycle()
    assert fixed.by_status == {"Success": 12}
    async with world.store() as store:
        job = await store.job.get()
    assert job.quarantine_reason == "" and job.last_success is not None and job.last_success > before


async def test_a_value_the_regex_guard_refuses_leaves_the_user_undecided_not_disabled(
    provisioned: ProvisionedWorld, tmp_path: Path
) -> None:
    world = await provisioned(users=3, assign=3)
    uid = world.assigned_user_ids()[0]
    filters = [{"clauses": [{"attribute": "department", "operator": "REGEX MATCH", "value": "^Sales"}]}]
    for other in world.assigned_user_ids():
        world.graph.update_user(other, department="Sales")
    world.graph.update_user(uid, department="Sales " + "x" * MAX_SUBJECT)  # longer than the guard runs a regex on
    mark = journal_mark(world)
    result = await world.cycle(settings={"mapping_file": mapping_file(tmp_path, scopingFilters=filters)})
    assert deprovisions(world, mark) == []
    async with world.store() as store:
        (entry,) = [e for e in await store.logs.query(user=uid) if e.cycle_id == result.cycle_id]
    assert (entry.status.value, entry.error_code) == ("Skipped", "ScopeUndetermined")
    assert "cannot be evaluated" in entry.reason and "characters" in entry.reason
    assert world.goto.user_by_username(world.upn(uid))["active"] is True  # type: ignore[index]
