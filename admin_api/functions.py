"""The admin HTTP endpoints for scripts: one function per operation of admin_api/operations.py,
at /api/ops/<operation>, function-key protected (`?code=` or `x-functions-key`). The caller is
recorded in the audit trail as a function-key holder: a key names no person.

Routes live under `ops/` (URL `/api/ops/...`), not `admin/`: the Functions host reserves every
route that starts with "admin" for its own admin API and refuses to load such a function
("The specified route conflicts with one or more built in routes", azure-functions-host #1781).

Errors: 400 bad input, naming the field; 404 user, group or log entry not found; 409 a cycle is
running; 500 a missing or wrong app setting; 502 GoTo or Graph refused; 503 storage
unreachable, or a failed test connection. Every error body is
{"error": {"code", "message", "field"?, "fix"?}}.
"""

from __future__ import annotations

import azure.functions as func

from admin_api.operations import OPERATIONS
from shared.ops.audit import FUNCTION_KEY

bp = func.Blueprint()

# Function names as the host lists them (kept from the first release: scripts and alerts use them).
FUNCTION_NAMES = {
    "provision": "ops_provision",
    "dry-run": "ops_dry_run",
    "drift": "ops_drift",
    "test-connection": "ops_test_connection",
    "provisioning": "ops_provisioning",
    "restart": "ops_restart",
    "allow-deletes": "ops_allow_deletes",
    "status": "ops_status",
    "overview": "ops_overview",
    "health": "ops_health",
    "seats": "ops_seats",
    "mapping-preview": "ops_mapping_preview",
    "logs": "ops_logs",
    "log-entry": "ops_log_entry",
    "audit": "ops_audit",
}


def _register(name: str) -> None:
    operation = OPERATIONS[name]

    async def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        return await operation.handler(req, FUNCTION_KEY)

    endpoint.__name__ = endpoint.__qualname__ = FUNCTION_NAMES[name]
    endpoint.__doc__ = operation.handler.__doc__
    bp.function_name(FUNCTION_NAMES[name])(
        bp.route(route=f"ops/{name}", methods=[operation.method], auth_level=func.AuthLevel.FUNCTION)(endpoint)
    )


for _name in OPERATIONS:
    _register(_name)
