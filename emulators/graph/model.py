"""The emulated tenant: users, groups, memberships, the GoToMeeting service principal and its app
role assignments, subscriptions, the change log behind delta, and the emulator clock. Pure Python
guarded by one ``threading.RLock`` (no aiohttp, never awaits); the HTTP layer and the Python
control API both call in here. Read queries return JSON-ready dicts in Graph's shapes."""

from __future__ import annotations

import base64
import os
import random
import re
import threading
import time
import unicodedata
import uuid
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import GraphConfig
from .errors import GraphError, bad_request, not_found
from .odata import (
    TokenCodec,
    compile_filter,
    is_advanced,
    is_guid,
    parse_filter,
    parse_select,
    parse_top,
    require_no,
)

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_DOMAIN = "contoso.com"
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
ANY_ROLE: Any = object()
"""Sentinel for ``unassign``: remove every assignment of the principal."""

# --- property catalogs -------------------------------------------------------------------------
# kind: "s" scalar, "b" boolean, "m" collection of strings, "c" complex type, "r" read-only.
USER_PROPERTIES: dict[str, str] = {
    "id": "r",
    "accountEnabled": "b",
    "ageGroup": "s",
    "businessPhones": "m",
    "city": "s",
    "companyName": "s",
    "country": "s",
    "createdDateTime": "r",
    "creationType": "s",
    "deletedDateTime": "r",
    "department": "s",
    "displayName": "s",
    "employeeHireDate": "s",
    "employeeId": "s",
    "employeeOrgData": "c",
    "employeeType": "s",
    "externalUserState": "s",
    "faxNumber": "s",
    "givenName": "s",
    "jobTitle": "s",
    "mail": "s",
    "mailNickname": "s",
    "mobilePhone": "s",
    "officeLocation": "s",
    "onPremisesExtensionAttributes": "c",
    "onPremisesImmutableId": "s",
    "onPremisesSamAccountName": "s",
    "onPremisesSyncEnabled": "b",
    "otherMails": "m",
    "postalCode": "s",
    "preferredLanguage": "s",
    "proxyAddresses": "m",
    "showInAddressList": "b",
    "state": "s",
    "streetAddress": "s",
    "surname": "s",
    "usageLocation": "s",
    "userPrincipalName": "s",
    "userType": "s",
}
# docs/reference/microsoft-graph.md#users: the properties Graph returns when $select is absent.
USER_DEFAULT_SELECT: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
GROUP_PROPERTIES: dict[str, str] = {
    "id": "r",
    "classification": "s",
    "createdDateTime": "r",
    "deletedDateTime": "r",
    "description": "s",
    "displayName": "s",
    "expirationDateTime": "s",
    "groupTypes": "m",
    "isAssignableToRole": "b",
    "mail": "s",
    "mailEnabled": "b",
    "mailNickname": "s",
    "membershipRule": "s",
    "membershipRuleProcessingState": "s",
    "onPremisesSyncEnabled": "b",
    "preferredLanguage": "s",
    "proxyAddresses": "m",
    "renewedDateTime": "s",
    "securityEnabled": "b",
    "securityIdentifier": "s",
    "visibility": "s",
}
GROUP_DEFAULT_SELECT: tuple[str, ...] = (*(p for p in GROUP_PROPERTIES if p != "id"), "id")
EXTENSION_ATTRIBUTE_KEYS = tuple(f"extensionAttribute{i}" for i in range(1, 16))
EMPLOYEE_ORG_DATA_KEYS = ("costCenter", "division")

USER_SELECT = {p.lower(): p for p in USER_PROPERTIES}
GROUP_SELECT = {p.lower(): p for p in GROUP_PROPERTIES}
GROUP_DELTA_SELECT = {**GROUP_SELECT, "members": "members"}
MEMBER_SELECT = {**USER_SELECT, **GROUP_SELECT}
USER_FILTERABLE = {p.lower(): p for p, kind in USER_PROPERTIES.items() if kind in ("s", "b", "r")}
GROUP_FILTERABLE = {p.lower(): p for p, kind in GROUP_PROPERTIES.items() if kind in ("s", "b", "r")}
ASSIGNMENT_FILTERABLE = {
    p.lower(): p for p in ("id", "principalDisplayName", "principalId", "principalType", "resourceId", "appRoleId")
}
USER_TYPE_NAME = "Microsoft.DirectoryServices.User"
GROUP_TYPE_NAME = "Microsoft.DirectoryServices.Group"

LIFECYCLE: frozenset[str] = frozenset({"@lifecycle"})
"""Change-log marker for create / soft delete / restore / hard delete (always tracked by delta)."""
MEMBERS: frozenset[str] = frozenset({"members"})

_NON_SLUG = re.compile(r"[^a-z0-9.\-_]")


def iso(dt: datetime) -> str:
    """Graph's plain timestamp form (``2024-01-01T00:00:00Z``)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso7(dt: datetime) -> str:
    """Graph's 7-digit fractional form used on subscriptions (``...45.9356913Z``)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def parse_datetime(value: Any, field_name: str) -> datetime:
    if not isinstance(value, str):
        raise bad_request(f"Invalid value for property '{field_name}'.", "InvalidRequest")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"Invalid value for property '{field_name}': '{value}'.", "InvalidRequest") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def new_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def slug(text: str) -> str:
    """ASCII, lower-case UPN local part: ``José Núñez`` -> ``jose.nunez``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_SLUG.sub("", ascii_text.lower().replace(" ", ".")).strip(".") or "user"


class Clock:
    """Wall time plus a controllable offset: ``advance`` moves token lifetimes and
    subscription expiry forward without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        self.offset += seconds


class OrderedIndex:
    """Keys in insertion order with increasing ordinals. Skiptokens carry the last ordinal
    served, so resuming is a bisect and a page costs O(page), never O(N) (no O(N²) paging)."""

    __slots__ = ("_keys", "_ord_of", "_ords")

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._ords: list[int] = []
        self._ord_of: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._ord_of

    def add(self, key: str, ordinal: int) -> None:
        if key in self._ord_of:
            return
        if self._ords and ordinal <= self._ords[-1]:
            raise ValueError("ordinals must increase")
        self._keys.append(key)
        self._ords.append(ordinal)
        self._ord_of[key] = ordinal

    def remove(self, key: str) -> bool:
        ordinal = self._ord_of.pop(key, None)
        if ordinal is None:
            return False
        i = bisect_left(self._ords, ordinal)
        del self._keys[i]
        del self._ords[i]
        return True

    def snapshot(self) -> list[str]:
        return list(self._keys)

    def iter_from(self, ordinal: int) -> Iterator[tuple[int, str]]:
        """(ordinal, key) pairs with ordinal >= ``ordinal``, in order."""
        i = bisect_left(self._ords, ordinal)
        keys, ords = self._keys, self._ords
        while i < len(keys):
            yield ords[i], keys[i]
            i += 1


class DirectoryObject:
    __slots__ = ("created_seq", "deleted", "id", "ordinal", "props")

    kind = "object"

    def __init__(self, object_id: str, ordinal: int, props: dict[str, Any]) -> None:
        self.id = object_id
        self.ordinal = ordinal
        self.props = props
        self.deleted: str | None = None  # deletedDateTime while soft-deleted
        self.created_seq = 0


class User(DirectoryObject):
    __slots__ = ()
    kind = "user"


class Group(DirectoryObject):
    __slots__ = ("members",)
    kind = "group"

    def __init__(self, object_id: str, ordinal: int, props: dict[str, Any]) -> None:
        super().__init__(object_id, ordinal, props)
        self.members = OrderedIndex()


