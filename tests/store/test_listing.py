"""The listing table: where a continuing full cycle's /users listing stands, one row per page it
finished, with the users each page listed packed small (shared/store/listing.py)."""

from __future__ import annotations

import uuid

import pytest

from shared.store import ListedPage, Store
from shared.store.listing import pack_users, row_key, unpack_users


def guids(n: int, seed: int = 0) -> list[str]:
    return [str(uuid.UUID(int=(seed << 64) + i + 1, version=4)) for i in range(n)]


def page(n: int, users: dict[str, tuple[str, ...] | None], held: set[str] | None = None, **kw: object) -> ListedPage:
    fields: dict[str, object] = {
        "page": n,
        "listing": "L1",
        "config": "c" * 64,
        "next_link": f"https://graph.example/v1.0/users?$skiptoken=t{n}",
        "listed": 5 * (n + 1),
        "expected": 12,
        "users": users,
        "held": frozenset(held or ()),
    }
    fields.update(kw)
    return ListedPage(**fields)  # type: ignore[arg-type]


def test_a_page_of_999_graph_ids_packs_to_17_bytes_a_user() -> None:
    ids = guids(999)
    packed, scopes = pack_users(dict.fromkeys(ids, ("MeetingOrganizer",)), frozenset(ids[:10]))
    assert len(packed) == 999 * 17 and scopes == [("MeetingOrganizer",)]
    users, held = unpack_users(packed, scopes)
    assert list(users) == ids and held == frozenset(ids[:10])


def test_ids_that_are_not_canonical_guids_round_trip_as_text() -> None:
    odd = ["0B6B1B7A-7D1C-4C1E-8D5F-2D0F7B7E1A01", "ann@contoso.com", "ünïcode-ïd", "x" * 300, "{" + guids(1)[0] + "}"]
    scoped = {uid: (None if i % 2 else ("", "Admin")) for i, uid in enumerate(odd)}
    packed, scopes = pack_users(scoped, frozenset(odd[1:2]))
    assert unpack_users(packed, scopes) == (scoped, frozenset(odd[1:2]))


def test_packed_users_that_are_cut_short_do_not_read() -> None:
    packed, scopes = pack_users(dict.fromkeys(guids(3), None))
    with pytest.raises(ValueError, match="past the end"):
        unpack_users(packed[:-1], scopes)
    with pytest.raises(ValueError, match="scope table"):
        unpack_users(packed, [])


def test_a_held_user_is_one_the_page_listed() -> None:
    with pytest.raises(ValueError, match="held user"):
        page(0, {"a": None}, {"b"})


async def test_pages_round_trip_in_order_with_every_kind_of_scope(store: Store) -> None:
    ids = guids(6)
    first = page(0, {ids[0]: None, ids[1]: (), ids[2]: ("",)}, {ids[0]})
    second = page(1, {ids[3]: ("Admin", "MeetingOrganizer"), "not-a-guid": None}, expected=None)
    last = page(2, {}, next_link="", listed=12)
    assert await store.listing.save("cycle-1", [second, last, first]) == 3
    assert await store.listing.load("cycle-1") == [first, second, last]
    assert await store.listing.load("another-cycle") == []


async def test_a_page_with_long_ids_spans_several_properties(store: Store) -> None:
    users: dict[str, tuple[str, ...] | None] = {f"{i:05d}-" + "y" * 250: ("Admin",) for i in range(999)}
    big = page(0, users, set(list(users)[:3]))
    assert await store.listing.save("cycle-1", [big]) == 1
    assert await store.listing.load("cycle-1") == [big]


async def test_a_page_too_large_for_one_entity_is_not_saved_nor_any_after_it(store: Store) -> None:
    huge = page(1, {f"{i:05d}-" + "z" * 1000: None for i in range(999)})
    assert await store.listing.save("cycle-1", [page(0, {}), huge, page(2, {})]) == 1
    assert [p.page for p in await store.listing.load("cycle-1")] == [0]


async def test_load_stops_at_a_gap_another_listing_or_a_row_it_cannot_read(store: Store) -> None:
    await store.listing.save("gap", [page(0, {}), page(1, {}), page(3, {})])
    assert [p.page for p in await store.listing.load("gap")] == [0, 1]
    await store.listing.save("mixed", [page(0, {}), page(1, {}, listing="L2"), page(2, {})])
    assert [p.page for p in await store.listing.load("mixed")] == [0]
    await store.listing.save("spoilt", [page(0, {}), page(1, {"a": None}), page(2, {})])
    table = store._service.get_table_client(store.table_name("listing"))
    row = await table.get_entity("spoilt", row_key(1))
    row["users0"] = bytes(row["users0"])[:-1]
    await table.update_entity(row)
    assert [p.page for p in await store.listing.load("spoilt")] == [0]
    assert await store.listing.load("nothing") == []


async def test_forget_removes_one_cycles_rows_and_purge_every_cycles(store: Store) -> None:
    await store.listing.save("old", [page(0, {}), page(1, {})])
    await store.listing.save("current", [page(0, {}), page(1, {}), page(2, {})])
    assert await store.listing.forget("current") == 3
    assert await store.listing.load("current") == [] and len(await store.listing.load("old")) == 2
    await store.listing.save("current", [page(0, {})])
    assert await store.listing.purge() == 3
    assert await store.listing.load("old") == [] and await store.listing.load("current") == []
    assert await store.listing.purge() == 0
