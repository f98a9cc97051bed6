"""One GoTo rate budget for every process (shared/goto/ratelimit.py SharedBudget, its slots booked
in Table Storage by shared/store/budget.py). GoTo counts all of an account's calls to one API
together: OS processes and runtimes sending at once, through Azurite and the GoTo emulator with
its 10 req/s limit on, get no 429; without the shared budget the same processes do. A storage
outage or a storage that does not answer leaves each process pacing alone, and GoTo is still
called."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from emulators.goto import GoToEmulator
from shared.goto.auth import StaticTokenProvider
from shared.goto.ratelimit import SharedBudget
from shared.goto.scim import GoToScimClient
from shared.model import Initiator
from shared.runtime import SCIM_BUDGET, shared_budget
from shared.settings import Settings
from shared.store import Store
from tests.fixtures.budget_hosts import HostReads, run_hosts
from tests.fixtures.world import World

RATE = 10.0
PER_PROCESS = 30
UNREACHABLE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "TableEndpoint=http://127.0.0.1:9/devstoreaccount1"
)


def limited_goto(make_goto_emulator: object) -> tuple[GoToEmulator, str]:
    goto: GoToEmulator = make_goto_emulator(rate_limit=RATE)  # type: ignore[operator]
    key = goto.add_user(userName="budget@contoso.com")
    return goto, key


async def test_two_processes_sharing_the_budget_are_never_throttled_and_every_request_is_done(
    make_goto_emulator, storage_connection_string, table_prefix
):
    goto, key = limited_goto(make_goto_emulator)
    reads = HostReads(
        storage_connection_string, table_prefix, goto.scim_url, goto.issue_access_token(), key, PER_PROCESS, "shared"
    )
    outcomes = run_hosts(reads, 2).outcomes
    assert [o["read"] for o in outcomes] == [PER_PROCESS, PER_PROCESS]
    assert goto.throttled("identity") == 0
    assert [o["throttled"] for o in outcomes] == [0, 0]
    # No 429 was retried: GoTo saw exactly the requests asked for, each paced through the ledger.
    assert goto.counters.total("GET", "/identity/v1/Users/") == 2 * PER_PROCESS
    assert [o["fallbacks"] for o in outcomes] == [0, 0]
    assert sum(o["booked"] for o in outcomes) >= 2 * PER_PROCESS


async def test_the_same_two_processes_each_pacing_alone_are_throttled(
    make_goto_emulator, storage_connection_string, table_prefix
):
    """Why the budget is shared: two processes at GoTo's rate each make twice GoTo's rate."""
    goto, key = limited_goto(make_goto_emulator)
    reads = HostReads(
        storage_connection_string, table_prefix, goto.scim_url, goto.issue_access_token(), key, PER_PROCESS, "alone"
    )
    outcomes = run_hosts(reads, 2).outcomes
    assert [o["read"] for o in outcomes] == [PER_PROCESS, PER_PROCESS]  # the 429s were retried
    assert goto.throttled("identity") > 0
    assert sum(o["throttled"] for o in outcomes) == goto.throttled("identity")


async def test_a_cycle_and_targeted_runs_in_separate_runtimes_at_once_are_never_throttled(make_world):
    """The timer's cycle, the queue worker and an on-demand run: three runtimes (each with its own
    clients and store, as on three instances) against one GoTo account limited to 10 req/s."""
    world: World = make_world(users=30, assign=24, goto={"rate_limit": RATE})
    ids = world.assigned_user_ids()
    limited = {"goto_rate_limit": RATE, "goto_max_concurrency": 4}
    async with world.runtime(**limited) as timer, world.runtime(**limited) as worker, world.runtime(**limited) as ops:
        await asyncio.gather(
            timer.engine.run_cycle(initiated_by=Initiator.TIMER),
            worker.engine.sync_users(ids[:12], initiated_by=Initiator.WEBHOOK),
            ops.engine.sync_users(ids[12:], initiated_by=Initiator.ON_DEMAND),
        )
        fallbacks = [rt.scim._t.limiter.budget.stats.fallbacks for rt in (timer, worker, ops)]  # type: ignore[union-attr]
    assert world.goto.throttled() == 0
    assert fallbacks == [0, 0, 0]
    names = [str(u.get("userName", "")).lower() for u in world.goto.users()]
    for uid in ids:  # every assigned user is in GoTo, once
        assert names.count(world.upn(uid).lower()) == 1


def scim_client(goto: GoToEmulator, budget: SharedBudget | None) -> GoToScimClient:
    return GoToScimClient(goto.scim_url, StaticTokenProvider(goto.issue_access_token()), rate_limit=RATE, budget=budget)


async def test_storage_unreachable_falls_back_to_pacing_alone_and_every_request_is_sent(make_goto_emulator):
    goto, key = limited_goto(make_goto_emulator)
    settings = Settings(storage_connection_string=UNREACHABLE, goto_rate_limit=RATE)
    store = Store(connection_string=UNREACHABLE)
    try:
        budget = shared_budget(settings, store, SCIM_BUDGET)
        assert budget is not None
        async with scim_client(goto, budget) as scim:
            found = await asyncio.gather(*(scim.get_user(key) for _ in range(12)))
    finally:
        await store.close()
    assert all(user is not None and user["id"] == key for user in found)
    assert goto.throttled() == 0  # paced alone, at the same rate
    # The ledger was tried once and given up on for retry_after: every request was paced alone.
    assert (budget.stats.outages, budget.stats.fallbacks, budget.stats.booked) == (1, 12, 0)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A Table endpoint that accepts connections and never answers (storage that hangs)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            f"TableEndpoint=http://127.0.0.1:{server.getsockname()[1]}/devstoreaccount1"
        )
    finally:
        server.close()


async def test_storage_that_does_not_answer_in_time_falls_back_after_the_timeout(make_goto_emulator, silent_endpoint):
    goto, key = limited_goto(make_goto_emulator)
    store = Store(connection_string=silent_endpoint)
    try:
        budget = SharedBudget(store.budget, SCIM_BUDGET, RATE, timeout=0.3)
        async with scim_client(goto, budget) as scim:
            assert (await scim.get_user(key) or {})["id"] == key
            assert (await scim.get_user(key) or {})["id"] == key
    finally:
        await store.close()
    assert (budget.stats.outages, budget.stats.fallbacks) == (1, 2)  # the second did not wait again


async def test_the_ledger_is_asked_again_after_retry_after(storage_connection_string, table_prefix):
    now = [1_800_000_000.0]
    down = Store(connection_string=UNREACHABLE)
    try:
        async with Store(connection_string=storage_connection_string, prefix=table_prefix) as up:
            budget = SharedBudget(down.budget, SCIM_BUDGET, RATE, retry_after=30, clock=lambda: now[0])
            assert not await budget.acquire()
            assert not budget.available
            now[0] += 31
            budget.ledger = up.budget  # storage is back
            assert budget.available
            assert await budget.acquire()
    finally:
        await down.close()
    assert (budget.stats.outages, budget.stats.fallbacks, budget.stats.bookings) == (1, 1, 1)


async def test_a_429_pause_is_booked_for_every_process(make_goto_emulator, storage_connection_string, table_prefix):
    """GoTo throttles the whole API: the pause one process takes after a 429 moves the shared
    schedule past it, so the other processes hold off too."""
    goto, key = limited_goto(make_goto_emulator)
    goto.set_switch("rate_limit", 0)
    goto.faults.inject(429, path="^/identity/v1/Users/", count=1, retry_after=2)
    async with Store(connection_string=storage_connection_string, prefix=table_prefix) as store:
        budget = SharedBudget(store.budget, SCIM_BUDGET, RATE)
        async with scim_client(goto, budget) as scim:
            started = budget._clock()
            assert (await scim.get_user(key) or {})["id"] == key
        booked_until = await store.budget.peek(SCIM_BUDGET)
    assert scim.stats.throttled == 1
    assert booked_until is not None and booked_until >= started + 2


async def test_two_budget_clients_on_one_table_never_grant_more_than_the_limit_in_any_window(
    storage_connection_string, table_prefix
):
    """Oracle from the recorded grants, not from timing: the clock stands still and each
    sender's wait is recorded, so a grant's time is the slot it was given. Two clients (two
    stores, as on two hosts), four senders each, batches of four: any one-second window holds
    at most `RATE` grants, and every request got one."""
    t0 = 1_800_000_000.0
    grants: list[float] = []

    async def record(seconds: float) -> None:
        grants.append(t0 + seconds)
        await asyncio.sleep(0)  # let the other senders run; the clock does not move

    async with (
        Store(connection_string=storage_connection_string, prefix=table_prefix) as a,
        Store(connection_string=storage_connection_string, prefix=table_prefix) as b,
    ):
        budgets = [SharedBudget(s.budget, SCIM_BUDGET, RATE, batch=4, clock=lambda: t0, sleep=record) for s in (a, b)]

        async def sender(budget: SharedBudget) -> None:
            for _ in range(10):
                assert await budget.acquire()

        await asyncio.gather(*(sender(budget) for budget in budgets for _ in range(4)))
    waited = len(grants)
    grants.extend([t0] * (80 - waited))  # the grants that did not wait were at t0
    grants.sort()
    assert len(grants) == 80
    for i, start in enumerate(grants):
        in_window = sum(1 for g in grants[i:] if g < start + 1.0 - 1e-6)
        assert in_window <= RATE, f"{in_window} grants in the second from {start - t0:.3f}"
    assert sum(budget.stats.fallbacks for budget in budgets) == 0
    assert sum(budget.stats.bookings for budget in budgets) < 80  # slots were booked in batches
