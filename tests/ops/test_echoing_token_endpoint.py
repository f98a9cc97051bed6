"""A token endpoint that echoes the request (a wrong GOTO_TOKEN_URL, a debugging proxy, an
intermediary's error page) gets gotosync's HTTP Basic credential and its URL-encoded refresh
token in every answer. None of it may come out anywhere: stdout, stderr, log records, any table
(the job's quarantine reason, provisioning logs), `gotosync status`, `GET /api/ops/status`,
test-connection, the admin API's errors and the log exports. (Telemetry: test_telemetry_export.)
GoTo's own error code must still be there."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import zipfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pytest
from azure.data.tables.aio import TableServiceClient

from shared import redaction
from tests.fixtures.hostile import STYLES, EchoingTokenEndpoint, assert_no_secret
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http, use_env

CLIENT_ID = "gotosync-client-7d1e"
CLIENT_SECRET = "cs-Zq8!vL2/pX9+tR4=wK"
REFRESH_TOKEN = "rt-Hn5_bG7mQ2-xV9sLpD3k"
SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()]


@pytest.fixture
def echo(request: pytest.FixtureRequest) -> Iterator[EchoingTokenEndpoint]:
    endpoint = EchoingTokenEndpoint(request.param)
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    # Each test starts without registered secrets: what it proves, the patterns prove too.
    redaction.forget_all()
    yield
    redaction.forget_all()


def echoing_world(ops_world: Callable[..., World], echo: EchoingTokenEndpoint, tmp_path: Path, monkeypatch) -> World:
    world = ops_world(users=4, assign=2)
    oauth = {"goto_access_token": "", "goto_client_id": CLIENT_ID, "goto_client_secret": CLIENT_SECRET,
             "goto_refresh_token": REFRESH_TOKEN, "goto_token_url": echo.token_url,
             "goto_refresh_token_file": str(tmp_path / "token")}  # fmt: skip
    world.settings = world.settings.with_overrides(**oauth)
    use_env(world, monkeypatch)
    return world


async def table_dump(world: World) -> str:
    """Every entity of every table of this world's prefix, as text."""
    s = world.settings
    out: list[str] = []
    async with TableServiceClient.from_connection_string(s.storage_connection_string) as service:
        async for table in service.list_tables():
            if not table.name.startswith(s.table_prefix):
                continue
            async for entity in service.get_table_client(table.name).list_entities():
                out.append(json.dumps(dict(entity), default=str))
    return "\n".join(out)


@pytest.mark.parametrize("echo", STYLES, indirect=True)
def test_no_secret_from_an_echoing_token_endpoint_reaches_any_output(
    ops_world: Callable[..., World],
    echo: EchoingTokenEndpoint,
    cli: CliRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = echoing_world(ops_world, echo, tmp_path, monkeypatch)
    caplog.set_level(logging.INFO)
    seen: dict[str, str] = {}

    code, out = cli("sync")
    seen["sync"] = str(out)
    assert code == 5
    assert echo.requests >= 1  # the credentials really went to the echoing endpoint
    for argv in (["status"], ["status", "--json"], ["test-connection"], ["test-connection", "--json"],
                 ["provision", world.upn(world.assigned_user_ids()[0]), "--json"], ["logs", "--json"],
                 ["logs", "--csv", str(tmp_path / "csv")]):  # fmt: skip
        seen[" ".join(argv)] = json.dumps(cli(*argv)[1], default=str)
    for path in (tmp_path / "csv").glob("*.csv"):
        seen[path.name] = path.read_text(encoding="utf-8")

    async def http_and_tables() -> None:
        for name in ("ops_status", "ops_test_connection", "ops_logs"):
            seen[name] = json.dumps(await http(name), default=str)
        status, response = await http("ops_logs", params={"format": "csv"})
        assert status == 200
        with zipfile.ZipFile(BytesIO(response.get_body())) as archive:
            seen["ops_logs csv"] = "\n".join(archive.read(n).decode() for n in archive.namelist())
        seen["ops_provision"] = json.dumps(
            await http("ops_provision", "POST", {"user": world.upn(world.assigned_user_ids()[0])})
        )
        seen["tables"] = await table_dump(world)

    asyncio.run(http_and_tables())
    seen["log records"] = "\n".join(r.getMessage() for r in caplog.records)

    for where, text in seen.items():
        assert_no_secret(text, SECRETS, where)
    # What an admin needs is still there: the status code, and GoTo's error code when it sent one.
    status_doc = json.loads(seen["status --json"])
    if echo.style == "json-400":
        assert "invalid_grant" in status_doc["quarantine"] and "HTTP 400" in status_doc["quarantine"]
        assert "invalid_grant" in seen["test-connection --json"]
    elif echo.style == "text-401":
        assert "HTTP 401" in status_doc["quarantine"]
    else:
        assert "HTTP 500" in seen["test-connection --json"]
