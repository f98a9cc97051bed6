"""The sync-cycle timer: translates a tick into one engine cycle and its outcome into logs.

Thin by design: everything that decides lives in shared/ (which knows nothing of
azure.functions) and is tested without the Functions host.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.engine.cycle import CycleNotRun
from shared.model import Initiator
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
            result = await rt.engine.run_cycle(initiated_by=Initiator.TIMER)
    except CycleNotRun as exc:
        log.info("sync cycle not run: %s", exc)
        return
    log.info("sync cycle finished: %s", json.dumps(result.summary()))
