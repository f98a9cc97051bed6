"""The drift sweep end to end (Graph emulator, GoTo emulator, Azurite): GoTo users edited by hand
(renamed, re-activated, deleted, disabled, a seat removed) are put back by one sweep and each
repair is logged with GoTo's value it replaced; GoTo users gotosync does not manage are never
touched; the deletion guards hold mass re-disables; a dry run writes nothing; provisioning off
and a held lease stop the sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from shared.engine.cycle import CycleNotRun
from shared.engine.drift import REASON_PREFIX, STEP
from shared.engine.drift_sweep import DriftResult, sweep_drift
from shared.goto.auth import StaticTokenProvider
from shared.goto.scim import GoToScimClient
from shared.model import Action, CycleKind, CycleProgress, Initiator, ProvisioningLogEntry, Status, utcnow
from tests.fixtures.goto import goto_client
from tests.fixtures.world import World

VISIBLE = {"active": "honour", "extension_attrs": "store"}  # GoTo keeps `active` and externalId
ROLE_LICENSES = {"MeetingOrganizer": ("G2M",)}


async def licensed_world(make_world: Callable[..., World], users: int = 10, assign: int = 8, **goto: Any) -> World:
    """A world after its initial cycle with ROLE_LICENSES: every assigned user holds a G2M seat."""
    world = make_world(users=users, assign=assign, goto={**VISIBLE, **goto})
    world.settings = world.settings.with_overrides(role_licenses=ROLE_LICENSES)
    first = await world.cycle()
    assert first.by_status == {"Success": assign}
    return world


async def sweep(world: World, **kwargs: Any) -> DriftResult:
    kwargs.setdefault("initiated_by", Initiator.CLI)
    async with world.runtime() as rt:
        return await sweep_drift(rt.engine, **kwargs)


@contextmanager
def by_hand(world: World) -> Iterator[httpx.Client]:
    """GoTo's API as an admin uses it (the admin center), not as gotosync: its own token."""
    with goto_client(world.goto) as client:
        yield client


def key_of(world: World, user_id: str) -> str:
    user = world.goto_user(world.upn(user_id))
    assert user is not None
    return str(user["key"])


def scim(path: str) -> str:
    return f"/identity/v1{path}"


async def drift_logs(world: World, result: DriftResult) -> list[ProvisioningLogEntry]:
    async with world.store() as store:
        return await store.logs.query(cycle_id=result.sweep_id)


def modified(entry: ProvisioningLogEntry) -> dict[str, tuple[Any, Any]]:
    return {m.name: (m.old, m.new) for m in entry.modified}


