"""Provisioning-log retention: drop whole UTC days older than LOG_RETENTION_DAYS (default 30,
Entra's P1/P2 retention, docs/reference/entra-provisioning.md#provisioning-logs). Run by the
retention timer and `gotosync purge-logs`.

Retention is by day (the log table's partition): an entry is kept at least LOG_RETENTION_DAYS
days and at most one day more. The admin audit trail and the cycle history are kept as long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.model import utcnow
from shared.store import Store
from shared.store.logs import day_key


@dataclass(frozen=True)
class PurgeResult:
    retention_days: int
    kept_from_day: str  # yyyymmdd: this UTC day and later are kept
    deleted: int
    audit_deleted: int = 0
    cycles_deleted: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "retentionDays": self.retention_days,
            "keptFromDay": f"{self.kept_from_day[:4]}-{self.kept_from_day[4:6]}-{self.kept_from_day[6:]}",
            "deleted": self.deleted,
            "auditDeleted": self.audit_deleted,
            "cyclesDeleted": self.cycles_deleted,
        }


async def purge_logs(store: Store, retention_days: int, now: datetime | None = None) -> PurgeResult:
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    older_than = (now or utcnow()) - timedelta(days=retention_days)
    deleted = await store.logs.purge(older_than)
    audit = await store.audit.purge(older_than)
    cycles = await store.cycles.purge(older_than)
    return PurgeResult(retention_days, day_key(older_than), deleted, audit, cycles)
