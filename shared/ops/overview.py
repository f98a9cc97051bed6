"""The console's overview: the job status (shared/ops/status.py) with what an admin reads next
to it in the Entra portal: the running cycle's rate and time left, the last cycles with their
counts, the quarantine's fix, and the deletions the threshold holds back."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from shared.fanout import bounded
from shared.model import CycleProgress, EscrowEntry, utcnow
from shared.ops.fixes import quarantine_fix
from shared.ops.status import cycle_document, load_status
from shared.settings import Settings
from shared.store import Store
from shared.store.escrow import STAGED

RECENT_CYCLES = 10
HELD_SHOWN = 50


def cycle_rate(current: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """Objects per second since the cycle started, and the seconds left at that pace (None
    while the total is unknown or nothing is done yet)."""
    if not current or not current.get("started"):
        return None
    elapsed = (now - datetime.fromisoformat(current["started"])).total_seconds()
    processed, total = int(current.get("processed") or 0), int(current.get("total") or 0)
    if elapsed <= 0 or processed <= 0:
        return {"perSecond": 0.0, "secondsLeft": None, "elapsedSeconds": max(elapsed, 0.0)}
    per_second = processed / elapsed
    left = (total - processed) / per_second if total >= processed and total else None
    return {
        "perSecond": round(per_second, 2),
        "secondsLeft": None if left is None else round(left),
        "elapsedSeconds": round(elapsed),
    }


def _split_counts(counts: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    by_action: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for key, n in counts.items():
        action, _, status = key.partition("/")
        by_action[action] = by_action.get(action, 0) + n
        by_status[status or "?"] = by_status.get(status or "?", 0) + n
    return dict(sorted(by_action.items())), dict(sorted(by_status.items()))


def history_document(progress: CycleProgress, staged: int) -> dict[str, Any]:
    doc = cycle_document(progress) or {}
    doc["countsByAction"], doc["countsByStatus"] = _split_counts(progress.counts)
    doc["staged"] = staged
    if progress.started and progress.ended:
        doc["durationSeconds"] = round((progress.ended - progress.started).total_seconds(), 1)
    return doc


async def held_deletions(store: Store, limit: int = HELD_SHOWN) -> tuple[int, list[dict[str, Any]]]:
    """The users whose disable or delete the deletion threshold holds (escrowed as StagedDelete)."""
    held: list[EscrowEntry] = [e for e in await store.escrow.all() if e.last_error_code == STAGED]
    held.sort(key=lambda e: e.first_failure or utcnow())
    shown = held[:limit]
    links = await bounded(lambda e: store.links.get(e.entra_id, e.kind), shown, len(shown) or 1)
    items = [
        {
            "id": e.entra_id,
            "kind": e.kind,
            "userName": str((link.exported.get("userName") if link else "") or ""),
            "gotoId": link.goto_id if link else "",
            "reason": e.last_error,
            "heldSince": e.first_failure.isoformat() if e.first_failure else None,
        }
        for e, link in zip(shown, links, strict=True)
    ]
    return len(held), items


async def load_overview(store: Store, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The status document plus `rate`, `quarantineFix`, `recentCycles` and `heldDeletions`."""
    now = now or utcnow()
    doc, recent = await asyncio.gather(load_status(store, settings, now), store.cycles.recent(RECENT_CYCLES))
    running = doc["currentCycle"] if doc["currentCycle"] and doc["currentCycle"].get("state") == "running" else None
    doc["rate"] = cycle_rate(running, now)
    doc["quarantineFix"] = quarantine_fix(doc["quarantine"] or "")
    doc["recentCycles"] = [history_document(p, staged) for p, staged in recent]
    count, items = await held_deletions(store) if doc["escrowed"] else (0, [])  # held deletions are escrowed
    doc["heldDeletions"] = {"count": count, "shown": items}
    return doc