async def test_users_edited_by_hand_are_put_back_and_each_repair_is_logged_with_gotos_old_value(
    make_world: Callable[..., World],
) -> None:
    world = await licensed_world(make_world)
    ids = world.assigned_user_ids()
    renamed, reactivated, deleted, unseated, disabled = ids[:5]
    world.graph.unassign(reactivated)
    assert (await world.cycle()).by_action == {"Disable": 1}
    expected = {uid: world.goto_user(world.upn(uid)) for uid in ids}
    g2m = world.goto.license_key("G2M")
    account = world.goto.account_key
    unmanaged = world.goto.add_user(userName="bystander@contoso.com", displayName="Left Alone", active=False)

    with by_hand(world) as goto:
        goto.patch(scim(f"/Users/{key_of(world, renamed)}"), json={"displayName": "Renamed By Hand"})
        goto.patch(scim(f"/Users/{key_of(world, reactivated)}"), json={"active": True})
        goto.delete(scim(f"/Users/{key_of(world, deleted)}")).raise_for_status()
        gone = key_of(world, unseated)
        goto.delete(f"/admin/rest/v1/accounts/{account}/licenses/{g2m}/users/{gone}").raise_for_status()
        goto.patch(scim(f"/Users/{key_of(world, disabled)}"), json={"active": False})
        goto.patch(scim(f"/Users/{unmanaged}"), json={"displayName": "Edited But Not Ours"})
    mark = len(world.goto.journal_entries())

    result = await sweep(world)

    assert result.unmanaged == 2  # the bystander and GoTo's own admin account: counted, never touched
    assert sorted(r.log_action.value for r in result.records) == ["Create", "Disable", "Update", "Update", "Update"]
    assert all(r.log_status is Status.SUCCESS for r in result.records)
    # Everything is back.
    now = {uid: world.goto_user(world.upn(uid)) for uid in ids}
    assert now[renamed]["displayName"] == expected[renamed]["displayName"]
    assert now[reactivated]["active"] is False
    assert now[deleted]["inOrg"] is True and now[deleted]["active"] is True
    assert now[deleted]["licenseKeys"] == [g2m]
    assert now[unseated]["licenseKeys"] == [g2m]
    assert now[disabled]["active"] is True
    for uid in set(ids) - {reactivated}:
        for attr in ("userName", "displayName", "givenName", "familyName", "externalId", "active"):
            assert now[uid][attr] == expected[uid][attr], (uid, attr)
    # The bystander: not written.
    touched = {e["key"] for e in world.goto.journal_entries(mark)}
    assert unmanaged not in touched
    assert world.goto.user(unmanaged)["displayName"] == "Edited But Not Ours"
    assert touched == {key_of(world, uid) for uid in (renamed, reactivated, deleted, unseated, disabled)}

    # Each repair is logged as a drift repair, with GoTo's value as old and ours as new.
    logs = {e.source_id: e for e in await drift_logs(world, result)}
    assert set(logs) == {renamed, reactivated, deleted, unseated, disabled}
    for entry in logs.values():
        assert entry.initiated_by is Initiator.DRIFT and entry.error_code == ""
        assert entry.reason.startswith(REASON_PREFIX) and entry.steps[0].name == STEP
    assert logs[renamed].action is Action.UPDATE
    assert modified(logs[renamed])["displayName"] == ("Renamed By Hand", expected[renamed]["displayName"])
    assert logs[reactivated].action is Action.DISABLE
    assert modified(logs[reactivated])["active"] == (True, False)
    assert "re-enabled in GoTo by hand" in logs[reactivated].evidence
    assert logs[deleted].action is Action.CREATE and "deleted in GoTo by hand" in logs[deleted].reason
    assert modified(logs[unseated])["licenses"] == ([], [g2m])
    assert logs[disabled].action is Action.UPDATE and modified(logs[disabled])["active"] == (False, True)

    # The links follow: the re-created user's link points at its GoTo id; a second sweep finds nothing.
    async with world.store() as store:
        link = await store.links.get(deleted, "user")
        assert link is not None and link.live and link.goto_id == now[deleted]["key"] and link.licenses == [g2m]
        history = await store.cycles.recent(1)
        assert history[0][0].kind is CycleKind.DRIFT and history[0][0].cycle_id == result.sweep_id
    again = await sweep(world)
    assert again.records == [] and again.in_step == len(ids)
    # And the next cycle agrees: nothing to do.
    assert (await world.cycle()).by_action == {}


async def test_the_sweep_reads_goto_once_and_never_graph(make_world: Callable[..., World]) -> None:
    world = make_world(users=6, assign=5, goto=VISIBLE)
    await world.cycle()
    world.graph.counters.reset()
    world.goto.counters.reset()
    result = await sweep(world)
    assert result.records == [] and result.in_step == 5
    assert world.graph.counters.total() == 0
    assert world.goto.counters.writes() == 0
    assert world.goto.counters.total() == 1  # one page of GoTo users


async def test_the_deletion_guard_holds_many_re_disables_and_the_next_cycle_re_reads_them_once_allowed(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=14, assign=12, goto=VISIBLE)
    await world.cycle()
    leavers = world.assigned_user_ids()[:8]
    for uid in leavers:
        world.graph.unassign(uid)
    assert (await world.cycle(settings={"deletion_threshold_percent": 0})).by_action == {"Disable": 8}
    with by_hand(world) as goto:
        for uid in leavers:
            goto.patch(scim(f"/Users/{key_of(world, uid)}"), json={"active": True})
    mark = len(world.goto.journal_entries())

    held = await sweep(world)

    assert held.staged == 8 and all(r.log_action is Action.STAGED_DELETE for r in held.records)
    assert world.goto.journal_entries(mark) == []  # nothing written to GoTo
    async with world.store() as store:
        job = await store.job.get()
        assert job.quarantine_reason.startswith("DeletionThresholdExceeded") and job.staged_deletes == 8
        escrowed = {e.entra_id: e for e in await store.escrow.all()}
    assert set(escrowed) == set(leavers)
    assert all(
        e.last_error_code == "StagedDelete" and "re-enabled in GoTo by hand" in e.evidence for e in escrowed.values()
    )
    logs = await drift_logs(world, held)
    assert {e.source_id for e in logs} == set(leavers) and all(e.status is Status.SKIPPED for e in logs)

    # The admin allows the deletes: the next cycle re-reads those users from Entra and disables them.
    async with world.store() as store:
        await store.job.update(lambda j: setattr(j, "allow_deletes_once", True))
    done = await world.cycle()
    assert done.by_action == {"Disable": 8}
    assert all(world.goto_user(world.upn(uid))["active"] is False for uid in leavers)