@dataclass(slots=True)
class Tombstone:
    kind: str
    created_seq: int


@dataclass(slots=True)
class Assignment:
    id: str
    app_role_id: str
    principal_id: str
    principal_type: str
    created: str
    ordinal: int


@dataclass(slots=True)
class Outgoing:
    """One notification waiting to be POSTed: change notifications and lifecycle events go to
    different URLs and are never mixed in one POST."""

    url: str
    channel: str  # "change" | "lifecycle"
    item: dict[str, Any]
    attempts: int = 0
    first_attempt: float | None = None


@dataclass
class Subscription:
    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_notification_url: str | None
    expiration: datetime
    client_state: str | None
    latest_supported_tls_version: str
    application_id: str
    creator_id: str
    target_kind: str  # "user" | "group"
    target_id: str | None
    members_only: bool = False
    owners_only: bool = False
    paused: bool = False
    held: list[Outgoing] = field(default_factory=list)

    @property
    def change_types(self) -> set[str]:
        return set(self.change_type.split(","))

    def matches(self, kind: str, object_id: str, membership: bool) -> bool:
        if kind != self.target_kind or self.owners_only:
            return False
        if self.target_id is not None and self.target_id != object_id:
            return False
        return membership or not self.members_only

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": iso7(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": self.latest_supported_tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_token: str | None = None
    count: int | None = None


_SUBSCRIPTION_RESOURCE = re.compile(
    r"^/?(?P<coll>users|groups)(?:/(?P<id>[0-9a-fA-F-]{36})(?:/(?P<nav>members|owners))?)?/?$", re.IGNORECASE
)
_SUBSCRIPTION_FIELDS = {
    "changeType",
    "notificationUrl",
    "lifecycleNotificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "latestSupportedTlsVersion",
    "includeResourceData",
    "@odata.type",
}
_TLS_VERSIONS = {"v1_0", "v1_1", "v1_2", "v1_3"}
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def _app_role(rng: random.Random, value: str, display: str, description: str) -> dict[str, Any]:
    return {
        "allowedMemberTypes": ["User"],
        "description": description,
        "displayName": display,
        "id": new_guid(rng),
        "isEnabled": True,
        "origin": "Application",
        "value": value,
    }


def default_service_principal(rng: random.Random) -> dict[str, Any]:
    app_id = new_guid(rng)
    return {
        "id": new_guid(rng),
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": "GoToMeeting",
        "appDescription": None,
        "appId": app_id,
        "appOwnerOrganizationId": new_guid(rng),
        "appRoleAssignmentRequired": True,
        "description": None,
        "displayName": "GoToMeeting",
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "preferredSingleSignOnMode": None,
        "replyUrls": [],
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs",
        "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
        "appRoles": [
            _app_role(rng, "MeetingOrganizer", "Meeting Organizer", "Can organize GoToMeeting meetings."),
            _app_role(rng, "WebinarOrganizer", "Webinar Organizer", "Can organize GoToWebinar webinars."),
            _app_role(rng, "Admin", "Administrator", "GoTo account administrator."),
        ],
        "oauth2PermissionScopes": [],
        "keyCredentials": [],
        "passwordCredentials": [],
    }


