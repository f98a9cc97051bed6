"""Telemetry: no-op (and not even imported) without a connection string; real OpenTelemetry
instruments with one; an in-memory double for tests of the engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry

ROOT = Path(__file__).parents[2]


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_without_a_connection_string_everything_is_a_no_op_and_the_distro_is_not_imported():
    done = run(
        "import sys\n"
        "from shared import telemetry as t\n"
        "m = t.configure_from_env()\n"
        "t.record_action('Create', 'Success'); t.record_cycle('incremental', 1.5)\n"
        "t.record_webhook_latency(0.2); t.record_goto_429()\n"
        "assert type(m).__name__ == 'NoopMetrics', m\n"
        "assert not [n for n in sys.modules if n.startswith('azure.monitor')]\n"
        "print('ok')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_with_a_connection_string_the_distro_is_configured_once_with_logs_off_and_urls_scrubbed():
    """The pinned distro overwrites its disable_logging argument with what OTEL_LOGS_EXPORTER says,
    so that variable is "none" while it configures itself, and as it was afterwards."""
    code = (
        "import os\n"
        "import azure.monitor.opentelemetry as d\n"
        "calls = []\n"
        "d.configure_azure_monitor = lambda **kw: calls.append((kw, os.environ.get('OTEL_LOGS_EXPORTER')))\n"
        "from shared import telemetry as t\n"
        "m = t.configure_from_env(); t.configure_from_env()\n"
        "t.record_action('Create', 'Success'); t.record_goto_429()\n"
        "assert type(m).__name__ == 'OpenTelemetryMetrics', m\n"
        "assert len(calls) == 1, calls\n"
        "kw, logs_exporter = calls[0]\n"
        "assert logs_exporter == 'none', logs_exporter\n"
        "assert os.environ.get('OTEL_LOGS_EXPORTER') == 'otlp'\n"
        "assert kw['connection_string'].startswith('InstrumentationKey='), kw\n"
        "assert [type(p).__name__ for p in kw['span_processors']] == ['ScrubbingSpanProcessor'], kw\n"
        "print('ok')\n"
    )
    cs = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
    done = run(code, APPLICATIONINSIGHTS_CONNECTION_STRING=cs, OTEL_LOGS_EXPORTER="otlp")
    assert done.returncode == 0, done.stderr
    assert cs not in done.stdout + done.stderr  # the connection string is never logged


def test_an_unresolved_key_vault_reference_turns_telemetry_off_with_a_warning():
    done = run(
        "import logging; logging.basicConfig()\n"
        "from shared import telemetry as t\n"
        "assert type(t.configure_from_env()).__name__ == 'NoopMetrics'\n",
        APPLICATIONINSIGHTS_CONNECTION_STRING="@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/ai/)",
    )
    assert done.returncode == 0, done.stderr
    assert "Key Vault reference" in done.stderr


def test_span_urls_keep_their_path_but_not_query_values_nor_user_info():
    assert (
        telemetry.scrub_url('https://u:p@api.getgo.com/identity/v1/Users?filter=userName eq "a@b.c"&startIndex=1')
        == "https://api.getgo.com/identity/v1/Users?filter=***&startIndex=***"
    )
    assert telemetry.scrub_url("/v1.0/users/delta()?$deltatoken=abc") == "/v1.0/users/delta()?$deltatoken=***"
    assert telemetry.scrub_query("code=k&x=") == "code=***&x=***"
    assert telemetry.scrub_url("https://graph.microsoft.com/v1.0/users") == "https://graph.microsoft.com/v1.0/users"


def test_the_real_distro_starts_with_a_connection_string():
    """The real configure_azure_monitor (no network needed to start; exports are async)."""
    code = (
        "from shared import telemetry as t\n"
        "m = t.configure_from_env()\n"
        "t.record_action('Update', 'Failure'); t.record_cycle('initial', 3.0)\n"
        "assert type(m).__name__ == 'OpenTelemetryMetrics', m\n"
        "print('ok')\n"
    )
    cs = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
    done = run(code, APPLICATIONINSIGHTS_CONNECTION_STRING=cs, OTEL_METRIC_EXPORT_INTERVAL="600000")
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_open_telemetry_instruments_record_names_units_and_attributes():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    m = telemetry.OpenTelemetryMetrics(provider)
    m.record_action("Create", "Success")
    m.record_action("Create", "Success")
    m.record_action("Disable", "Failure")
    m.record_cycle("incremental", 2.5)
    m.record_webhook_latency(0.8)
    m.record_goto_429()
    data = reader.get_metrics_data()
    points = {
        metric.name: (metric.unit, [(dict(p.attributes), getattr(p, "value", None) or getattr(p, "sum", None))
                                    for p in metric.data.data_points])
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }  # fmt: skip
    assert points[telemetry.ACTIONS][0] == "1"
    assert sorted(points[telemetry.ACTIONS][1], key=str) == sorted(
        [({"action": "Create", "status": "Success"}, 2), ({"action": "Disable", "status": "Failure"}, 1)], key=str
    )
    assert points[telemetry.CYCLE_DURATION] == ("s", [({"kind": "incremental"}, 2.5)])
    assert points[telemetry.WEBHOOK_LATENCY] == ("s", [({}, 0.8)])
    assert points[telemetry.GOTO_THROTTLED] == ("1", [({}, 1)])
    provider.shutdown()


def test_the_in_memory_double_counts_what_the_engine_records():
    with telemetry.recording() as recorded:
        telemetry.record_action("Create", "Success")
        telemetry.record_action("Create", "Failure")
        telemetry.record_cycle("initial", 12.0)
        telemetry.record_webhook_latency(1.25)
        telemetry.record_goto_429()
        telemetry.record_goto_429()
    assert recorded.total(telemetry.ACTIONS) == 2
    assert recorded.total(telemetry.ACTIONS, status="Failure") == 1
    assert recorded.values(telemetry.CYCLE_DURATION) == [12.0]
    assert recorded.values(telemetry.WEBHOOK_LATENCY) == [1.25]
    assert recorded.total(telemetry.GOTO_THROTTLED) == 2
    assert isinstance(telemetry.metrics(), telemetry.NoopMetrics)  # restored after the block


def test_telemetry_never_stops_the_app():
    code = (
        "import azure.monitor.opentelemetry as d\n"
        "def broken(**kw): raise RuntimeError('exporter down')\n"
        "d.configure_azure_monitor = broken\n"
        "from shared import telemetry as t\n"
        "m = t.configure_from_env()\n"  # a wrong GOTO_PATCH_STYLE does not matter here either
        "t.record_action('Create', 'Success')\n"
        "assert type(m).__name__ == 'NoopMetrics', m\n"
        "print('ok')\n"
    )
    cs = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
    done = run(
        "import logging; logging.basicConfig()\n" + code,
        APPLICATIONINSIGHTS_CONNECTION_STRING=cs,
        GOTO_PATCH_STYLE="json-patch",
    )
    assert done.returncode == 0, done.stderr
    assert "could not be configured: RuntimeError" in done.stderr
