"""A full cycle that hands itself on resumes Graph's /users listing where it stood, instead of
listing from the first page again: the reader goes on from a saved position (and checks the
listing against Graph's count across invocations), and the engine keeps what the earlier
invocations listed and held back (docs/sync-engine.md#cycles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.engine.cycle import CycleInterrupted, CycleNotRun, CycleResult
from shared.entra.reader import CursorFailed, IncompleteRead, ListingPosition, UsersPage
from shared.model import Initiator
from shared.ops.control import allow_deletes
from shared.ops.status import load_status
from shared.runtime import Runtime
from shared.store import ListedPage
from tests.fixtures.world import ProvisionedWorld, World
from tests.safety.conftest import deprovisions, journal_mark

USERS_LIST = r"^/v1\.0/users$"
SELECT = ["id", "userPrincipalName"]


def listing_requests(world: World) -> int:
    return world.graph.counters.total("GET", path_regex=USERS_LIST)


async def first_page(rt: Runtime) -> UsersPage:
    """The /users listing's first page (the listing is left there)."""
    pages = rt.reader.iter_user_pages(SELECT)
    try:
        return await anext(pages)
    finally:
        await pages.aclose()


# ---------------------------------------------------------------- the reader


async def test_the_reader_goes_on_from_a_saved_position_without_reading_earlier_pages(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=12, assign=0, graph={"page_size_cap": 5})
    async with world.runtime() as rt:
        page = await first_page(rt)
        assert len(page.users) == 5 and page.after.listed == 5 and page.after.expected == 12
        assert page.after.next_link
        before = listing_requests(world)
        rest = [p async for p in rt.reader.iter_user_pages(SELECT, page.after)]
    assert listing_requests(world) - before == 2  # pages 2 and 3, not page 1 again
    assert [len(p.users) for p in rest] == [5, 2]
    assert rest[-1].after == ListingPosition("", 12, 12)
    listed = {u["id"] for u in page.users} | {u["id"] for p in rest for u in p.users}
    assert listed == set(world.graph.tenant.users)


async def test_a_listing_read_across_positions_is_still_checked_against_graphs_count(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=12, assign=0, graph={"page_size_cap": 5})
    async with world.runtime() as rt:
        page = await first_page(rt)
        world.graph.faults.inject("drop-next-link", USERS_LIST, method="GET", count=1)  # page 2 ends the list
        with pytest.raises(IncompleteRead, match="returned 10 users where Graph counts 12"):
            _ = [p async for p in rt.reader.iter_user_pages(SELECT, page.after)]
        # A position at the end of a short listing is checked too, without a request.
        before = listing_requests(world)
        with pytest.raises(IncompleteRead, match="returned 10 users where Graph counts 12"):
            _ = [p async for p in rt.reader.iter_user_pages(SELECT, ListingPosition("", 10, 12))]
        assert listing_requests(world) == before
        assert [p async for p in rt.reader.iter_user_pages(SELECT, ListingPosition("", 12, 12))] == []


@pytest.mark.parametrize("fault", [None, 503, "drop-value"])
async def test_a_saved_position_graph_refuses_is_a_cursor_failure(
    make_world: Callable[..., World], fault: int | str | None
) -> None:
    world = make_world(
        users=12, assign=0, graph={"page_size_cap": 5, "skiptoken_expiry": "lifetime", "skiptoken_lifetime_seconds": 60}
    )
    async with world.runtime() as rt:
        page = await first_page(rt)
        if fault is None:
            world.graph.advance_clock(61)  # the nextLink's skiptoken has expired
        else:
            world.graph.faults.inject(fault, USERS_LIST, method="GET")
        with pytest.raises(CursorFailed) as caught:
            _ = [p async for p in rt.reader.iter_user_pages(SELECT, page.after)]
    assert "resumed at a saved nextLink" in str(caught.value)
    if fault is None:
        assert caught.value.status == 400 and caught.value.code == "Directory_ExpiredPageToken"


# ---------------------------------------------------------------- the engine

GUID_PATH = r"[0-9a-f-]{36}"
BUDGET = 2.0  # seconds an invocation works: ample for the pages before the slow request
SLOW_MS = 3000  # one GoTo request this slow uses an invocation's budget up


def by_id_reads(world: World, uid: str | None = None) -> int:
    """GET /users/{id}: users read one by one (not through the listing)."""
    return world.graph.counters.total("GET", path_regex=rf"^/v1\.0/users/{uid or GUID_PATH}$")


