"""gotosync's state in Azure Table Storage: job state, leases, the assignment snapshot, links,
escrow and provisioning logs, one async repository per table (see docs/state.md)."""

from .assignments import AssignmentRepository, SnapshotWrite
from .audit import AuditEntry, AuditRepository
from .budget import BudgetRepository, Reservation
from .cycles import CycleHistoryRepository
from .errors import ConcurrencyError, StoreError
from .escrow import TRANSIENT_CODES, EscrowRepository, next_retry
from .job import JobRepository
from .lease import Lease, LeaseRepository
from .links import LinkRepository
from .listing import ListedPage, ListingRepository
from .logs import LogRepository
from .tables import DEFAULT_PREFIX, TABLES, Store

__all__ = [
    "DEFAULT_PREFIX",
    "TABLES",
    "TRANSIENT_CODES",
    "AssignmentRepository",
    "AuditEntry",
    "AuditRepository",
    "BudgetRepository",
    "ConcurrencyError",
    "CycleHistoryRepository",
    "EscrowRepository",
    "JobRepository",
    "Lease",
    "LeaseRepository",
    "LinkRepository",
    "ListedPage",
    "ListingRepository",
    "LogRepository",
    "Reservation",
    "SnapshotWrite",
    "Store",
    "StoreError",
    "next_retry",
]
