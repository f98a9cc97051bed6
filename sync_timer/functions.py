"""The sync-cycle timer: translates a tick into one engine cycle and its outcome into logs; the
drift sweep, the assignment watch and the subscription keeper on their own schedules.

Thin by design: everything that decides lives in shared/ (which knows nothing of
azure.functions) and is tested without the Functions host.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.continuation import parse_continuation, run_cycle
from shared.engine.cycle import CycleNotRun
from shared.engine.drift_sweep import sweep_drift
from shared.model import Initiator
from shared.realtime.services import services_for
from shared.realtime.watch import watch_assignments
from shared.runtime import open_runtime
from shared.settings import Settings

bp = func.Blueprint()
log = logging.getLogger("gotosync.sync_timer")


@bp.function_name("sync_cycle")
@bp.timer_trigger(arg_name="timer", schedule="%SYNC_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def sync_cycle(timer: func.TimerRequest) -> None:
    """One incremental cycle (the initial one when there is no state yet)."""
    if timer.past_due:
        log.info("sync timer is past due; running now")
    settings = Settings.from_env()
    try:
        async with open_runtime(settings) as rt:
            result = await run_cycle(rt, initiated_by=Initiator.TIMER)
    except CycleNotRun as exc:
        log.info("sync cycle not run: %s", exc)
        return
    log.info("sync cycle %s: %s", "continuing" if result.continuing else "finished", json.dumps(result.summary()))


@bp.function_name("sync_continue")
@bp.queue_trigger(arg_name="msg", queue_name="%CONTINUATION_QUEUE%", connection="AzureWebJobsStorage")
async def sync_continue(msg: func.QueueMessage) -> None:
    """A cycle that ran out of its invocation's time budget, continued at once."""
    try:
        continuation = parse_continuation(msg.get_body())
    except ValueError as exc:
        log.error("malformed continuation message dropped: %s", exc)
        return
    try:
        async with open_runtime(Settings.from_env()) as rt:
            result = await run_cycle(rt, initiated_by=Initiator.TIMER, resume=continuation.cycle_id)
    except CycleNotRun as exc:
        log.info("continuation not run: %s", exc)  # ended meanwhile, or an invocation holds it
        return
    log.info("sync cycle %s: %s", "continuing" if result.continuing else "finished", json.dumps(result.summary()))


@bp.function_name("drift_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%DRIFT_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def drift_sweep(timer: func.TimerRequest) -> None:
    """GoTo users edited by hand put back as gotosync left them (docs/drift.md)."""
    settings = Settings.from_env()
    try:
        async with open_runtime(settings) as rt:
            result = await sweep_drift(rt.engine, initiated_by=Initiator.TIMER)
    except CycleNotRun as exc:
        log.info("drift sweep not run: %s", exc)
        return
    log.info("drift sweep finished: %s", json.dumps(result.summary()))


@bp.function_name("assignment_watch")
@bp.timer_trigger(arg_name="timer", schedule="%ASSIGNMENT_WATCH_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def assignment_watch(timer: func.TimerRequest) -> None:
    """Graph has no notification for app role assignments: diff them every few minutes."""
    services = services_for(Settings.from_env())
    rt = await services.runtime()
    queue = await services.queue()
    result = await watch_assignments(rt, queue.send)
    if result.groups_changed and rt.settings.graph_notification_url:
        await (await services.keeper()).ensure()  # follow the assigned groups' memberships
    if result.changed_principals or result.skipped:
        log.info(
            "assignment watch: %d principal(s) changed, %d user(s) queued%s",
            len(result.changed_principals),
            result.queued_users,
            f" ({result.skipped})" if result.skipped else "",
        )


@bp.function_name("subscription_keeper")
@bp.timer_trigger(arg_name="timer", schedule="%SUBSCRIPTION_KEEPER_SCHEDULE%", run_on_startup=True, use_monitor=True)
async def subscription_keeper(timer: func.TimerRequest) -> None:
    """Creates, renews, recreates and removes Graph subscriptions."""
    settings = Settings.from_env()
    if not settings.graph_notification_url:
        log.info("GRAPH_NOTIFICATION_URL is not set: no Graph subscriptions (cycles only)")
        return
    report = await (await services_for(settings).keeper()).ensure()
    log.info("subscription keeper: %s", json.dumps(report.summary()))
