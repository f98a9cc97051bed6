"""Attribute mappings (Entra's model) and the built-in default mapping for GoTo, kept as data.

The full expression language and configurable mapping files are their own piece of work; this
module evaluates the mapping types the default needs — direct, constant, and the computed
`IsSoftDeleted` / `objectId` sources — and is the one place that turns a source user into the
target values that plan_user compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.engine.scim_paths import ENTERPRISE_URN
from shared.model import SourceUser


@dataclass(frozen=True)
class AttributeMapping:
    target: str  # SCIM path
    source: str = ""  # Graph property name, or a computed source: objectId, IsSoftDeleted
    kind: str = "direct"  # direct | constant | none
    constant: Any = None
    default: Any = None  # used on create when the source is null
    apply: str = "always"  # always | create
    matching_precedence: int = 0  # 0 = not a matching attribute

    @property
    def is_matching(self) -> bool:
        return self.matching_precedence > 0


@dataclass(frozen=True)
class Mapping:
    users: tuple[AttributeMapping, ...]

    @property
    def matching(self) -> list[AttributeMapping]:
        return sorted((m for m in self.users if m.is_matching), key=lambda m: m.matching_precedence)

    def graph_select(self) -> list[str]:
        """The Graph `$select` this mapping needs (plus what scoping always needs)."""
        needed = {"id", "userPrincipalName", "accountEnabled", "displayName"}
        for m in self.users:
            if m.kind == "direct" and m.source not in COMPUTED_SOURCES:
                needed.add(m.source)
        return sorted(needed)


COMPUTED_SOURCES = frozenset({"objectId", "IsSoftDeleted"})

# The GoTo gallery app's target attributes (reference/entra-provisioning.md §7) fed from the
# sources an Entra admin expects. userName is the matching attribute, as in Entra's default.
DEFAULT_GOTO_MAPPING = Mapping(
    users=(
        AttributeMapping("userName", "userPrincipalName", matching_precedence=1),
        AttributeMapping("active", "IsSoftDeleted"),
        AttributeMapping("displayName", "displayName"),
        AttributeMapping("name.givenName", "givenName"),
        AttributeMapping("name.familyName", "surname"),
        AttributeMapping('emails[type eq "work"].value', "mail"),
        AttributeMapping("externalId", "objectId"),
        AttributeMapping(f"{ENTERPRISE_URN}:department", "department"),
        AttributeMapping(f"{ENTERPRISE_URN}:employeeNumber", "employeeId"),
    )
)


def source_value(user: SourceUser, source: str, *, soft_deleted: bool) -> Any:
    if source == "objectId":
        return user.id
    if source == "IsSoftDeleted":
        return soft_deleted
    value = user.attributes.get(source)
    if isinstance(value, str) and source == "userPrincipalName":
        return strip_guest_suffix(value)
    return value


def strip_guest_suffix(upn: str) -> str:
    """B2B guests: `alias_theirdomain#EXT#@yourdomain` -> `alias@theirdomain` (as Entra does)."""
    if "#EXT#@" not in upn:
        return upn
    local = upn.split("#EXT#@", 1)[0]
    alias, sep, domain = local.rpartition("_")
    return f"{alias}@{domain}" if sep else local


def evaluate(mapping: Mapping, user: SourceUser, *, creating: bool, soft_deleted: bool = False) -> dict[str, Any]:
    """Target path -> value for this user. Null sources are left out (Entra never sends nulls)."""
    values: dict[str, Any] = {}
    for m in mapping.users:
        if m.kind == "none" or (m.apply == "create" and not creating):
            continue
        if m.kind == "constant":
            value = m.constant
        else:
            value = source_value(user, m.source, soft_deleted=soft_deleted)
            if m.target == "active" and m.source == "IsSoftDeleted":
                value = not value
        if value is None or value == "":
            if creating and m.default is not None:
                values[m.target] = m.default
            continue
        values[m.target] = value
    return values
