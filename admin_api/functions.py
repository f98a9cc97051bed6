"""The admin HTTP endpoints: JSON in, JSON (or a CSV zip) out, each a thin translation of one
shared/ops call. Function-key protected (`?code=` or `x-functions-key`).

Routes live under `ops/` (URL `/api/ops/...`), not `admin/`: the Functions host reserves every
route that starts with "admin" for its own admin API and refuses to load such a function
("The specified route conflicts with one or more built in routes", azure-functions-host #1781).

Errors: 400 bad input, naming the field; 404 user or group not found; 409 a cycle is running;
500 a missing or wrong app setting; 502 GoTo or Graph refused; 503 storage unreachable, or a
failed test connection. Every error body is {"error": {"code", "message", "field"?, "fix"?}}.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from shared.engine.cycle import CycleNotRun, PlanRefused
from shared.entra.reader import GraphReadError
from shared.goto.errors import AuthError, GoToError
from shared.goto.token_store import CredentialStoreError
from shared.model import Initiator
from shared.ops import CycleRunning, InvalidInput, NotFound, OpsError
from shared.ops.connection import AUTHORIZE_AGAIN, check_connection
from shared.ops.control import allow_deletes, parse_scopes, restart, set_provisioning
from shared.ops.identifiers import on_demand_target
from shared.ops.logs_export import LogQuery, csv_zip, log_document, parse_action, parse_status, parse_time
from shared.ops.on_demand import provision_on_demand
from shared.ops.report import dry_run_document
from shared.ops.status import load_status
from shared.redaction import scrub
from shared.runtime import open_runtime, opened_store
from shared.settings import Settings, SettingsError
from shared.store import StoreError
from shared.store.lease import LeaseLost

bp = func.Blueprint()
log = logging.getLogger("gotosync.admin_api")

LOGS_DEFAULT_LIMIT = 1000
LOGS_MAX_LIMIT = 50_000

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def _json(doc: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(doc, default=str), status_code=status, mimetype="application/json")


def _error(status: int, code: str, message: str, **extra: str) -> func.HttpResponse:
    # Messages may quote upstream answers: scrubbed (shared.redaction) before they leave.
    return _json({"error": {"code": code, "message": scrub(message), **extra}}, status)


def _translated(handler: Handler) -> Handler:
    """Turns the errors of shared/ops and of the services into HTTP answers, in one place."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except InvalidInput as exc:
            return _error(400, "BadRequest", exc.detail, field=exc.field)
        except NotFound as exc:
            return _error(404, "NotFound", str(exc))
        except (CycleRunning, CycleNotRun) as exc:
            return _error(409, "CycleRunning" if isinstance(exc, CycleRunning) else "CycleNotRun", str(exc))
        except LeaseLost as exc:
            return _error(409, "LeaseLost", str(exc))
        except PlanRefused as exc:
            return _error(422, "DuplicateTargetValues", str(exc), fix="fix the userName mapping, then restart")
        except OpsError as exc:
            return _error(400, "BadRequest", str(exc))
        except SettingsError as exc:
            log.error("configuration error: %s", exc)
            return _error(500, "Misconfigured", str(exc))
        except CredentialStoreError as exc:
            return _error(503, exc.code, str(exc))
        except AuthError as exc:
            return _error(502, "Unauthorized", f"GoTo refused the credentials: {exc}", fix=AUTHORIZE_AGAIN)
        except GoToError as exc:
            return _error(502, exc.code, f"GoTo: {exc}")
        except GraphReadError as exc:
            return _error(502, exc.code, str(exc), fix="GET /api/ops/test-connection says what to fix")
        except StoreError as exc:
            return _error(503, "StorageUnavailable", str(exc))

    return wrapper


def _body(req: func.HttpRequest) -> dict[str, Any]:
    raw = req.get_body()
    if not raw or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    return data


def _bool(data: dict[str, Any], name: str, default: bool | None = None) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(
            name, "is required: true or false" if value is None else f"must be true or false, got {value!r}"
        )
    return value


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(name, "must be a non-empty string")
    return value