def slow_create(world: World, after: int) -> None:
    """The create after the first `after` ones takes longer than an invocation's budget."""
    world.goto.faults.inject(
        "latency", r"^/identity/v1/Users$", method="POST", after=after, count=1, latency_ms=SLOW_MS
    )


def slow_update(world: World, uid: str) -> None:
    """The update of this user takes longer than an invocation's budget."""
    key = world.goto.user_by_username(world.upn(uid))["key"]  # type: ignore[index]
    world.goto.faults.inject("latency", rf"^/identity/v1/Users/{key}$", method="PATCH", count=1, latency_ms=SLOW_MS)


async def invocations(world: World, between: Callable[[int], None] | None = None, **settings: Any) -> list[CycleResult]:
    """A full cycle's invocations on a small budget until it ends (`between(n)` before the
    n-th resumed invocation)."""
    results: list[CycleResult] = []
    async with world.runtime(**settings) as rt:
        while not results or results[-1].continuing:
            if results and between is not None:
                between(len(results))
            results.append(await rt.engine.run_cycle(initiated_by=Initiator.TIMER, full=True, budget_seconds=BUDGET))
            assert len(results) < 30
    assert {r.cycle_id for r in results} == {results[0].cycle_id}
    return results


async def saved_pages(world: World, cycle_id: str) -> list[ListedPage]:
    async with world.store() as store:
        return await store.listing.load(cycle_id)


def disabled(world: World, since: int) -> list[str]:
    return sorted(str(e["userName"]).lower() for e in deprovisions(world, since))


async def test_a_resumed_invocation_reads_no_earlier_page_again_and_no_listed_user_by_id(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=40, assign=40, graph={"page_size_cap": 5})  # 8 pages of 5
    slow_create(world, 12)  # on page 3
    slow_create(world, 27)  # on page 6
    results = await invocations(world)
    assert len(results) >= 2
    # Each hand-on costs at most two pages more: the page read ahead, and the page the budget ran
    # out on when it was not finished. Listing from the first page each time would cost 8 more.
    assert listing_requests(world) <= 8 + 2 * (len(results) - 1)
    assert by_id_reads(world) == 0
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 40  # each user created once
    in_goto = {u["userName"].lower() for u in world.goto.users()} - {"admin@contoso.com"}
    assert in_goto == {world.upn(uid).lower() for uid in world.assigned_user_ids()}
    assert await saved_pages(world, results[0].cycle_id) == []  # removed when the cycle ended
    async with world.store() as store:
        job = await store.job.get()
    assert job.current is None and job.last is not None and job.last.invocations == len(results)


async def test_the_pages_an_invocation_finished_are_saved_as_it_hands_on(make_world: Callable[..., World]) -> None:
    world = make_world(users=40, assign=40, graph={"page_size_cap": 5})
    slow_create(world, 12)  # on page 3: the invocation hands on after it
    ids = world.assigned_user_ids()
    async with world.runtime() as rt:
        first = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, full=True, budget_seconds=BUDGET)
        assert first.continuing
        pages = await rt.store.listing.load(first.cycle_id)
        assert [p.page for p in pages] == [0, 1, 2]
        assert [list(p.users) for p in pages] == [ids[0:5], ids[5:10], ids[10:15]]
        assert {s for p in pages for s in p.users.values()} == {("MeetingOrganizer",)}
        assert pages[-1].listed == 15 and pages[-1].expected == 40 and pages[-1].next_link
        before = listing_requests(world)
        second = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=BUDGET)
    assert not second.continuing and second.cycle_id == first.cycle_id
    assert listing_requests(world) - before == 5  # pages 4 to 8
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 40


async def test_disables_held_in_an_earlier_invocation_are_read_again_and_done_at_the_end(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=40, assign=40, graph={"page_size_cap": 5})
    ids = world.assigned_user_ids()
    leavers = ids[:2]  # on page 1: held in the first invocation
    for uid in leavers:
        world.graph.unassign(uid)
    for uid in ids[2:]:
        world.graph.update_user(uid, department="Moved")  # every other user has an update
    slow_update(world, ids[12])  # on page 3
    mark = journal_mark(world)
    world.graph.counters.reset()
    results = await invocations(world)
    assert len(results) >= 2
    assert disabled(world, mark) == sorted(world.upn(uid).lower() for uid in leavers)
    assert all(by_id_reads(world, uid) == 1 for uid in leavers)  # read again, at the end
    assert by_id_reads(world) == len(leavers)  # and nobody else
    assert sum(r.by_action.get("Disable", 0) for r in results) == 2


