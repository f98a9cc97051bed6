"""The committer: the one place where a run's effects reach the store.

- Link writes are conditional on the ETag of the row the run last read (or of the create intent
  it wrote): a write that loses a race to another run (a webhook against a cycle, two webhook
  runs) is not applied, and the object is re-read and re-decided by the run (`conflicts`).
- Cycles, which hold the lease, batch link writes and log entries (entity transactions of up to
  100); targeted runs, which hold no lease, write each object's effects at once.
- Escrow changes are written at once (they are conditional in the escrow repository itself).
- A dry run commits nothing.
"""

from __future__ import annotations

import logging

from shared.engine.effects import Effects, EscrowClear, EscrowRecord, LinkDelete, LinkPut
from shared.model import Link, ProvisioningLogEntry, utcnow
from shared.store import Store
from shared.store.errors import ConcurrencyError

log = logging.getLogger("gotosync.commit")

BATCH = 100  # links or log entries: one entity transaction


class Committer:
    def __init__(self, store: Store, *, batched: bool, dry_run: bool) -> None:
        self.store = store
        self.batched = batched
        self.dry_run = dry_run
        self.links: list[Link | tuple[str, str, str | None]] = []
        self.logs: list[ProvisioningLogEntry] = []
        self.conflicts: list[str] = []  # Entra ids whose link write lost a race: re-decide them

    async def intent(self, link: Link) -> Link | None:
        """Records a create intent at once (before the POST), conditionally; None when another
        run changed the link meanwhile."""
        if self.dry_run:
            return link
        try:
            return await self.store.links.put_if_unchanged(link)
        except ConcurrencyError:
            return None

    async def apply(self, effects: Effects) -> None:
        if self.dry_run:
            return
        await self._escrow(effects.escrow)
        if effects.link is not None:
            self.links.append(_write(effects.link))
        if effects.log is not None:
            self.logs.append(effects.log)
        if not self.batched or len(self.links) >= BATCH or len(self.logs) >= BATCH:
            await self.flush()

    def add_logs(self, entries: list[ProvisioningLogEntry]) -> None:
        if not self.dry_run:
            self.logs.extend(entries)

    async def flush(self) -> None:
        if self.dry_run:
            return
        if self.links:
            writes, self.links = self.links, []
            lost = await self.store.links.write_many_if_unchanged(writes)
            if lost:
                log.info("%d link write(s) lost a race to another run: re-decided", len(lost))
            self.conflicts.extend(lost)
        if self.logs:
            batch, self.logs = self.logs, []
            await self.store.logs.write(batch)

    async def _escrow(self, change: EscrowRecord | EscrowClear | None) -> None:
        if isinstance(change, EscrowClear):
            await self.store.escrow.clear(change.entra_id, change.kind)
        elif isinstance(change, EscrowRecord):
            await self.store.escrow.record_failure(
                change.entra_id,
                change.kind,
                change.code,
                change.message,
                utcnow(),
                evidence=change.evidence,
                absent_since=change.absent_since,
                due=change.due,
            )


def _write(change: LinkPut | LinkDelete) -> Link | tuple[str, str, str | None]:
    if isinstance(change, LinkPut):
        return change.link
    return (change.kind, change.entra_id, change.etag)
