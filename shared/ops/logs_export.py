"""Provisioning-log queries and exports: JSON (one document per entry, modelled on Graph's
provisioningObjectSummary) and CSV in Entra's three-file download layout, joined on the change
id (docs/reference/entra-provisioning.md#provisioning-logs). docs/operations.md lists every
column.

CSV files are UTF-8 without a byte-order mark, comma separated, RFC 4180 quoting, one header
row. Attribute values that are not text (true, 3, ["a"]) are written as JSON; a missing value
is an empty cell. A cell that a spreadsheet would read as a formula (it starts with =, +, -, @,
a tab or a carriage return: a displayName "=HYPERLINK(...)" comes from Entra as any other value)
gets a leading single quote, as OWASP's CSV injection guidance says; the rest of the value is
kept as it is. The JSON export is not changed.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.model import Action, Initiator, ProvisioningLogEntry, Status
from shared.ops import InvalidInput
from shared.ops.identifiers import cycle_identifier, log_user_filter
from shared.redaction import scrub
from shared.store import Store

SOURCE_SYSTEM = "Microsoft Entra ID"
TARGET_SYSTEM = "GoTo"

LOGS_FILE = "ProvisioningLogs.csv"
STEPS_FILE = "ProvisioningLogs_ProvisioningSteps.csv"
MODIFIED_FILE = "ProvisioningLogs_ModifiedProperties.csv"

LOG_COLUMNS = (
    "Date (UTC)",
    "Change ID",
    "Cycle ID",
    "Provisioning Action",
    "Status",
    "Initiated By",
    "Source System",
    "Source Identity ID",
    "Source Identity Name",
    "Source Identity Type",
    "Target System",
    "Target Identity ID",
    "Target Identity Name",
    "Error Code",
    "Reason",
    "Duration (ms)",
)
STEP_COLUMNS = ("Change ID", "Step Number", "Name", "Provisioning Step Type", "Status", "Description", "Details")
MODIFIED_COLUMNS = ("Change ID", "Display Name", "Old Value", "New Value")

_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, field: str = "since", now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or a duration back from now:
    `30m`, `12h`, `7d`."""
    text = text.strip()
    if text[-1:] in _UNITS and text[:-1].isdigit():
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(field, f"expected an ISO 8601 time or 30m / 12h / 7d, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_action(text: str, field: str = "action") -> Action:
    for action in Action:
        if action.value.lower() == text.strip().lower():
            return action
    raise InvalidInput(field, f"expected one of {', '.join(a.value for a in Action)}, got {text!r}")


def parse_status(text: str, field: str = "status") -> Status:
    for status in Status:
        if status.value.lower() == text.strip().lower():
            return status
    raise InvalidInput(field, f"expected one of {', '.join(s.value for s in Status)}, got {text!r}")


def parse_initiator(text: str, field: str = "initiator") -> Initiator:
    for initiator in Initiator:
        if initiator.value.lower() == text.strip().lower():
            return initiator
    raise InvalidInput(field, f"expected one of {', '.join(i.value for i in Initiator)}, got {text!r}")


@dataclass(frozen=True)
class LogQuery:
    """A provisioning-log filter, as both the CLI and the HTTP endpoint take it."""

    user: str | None = None
    action: Action | None = None
    status: Status | None = None
    cycle_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    initiated_by: Initiator | None = None

    def __post_init__(self) -> None:
        if self.user is not None:
            log_user_filter(self.user)
        if self.cycle_id is not None:
            cycle_identifier(self.cycle_id)
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("until", "is before since")
        if self.limit is not None and self.limit < 1:
            raise InvalidInput("limit", f"must be at least 1, got {self.limit}")

    async def run(self, store: Store) -> list[ProvisioningLogEntry]:
        return await store.logs.query(
            user=self.user,
            action=self.action,
            status=self.status,
            cycle_id=self.cycle_id,
            since=self.since,
            until=self.until,
            limit=self.limit,
            initiated_by=self.initiated_by,
        )


def log_document(e: ProvisioningLogEntry) -> dict[str, Any]:
    """One entry as JSON: Graph's provisioningObjectSummary shape in gotosync's field names."""
    return {
        "time": e.at.isoformat(),
        "cycleId": e.cycle_id,
        "changeId": e.change_id,
        "action": e.action.value,
        "status": e.status.value,
        "source": {"id": e.source_id, "name": e.source_name, "type": e.identity_type, "system": SOURCE_SYSTEM},
        "target": {"id": e.target_id, "name": e.target_name, "system": TARGET_SYSTEM},
        "initiatedBy": e.initiated_by.value,
        "reason": scrub(e.reason),
        "errorCode": e.error_code,
        "modifiedProperties": [{"name": m.name, "old": m.old, "new": m.new} for m in e.modified],
        "steps": [
            {
                "name": s.name,
                "type": s.step_type.value,
                "status": s.status.value,
                "description": s.description,
                "details": s.details,
            }
            for s in e.steps
        ],
        "durationMs": e.duration_ms,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that starts like a formula, with a single quote in front; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class _SafeWriter:
    """csv.writer whose every cell goes through :func:`neutralise`."""

    def __init__(self, buffer: io.StringIO) -> None:
        self._writer = csv.writer(buffer)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])


def csv_files(entries: Iterable[ProvisioningLogEntry]) -> dict[str, str]:
    """The three CSV files (name -> text) for these entries."""
    buffers = {name: io.StringIO(newline="") for name in (LOGS_FILE, STEPS_FILE, MODIFIED_FILE)}
    writers = {name: _SafeWriter(buf) for name, buf in buffers.items()}
    writers[LOGS_FILE].writerow(LOG_COLUMNS)
    writers[STEPS_FILE].writerow(STEP_COLUMNS)
    writers[MODIFIED_FILE].writerow(MODIFIED_COLUMNS)
    for e in entries:
        writers[LOGS_FILE].writerow(
            [
                e.at.astimezone(UTC).isoformat(),
                e.change_id,
                e.cycle_id,
                e.action.value,
                e.status.value,
                e.initiated_by.value,
                SOURCE_SYSTEM,
                e.source_id,
                e.source_name,
                e.identity_type,
                TARGET_SYSTEM,
                e.target_id,
                e.target_name,
                e.error_code,
                scrub(e.reason),
                e.duration_ms,
            ]
        )
        for number, step in enumerate(e.steps, start=1):
            writers[STEPS_FILE].writerow(
                [
                    e.change_id,
                    number,
                    step.name,
                    step.step_type.value,
                    step.status.value,
                    step.description,
                    _cell(step.details) if step.details else "",
                ]
            )
        for prop in e.modified:
            writers[MODIFIED_FILE].writerow([e.change_id, prop.name, _cell(prop.old), _cell(prop.new)])
    return {name: buf.getvalue() for name, buf in buffers.items()}


def write_csv(entries: Iterable[ProvisioningLogEntry], directory: Path) -> list[Path]:
    """Writes the three files into `directory` (created if missing); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in csv_files(entries).items():
        path = directory / name
        path.write_text(text, encoding="utf-8", newline="")
        paths.append(path)
    return paths


def csv_zip(entries: Iterable[ProvisioningLogEntry]) -> bytes:
    """The three files in one zip archive, as the portal's CSV download comes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in csv_files(entries).items():
            archive.writestr(name, text.encode("utf-8"))
    return buffer.getvalue()
