"""`gotosync`, the admin command line: cycles and dry runs, provision on demand, test
connection, start/stop/restart/allow-deletes, status, the provisioning logs, and the attribute
mapping (validate a file, preview a user).

Settings come from the environment (the same app settings the Function app reads); a local
run against the emulators gets them from `make demo` or from a .env-style export. Every
command is a thin face of shared/ops (the HTTP admin endpoints in admin_api/ are the other).

Exit codes (each error class carries its own, shared/errors.py): 0 done, 1 a check failed
(test-connection, mapping validate) or the run was refused or cut short (plan refused), 2 bad
input or configuration, 3 not run because of a cycle (lease held or lost, provisioning off), 4
user or group not found, 5 a service (GoTo, Graph, storage) refused or could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.deploy.commands import add_deploy_parsers, cmd_authorize, cmd_grant_permissions
from shared.errors import GotosyncError, translate
from shared.mapping import ExpressionSyntaxError, MappingConfigError, MappingError, load_mapping
from shared.model import CycleProgress, Initiator
from shared.ops import InvalidInput, audit
from shared.ops.connection import check_connection
from shared.ops.control import allow_deletes, parse_scopes, restart, set_provisioning
from shared.ops.identifiers import on_demand_target, user_identifier
from shared.ops.logs_export import (
    LogQuery,
    log_document,
    parse_action,
    parse_status,
    parse_time,
    write_csv,
)
from shared.ops.on_demand import print_on_demand, provision_on_demand
from shared.ops.report import print_result, result_document
from shared.ops.retention import purge_logs
from shared.ops.status import load_status, watch
from shared.runtime import open_runtime, opened_store
from shared.settings import Settings

__all__ = ["build_parser", "log_document", "main", "parse_since", "result_document"]


def parse_since(text: str) -> datetime:
    """An ISO date/time, or a duration back from now: 30m, 12h, 7d."""
    try:
        return parse_time(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(f"--since: {exc.detail}") from None


def _time_arg(option: str) -> Any:
    def parse(text: str) -> datetime:
        try:
            return parse_time(text, option)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gotosync", description="Provision Entra ID users into GoTo.")
    sub = parser.add_subparsers(dest="command", required=True)

    sync = sub.add_parser("sync", help="run one sync cycle now")
    sync.add_argument("--full", action="store_true", help="an initial (full) cycle instead of an incremental one")
    sync.add_argument(
        "--dry-run", action="store_true", help="plan only: write nothing to GoTo or to the state; show each diff"
    )
    sync.add_argument("--json", action="store_true", help="print one JSON document")

    provision = sub.add_parser("provision", help="provision one user, or a group's members, now (on demand)")
    provision.add_argument("user", nargs="?", help="the user's UPN, mail address or object id")
    provision.add_argument("--group", help="a group's object id or display name: provision each member")
    provision.add_argument("--dry-run", action="store_true", help="show the steps and the action, write nothing")
    provision.add_argument("--json", action="store_true")

    test = sub.add_parser("test-connection", help="check GoTo, Microsoft Graph and storage; say what to fix")
    test.add_argument("--json", action="store_true")

    for name, text in (("start", "turn provisioning on"), ("stop", "turn provisioning off (a running cycle ends)")):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true")

    restart_cmd = sub.add_parser(
        "restart", help="restart provisioning: the next cycle is an initial one (Entra's reset scopes)"
    )
    restart_cmd.add_argument(
        "--scope",
        action="append",
        default=[],
        help="Watermark, Escrows, QuarantineState, ForceDeletes or Full (repeat or comma-separate); "
        "none = Watermark,Escrows,QuarantineState",
    )
    restart_cmd.add_argument("--json", action="store_true")

    allow = sub.add_parser("allow-deletes", help="let the next cycle carry out the disables/deletes the threshold held")
    allow.add_argument("--now", action="store_true", help="and run that cycle now")
    allow.add_argument("--json", action="store_true")

    status = sub.add_parser("status", help="the provisioning job's state")
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true", help="while a cycle runs, show its progress live")

    logs = sub.add_parser("logs", help="provisioning logs, newest first")
    logs.add_argument("--user", help="UPN, display name or object id (substring)")
    logs.add_argument("--action", help="Create, Update, Disable, Delete, StagedDelete or Other")
    logs.add_argument("--status", help="Success, Failure, Skipped or Warning")
    logs.add_argument("--cycle", help="a cycle id")
    logs.add_argument("--since", type=parse_since, help="ISO time, or 30m / 12h / 7d")
    logs.add_argument("--until", type=_time_arg("until"), help="ISO time, or 30m / 12h / 7d")
    logs.add_argument("--limit", type=int, help="at most this many entries (default 50; all with --csv)")
    logs.add_argument("--json", action="store_true")
    logs.add_argument("--csv", metavar="DIR", type=Path, help="write Entra's three CSV files into DIR")

    purge = sub.add_parser("purge-logs", help="delete provisioning logs older than LOG_RETENTION_DAYS")
    purge.add_argument("--days", type=int, help="keep this many days instead of LOG_RETENTION_DAYS")
    purge.add_argument("--json", action="store_true")

    mapping = sub.add_parser("mapping", help="attribute mappings: validate a mapping file, preview a user")
    mapping_sub = mapping.add_subparsers(dest="mapping_command", required=True)
    validate = mapping_sub.add_parser("validate", help="check a mapping file; every problem names its mapping")
    validate.add_argument("file", help="the JSON mapping file (or builtin:goto / builtin:scim)")
    validate.add_argument("--json", action="store_true")
    preview = mapping_sub.add_parser(
        "preview", help="each target attribute for one user: the source values and the result (writes nothing)"
    )
    preview.add_argument("user", help="the user's UPN, mail address or object id")
    preview.add_argument("--file", help="a mapping file to preview instead of MAPPING_FILE")
    preview.add_argument("--json", action="store_true")
    add_deploy_parsers(sub)  # authorize, grant-permissions
    return parser


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, default=str))


# ---------------------------------------------------------------------------- cycles


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
        _print_json(result_document(result))
    else:
        print_result(console, result)
    return 0


async def cmd_provision(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if args.user is None and args.group is None:
        raise InvalidInput("user", "give a user (UPN, mail or object id) or --group")
    user, group = on_demand_target(args.user, args.group)  # checked before anything opens
    async with open_runtime(settings) as rt:
        outcome = await provision_on_demand(rt, user=user, group=group, dry_run=args.dry_run)
        if not args.dry_run:
            req = outcome.requested
            target = f"{req.kind} {req.display_name} ({req.id})"
            await audit.record(
                rt.store, audit.cli_actor(), "provision", target=target, cycle_id=outcome.result.cycle_id
            )
    if args.json:
        _print_json(outcome.document())
    else:
        print_on_demand(console, outcome)
    return 0


# ---------------------------------------------------------------------------- connection and control


async def cmd_test_connection(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    report = await check_connection(settings)
    if args.json:
        _print_json(report.document())
    else:
        for check in report.checks:
            mark = "[green]OK[/]  " if check.ok else "[red]FAIL[/]"
            console.print(f"{mark} [bold]{check.name}[/]: {escape(check.detail)}")
            if check.fix:
                console.print(f"       fix: {escape(check.fix)}")
    return 0 if report.ok else 1


def _print_control(console: Console, doc: dict[str, Any]) -> None:
    console.print(
        f"[bold]{doc['operation']}[/]: provisioning {doc['provisioning']}; next cycle {doc['nextCycle']}; "
        f"quarantine: {escape(doc['quarantine'] or 'none')}"
    )
    if doc["scopes"]:
        console.print(f"reset scopes: {', '.join(doc['scopes'])}")
    if doc["escrowsDropped"]:
        console.print(f"pending retries dropped: {doc['escrowsDropped']}")
    if doc["quarantineLifted"]:
        console.print(f"quarantine lifted: {escape(doc['quarantineLifted'])}")
    for note in doc["notes"]:
        console.print(f"note: {escape(note)}")


def _emit_control(console: Console, args: argparse.Namespace, doc: dict[str, Any]) -> int:
    if args.json:
        _print_json(doc)
    else:
        _print_control(console, doc)
    return 0


async def cmd_start_stop(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with opened_store(settings) as store:
        result = await set_provisioning(store, args.command == "start")
        await audit.record(store, audit.cli_actor(), result.operation)
    return _emit_control(console, args, result.document())


async def cmd_restart(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    scopes = parse_scopes([s for value in args.scope for s in value.split(",")])
    async with opened_store(settings) as store:
        doc = (await restart(store, scopes)).document()
        await audit.record(store, audit.cli_actor(), "restart", target=", ".join(doc["scopes"]))
    return _emit_control(console, args, doc)


async def cmd_allow_deletes(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with opened_store(settings) as store:
        doc = (await allow_deletes(store)).document()
        await audit.record(store, audit.cli_actor(), "allow-deletes", detail={"heldDeletes": doc["heldDeletes"]})
    if args.now:
        async with open_runtime(settings) as rt:
            result = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
            await audit.record(rt.store, audit.cli_actor(), "run cycle", cycle_id=result.cycle_id)
        doc["cycle"] = result.summary()
    _emit_control(console, args, doc)
    if args.now and not args.json:
        print_result(console, result)
    return 0


# ---------------------------------------------------------------------------- status


def _describe_cycle(c: dict[str, Any] | None) -> str:
    if c is None:
        return "none"
    share = "reading" if c["progress"] is None else f"{c['progress']:.0%}"
    when = f"ended {c['ended']}" if c["ended"] else f"started {c['started']}"
    state = f" [{c['state']}]" if "state" in c else ""
    counts = ", ".join(f"{k} {v}" for k, v in c["counts"].items()) or "no changes"
    return f"{c['kind']}{state}, {when}, {c['processed']}/{c['total']} ({share}); {counts}"


def print_status(console: Console, doc: dict[str, Any]) -> None:
    table = Table("field", "value", show_header=False)
    for key, value in doc.items():
        if key in ("currentCycle", "lastCycle"):
            text = _describe_cycle(value)
        elif value is None:
            text = "—"
        else:
            text = str(value)
        table.add_row(key, escape(text))
    console.print(table)


async def cmd_status(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with opened_store(settings) as store:
        if args.watch:
            doc = await _watch(store, settings, console, quiet=args.json)
        else:
            doc = await load_status(store, settings)
    if args.json:
        _print_json(doc)
    else:
        print_status(console, doc)
    return 0


async def _watch(store: Any, settings: Settings, console: Console, *, quiet: bool) -> dict[str, Any]:
    """A live progress bar over job.current, until no cycle runs."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(), console=console, transient=True, disable=quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task("cycle", total=None, counts="")

        def on_frame(doc: dict[str, Any]) -> None:
            current = doc["currentCycle"]
            if current is None or current["state"] != "running":
                return
            counts = ", ".join(f"{k} {v}" for k, v in current["counts"].items())
            reading = " (reading)" if current["progress"] is None else ""
            bar.update(
                task,
                description=f"{current['kind']} cycle{reading}",
                total=current["total"] or None,
                completed=current["processed"],
                counts=counts,
            )

        final = await watch(store, settings, on_frame)
    if not quiet:
        last = final["lastCycle"]
        console.print(f"no cycle is running; last cycle: {escape(_describe_cycle(last))}", highlight=False)
    return final


