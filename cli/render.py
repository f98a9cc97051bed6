"""What the `gotosync` CLI prints on a terminal (rich): cycle results and plans, provision on
demand, status, the control operations, test connection, logs, mappings and the deploy
commands. Only the CLI imports rich; shared/ops builds the documents shown here."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from shared.engine.cycle import CycleResult
from shared.engine.drift_sweep import DriftResult
from shared.engine.effects import Record
from shared.engine.plan import Kind
from shared.mapping import ExpressionSyntaxError, MappingError
from shared.model import CycleProgress, ProvisioningLogEntry, StepType
from shared.ops.connection import ConnectionReport
from shared.ops.on_demand import OnDemandResult
from shared.ops.report import outcome_of
from shared.scim.paths import short_name


def print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, default=str))


def emit(args: argparse.Namespace, console: Console, doc: Any, renderer: Callable[..., None], *shown: Any) -> None:
    """A command's result: `doc` as JSON with `--json`, else `renderer(console, *shown)` for a
    terminal, `shown` being `doc` itself unless given."""
    if args.json:
        print_json(doc)
    else:
        renderer(console, *(shown or (doc,)))


# ---------------------------------------------------------------------------- cycles


@contextmanager
def cycle_progress(console: Console) -> Iterator[Any]:
    """A progress bar for a cycle on a terminal; yields the engine's progress callback."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("sync", total=None)

        def on_progress(p: CycleProgress) -> None:
            bar.update(task, total=p.total or None, completed=p.processed, description=f"{p.kind.value}")

        yield on_progress


def _value(value: Any) -> str:
    return "—" if value is None else repr(value) if not isinstance(value, str) else value


def print_result(console: Console, result: CycleResult, *, show_plan: bool | None = None) -> None:
    """The summary as a table; for a dry run (or `show_plan`) each planned object with its diff."""
    kind = f"{result.kind.value} cycle" + (" (dry run: nothing was written)" if result.dry_run else "")
    verb = "handed on (its time budget is spent)" if result.continuing else "finished"
    console.print(f"[bold]{kind}[/] {result.cycle_id} {verb} in {result.duration_s:.1f} s")
    if result.continuing:
        console.print(
            "the cycle continues in its next invocation: the Function app's sync_continue picks it up at once; "
            "locally, run `gotosync sync` again"
        )
    counts = Table("action", "count", title="by action")
    for action, n in sorted(result.by_action.items()):
        counts.add_row(action, str(n))
    console.print(counts)
    console.print("by status: " + (", ".join(f"{k} {v}" for k, v in sorted(result.by_status.items())) or "nothing"))
    if show_plan is None:
        show_plan = result.dry_run
    if show_plan:
        print_plans(console, [p for p in result.plans if p.kind is not Kind.NONE])
        in_sync = sum(1 for p in result.plans if p.kind is Kind.NONE)
        if in_sync:
            console.print(f"{in_sync} object(s) already in sync (not listed)")
    if result.staged:
        verb = "would be staged" if result.dry_run else "staged"
        console.print(
            f"[yellow]{result.staged} disables/deletes {verb} by the deletion threshold: nothing is disabled or "
            "deleted until an admin runs `gotosync allow-deletes` (or fixes the cause and restarts); "
            "`gotosync sync --dry-run --full` lists them[/]"
        )


def print_plans(console: Console, plans: list[Record], *, executed: bool = False) -> None:
    if not plans:
        console.print("no object needs a change")
        return
    table = Table("user", "action", "status", "attribute", "old", "new", "reason", title="plan", show_lines=True)
    for plan in sorted(plans, key=lambda p: (p.log_action.value, p.user.upn or p.user.id)):
        status, code = outcome_of(plan) if executed else (plan.log_status.value, plan.error_code)
        changes = plan.shown_changes()
        cells = [
            plan.user.upn or plan.user.id,
            plan.log_action.value + (f" ({plan.kind.value})" if plan.staged else ""),
            status,
            "\n".join(short_name(path) for path, _, _ in changes),
            "\n".join(_value(old) for _, old, _ in changes),
            "\n".join(_value(new) for _, _, new in changes),
            plan.reason + (f" [{code}]" if code else ""),
        ]
        table.add_row(*(escape(c) for c in cells))
    console.print(table)