@bp.function_name("ops_provision")
@bp.route(route="ops/provision", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_provision(req: func.HttpRequest) -> func.HttpResponse:
    """{"user": "<UPN, mail or object id>"} or {"group": "<object id or name>"}, "dryRun"?: bool."""
    data = _body(req)
    user, group, dry_run = _text(data, "user"), _text(data, "group"), _bool(data, "dryRun", False)
    user, group = on_demand_target(user, group)  # a bad identifier is a 400 before anything opens
    async with open_runtime(Settings.from_env()) as rt:
        outcome = await provision_on_demand(rt, user=user, group=group, dry_run=dry_run)
    return _json(outcome.document())


@bp.function_name("ops_dry_run")
@bp.route(route="ops/dry-run", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_dry_run(req: func.HttpRequest) -> func.HttpResponse:
    """{"full"?: bool (default true), "includeUnchanged"?: bool}: the plan, nothing written."""
    data = _body(req)
    full, include_unchanged = _bool(data, "full", True), _bool(data, "includeUnchanged", False)
    async with open_runtime(Settings.from_env()) as rt:
        result = await rt.engine.run_cycle(full=full, dry_run=True, initiated_by=Initiator.ADMIN)
    return _json(dry_run_document(result, include_unchanged=include_unchanged))


@bp.function_name("ops_test_connection")
@bp.route(route="ops/test-connection", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_test_connection(req: func.HttpRequest) -> func.HttpResponse:
    """200 when GoTo, Graph and storage all work; 503 otherwise (same body: each check, and its fix)."""
    report = await check_connection(Settings.from_env())
    return _json(report.document(), 200 if report.ok else 503)


@bp.function_name("ops_provisioning")
@bp.route(route="ops/provisioning", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_provisioning(req: func.HttpRequest) -> func.HttpResponse:
    """{"enabled": bool}: start or stop provisioning."""
    enabled = _bool(_body(req), "enabled")
    async with opened_store(Settings.from_env()) as store:
        result = await set_provisioning(store, enabled)
    return _json(result.document())


@bp.function_name("ops_restart")
@bp.route(route="ops/restart", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_restart(req: func.HttpRequest) -> func.HttpResponse:
    """{"scopes"?: ["Watermark", "Escrows", "QuarantineState", "ForceDeletes", "Full"]} (none = portal restart)."""
    raw = _body(req).get("scopes")
    if raw is not None and not (
        isinstance(raw, str) or (isinstance(raw, list) and all(isinstance(s, str) for s in raw))
    ):
        raise InvalidInput("scopes", "must be a list of reset scope names (or one comma-separated string)")
    scopes = parse_scopes(raw)
    async with opened_store(Settings.from_env()) as store:
        result = await restart(store, scopes)
    return _json(result.document())


@bp.function_name("ops_allow_deletes")
@bp.route(route="ops/allow-deletes", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_allow_deletes(req: func.HttpRequest) -> func.HttpResponse:
    """{"now"?: bool}: let the next cycle carry out the held deletions (and run it now)."""
    now = _bool(_body(req), "now", False)
    settings = Settings.from_env()
    async with opened_store(settings) as store:
        doc = (await allow_deletes(store)).document()
    if now:
        async with open_runtime(settings) as rt:
            doc["cycle"] = (await rt.engine.run_cycle(initiated_by=Initiator.ADMIN)).summary()
    return _json(doc)


@bp.function_name("ops_status")
@bp.route(route="ops/status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_status(req: func.HttpRequest) -> func.HttpResponse:
    settings = Settings.from_env()
    async with opened_store(settings) as store:
        return _json(await load_status(store, settings))


def _log_query(params: Any) -> LogQuery:
    def param(name: str) -> str | None:
        value = params.get(name)
        return value if value else None

    limit_text = param("limit")
    limit = LOGS_DEFAULT_LIMIT
    if limit_text is not None:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= LOGS_MAX_LIMIT:
            raise InvalidInput("limit", f"must be a whole number from 1 to {LOGS_MAX_LIMIT}, got {limit_text!r}")
        limit = int(limit_text)
    action, status, since, until = param("action"), param("status"), param("since"), param("until")
    return LogQuery(
        user=param("user"),
        action=parse_action(action) if action else None,
        status=parse_status(status) if status else None,
        cycle_id=param("cycle"),
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
        limit=limit,
    )


@bp.function_name("ops_logs")
@bp.route(route="ops/logs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_translated
async def ops_logs(req: func.HttpRequest) -> func.HttpResponse:
    """?user=&action=&status=&cycle=&since=&until=&limit=&format=json|csv (csv: a zip of Entra's three files)."""
    fmt = (req.params.get("format") or "json").lower()
    if fmt not in ("json", "csv"):
        raise InvalidInput("format", f"must be json or csv, got {fmt!r}")
    query = _log_query(req.params)
    async with opened_store(Settings.from_env()) as store:
        entries = await query.run(store)
    if fmt == "csv":
        return func.HttpResponse(
            csv_zip(entries),
            status_code=200,
            mimetype="application/zip",
            headers={"Content-Disposition": 'attachment; filename="ProvisioningLogs.zip"'},
        )
    return _json({"count": len(entries), "limit": query.limit, "entries": [log_document(e) for e in entries]})
