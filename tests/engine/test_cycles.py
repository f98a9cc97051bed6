"""Sync cycles end to end: msgraph-sdk against the Graph emulator, httpx against the GoTo
emulator, state and logs in Azurite. Each test pins one behaviour an Entra admin relies on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared import telemetry
from shared.engine.cycle import CycleInterrupted, CycleNotRun, SyncEngine
from shared.mapping import AttributeMapping, MappingConfig, builtin
from shared.model import Action, CycleKind, Status
from tests.fixtures.world import World

# GoTo stores and returns `active` and the extension attributes here, so that tests can see them.
VISIBLE = {"active": "honour", "extension_attrs": "store"}


def goto_user(world: World, user_id: str) -> dict[str, Any] | None:
    return world.goto.user_by_username(world.upn(user_id))


async def logs_for(world: World, user_id: str) -> list[Any]:
    async with world.store() as store:
        return await store.logs.query(user=user_id)


async def test_initial_cycle_creates_every_assigned_user_with_mapped_attributes(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=12, assign=8, goto=VISIBLE)
    result = await world.cycle()
    assert result.kind is CycleKind.INITIAL
    assert result.by_action == {"Create": 8} and result.by_status == {"Success": 8}
    for uid in world.assigned_user_ids():
        source = world.graph.user(uid)
        target = goto_user(world, uid)
        assert target is not None, source["userPrincipalName"]
        assert target["displayName"] == source["displayName"]
        assert target["familyName"] == source["surname"]
        assert target["externalId"] == uid
        assert target["active"] is True
    unassigned = [u for u in world.graph.tenant.users if u not in world.assigned_user_ids()]
    assert all(goto_user(world, uid) is None for uid in unassigned)


async def test_second_cycle_without_directory_change_writes_nothing_and_logs_no_update(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=10, assign=10)  # GoTo's documented defaults: active and extensions dropped
    await world.cycle()
    world.goto.counters.reset()
    world.graph.counters.reset()
    result = await world.cycle()
    assert result.kind is CycleKind.INCREMENTAL
    assert world.goto.counters.writes() == 0
    assert "Update" not in result.by_action
    assert world.graph.counters.total() <= 5
    full = await world.cycle(full=True)  # even a full re-read finds nothing to write
    assert world.goto.counters.writes() == 0
    assert full.by_action == {"Other": 10}


@pytest.mark.parametrize(
    ("change", "action"),
    [
        (lambda g, uid: g.unassign(uid), "Disable"),
        (lambda g, uid: g.block_user(uid), "Disable"),
        (lambda g, uid: g.soft_delete_user(uid), "Disable"),
        (lambda g, uid: g.hard_delete_user(uid), "Delete"),
    ],
    ids=["unassigned", "blocked", "soft-deleted", "hard-deleted"],
)
async def test_deprovisioning_rules(make_world: Callable[..., World], change: Any, action: str) -> None:
    world = make_world(users=6, assign=6, goto=VISIBLE)
    await world.cycle()
    uid = world.assigned_user_ids()[0]
    upn = world.upn(uid)
    change(world.graph, uid)
    result = await world.cycle()
    assert result.by_action == {action: 1}
    target = world.goto.user_by_username(upn)
    if action == "Delete":
        # SCIM DELETE removes the user from the organization "but not from the account"
        # (docs/reference/goto-api.md#deactivate-or-delete).
        assert target is None or target["inOrg"] is False
    else:
        assert target is not None and target["active"] is False
    entry = (await logs_for(world, uid))[0]
    assert entry.action.value == action and entry.status is Status.SUCCESS
    assert entry.reason


async def test_restored_user_is_re_enabled(make_world: Callable[..., World]) -> None:
    world = make_world(users=4, assign=4, goto=VISIBLE)
    await world.cycle()
    uid = world.assigned_user_ids()[1]
    world.graph.soft_delete_user(uid)
    await world.cycle()
    assert goto_user(world, uid)["active"] is False  # type: ignore[index]
    world.graph.restore_user(uid)
    result = await world.cycle()
    assert result.by_action == {"Update": 1}
    assert goto_user(world, uid)["active"] is True  # type: ignore[index]
    assert any(m.name == "active" and m.new is True for m in (await logs_for(world, uid))[0].modified)


async def test_attribute_change_updates_only_what_changed(make_world: Callable[..., World]) -> None:
    world = make_world(users=5, assign=5, goto=VISIBLE)
    await world.cycle()
    uid = world.assigned_user_ids()[2]
    world.graph.update_user(uid, surname="Byron", department="Poetry")
    result = await world.cycle()
    assert result.by_action == {"Update": 1}
    entry = (await logs_for(world, uid))[0]
    assert {m.name for m in entry.modified} == {
        "name.familyName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    }
    assert goto_user(world, uid)["familyName"] == "Byron"  # type: ignore[index]


async def test_skip_out_of_scope_deletions_leaves_unassigned_users_alone(make_world: Callable[..., World]) -> None:
    world = make_world(users=3, assign=3, goto=VISIBLE)
    await world.cycle()
    uid = world.assigned_user_ids()[0]
    world.graph.unassign(uid)
    result = await world.cycle(settings={"skip_out_of_scope_deletions": True})
    assert result.by_action == {"Other": 1} and result.by_status == {"Skipped": 1}
    assert goto_user(world, uid)["active"] is True  # type: ignore[index]


async def test_default_access_only_users_are_skipped_as_not_effectively_entitled(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=3, assign=3, role=None, goto=VISIBLE)
    result = await world.cycle()
    assert result.by_status == {"Skipped": 3}
    entry = (await logs_for(world, world.assigned_user_ids()[0]))[0]
    assert "not effectively entitled" in entry.reason
    result = await world.cycle(full=True, settings={"default_access_only": "provision"})
    assert result.by_action == {"Create": 3}


async def test_group_assignment_provisions_direct_members_and_leaving_the_group_disables(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=8, assign=0, goto=VISIBLE)
    ids = list(world.graph.tenant.users)
    group = world.graph.create_group("GoTo Meeting Users")
    for uid in ids[:4]:
        world.graph.add_member(group, uid)
    world.graph.assign(group, "MeetingOrganizer")
    result = await world.cycle()
    assert result.by_action == {"Create": 4}
    world.graph.remove_member(group, ids[0])
    world.graph.add_member(group, ids[5])
    result = await world.cycle()
    assert result.by_action == {"Create": 1, "Disable": 1}
    assert goto_user(world, ids[0])["active"] is False  # type: ignore[index]
    assert goto_user(world, ids[5]) is not None


async def test_cycle_killed_half_way_resumes_and_creates_each_user_exactly_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=30, assign=30)
    with pytest.raises(CycleInterrupted):
        await world.cycle(stop_after=12)
    assert 12 <= len(world.goto.users()) - 1 < 30  # the admin account is there from the start
    result = await world.cycle()
    assert result.kind is CycleKind.INITIAL  # the interrupted initial cycle is run again
    names = [u["userName"].lower() for u in world.goto.users()]
    assert len(names) == len(set(names)) == 31
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 30


async def test_goto_429_and_503_during_a_cycle_end_with_everyone_provisioned_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=20, assign=20)
    world.goto.faults.inject(429, r"^/identity/v1/Users$", method="POST", count=5, retry_after=0)
    world.goto.faults.inject(503, r"^/identity/v1/Users$", method="POST", count=3)
    result = await world.cycle(settings={"goto_max_concurrency": 4})
    # Each create is retried up to five times; a create that met five of the eight faults in a
    # row is escrowed as transient and done by the next cycle.
    failed = result.by_status.get("Failure", 0)
    assert result.by_status.get("Success", 0) + failed == 20
    if failed:
        again = await world.cycle(settings={"goto_max_concurrency": 4})
        assert again.by_status == {"Success": failed}
    names = [u["userName"].lower() for u in world.goto.users()]
    assert len(names) == len(set(names)) == 21
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 20 + 5 + 3


async def test_users_with_bad_data_fail_with_a_clear_reason_while_the_rest_provision(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=5, assign=5, goto=VISIBLE)
    long_upn = world.graph.create_user(userPrincipalName="x" * 130 + "@contoso.com", givenName="Long", surname="Name")
    foreign = world.graph.create_user(userPrincipalName="guest.user@fabrikam.com", givenName="Guest", surname="User")
    mailless = world.graph.create_user(
        userPrincipalName="no.mail@contoso.com", mail=None, givenName="No", surname="Mail"
    )
    for uid in (long_upn, foreign, mailless):
        world.graph.assign(uid, "MeetingOrganizer")
    result = await world.cycle()
    assert result.by_action == {"Create": 8}
    assert result.by_status == {"Success": 6, "Failure": 2}
    assert (await logs_for(world, long_upn))[0].error_code == "SchemaPropertyCanOnlyAcceptValue"
    foreign_entry = (await logs_for(world, foreign))[0]
    assert foreign_entry.error_code == "InvalidDomain" and "fabrikam.com" in foreign_entry.reason
    assert world.goto.user_by_username("no.mail@contoso.com") is not None
    async with world.store() as store:
        assert {e.entra_id for e in await store.escrow.all()} == {long_upn, foreign}


async def test_user_without_a_value_for_any_matching_attribute_is_skipped_with_the_reason(
    make_world: Callable[..., World],
) -> None:
    # userName (the only matching attribute) from mail: a user without mail cannot be matched,
    # which Entra logs as skipped (ImportSkipped), not as a failure.
    world = make_world(users=3, assign=3, goto=VISIBLE)
    mailless = world.graph.create_user(userPrincipalName="no.mail@contoso.com", mail=None)
    world.graph.assign(mailless, "MeetingOrganizer")
    rest = tuple(m for m in builtin("goto").users if m.target != "userName")
    by_mail = MappingConfig(users=(AttributeMapping("userName", "direct", source="mail", matching_precedence=1), *rest))
    async with world.runtime() as rt:
        result = await SyncEngine(rt.settings, rt.store, rt.reader, rt.scim, mapping=by_mail).run_cycle()
    assert result.by_status == {"Success": 3, "Skipped": 1}
    entry = (await logs_for(world, mailless))[0]
    assert entry.status is Status.SKIPPED
    assert entry.error_code == "ImportSkipped" and "userName" in entry.reason


async def test_mass_unassignment_above_the_threshold_is_staged_not_executed(make_world: Callable[..., World]) -> None:
    world = make_world(users=12, assign=12, goto=VISIBLE)
    await world.cycle()
    for uid in world.assigned_user_ids()[:8]:
        world.graph.unassign(uid)
    world.goto.counters.reset()
    result = await world.cycle(settings={"deletion_threshold": 5})
    assert result.staged == 8
    assert result.by_action == {"StagedDelete": 8}
    assert world.goto.counters.writes() == 0
    assert all(goto_user(world, uid)["active"] is True for uid in world.assigned_user_ids()[:8])  # type: ignore[index]
    async with world.store() as store:
        job = await store.job.get()
        assert job.quarantine_reason.startswith("DeletionThresholdExceeded")
        staged = await store.logs.query(action=Action.STAGED_DELETE)
        assert len(staged) == 8 and all("deletion threshold" in e.reason for e in staged)


async def test_dry_run_plans_without_writing_and_matches_the_real_cycle(make_world: Callable[..., World]) -> None:
    world = make_world(users=10, assign=7, goto=VISIBLE)
    plan = await world.cycle(dry_run=True)
    assert world.goto.counters.writes() == 0
    async with world.store() as store:
        assert await store.logs.query() == []
        assert not (await store.job.get()).has_watermark
    real = await world.cycle()
    assert plan.by_action == real.by_action == {"Create": 7}
    async with world.store() as store:  # a cycle keeps no plans in memory: its log says what it did
        logged = await store.logs.query(cycle_id=real.cycle_id)
    assert sorted(p.user.id for p in plan.plans) == sorted(e.source_id for e in logged)


async def test_existing_goto_user_is_matched_by_user_name_not_duplicated(make_world: Callable[..., World]) -> None:
    world = make_world(users=3, assign=3, goto=VISIBLE)
    uid = world.assigned_user_ids()[0]
    source = world.graph.user(uid)
    world.goto.add_user(userName=source["userPrincipalName"], displayName="Old Name")
    result = await world.cycle()
    assert result.by_action == {"Create": 2, "Update": 1}
    assert goto_user(world, uid)["displayName"] == source["displayName"]  # type: ignore[index]
    assert len(world.goto.users()) == 4


async def test_expired_delta_link_falls_back_to_a_full_cycle(make_world: Callable[..., World]) -> None:
    world = make_world(users=4, assign=4, goto=VISIBLE)
    await world.cycle()
    world.graph.expire_delta_tokens()
    world.graph.update_user(world.assigned_user_ids()[0], displayName="Renamed")
    result = await world.cycle()
    assert result.kind is CycleKind.INITIAL
    assert result.by_action.get("Update") == 1
    assert goto_user(world, world.assigned_user_ids()[0])["displayName"] == "Renamed"  # type: ignore[index]


async def test_two_cycles_never_run_at_once(make_world: Callable[..., World]) -> None:
    world = make_world(users=6, assign=6)
    outcomes = await asyncio.gather(world.cycle(), world.cycle(), return_exceptions=True)
    not_run = [o for o in outcomes if isinstance(o, CycleNotRun)]
    ran = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(not_run) == 1 and "lease" in str(not_run[0])
    assert len(ran) == 1 and ran[0].by_action == {"Create": 6}


async def test_staged_deletions_stay_held_across_later_cycles_until_deletes_are_allowed(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=10, assign=10, goto=VISIBLE)
    await world.cycle()
    held = world.assigned_user_ids()[:6]
    for uid in held:
        world.graph.unassign(uid)
    first = await world.cycle(settings={"deletion_threshold": 3})
    assert first.staged == 6
    # A quiet cycle later: the delta has moved on, but the held users are not forgotten, and a
    # single new unassignment (below the threshold) is held too while the job is quarantined.
    world.graph.unassign(world.assigned_user_ids()[6])
    second = await world.cycle(settings={"deletion_threshold": 3})
    assert second.by_action == {"StagedDelete": 7}
    assert all(goto_user(world, uid)["active"] is True for uid in held)  # type: ignore[index]
    async with world.store() as store:
        assert (await store.job.get()).quarantine_reason.startswith("DeletionThresholdExceeded")
        await store.job.update(lambda j: setattr(j, "allow_deletes_once", True))
    third = await world.cycle(settings={"deletion_threshold": 3})
    assert third.by_action == {"Disable": 7}
    assert all(goto_user(world, uid)["active"] is False for uid in held)  # type: ignore[index]
    async with world.store() as store:
        job = await store.job.get()
        assert job.quarantine_reason == "" and not job.allow_deletes_once
        assert await store.escrow.count() == 0


async def test_cycle_records_telemetry_for_actions_cycle_duration_and_goto_429s(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=4)
    world.goto.faults.inject(429, r"^/identity/v1/Users$", method="POST", count=2, retry_after=0)
    with telemetry.recording() as metrics:
        await world.cycle()
    assert metrics.total(telemetry.ACTIONS, action="Create", status="Success") == 4
    assert metrics.total(telemetry.GOTO_THROTTLED) == 2
    assert [m.attributes for m in metrics.measurements if m.name == telemetry.CYCLE_DURATION] == [{"kind": "Initial"}]


async def test_full_cycle_tells_soft_from_hard_deleted_users_by_the_recycle_bin(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=4, goto=VISIBLE)
    await world.cycle()
    soft, hard = world.assigned_user_ids()[:2]
    soft_upn, hard_upn = world.upn(soft), world.upn(hard)
    world.graph.soft_delete_user(soft)
    world.graph.hard_delete_user(hard)
    # The recycle bin is positive evidence of a soft delete: disabled at once. Absence from both
    # /users and the recycle bin waits for a second read after the confirmation delay.
    result = await world.cycle(full=True, settings={"deletion_confirmation_seconds": 0})
    assert result.by_action == {"Disable": 1, "Other": 3}
    assert world.goto.user_by_username(soft_upn)["active"] is False  # type: ignore[index]
    assert world.goto.user_by_username(hard_upn)["active"] is True  # type: ignore[index]
    result = await world.cycle(full=True, settings={"deletion_confirmation_seconds": 0})
    assert result.by_action == {"Delete": 1, "Other": 3}
    deleted = world.goto.user_by_username(hard_upn)
    assert deleted is None or deleted["inOrg"] is False


async def test_with_role_licenses_a_full_cycle_reads_the_license_list_while_goto_lists_its_users(
    make_world: Callable[..., World],
) -> None:
    # GoTo keeps a record of what its rate limit let through (a limit far above the cycle's pace).
    world = make_world(users=6, assign=4, goto={"rate_limit": 1000, "rate_burst": 1000})
    world.settings = world.settings.with_overrides(role_licenses={"MeetingOrganizer": ("G2M",)})
    # GoTo holds its user listing a moment: the license list is not waiting for it.
    world.goto.faults.inject("latency", r"^/identity/v1/Users$", method="GET", count=1, latency_ms=1000)
    result = await world.cycle()
    assert result.by_action == {"Create": 4} and result.by_status == {"Success": 4}
    g2m = world.goto.license_key("G2M")
    for uid in world.assigned_user_ids():
        user = goto_user(world, uid)
        assert user is not None and world.goto.licenses_of(user["key"]) == [g2m]
    listing, *creates = world.goto.passed["identity"]
    account, licenses, *seats = world.goto.passed["admin"]
    assert len(creates) == 4 and len(seats) == 4
    assert account < licenses < listing  # both Admin API reads answered while GoTo held the listing