# ---------------------------------------------------------------------------- logs


async def cmd_logs(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    limit = args.limit if args.limit is not None else (None if args.csv else 50)
    query = LogQuery(
        user=args.user,
        action=parse_action(args.action) if args.action else None,
        status=parse_status(args.status) if args.status else None,
        cycle_id=args.cycle,
        since=args.since,
        until=args.until,
        limit=limit,
    )
    async with opened_store(settings) as store:
        entries = await query.run(store)
    if args.csv:
        paths = write_csv(entries, args.csv)
        if args.json:
            _print_json({"entries": len(entries), "files": [str(p) for p in paths]})
        else:
            console.print(f"{len(entries)} entries written to:")
            for path in paths:
                console.print(f"  {path}")
        return 0
    if args.json:
        _print_json([log_document(e) for e in entries])
        return 0
    table = Table("time (UTC)", "action", "status", "user", "target", "reason")
    for e in entries:
        reason = e.reason + (f" [{e.error_code}]" if e.error_code else "")
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.action.value,
            e.status.value,
            escape(e.source_name),
            escape(e.target_id),
            escape(reason),
        )
    console.print(table)
    return 0


async def cmd_purge_logs(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    days = args.days if args.days is not None else settings.log_retention_days
    if days < 1:
        raise InvalidInput("--days", f"must be at least 1, got {days}")
    async with opened_store(settings) as store:
        result = await purge_logs(store, days)
    doc = result.document()
    if args.json:
        _print_json(doc)
    else:
        console.print(
            f"deleted {doc['deleted']} provisioning log entries from before {doc['keptFromDay']} "
            f"(retention {doc['retentionDays']} days)"
        )
    return 0


# ---------------------------------------------------------------------------- mapping


def _error_document(error: MappingError) -> dict[str, Any]:
    doc: dict[str, Any] = {"mapping": error.mapping, "problem": error.problem}
    if isinstance(error, ExpressionSyntaxError):
        doc["position"] = error.position
        doc["expression"] = error.expression
    return doc


async def cmd_mapping(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if args.mapping_command == "validate":
        return _mapping_validate(args, console)
    return await _mapping_preview(settings, args, console)


def _mapping_validate(args: argparse.Namespace, console: Console) -> int:
    try:
        config = load_mapping(args.file)
    except MappingConfigError as exc:
        if args.json:
            _print_json({"file": args.file, "valid": False, "errors": [_error_document(e) for e in exc.errors]})
        else:
            console.print(f"[red]{escape(args.file)}: {len(exc.errors)} problem(s)[/]", highlight=False)
            for error in exc.errors:
                console.print(f"  - {escape(str(error))}".replace("\n", "\n    "), highlight=False)
        return 1
    doc = {
        "file": args.file,
        "valid": True,
        "mappings": len(config.users),
        "scopingFilters": len(config.scoping),
        "matching": [m.target for m in config.matching()],
        "graphSelect": config.graph_select(),
        "digest": config.digest(),
    }
    if args.json:
        _print_json(doc)
    else:
        console.print(
            f"[green]{escape(args.file)}: valid[/] — {doc['mappings']} mapping(s), {doc['scopingFilters']} scoping "
            f"filter(s); matching: {', '.join(doc['matching'])}; reads: {', '.join(doc['graphSelect'])}",
            highlight=False,
        )
    return 0


async def _mapping_preview(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from shared.engine.preview import preview_user

    user = user_identifier(args.user)
    config = load_mapping(args.file) if args.file else None
    async with open_runtime(settings, mapping=config) as rt:
        preview = await preview_user(rt, user)
    doc = preview.document()
    if args.json:
        _print_json(doc)
        return 0
    user = doc["user"]
    console.print(
        f"[bold]{escape(str(user['userPrincipalName'] or user['id']))}[/] ({escape(user['displayName'])}): "
        f"{doc['action']} {doc['status']}" + (f" [{doc['errorCode']}]" if doc["errorCode"] else "")
        + f" — {escape(doc['reason'])}",
        highlight=False,
    )  # fmt: skip
    for check in doc["scope"]:
        mark = "pass" if check["passed"] else "fail"
        console.print(f"  scope: {check['check']}: {mark} ({escape(check['detail'])})", highlight=False)
    if doc["licenses"] is not None:
        console.print(f"  licenses: {doc['licenses']['held']} -> {doc['licenses']['wanted']}", highlight=False)
    table = Table("target", "mapping", "source values", "result")
    for a in doc["attributes"]:
        values = ", ".join(f"{k}={v!r}" for k, v in a["sourceValues"].items()) or "—"
        result = repr(a["result"]) if a["status"] == "sent" else a["status"]
        if a.get("error"):
            result = f"error: {a['error']}"
        table.add_row(escape(a["target"]), escape(f"{a['type']}: {a['source']}"), escape(values), escape(result))
    console.print(table)
    return 0


COMMANDS = {
    "sync": cmd_sync,
    "provision": cmd_provision,
    "test-connection": cmd_test_connection,
    "start": cmd_start_stop,
    "stop": cmd_start_stop,
    "restart": cmd_restart,
    "allow-deletes": cmd_allow_deletes,
    "status": cmd_status,
    "logs": cmd_logs,
    "purge-logs": cmd_purge_logs,
    "mapping": cmd_mapping,
    "authorize": cmd_authorize,
    "grant-permissions": cmd_grant_permissions,
}


# How the CLI names the connection check in a fix.
SPELLING = {"test_connection": "`gotosync test-connection`"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        settings = Settings.from_env()
        return asyncio.run(COMMANDS[args.command](settings, args, console))
    except GotosyncError as exc:
        failure = translate(exc, SPELLING)
        print(failure.line(), file=sys.stderr)
        return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
