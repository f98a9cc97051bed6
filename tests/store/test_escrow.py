"""Contract of escrow: the retry schedule (a pure function) and the repository that applies it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.model import EscrowEntry
from shared.store import TRANSIENT_CODES, Store, next_retry

FIRST = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("attempts", "now", "expected"),
    [
        pytest.param(1, FIRST, FIRST + 6 * H, id="first failure: +6 h"),
        pytest.param(2, FIRST + 6 * H, FIRST + 12 * H, id="second: +12 h after the first failure"),
        pytest.param(3, FIRST + 12 * H, FIRST + 24 * H, id="third: +24 h"),
        pytest.param(4, FIRST + 24 * H, FIRST + 48 * H, id="then every 24 h (48 h)"),
        pytest.param(5, FIRST + 48 * H, FIRST + 72 * H, id="then every 24 h (72 h)"),
        pytest.param(2, FIRST + 6 * H + 20 * timedelta(minutes=1), FIRST + 12 * H, id="retry ran a cycle late"),
        pytest.param(2, FIRST + 1 * H, FIRST + 6 * H, id="an extra failure does not use up a slot"),
        pytest.param(4, FIRST + 50 * H, FIRST + 72 * H, id="after a stop: next future slot, no burst"),
        pytest.param(40, FIRST + 1 * H, FIRST + 6 * H, id="many transient attempts do not push it out"),
        pytest.param(27, FIRST + 27 * D + 1 * H, FIRST + 28 * D, id="last slot is at 28 days"),
        pytest.param(28, FIRST + 28 * D, None, id="no slot after 28 days: give up"),
        pytest.param(29, FIRST + 28 * D + timedelta(seconds=1), None, id="older than 28 days: give up"),
    ],
)
def test_schedule_for_persistent_errors(attempts: int, now: datetime, expected: datetime | None) -> None:
    assert next_retry(attempts, FIRST, now, "Conflict") == expected


@pytest.mark.parametrize(
    "code",
    sorted(TRANSIENT_CODES),
)
def test_transient_codes_are_retried_at_the_next_cycle(code: str) -> None:
    now = FIRST + 3 * H
    assert next_retry(7, FIRST, now, code) == now


def test_transient_codes_are_the_documented_ones() -> None:
    assert {
        "TooManyRequests",
        "InternalServerError",
        "Timeout",
        "WebExceptionProtocolError",
        "InternalError",
        "ServiceUnavailable",
    } == TRANSIENT_CODES


def test_transient_codes_also_give_up_after_28_days() -> None:
    assert next_retry(900, FIRST, FIRST + 28 * D, "Timeout") == FIRST + 28 * D
    assert next_retry(900, FIRST, FIRST + 28 * D + H, "Timeout") is None


def test_naive_and_non_utc_datetimes_are_read_as_instants() -> None:
    naive_first = FIRST.replace(tzinfo=None)
    assert next_retry(1, naive_first, FIRST, "Conflict") == FIRST + 6 * H


def test_attempts_count_this_failure() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next_retry(0, FIRST, FIRST, "Conflict")


async def test_a_first_failure_enters_escrow_for_plus_6_hours(store: Store) -> None:
    entry = await store.escrow.record_failure("u1", "user", "Conflict", "409 from GoTo: userName taken", FIRST)
    expected = EscrowEntry("u1", "user", 1, FIRST, FIRST + 6 * H, "Conflict", "409 from GoTo: userName taken")
    assert entry == expected
    assert await store.escrow.get("u1", "user") == expected
    assert await store.escrow.all() == [expected]


async def test_later_failures_count_up_and_keep_the_first_failure_time(store: Store) -> None:
    await store.escrow.record_failure("u1", "user", "Conflict", "first", FIRST)
    second = await store.escrow.record_failure("u1", "user", "MandatoryFieldsMissing", "second", FIRST + 6 * H)
    assert (second.attempts, second.first_failure, second.next_retry) == (2, FIRST, FIRST + 12 * H)
    assert (second.last_error_code, second.last_error) == ("MandatoryFieldsMissing", "second")
    assert await store.escrow.get("u1") == second


async def test_a_transient_failure_is_due_at_once(store: Store) -> None:
    entry = await store.escrow.record_failure("u1", "user", "TooManyRequests", "429", FIRST)
    assert entry.next_retry == FIRST
    assert [e.entra_id for e in await store.escrow.due(FIRST)] == ["u1"]


async def test_an_object_failing_past_28_days_leaves_escrow(store: Store) -> None:
    await store.escrow.record_failure("u1", "user", "Conflict", "first", FIRST)
    dropped = await store.escrow.record_failure("u1", "user", "Conflict", "still failing", FIRST + 29 * D)
    assert (dropped.attempts, dropped.next_retry) == (2, None)
    assert await store.escrow.get("u1") is None
    assert await store.escrow.count() == 0


async def test_due_returns_only_entries_whose_time_has_come_oldest_first(store: Store) -> None:
    await store.escrow.record_failure("late", "user", "Conflict", "", FIRST + 2 * H)  # due FIRST+8h
    await store.escrow.record_failure("early", "user", "Conflict", "", FIRST)  # due FIRST+6h
    await store.escrow.record_failure("g1", "group", "Conflict", "", FIRST + 1 * H)  # due FIRST+7h
    await store.escrow.record_failure("later", "user", "Conflict", "", FIRST + 5 * H)  # due FIRST+11h
    assert await store.escrow.due(FIRST + 5 * H) == []
    due = await store.escrow.due(FIRST + 8 * H)
    assert [(e.kind, e.entra_id) for e in due] == [("user", "early"), ("group", "g1"), ("user", "late")]


async def test_clear_forgets_an_object(store: Store) -> None:
    await store.escrow.record_failure("u1", "user", "Conflict", "", FIRST)
    await store.escrow.record_failure("u1", "group", "Conflict", "", FIRST)
    await store.escrow.clear("u1", "user")
    assert [(e.kind, e.entra_id) for e in await store.escrow.all()] == [("group", "u1")]
    await store.escrow.clear("u1", "user")  # already clear: no error


async def test_count_and_purge_all(store: Store) -> None:
    for n in range(130):
        await store.escrow.record_failure(f"u{n}", "user", "Conflict", "", FIRST)
    for n in range(5):
        await store.escrow.record_failure(f"g{n}", "group", "Conflict", "", FIRST)
    assert await store.escrow.count() == 135
    assert await store.escrow.purge_all() == 135
    assert await store.escrow.count() == 0
    assert await store.escrow.purge_all() == 0


async def test_concurrent_failures_of_one_object_are_all_counted(store: Store) -> None:
    await asyncio.gather(
        *(store.escrow.record_failure("u1", "user", "Conflict", f"writer {n}", FIRST) for n in range(5))
    )
    entry = await store.escrow.get("u1")
    assert entry is not None
    assert entry.attempts == 5


async def test_a_huge_error_message_is_truncated_not_refused(store: Store) -> None:
    entry = await store.escrow.record_failure("u1", "user", "Conflict", "x" * 100_000, FIRST)
    stored = await store.escrow.get("u1")
    assert stored == entry
    assert stored is not None
    assert stored.last_error.startswith("x" * 1000)
    assert "[truncated" in stored.last_error