async def test_a_dry_run_lists_the_repairs_and_writes_nothing(make_world: Callable[..., World]) -> None:
    world = await licensed_world(make_world, users=6, assign=4)
    renamed, deleted = world.assigned_user_ids()[:2]
    with by_hand(world) as goto:
        goto.patch(scim(f"/Users/{key_of(world, renamed)}"), json={"displayName": "Renamed By Hand"})
        goto.delete(scim(f"/Users/{key_of(world, deleted)}")).raise_for_status()
    mark = len(world.goto.journal_entries())
    async with world.store() as store:
        links_before = {lk.entra_id: lk.etag for lk in await store.links.all("user")}
        cycles_before = await store.cycles.recent(10)

    result = await sweep(world, dry_run=True)

    planned = {r.user.id: r for r in result.records}
    assert planned[renamed].log_action is Action.UPDATE and planned[deleted].log_action is Action.CREATE
    assert planned[renamed].changes["displayName"][0] == "Renamed By Hand"
    document = result.document()
    assert document["dryRun"] is True and len(document["repairs"]) == 2
    assert world.goto.journal_entries(mark) == []
    assert world.goto.user(key_of(world, renamed))["displayName"] == "Renamed By Hand"
    async with world.store() as store:
        assert {lk.entra_id: lk.etag for lk in await store.links.all("user")} == links_before
        assert await store.cycles.recent(10) == cycles_before
        assert await store.logs.query(cycle_id=result.sweep_id) == []


async def test_provisioning_off_stops_the_sweep_before_anything_is_read_or_written(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=3, goto=VISIBLE)
    await world.cycle()
    renamed = world.assigned_user_ids()[0]
    with by_hand(world) as goto:
        goto.patch(scim(f"/Users/{key_of(world, renamed)}"), json={"displayName": "Renamed By Hand"})
    async with world.store() as store:
        await store.job.update(lambda j: setattr(j, "enabled", False))
    world.goto.counters.reset()
    with pytest.raises(CycleNotRun, match="provisioning is off"):
        await sweep(world)
    assert world.goto.counters.total() == 0
    # A dry run still shows what the sweep would put back.
    preview = await sweep(world, dry_run=True)
    assert [r.user.id for r in preview.records] == [renamed]
    assert world.goto.counters.writes() == 0


async def test_the_sweep_never_interleaves_with_a_cycle(make_world: Callable[..., World]) -> None:
    world = make_world(users=4, assign=3, goto=VISIBLE)
    await world.cycle()
    async with world.store() as store:
        lease = await store.lease.acquire("cycle", "some-cycle", 60)
        assert lease is not None
        with pytest.raises(CycleNotRun, match="some-cycle"):
            await sweep(world)
        await store.lease.release(lease)
        # A cycle killed half-way (a function timeout) has not finished: the sweep waits for it.
        unfinished = CycleProgress(cycle_id="c-unfinished", kind=CycleKind.INITIAL, started=utcnow(), total=9)
        await store.job.update(lambda j: setattr(j, "current", unfinished))
        with pytest.raises(CycleNotRun, match="c-unfinished"):
            await sweep(world)
    # While the sweep runs, a cycle finds the lease held by it.
    async with world.store() as store:
        lease = await store.lease.acquire("cycle", "drift-x", 60)
        assert lease is not None
        with pytest.raises(CycleNotRun, match="drift-x"):
            await world.cycle()


async def test_a_linked_user_missing_from_the_listing_is_re_created_only_on_a_404(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=3, goto=VISIBLE)
    await world.cycle()
    deleted = world.assigned_user_ids()[0]
    key = key_of(world, deleted)
    with by_hand(world) as goto:
        goto.delete(scim(f"/Users/{key}")).raise_for_status()
    world.goto.faults.inject(400, path=f"^/identity/v1/Users/{key}$", method="GET")
    mark = len(world.goto.journal_entries())
    refused = await sweep(world)
    assert refused.records == [] and refused.unread == 1
    assert world.goto.journal_entries(mark) == []
    world.goto.faults.clear()
    repaired = await sweep(world)
    assert [r.log_action for r in repaired.records] == [Action.CREATE]
    assert world.goto.user(key)["inOrg"] is True


class WebhookLandsFirst(httpx.AsyncHTTPTransport):
    """The GoTo transport of the sweep, with one interleaving: just before the sweep's first
    PATCH reaches GoTo, a webhook run's write lands (its own PATCH of GoTo, then its link)."""

    def __init__(self, world: World, user_id: str, name: str) -> None:
        super().__init__()
        self.world, self.user_id, self.name, self.fired = world, user_id, name, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and not self.fired:
            self.fired = True
            key = key_of(self.world, self.user_id)
            with by_hand(self.world) as goto:  # what the webhook run sent
                goto.patch(scim(f"/Users/{key}"), json={"displayName": self.name}).raise_for_status()
            async with self.world.store() as store:
                link = await store.links.get(self.user_id, "user")
                assert link is not None
                link.exported["displayName"] = link.exported["name.givenName"] = self.name
                link.applied_at = utcnow()
                await store.links.put(link)
        return await super().handle_async_request(request)


