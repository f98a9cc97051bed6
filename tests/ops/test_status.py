"""Status: on/off, quarantine, the current or last cycle with its progress, the next run from
SYNC_SCHEDULE's NCRONTAB expression, escrow size; and --watch following a running cycle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.engine.cycle import LEASE_NAME
from shared.model import CycleKind, CycleProgress, Initiator, JobState, utcnow
from shared.ops.status import load_status, next_run, parse_ncrontab, watch
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http

SUNDAY = datetime(2026, 3, 1, 10, 41, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 */40 * * * *", datetime(2026, 3, 1, 11, 0, tzinfo=UTC)),
        ("0 30 3 * * *", datetime(2026, 3, 2, 3, 30, tzinfo=UTC)),
        ("0 0 9 * * Mon-Fri", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        ("0 0 9 * * 0", datetime(2026, 3, 8, 9, 0, tzinfo=UTC)),
        ("0 0 9 * * 7", datetime(2026, 3, 8, 9, 0, tzinfo=UTC)),
        ("*/10 * * * * *", datetime(2026, 3, 1, 10, 41, 10, tzinfo=UTC)),
        ("0 5/15 * * * *", datetime(2026, 3, 1, 10, 50, tzinfo=UTC)),
        ("0 0 0 1 Jan,Jul *", datetime(2026, 7, 1, tzinfo=UTC)),
        ("0 0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),
        ("0 0 12 13 * Fri", datetime(2026, 3, 13, 12, tzinfo=UTC)),  # day AND weekday, as NCrontab
        ("0 0 0 30 2 *", None),
        ("00:05:00", None),  # a TimeSpan schedule: the next time depends on the last run
    ],
)
def test_next_run_from_ncrontab(schedule: str, expected: datetime | None) -> None:
    assert next_run(schedule, SUNDAY) == expected


@pytest.mark.parametrize(
    ("schedule", "named"),
    [("0 */40 * * *", "6 fields"), ("0 61 * * * *", "minute"), ("0 0 0 * Foo *", "month"), ("0 */0 * * * *", "step")],
)
def test_a_wrong_schedule_names_its_field(schedule: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_ncrontab(schedule)


def test_status_after_a_cycle(ops_world: Callable[..., World], cli: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    ops_world(users=6, assign=4)
    monkeypatch.setenv("SYNC_SCHEDULE", "0 */40 * * * *")
    cli("sync", "--json")
    code, doc = cli("status", "--json")
    assert code == 0
    assert doc["provisioning"] == "on" and doc["quarantine"] is None and doc["currentCycle"] is None
    last = doc["lastCycle"]
    assert last["kind"] == "Initial" and last["progress"] == 1.0 and last["counts"] == {"Create/Success": 4}
    assert last["started"] and last["ended"] and doc["lastSuccessfulCycle"] == last["ended"]
    upcoming = datetime.fromisoformat(doc["nextRun"])
    assert upcoming > utcnow() and upcoming.minute in (0, 40) and upcoming.second == 0
    assert doc["schedule"] == "0 */40 * * * *" and doc["escrowed"] == 0 and doc["watermark"] is True
    code, text = cli("status")
    assert code == 0 and "provisioning" in text and "Initial" in text


async def simulate_running_cycle(world: World, processed: int, total: int) -> Any:
    """The job state and lease a running cycle leaves in storage (real tables, no engine)."""
    progress = CycleProgress(
        cycle_id="c-running", kind=CycleKind.INCREMENTAL, initiated_by=Initiator.TIMER, started=utcnow(),
        total=total, processed=processed, counts={"Update/Success": processed},
    )  # fmt: skip
    async with world.store() as store:
        lease = await store.lease.acquire(LEASE_NAME, "c-running", 600)
        await store.job.update(lambda j: setattr(j, "current", progress))
    return lease


async def test_watch_follows_a_running_cycle_until_it_ends(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    lease = await simulate_running_cycle(world, processed=4, total=10)
    frames: list[dict[str, Any]] = []
    first_frame = asyncio.Event()

    def on_frame(doc: dict[str, Any]) -> None:
        frames.append(doc)
        first_frame.set()

    async with world.store() as store:
        watching = asyncio.create_task(watch(store, world.settings, on_frame, interval=0.01))
        await first_frame.wait()
        running = frames[0]["currentCycle"]
        assert running["state"] == "running" and running["progress"] == 0.4 and running["processed"] == 4

        def finish(job: JobState) -> None:
            assert job.current is not None
            job.current.processed, job.current.ended = 10, utcnow()
            job.last, job.current = job.current, None

        await store.job.update(finish)
        await store.lease.release(lease)
        final = await watching
    assert final["currentCycle"] is None and final["lastCycle"]["progress"] == 1.0


async def test_an_interrupted_cycle_is_shown_as_such(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    lease = await simulate_running_cycle(world, processed=3, total=12)
    async with world.store() as store:
        await store.lease.release(lease)  # the function was killed: its lease is gone
        doc = await load_status(store, world.settings)
        assert doc["currentCycle"]["state"] == "interrupted" and doc["currentCycle"]["progress"] == 0.25
        final = await watch(store, world.settings, lambda _: None, interval=0.01)
        assert final["currentCycle"]["state"] == "interrupted"


def test_cli_watch_returns_at_once_when_no_cycle_runs(ops_world: Callable[..., World], cli: CliRun) -> None:
    ops_world()
    code, doc = cli("status", "--watch", "--json")
    assert code == 0 and doc["currentCycle"] is None
    code, text = cli("status", "--watch")
    assert code == 0 and "no cycle is running" in text


async def test_http_status(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    await simulate_running_cycle(world, processed=0, total=0)
    status, doc = await http("ops_status")
    assert status == 200 and doc["provisioning"] == "on"
    assert doc["currentCycle"]["state"] == "running" and doc["currentCycle"]["progress"] is None  # still reading
