"""Cycles that continue across invocations: a cycle that ran out of its invocation's time
budget (CYCLE_TIME_BUDGET_SECONDS) hands itself on with a message on CONTINUATION_QUEUE, which
the queue-triggered `sync_continue` picks up at once, instead of waiting for the next timer tick.

The message names the cycle; the cycle lease and the job's checkpoint make a duplicate or late
message harmless (it finds nothing to continue, or a running invocation holding the lease).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from shared.engine.cycle import CycleResult
from shared.model import Initiator
from shared.realtime.services import make_queue
from shared.runtime import Runtime

log = logging.getLogger("gotosync.continuation")


@dataclass(frozen=True)
class Continuation:
    cycle_id: str
    invocation: int  # the invocation that handed the cycle on

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "cycleId": self.cycle_id, "invocation": self.invocation}


def parse_continuation(raw: bytes | str | dict[str, Any]) -> Continuation:
    """The message body; ValueError naming what is wrong."""
    body = raw if isinstance(raw, dict) else json.loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("cycleId"), str) or not body["cycleId"]:
        raise ValueError("continuation message has no cycleId")
    invocation = body.get("invocation", 0)
    return Continuation(body["cycleId"], invocation if isinstance(invocation, int) else 0)


async def run_cycle(
    rt: Runtime, *, initiated_by: Initiator, full: bool = False, resume: str | None = None, **kwargs: Any
) -> CycleResult:
    """One invocation of a cycle; if it hands the cycle on, the continuation message is sent."""
    result = await rt.engine.run_cycle(initiated_by=initiated_by, full=full, resume=resume, **kwargs)
    if result.continuing:
        await hand_on(rt, result)
    return result


async def hand_on(rt: Runtime, result: CycleResult) -> None:
    queue = make_queue(rt.settings, rt.settings.continuation_queue)
    try:
        await queue.ensure()
        progress = await rt.store.job.get()
        invocation = progress.current.invocations if progress.current else 0
        await queue.send(Continuation(result.cycle_id, invocation).to_json())
    finally:
        await queue.close()
    log.info("cycle %s continues in its next invocation", result.cycle_id)
