"""`make demo`: gotosync's whole job on the local world.

Starts Azurite and both emulators with a demo tenant (about 500 users, 20 groups), runs the
initial cycle with progress, makes scripted directory changes (rename, department move,
unassign, block, soft delete, hard delete, add to an assigned group), runs an incremental
cycle, prints each cycle's summary and the latest provisioning-log entries, stops everything
it started and exits 0.

    python -m emulators.demo                 # the scripted demo
    python -m emulators.demo --world         # the local world and the console, until Ctrl-C
    python -m emulators.demo --world --once  # start the world, check it and the console, stop

With --world the Function app is served too (the local Functions host stand-in, on port 7071
unless taken): the provisioning console's URL is printed, the timers fire on their schedules,
Graph notifications reach the webhook, and the initial cycle starts at once (--no-cycle: not),
so the console has something to show.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emulators.functions_host import FunctionsHost, apply_env
from emulators.world import LocalWorld, WorldOptions
from shared.engine.cycle import CycleResult
from shared.model import CycleProgress, Initiator
from shared.realtime.services import close_services
from shared.runtime import open_runtime
from shared.settings import Settings
from shared.store import Store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulators.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--world", action="store_true", help="only bring up the local world and print where it listens")
    p.add_argument("--once", action="store_true", help="with --world: check the world, then stop (no waiting)")
    p.add_argument("--port", type=int, default=7071, help="with --world: port of the Function app (default 7071)")
    p.add_argument("--no-cycle", action="store_true", help="with --world: do not start the initial cycle at once")
    p.add_argument("--users", type=int, default=500, help="users in the demo tenant (default 500)")
    p.add_argument("--groups", type=int, default=20, help="groups in the demo tenant (default 20)")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated tenant (default 7)")
    p.add_argument(
        "--rate-limit", type=float, default=10.0, help="GoTo emulator requests/s per API (default 10; 0 = off)"
    )
    return p.parse_args(argv)


def show_world(console: Console, world: LocalWorld) -> None:
    table = Table(title="local world", show_header=False)
    for name, value in world.describe():
        table.add_row(name, value)
    console.print(table)


async def start_host(port: int) -> FunctionsHost:
    """The Function app on 127.0.0.1:`port`, or on a free port when that one is taken."""
    import function_app

    host = FunctionsHost(function_app.app, port=port)
    try:
        await host.start(queues=False)
    except OSError:
        host = FunctionsHost(function_app.app, port=0)
        await host.start(queues=False)
    return host


async def console_answers(host: FunctionsHost) -> bool:
    """Signs in with the function key as a browser would and checks that the page comes back."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, as browsers keep them
    async with aiohttp.ClientSession(cookie_jar=jar) as session, session.get(host.console_url()) as response:
        return response.status == 200 and "provisioning console" in await response.text()


async def serve_world(console: Console, world: LocalWorld, args: argparse.Namespace) -> None:
    host = await start_host(args.port)
    env = world.env() | {
        "GRAPH_NOTIFICATION_URL": host.function_url("graph/notify"),
        "GRAPH_LIFECYCLE_URL": host.function_url("graph/lifecycle"),
    }
    apply_env(env)
    tasks: list[asyncio.Task[Any]] = []
    try:
        ok = await console_answers(host)
        console.print(f"[bold]provisioning console:[/] {host.console_url()}", soft_wrap=True, highlight=False)
        console.print(f"  (the Function app listens on {host.url}; signing in takes its function key, as above)")
        if not ok:
            raise RuntimeError("the provisioning console did not answer")
        if args.once:
            return
        console.print("Export these to use the gotosync CLI against this world:")
        for key, value in env.items():
            console.print(f"export {key}='{value}'", soft_wrap=True, highlight=False)
        tasks = [asyncio.create_task(host.run_queue_workers()), asyncio.create_task(host.run_timers())]
        if not args.no_cycle:
            tasks.append(asyncio.create_task(host.invoke("sync_cycle")))
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        console.print("[dim]press Ctrl-C to stop everything[/]")
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await host.stop()
        await close_services()


async def run_cycle(console: Console, settings: Settings, title: str) -> CycleResult:
    async with open_runtime(settings) as rt:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        ) as bar:  # fmt: skip
            task = bar.add_task(title, total=None)

            def on_progress(p: CycleProgress) -> None:
                bar.update(task, total=p.total or None, completed=p.processed)

            result = await rt.engine.run_cycle(initiated_by=Initiator.CLI, progress=on_progress)
            done = sum(result.by_action.values())
            bar.update(task, total=done, completed=done)
    return result


def show_result(console: Console, result: CycleResult) -> None:
    console.print(f"[bold]{result.kind.value} cycle[/] {result.cycle_id} took {result.duration_s:.1f} s")
    table = Table()
    table.add_column("action")
    table.add_column("count", justify="right")
    for action, n in sorted(result.by_action.items()):
        table.add_row(action, str(n))
    console.print(table)
    console.print("by status: " + ", ".join(f"{k} {v}" for k, v in sorted(result.by_status.items())))


