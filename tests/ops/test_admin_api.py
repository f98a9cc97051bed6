"""The admin Blueprint as the host loads it: every endpoint function-key protected, none on a
route the host reserves, and a wrong app setting answered as JSON naming it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.world import World
from tests.ops.conftest import FUNCTIONS, ROUTES, http

ENDPOINTS = {
    "ops_provision": ("POST", "ops/provision"),
    "ops_dry_run": ("POST", "ops/dry-run"),
    "ops_drift": ("POST", "ops/drift"),
    "ops_test_connection": ("GET", "ops/test-connection"),
    "ops_provisioning": ("POST", "ops/provisioning"),
    "ops_restart": ("POST", "ops/restart"),
    "ops_allow_deletes": ("POST", "ops/allow-deletes"),
    "ops_status": ("GET", "ops/status"),
    "ops_logs": ("GET", "ops/logs"),
    "ops_overview": ("GET", "ops/overview"),
    "ops_health": ("GET", "ops/health"),
    "ops_seats": ("GET", "ops/seats"),
    "ops_mapping_preview": ("GET", "ops/mapping-preview"),
    "ops_log_entry": ("GET", "ops/log-entry"),
    "ops_audit": ("GET", "ops/audit"),
}


def test_every_admin_endpoint_is_registered_with_a_function_key() -> None:
    for name, (method, route) in ENDPOINTS.items():
        trigger = FUNCTIONS[name].get_trigger()
        assert trigger.type == "httpTrigger"
        assert ROUTES[name] == route
        assert [m.value for m in trigger.methods] == [method]
        assert trigger.auth_level.value == "function"


def test_no_function_or_route_starts_with_a_name_the_host_reserves() -> None:
    # The Functions host refuses routes and function names beginning with "admin" (its admin
    # API) or "runtime" (its webhooks): "The specified route conflicts with one or more built
    # in routes" (azure-functions-host #1781).
    for name, route in ROUTES.items():
        assert not name.lower().startswith(("admin", "runtime")), name
        assert not (route or "").lower().startswith(("admin", "runtime")), route


async def test_a_wrong_setting_is_a_json_500_naming_it(
    ops_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    ops_world()
    monkeypatch.setenv("DELETION_THRESHOLD", "lots")
    status, body = await http("ops_status")
    assert status == 500 and body["error"]["code"] == "Misconfigured"
    assert "DELETION_THRESHOLD" in body["error"]["message"]
