"""GoTo's documented limits on users and groups, checked before anything is sent.

One check, two callers: the engine's plan (a user that breaks a limit fails with the code and
reason, and nothing is sent) and the GoTo client (``validate_user`` raises them as its
``BadRequest``). The limits are those of GoTo's published SCIM API definition
(https://github.com/APIs-guru/openapi-directory/tree/main/APIs/citrixonline.com/scim): userName
required, at most 128 characters, in one of the organization's verified domains; name parts at
most 60 characters; a group's displayName required and at most 128 characters; at most 100
members in one request. The codes are Entra's provisioning error codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from shared.scim.paths import get_value, has_value

MAX_USERNAME = 128
MAX_NAME_PART = 60
MAX_GROUP_NAME = 128
MAX_MEMBERS_PER_REQUEST = 100
NAME_PARTS = ("name.givenName", "name.familyName")

MANDATORY_FIELDS_MISSING = "MandatoryFieldsMissing"
TOO_LONG = "SchemaPropertyCanOnlyAcceptValue"
INVALID_DOMAIN = "InvalidDomain"


class Problem(NamedTuple):
    """Why GoTo would refuse an object: an Entra error code and a reason naming the attribute."""

    code: str
    reason: str


def user_problem(
    resource: Mapping[str, Any],
    *,
    verified_domains: Iterable[str] = (),
    partial: bool = False,
    goto_limits: bool = True,
) -> Problem | None:
    """The first limit a SCIM user resource breaks, or None.

    A userName (required by GoTo and by RFC 7643 §4.1) in a verified domain when domains are
    given; with ``goto_limits`` also GoTo's lengths, which a generic SCIM 2.0 target does not
    have. ``partial`` (an update's changes): only what is present is checked."""
    if not partial or has_value(resource, "userName"):
        user_name = get_value(resource, "userName")
        if not isinstance(user_name, str) or not user_name.strip():
            return Problem(MANDATORY_FIELDS_MISSING, "userName is missing or empty")
        problem = (_too_long("userName", user_name, MAX_USERNAME) if goto_limits else None) or _domain_problem(
            user_name, verified_domains
        )
        if problem is not None:
            return problem
    if goto_limits:
        for path in NAME_PARTS:
            value = get_value(resource, path)
            if isinstance(value, str) and (problem := _too_long(path, value, MAX_NAME_PART)) is not None:
                return problem
    return None


def group_name_problem(display_name: Any, *, goto_limits: bool = True) -> Problem | None:
    """Why a group's displayName would be refused, or None."""
    if not isinstance(display_name, str) or not display_name.strip():
        return Problem(MANDATORY_FIELDS_MISSING, "group displayName is missing or empty")
    if goto_limits:
        return _too_long("group displayName", display_name, MAX_GROUP_NAME)
    return None


def _too_long(what: str, value: str, limit: int) -> Problem | None:
    if len(value) <= limit:
        return None
    return Problem(TOO_LONG, f"{what} is {len(value)} characters; GoTo accepts at most {limit}")


def _domain_problem(user_name: str, verified_domains: Iterable[str]) -> Problem | None:
    domains = {d.lower().strip() for d in verified_domains if d.strip()}
    if not domains:
        return None
    domain = user_name.rpartition("@")[2].lower() if "@" in user_name else ""
    if domain in domains:
        return None
    return Problem(
        INVALID_DOMAIN,
        f"the domain of userName {user_name!r} is not a verified domain of the GoTo organization "
        f"({', '.join(sorted(domains))})",
    )
