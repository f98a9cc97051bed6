"""The admin operations as HTTP handlers: each a thin translation of one shared/ops call, JSON in
and JSON (or a CSV zip) out. Two doors open onto the same handlers: the function-key endpoints
under /api/ops/ (admin_api/functions.py, for scripts) and the console's API under
/api/console/ops/ (console/functions.py, for signed-in admins). Each handler gets the Actor the
door established; the ones that change the job record it in the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import azure.functions as func

from admin_api.translate import Handler, body, boolean, json_response, param, text, translated
from shared.engine.drift_sweep import sweep_drift
from shared.model import Initiator
from shared.ops import InvalidInput
from shared.ops import audit as audit_trail
from shared.ops.audit import Actor
from shared.ops.connection import check_connection
from shared.ops.control import allow_deletes, parse_scopes, restart, set_provisioning
from shared.ops.health import queue_length, realtime_health
from shared.ops.identifiers import on_demand_target
from shared.ops.log_detail import load_entry
from shared.ops.logs_export import (
    LogQuery,
    csv_zip,
    log_document,
    parse_action,
    parse_initiator,
    parse_status,
    parse_time,
)
from shared.ops.on_demand import provision_on_demand
from shared.ops.overview import load_overview
from shared.ops.report import dry_run_document
from shared.ops.seats import load_seats
from shared.ops.status import load_status
from shared.runtime import open_runtime, opened_store
from shared.settings import Settings

LOGS_DEFAULT_LIMIT = 1000
LOGS_MAX_LIMIT = 50_000
AUDIT_MAX_LIMIT = 500


@dataclass(frozen=True)
class Operation:
    """One admin operation: its HTTP method, its handler, and whether it changes anything."""

    method: str
    handler: Handler
    writes: bool = False


@translated
async def provision(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """{"user": "<UPN, mail or object id>"} or {"group": "<object id or name>"}, "dryRun"?: bool."""
    data = body(req)
    user, group, dry_run = text(data, "user"), text(data, "group"), boolean(data, "dryRun", False)
    user, group = on_demand_target(user, group)  # a bad identifier is a 400 before anything opens
    async with open_runtime(Settings.from_env()) as rt:
        outcome = await provision_on_demand(rt, user=user, group=group, dry_run=dry_run)
        doc = outcome.document()
        if not dry_run:
            await audit_trail.record(
                rt.store,
                actor,
                "provision",
                target=f"{outcome.requested.kind} {outcome.requested.display_name} ({outcome.requested.id})",
                cycle_id=outcome.result.cycle_id,
                detail={"countsByAction": doc["countsByAction"], "countsByStatus": doc["countsByStatus"]},
            )
    return json_response(doc)


@translated
async def dry_run(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """{"full"?: bool (default true), "includeUnchanged"?: bool}: the plan, nothing written."""
    data = body(req)
    full, include_unchanged = boolean(data, "full", True), boolean(data, "includeUnchanged", False)
    async with open_runtime(Settings.from_env()) as rt:
        result = await rt.engine.run_cycle(full=full, dry_run=True, initiated_by=Initiator.ADMIN)
    return json_response(dry_run_document(result, include_unchanged=include_unchanged))


@translated
async def drift(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """{"dryRun"?: bool}: the drift sweep now; each repair (GoTo's value and the one put back)."""
    dry = boolean(body(req), "dryRun", False)
    async with open_runtime(Settings.from_env()) as rt:
        result = await sweep_drift(rt.engine, dry_run=dry, initiated_by=Initiator.ADMIN)
        if not dry:
            await audit_trail.record(rt.store, actor, "drift sweep", cycle_id=result.sweep_id, detail=result.summary())
    return json_response(result.document())


@translated
async def test_connection(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """200 when GoTo, Graph and storage all work; 503 otherwise (same body: each check, and its fix)."""
    report = await check_connection(Settings.from_env())
    return json_response(report.document(), 200 if report.ok else 503)


@translated
async def provisioning(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """{"enabled": bool}: start or stop provisioning."""
    enabled = boolean(body(req), "enabled")
    async with opened_store(Settings.from_env()) as store:
        result = await set_provisioning(store, enabled)
        await audit_trail.record(store, actor, result.operation)
    return json_response(result.document())


@translated
async def restart_job(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """{"scopes"?: ["Watermark", "Escrows", "QuarantineState", "ForceDeletes", "Full"]} (none = portal restart)."""
    raw = body(req).get("scopes")
    if raw is not None and not (
        isinstance(raw, str) or (isinstance(raw, list) and all(isinstance(s, str) for s in raw))
    ):
        raise InvalidInput("scopes", "must be a list of reset scope names (or one comma-separated string)")
    scopes = parse_scopes(raw)
    async with opened_store(Settings.from_env()) as store:
        result = await restart(store, scopes)
        await audit_trail.record(store, actor, "restart", target=", ".join(result.scopes), detail=result.document())
    return json_response(result.document())


@translated
async def allow_deletes_now(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """{"now"?: bool}: let the next cycle carry out the held deletions (and run it now)."""
    now = boolean(body(req), "now", False)
    settings = Settings.from_env()
    async with opened_store(settings) as store:
        result = await allow_deletes(store)
        doc = result.document()
        entry = await audit_trail.record(store, actor, "allow-deletes", detail={"heldDeletes": result.held_deletes})
    if now:
        async with open_runtime(settings) as rt:
            cycle = await rt.engine.run_cycle(initiated_by=Initiator.ADMIN)
            doc["cycle"] = cycle.summary()
            await audit_trail.record(
                rt.store, actor, "run cycle", cycle_id=cycle.cycle_id, detail={"afterAuditEntry": entry.entry_id}
            )
    return json_response(doc)


@translated
async def status(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    settings = Settings.from_env()
    async with opened_store(settings) as store:
        return json_response(await load_status(store, settings))


@translated
async def overview(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """The status with the running cycle's rate, the last cycles, the quarantine's fix and the held deletions."""
    settings = Settings.from_env()
    async with opened_store(settings) as store:
        return json_response(await load_overview(store, settings))


@translated
async def health(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """Graph subscriptions, the last notification, the notification queue's depth (and its poison queue's)."""
    settings = Settings.from_env()
    async with opened_store(settings) as store:
        return json_response(await realtime_health(store, settings, lambda name: queue_length(settings, name)))


@translated
async def seats(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """GoTo's licenses: seats bought, seats in use, the app roles that grant each (ROLE_LICENSES)."""
    settings = Settings.from_env()
    async with open_runtime(settings) as rt:
        assert rt.admin is not None
        return json_response(await load_seats(rt.admin, settings.role_licenses))


@translated
async def mapping_preview(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """?user=<UPN, mail or object id>: each target attribute, its source values and result; writes nothing."""
    from shared.ops.preview import preview_user

    user = param(req, "user")
    if user is None:
        raise InvalidInput("user", "is required: a UPN, a mail address or an object id")
    async with open_runtime(Settings.from_env()) as rt:
        preview = await preview_user(rt, user)
    return json_response(preview.document())


def _limit(value: str | None, default: int, most: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise InvalidInput("limit", f"must be a whole number from 1 to {most}, got {value!r}")
    return int(value)


def log_query(req: func.HttpRequest) -> LogQuery:
    action, state, since, until = param(req, "action"), param(req, "status"), param(req, "since"), param(req, "until")
    initiator = param(req, "initiator")
    return LogQuery(
        user=param(req, "user"),
        action=parse_action(action) if action else None,
        status=parse_status(state) if state else None,
        cycle_id=param(req, "cycle"),
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
        limit=_limit(param(req, "limit"), LOGS_DEFAULT_LIMIT, LOGS_MAX_LIMIT),
        initiated_by=parse_initiator(initiator) if initiator else None,
    )


def _download(data: bytes, mimetype: str, filename: str) -> func.HttpResponse:
    return func.HttpResponse(
        data,
        status_code=200,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@translated
async def logs(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """?user=&action=&status=&cycle=&initiator=&since=&until=&limit=&format=json|csv&download=1
    (csv: a zip of Entra's three files; download=1: JSON as a file)."""
    fmt = (req.params.get("format") or "json").lower()
    if fmt not in ("json", "csv"):
        raise InvalidInput("format", f"must be json or csv, got {fmt!r}")
    query = log_query(req)
    async with opened_store(Settings.from_env()) as store:
        entries = await query.run(store)
    if fmt == "csv":
        return _download(csv_zip(entries), "application/zip", "ProvisioningLogs.zip")
    doc: dict[str, Any] = {"count": len(entries), "limit": query.limit, "entries": [log_document(e) for e in entries]}
    if param(req, "download") == "1":
        return _download(json_response(doc).get_body(), "application/json", "ProvisioningLogs.json")
    return json_response(doc)


@translated
async def log_entry(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """?changeId=&time=: one entry, with the fix for its error code and the admin who asked for it."""
    async with opened_store(Settings.from_env()) as store:
        return json_response(await load_entry(store, param(req, "changeId"), param(req, "time")))


@translated
async def audit(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
    """?limit=: the newest admin actions (who, what, when, how it ended)."""
    limit = _limit(param(req, "limit"), 50, AUDIT_MAX_LIMIT)
    async with opened_store(Settings.from_env()) as store:
        return json_response({"entries": await audit_trail.recent(store, limit)})


OPERATIONS: dict[str, Operation] = {
    "provision": Operation("POST", provision, writes=True),
    "dry-run": Operation("POST", dry_run),
    "drift": Operation("POST", drift, writes=True),
    "test-connection": Operation("GET", test_connection),
    "provisioning": Operation("POST", provisioning, writes=True),
    "restart": Operation("POST", restart_job, writes=True),
    "allow-deletes": Operation("POST", allow_deletes_now, writes=True),
    "status": Operation("GET", status),
    "overview": Operation("GET", overview),
    "health": Operation("GET", health),
    "seats": Operation("GET", seats),
    "mapping-preview": Operation("GET", mapping_preview),
    "logs": Operation("GET", logs),
    "log-entry": Operation("GET", log_entry),
    "audit": Operation("GET", audit),
}
