"""A full cycle that hands itself on resumes Graph's /users listing where it stood, instead of
listing from the first page again: the reader goes on from a saved position (and checks the
listing against Graph's count across invocations), and the engine keeps what the earlier
invocations listed and held back (docs/sync-engine.md#cycles)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.entra.reader import CursorFailed, IncompleteRead, ListingPosition
from tests.fixtures.world import World

USERS_LIST = r"^/v1\.0/users$"
SELECT = ["id", "userPrincipalName"]


def listing_requests(world: World) -> int:
    return world.graph.counters.total("GET", path_regex=USERS_LIST)


# ---------------------------------------------------------------- the reader


async def test_the_reader_goes_on_from_a_saved_position_without_reading_earlier_pages(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=12, assign=0, graph={"page_size_cap": 5})
    async with world.runtime() as rt:
        first = rt.reader.iter_user_pages(SELECT)
        page = await anext(first)
        await first.aclose()
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
        first = rt.reader.iter_user_pages(SELECT)
        page = await anext(first)
        await first.aclose()
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
        first = rt.reader.iter_user_pages(SELECT)
        page = await anext(first)
        await first.aclose()
        if fault is None:
            world.graph.advance_clock(61)  # the nextLink's skiptoken has expired
        else:
            world.graph.faults.inject(fault, USERS_LIST, method="GET")
        with pytest.raises(CursorFailed) as caught:
            _ = [p async for p in rt.reader.iter_user_pages(SELECT, page.after)]
    assert "resumed at a saved nextLink" in str(caught.value)
    if fault is None:
        assert caught.value.status == 400 and caught.value.code == "Directory_ExpiredPageToken"
