"""Contract of the assignment snapshot: load, upsert, delete, and replace writing only the diff."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from azure.data.tables.aio import TableClient

from shared.model import DEFAULT_ACCESS_ROLE_ID, Assignment
from shared.store import SnapshotWrite, Store


def user(n: int, roles: frozenset[str] = frozenset({"Standard"})) -> Assignment:
    return Assignment(
        principal_id=f"00000000-0000-0000-0000-{n:012d}",
        principal_type="User",
        display_name=f"User {n}",
        role_ids=frozenset(f"role-{r}" for r in roles),
        role_values=roles,
    )


def group(n: int) -> Assignment:
    return Assignment(
        principal_id=f"11111111-0000-0000-0000-{n:012d}",
        principal_type="Group",
        display_name=f"Group {n}",
        role_ids=frozenset({"role-Pro"}),
        role_values=frozenset({"Pro"}),
    )


def snapshot(*assignments: Assignment) -> dict[str, Assignment]:
    return {a.principal_id: a for a in assignments}


@pytest.fixture
async def raw_table(storage_connection_string: str, store: Store) -> AsyncIterator[TableClient]:
    async with TableClient.from_connection_string(storage_connection_string, store.table_name("assignments")) as t:
        yield t


async def etags(table: TableClient) -> dict[tuple[str, str], str]:
    return {(e["PartitionKey"], e["RowKey"]): e.metadata["etag"] async for e in table.list_entities()}


async def test_an_empty_store_has_an_empty_snapshot(store: Store) -> None:
    assert await store.assignments.load() == {}


async def test_every_field_round_trips(store: Store) -> None:
    default_access = Assignment(
        principal_id="22222222-0000-0000-0000-000000000001",
        principal_type="User",
        display_name="Zoë O'Brien — 🎧",
        role_ids=frozenset({DEFAULT_ACCESS_ROLE_ID}),
        role_values=frozenset({""}),
    )
    multi = Assignment(
        principal_id="22222222-0000-0000-0000-000000000002",
        principal_type="Group",
        display_name="Sales",
        role_ids=frozenset({"a", "b", "c"}),
        role_values=frozenset({"Standard", "Pro", ""}),
    )
    none = Assignment("22222222-0000-0000-0000-000000000003", "User", "", frozenset(), frozenset())
    for assignment in (default_access, multi, none):
        await store.assignments.upsert(assignment)
    assert await store.assignments.load() == snapshot(default_access, multi, none)


async def test_replace_writes_only_the_differences(store: Store, raw_table: TableClient) -> None:
    first = snapshot(*(user(n) for n in range(250)), *(group(n) for n in range(3)))
    assert await store.assignments.replace(first) == SnapshotWrite(upserted=253, deleted=0)
    assert await store.assignments.load() == first
    before = await etags(raw_table)

    second = dict(first)
    for n in (0, 1):  # role changes
        second[user(n).principal_id] = user(n, frozenset({"Pro"}))
    second[user(2).principal_id] = dataclasses.replace(user(2), display_name="Renamed")
    for n in range(10, 15):  # unassigned users
        del second[user(n).principal_id]
    del second[group(0).principal_id]
    for n in range(300, 303):  # newly assigned
        second[user(n).principal_id] = user(n)

    assert await store.assignments.replace(second) == SnapshotWrite(upserted=6, deleted=6)
    assert await store.assignments.load() == second
    after = await etags(raw_table)

    changed = {("User", user(n).principal_id) for n in (0, 1, 2)}
    added = {("User", user(n).principal_id) for n in range(300, 303)}
    removed = {("User", user(n).principal_id) for n in range(10, 15)} | {("Group", group(0).principal_id)}
    assert set(after) == (set(before) - removed) | added
    assert all(after[key] != before[key] for key in changed)
    untouched = set(before) - removed - changed
    assert len(untouched) == 253 - 6 - 3
    assert all(after[key] == before[key] for key in untouched)


async def test_replace_with_the_same_snapshot_writes_nothing(store: Store, raw_table: TableClient) -> None:
    same = snapshot(*(user(n) for n in range(20)))
    await store.assignments.replace(same)
    before = await etags(raw_table)
    assert await store.assignments.replace(dict(same)) == SnapshotWrite(upserted=0, deleted=0)
    assert await etags(raw_table) == before


async def test_replace_with_an_empty_snapshot_deletes_everything(store: Store) -> None:
    await store.assignments.replace(snapshot(*(user(n) for n in range(120)), group(1)))
    assert await store.assignments.replace({}) == SnapshotWrite(upserted=0, deleted=121)
    assert await store.assignments.load() == {}


async def test_replace_moves_a_principal_whose_type_changed(store: Store, raw_table: TableClient) -> None:
    original = user(1)
    await store.assignments.replace(snapshot(original))
    moved = dataclasses.replace(original, principal_type="Group")
    assert await store.assignments.replace(snapshot(moved)) == SnapshotWrite(upserted=1, deleted=1)
    assert await store.assignments.load() == snapshot(moved)
    assert set(await etags(raw_table)) == {("Group", original.principal_id)}


async def test_upsert_overwrites_and_delete_removes(store: Store) -> None:
    await store.assignments.upsert(user(1))
    await store.assignments.upsert(user(1, frozenset({"Pro", "Standard"})))
    assert (await store.assignments.load())[user(1).principal_id].role_values == {"Pro", "Standard"}
    await store.assignments.delete(user(1).principal_id, "User")
    assert await store.assignments.load() == {}
    await store.assignments.delete(user(1).principal_id, "User")  # already gone: no error


@pytest.mark.parametrize("named", [0, 3, 15, 16, 50, 60, 61])
async def test_for_users_returns_the_named_users_own_rows_and_every_group(store: Store, named: int) -> None:
    # One query for up to 15 named users, a query per 15 up to 60, the whole snapshot beyond:
    # the same answer whichever way it is read.
    stored = snapshot(*(user(n) for n in range(0, 200, 2)), *(group(n) for n in range(3)))
    await store.assignments.replace(stored)
    ids = [user(n).principal_id for n in range(named)]  # every other one holds no assignment
    users, groups = await store.assignments.for_users(ids)
    assert users == {user(n).principal_id: user(n) for n in range(0, named, 2)}
    assert groups == snapshot(*(group(n) for n in range(3)))
