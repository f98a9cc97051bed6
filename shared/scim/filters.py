"""SCIM ``eq`` filters (RFC 7644 §3.4.2.2, https://www.rfc-editor.org/rfc/rfc7644#section-3.4.2.2):
built safely, and their results checked on the client side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.scim.paths import ABSENT, lookup, parse_path

OPERATORS = ("eq", "sw", "co")


def escape_filter_value(value: str) -> str:
    """A SCIM filter string literal's content: backslash and double quote escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def scim_filter(attribute: str, value: str, operator: str = "eq") -> str:
    """``attribute eq "value"``; the attribute must be a plain path (no filter of its own), so
    nothing can be injected through it."""
    try:
        ref = parse_path(attribute)
    except ValueError:
        ref = None
    if ref is None or ref.filtered:
        raise ValueError(f"not a plain SCIM attribute path: {attribute!r}")
    if operator not in OPERATORS:
        raise ValueError(f"unsupported filter operator: {operator!r}")
    return f'{attribute} {operator} "{escape_filter_value(value)}"'


def matches_eq(resource: Mapping[str, Any], attribute: str, value: str) -> bool:
    """Client-side check of an ``eq`` filter result, in case the server ignored the filter and
    answered with everything. An attribute the server does not return cannot be checked: kept."""
    current = lookup(resource, attribute)
    if current is ABSENT:
        return True
    return isinstance(current, str) and current.casefold() == value.casefold()
