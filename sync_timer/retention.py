"""The provisioning-log retention timer (Blueprint): drops log days older than
LOG_RETENTION_DAYS on %RETENTION_SCHEDULE%. Runs whether provisioning is on or off."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.ops.retention import purge_logs
from shared.runtime import open_store
from shared.settings import Settings

bp = func.Blueprint()
log = logging.getLogger("gotosync.retention")


@bp.function_name("log_retention")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def log_retention(timer: func.TimerRequest) -> None:
    settings = Settings.from_env()
    store = await open_store(settings)
    try:
        result = await purge_logs(store, settings.log_retention_days)
    finally:
        await store.close()
    log.info("log retention: %s", json.dumps(result.document()))
