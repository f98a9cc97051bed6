"""`gotosync`, the admin command line: run a cycle, see the job's status, read the logs.

Settings come from the environment (the same app settings the Function app reads); a local
run against the emulators gets them from `make demo` or from a .env-style export.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.engine.cycle import CycleNotRun, CycleResult
from shared.model import CycleProgress, Initiator, JobState, ProvisioningLogEntry
from shared.runtime import open_runtime, open_store
from shared.settings import Settings, SettingsError


def parse_since(text: str) -> datetime:
    """An ISO date/time, or a duration back from now: 30m, 12h, 7d."""
    text = text.strip()
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since: expected an ISO time or 30m/12h/7d, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gotosync", description="Provision Entra ID users into GoTo.")
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync", help="run one sync cycle now")
    sync.add_argument("--full", action="store_true", help="an initial (full) cycle instead of an incremental one")
    sync.add_argument("--dry-run", action="store_true", help="plan only: write nothing to GoTo or to the state")
    sync.add_argument("--json", action="store_true", help="print one JSON document")
    status = sub.add_parser("status", help="the provisioning job's state")
    status.add_argument("--json", action="store_true")
    logs = sub.add_parser("logs", help="provisioning logs, newest first")
    logs.add_argument("--user", help="UPN, display name or object id (substring)")
    logs.add_argument("--since", type=parse_since, help="ISO time, or 30m / 12h / 7d")
    logs.add_argument("--limit", type=int, default=50)
    logs.add_argument("--json", action="store_true")
    return parser


def result_document(result: CycleResult) -> dict[str, Any]:
    doc = result.summary()
    if result.dry_run:
        doc["plan"] = [
            {
                "user": p.user.upn or p.user.id,
                "action": p.log_action.value,
                "status": p.log_status.value,
                "reason": p.reason,
                "changes": {k: [old, new] for k, (old, new) in p.changes.items()},
            }
            for p in result.plans
            if p.kind.value not in ("none",)
        ]
    return doc


def print_result(console: Console, result: CycleResult) -> None:
    kind = f"{result.kind.value} cycle" + (" (dry run)" if result.dry_run else "")
    console.print(f"[bold]{kind}[/] {result.cycle_id} finished in {result.duration_s:.1f} s")
    table = Table("action", "count")
    for action, n in sorted(result.by_action.items()):
        table.add_row(action, str(n))
    console.print(table)
    console.print("by status: " + ", ".join(f"{k} {v}" for k, v in sorted(result.by_status.items())))
    if result.staged:
        console.print(f"[yellow]{result.staged} disables/deletes staged by the deletion threshold[/]")


async def cmd_sync(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with open_runtime(settings) as rt:
        show_bar = console.is_terminal and not args.json
        if show_bar:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True,
            ) as bar:  # fmt: skip
                task = bar.add_task("sync", total=None)

                def on_progress(p: CycleProgress) -> None:
                    bar.update(task, total=p.total or None, completed=p.processed, description=f"{p.kind.value}")

                result = await rt.engine.run_cycle(
                    full=args.full, dry_run=args.dry_run, initiated_by=Initiator.CLI, progress=on_progress
                )
        else:
            result = await rt.engine.run_cycle(full=args.full, dry_run=args.dry_run, initiated_by=Initiator.CLI)
    if args.json:
        print(json.dumps(result_document(result), indent=2, default=str))
    else:
        print_result(console, result)
    return 0


def status_document(job: JobState, escrow: int) -> dict[str, Any]:
    def cycle(p: CycleProgress | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "cycleId": p.cycle_id,
            "kind": p.kind.value,
            "initiatedBy": p.initiated_by.value,
            "started": p.started.isoformat() if p.started else None,
            "ended": p.ended.isoformat() if p.ended else None,
            "progress": round(p.fraction, 4),
            "processed": p.processed,
            "total": p.total,
            "counts": p.counts,
        }

    return {
        "provisioning": "on" if job.enabled else "off",
        "quarantine": job.quarantine_reason or None,
        "currentCycle": cycle(job.current),
        "lastCycle": cycle(job.last),
        "lastSuccessfulCycle": job.last_success.isoformat() if job.last_success else None,
        "escrowed": escrow,
        "stagedDeletes": job.staged_deletes,
        "watermark": job.has_watermark,
    }


async def cmd_status(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    store = await open_store(settings)
    try:
        doc = status_document(await store.job.get(), await store.escrow.count())
    finally:
        await store.close()
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    table = Table("field", "value", show_header=False)
    for key, value in doc.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)
    return 0


def log_document(e: ProvisioningLogEntry) -> dict[str, Any]:
    return {
        "time": e.at.isoformat(),
        "cycleId": e.cycle_id,
        "changeId": e.change_id,
        "action": e.action.value,
        "status": e.status.value,
        "source": {"id": e.source_id, "name": e.source_name},
        "target": {"id": e.target_id, "name": e.target_name},
        "initiatedBy": e.initiated_by.value,
        "reason": e.reason,
        "errorCode": e.error_code,
        "modifiedProperties": [{"name": m.name, "old": m.old, "new": m.new} for m in e.modified],
        "steps": [{"name": s.name, "type": s.step_type.value, "status": s.status.value, "description": s.description}
                  for s in e.steps],
        "durationMs": e.duration_ms,
    }  # fmt: skip


async def cmd_logs(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    store = await open_store(settings)
    try:
        entries = await store.logs.query(user=args.user, since=args.since, limit=args.limit)
    finally:
        await store.close()
    if args.json:
        print(json.dumps([log_document(e) for e in entries], indent=2, default=str))
        return 0
    table = Table("time", "action", "status", "user", "reason")
    for e in entries:
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.action.value, e.status.value, e.source_name, e.reason)
    console.print(table)
    return 0


COMMANDS = {"sync": cmd_sync, "status": cmd_status, "logs": cmd_logs}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        settings = Settings.from_env()
        return asyncio.run(COMMANDS[args.command](settings, args, console))
    except SettingsError as exc:
        print(f"gotosync: configuration error: {exc}", file=sys.stderr)
        return 2
    except CycleNotRun as exc:
        print(f"gotosync: cycle not run: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
