"""The `gotosync` commands: each reads its arguments, calls shared/ (the same operations the admin
API calls) and prints the result, as JSON with `--json` or for a terminal (cli/render.py)."""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

from rich.console import Console

from cli import render
from cli.render import emit
from shared.continuation import run_cycle
from shared.engine.drift_sweep import sweep_drift
from shared.mapping import MappingConfigError, load_mapping
from shared.model import Initiator
from shared.ops import InvalidInput, audit
from shared.ops.connection import check_connection
from shared.ops.control import allow_deletes, parse_scopes, restart, set_provisioning
from shared.ops.identifiers import on_demand_target, user_identifier
from shared.ops.logs_export import LogQuery, log_document, parse_action, parse_status, write_csv
from shared.ops.on_demand import provision_on_demand
from shared.ops.preview import preview_user
from shared.ops.report import result_document
from shared.ops.retention import purge_logs
from shared.ops.status import load_status, watch
from shared.runtime import open_runtime, opened_store
from shared.settings import Settings, describe

# ---------------------------------------------------------------------------- cycles


async def cmd_sync(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    show_bar = console.is_terminal and not args.json
    async with open_runtime(settings) as rt:
        with render.cycle_progress(console) if show_bar else nullcontext(None) as on_progress:
            result = await run_cycle(
                rt, full=args.full, dry_run=args.dry_run, initiated_by=Initiator.CLI, progress=on_progress
            )
    emit(args, console, result_document(result), render.print_result, result)
    return 0


async def cmd_drift(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with open_runtime(settings) as rt:
        result = await sweep_drift(rt.engine, dry_run=args.dry_run, initiated_by=Initiator.CLI)
        if not args.dry_run:
            await audit.record(
                rt.store, audit.cli_actor(), "drift sweep", cycle_id=result.sweep_id, detail=result.summary()
            )
    emit(args, console, result.document(), render.print_drift, result)
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
    emit(args, console, outcome.document(), render.print_on_demand, outcome)
    return 0


# ---------------------------------------------------------------------------- connection and control


async def cmd_test_connection(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    report = await check_connection(settings)
    emit(args, console, report.document(), render.print_connection, report)
    return 0 if report.ok else 1


async def cmd_start_stop(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with opened_store(settings) as store:
        result = await set_provisioning(store, args.command == "start")
        await audit.record(store, audit.cli_actor(), result.operation)
    emit(args, console, result.document(), render.print_control)
    return 0


async def cmd_restart(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    scopes = parse_scopes([s for value in args.scope for s in value.split(",")])
    async with opened_store(settings) as store:
        doc = (await restart(store, scopes)).document()
        await audit.record(store, audit.cli_actor(), "restart", target=", ".join(doc["scopes"]))
    emit(args, console, doc, render.print_control)
    return 0


async def cmd_allow_deletes(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with opened_store(settings) as store:
        doc = (await allow_deletes(store)).document()
        await audit.record(store, audit.cli_actor(), "allow-deletes", detail={"heldDeletes": doc["heldDeletes"]})
    if args.now:
        async with open_runtime(settings) as rt:
            result = await rt.engine.run_cycle(initiated_by=Initiator.CLI)
            await audit.record(rt.store, audit.cli_actor(), "run cycle", cycle_id=result.cycle_id)
        doc["cycle"] = result.summary()
    emit(args, console, doc, render.print_control)
    if args.now and not args.json:
        render.print_result(console, result)
    return 0


# ---------------------------------------------------------------------------- status


async def cmd_status(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async with opened_store(settings) as store:
        if args.watch:
            with render.status_progress(console, quiet=args.json) as on_frame:
                doc = await watch(store, settings, on_frame)
            if not args.json:
                render.print_watch_end(console, doc)
        else:
            doc = await load_status(store, settings)
    emit(args, console, doc, render.print_status)
    return 0


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
        doc = {"entries": len(entries), "files": [str(p) for p in paths]}
        emit(args, console, doc, render.print_csv_written, len(entries), paths)
    else:
        emit(args, console, [log_document(e) for e in entries], render.print_logs, entries)
    return 0


async def cmd_purge_logs(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    days = args.days if args.days is not None else settings.log_retention_days
    if days < 1:
        raise InvalidInput("--days", f"must be at least 1, got {days}")
    async with opened_store(settings) as store:
        result = await purge_logs(store, days)
    emit(args, console, result.document(), render.print_purged)
    return 0


# ---------------------------------------------------------------------------- mapping and settings


async def cmd_mapping(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if args.mapping_command == "validate":
        return _mapping_validate(args, console)
    return await _mapping_preview(settings, args, console)


def _mapping_validate(args: argparse.Namespace, console: Console) -> int:
    try:
        config = load_mapping(args.file)
    except MappingConfigError as exc:
        errors = [render.mapping_error_document(e) for e in exc.errors]
        doc = {"file": args.file, "valid": False, "errors": errors}
        emit(args, console, doc, render.print_mapping_problems, args.file, exc.errors)
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
    emit(args, console, doc, render.print_mapping_valid)
    return 0


async def _mapping_preview(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    user = user_identifier(args.user)
    config = load_mapping(args.file) if args.file else None
    async with open_runtime(settings, mapping=config) as rt:
        preview = await preview_user(rt, user)
    emit(args, console, preview.document(), render.print_preview)
    return 0


async def cmd_settings(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    emit(args, console, json.loads(describe()), render.print_settings)
    return 0
