"""What actually reaches Application Insights, decoded at a local ingestion endpoint (the
IngestionEndpoint of the connection string): metrics and call traces go, log records do not
(the Functions host already sends each one; the pinned distro would send it a second time), and
no secret, user name filter or delta token is in any of it. Real distro, real exporter, in a
child process that flushes at exit."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.hostile import EchoingTokenEndpoint, IngestionEndpoint, assert_no_secret
from tests.fixtures.world import World

ROOT = Path(__file__).parents[2]
SECRET = "rt-Ingest9_Zq7-sLm2pXv4"
UPN_FILTER = 'userName eq "alice.secret@contoso.com"'


@pytest.fixture
def ingestion() -> Iterator[IngestionEndpoint]:
    endpoint = IngestionEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.stop()


def run_child(
    code: str, connection_string: str, tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    environ = {
        **base,
        **(env or {}),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string,
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # no statsbeat to Microsoft's endpoint
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",  # metrics leave once, at exit
        "OTEL_TRACES_SAMPLER": "always_on",  # the default rate-limited sampler may drop the one span
        "TMPDIR": str(tmp_path),  # the exporter's retry files
    }
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=180
    )


PROBE = """
import asyncio, logging, sys
import httpx
logging.basicConfig(level=logging.INFO)
from shared import telemetry
telemetry.configure_from_env()
log = logging.getLogger("gotosync.engine")
log.warning('GoTo filter %s, delta link ...?$deltatoken=abc, token %s', sys.argv[2], sys.argv[1])
log.error("an error line")
telemetry.record_action("Create", "Success")
telemetry.record_cycle("incremental", 1.5)

async def call():
    async with httpx.AsyncClient() as http:
        await http.get(sys.argv[3] + "/identity/v1/Users", params={"filter": sys.argv[2], "refresh_token": sys.argv[1]})

asyncio.run(call())
print("done")
"""


def test_metrics_and_call_traces_are_exported_log_records_are_not_and_nothing_secret(
    ingestion: IngestionEndpoint, tmp_path: Path
) -> None:
    cs = ingestion.start()
    base = cs.split("IngestionEndpoint=")[1].rstrip("/").replace("http://", "http://admin:pw@")
    done = run_child(PROBE, cs, tmp_path, SECRET, UPN_FILTER, base)
    assert done.returncode == 0, done.stderr
    kinds = ingestion.kinds()
    assert "MessageData" not in kinds and "ExceptionData" not in kinds, kinds  # no log record went
    metrics = {m["name"] for item in ingestion.of_kind("MetricData") for m in item["metrics"]}
    assert {"gotosync.actions", "gotosync.cycle.duration"} <= metrics
    calls = ingestion.of_kind("RemoteDependencyData")
    assert any(c.get("data", "").endswith("/identity/v1/Users?filter=***&refresh_token=***") for c in calls), calls
    text = ingestion.text()
    assert_no_secret(text, [SECRET, "alice.secret@contoso.com", "admin:pw"], "telemetry")
    assert "deltatoken=abc" not in text


CHILD_APP = """
import asyncio, logging
logging.basicConfig(level=logging.INFO)
import azure.functions as func
from azure.functions.timer import TimerRequest
import function_app
from emulators.functions_host import app_functions

F = app_functions(function_app.app)

async def main():
    try:
        await F["sync_cycle"].get_user_function()(TimerRequest())
    except Exception:
        logging.getLogger("host").exception("sync_cycle failed")  # as the Functions host reports it
    for name in ("ops_status", "ops_test_connection"):
        req = func.HttpRequest("GET", "http://localhost/api/ops", headers={}, params={}, route_params={}, body=b"")
        answer = await F[name].get_user_function()(req)
        print(name, answer.status_code, answer.get_body().decode())

asyncio.run(main())
"""


def test_the_function_app_with_an_echoing_token_endpoint_leaks_nothing_to_telemetry_or_output(
    make_world: Callable[..., World], ingestion: IngestionEndpoint, tmp_path: Path
) -> None:
    echo = EchoingTokenEndpoint("json-400")
    echo.start()
    try:
        world = make_world(users=3, assign=2)
        client_id, client_secret = "gotosync-client-1", "cs-Telemetry8/Secret+x="
        env = world.env(
            goto_access_token="",
            goto_client_id=client_id,
            goto_client_secret=client_secret,
            goto_refresh_token=SECRET,
            goto_token_url=echo.token_url,
            goto_refresh_token_file=str(tmp_path / "token"),
        )
        done = run_child(CHILD_APP, ingestion.start(), tmp_path, env=env)
    finally:
        echo.stop()
    assert done.returncode == 0, done.stderr
    assert echo.requests >= 1 and "ops_status 200" in done.stdout and "invalid_grant" in done.stdout
    secrets = [SECRET, client_secret, base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()]
    assert_no_secret(done.stdout, secrets, "stdout")
    assert_no_secret(done.stderr, secrets, "stderr")
    assert_no_secret(ingestion.text(), secrets, "telemetry")
    assert "MessageData" not in ingestion.kinds()
