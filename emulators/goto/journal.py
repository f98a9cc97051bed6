"""The GoTo emulator's write journal: every change the SCIM and Admin APIs make to a user, in
order, so that a test can judge each create, disable, delete and seat release against what the
source directory said at that moment.

The model's user-changing methods are wrapped with :func:`journaled`; the wrapper compares the
user's journal view (:func:`user_view`) before and after the call and appends one entry when
something changed. Changes made through the control surface (seeding, ``add_user``) are not
journaled: they are the state a test starts from, not something the client did.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .model import GoToModel, User

# (method, path) of the HTTP request being served; ("", "") for a direct Python call.
current_request: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "goto_journal_request", default=("", "")
)

# Attributes compared for "updated": the user's SCIM-visible data.
_FIELDS = (
    "userName",
    "externalId",
    "displayName",
    "givenName",
    "familyName",
    "title",
    "locale",
    "timezone",
    "emails",
    "enterprise",
)


def user_view(user: User, license_keys: list[str]) -> dict[str, Any]:
    """What the journal compares for one user."""
    return {
        "inOrg": user.in_org,
        "inAccount": user.in_account,
        "active": user.active,
        "userName": user.user_name,
        "externalId": user.external_id,
        "displayName": user.display_name,
        "givenName": user.given_name,
        "familyName": user.family_name,
        "title": user.title,
        "locale": user.locale,
        "timezone": user.timezone,
        "emails": copy.deepcopy(user.emails),
        "enterprise": copy.deepcopy(user.enterprise),
        "licenses": sorted(license_keys),
    }


def events_of(before: dict[str, Any] | None, after: dict[str, Any]) -> tuple[list[str], dict[str, list[Any]]]:
    """The kinds of change (created, deleted, removed-from-account, disabled, enabled, updated,
    licenses) and the changed fields as ``{name: [old, new]}``."""
    events: list[str] = []
    was_in_org = bool(before and before["inOrg"])
    if after["inOrg"] and not was_in_org:
        events.append("created")
    elif was_in_org and not after["inOrg"]:
        events.append("deleted")
    if before is not None and before["inAccount"] and not after["inAccount"]:
        events.append("removed-from-account")
    if before is not None and was_in_org and after["inOrg"] and before["active"] != after["active"]:
        events.append("enabled" if after["active"] else "disabled")
    fields: dict[str, list[Any]] = {}
    if before is not None:
        fields = {name: [before[name], after[name]] for name in _FIELDS if before[name] != after[name]}
    if fields and "created" not in events:
        events.append("updated")
    if (before["licenses"] if before else []) != after["licenses"]:
        events.append("licenses")
    return events, fields


class Journal:
    """Entries in the order the changes happened; ``seq`` starts at 1 after every reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def record(self, key: str, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        events, fields = events_of(before, after)
        if not events:
            return
        method, path = current_request.get()
        with self._lock:
            entry: dict[str, Any] = {
                "seq": len(self._entries) + 1,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": method,
                "path": path,
                "key": key,
                "userName": after["userName"],
                "externalId": after["externalId"],
                "events": events,
                "fields": fields,
                "active": after["active"],
                "inOrg": after["inOrg"],
            }
            if "licenses" in events:
                entry["licenses"] = {"before": before["licenses"] if before else [], "after": after["licenses"]}
            self._entries.append(entry)

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Entries with ``seq`` > ``since`` (copies)."""
        with self._lock:
            return copy.deepcopy(self._entries[since:])


F = TypeVar("F", bound=Callable[..., Any])


def journaled(keys_of: Callable[..., Iterable[str | None]]) -> Callable[[F], F]:
    """Wraps a model method so that what it changes for the users ``keys_of(model, *args)``
    names, and for the users it returns (a User or a list of them), goes into the journal."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def wrapper(model: GoToModel, *args: Any, **kwargs: Any) -> Any:
            keys = [str(k) for k in keys_of(model, *args, **kwargs) if k]
            before = {k: model.journal_view(k) for k in keys}
            result = None
            try:
                result = method(model, *args, **kwargs)
            finally:
                returned = result if isinstance(result, list) else [result]
                keys += [u.key for u in returned if hasattr(u, "user_name") and u.key not in before]
                for key in dict.fromkeys(keys):
                    after = model.journal_view(key)
                    if after is not None:
                        model.journal.record(key, before.get(key), after)
            return result

        return wrapper  # type: ignore[return-value]

    return wrap


def key_by_name(model: GoToModel, name: Any) -> str | None:
    """The key of the user (organization or account) with this userName, if any."""
    return model._by_name.get(name.lower()) if isinstance(name, str) else None


def keys_by_email(model: GoToModel, entries: Any) -> list[str | None]:
    if not isinstance(entries, list):
        return []
    return [key_by_name(model, e.get("email")) for e in entries if isinstance(e, dict)]
