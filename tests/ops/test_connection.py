"""Test connection: GoTo answers a filter on a random userName with an empty list, Graph reads
the service principal and its assignments, storage is reachable; and each way it fails names
the cause and the fix (revoked or garbage GoTo credentials, wrong service principal id, Graph
403, GoTo or storage not reachable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulators.goto.model import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT
from shared.ops.connection import check_connection
from tests.fixtures.ports import closed_port
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http, use_env


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def test_everything_reachable(ops_world: Callable[..., World], cli: CliRun) -> None:
    world = ops_world(users=6, assign=4)
    world.goto.counters.reset()
    code, doc = cli("test-connection", "--json")
    assert code == 0 and doc["ok"] is True
    checks = by_name(doc)
    assert 'GET /Users?filter=userName eq "' in checks["GoTo"]["detail"]
    assert "4 user(s) and 0 group(s) assigned" in checks["Microsoft Graph"]["detail"]
    assert "MeetingOrganizer" in checks["Microsoft Graph"]["detail"]
    assert checks["Storage"]["ok"] is True
    assert world.goto.counters.writes() == 0


async def test_a_refused_first_token_is_refreshed_once(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    world.goto.faults.inject(401, path="/identity/v1/Users", count=1)
    report = await check_connection(world.settings)
    goto = report.checks[0]
    assert goto.ok and "after getting a new access token" in goto.detail


async def test_garbage_goto_token_says_authorize_again(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    report = await check_connection(world.settings.with_overrides(goto_access_token="not-a-token"))
    goto = report.checks[0]
    assert not report.ok and not goto.ok and goto.code == "Unauthorized"
    assert "GOTO_ACCESS_TOKEN" in goto.detail and "authorize GoTo again" in goto.fix
    assert all(c.ok for c in report.checks[1:])  # one failing part does not hide the others


def test_revoked_goto_credentials_say_authorize_again(
    ops_world: Callable[..., World], cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ops_world()
    oauth = {"goto_access_token": "", "goto_client_id": DEFAULT_CLIENT_ID, "goto_client_secret": DEFAULT_CLIENT_SECRET,
             "goto_pat": DEFAULT_PAT}  # fmt: skip
    use_env(world, monkeypatch, **oauth)
    assert cli("test-connection", "--json")[1]["ok"] is True  # the PAT grant works...
    world.goto.revoke_pat(DEFAULT_PAT)
    code, doc = cli("test-connection", "--json")  # ...until the PAT is revoked
    goto = by_name(doc)["GoTo"]
    assert code == 1 and goto["code"] == "Unauthorized"
    assert "token endpoint refused" in goto["detail"] and "invalid_grant" in goto["detail"]
    assert "authorize GoTo again" in goto["fix"]


async def test_goto_not_reachable(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    report = await check_connection(
        world.settings.with_overrides(goto_scim_url=f"http://127.0.0.1:{closed_port()}/identity/v1")
    )
    goto = report.checks[0]
    assert goto.code == "Unreachable" and "cannot reach GoTo" in goto.detail and "GOTO_SCIM_URL" in goto.fix


async def test_wrong_service_principal_id(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    report = await check_connection(
        world.settings.with_overrides(service_principal_id="6a1b8a3e-0000-4000-8000-000000000000")
    )
    graph = report.checks[1]
    assert graph.code == "NotFound" and "not found" in graph.detail
    assert "ENTRA_SERVICE_PRINCIPAL_ID" in graph.fix


async def test_graph_403_names_the_permissions(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    world.graph.faults.inject(403, path="appRoleAssignedTo")
    report = await check_connection(world.settings)
    graph = report.checks[1]
    assert graph.code == "Forbidden"
    for permission in ("Application.Read.All", "User.Read.All", "GroupMember.Read.All"):
        assert permission in graph.fix


async def test_graph_not_reachable(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    report = await check_connection(
        world.settings.with_overrides(graph_base_url=f"http://127.0.0.1:{closed_port()}/v1.0")
    )
    graph = report.checks[1]
    assert graph.code == "Unreachable" and "GRAPH_BASE_URL" in graph.fix


async def test_storage_not_reachable(ops_world: Callable[..., World]) -> None:
    world = ops_world()
    conn = world.settings.storage_connection_string
    table_endpoint = next(p for p in conn.split(";") if p.startswith("TableEndpoint="))
    broken = conn.replace(table_endpoint, f"TableEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1")
    report = await check_connection(world.settings.with_overrides(storage_connection_string=broken))
    storage = report.checks[2]
    assert storage.code == "Unreachable" and "cannot reach" in storage.detail
    assert "GOTOSYNC_STORAGE" in storage.fix and "Storage Table Data Contributor" in storage.fix
    assert report.checks[0].ok and report.checks[1].ok


async def test_http_answers_200_when_all_work_and_503_with_the_fix_when_not(
    ops_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = ops_world()
    status, doc = await http("ops_test_connection")
    assert status == 200 and doc["ok"] is True
    use_env(world, monkeypatch, goto_access_token="revoked")
    status, doc = await http("ops_test_connection")
    assert status == 503 and by_name(doc)["GoTo"]["code"] == "Unauthorized"
    assert "authorize GoTo again" in by_name(doc)["GoTo"]["fix"]
