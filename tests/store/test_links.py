"""Contract of the link repository: round trips, ETag-conditional writes, bulk writes, paged listing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.model import Link
from shared.store import ConcurrencyError, Store

APPLIED = datetime(2025, 3, 1, 8, 0, 0, 654321, tzinfo=UTC)


def link(n: int, kind: str = "user", **changes: object) -> Link:
    base = Link(
        entra_id=f"{'0' if kind == 'user' else '1'}0000000-0000-0000-0000-{n:012d}",
        goto_id=f"goto-{kind}-{n}",
        kind=kind,
        matched_by="created",
        exported={"userName": f"user{n}@contoso.com", "name.givenName": f"Given {n}"},
        licenses=["GoToMeeting Business"],
        applied_at=APPLIED + timedelta(seconds=n),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def without_etag(item: Link) -> Link:
    return dataclasses.replace(item, etag=None)


async def test_a_missing_link_is_none(store: Store) -> None:
    assert await store.links.get("nobody") is None


async def test_every_field_round_trips(store: Store) -> None:
    original = Link(
        entra_id="6f1c1c1e-0000-4000-8000-000000000001",
        goto_id="8455309237548102657",
        kind="user",
        matched_by="userName",
        owned=False,
        exported={
            "userName": "zoë@contoso.com",
            "active": True,
            "emails": [{"value": "zoe@contoso.com", "primary": True}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": None,
            "seats": 2,
        },
        licenses=["GoToMeeting Business", "GoToWebinar"],
        active=False,
        applied_at=datetime(2025, 3, 1, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        seats_pending=["GoToWebinar"],
    )
    stored = await store.links.put(original)
    loaded = await store.links.get(original.entra_id, "user")
    assert loaded is not None
    assert loaded.etag == stored.etag is not None
    assert without_etag(loaded) == original
    assert loaded.applied_at is not None
    assert loaded.applied_at.tzinfo == UTC


async def test_defaults_round_trip(store: Store) -> None:
    minimal = Link(entra_id="g1", goto_id="42", kind="group")
    await store.links.put(minimal)
    loaded = await store.links.get("g1", "group")
    assert loaded is not None
    assert without_etag(loaded) == minimal
    assert await store.links.get("g1", "user") is None  # kinds are separate partitions


async def test_a_seat_change_releasing_every_seat_round_trips_as_an_empty_list_not_as_none(store: Store) -> None:
    releasing = Link(entra_id="u1", goto_id="42", licenses=["G2M"], seats_pending=[])
    await store.links.put(releasing)
    loaded = await store.links.get("u1", "user")
    assert loaded is not None and loaded.seats_pending == []


async def test_put_overwrites_blindly_and_returns_the_new_etag(store: Store) -> None:
    first = await store.links.put(link(1))
    second = await store.links.put(link(1, goto_id="other"))  # no etag needed
    assert second.etag not in (None, first.etag)
    loaded = await store.links.get(link(1).entra_id)
    assert loaded is not None
    assert loaded.goto_id == "other"
    assert loaded.etag == second.etag


async def test_put_if_unchanged_succeeds_with_the_etag_it_read(store: Store) -> None:
    created = await store.links.put_if_unchanged(link(1))  # etag None: only if absent
    assert created.etag is not None
    updated = await store.links.put_if_unchanged(dataclasses.replace(created, active=False))
    assert updated.etag != created.etag
    loaded = await store.links.get(link(1).entra_id)
    assert loaded is not None
    assert loaded.active is False


async def test_put_if_unchanged_refuses_a_stale_etag(store: Store) -> None:
    read_by_cycle = await store.links.put(link(1))
    await store.links.put(dataclasses.replace(read_by_cycle, goto_id="written-by-webhook"))
    with pytest.raises(ConcurrencyError):
        await store.links.put_if_unchanged(dataclasses.replace(read_by_cycle, goto_id="older-cycle-read"))
    loaded = await store.links.get(link(1).entra_id)
    assert loaded is not None
    assert loaded.goto_id == "written-by-webhook"


async def test_put_if_unchanged_refuses_to_create_over_an_existing_link(store: Store) -> None:
    await store.links.put(link(1))
    with pytest.raises(ConcurrencyError):
        await store.links.put_if_unchanged(link(1, goto_id="duplicate"))


async def test_put_if_unchanged_refuses_to_resurrect_a_deleted_link(store: Store) -> None:
    stored = await store.links.put(link(1))
    await store.links.delete(stored.entra_id, "user")
    with pytest.raises(ConcurrencyError):
        await store.links.put_if_unchanged(stored)
    assert await store.links.get(stored.entra_id) is None


async def test_delete_forgets_the_link_and_tolerates_a_missing_one(store: Store) -> None:
    await store.links.put(link(1))
    await store.links.delete(link(1).entra_id, "user")
    assert await store.links.get(link(1).entra_id) is None
    await store.links.delete(link(1).entra_id, "user")


async def test_put_many_writes_250_links_listed_by_all(store: Store) -> None:
    users = [link(n) for n in range(250)]
    groups = [link(n, kind="group") for n in range(7)]
    written = await store.links.put_many([*users, *groups])
    assert [without_etag(w) for w in written] == [*users, *groups]
    assert all(w.etag for w in written)

    listed = await store.links.all("user")
    assert len(listed) == 250
    by_id = {item.entra_id: item for item in listed}
    assert {k: without_etag(v) for k, v in by_id.items()} == {u.entra_id: u for u in users}
    assert {w.entra_id: w.etag for w in written[:250]} == {k: v.etag for k, v in by_id.items()}
    assert {without_etag(g).entra_id for g in await store.links.all("group")} == {g.entra_id for g in groups}


async def test_put_many_keeps_the_last_of_two_links_for_one_object(store: Store) -> None:
    written = await store.links.put_many([link(1, goto_id="first"), link(2), link(1, goto_id="second")])
    loaded = await store.links.get(link(1).entra_id)
    assert loaded is not None
    assert loaded.goto_id == "second"
    assert written[0].etag == written[2].etag == loaded.etag


async def test_put_many_of_nothing_writes_nothing(store: Store) -> None:
    assert await store.links.put_many([]) == []
    assert await store.links.all() == []


async def test_all_reads_past_the_service_page_size(store: Store) -> None:
    await store.links.put_many(link(n, exported={}, licenses=[]) for n in range(2_345))
    listed = await store.links.all("user")
    assert len(listed) == 2_345
    assert len({item.entra_id for item in listed}) == 2_345


@pytest.mark.slow
async def test_all_handles_more_than_ten_thousand_links(store: Store) -> None:
    await store.links.put_many(link(n) for n in range(10_001))
    assert len(await store.links.all("user")) == 10_001


async def test_an_oversized_export_record_is_truncated_with_a_marker_not_refused(store: Store) -> None:
    huge = {f"attr{i}": "v" * 2_000 for i in range(100)}  # ~200 K characters: over a property's 64 KiB
    huge["photo"] = "p" * 100_000
    await store.links.put(link(1, exported=huge))
    loaded = await store.links.get(link(1).entra_id)
    assert loaded is not None
    kept = {k: v for k, v in loaded.exported.items() if k != "_truncated"}
    assert set(kept) <= set(huge)
    assert all(v == huge[k] or "[truncated" in v for k, v in kept.items())
    assert "[truncated" in kept.get("photo", "[truncated")  # never stored whole


async def test_the_compact_copy_answers_as_the_links_themselves(store: Store) -> None:
    written = [
        link(1),
        link(2, owned=False),
        link(3, active=False),
        link(4, goto_id="", pending=True, exported={}),  # an intent: not live
        link(5, seats_pending=["GoToWebinar"], licenses=[]),
        link(6, exported={"userName": "", "displayName": "No name"}),
        link(7, kind="group"),
    ]
    for item in written:
        await store.links.put(item)
    compact = await store.links.compact("user")
    users = await store.links.all("user")
    assert sorted(compact) == sorted(lk.entra_id for lk in users) and len(compact) == 6
    assert {uid: compact[uid] for uid in compact} == {lk.entra_id: lk for lk in users}  # etags too
    assert compact.get("nobody") is None
    live = [lk for lk in users if lk.live]
    assert compact.managed_count() == sum(1 for lk in live if lk.owned and lk.active) == 3
    assert compact.live_goto_ids() == {lk.goto_id: lk.entra_id for lk in live}
    names = {lk.exported["userName"].casefold(): lk.entra_id for lk in live if lk.exported.get("userName")}
    assert compact.taken_names(set()) == names and len(names) == 4
    assert compact.taken_names({link(1).entra_id}) == {k: v for k, v in names.items() if v != link(1).entra_id}


async def test_the_compact_copy_reads_a_row_missing_columns_with_the_links_defaults(store: Store) -> None:
    """The copy's query names its columns; a row written without some (by hand, or before a
    column existed) reads as Link's defaults, never as a null flag: an unowned link would stop
    gotosync from ever changing that GoTo user."""
    await store.links._table.upsert_entity({"PartitionKey": "user", "RowKey": "bare", "goto_id": "g-bare"})
    compact = await store.links.compact("user")
    bare = compact["bare"]
    assert (bare.goto_id, bare.owned, bare.active, bare.pending) == ("g-bare", True, True, False)
    assert bare.matched_by == "created"
    assert (bare.exported, bare.licenses, bare.seats_pending, bare.applied_at) == ({}, [], None, None)
    assert bare == await store.links.get("bare")
    assert compact.managed_count() == 1 and compact.live_goto_ids() == {"g-bare": "bare"}
