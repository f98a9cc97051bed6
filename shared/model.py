"""The provisioning domain's records: what is read from Entra, what is kept about GoTo objects,
what a cycle is doing, and what the provisioning log says. Plain dataclasses, no I/O.

Names follow Entra's provisioning vocabulary (actions, statuses, error codes, step types) so
that an admin who knows Entra's provisioning logs recognises every field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Action(enum.StrEnum):
    """provisioningAction in Entra's logs (Enable is logged as Update, as Entra does)."""

    CREATE = "Create"
    UPDATE = "Update"
    DISABLE = "Disable"
    DELETE = "Delete"
    STAGED_DELETE = "StagedDelete"
    OTHER = "Other"


class Status(enum.StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    SKIPPED = "Skipped"
    WARNING = "Warning"


class StepType(enum.StrEnum):
    IMPORT = "Import"
    SCOPING = "Scoping"
    MATCHING = "Matching"
    PROCESSING = "Processing"
    EXPORT = "Export"


class CycleKind(enum.StrEnum):
    INITIAL = "Initial"
    INCREMENTAL = "Incremental"
    TARGETED = "Targeted"  # named objects now: webhook worker, assignment watch, on demand
    DRIFT = "Drift"  # the drift sweep: GoTo compared with the links, no Entra read (docs/drift.md)


class Initiator(enum.StrEnum):
    TIMER = "Timer"
    CLI = "Cli"
    WEBHOOK = "Webhook"
    ON_DEMAND = "OnDemand"
    ADMIN = "Admin"
    DRIFT = "Drift"  # a repair of a change made in GoTo by hand (the drift sweep, docs/drift.md)


class DefaultAccessOnly(enum.StrEnum):
    """DEFAULT_ACCESS_ONLY: what becomes of a user whose only app role is Default Access."""

    SKIP = "skip"
    PROVISION = "provision"


class HardDeleteAction(enum.StrEnum):
    """HARD_DELETE_ACTION: what a user permanently deleted in Entra becomes in GoTo."""

    DELETE = "delete"
    DISABLE = "disable"


@dataclass(frozen=True, slots=True)
class Assignment:
    """One principal assigned to the app, with the role values it holds (Default Access is "")."""

    principal_id: str
    principal_type: str  # "User" | "Group"
    display_name: str
    role_ids: frozenset[str]
    role_values: frozenset[str]


@dataclass
class SourceUser:
    """A user as read from Entra (the attributes are Graph property names)."""

    id: str
    attributes: dict[str, Any]
    roles: frozenset[str] = frozenset()  # effective app role values ("" = Default Access)
    assigned: bool = False  # directly or through an assigned group
    soft_deleted: bool = False
    hard_deleted: bool = False
    # Absent from /users and from directory/deletedItems in one read, not yet confirmed by a
    # second one: never deprovisioned on that alone (docs/safety.md).
    absent_unconfirmed: bool = False
    # How the user's state is known: the positive evidence a disable or delete rests on
    # (a delta @removed, the recycle bin, a complete assignment read...).
    evidence: str = ""

    @property
    def upn(self) -> str | None:
        value = self.attributes.get("userPrincipalName")
        return value if isinstance(value, str) and value else None

    @property
    def display_name(self) -> str:
        return str(self.attributes.get("displayName") or self.upn or self.id)

    @property
    def account_enabled(self) -> bool:
        return self.attributes.get("accountEnabled") is not False


class UserState(enum.StrEnum):
    PRESENT = "present"  # read from /users
    IN_RECYCLE_BIN = "inRecycleBin"  # 404 on /users, found in directory/deletedItems
    ABSENT = "absent"  # 404 on /users and on directory/deletedItems: a hard delete, if it holds


@dataclass(frozen=True)
class UserRead:
    """One user looked up by id, with how its state is known."""

    id: str
    state: UserState
    attributes: dict[str, Any] | None = None
    read_at: datetime | None = None


@dataclass
class Link:
    """What gotosync knows of the GoTo object it created or matched for one Entra object."""

    entra_id: str
    goto_id: str
    kind: str = "user"  # "user" | "group"
    matched_by: str = "created"  # "created" or the matching attribute that found it
    owned: bool = True  # created or linked by gotosync: only owned objects are ever changed
    exported: dict[str, Any] = field(default_factory=dict)  # last values sent, by target path
    licenses: list[str] = field(default_factory=list)
    active: bool = True
    applied_at: datetime | None = None  # when the Entra read that produced the last export was taken
    etag: str | None = None
    # A create is recorded before its POST (goto_id still ""): a crash between the POST and the
    # link write leaves this intent, and the next run finds the GoTo user by it.
    pending: bool = False
    # A license change on a linked user is recorded before its Admin API call (the seats it is
    # about to set): a crash between the call and the link write leaves it, and the next run
    # sets the seats explicitly instead of trusting `licenses`.
    seats_pending: list[str] | None = None

    @property
    def live(self) -> bool:
        """Linked to a GoTo object (not only an intent to create one)."""
        return bool(self.goto_id) and not self.pending


@dataclass
class EscrowEntry:
    """A failed object waiting for its retry."""

    entra_id: str
    kind: str = "user"
    attempts: int = 0
    first_failure: datetime | None = None
    next_retry: datetime | None = None
    last_error_code: str = ""
    last_error: str = ""
    # The evidence the failed action rested on (e.g. "users delta: @removed reason=deleted"),
    # so a retry re-establishes it instead of guessing.
    evidence: str = ""
    # When the user was first read as absent from /users and directory/deletedItems (a delete
    # waits for a second read after the confirmation delay).
    absent_since: datetime | None = None


@dataclass
class ModifiedProperty:
    name: str
    old: Any = None
    new: Any = None


@dataclass
class ProvisioningStep:
    name: str  # e.g. EntryImport, EntrySynchronizationAdd, EntryExportAdd
    step_type: StepType
    status: Status
    description: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProvisioningLogEntry:
    """One decision about one object, modelled on Graph's provisioningObjectSummary."""

    cycle_id: str
    change_id: str
    action: Action
    status: Status
    source_id: str
    source_name: str
    target_id: str = ""
    target_name: str = ""
    identity_type: str = "User"
    initiated_by: Initiator = Initiator.TIMER
    reason: str = ""
    error_code: str = ""
    modified: list[ModifiedProperty] = field(default_factory=list)
    steps: list[ProvisioningStep] = field(default_factory=list)
    duration_ms: int = 0
    at: datetime = field(default_factory=utcnow)
    evidence: str = ""  # what a disable or delete rested on (docs/safety.md)


@dataclass
class CycleProgress:
    cycle_id: str = ""
    kind: CycleKind = CycleKind.INITIAL
    initiated_by: Initiator = Initiator.TIMER
    started: datetime | None = None
    ended: datetime | None = None
    total: int = 0
    processed: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # "Create/Success" -> n
    dry_run: bool = False
    # A cycle that ran out of its invocation's time budget hands itself on: it is `continuing`,
    # and its next invocation (the continuation message, or the next timer tick) resumes it.
    continuing: bool = False
    invocations: int = 1
    # The delta links an initial cycle took at its start, kept until its last invocation stores
    # them: changes made while it ran (across invocations) are replayed by the next round.
    delta_links: tuple[str, str] = ("", "")

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else min(1.0, self.processed / self.total)


@dataclass
class JobState:
    """The provisioning job: on/off, quarantine, current and last cycle, watermarks."""

    enabled: bool = True
    quarantine_reason: str = ""
    quarantined_since: datetime | None = None
    current: CycleProgress | None = None  # the running (or interrupted) cycle
    last: CycleProgress | None = None
    last_success: datetime | None = None
    users_delta_link: str = ""
    groups_delta_link: str = ""
    config_hash: str = ""
    assignments_hash: str = ""  # of the stored assignment snapshot: a quiet cycle skips reading it
    staged_deletes: int = 0
    allow_deletes_once: bool = False
    etag: str | None = None
    managed_users: int = 0  # live links at the last cycle that read them (the relative deletion guard's base)
    # Why the last cycle stopped before its end (a read that may be incomplete, a refused plan),
    # with when; cleared by the next cycle that ends. Nothing was deprovisioned by it.
    last_stop: str = ""
    last_stop_at: datetime | None = None

    @property
    def has_watermark(self) -> bool:
        return bool(self.users_delta_link)