async def test_disables_held_across_invocations_are_counted_together_by_the_deletion_threshold(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=40, assign=40, graph={"page_size_cap": 5})
    ids = world.assigned_user_ids()
    leavers = [ids[0], ids[1], ids[38], ids[39]]  # two on page 1 (first invocation), two on page 8
    for uid in leavers:
        world.graph.unassign(uid)
    for uid in ids[2:38]:
        world.graph.update_user(uid, department="Moved")
    slow_update(world, ids[12])
    mark = journal_mark(world)
    # Three disables would pass; four are held. No invocation alone sees more than two.
    results = await invocations(world, deletion_threshold=3, deletion_threshold_percent=0)
    assert len(results) >= 2
    assert results[-1].staged == 4 and deprovisions(world, mark) == []
    async with world.runtime() as rt:
        status = await load_status(rt.store, rt.settings)
        assert status["quarantine"].startswith("DeletionThresholdExceeded")
        assert "4 disables/deletes in this run exceed the deletion threshold of 3" in status["quarantine"]
        await allow_deletes(rt.store)
    await world.cycle()
    assert disabled(world, mark) == sorted(world.upn(uid).lower() for uid in leavers)


async def test_a_scope_change_between_invocations_is_decided_again_for_users_done_earlier(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=40, assign=40, graph={"page_size_cap": 5})
    ids = world.assigned_user_ids()
    leaver, comeback = ids[0], ids[6]  # pages 1 and 2, both finished in the first invocation
    world.graph.unassign(comeback)  # held in the first invocation
    for uid in ids:
        if uid != comeback:
            world.graph.update_user(uid, department="Moved")
    slow_update(world, ids[12])
    mark = journal_mark(world)

    def between(n: int) -> None:
        if n == 1:
            world.graph.unassign(leaver)  # updated, in scope, in the first invocation
            world.graph.assign(comeback, "MeetingOrganizer")  # its held disable must not happen

    results = await invocations(world, between)
    assert len(results) >= 2
    # What a cycle listing everyone again in its last invocation would do: disable the leaver,
    # keep the user who came back.
    assert disabled(world, mark) == [world.upn(leaver).lower()]
    assert world.goto.user_by_username(world.upn(comeback))["active"] is True  # type: ignore[index]
    assert by_id_reads(world, leaver) == 1 and by_id_reads(world, comeback) == 1
    # The next incremental cycle has nothing left to do.
    quiet = await world.cycle()
    assert not ({"Disable", "Create", "Update"} & set(quiet.by_action))


@pytest.mark.parametrize("expiry", ["lifetime", "on-change"])
async def test_a_saved_position_graph_refuses_falls_back_to_the_first_page_and_converges_exactly(
    make_world: Callable[..., World], expiry: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(
        users=41,
        assign=40,
        graph={"page_size_cap": 5, "skiptoken_expiry": expiry, "skiptoken_lifetime_seconds": 60},
    )
    bystander = list(world.graph.tenant.users)[40]  # not assigned
    slow_create(world, 12)
    slow_create(world, 27)

    def expire(_: int) -> None:  # every saved nextLink is refused
        world.graph.advance_clock(61)
        world.graph.update_user(bystander, jobTitle=f"title {world.graph.tenant.seq}")

    results = await invocations(world, expire)
    assert len(results) >= 2
    restarts = [r for r in caplog.records if "listed again from the first page" in r.getMessage()]
    assert len(restarts) == len(results) - 1
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 40  # each user created once
    in_goto = {u["userName"].lower() for u in world.goto.users()} - {"admin@contoso.com"}
    assert in_goto == {world.upn(uid).lower() for uid in world.assigned_user_ids()}
    assert by_id_reads(world) == 0
    async with world.store() as store:
        job = await store.job.get()
    assert job.current is None and job.last_stop == "" and job.has_watermark


async def test_a_listing_cut_short_in_a_later_invocation_is_caught_by_the_count_of_the_first(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=40, assign=40, graph={"page_size_cap": 5})
    ids = world.assigned_user_ids()
    for uid in ids:
        world.graph.update_user(uid, department="Moved")
    world.graph.unassign(ids[39])  # page 8, which the short listing never shows
    slow_update(world, ids[12])
    mark = journal_mark(world)
    async with world.runtime() as rt:
        first = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, full=True, budget_seconds=BUDGET)
        assert first.continuing
        before = listing_requests(world)
        # The resumed listing's first page (page 4) comes without its nextLink: the list ends there.
        world.graph.faults.inject("drop-next-link", USERS_LIST, method="GET", count=1)
        with pytest.raises(IncompleteRead, match="returned 20 users where Graph counts 40"):
            await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=BUDGET)
        assert listing_requests(world) - before == 1  # page 4 only: the count is the first invocation's
        status = await load_status(rt.store, rt.settings)
    assert deprovisions(world, mark) == []
    assert "IncompleteRead" in status["lastStop"]["reason"] and "nothing was disabled" in status["lastStop"]["reason"]
    done = await world.cycle(full=True)  # a new cycle reads everything again
    assert done.cycle_id != first.cycle_id
    assert disabled(world, mark) == [world.upn(ids[39]).lower()]