async def test_a_webhook_write_landing_under_the_sweep_wins_and_the_user_is_decided_again(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=3, goto=VISIBLE)
    await world.cycle()
    uid = world.assigned_user_ids()[0]
    with by_hand(world) as goto:
        goto.patch(scim(f"/Users/{key_of(world, uid)}"), json={"displayName": "Renamed By Hand"})
    async with world.runtime() as rt:
        hooked = WebhookLandsFirst(world, uid, "From Entra")
        rt.engine.scim = GoToScimClient(
            world.settings.goto_scim_url,
            StaticTokenProvider(world.settings.goto_access_token),
            rate_limit=None,
            http_transport=hooked,
        )
        async with rt.engine.scim:
            result = await sweep_drift(rt.engine, initiated_by=Initiator.CLI)
    assert hooked.fired
    # The sweep's PATCH overwrote the webhook's in GoTo; its link write lost; read again, the
    # user is set to what the newer link says.
    assert world.goto_user(world.upn(uid))["displayName"] == "From Entra"
    changes = [r.changes["displayName"] for r in result.records]
    assert changes == [
        ("Renamed By Hand", world.graph.user(uid)["displayName"]),
        (world.graph.user(uid)["displayName"], "From Entra"),
    ]
    assert result.raced == 0
    async with world.store() as store:
        link = await store.links.get(uid, "user")
    assert link is not None and link.exported["displayName"] == "From Entra"


async def test_a_cycle_continuing_across_invocations_holds_off_the_sweep_until_it_has_ended(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=40, assign=30, goto=VISIBLE)
    # Each create takes a while: the initial cycle runs out of its tiny budget and hands itself on.
    world.goto.faults.inject("latency", r"^/identity/v1/Users$", method="POST", latency_ms=100)
    async with world.runtime(cycle_concurrency=4) as rt:
        first = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=0.25)
    assert first.continuing
    created = [u for u in world.goto.users() if u["userName"].lower() != "admin@contoso.com"]
    assert created  # some users exist, not all of them
    with by_hand(world) as goto:
        goto.patch(scim(f"/Users/{created[0]['key']}"), json={"displayName": "Renamed By Hand"})
    writes = world.goto.counters.writes()
    # Between two invocations nobody holds the lease, but the cycle has not ended: no sweep.
    with pytest.raises(CycleNotRun, match=rf"{first.cycle_id}.*continuing \(invocation 1\)"):
        await sweep(world)
    assert world.goto.counters.writes() == writes
    async with world.store() as store:
        job = await store.job.get()
        assert job.current is not None and job.current.continuing and job.current.cycle_id == first.cycle_id
        assert await store.cycles.recent(5) == []  # no sweep in the history either
    # The cycle runs to its end; then the sweep runs and GoTo is as gotosync left it.
    world.goto.faults.clear()
    async with world.runtime() as rt:
        last = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, resume=first.cycle_id)
    assert not last.continuing and last.cycle_id == first.cycle_id
    result = await sweep(world)
    assert result.in_step + len(result.records) == 30 and result.unmanaged == 1
    for uid in world.assigned_user_ids():
        assert world.goto_user(world.upn(uid))["displayName"] == world.graph.user(uid)["displayName"]


async def test_repairs_not_started_within_the_time_budget_are_left_to_the_next_sweep(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=5, assign=4, goto=VISIBLE)
    await world.cycle()
    renamed = world.assigned_user_ids()[:3]
    with by_hand(world) as goto:
        for uid in renamed:
            goto.patch(scim(f"/Users/{key_of(world, uid)}"), json={"displayName": "Renamed By Hand"})
    writes = world.goto.counters.writes()
    spent = await sweep(world, budget_seconds=0)
    assert spent.out_of_budget == 3 and spent.records == [] and spent.summary()["outOfTimeBudget"] == 3
    assert world.goto.counters.writes() == writes
    assert all(world.goto_user(world.upn(uid))["displayName"] == "Renamed By Hand" for uid in renamed)
    again = await sweep(world)
    assert again.out_of_budget == 0 and sorted(r.user.id for r in again.records) == sorted(renamed)
    for uid in renamed:
        assert world.goto_user(world.upn(uid))["displayName"] == world.graph.user(uid)["displayName"]
