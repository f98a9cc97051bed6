"""How the convergence suite runs gotosync: every entrance the product has (incremental and full
cycles, the webhook queue worker, provision on demand, the assignment watch), a cycle run as a
real process that is killed with SIGKILL, a cycle whose lease another owner takes, and the clean
cycles at the end that must converge.

Everything goes through gotosync's own entry points; nothing here decides what gotosync should
do (that is tests/convergence/model.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from emulators.goto import GoToEmulator
from shared.engine.cycle import LEASE_NAME, CycleNotRun
from shared.model import Initiator, utcnow
from shared.ops import NotFound
from shared.ops.control import allow_deletes
from shared.ops.on_demand import provision_on_demand
from shared.realtime.keeper import SubscriptionKeeper
from shared.realtime.watch import watch_assignments
from shared.realtime.worker import handle_message
from shared.runtime import Runtime

WRITES = "POST|PATCH|PUT|DELETE"
SCIM_CREATE = "^/identity/v1/Users$"
THRESHOLD_QUARANTINE = "DeletionThresholdExceeded"
GOTOSYNC = [str(Path(sys.executable).with_name("gotosync"))]  # the console script of this virtualenv
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """What one run did: `error` is "" when it ended normally; `not_run` says why it did not start."""

    name: str
    faults: list[str] = field(default_factory=list)
    error: str = ""
    not_run: str = ""
    note: str = ""

    def line(self) -> str:
        text = self.name + (f" [faults: {', '.join(self.faults)}]" if self.faults else "")
        if self.error:
            text += f" -> FAILED: {self.error}"
        elif self.not_run:
            text += f" -> not run: {self.not_run}"
        return text + (f" ({self.note})" if self.note else "")


async def attempt(outcome: Outcome, run: Awaitable[Any]) -> Outcome:
    """Runs one entrance; a failure is recorded, never raised (the caller judges it)."""
    try:
        await run
    except CycleNotRun as exc:
        outcome.not_run = str(exc)
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"[:400]
    return outcome


# ---------------------------------------------------------------- the entrances


async def incremental(rt: Runtime) -> None:
    await rt.engine.run_cycle(initiated_by=Initiator.TIMER)


async def full(rt: Runtime) -> None:
    await rt.engine.run_cycle(full=True, initiated_by=Initiator.CLI)


def notification_message(user_ids: list[str], group_ids: list[str]) -> dict[str, Any]:
    """A queue message as the webhook intake writes it (shared/realtime/intake.py: only the
    fields it validated, object ids lower-cased)."""
    subscription = str(uuid.uuid4())
    items = [
        {"kind": "user", "id": u.lower(), "changeType": "updated", "subscriptionId": subscription} for u in user_ids
    ]
    items += [
        {"kind": "group", "id": g.lower(), "changeType": "updated", "subscriptionId": subscription} for g in group_ids
    ]
    return {"v": 1, "receivedAt": utcnow().isoformat(), "items": items}


def keeper(rt: Runtime) -> SubscriptionKeeper:
    return SubscriptionKeeper(rt.reader.client, rt.reader, rt.store, rt.settings)


async def webhook(rt: Runtime, user_ids: list[str], group_ids: list[str]) -> None:
    """The queue worker handling one notification batch (the path graph_webhook takes)."""
    await handle_message(rt, notification_message(user_ids, group_ids), keeper(rt))


async def on_demand(rt: Runtime, user_id: str) -> str:
    """Provision on demand by object id; a user Entra no longer has is an answer, not a failure."""
    try:
        await provision_on_demand(rt, user=user_id)
    except NotFound as exc:
        return f"not found: {exc}"
    return ""


async def watch(rt: Runtime) -> int:
    """The assignment watch, then the worker for every message it queued."""
    queued: list[dict[str, Any]] = []

    async def enqueue(body: dict[str, Any]) -> None:
        queued.append(body)

    await watch_assignments(rt, enqueue)
    for body in queued:
        await handle_message(rt, body, keeper(rt))
    return len(queued)


# ---------------------------------------------------------------- process faults


def hang_after(goto: GoToEmulator, writes: int, *, creates_only: bool = False) -> None:
    """Every GoTo write (or, with `creates_only`, user create) after the first `writes` hangs,
    then has its connection dropped unserved. Install before any other fault: a rule that fires
    first on a request would keep these two from counting it alike."""
    method, path = ("POST", SCIM_CREATE) if creates_only else (WRITES, "")
    goto.faults.inject("latency", path=path, method=method, after=writes, latency_ms=5_000)
    goto.faults.inject("reset", path=path, method=method, after=writes)


def killed_cycle(
    env: dict[str, str],
    goto: GoToEmulator,
    writes: int,
    *,
    full: bool,
    creates_only: bool = False,
    timeout: float = 120,
) -> str:
    """`gotosync sync` as a real process, killed with SIGKILL while its GoTo write (or, with
    `creates_only`, its user create) number `writes` + 1 is in flight, held there by
    `hang_after` (installed by the caller), so exactly `writes` of them land; the process runs
    one request at a time, which makes the point of the kill reproducible. Returns what
    happened, also when the process ended by itself before."""

    def seen() -> int:
        return goto.counters.total("POST", path_regex=SCIM_CREATE) if creates_only else goto.counters.writes()

    start = seen()
    args = [*GOTOSYNC, "sync", "--json", *(["--full"] if full else [])]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + timeout
            while seen() <= start + writes and proc.returncode is None and time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.02)  # poll the process and the emulator's counters
        finally:
            goto.faults.clear()
            killed = proc.returncode is None
            if killed:
                proc.kill()
                proc.wait()
        if killed:
            return f"killed with {writes} GoTo {'creates' if creates_only else 'writes'} landed"
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace").strip().splitlines()[-3:]
    if proc.returncode == 2:
        raise AssertionError(f"gotosync sync refused its configuration: {' / '.join(tail)}")
    return f"ended by itself with exit code {proc.returncode}" + (f": {' / '.join(tail)}" if tail else "")


async def cycle_losing_lease(rt: Runtime, goto: GoToEmulator, writes: int) -> str:
    """An incremental cycle whose lease another owner takes (as after the lease expired during a
    stall) while its GoTo write number `writes` + 1 is held back; the other owner releases it
    once the cycle has ended. Raises what the cycle raised."""
    goto.faults.inject("latency", method=WRITES, after=writes, count=1, latency_ms=300)
    start = goto.counters.writes()
    task = asyncio.create_task(rt.engine.run_cycle(initiated_by=Initiator.TIMER))
    while not task.done() and goto.counters.writes() <= start + writes:
        await asyncio.wait({task}, timeout=0.01)  # poll the emulator's counters
    if task.done():
        await task
        return "the cycle ended before the lease could be taken"
    later = utcnow() + timedelta(days=1)  # the holder's lease looks expired to the other owner
    stolen = await rt.store.lease.acquire(LEASE_NAME, f"intruder-{uuid.uuid4()}", 60, now=later)
    try:
        await task
    finally:
        if stolen is not None:
            await rt.store.lease.release(stolen)
    return "lease taken by another owner mid-cycle" if stolen else "the lease could not be taken"


# ---------------------------------------------------------------- the clean end


async def until_run(rt: Runtime, run: Callable[[], Awaitable[Any]], wait_seconds: float) -> None:
    """Runs `run`; while the cycle lease is held (by a killed process, say), polls the lease
    row and tries again, for at most `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            await run()
            return
        except CycleNotRun as exc:
            lease = await rt.store.lease.get(LEASE_NAME)
            if time.monotonic() >= deadline:
                held = f"held by {lease.owner} until {lease.expires.isoformat()}" if lease else "free"
                raise AssertionError(
                    f"no cycle could run for {wait_seconds:.0f} s after the faults stopped: {exc} (the cycle "
                    f"lease is {held}). Issue 10, item 7: a lease held by a process that is gone must be "
                    "taken over within a minute, not after the full lease time."
                ) from exc
            await asyncio.sleep(0.25)  # poll the lease row


async def converge(rt: Runtime, cycles: int, wait_seconds: float, log: list[Outcome]) -> None:
    """`cycles` clean incremental cycles in a row. A deletion-threshold quarantine is answered
    as an admin would (allow deletes, run again); a cycle that fails is an error."""
    clean = allowed = 0
    while clean < cycles:
        outcome = Outcome("clean incremental cycle")
        try:
            await until_run(rt, lambda: incremental(rt), wait_seconds)
        except AssertionError:
            raise
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"[:400]
            log.append(outcome)
            raise AssertionError(f"a cycle failed with every fault cleared: {outcome.error}") from exc
        job = await rt.store.job.get()
        if job.quarantine_reason.startswith(THRESHOLD_QUARANTINE) and allowed < 3:
            outcome.note = f"quarantined ({job.quarantine_reason}); the admin allows deletes"
            await until_run(rt, lambda: allow_deletes(rt.store), wait_seconds)
            allowed += 1
            clean = 0
        else:
            clean += 1
        log.append(outcome)


async def describe_store(rt: Runtime) -> str:
    """Job state and escrow, for a failure message."""
    job = await rt.store.job.get()
    escrow = await rt.store.escrow.all()
    lines = [f"job: quarantine={job.quarantine_reason!r} staged={job.staged_deletes}"]
    lines += [f"escrow: {e.entra_id} {e.last_error_code} attempts={e.attempts} next={e.next_retry}" for e in escrow]
    return "\n".join(lines)
