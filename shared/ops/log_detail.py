"""One provisioning-log entry with everything the console's details pane shows: the entry
(shared/ops/logs_export.log_document), the fix for its error code, and the admin whose
request wrote it (on demand, allow deletes now)."""

from __future__ import annotations

import re
from typing import Any

from shared.ops import InvalidInput, NotFound
from shared.ops.audit import requested_by
from shared.ops.fixes import error_fix
from shared.ops.logs_export import log_document, parse_time
from shared.store import Store

CHANGE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")


def parse_change_id(text: str | None) -> str:
    if not text or not CHANGE_ID.match(text.strip()):
        raise InvalidInput("changeId", "must be the change id of a provisioning-log entry (letters, digits, - . _)")
    return text.strip()


def entry_document(entry_doc: dict[str, Any], requester: dict[str, Any] | None) -> dict[str, Any]:
    doc = dict(entry_doc)
    doc["errorFix"] = error_fix(str(doc.get("errorCode") or ""))
    doc["requestedBy"] = requester
    return doc


async def load_entry(store: Store, change_id: str | None, time: str | None = None) -> dict[str, Any]:
    """The entry `change_id` (`time`, the entry's own time, makes it a one-day lookup)."""
    key = parse_change_id(change_id)
    near = parse_time(time, "time") if time else None
    entry = await store.logs.find(key, near)
    if entry is None:
        raise NotFound(f"no provisioning-log entry has the change id {key} (entries are kept LOG_RETENTION_DAYS days)")
    return entry_document(log_document(entry), await requested_by(store, entry))
