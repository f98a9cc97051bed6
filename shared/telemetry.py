"""Telemetry: metrics (and GoTo/Graph call traces) to Application Insights through the Azure
Monitor OpenTelemetry distro when APPLICATIONINSIGHTS_CONNECTION_STRING is set; nothing otherwise.

The engine calls the small API below (``record_action``, ``record_cycle``, ...). Without a
connection string every call is a no-op and the distro is never imported, so tests, local runs
and cold starts do not pay for it. Nothing recorded here carries a user, a token or a secret:
attributes are action/status/kind names only.

Log records are not exported from here: the Functions host already forwards the worker's log
records to Application Insights, and a second copy would double every line. The pinned distro
ignores its ``disable_logging`` argument (it reads OTEL_LOGS_EXPORTER instead, overwriting the
argument), so :func:`configure` sets OTEL_LOGS_EXPORTER=none for the call. Call traces keep
their URL's path but not its query values (SCIM filters carry user names, Graph links carry
delta tokens) nor a user:password part.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

log = logging.getLogger("gotosync.telemetry")

METER_NAME = "gotosync"
ACTIONS = "gotosync.actions"
CYCLE_DURATION = "gotosync.cycle.duration"
WEBHOOK_LATENCY = "gotosync.webhook.latency"
GOTO_THROTTLED = "gotosync.goto.throttled"
WEBHOOK_COALESCED = "gotosync.webhook.coalesced"


class Metrics(Protocol):
    def record_action(self, action: str, status: str) -> None: ...

    def record_cycle(self, kind: str, seconds: float) -> None: ...

    def record_webhook_latency(self, seconds: float) -> None: ...

    def record_goto_429(self) -> None: ...

    def record_coalesced(self, users: int) -> None: ...


class NoopMetrics:
    def record_action(self, action: str, status: str) -> None:
        return None

    def record_cycle(self, kind: str, seconds: float) -> None:
        return None

    def record_webhook_latency(self, seconds: float) -> None:
        return None

    def record_goto_429(self) -> None:
        return None

    def record_coalesced(self, users: int) -> None:
        return None


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    attributes: dict[str, str] = field(default_factory=dict)


class InMemoryMetrics:
    """The test double: keeps every measurement, in order."""

    def __init__(self) -> None:
        self.measurements: list[Measurement] = []

    def record_action(self, action: str, status: str) -> None:
        self.measurements.append(Measurement(ACTIONS, 1, {"action": action, "status": status}))

    def record_cycle(self, kind: str, seconds: float) -> None:
        self.measurements.append(Measurement(CYCLE_DURATION, seconds, {"kind": kind}))

    def record_webhook_latency(self, seconds: float) -> None:
        self.measurements.append(Measurement(WEBHOOK_LATENCY, seconds))

    def record_goto_429(self) -> None:
        self.measurements.append(Measurement(GOTO_THROTTLED, 1))

    def record_coalesced(self, users: int) -> None:
        self.measurements.append(Measurement(WEBHOOK_COALESCED, users))

    def total(self, name: str, **attributes: str) -> float:
        return sum(
            m.value
            for m in self.measurements
            if m.name == name and all(m.attributes.get(k) == v for k, v in attributes.items())
        )

    def values(self, name: str) -> list[float]:
        return [m.value for m in self.measurements if m.name == name]


class OpenTelemetryMetrics:
    """Instruments on an OpenTelemetry meter (the global one that the distro configures)."""

    def __init__(self, meter_provider: Any = None) -> None:
        from opentelemetry import metrics

        meter = (meter_provider or metrics.get_meter_provider()).get_meter(METER_NAME)
        self._actions = meter.create_counter(ACTIONS, unit="1", description="Provisioning actions by action and status")
        self._cycles = meter.create_histogram(CYCLE_DURATION, unit="s", description="Duration of sync cycles")
        self._webhook = meter.create_histogram(
            WEBHOOK_LATENCY, unit="s", description="Graph change to GoTo applied, through the webhook path"
        )
        self._throttled = meter.create_counter(GOTO_THROTTLED, unit="1", description="429 answers from GoTo")
        self._coalesced = meter.create_counter(
            WEBHOOK_COALESCED, unit="1", description="Users a notification named that a newer read had already applied"
        )

    def record_action(self, action: str, status: str) -> None:
        self._actions.add(1, {"action": action, "status": status})

    def record_cycle(self, kind: str, seconds: float) -> None:
        self._cycles.record(seconds, {"kind": kind})

    def record_webhook_latency(self, seconds: float) -> None:
        self._webhook.record(seconds)

    def record_goto_429(self) -> None:
        self._throttled.add(1)

    def record_coalesced(self, users: int) -> None:
        self._coalesced.add(users)


# Span attributes that hold a URL (old and new HTTP semantic conventions).
URL_ATTRIBUTES = ("url.full", "http.url", "http.target", "url.query")
MASK = "***"


def scrub_query(query: str) -> str:
    """``a=1&b=2`` -> ``a=***&b=***``: the names stay (they say what was asked), the values go."""
    return "&".join(f"{quote(k, safe='$')}={MASK}" for k, _ in parse_qsl(query, keep_blank_values=True))


def scrub_url(value: str) -> str:
    """A URL, or a path with a query, without query values and without user:password@."""
    parts = urlsplit(value)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, scrub_query(parts.query), ""))


def scrub_span_urls(span: Any) -> None:
    """Rewrites the URL attributes of a span that has just started (HTTP client instrumentations
    set them at the start), before any exporter sees it."""
    attributes = getattr(span, "attributes", None) or {}
    for key in URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            span.set_attribute(key, scrub_query(value) if key == "url.query" else scrub_url(value))


def scrubbing_span_processor() -> Any:
    """An OpenTelemetry SpanProcessor running :func:`scrub_span_urls` on every span's start."""
    from opentelemetry.sdk.trace import SpanProcessor

    class ScrubbingSpanProcessor(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            scrub_span_urls(span)

    return ScrubbingSpanProcessor()


@contextmanager
def _logs_not_exported() -> Iterator[None]:
    """OTEL_LOGS_EXPORTER=none while the distro reads it, as it was afterwards."""
    before = os.environ.get("OTEL_LOGS_EXPORTER")
    os.environ["OTEL_LOGS_EXPORTER"] = "none"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OTEL_LOGS_EXPORTER", None)
        else:
            os.environ["OTEL_LOGS_EXPORTER"] = before


_lock = threading.Lock()
_metrics: Metrics = NoopMetrics()
_configured = False


def configure(connection_string: str) -> Metrics:
    """Turns telemetry on once per process when ``connection_string`` is set; else a no-op.

    Logs are left to the Functions host, which already forwards the worker's log records to
    Application Insights; exporting them here too would store every line twice.
    """
    global _metrics, _configured
    if connection_string.strip().lower().startswith("@microsoft.keyvault("):
        log.warning(
            "telemetry: APPLICATIONINSIGHTS_CONNECTION_STRING is a Key Vault reference App Service could not "
            "resolve; telemetry is off"
        )
        return _metrics
    if not connection_string:
        return _metrics
    with _lock:
        if _configured:
            return _metrics
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor
        except ImportError:
            log.warning("APPLICATIONINSIGHTS_CONNECTION_STRING is set but azure-monitor-opentelemetry is not installed")
            return _metrics
        try:
            # With APPLICATIONINSIGHTS_AUTHENTICATION_STRING (local auth disabled on the resource)
            # the exporter signs in with the managed identity named there.
            with _logs_not_exported():
                configure_azure_monitor(
                    connection_string=connection_string,
                    enable_live_metrics=False,
                    span_processors=[scrubbing_span_processor()],
                )
        except Exception as exc:  # telemetry must never stop the app
            log.warning("telemetry: Azure Monitor could not be configured: %s", type(exc).__name__)
            return _metrics
        _metrics = OpenTelemetryMetrics()
        _configured = True
        log.info("telemetry: sending metrics and traces to Application Insights")
        return _metrics


def configure_from_env() -> Metrics:
    """For the composition root (function_app.py), at import: reads only
    APPLICATIONINSIGHTS_CONNECTION_STRING, so that a wrong value of another setting is reported by
    the function that reads it rather than stopping every function from loading."""
    import os

    from shared.settings import SETTINGS

    return configure(os.environ.get(SETTINGS["appinsights_connection_string"].env, "").strip())


def metrics() -> Metrics:
    return _metrics


@contextmanager
def recording() -> Iterator[InMemoryMetrics]:
    """Tests: every call in the block goes to an :class:`InMemoryMetrics`."""
    global _metrics
    previous, double = _metrics, InMemoryMetrics()
    _metrics = double
    try:
        yield double
    finally:
        _metrics = previous


def record_action(action: str, status: str) -> None:
    _metrics.record_action(action, status)


def record_cycle(kind: str, seconds: float) -> None:
    _metrics.record_cycle(kind, seconds)


def record_webhook_latency(seconds: float) -> None:
    _metrics.record_webhook_latency(seconds)


def record_goto_429() -> None:
    _metrics.record_goto_429()


def record_coalesced(users: int) -> None:
    _metrics.record_coalesced(users)