async def test_a_resumed_invocation_killed_half_way_leaves_a_cycle_that_starts_again_and_converges(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=40, assign=40, graph={"page_size_cap": 5})
    slow_create(world, 12)
    async with world.runtime() as rt:
        first = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, full=True, budget_seconds=BUDGET)
        assert first.continuing and len(await rt.store.listing.load(first.cycle_id)) == 3
        with pytest.raises(CycleInterrupted):  # killed after two more creates
            await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=BUDGET, stop_after=2)
        with pytest.raises(CycleNotRun, match="nothing left to continue"):  # a late continuation message
            await rt.engine.run_cycle(initiated_by=Initiator.TIMER, resume=first.cycle_id)
        again = await rt.engine.run_cycle(initiated_by=Initiator.TIMER)  # the next timer tick
        assert again.cycle_id != first.cycle_id and not again.continuing
        assert await rt.store.listing.load(first.cycle_id) == []  # the killed cycle's rows are gone
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 40
    in_goto = {u["userName"].lower() for u in world.goto.users()} - {"admin@contoso.com"}
    assert in_goto == {world.upn(uid).lower() for uid in world.assigned_user_ids()}


async def test_a_mapping_changed_between_invocations_lists_everyone_again(make_world: Callable[..., World]) -> None:
    world = make_world(users=40, assign=40, graph={"page_size_cap": 5})
    slow_create(world, 12)  # page 3: the first invocation hands on after it
    slow_create(world, 27)  # page 6: and the second after that one
    async with world.runtime() as rt:
        first = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, full=True, budget_seconds=BUDGET)
        assert first.continuing
        saved = await rt.store.listing.load(first.cycle_id)
    before = listing_requests(world)
    async with world.runtime(default_access_only="provision") as rt:  # another configuration digest
        second = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=BUDGET)
        assert second.cycle_id == first.cycle_id and second.continuing
        assert listing_requests(world) - before >= 6  # from the first page: everyone is planned afresh
        replaced = await rt.store.listing.load(first.cycle_id)
        assert [p.page for p in replaced] == [0, 1, 2, 3, 4, 5]
        assert {p.config for p in replaced} == {rt.engine.config_hash} != {p.config for p in saved}
        third = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=BUDGET)
    assert not third.continuing
    assert world.goto.counters.total("POST", "/identity/v1/Users") == 40


async def test_an_invocation_out_of_time_after_the_listing_ended_goes_on_without_listing_again(
    provisioned: ProvisionedWorld,
) -> None:
    world = await provisioned(users=20, assign=20, graph={"page_size_cap": 5})
    leavers = world.assigned_user_ids()[:5]  # five disables: below every guard
    for uid in leavers:
        world.graph.unassign(uid)
    slow_update(world, leavers[0])  # the first disable uses the budget up; the others wait
    mark = journal_mark(world)
    listed: list[int] = []
    results = await invocations(world, lambda _: listed.append(listing_requests(world)), cycle_concurrency=1)
    assert len(results) >= 2
    assert listing_requests(world) == listed[0]  # the listing had ended: nothing listed again
    assert disabled(world, mark) == sorted(world.upn(uid).lower() for uid in leavers)  # each once
    assert all(by_id_reads(world, uid) >= 1 for uid in leavers)