def print_drift(console: Console, result: DriftResult) -> None:
    """The sweep's counts, then each repair: GoTo's value (old) and the one put back (new)."""
    summary = result.summary()
    mode = " (dry run: nothing was written)" if result.dry_run else ""
    console.print(f"[bold]Drift sweep{mode}[/] {result.sweep_id} finished in {summary['durationSeconds']:.1f} s")
    console.print(
        f"{result.listed} GoTo user(s) listed, {result.compared} linked user(s) compared, {result.in_step} in step, "
        f"{result.unmanaged} not managed by gotosync (left alone)"
    )
    if not result.records:
        console.print("no drift: GoTo holds what gotosync last exported")
    else:
        table = Table(
            "user", "action", "status", "attribute", "GoTo (old)", "put back (new)", "reason", show_lines=True
        )
        for record in sorted(result.records, key=lambda r: (r.log_action.value, r.target_name)):
            status = record.log_status.value if not result.dry_run else record.plan.log_status.value
            changes = record.shown_changes()
            cells = [
                record.target_name or record.user.id,
                record.log_action.value + (f" ({record.kind.value})" if record.staged else ""),
                status + (f" [{record.error_code}]" if record.failed else ""),
                "\n".join(short_name(path) for path, _, _ in changes),
                "\n".join(_value(old) for _, old, _ in changes),
                "\n".join(_value(new) for _, _, new in changes),
                record.reason,
            ]
            table.add_row(*(escape(c) for c in cells))
        console.print(table)
    for label, key in (("deleted in GoTo while disabled (nothing to restore)", "deletedWhileDisabled"),
                       ("could not be read (left to the next sweep)", "unread"),
                       ("changed under the sweep (left to the next sweep)", "leftToNextSweep"),
                       ("not repaired in the time budget (left to the next sweep)", "outOfTimeBudget")):  # fmt: skip
        if summary[key]:
            console.print(f"{summary[key]} user(s) {label}")
    if result.staged:
        verb = "would be staged" if result.dry_run else "staged"
        console.print(
            f"[yellow]{result.staged} re-disable(s) {verb} by the deletion threshold: the next cycle re-reads those "
            "users from Entra once an admin runs `gotosync allow-deletes` (or fixes the cause and restarts)[/]"
        )


# ---------------------------------------------------------------------------- provision on demand

_STEP_LABEL = {
    StepType.IMPORT: "Import",
    StepType.SCOPING: "Scope",
    StepType.MATCHING: "Match",
    StepType.PROCESSING: "Action",
    StepType.EXPORT: "Export",
}
_STATUS_STYLE = {"Success": "green", "Skipped": "yellow", "Failure": "red", "Warning": "yellow"}


def print_on_demand(console: Console, outcome: OnDemandResult) -> None:
    req = outcome.requested
    mode = "dry run: nothing is written" if outcome.dry_run else "live: changes are written to GoTo now"
    subject = f"{req.kind} {req.display_name} ({req.id}, found by {req.resolved_by})"
    if outcome.members is not None:
        subject += f", {outcome.members} member(s)"
    console.print(f"[bold]Provision on demand[/] — {escape(subject)} — {mode}")
    for plan, engine in outcome.objects():
        _print_object(console, plan, executed=engine and not outcome.dry_run)
        if not engine:
            console.print("     not provisioned and not in scope: nothing to match or export (not logged)")
    counts = ", ".join(f"{k} {v}" for k, v in outcome.document()["countsByAction"].items()) or "nothing"
    console.print(f"\n{len(outcome.objects())} object(s): {counts}; cycle id {outcome.result.cycle_id}")


def _print_object(console: Console, plan: Record, *, executed: bool) -> None:
    status, code = outcome_of(plan) if executed else (plan.log_status.value, plan.error_code)
    style = _STATUS_STYLE.get(status, "")
    console.print(
        f"\n[bold]{escape(plan.user.upn or plan.user.id)}[/] ({escape(plan.user.display_name)}): "
        f"{plan.log_action.value} [{style}]{status}[/]" + escape(f" [{code}]" if code else "")
    )
    for n, step in enumerate(plan.steps, start=1):
        step_style = _STATUS_STYLE.get(step.status.value, "")
        label = _STEP_LABEL.get(step.step_type, step.step_type.value)
        console.print(
            f"  {n}. {label:<7} [{step_style}]{step.status.value:<8}[/] {escape(step.description)}", highlight=False
        )
        for key, value in step.details.items():
            console.print(f"       {key}: {value}", highlight=False, markup=False)