async def scripted_changes(world: LocalWorld, settings: Settings) -> list[str]:
    """Directory changes an admin makes every day; returns what was done, for the printout."""
    g = world.graph
    async with Store.from_connection_string(settings.storage_connection_string, prefix=settings.table_prefix) as s:
        links = [lk for lk in await s.links.all("user") if lk.active]
        snapshot = await s.assignments.load()
    groups = {pid for pid, a in snapshot.items() if a.principal_type == "Group"}
    # Users in scope only through their direct assignment, so that unassigning them counts.
    direct_only = [
        lk.entra_id
        for lk in links
        if lk.entra_id in snapshot and not (g.tenant.member_of.get(lk.entra_id, set()) & groups)
    ]
    pick = iter(dict.fromkeys(direct_only + [lk.entra_id for lk in links]))
    done: list[str] = []

    def step(label: str, action: Callable[[str], Any]) -> None:
        uid = next(pick)
        upn = g.user(uid)["userPrincipalName"]
        action(uid)
        done.append(f"{label}: {upn}")

    step("rename", lambda uid: g.update_user(uid, surname="Byron", displayName=g.user(uid)["givenName"] + " Byron"))
    step("department move", lambda uid: g.update_user(uid, department="Finance"))
    step("unassign", g.unassign)
    step("block sign-in", g.block_user)
    step("soft delete", g.soft_delete_user)
    step("hard delete", g.hard_delete_user)
    granting = sorted(pid for pid in groups if any(snapshot[pid].role_values))
    in_scope = {lk.entra_id for lk in links}
    newcomer = next(
        uid for uid in g.tenant.users if uid not in in_scope and uid not in snapshot and g.user(uid)["accountEnabled"]
    )
    g.add_member(granting[0], newcomer)
    done.append(f"add to assigned group {snapshot[granting[0]].display_name}: {g.user(newcomer)['userPrincipalName']}")
    return done


async def show_logs(console: Console, settings: Settings, cycle_id: str) -> None:
    async with Store.from_connection_string(settings.storage_connection_string, prefix=settings.table_prefix) as s:
        entries = await s.logs.query(cycle_id=cycle_id, limit=20)
    table = Table(title="provisioning log (latest cycle)")
    for column in ("action", "status", "user", "reason"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.action.value, e.status.value, e.source_name, e.reason)
    console.print(table)


async def demo(console: Console, world: LocalWorld) -> None:
    settings = Settings.from_env(world.env())
    console.rule("initial cycle")
    first = await run_cycle(console, settings, "initial cycle")
    show_result(console, first)
    console.print(f"seats in use after the initial cycle: {world.seats()}")
    console.rule("directory changes in Entra")
    for line in await scripted_changes(world, settings):
        console.print(f"  - {line}")
    console.rule("incremental cycle")
    second = await run_cycle(console, settings, "incremental cycle")
    show_result(console, second)
    await show_logs(console, settings, second.cycle_id)
    created = sum(1 for u in world.goto.users() if u.get("inOrg"))
    console.print(f"GoTo now holds {created} organization users; seats in use: {world.seats()}.")
    console.rule("real time: a change in Entra reaches GoTo without a cycle")
    await realtime(console, world, settings)


async def realtime(console: Console, world: LocalWorld, settings: Settings) -> None:
    """Serves the Function app's HTTP functions locally, lets the keeper subscribe, then makes
    changes in Entra and watches them arrive in GoTo through webhook, queue and worker."""
    import function_app

    host = FunctionsHost(function_app.app)
    webhook_key = host.add_function_key("graph_notifications", "graph-webhook")  # opens the intake only
    await host.start(queues=False)
    env = world.env() | {
        "GRAPH_NOTIFICATION_URL": host.function_url("graph/notify", webhook_key),
        "GRAPH_LIFECYCLE_URL": "",  # lifecycle notifications come to the same URL
    }
    apply_env(env)
    worker = asyncio.create_task(host.run_queue_workers())
    try:
        await host.invoke("subscription_keeper")
        resources = [s["resource"] for s in world.graph.subscriptions()]
        groups = sum(1 for r in resources if r.endswith("/members"))
        console.print(f"Graph subscriptions: /users and {groups} assigned group(s)' members (handshakes answered)")
        async with Store.from_connection_string(settings.storage_connection_string, prefix=settings.table_prefix) as s:
            linked = [lk for lk in await s.links.all("user") if lk.active]
        target = linked[0].entra_id
        upn = world.graph.user(target)["userPrincipalName"]
        started = time.perf_counter()
        world.graph.update_user(target, displayName="Realtime Renamed")
        await wait_until(lambda: (world.goto.user_by_username(upn) or {}).get("displayName") == "Realtime Renamed")
        console.print(f"rename of {upn} reached GoTo in {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        world.graph.block_user(target)
        await wait_until(lambda: (world.goto.user_by_username(upn) or {}).get("active") is False)
        console.print(f"sign-in block of {upn} disabled the GoTo user in {time.perf_counter() - started:.2f} s")
        await wait_until(lambda: not world.goto.licenses_of(world.goto.user_by_username(upn)["key"]))
        console.print(f"its seat was released: {world.seats()}")
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await host.stop()
        await close_services()


async def wait_until(check: Callable[[], bool]) -> None:
    """The demo watches GoTo like a person would: look, wait a moment, look again (30 s at most)."""
    async with asyncio.timeout(30):
        while not check():  # noqa: ASYNC110 - GoTo is another system: we can only look at it
            await asyncio.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    options = WorldOptions(users=args.users, groups=args.groups, seed=args.seed, goto_rate_limit=args.rate_limit)
    with console.status("starting Azurite and the emulators"):
        world = LocalWorld(options).start()
    try:
        show_world(console, world)
        if args.world:
            asyncio.run(serve_world(console, world, args))
            return 0
        asyncio.run(demo(console, world))
        console.print("To keep the world running and look at it in the provisioning console: make demo ARGS=--world")
        return 0
    finally:
        world.stop()
        console.print("stopped Azurite and both emulators")


if __name__ == "__main__":
    sys.exit(main())
