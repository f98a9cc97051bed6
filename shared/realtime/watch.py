"""The assignment watch: Graph sends no notification when an app role assignment changes
(docs/reference/microsoft-graph.md#supported-resources), so a short timer diffs
`appRoleAssignedTo` with the stored snapshot and queues the users whose assignment changed (all
members, for a group)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.engine.reading import snapshot_hash
from shared.entra.reader import GroupGone
from shared.realtime.intake import ITEMS_PER_MESSAGE
from shared.realtime.messages import QueueMessage, user_pings
from shared.runtime import Runtime


@dataclass
class WatchResult:
    changed_principals: list[str] = field(default_factory=list)
    queued_users: int = 0
    groups_changed: bool = False
    skipped: str = ""


async def watch_assignments(rt: Runtime, enqueue: Callable[[dict[str, Any]], Awaitable[None]]) -> WatchResult:
    """One pass; costs one Graph request per 999 assignments when nothing changed."""
    result = WatchResult()
    job = await rt.store.job.get()
    if not job.enabled:
        result.skipped = "provisioning is off"  # the snapshot stays as it was: the next cycle sees the diff
        return result
    if not job.has_watermark:
        result.skipped = "no initial cycle yet"
        return result
    current = await rt.reader.assignments()
    digest = snapshot_hash(current)
    if digest == job.assignments_hash:
        return result
    previous = await rt.store.assignments.load()
    users: set[str] = set()
    for pid in sorted(set(current) | set(previous)):
        now, before = current.get(pid), previous.get(pid)
        if now == before:
            continue
        if (
            now is not None
            and before is not None
            and (now.role_ids, now.role_values) == (before.role_ids, before.role_values)
        ):
            result.groups_changed = result.groups_changed or now.principal_type == "Group"
            continue  # only the display name changed: nobody's scope did
        result.changed_principals.append(pid)
        kind = (now or before).principal_type  # type: ignore[union-attr]
        if kind == "User":
            users.add(pid)
        else:
            result.groups_changed = True
            try:
                users |= await rt.reader.group_member_ids(pid, rt.settings.transitive_members)
            except GroupGone as exc:
                # Who was in it can no longer be listed: the snapshot is left as it was, so the
                # next cycle sees this change and re-reads everyone (a full read).
                result.skipped = f"{exc}: left to the next cycle"
                return result
    ordered = sorted(users)
    for start in range(0, len(ordered), ITEMS_PER_MESSAGE):
        chunk = ordered[start : start + ITEMS_PER_MESSAGE]
        await enqueue(QueueMessage(user_pings(chunk, "assignment")).to_json())
    result.queued_users = len(ordered)
    # Queued first, snapshot second: a crash in between repeats the work, never loses it.
    await rt.store.assignments.replace(current)
    await rt.store.job.update(lambda j: setattr(j, "assignments_hash", digest))
    return result