class Tenant:
    """One emulated Entra tenant. Every public method takes ``self.lock``."""

    def __init__(self, config: GraphConfig | None = None, *, tenant_id: str | None = None, seed: int | None = None):
        self.config = config or GraphConfig()
        self.lock = threading.RLock()
        self.clock = Clock()
        self.seed_value = seed
        self.outgoing: list[Outgoing] = []
        # Where notifications go; the emulator points this at its deliverer. Called with the
        # lock held, so it must only enqueue.
        self.outbox: Callable[[list[Outgoing]], None] = self.outgoing.extend
        self.reset(tenant_id=tenant_id)

    # --- state ---------------------------------------------------------------------------------
    def reset(self, *, tenant_id: str | None = None, service_principal: dict[str, Any] | None = None) -> None:
        """Empties the tenant (keeps the clock). Old delta and page tokens become unknown."""
        with self.lock:
            # String seeds keep tenant ids apart from generated ones made with the same number.
            seed = f"tenant:{self.seed_value}" if self.seed_value is not None else None
            self._rng = random.Random(seed)
            self.tenant_id = tenant_id or new_guid(self._rng)
            self.default_domain = DEFAULT_DOMAIN
            self.sp = default_service_principal(self._rng)
            # The calling app (gotosync): owner of subscriptions.
            self.client_app_id = new_guid(self._rng)
            self.client_sp_id = new_guid(self._rng)
            if service_principal:
                self.sp.update(service_principal)
            self.users: dict[str, User] = {}
            self.user_index = OrderedIndex()
            self.upn_index: dict[str, str] = {}
            self.groups: dict[str, Group] = {}
            self.group_index = OrderedIndex()
            self.tombstones: dict[str, Tombstone] = {}
            self.member_of: dict[str, set[str]] = {}
            self.assignments: dict[str, Assignment] = {}
            self.assignment_index = OrderedIndex()
            self.assignments_by_principal: dict[str, list[str]] = {}
            self.subscriptions: dict[str, Subscription] = {}
            self.seq = 0
            self.changes: list[tuple[int, str, str, frozenset[str], tuple[str, bool, str] | None]] = []
            self.token_epoch = 0
            self.codec = TokenCodec(os.urandom(16))
            self.window_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
            self._ordinal = 0

    def new_id(self) -> str:
        return new_guid(self._rng)

    def next_ordinal(self) -> int:
        self._ordinal += 1
        return self._ordinal

    def now(self) -> datetime:
        return self.clock.now()

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock.advance(seconds)
            self._purge_expired_subscriptions()

    def expire_delta_tokens(self) -> None:
        """Every delta token issued so far becomes unknown (410 on next use), and the change
        log they needed is dropped."""
        with self.lock:
            self.token_epoch += 1
            self.changes.clear()
            self.window_cache.clear()

    def _record(self, kind: str, object_id: str, props: frozenset[str], member: tuple[str, bool, str] | None = None):
        self.seq += 1
        self.changes.append((self.seq, kind, object_id, props, member))

    # --- lookups -------------------------------------------------------------------------------
    def _user(self, key: str, *, allow_deleted: bool = False) -> User:
        user = self.users.get(key.lower())
        if user is None and "@" in key:
            uid = self.upn_index.get(key.lower())
            user = self.users.get(uid) if uid else None
        if user is None or (user.deleted and not allow_deleted):
            raise not_found(key)
        return user

    def _group(self, key: str, *, allow_deleted: bool = False) -> Group:
        group = self.groups.get(key.lower())
        if group is None or (group.deleted and not allow_deleted):
            raise not_found(key)
        return group

    def _object(self, key: str) -> DirectoryObject:
        if key.lower() in self.groups:
            return self._group(key)
        return self._user(key)

    def find_user_id(self, key: str) -> str | None:
        """The id of a user given its id or UPN (soft-deleted included), else None."""
        with self.lock:
            try:
                return self._user(key, allow_deleted=True).id
            except GraphError:
                return None

    def find_group_id(self, key: str) -> str | None:
        """The id of a group given its id, displayName or mailNickname, else None."""
        with self.lock:
            if key.lower() in self.groups:
                return key.lower()
            folded = key.casefold()
            for group in self.groups.values():
                names = (group.props.get("displayName"), group.props.get("mailNickname"))
                if any(isinstance(n, str) and n.casefold() == folded for n in names):
                    return group.id
            return None

    def is_active(self, object_id: str) -> bool:
        obj = self.users.get(object_id) or self.groups.get(object_id)
        return obj is not None and obj.deleted is None

    # --- property values and rendering ---------------------------------------------------------
    @staticmethod
    def value(obj: DirectoryObject, prop: str) -> Any:
        if prop == "id":
            return obj.id
        if prop == "deletedDateTime":
            return obj.deleted
        if prop == "onPremisesExtensionAttributes":
            stored = obj.props.get(prop) or {}
            return {k: stored.get(k) for k in EXTENSION_ATTRIBUTE_KEYS}
        catalog = USER_PROPERTIES if obj.kind == "user" else GROUP_PROPERTIES
        if catalog.get(prop) == "m":
            return list(obj.props.get(prop, ()))
        return obj.props.get(prop)

    def render(self, obj: DirectoryObject, select: list[str] | tuple[str, ...] | None, typed: bool = False):
        catalog = USER_PROPERTIES if obj.kind == "user" else GROUP_PROPERTIES
        defaults = USER_DEFAULT_SELECT if obj.kind == "user" else GROUP_DEFAULT_SELECT
        out: dict[str, Any] = {"@odata.type": USER_TYPE if obj.kind == "user" else GROUP_TYPE} if typed else {}
        for prop in select or defaults:
            if prop in catalog:
                out[prop] = self.value(obj, prop)
            elif prop.startswith("extension_") and prop in obj.props:
                # Directory extensions come back only when selected and set
                # (docs/reference/microsoft-graph.md#users).
                out[prop] = obj.props[prop]
        return out

    # --- validation of writable attributes -----------------------------------------------------
    def _clean_attrs(self, attrs: Mapping[str, Any], catalog: dict[str, str], type_name: str) -> dict[str, Any]:
        lower = {p.lower(): p for p in catalog}
        clean: dict[str, Any] = {}
        for key, value in attrs.items():
            prop = lower.get(key.lower())
            if prop is None:
                if re.match(r"^extension_[0-9a-fA-F]{32}_\w+$", key):
                    clean[key] = value
                    continue
                raise bad_request(f"Property '{key}' does not exist on type '{type_name}'.")
            kind = catalog[prop]
            if kind == "r":
                raise bad_request(f"Property '{prop}' is read-only and cannot be set.")
            if value is None:
                clean[prop] = None
            elif kind == "b":
                if not isinstance(value, bool):
                    raise bad_request(f"Invalid value for property '{prop}': expected a boolean.")
                clean[prop] = value
            elif kind == "m":
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise bad_request(f"Invalid value for property '{prop}': expected a list of strings.")
                clean[prop] = list(value)
            elif kind == "c":
                clean[prop] = self._clean_complex(prop, value)
            else:
                if not isinstance(value, str):
                    raise bad_request(f"Invalid value for property '{prop}': expected a string.")
                clean[prop] = value
        return clean

    @staticmethod
    def _clean_complex(prop: str, value: Any) -> dict[str, Any] | None:
        allowed = EXTENSION_ATTRIBUTE_KEYS if prop == "onPremisesExtensionAttributes" else EMPLOYEE_ORG_DATA_KEYS
        if not isinstance(value, dict):
            raise bad_request(f"Invalid value for property '{prop}': expected an object.")
        lower = {k.lower(): k for k in allowed}
        out: dict[str, Any] = {}
        for key, item in value.items():
            canonical = lower.get(key.lower())
            if canonical is None:
                raise bad_request(f"Property '{key}' does not exist on the type of '{prop}'.")
            if item is not None and not isinstance(item, str):
                raise bad_request(f"Invalid value for '{prop}.{canonical}': expected a string.")
            out[canonical] = item
        if prop == "employeeOrgData":
            return {k: out.get(k) for k in EMPLOYEE_ORG_DATA_KEYS}
        return out

    @staticmethod
    def _store(props: dict[str, Any], prop: str, value: Any) -> None:
        # None and empty collections are not stored: the render fills defaults (saves memory).
        empty_complex = isinstance(value, dict) and not any(v is not None for v in value.values())
        if value is None or value == [] or empty_complex:
            props.pop(prop, None)
        elif prop == "onPremisesExtensionAttributes":
            props[prop] = {k: v for k, v in value.items() if v is not None}
        else:
            props[prop] = value

    def unique_upn(self, local: str, domain: str) -> str:
        candidate = f"{local}@{domain}"
        n = 1
        while candidate.lower() in self.upn_index:
            n += 1
            candidate = f"{local}{n}@{domain}"
        return candidate

    def _check_new_id(self, object_id: Any) -> str:
        if not isinstance(object_id, str) or not is_guid(object_id):
            raise bad_request(f"Invalid object identifier '{object_id}'.")
        object_id = object_id.lower()
        if object_id in self.users or object_id in self.groups or object_id in self.tombstones:
            raise bad_request(f"Another object with the same value for property id already exists: '{object_id}'.")
        return object_id

    # --- users: control API ------------------------------------------------------------------
    def create_user(self, **attrs: Any) -> str:
        """Creates an enabled user; ``userPrincipalName`` defaults to ``given.surname@domain``
        (deduplicated), ``mail`` to the UPN unless given (``mail=None`` makes a mailless user),
        ``mailNickname`` to the UPN's local part. Returns the new id."""
        with self.lock:
            created = attrs.pop("createdDateTime", None)
            object_id = self._check_new_id(attrs.pop("id")) if "id" in attrs else self.new_id()
            clean = self._clean_attrs(attrs, USER_PROPERTIES, USER_TYPE_NAME)
            upn = clean.get("userPrincipalName")
            if upn:
                if "@" not in upn:
                    raise bad_request(f"Invalid value specified for property 'userPrincipalName': {upn}")
                if upn.lower() in self.upn_index:
                    raise bad_request(
                        "Another object with the same value for property userPrincipalName already exists."
                    )
            else:
                given, surname = clean.get("givenName"), clean.get("surname")
                base = f"{given}.{surname}" if given and surname else clean.get("displayName") or "user"
                upn = self.unique_upn(slug(clean.get("mailNickname") or base), self.default_domain)
                clean["userPrincipalName"] = upn
            clean.setdefault("accountEnabled", True)
            clean.setdefault("mailNickname", upn.split("@", 1)[0])
            if "displayName" not in clean:
                names = [n for n in (clean.get("givenName"), clean.get("surname")) if n]
                clean["displayName"] = " ".join(names) if names else upn.split("@", 1)[0]
            clean.setdefault("mail", upn)
            clean.setdefault("userType", "Member")
            props: dict[str, Any] = {}
            for prop, value in clean.items():
                self._store(props, prop, value)
            props["createdDateTime"] = created or iso(self.now())
            user = User(object_id, self.next_ordinal(), props)
            self.users[object_id] = user
            self.user_index.add(object_id, user.ordinal)
            self.upn_index[upn.lower()] = object_id
            self._record("user", object_id, LIFECYCLE)
            user.created_seq = self.seq
            # creation arrives as `updated` (docs/reference/microsoft-graph.md#supported-resources)
            self._emit("user", object_id, "updated")
            return object_id

    def update_user(self, user_id: str, **attrs: Any) -> set[str]:
        """Sets attributes (``None`` clears); returns the properties that actually changed.
        Unchanged values record nothing, so delta and notifications stay quiet."""
        with self.lock:
            user = self._user(user_id)
            clean = self._clean_attrs(attrs, USER_PROPERTIES, USER_TYPE_NAME)
            if "userPrincipalName" in clean:
                upn = clean["userPrincipalName"]
                if not upn or "@" not in upn:
                    raise bad_request("Invalid value specified for property 'userPrincipalName' of resource 'User'.")
                owner = self.upn_index.get(upn.lower())
                if owner and owner != user.id:
                    raise bad_request(
                        "Another object with the same value for property userPrincipalName already exists."
                    )
            old_upn = str(user.props["userPrincipalName"]).lower()
            changed: set[str] = set()
            for prop, value in clean.items():
                if prop == "onPremisesExtensionAttributes" and value is not None:
                    merged = dict(user.props.get(prop) or {})
                    merged.update(value)
                    value = merged
                before = user.props.get(prop)
                self._store(user.props, prop, value)
                if user.props.get(prop) != before:
                    changed.add(prop)
            if "userPrincipalName" in changed:
                self.upn_index.pop(old_upn, None)
                self.upn_index[user.props["userPrincipalName"].lower()] = user.id
            if changed:
                self._record("user", user.id, frozenset(changed))
                self._emit("user", user.id, "updated")
            return changed

    def block_user(self, user_id: str) -> None:
        self.update_user(user_id, accountEnabled=False)

    def unblock_user(self, user_id: str) -> None:
        self.update_user(user_id, accountEnabled=True)

    def soft_delete_user(self, user_id: str) -> None:
        """Moves the user to the recycle bin: gone from /users and member lists, delta reports
        ``@removed: changed``, notifications say ``updated`` (docs/reference/microsoft-graph.md#removed-objects,
        docs/reference/microsoft-graph.md#supported-resources)."""
        with self.lock:
            user = self._user(user_id)
            self._soft_delete(user)
            self._emit("user", user.id, "updated")

    def restore_user(self, user_id: str) -> None:
        with self.lock:
            user = self._user(user_id, allow_deleted=True)
            if not user.deleted:
                raise bad_request(f"User '{user_id}' is not deleted.")
            self._restore(user)
            self._emit("user", user.id, "updated")

    def hard_delete_user(self, user_id: str) -> None:
        """Permanent deletion (from the recycle bin, or directly): memberships and assignments
        go, delta reports ``@removed: deleted``, notifications say ``deleted``."""
        with self.lock:
            user = self._user(user_id, allow_deleted=True)
            self._hard_delete(user)
            del self.users[user.id]
            self.user_index.remove(user.id)
            self.upn_index.pop(str(user.props.get("userPrincipalName", "")).lower(), None)
            self._emit("user", user.id, "deleted")

    def _soft_delete(self, obj: DirectoryObject) -> None:
        if obj.deleted:
            raise bad_request(f"Object '{obj.id}' is already deleted.")
        obj.deleted = iso(self.now())
        self._record(obj.kind, obj.id, LIFECYCLE)
        self._membership_visibility(obj, visible=False)

    def _restore(self, obj: DirectoryObject) -> None:
        obj.deleted = None
        self._record(obj.kind, obj.id, LIFECYCLE)
        self._membership_visibility(obj, visible=True)

    def _membership_visibility(self, obj: DirectoryObject, visible: bool) -> None:
        """A soft-deleted object drops out of its groups' member lists (and returns on
        restore); the stored membership is kept so restore brings it back."""
        for group_id in sorted(self.member_of.get(obj.id, ())):
            group = self.groups.get(group_id)
            if group is not None and not group.deleted:
                self._membership_changed(group, obj, added=visible)

    def _hard_delete(self, obj: DirectoryObject) -> None:
        was_visible = obj.deleted is None
        for group_id in sorted(self.member_of.pop(obj.id, ())):
            group = self.groups.get(group_id)
            if group is None:
                continue
            group.members.remove(obj.id)
            if was_visible and not group.deleted:
                self._membership_changed(group, obj, added=False)
        for assignment_id in self.assignments_by_principal.pop(obj.id, []):
            self.assignments.pop(assignment_id, None)
            self.assignment_index.remove(assignment_id)
        self._record(obj.kind, obj.id, LIFECYCLE)
        self.tombstones[obj.id] = Tombstone(obj.kind, obj.created_seq)

    # --- groups: control API -------------------------------------------------------------------
    def create_group(self, display_name: str, **attrs: Any) -> str:
        """Creates a security group (``members=[ids]`` adds members). Returns the new id."""
        with self.lock:
            members = list(attrs.pop("members", ()))
            created = attrs.pop("createdDateTime", None)
            object_id = self._check_new_id(attrs.pop("id")) if "id" in attrs else self.new_id()
            clean = self._clean_attrs({"displayName": display_name, **attrs}, GROUP_PROPERTIES, GROUP_TYPE_NAME)
            clean.setdefault("mailNickname", slug(display_name).replace(".", "-"))
            clean.setdefault("mailEnabled", False)
            clean.setdefault("securityEnabled", True)
            clean.setdefault("visibility", None)
            props: dict[str, Any] = {}
            for prop, value in clean.items():
                self._store(props, prop, value)
            props["createdDateTime"] = created or iso(self.now())
            group = Group(object_id, self.next_ordinal(), props)
            self.groups[object_id] = group
            self.group_index.add(object_id, group.ordinal)
            self._record("group", object_id, LIFECYCLE)
            group.created_seq = self.seq
            self._emit("group", object_id, "updated")
            for member in members:
                self.add_member(object_id, member)
            return object_id

    def update_group(self, group_id: str, **attrs: Any) -> set[str]:
        with self.lock:
            group = self._group(group_id)
            clean = self._clean_attrs(attrs, GROUP_PROPERTIES, GROUP_TYPE_NAME)
            changed: set[str] = set()
            for prop, value in clean.items():
                before = group.props.get(prop)
                self._store(group.props, prop, value)
                if group.props.get(prop) != before:
                    changed.add(prop)
            if changed:
                self._record("group", group.id, frozenset(changed))
                self._emit("group", group.id, "updated")
            return changed

    def soft_delete_group(self, group_id: str) -> None:
        with self.lock:
            group = self._group(group_id)
            self._soft_delete(group)
            self._emit("group", group.id, "updated")

    def restore_group(self, group_id: str) -> None:
        with self.lock:
            group = self._group(group_id, allow_deleted=True)
            if not group.deleted:
                raise bad_request(f"Group '{group_id}' is not deleted.")
            self._restore(group)
            self._emit("group", group.id, "updated")

    def hard_delete_group(self, group_id: str) -> None:
        with self.lock:
            group = self._group(group_id, allow_deleted=True)
            self._hard_delete(group)
            for member_id in group.members.snapshot():
                parents = self.member_of.get(member_id)
                if parents:
                    parents.discard(group.id)
            del self.groups[group.id]
            self.group_index.remove(group.id)
            self._emit("group", group.id, "deleted")

    def add_member(self, group_id: str, member_id: str) -> bool:
        """Adds a user or a group (nesting) as a direct member; False if already a member."""
        with self.lock:
            group = self._group(group_id)
            member = self._object(member_id)
            if member.id == group.id:
                raise bad_request("A group cannot be a member of itself.")
            if member.id in group.members:
                return False
            group.members.add(member.id, self.next_ordinal())
            self.member_of.setdefault(member.id, set()).add(group.id)
            self._membership_changed(group, member, added=True)
            return True

    def remove_member(self, group_id: str, member_id: str) -> bool:
        with self.lock:
            group = self._group(group_id)
            key = member_id.lower()
            if key not in group.members:
                uid = self.upn_index.get(key)
                if uid is None or uid not in group.members:
                    return False
                key = uid
            group.members.remove(key)
            self.member_of.get(key, set()).discard(group.id)
            member = self.users.get(key) or self.groups.get(key)
            if member is not None and not member.deleted:
                self._membership_changed(group, member, added=False)
            return True

    def _membership_changed(self, group: Group, member: DirectoryObject, added: bool) -> None:
        odata_type = USER_TYPE if member.kind == "user" else GROUP_TYPE
        self._record("group", group.id, MEMBERS, (member.id, added, odata_type))
        self._emit("group", group.id, "updated", membership=(member.id, added, odata_type))

    # --- assignments ---------------------------------------------------------------------------
    def role_id(self, role: str | None) -> str:
        """App role id for a role value, display name or id; None = Default Access
        (docs/reference/microsoft-graph.md#app-role-assignments)."""
        if role is None or role == DEFAULT_ACCESS_ROLE_ID or str(role).lower() == "default access":
            return DEFAULT_ACCESS_ROLE_ID
        for app_role in self.sp["appRoles"]:
            names = (app_role.get("value"), app_role.get("id"), app_role.get("displayName"))
            if role in names or any(isinstance(n, str) and n.lower() == str(role).lower() for n in names):
                if not app_role.get("isEnabled", True):
                    raise bad_request(f"App role '{role}' is disabled.")
                return str(app_role["id"])
        raise bad_request(f"Permission being assigned was not found on application '{self.sp['appId']}'.")

    def role_value(self, role_id: str) -> str | None:
        for app_role in self.sp["appRoles"]:
            if app_role["id"] == role_id:
                return app_role.get("value")
        return None

    def assign(self, principal_id: str, role: str | None = None) -> str:
        """Assigns a user or group to the app with a role (value such as ``MeetingOrganizer``;
        None = Default Access). Idempotent per (principal, role). Returns the assignment id."""
        with self.lock:
            principal = self._object(principal_id)
            role_id = self.role_id(role)
            for existing in self.assignments_by_principal.get(principal.id, []):
                if self.assignments[existing].app_role_id == role_id:
                    return existing
            # Real ids are 43-char base64url strings, not GUIDs
            # (docs/reference/microsoft-graph.md#app-role-assignments).
            raw = uuid.UUID(principal.id).bytes + self._rng.getrandbits(128).to_bytes(16, "big")
            assignment_id = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            assignment = Assignment(
                id=assignment_id,
                app_role_id=role_id,
                principal_id=principal.id,
                principal_type="User" if principal.kind == "user" else "Group",
                created=iso(self.now()),
                ordinal=self.next_ordinal(),
            )
            self.assignments[assignment_id] = assignment
            self.assignment_index.add(assignment_id, assignment.ordinal)
            self.assignments_by_principal.setdefault(principal.id, []).append(assignment_id)
            if self.config.notify_on_assignment_change:
                self._emit(principal.kind, principal.id, "updated")
            return assignment_id

    def unassign(self, principal_id: str, role: Any = ANY_ROLE) -> int:
        """Removes the principal's assignments (all, or the one with ``role``); returns how many."""
        with self.lock:
            key = principal_id.lower()
            if key not in self.assignments_by_principal and "@" in key:
                key = self.upn_index.get(key, key)
            ids = self.assignments_by_principal.get(key, [])
            role_id = None if role is ANY_ROLE else self.role_id(role)
            removed = [a for a in ids if role_id is None or self.assignments[a].app_role_id == role_id]
            for assignment_id in removed:
                ids.remove(assignment_id)
                del self.assignments[assignment_id]
                self.assignment_index.remove(assignment_id)
            if not ids:
                self.assignments_by_principal.pop(key, None)
            if removed and self.config.notify_on_assignment_change:
                kind = "user" if key in self.users else "group"
                self._emit(kind, key, "updated")
            return len(removed)

    def _assignment_visible(self, assignment: Assignment) -> bool:
        if not self.config.hide_soft_deleted_assignments:
            return True
        return self.is_active(assignment.principal_id)

    def render_assignment(self, assignment: Assignment) -> dict[str, Any]:
        principal = self.users.get(assignment.principal_id) or self.groups.get(assignment.principal_id)
        return {
            "id": assignment.id,
            "deletedDateTime": None,
            "appRoleId": assignment.app_role_id,
            "createdDateTime": assignment.created,
            "principalDisplayName": principal.props.get("displayName") if principal else None,
            "principalId": assignment.principal_id,
            "principalType": assignment.principal_type,
            "resourceDisplayName": self.sp["displayName"],
            "resourceId": self.sp["id"],
        }

    # --- read queries (the HTTP layer) ---------------------------------------------------------
    def _page_token(self, scope: str, params: Mapping[str, str]) -> int:
        token = params.get("$skiptoken")
        if token is None:
            return 0
        payload = self.codec.decode(token)
        valid = payload is not None and payload.get("k") == scope and isinstance(payload.get("o"), int)
        if payload is None or not valid or self._page_token_expired(payload):
            raise GraphError(
                400,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            )
        return int(payload["o"])

    def _page_token_expired(self, payload: Mapping[str, Any]) -> bool:
        """The UNCONFIRMED expiry of a list's page token (GraphConfig.skiptoken_expiry)."""
        mode = self.config.skiptoken_expiry
        if mode == "lifetime":
            issued = payload.get("t")
            if not isinstance(issued, int | float):
                return True
            return self.clock.time() - issued > self.config.skiptoken_lifetime_seconds
        if mode == "on-change":
            return payload.get("s") != self.seq
        return False

    def _paged(
        self,
        scope: str,
        index: OrderedIndex,
        params: Mapping[str, str],
        eventual: bool,
        visible: Callable[[str], bool],
        render: Callable[[str], dict[str, Any]],
    ) -> Page:
        """A page of ``index`` after the skiptoken; nextLink only when another visible item
        exists, so the last page never has a trailing empty page."""
        require_no(params, ("$skip",), "this collection")
        require_no(params, ("$orderby", "$expand", "$search"), "this collection in the emulator")
        top = parse_top(params, self.config.default_page_size, self.config.max_page_size)
        if self.config.page_size_cap > 0:
            top = min(top, self.config.page_size_cap)
        start = self._page_token(scope, params)
        count = self._count(params, eventual, lambda: sum(1 for k in index.snapshot() if visible(k)))
        keys: list[str] = []
        next_token = None
        for ordinal, key in index.iter_from(start):
            if not visible(key):
                continue
            if len(keys) == top:
                # Issued at (emulator clock) and after which change: for GraphConfig.skiptoken_expiry.
                next_token = self.codec.encode({"k": scope, "o": ordinal, "t": self.clock.time(), "s": self.seq})
                break
            keys.append(key)
        return Page([render(k) for k in keys], next_token, count if "$skiptoken" not in params else None)

    @staticmethod
    def _count(params: Mapping[str, str], eventual: bool, counter: Callable[[], int]) -> int | None:
        raw = params.get("$count")
        if raw is None or raw.lower() == "false":
            return None
        if raw.lower() != "true":
            raise bad_request(f"Invalid value '{raw}' for $count.")
        if not eventual:
            # $count on directory objects is an advanced query
            # (docs/reference/microsoft-graph.md#counting-and-advanced-queries).
            raise bad_request(
                "$count is not currently supported without the header 'ConsistencyLevel: eventual'.",
                "Request_UnsupportedQuery",
            )
        return counter()

    def _filter(
        self, params: Mapping[str, str], props: Mapping[str, str], type_name: str, eventual: bool | None = None
    ) -> Callable[[Callable[[str], Any]], bool] | None:
        """``eventual`` None: the collection has no advanced queries at all (assignments)."""
        raw = params.get("$filter")
        if not raw:
            return None
        node = parse_filter(raw, props, type_name)
        if is_advanced(node):
            allowed = eventual and params.get("$count", "").lower() == "true"
            if not allowed:
                # Advanced filters need 'ConsistencyLevel: eventual' and $count=true
                # (docs/reference/microsoft-graph.md#counting-and-advanced-queries).
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Unsupported or invalid query filter clause specified for resource '{type_name}'"
                    + ("." if eventual is None else " without 'ConsistencyLevel: eventual' and $count=true."),
                )
        return compile_filter(node)

    def list_users(self, params: Mapping[str, str], eventual: bool = False) -> Page:
        with self.lock:
            select = parse_select(params.get("$select"), USER_SELECT, USER_TYPE_NAME)
            predicate = self._filter(params, USER_FILTERABLE, USER_TYPE_NAME, eventual)

            def visible(uid: str) -> bool:
                user = self.users[uid]
                if user.deleted:
                    return False
                return predicate is None or predicate(lambda p: self.value(user, p))

            return self._paged(
                "users", self.user_index, params, eventual, visible, lambda uid: self.render(self.users[uid], select)
            )

    def count_users(self, eventual: bool) -> int:
        """``/users/$count`` (an advanced query: needs ConsistencyLevel: eventual)."""
        with self.lock:
            return (
                self._count({"$count": "true"}, eventual, lambda: sum(1 for u in self.users.values() if not u.deleted))
                or 0
            )

    def get_user(self, key: str, params: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            select = parse_select(params.get("$select"), USER_SELECT, USER_TYPE_NAME)
            return self.render(self._user(key), select)

    def list_groups(self, params: Mapping[str, str], eventual: bool = False) -> Page:
        with self.lock:
            select = parse_select(params.get("$select"), GROUP_SELECT, GROUP_TYPE_NAME)
            predicate = self._filter(params, GROUP_FILTERABLE, GROUP_TYPE_NAME, eventual)

            def visible(gid: str) -> bool:
                group = self.groups[gid]
                if group.deleted:
                    return False
                return predicate is None or predicate(lambda p: self.value(group, p))

            return self._paged(
                "groups", self.group_index, params, eventual, visible, lambda gid: self.render(self.groups[gid], select)
            )

    def count_groups(self, eventual: bool) -> int:
        with self.lock:
            return (
                self._count({"$count": "true"}, eventual, lambda: sum(1 for g in self.groups.values() if not g.deleted))
                or 0
            )

    def get_group(self, key: str, params: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            select = parse_select(params.get("$select"), GROUP_SELECT, GROUP_TYPE_NAME)
            return self.render(self._group(key), select)

    def _cast_ok(self, cast: str | None, object_id: str) -> bool:
        if cast is None:
            return True
        return (cast == "user") == (object_id in self.users)

    def list_members(self, group_id: str, params: Mapping[str, str], eventual: bool, cast: str | None = None) -> Page:
        """Direct members (docs/reference/microsoft-graph.md#groups-and-members): users and nested groups, each
        with its ``@odata.type``."""
        with self.lock:
            group = self._group(group_id)
            select = parse_select(params.get("$select"), MEMBER_SELECT, "microsoft.graph.directoryObject")

            def visible(mid: str) -> bool:
                return self.is_active(mid) and self._cast_ok(cast, mid)

            def render(mid: str) -> dict[str, Any]:
                obj = self.users.get(mid) or self.groups[mid]
                return self.render(obj, select, typed=True)

            return self._paged(f"members:{group.id}:{cast}", group.members, params, eventual, visible, render)

    def transitive_member_ids(self, group_id: str) -> list[str]:
        """Flattened nested membership, breadth first, each object once (nested groups included)."""
        with self.lock:
            root = self._group(group_id)
            seen: dict[str, None] = {}
            queue = [root]
            visited = {root.id}
            while queue:
                group = queue.pop(0)
                for mid in group.members.snapshot():
                    if not self.is_active(mid) or mid in seen:
                        continue
                    seen[mid] = None
                    nested = self.groups.get(mid)
                    if nested is not None and nested.id not in visited:
                        visited.add(nested.id)
                        queue.append(nested)
            return list(seen)

    def list_transitive_members(
        self, group_id: str, params: Mapping[str, str], eventual: bool, cast: str | None = None
    ) -> Page:
        with self.lock:
            if cast is not None and not (eventual and params.get("$count", "").lower() == "true"):
                # The cast on transitiveMembers is an advanced query
                # (docs/reference/microsoft-graph.md#groups-and-members).
                raise bad_request(
                    "A type cast on transitiveMembers requires 'ConsistencyLevel: eventual' and $count=true.",
                    "Request_UnsupportedQuery",
                )
            select = parse_select(params.get("$select"), MEMBER_SELECT, "microsoft.graph.directoryObject")
            ids = [m for m in self.transitive_member_ids(group_id) if self._cast_ok(cast, m)]
            # The flattened list is computed per request; its position is the skiptoken.
            index = OrderedIndex()
            for i, mid in enumerate(ids):
                index.add(mid, i + 1)

            def render(mid: str) -> dict[str, Any]:
                return self.render(self.users.get(mid) or self.groups[mid], select, typed=True)

            scope = f"transitive:{group_id.lower()}:{cast}"
            return self._paged(scope, index, params, eventual, lambda _m: True, render)

    def member_of_ids(self, object_id: str, transitive: bool) -> list[str]:
        with self.lock:
            obj = self._object(object_id)
            result: dict[str, None] = {}
            queue = [obj.id]
            while queue:
                current = queue.pop(0)
                for gid in sorted(self.member_of.get(current, ()), key=lambda g: self.groups[g].ordinal):
                    if gid in result or not self.is_active(gid):
                        continue
                    result[gid] = None
                    if transitive:
                        queue.append(gid)
            return list(result)

    def list_member_of(self, object_id: str, params: Mapping[str, str], transitive: bool) -> Page:
        with self.lock:
            select = parse_select(params.get("$select"), GROUP_SELECT, GROUP_TYPE_NAME)
            ids = self.member_of_ids(object_id, transitive)
            return Page([self.render(self.groups[g], select, typed=True) for g in ids])

    def get_service_principal(self, key: str, params: Mapping[str, str], by_app_id: bool = False) -> dict[str, Any]:
        with self.lock:
            self._service_principal(key, by_app_id)
            return self._render_sp(params)

    def _service_principal(self, key: str, by_app_id: bool) -> dict[str, Any]:
        wanted = self.sp["appId"] if by_app_id else self.sp["id"]
        if key.lower() != wanted:
            raise not_found(key)
        return self.sp

    def _render_sp(self, params: Mapping[str, str]) -> dict[str, Any]:
        catalog = {k.lower(): k for k in self.sp}
        select = parse_select(params.get("$select"), catalog, "Microsoft.DirectoryServices.ServicePrincipal")
        return {k: self.sp[k] for k in select} if select else dict(self.sp)

    def list_service_principals(self, params: Mapping[str, str]) -> Page:
        with self.lock:
            props = {p.lower(): p for p in ("id", "appId", "displayName", "servicePrincipalType")}
            predicate = self._filter(params, props, "Microsoft.DirectoryServices.ServicePrincipal")
            if predicate is not None and not predicate(lambda p: self.sp.get(p)):
                return Page([])
            return Page([self._render_sp(params)])

    def list_app_role_assigned_to(
        self, key: str, params: Mapping[str, str], eventual: bool, by_app_id: bool = False
    ) -> Page:
        """Every user and group assigned to the app, paged (default 100, max 999;
        docs/reference/microsoft-graph.md#app-role-assignments)."""
        with self.lock:
            self._service_principal(key, by_app_id)
            predicate = self._filter(params, ASSIGNMENT_FILTERABLE, "microsoft.graph.appRoleAssignment")
            if "$select" in params:
                catalog = {k.lower(): k for k in self.render_assignment_template()}
                select = parse_select(params.get("$select"), catalog, "microsoft.graph.appRoleAssignment")
            else:
                select = None

            def visible(aid: str) -> bool:
                assignment = self.assignments[aid]
                if not self._assignment_visible(assignment):
                    return False
                if predicate is None:
                    return True
                rendered = self.render_assignment(assignment)
                return predicate(rendered.get)

            def render(aid: str) -> dict[str, Any]:
                rendered = self.render_assignment(self.assignments[aid])
                return {k: rendered[k] for k in select} if select else rendered

            return self._paged("assignments", self.assignment_index, params, eventual, visible, render)

    @staticmethod
    def render_assignment_template() -> dict[str, Any]:
        return dict.fromkeys(
            (
                "id",
                "deletedDateTime",
                "appRoleId",
                "createdDateTime",
                "principalDisplayName",
                "principalId",
                "principalType",
                "resourceDisplayName",
                "resourceId",
            )
        )

    def list_principal_assignments(self, object_id: str, params: Mapping[str, str]) -> Page:
        """``/users/{id}/appRoleAssignments`` and ``/groups/{id}/appRoleAssignments``."""
        with self.lock:
            obj = self._object(object_id)
            predicate = self._filter(params, ASSIGNMENT_FILTERABLE, "microsoft.graph.appRoleAssignment")
            items = [self.render_assignment(self.assignments[a]) for a in self.assignments_by_principal.get(obj.id, [])]
            return Page([i for i in items if predicate is None or predicate(i.get)])

    def list_deleted(self, kind: str, params: Mapping[str, str]) -> Page:
        """``/directory/deletedItems/microsoft.graph.user|group``: the recycle bin."""
        with self.lock:
            catalog, index, store = (
                (USER_SELECT, self.user_index, self.users)
                if kind == "user"
                else (GROUP_SELECT, self.group_index, self.groups)
            )
            select = parse_select(params.get("$select"), catalog, USER_TYPE_NAME if kind == "user" else GROUP_TYPE_NAME)
            select = select or [*(USER_DEFAULT_SELECT if kind == "user" else GROUP_DEFAULT_SELECT), "deletedDateTime"]
            return self._paged(
                f"deleted:{kind}",
                index,
                params,
                False,
                lambda k: store[k].deleted is not None,  # type: ignore[index]
                lambda k: self.render(store[k], select),  # type: ignore[index]
            )

    def get_deleted(self, object_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            obj = self.users.get(object_id.lower()) or self.groups.get(object_id.lower())
            if obj is None or not obj.deleted:
                raise not_found(object_id)
            catalog = USER_SELECT if obj.kind == "user" else GROUP_SELECT
            select = parse_select(params.get("$select"), catalog, USER_TYPE_NAME)
            defaults = USER_DEFAULT_SELECT if obj.kind == "user" else GROUP_DEFAULT_SELECT
            return self.render(obj, select or [*defaults, "deletedDateTime"], typed=True)

    # --- subscriptions -------------------------------------------------------------------------
    def _purge_expired_subscriptions(self) -> None:
        # Expired subscriptions are deleted by Graph (on the emulator clock here;
        # docs/reference/microsoft-graph.md#subscription-lifetime).
        now = self.now()
        for sub_id in [s.id for s in self.subscriptions.values() if s.expiration <= now]:
            del self.subscriptions[sub_id]

    def _check_quota(self) -> None:
        self._purge_expired_subscriptions()
        count = len(self.subscriptions)
        if count >= self.config.subscription_quota_per_app or count >= self.config.subscription_quota_per_tenant:
            raise GraphError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The number of subscriptions for "
                "this application and tenant has reached the quota for users and groups.]",
            )

    def _check_expiration(self, value: Any) -> datetime:
        expiration = parse_datetime(value, "expirationDateTime")
        now = self.now()
        if expiration <= now:
            raise bad_request("Subscription expiration can only be in the future.", "InvalidRequest")
        limit = self.config.subscription_max_minutes
        if expiration > now + timedelta(minutes=limit):
            raise bad_request(f"Subscription expiration can only be {limit} minutes in the future.", "InvalidRequest")
        return expiration

    def _check_url(self, value: Any, field_name: str) -> str:
        if not isinstance(value, str) or not re.match(r"^https?://[^\s/?#]+", value):
            raise bad_request(f"Invalid '{field_name}': '{value}'.", "InvalidRequest")
        if self.config.require_https_notification_url and not value.startswith("https://"):
            raise bad_request(f"The {field_name} must use the HTTPS protocol.", "InvalidRequest")
        return value

    def prepare_subscription(self, body: Mapping[str, Any]) -> Subscription:
        """Validates a POST /subscriptions body (docs/reference/microsoft-graph.md#subscription-lifetime) into a
        subscription that is not yet stored; the caller runs the validation handshake, then
        ``add_subscription``."""
        with self.lock:
            unknown = set(body) - _SUBSCRIPTION_FIELDS
            if unknown:
                raise bad_request(f"Invalid property '{sorted(unknown)[0]}' for subscription.", "InvalidRequest")
            for required in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
                if not body.get(required):
                    raise bad_request(f"Property '{required}' is required.", "InvalidRequest")
            resource = str(body["resource"])
            match = _SUBSCRIPTION_RESOURCE.match(resource)
            if match is None:
                raise bad_request(
                    f"Resource '{resource}' is not supported for change notifications by this emulator "
                    "(users, users/{id}, groups, groups/{id}, groups/{id}/members).",
                    "InvalidRequest",
                )
            change_types = [c.strip() for c in str(body["changeType"]).split(",") if c.strip()]
            # Users and groups accept updated and deleted only (docs/reference/microsoft-graph.md#supported-resources).
            bad = [c for c in change_types if c not in ("updated", "deleted")]
            if bad or not change_types:
                raise bad_request(
                    f"ChangeType '{','.join(bad) or body['changeType']}' is not supported for resource '{resource}'.",
                    "InvalidRequest",
                )
            client_state = body.get("clientState")
            if client_state is not None and (
                not isinstance(client_state, str) or len(client_state) > self.config.client_state_max_length
            ):
                raise bad_request(
                    f"clientState must be a string of at most {self.config.client_state_max_length} characters.",
                    "InvalidRequest",
                )
            if body.get("includeResourceData"):
                raise bad_request("includeResourceData is not supported for users and groups.", "InvalidRequest")
            tls = body.get("latestSupportedTlsVersion") or "v1_2"
            if tls not in _TLS_VERSIONS:
                raise bad_request(f"Invalid latestSupportedTlsVersion '{tls}'.", "InvalidRequest")
            lifecycle_url = body.get("lifecycleNotificationUrl")
            sub = Subscription(
                id=self.new_id(),
                resource=resource,
                change_type=",".join(dict.fromkeys(change_types)),
                notification_url=self._check_url(body["notificationUrl"], "notificationUrl"),
                lifecycle_notification_url=(
                    self._check_url(lifecycle_url, "lifecycleNotificationUrl") if lifecycle_url else None
                ),
                expiration=self._check_expiration(body["expirationDateTime"]),
                client_state=client_state,
                latest_supported_tls_version=tls,
                application_id=self.client_app_id,
                creator_id=self.client_sp_id,
                target_kind="user" if match.group("coll").lower() == "users" else "group",
                target_id=match.group("id").lower() if match.group("id") else None,
                members_only=(match.group("nav") or "").lower() == "members",
                owners_only=(match.group("nav") or "").lower() == "owners",
            )
            self._check_quota()
            return sub

    def add_subscription(self, sub: Subscription) -> dict[str, Any]:
        with self.lock:
            self._check_quota()  # again: other creations may have raced the handshake
            self.subscriptions[sub.id] = sub
            return sub.as_json()

    def _subscription(self, sub_id: str) -> Subscription:
        self._purge_expired_subscriptions()
        sub = self.subscriptions.get(sub_id.lower())
        if sub is None:
            raise GraphError(404, "ResourceNotFound", f"The object was not found. Subscription '{sub_id}'.")
        return sub

    def get_subscription(self, sub_id: str) -> dict[str, Any]:
        with self.lock:
            return self._subscription(sub_id).as_json()

    def list_subscriptions(self) -> list[dict[str, Any]]:
        with self.lock:
            self._purge_expired_subscriptions()
            return [s.as_json() for s in self.subscriptions.values()]

    def check_subscription_patch(self, sub_id: str, body: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
        """Validates a PATCH (docs/reference/microsoft-graph.md#subscription-lifetime): only ``expirationDateTime``
        and ``notificationUrl`` change."""
        with self.lock:
            self._subscription(sub_id)
            unknown = set(body) - {"expirationDateTime", "notificationUrl", "@odata.type"}
            if unknown:
                raise bad_request(
                    f"Property '{sorted(unknown)[0]}' cannot be updated on a subscription.", "InvalidRequest"
                )
            expiration = self._check_expiration(body["expirationDateTime"]) if "expirationDateTime" in body else None
            url = self._check_url(body["notificationUrl"], "notificationUrl") if "notificationUrl" in body else None
            if expiration is None and url is None:
                raise bad_request("Property 'expirationDateTime' is required.", "InvalidRequest")
            return expiration, url

    def apply_subscription_patch(self, sub_id: str, expiration: datetime | None, url: str | None) -> dict[str, Any]:
        with self.lock:
            sub = self._subscription(sub_id)
            if expiration is not None:
                sub.expiration = expiration
            if url is not None:
                sub.notification_url = url
            # renewing also renews Graph's access (docs/reference/microsoft-graph.md#lifecycle-events)
            self._resume(sub)
            return sub.as_json()

    def delete_subscription(self, sub_id: str) -> None:
        with self.lock:
            sub = self._subscription(sub_id)
            del self.subscriptions[sub.id]

    def reauthorize_subscription(self, sub_id: str) -> None:
        with self.lock:
            self._resume(self._subscription(sub_id))

    def _resume(self, sub: Subscription) -> None:
        sub.paused = False
        held, sub.held = sub.held, []
        if held:
            self.outbox(held)

    def remove_subscription(self, sub_id: str) -> None:
        """Graph drops the subscription on its own (renewal then gets 404)."""
        with self.lock:
            sub = self._subscription(sub_id)
            del self.subscriptions[sub.id]

    def send_lifecycle_event(self, sub_id: str, event: str) -> dict[str, Any]:
        """Posts a lifecycle notification (docs/reference/microsoft-graph.md#lifecycle-events) to the subscription's
        lifecycleNotificationUrl. ``reauthorizationRequired`` pauses deliveries until
        reauthorize/renew; ``subscriptionRemoved`` also removes the subscription."""
        with self.lock:
            if event not in LIFECYCLE_EVENTS:
                raise bad_request(f"Unknown lifecycle event '{event}'; expected one of {', '.join(LIFECYCLE_EVENTS)}.")
            sub = self._subscription(sub_id)
            if not sub.lifecycle_notification_url:
                raise bad_request(f"Subscription '{sub_id}' has no lifecycleNotificationUrl.")
            item = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": iso7(sub.expiration),
                "tenantId": self.tenant_id,
                "clientState": sub.client_state,
                "lifecycleEvent": event,
            }
            self.outbox([Outgoing(sub.lifecycle_notification_url, "lifecycle", item)])
            if event == "reauthorizationRequired" and self.config.pause_until_reauthorized:
                sub.paused = True
            elif event == "subscriptionRemoved":
                del self.subscriptions[sub.id]
            return item

    def _emit(self, kind: str, object_id: str, change_type: str, membership: tuple[str, bool, str] | None = None):
        """Queues change notifications for every matching subscription (shape:
        docs/reference/microsoft-graph.md#receiving-notifications)."""
        if not self.subscriptions:
            return
        self._purge_expired_subscriptions()
        out: list[Outgoing] = []
        collection = "Users" if kind == "user" else "Groups"
        for sub in self.subscriptions.values():
            if change_type not in sub.change_types or not sub.matches(kind, object_id, membership is not None):
                continue
            resource_data: dict[str, Any] = {
                "@odata.type": "#Microsoft.Graph.User" if kind == "user" else "#Microsoft.Graph.Group",
                "@odata.id": f"{collection}/{object_id}",
                "id": object_id,
            }
            if self.config.extra_notification_fields:
                resource_data["organizationId"] = self.tenant_id
                if membership is not None:
                    member_id, added, odata_type = membership
                    entry: dict[str, Any] = {"@odata.type": odata_type, "id": member_id}
                    if not added:
                        entry["@removed"] = {"reason": "deleted"}
                    resource_data["members@delta"] = [entry]
            item = {
                "id": str(uuid.uuid4()),
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": iso7(sub.expiration),
                "clientState": sub.client_state,
                "changeType": change_type,
                "resource": f"{collection}/{object_id}",
                "tenantId": self.tenant_id,
                "resourceData": resource_data,
            }
            outgoing = Outgoing(sub.notification_url, "change", item)
            (sub.held if sub.paused else out).append(outgoing)
        if out:
            self.outbox(out)

    # --- summary -------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self.lock:
            users = list(self.users.values())
            by_role: dict[str, int] = {}
            for assignment in self.assignments.values():
                name = self.role_value(assignment.app_role_id) or "Default Access"
                by_role[name] = by_role.get(name, 0) + 1
            return {
                "tenantId": self.tenant_id,
                "servicePrincipal": {
                    "id": self.sp["id"],
                    "appId": self.sp["appId"],
                    "displayName": self.sp["displayName"],
                    "appRoles": {r["value"]: r["id"] for r in self.sp["appRoles"]},
                },
                "users": {
                    "active": sum(1 for u in users if not u.deleted),
                    "disabled": sum(1 for u in users if not u.deleted and u.props.get("accountEnabled") is False),
                    "softDeleted": sum(1 for u in users if u.deleted),
                },
                "groups": {
                    "active": sum(1 for g in self.groups.values() if not g.deleted),
                    "softDeleted": sum(1 for g in self.groups.values() if g.deleted),
                },
                "memberships": sum(len(g.members) for g in self.groups.values()),
                "assignments": {
                    "total": len(self.assignments),
                    "users": sum(1 for a in self.assignments.values() if a.principal_type == "User"),
                    "groups": sum(1 for a in self.assignments.values() if a.principal_type == "Group"),
                    "byRole": by_role,
                },
                "subscriptions": len(self.subscriptions),
                "deltaSequence": self.seq,
                "clock": iso(self.now()),
                "clockOffsetSeconds": self.clock.offset,
            }
