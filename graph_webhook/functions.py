"""Graph webhook entrances: the notification and lifecycle intake (HTTP) and the queue worker.

Thin by design: each function turns its trigger into a call on shared/realtime and the result
back into a response. Graph's notificationUrl carries the function key (`?code=…`); Graph keeps
query parameters on every delivery (reference/microsoft-graph.md §5.2).
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.realtime.intake import accept_notifications, validation_response
from shared.realtime.services import services_for
from shared.realtime.worker import MAX_DEQUEUE, handle_message, parse_items, record_poison
from shared.settings import Settings

bp = func.Blueprint()
log = logging.getLogger("gotosync.graph_webhook")


async def _intake(req: func.HttpRequest, lifecycle: bool) -> func.HttpResponse:
    token = req.params.get("validationToken")
    if token is not None:
        answer = validation_response(token)
        return func.HttpResponse(answer.body, status_code=answer.status, mimetype=answer.content_type)
    if req.method != "POST":
        return func.HttpResponse(status_code=405)
    settings = Settings.from_env()
    services = services_for(settings)
    store = await services.store()
    queue = await services.queue()
    answer = await accept_notifications(
        req.get_body(),
        tenant_id=settings.tenant_id,
        lookup=store.subscriptions.get,
        enqueue=queue.send,
        lifecycle=lifecycle,
    )
    return func.HttpResponse(answer.body, status_code=answer.status, mimetype=answer.content_type)


@bp.function_name("graph_notifications")
@bp.route(route="graph/notify", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    return await _intake(req, lifecycle=False)


@bp.function_name("graph_lifecycle")
@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    return await _intake(req, lifecycle=True)


@bp.function_name("graph_worker")
@bp.queue_trigger(arg_name="msg", queue_name="%NOTIFICATION_QUEUE%", connection="AzureWebJobsStorage")
async def graph_worker(msg: func.QueueMessage) -> None:
    """Runs the pipeline for the objects a queued batch names. A failure is raised so that the
    host retries; on the last delivery it is logged as a failure and escrowed instead."""
    settings = Settings.from_env()
    services = services_for(settings)
    rt = await services.runtime()
    try:
        body = json.loads(msg.get_body())
        parse_items(body)
    except ValueError as exc:
        await record_poison(rt, {}, f"malformed queue message: {exc}")
        return
    try:
        result = await handle_message(rt, body, await services.keeper())
    except Exception as exc:
        dequeue_count = getattr(msg, "dequeue_count", None) or 1
        if dequeue_count >= MAX_DEQUEUE:
            await record_poison(rt, body, f"{type(exc).__name__}: {exc}")
            log.error("notification batch failed for the last time; logged and escrowed")
            return
        raise
    log.info("notifications processed: %d user(s), %s", len(result.users), json.dumps(result.by_action))
