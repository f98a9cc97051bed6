"""Who did what: every admin action that changes the provisioning job (start, stop, restart,
allow deletes, provision on demand) is recorded with the admin who asked for it, through the
console (the signed-in Entra user), the HTTP admin endpoints (a function-key holder) or the CLI
(the local account). An on-demand run's entry carries its cycle id, the key of the provisioning
log entries it wrote, so a log entry can name the admin who asked for it."""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.model import ProvisioningLogEntry
from shared.store import AuditEntry, Store, StoreError
from shared.store.logs import day_key

log = logging.getLogger("gotosync.audit")


@dataclass(frozen=True)
class Actor:
    """The admin behind a request, as far as the entrance can tell."""

    name: str
    object_id: str = ""
    via: str = "console"  # "console" | "http" | "cli"

    def document(self) -> dict[str, str]:
        return {"name": self.name, "objectId": self.object_id, "via": self.via}


FUNCTION_KEY = Actor("function key holder", via="http")


def cli_actor() -> Actor:
    """The local account running the CLI (all a workstation can say about its user)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no such user in the password database (containers)
        name = "unknown"
    return Actor(f"{name} (local account)", via="cli")


async def record(
    store: Store,
    actor: Actor,
    action: str,
    *,
    outcome: str = "done",
    target: str = "",
    cycle_id: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Writes one audit entry. The action has already happened: a storage failure here is logged
    (with who did what) instead of being raised, so the admin still gets the action's answer."""
    entry = AuditEntry(
        actor=actor.name,
        actor_id=actor.object_id,
        via=actor.via,
        action=action,
        outcome=outcome,
        target=target,
        cycle_id=cycle_id,
        detail=detail or {},
    )
    try:
        await store.audit.write(entry)
    except StoreError as exc:
        log.error("audit entry not stored (%s by %s, %s): %s", action, actor.name, outcome, exc)
    return entry


async def recent(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    return [e.document() for e in await store.audit.recent(limit)]


async def requested_by(store: Store, entry: ProvisioningLogEntry) -> dict[str, Any] | None:
    """The admin whose request wrote this log entry (on demand, allow deletes now), if recorded."""
    if not entry.cycle_id:
        return None
    # The audit entry is written when the run has ended: the same UTC day, or the next one.
    days = [day_key(entry.at), day_key(entry.at + timedelta(days=1))]
    found = await store.audit.recent(1, cycle_id=entry.cycle_id, days=days)
    if not found:
        return None
    return {"name": found[0].actor, "objectId": found[0].actor_id, "via": found[0].via, "action": found[0].action}
