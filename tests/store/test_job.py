"""Contract of the job repository: one state row, every write conditional on its ETag."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.data.tables import TableClient as SyncTableClient
from azure.data.tables import UpdateMode

from shared.model import CycleKind, CycleProgress, Initiator, JobState
from shared.store import ConcurrencyError, Store

T0 = datetime(2025, 3, 1, 8, 15, 30, 123456, tzinfo=UTC)


def full_state() -> JobState:
    return JobState(
        enabled=False,
        quarantine_reason="EncounteredEscrowProportionThreshold",
        quarantined_since=T0,
        current=CycleProgress(
            cycle_id="cycle-2",
            kind=CycleKind.INCREMENTAL,
            initiated_by=Initiator.WEBHOOK,
            started=T0 + timedelta(minutes=40),
            ended=None,
            total=10_000,
            processed=4_321,
            counts={"Create/Success": 4000, "Update/Failure": 321},
            dry_run=True,
        ),
        last=CycleProgress(
            cycle_id="cycle-1",
            kind=CycleKind.INITIAL,
            initiated_by=Initiator.CLI,
            started=T0 - timedelta(hours=2),
            ended=datetime(2025, 3, 1, 9, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
            total=3,
            processed=3,
            counts={"Create/Success": 3},
            dry_run=False,
        ),
        last_success=T0 - timedelta(minutes=5),
        users_delta_link="https://graph.microsoft.com/v1.0/users/delta?$deltatoken=" + "x" * 900,
        groups_delta_link="https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=abc",
        config_hash="sha256:0123456789abcdef",
        staged_deletes=2**40,
        allow_deletes_once=True,
    )


@pytest.fixture
def raw_job_table(storage_connection_string: str, store: Store) -> Iterator[SyncTableClient]:
    """The job table through the synchronous SDK: a second writer that can act inside a mutator."""
    with SyncTableClient.from_connection_string(storage_connection_string, store.table_name("job")) as table:
        yield table


def other_writer_sets(table: SyncTableClient, **properties: object) -> None:
    table.upsert_entity({"PartitionKey": "job", "RowKey": "state", **properties}, mode=UpdateMode.MERGE)


async def test_get_without_a_saved_state_returns_defaults_without_etag(store: Store) -> None:
    state = await store.job.get()
    assert state == JobState()
    assert state.etag is None


async def test_every_field_round_trips(store: Store) -> None:
    state = full_state()
    saved = await store.job.save(state)
    loaded = await store.job.get()
    assert loaded.etag == saved.etag is not None
    assert dataclasses.replace(loaded, etag=None) == state
    assert loaded.current is not None
    assert loaded.current.counts == {"Create/Success": 4000, "Update/Failure": 321}
    assert loaded.last is not None
    assert loaded.last.ended is not None
    assert loaded.last.ended.tzinfo == UTC


async def test_defaults_round_trip_with_no_cycles(store: Store) -> None:
    await store.job.save(JobState())
    assert dataclasses.replace(await store.job.get(), etag=None) == JobState()


async def test_save_returns_a_copy_with_the_new_etag_and_leaves_the_argument_alone(store: Store) -> None:
    state = JobState(config_hash="a")
    first = await store.job.save(state)
    assert state.etag is None
    first.config_hash = "b"
    second = await store.job.save(first)
    assert second.etag not in (None, first.etag)
    assert (await store.job.get()).config_hash == "b"


async def test_save_with_a_stale_etag_raises_and_keeps_the_newer_write(store: Store) -> None:
    base = await store.job.save(JobState(config_hash="base"))
    winner = dataclasses.replace(base, config_hash="winner")
    loser = dataclasses.replace(base, config_hash="loser")
    await store.job.save(winner)
    with pytest.raises(ConcurrencyError):
        await store.job.save(loser)
    assert (await store.job.get()).config_hash == "winner"


async def test_first_save_conflicts_when_another_writer_created_the_row(store: Store) -> None:
    await store.job.save(JobState(config_hash="first"))
    with pytest.raises(ConcurrencyError):
        await store.job.save(JobState(config_hash="second"))  # etag None: insert only


async def test_update_rereads_and_reapplies_after_a_conflicting_write(
    store: Store, raw_job_table: SyncTableClient
) -> None:
    await store.job.save(JobState(staged_deletes=1))
    calls = 0

    def bump(state: JobState) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # another instance writes between our read and our save
            other_writer_sets(raw_job_table, config_hash="from-the-other-writer")
        state.staged_deletes += 1

    result = await store.job.update(bump)
    assert calls == 2
    assert result.staged_deletes == 2
    stored = await store.job.get()
    assert (stored.staged_deletes, stored.config_hash) == (2, "from-the-other-writer")
    assert stored.etag == result.etag


async def test_update_gives_up_after_its_retries(store: Store, raw_job_table: SyncTableClient) -> None:
    await store.job.save(JobState())
    calls = 0

    def always_interrupted(state: JobState) -> None:
        nonlocal calls
        calls += 1
        other_writer_sets(raw_job_table, config_hash=f"write-{calls}")
        state.enabled = False

    with pytest.raises(ConcurrencyError):
        await store.job.update(always_interrupted, retries=2)
    assert calls == 3
    assert (await store.job.get()).enabled is True


async def test_update_creates_the_row_when_none_exists(store: Store) -> None:
    result = await store.job.update(lambda s: setattr(s, "users_delta_link", "https://delta"))
    assert result.etag is not None
    assert (await store.job.get()).users_delta_link == "https://delta"


async def test_concurrent_updates_all_land(store: Store) -> None:
    def bump(state: JobState) -> None:
        state.staged_deletes += 1

    await asyncio.gather(*(store.job.update(bump) for _ in range(5)))
    assert (await store.job.get()).staged_deletes == 5
