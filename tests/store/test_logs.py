"""Contract of the provisioning log: exact round trips, batched writes across days, filtered
newest-first queries, and purging by whole day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.model import (
    Action,
    Initiator,
    ModifiedProperty,
    ProvisioningLogEntry,
    ProvisioningStep,
    Status,
    StepType,
)
from shared.store import Store

DAY1 = datetime(2025, 3, 1, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, tzinfo=UTC)
ACTIONS = [Action.CREATE, Action.UPDATE, Action.DISABLE, Action.DELETE, Action.OTHER]
STATUSES = [Status.SUCCESS, Status.SUCCESS, Status.FAILURE, Status.SKIPPED, Status.WARNING]


def full_entry() -> ProvisioningLogEntry:
    return ProvisioningLogEntry(
        cycle_id="cycle-7",
        change_id="0f8fad5b-d9cb-469f-a165-70867728950e",
        action=Action.STAGED_DELETE,
        status=Status.WARNING,
        source_id="6f1c1c1e-0000-4000-8000-000000000001",
        source_name="Zoë O'Brien 🎧",
        target_id="8455309237548102657",
        target_name="zoe@contoso.com",
        identity_type="Group",
        initiated_by=Initiator.ON_DEMAND,
        reason="Held by the deletion threshold (500)",
        error_code="EntrySynchronizationSkipped",
        modified=[
            ModifiedProperty("displayName", "Zoe", "Zoë"),
            ModifiedProperty("active", True, False),
            ModifiedProperty("emails", None, [{"value": "zoe@contoso.com", "primary": True}]),
            ModifiedProperty("seats", 1, 2),
            ModifiedProperty("department"),
        ],
        steps=[
            ProvisioningStep("EntryImport", StepType.IMPORT, Status.SUCCESS, "Retrieved user", {"upn": "zoe@x"}),
            ProvisioningStep("EntryScoping", StepType.SCOPING, Status.SUCCESS, "In scope", {}),
            ProvisioningStep("EntryMatching", StepType.MATCHING, Status.SKIPPED, "Matched", {"by": ["userName"]}),
            ProvisioningStep(
                "EntryExportUpdate", StepType.EXPORT, Status.FAILURE, "409", {"http": 409, "retry": None, "ok": False}
            ),
            ProvisioningStep("Decide", StepType.PROCESSING, Status.WARNING, "", {"nested": {"a": [1, 2.5, "x"]}}),
        ],
        duration_ms=2**33,
        at=datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    )


def entry(n: int, at: datetime) -> ProvisioningLogEntry:
    return ProvisioningLogEntry(
        cycle_id="cycle-a" if n % 2 == 0 else "cycle-b",
        change_id=f"change-{n:04d}",
        action=ACTIONS[n % len(ACTIONS)],
        status=STATUSES[n % len(STATUSES)],
        source_id=f"src-{n:04d}",
        source_name="Alice Anders" if n % 10 == 0 else f"User {n}",
        target_name="bob.builder@contoso.com" if n % 25 == 3 else f"user{n}@contoso.com",
        modified=[ModifiedProperty("displayName", None, f"User {n}")],
        steps=[ProvisioningStep("EntryImport", StepType.IMPORT, Status.SUCCESS, "ok", {"n": n})],
        duration_ms=n,
        at=at,
    )


@pytest.fixture
async def two_days(store: Store) -> list[ProvisioningLogEntry]:
    """150 entries on day 1 (more than one transaction for that day) and 100 on day 2."""
    entries = [entry(n, DAY1 + timedelta(hours=1, minutes=n, microseconds=n)) for n in range(150)]
    entries += [entry(n, DAY2 + timedelta(hours=2, seconds=n)) for n in range(150, 250)]
    await store.logs.write(entries)
    return sorted(entries, key=lambda e: e.at, reverse=True)


async def test_every_field_round_trips_exactly(store: Store) -> None:
    original = full_entry()
    await store.logs.write([original])
    [loaded] = await store.logs.query()
    assert loaded == original
    assert loaded.at.tzinfo == UTC
    assert isinstance(loaded.action, Action)
    assert isinstance(loaded.initiated_by, Initiator)
    assert isinstance(loaded.steps[0].step_type, StepType)
    assert isinstance(loaded.steps[0].status, Status)


async def test_an_entry_is_filed_under_its_utc_day(store: Store) -> None:
    original = full_entry()  # 23:59 at UTC-5 is the next day in UTC
    await store.logs.write([original])
    assert await store.logs.query(since=datetime(2025, 3, 2, tzinfo=UTC), until=datetime(2025, 3, 3, tzinfo=UTC))
    assert await store.logs.query(until=datetime(2025, 3, 2, tzinfo=UTC)) == []


async def test_query_returns_everything_newest_first(store: Store, two_days: list[ProvisioningLogEntry]) -> None:
    assert await store.logs.query() == two_days


async def test_query_by_user_matches_names_and_ids_case_insensitively(
    store: Store, two_days: list[ProvisioningLogEntry]
) -> None:
    alice = await store.logs.query(user="alice ANDERS")
    assert alice == [e for e in two_days if e.source_name == "Alice Anders"]
    assert len(alice) == 25
    assert await store.logs.query(user="BOB.builder") == [e for e in two_days if e.target_name.startswith("bob.")]
    assert await store.logs.query(user="SRC-0042") == [e for e in two_days if e.source_id == "src-0042"]
    assert await store.logs.query(user="nobody-at-all") == []


async def test_query_by_action_status_and_cycle(store: Store, two_days: list[ProvisioningLogEntry]) -> None:
    assert await store.logs.query(action=Action.DISABLE) == [e for e in two_days if e.action == Action.DISABLE]
    assert await store.logs.query(action="Delete") == [e for e in two_days if e.action == Action.DELETE]
    assert await store.logs.query(status=Status.FAILURE) == [e for e in two_days if e.status == Status.FAILURE]
    assert await store.logs.query(cycle_id="cycle-b") == [e for e in two_days if e.cycle_id == "cycle-b"]
    alice_creates = await store.logs.query(
        action=Action.CREATE, status=Status.SUCCESS, cycle_id="cycle-a", user="alice"
    )
    assert alice_creates == [e for e in two_days if e.source_name == "Alice Anders"]
    assert len(alice_creates) == 25
    assert await store.logs.query(action=Action.CREATE, status=Status.FAILURE, user="alice") == []


async def test_query_by_time_range_is_inclusive(store: Store, two_days: list[ProvisioningLogEntry]) -> None:
    since = two_days[60].at
    until = two_days[20].at
    assert await store.logs.query(since=since) == two_days[:61]
    assert await store.logs.query(until=until) == two_days[20:]
    assert await store.logs.query(since=since, until=until) == two_days[20:61]
    # a range inside day 1 only
    day1 = [e for e in two_days if e.at < DAY2]
    assert await store.logs.query(since=DAY1, until=DAY2 - timedelta(microseconds=1)) == day1
    assert await store.logs.query(since=DAY2 + timedelta(days=5)) == []


async def test_limit_returns_the_newest_entries(store: Store, two_days: list[ProvisioningLogEntry]) -> None:
    assert await store.logs.query(limit=10) == two_days[:10]
    assert await store.logs.query(limit=120) == two_days[:120]  # spans both days
    assert await store.logs.query(user="alice", limit=3) == [e for e in two_days if "Alice" in e.source_name][:3]
    assert await store.logs.query(limit=0) == []


async def test_entries_at_the_same_instant_are_kept_apart_and_rewrites_do_not_duplicate(store: Store) -> None:
    at = DAY1 + timedelta(hours=5)
    same_time = [entry(1, at), entry(2, at), entry(3, at)]
    await store.logs.write(same_time)
    await store.logs.write(same_time)  # a resumed cycle logs the same changes again
    found = await store.logs.query()
    assert sorted(e.change_id for e in found) == ["change-0001", "change-0002", "change-0003"]


async def test_purge_drops_whole_days_before_the_cutoff_only(
    store: Store, two_days: list[ProvisioningLogEntry]
) -> None:
    deleted = await store.logs.purge(older_than=DAY2 + timedelta(hours=12))
    assert deleted == 150
    assert await store.logs.query() == [e for e in two_days if e.at >= DAY2]
    assert await store.logs.purge(older_than=DAY2 + timedelta(hours=23)) == 0  # day 2 is kept whole
    assert await store.logs.purge(older_than=DAY2 + timedelta(days=1)) == 100
    assert await store.logs.query() == []


async def test_an_empty_log_answers_every_query_with_nothing(store: Store) -> None:
    assert await store.logs.query() == []
    assert await store.logs.query(user="x", since=DAY1) == []
    assert await store.logs.purge(DAY2) == 0
    await store.logs.write([])


async def test_oversized_details_are_truncated_with_a_marker_not_refused(store: Store) -> None:
    big = entry(1, DAY1)
    big.reason = "r" * 50_000
    big.modified = [ModifiedProperty("thumbnailPhoto", None, "p" * 100_000)] + [
        ModifiedProperty(f"ext{i}", "o" * 600, "n" * 600) for i in range(400)
    ]
    big.steps = [ProvisioningStep(f"Step{i}", StepType.PROCESSING, Status.SUCCESS, "d" * 500, {}) for i in range(900)]
    await store.logs.write([big, entry(2, DAY1)])  # the sane neighbour in the same transaction lands too
    loaded = {e.change_id: e for e in await store.logs.query()}
    assert loaded["change-0002"] == entry(2, DAY1)
    stored = loaded["change-0001"]
    assert stored.reason.startswith("r" * 1000)
    assert "[truncated" in stored.reason
    assert stored.modified[0].name == "thumbnailPhoto"
    assert "[truncated" in stored.modified[0].new
    kept_modified = len(stored.modified) - 1
    assert stored.modified[-1] == ModifiedProperty(
        "_truncated", None, f"{401 - kept_modified} more modified properties not stored (size limit)"
    )
    assert [m.name for m in stored.modified[1:kept_modified]] == [f"ext{i}" for i in range(kept_modified - 1)]
    kept_steps = len(stored.steps) - 1
    assert 0 < kept_steps < 900
    assert stored.steps[-1].name == "Truncated"
    assert stored.steps[-1].description == f"{900 - kept_steps} more steps not stored (size limit)"
    assert (stored.action, stored.status, stored.at) == (big.action, big.status, big.at)
