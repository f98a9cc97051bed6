"""Admin-supplied identifiers, validated before anything is read with them: a user is an object
id (GUID), a userPrincipalName or a mail address; a group an object id or a display name; log
filters a bounded piece of text and a cycle id. Each has a length cap, and a wrong one is an
InvalidInput naming its field (HTTP 400, CLI exit 2) instead of a Graph call with a path like
``/users/../servicePrincipals/<id>@x`` or an unhandled ``httpx.InvalidURL`` on a 1 MB value.

What passes here still reaches Graph only through msgraph-sdk's request builders, which
percent-encode every path segment (``by_user_id``), and through OData literals with quotes
doubled (``$filter=mail eq '...'``).
"""

from __future__ import annotations

import re

from shared.ops import InvalidInput

# Entra caps a userPrincipalName at 113 characters and a mail address is at most 254 (RFC 5321);
# a group's displayName at 256. One cap for every identifier keeps the rule easy to state.
MAX_IDENTIFIER = 256
MAX_FILTER_TEXT = 256

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The characters Entra allows in a UPN's user part (letters, digits, ' . - _ ! # ^ ~), and the
# few more a mail address commonly has (+ & $ = *). No "/", "\", "%", "?", quote or space: a path
# segment that decodes to "../" or to a query is never built from admin input.
_ATOM = r"[A-Za-z0-9'\-_!#^~+&$=*]+"
_LOCAL = rf"{_ATOM}(?:\.{_ATOM})*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS = re.compile(rf"(?P<local>{_LOCAL})@(?P<domain>{_LABEL}(?:\.{_LABEL})+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _bounded(value: object, field: str, cap: int, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text: {what}")
    text = value.strip()
    if not text:
        raise InvalidInput(field, f"is empty: give {what}")
    if len(text) > cap:
        raise InvalidInput(field, f"is {len(text)} characters long; at most {cap} ({what})")
    if _CONTROL.search(text):
        raise InvalidInput(field, f"contains control characters: give {what}")
    return text


def is_guid(value: str) -> bool:
    return GUID.fullmatch(value) is not None


def user_identifier(value: object, field: str = "user") -> str:
    """An Entra user as an admin names it: object id, userPrincipalName or mail address."""
    what = "an object id (GUID), a userPrincipalName or a mail address"
    text = _bounded(value, field, MAX_IDENTIFIER, what)
    if is_guid(text):
        return text.lower()
    if ADDRESS.fullmatch(text) is None:
        raise InvalidInput(field, f"must be {what}, got {_shown(text)}")
    return text


def group_identifier(value: object, field: str = "group") -> str:
    """An Entra group as an admin names it: object id or display name."""
    text = _bounded(value, field, MAX_IDENTIFIER, "a group's object id (GUID) or display name")
    return text.lower() if is_guid(text) else text


def log_user_filter(value: object, field: str = "user") -> str:
    """The provisioning-log filter on a user: a part of a UPN, display name or object id."""
    return _bounded(value, field, MAX_FILTER_TEXT, "a part of a UPN, display name or object id")


def cycle_identifier(value: object, field: str = "cycle") -> str:
    """A cycle id, as the status and the logs show it (a GUID)."""
    text = _bounded(value, field, MAX_IDENTIFIER, "a cycle id (GUID)")
    if not is_guid(text):
        raise InvalidInput(field, f"must be a cycle id (GUID), got {_shown(text)}")
    return text.lower()


def on_demand_target(user: object | None, group: object | None) -> tuple[str | None, str | None]:
    """The one user or group a provision-on-demand request names, validated."""
    if user is not None and group is not None:
        raise InvalidInput("group", "give a user or a group, not both")
    if user is None and group is None:
        raise InvalidInput("user", "give a user (UPN, mail or object id) or a group (object id or display name)")
    if user is not None:
        return user_identifier(user), None
    return None, group_identifier(group)
