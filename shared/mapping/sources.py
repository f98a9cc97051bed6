"""What mappings and scoping filters can read about a source user: Graph properties, Entra's
attribute names for them, sub-properties, and the computed sources (objectId, IsSoftDeleted,
appRoleAssignments, originalUserPrincipalName)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Read from the SourceContext, never selected from Graph.
COMPUTED_SOURCES = frozenset({"objectId", "IsSoftDeleted", "appRoleAssignments", "originalUserPrincipalName"})
# Navigation properties: Graph returns them only through $expand; the engine resolves them.
REFERENCE_SOURCES = frozenset({"manager"})

# Entra's source attribute names that differ from Graph's property names (Entra's user schema
# keeps the AD names; docs/reference/entra-provisioning.md#custom-scim-app uses them). Value: the
# Graph property, and "[0]" = first item.
ENTRA_NAMES: dict[str, str] = {
    "mobile": "mobilePhone",
    "telephoneNumber": "businessPhones[0]",
    "facsimileTelephoneNumber": "faxNumber",
    "physicalDeliveryOfficeName": "officeLocation",
    **{f"extensionAttribute{i}": f"onPremisesExtensionAttributes.extensionAttribute{i}" for i in range(1, 16)},
}

MULTI_VALUED = frozenset(
    {
        "proxyAddresses",
        "businessPhones",
        "otherMails",
        "imAddresses",
        "identities",
        "assignedLicenses",
        "assignedPlans",
        "provisionedPlans",
        "interests",
        "pastProjects",
        "responsibilities",
        "schools",
        "skills",
        "onPremisesProvisioningErrors",
        "memberOf",
        "transitiveMemberOf",
        "appRoleAssignments",
        "members",
    }
)
DATE_ATTRIBUTES = frozenset(
    {
        "birthday",
        "hireDate",
        "employeeHireDate",
        "employeeLeaveDateTime",
        "createdDateTime",
        "deletedDateTime",
        "lastPasswordChangeDateTime",
        "onPremisesLastSyncDateTime",
        "refreshTokensValidFromDateTime",
        "signInSessionsValidFromDateTime",
        "externalUserStateChangeDateTime",
    }
)
SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")

# Graph v1.0 user properties ($select-able). A name outside this list, Entra's names, the
# computed sources and directory extensions would make Graph answer 400 for the whole read.
_GRAPH_USER_PROPERTIES = """aboutMe accountEnabled ageGroup assignedLicenses assignedPlans authorizationInfo birthday
    businessPhones city companyName consentProvidedForMinor country createdDateTime creationType
    customSecurityAttributes deletedDateTime department displayName employeeHireDate employeeId
    employeeLeaveDateTime employeeOrgData employeeType externalUserState externalUserStateChangeDateTime
    faxNumber givenName hireDate id identities imAddresses interests isManagementRestricted
    isResourceAccount jobTitle lastPasswordChangeDateTime legalAgeGroupClassification
    licenseAssignmentStates mail mailNickname mobilePhone mySite officeLocation onPremisesDistinguishedName
    onPremisesDomainName onPremisesExtensionAttributes onPremisesImmutableId onPremisesLastSyncDateTime
    onPremisesProvisioningErrors onPremisesSamAccountName onPremisesSecurityIdentifier
    onPremisesSyncEnabled onPremisesUserPrincipalName otherMails passwordPolicies passwordProfile
    pastProjects postalCode preferredDataLocation preferredLanguage preferredName provisionedPlans
    proxyAddresses refreshTokensValidFromDateTime responsibilities schools securityIdentifier
    serviceProvisioningErrors showInAddressList signInActivity signInSessionsValidFromDateTime skills
    state streetAddress surname usageLocation userPrincipalName userType"""
GRAPH_USER_PROPERTIES = frozenset(_GRAPH_USER_PROPERTIES.split())
COMPLEX_PROPERTIES = frozenset(
    {"onPremisesExtensionAttributes", "employeeOrgData", "passwordProfile", "signInActivity", "authorizationInfo"}
)
_DIRECTORY_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")


def strip_guest_suffix(upn: str) -> str:
    """B2B guests: `alias_theirdomain#EXT#@yourdomain` -> `alias@theirdomain` (as Entra does)."""
    if "#EXT#@" not in upn:
        return upn
    local = upn.split("#EXT#@", 1)[0]
    alias, sep, domain = local.rpartition("_")
    return f"{alias}@{domain}" if sep else local


def source_problem(name: str) -> str | None:
    """Why `name` cannot be read from a user (None: it can)."""
    if not isinstance(name, str) or not SOURCE_NAME.match(name):
        return f"{name!r} is not a source attribute name"
    if name in COMPUTED_SOURCES or name in REFERENCE_SOURCES or name in ENTRA_NAMES:
        return None
    if name in GRAPH_USER_PROPERTIES or _DIRECTORY_EXTENSION.match(name):
        return None
    parent, dot, _ = name.partition(".")
    if dot:
        if parent in COMPLEX_PROPERTIES:
            return None
        return f"{parent!r} has no sub-properties to read (known: {', '.join(sorted(COMPLEX_PROPERTIES))})"
    lower = {p.lower(): p for p in GRAPH_USER_PROPERTIES | COMPUTED_SOURCES | set(ENTRA_NAMES)}
    hint = f" (names are case-sensitive: {lower[name.lower()]})" if name.lower() in lower else ""
    return (
        f"unknown source attribute {name!r}{hint}: use a Graph user property, an Entra name such as "
        "extensionAttribute1, a computed source (objectId, IsSoftDeleted, appRoleAssignments) "
        "or a directory extension extension_<appId>_<name>"
    )


@dataclass
class SourceContext:
    """What the evaluator may read besides Graph attributes."""

    attributes: dict[str, Any]  # Graph property names -> values
    object_id: str
    is_soft_deleted: bool
    app_roles: tuple[str, ...] = ()  # role values held ("" = Default Access, ignored)
    creating: bool = False
    now: datetime | None = None  # Now() and date defaults; None = the current UTC time
    # SelectUniqueValue: (target attribute, candidate) -> whether another target object holds it.
    # None: uniqueness cannot be checked, the first non-empty candidate is taken.
    value_in_use: Callable[[str, str], bool] | None = field(default=None, repr=False)

    def read(self, name: str) -> Any:
        if name == "objectId":
            return self.object_id or self.attributes.get("id")
        if name == "IsSoftDeleted":
            return bool(self.is_soft_deleted)
        if name == "appRoleAssignments":
            return [r for r in self.app_roles if r] or None
        if name == "originalUserPrincipalName":
            return read_attribute(self.attributes, "userPrincipalName", strip_guest=False)
        return read_attribute(self.attributes, name)


def _get(container: Any, key: str) -> Any:
    if not isinstance(container, dict):
        return None
    if key in container:
        return container[key]
    lower = key.lower()
    for k, v in container.items():
        if isinstance(k, str) and k.lower() == lower:
            return v
    return None


def read_attribute(attributes: dict[str, Any], name: str, *, strip_guest: bool = True) -> Any:
    """A source attribute by Graph or Entra name; `a.b` reads sub-property b of a. An empty
    multi-value is null. userPrincipalName loses a B2B guest's #EXT# suffix, as in Entra."""
    if name in attributes:
        value = attributes[name]
    elif name in ENTRA_NAMES and ENTRA_NAMES[name] != name:
        path = ENTRA_NAMES[name]
        if path.endswith("[0]"):
            items = _get(attributes, path[:-3])
            value = items[0] if isinstance(items, list) and items else None
        else:
            value = read_attribute(attributes, path, strip_guest=strip_guest)
    elif "." in name:
        parent, _, child = name.partition(".")
        value = _get(_get(attributes, parent), child)
    else:
        value = _get(attributes, name)
    if isinstance(value, list | tuple) and not value:
        return None
    if strip_guest and name == "userPrincipalName" and isinstance(value, str):
        return strip_guest_suffix(value)
    return value


def graph_property(name: str) -> str | None:
    """The Graph `$select` property a source name needs; None for computed and reference sources."""
    if name in COMPUTED_SOURCES or name in REFERENCE_SOURCES:
        return None
    path = ENTRA_NAMES.get(name, name)
    return path.split(".")[0].split("[")[0]