# ---------------------------------------------------------------------------- connection and control


def print_connection(console: Console, report: ConnectionReport) -> None:
    for check in report.checks:
        mark = "[green]OK[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"{mark} [bold]{check.name}[/]: {escape(check.detail)}")
        if check.fix:
            console.print(f"       fix: {escape(check.fix)}")


def print_control(console: Console, doc: dict[str, Any]) -> None:
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


# ---------------------------------------------------------------------------- status


def describe_cycle(c: dict[str, Any] | None) -> str:
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
            text = describe_cycle(value)
        elif value is None:
            text = "—"
        else:
            text = str(value)
        table.add_row(key, escape(text))
    console.print(table)


@contextmanager
def status_progress(console: Console, *, quiet: bool) -> Iterator[Any]:
    """A live bar over job.current while a cycle runs; yields the status watcher's frame callback."""
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

        yield on_frame


def print_watch_end(console: Console, final: dict[str, Any]) -> None:
    last = final["lastCycle"]
    console.print(f"no cycle is running; last cycle: {escape(describe_cycle(last))}", highlight=False)


# ---------------------------------------------------------------------------- logs


def print_logs(console: Console, entries: list[ProvisioningLogEntry]) -> None:
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


def print_csv_written(console: Console, count: int, paths: list[Any]) -> None:
    console.print(f"{count} entries written to:")
    for path in paths:
        console.print(f"  {path}")


def print_purged(console: Console, doc: dict[str, Any]) -> None:
    console.print(
        f"deleted {doc['deleted']} provisioning log entries from before {doc['keptFromDay']} "
        f"(retention {doc['retentionDays']} days)"
    )


# ---------------------------------------------------------------------------- mapping


def mapping_error_document(error: MappingError) -> dict[str, Any]:
    doc: dict[str, Any] = {"mapping": error.mapping, "problem": error.problem}
    if isinstance(error, ExpressionSyntaxError):
        doc["position"] = error.position
        doc["expression"] = error.expression
    return doc


def print_mapping_problems(console: Console, file: str, errors: list[MappingError]) -> None:
    console.print(f"[red]{escape(file)}: {len(errors)} problem(s)[/]", highlight=False)
    for error in errors:
        console.print(f"  - {escape(str(error))}".replace("\n", "\n    "), highlight=False)


def print_mapping_valid(console: Console, doc: dict[str, Any]) -> None:
    console.print(
        f"[green]{escape(doc['file'])}: valid[/] — {doc['mappings']} mapping(s), {doc['scopingFilters']} scoping "
        f"filter(s); matching: {', '.join(doc['matching'])}; reads: {', '.join(doc['graphSelect'])}",
        highlight=False,
    )


def print_preview(console: Console, doc: dict[str, Any]) -> None:
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


# ---------------------------------------------------------------------------- settings and deployment


def print_settings(console: Console, declared: list[dict[str, Any]]) -> None:
    table = Table(Column("variable", no_wrap=True), "default", "accepts", "meaning")
    for s in declared:
        table.add_row(s["variable"], escape(s["default"] or "(empty)"), escape(s["accepts"]), escape(s["meaning"]))
    console.print(table)


def print_authorized(console: Console, doc: dict[str, Any], secret_name: str) -> None:
    console.print(f"[green]GoTo authorized[/] by {escape(str(doc['principal']))}")
    console.print(f"scopes: {escape(' '.join(doc['scopes']) or '(not reported)')}")
    console.print(f"refresh token stored in {escape(doc['storedIn'])}")
    if doc["clientSecretStored"]:
        console.print(f"client secret stored as {secret_name!r} in the same vault")
    if doc["missingScopes"]:
        console.print(f"[yellow]the token lacks {', '.join(doc['missingScopes'])}: SCIM calls will be refused[/]")


def print_grants(console: Console, grants: list[Any]) -> None:
    table = Table("permission", "app role id", "status")
    for g in grants:
        table.add_row(g.permission, g.app_role_id, g.status)
    console.print(table)
