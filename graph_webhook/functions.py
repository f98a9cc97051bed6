"""Graph webhook entrances: the notification and lifecycle intake (HTTP) and the queue worker.

Thin by design: each function turns its trigger into a call on shared/realtime and the result
back into a response. Graph's notificationUrl carries a function key scoped to the intake
(`?code=…`); Graph keeps query parameters on every delivery
(https://learn.microsoft.com/graph/change-notifications-delivery-webhooks).
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.realtime.intake import (
    IntakeResponse,
    accept_notifications,
    misconfigured,
    tenant_problem,
    validation_response,
)
from shared.realtime.messages import parse_message
from shared.realtime.services import services_for
from shared.realtime.worker import MAX_DEQUEUE, handle_message, record_poison
from shared.settings import SETTINGS, Settings, SettingsError

bp = func.Blueprint()
log = logging.getLogger("gotosync.graph_webhook")
_ENV_NAMES = sorted((s.env for s in SETTINGS.values()), key=len, reverse=True)


def _response(answer: IntakeResponse) -> func.HttpResponse:
    return func.HttpResponse(
        answer.body, status_code=answer.status, mimetype=answer.content_type, headers=answer.headers
    )


def _setting_named(error: SettingsError) -> str:
    text = str(error)
    return next((name for name in _ENV_NAMES if text.startswith(name)), "settings")


async def _intake(req: func.HttpRequest) -> func.HttpResponse:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        log.error("webhook misconfigured: %s", exc)
        return _response(misconfigured(_setting_named(exc)))
    problem = tenant_problem(settings.tenant_id)
    if problem:
        # Refuse everything, the handshake included: no subscription may point at an intake
        # that cannot check the tenant of what it receives.
        log.error("webhook misconfigured: %s", problem)
        return _response(misconfigured("ENTRA_TENANT_ID"))
    token = req.params.get("validationToken")
    if token is not None:
        return _response(validation_response(token))
    if req.method != "POST":
        return func.HttpResponse(status_code=405)
    services = services_for(settings)
    store = await services.store()
    queue = await services.queue()
    answer = await accept_notifications(
        req.get_body(), tenant_id=settings.tenant_id, lookup=store.subscriptions.get, enqueue=queue.send
    )
    return _response(answer)


@bp.function_name("graph_notifications")
@bp.route(route="graph/notify", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Change and lifecycle notifications alike (each item says which it is)."""
    return await _intake(req)


@bp.function_name("graph_lifecycle")
@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    """The same intake, for a GRAPH_LIFECYCLE_URL set apart from the notification URL."""
    return await _intake(req)


@bp.function_name("graph_worker")
@bp.queue_trigger(arg_name="msg", queue_name="%NOTIFICATION_QUEUE%", connection="AzureWebJobsStorage")
async def graph_worker(msg: func.QueueMessage) -> None:
    """Runs the pipeline for the objects a queued batch names. A failure is raised so that the
    host retries; on the last delivery it is logged as a failure and escrowed instead."""
    settings = Settings.from_env()
    services = services_for(settings)
    rt = await services.runtime()
    try:
        message = parse_message(msg.get_body())  # parsed once, here
    except ValueError as exc:
        await record_poison(rt, {}, f"malformed queue message: {exc}")
        return
    try:
        result = await handle_message(rt, message, await services.keeper())
    except Exception as exc:
        dequeue_count = getattr(msg, "dequeue_count", None) or 1
        if dequeue_count >= MAX_DEQUEUE:
            await record_poison(rt, message.to_json(), f"{type(exc).__name__}: {exc}")
            log.error("notification batch failed for the last time; logged and escrowed")
            return
        raise
    log.info(
        "notifications processed: %d user(s), %s, %d coalesced",
        len(result.users),
        json.dumps(result.by_action),
        len(result.coalesced),
    )
