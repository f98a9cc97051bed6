"""State of the GoTo emulator and its Python control API (no aiohttp here).

This module owns everything the three emulated surfaces share: the organization (SCIM users and
groups, verified domains), the account (licenses and their seats, account users), the OAuth
server state (clients, codes, access/refresh tokens, PATs), the per-API rate-limit buckets, the
emulator clock and the run-time switches (one per UNCONFIRMED point,
docs/reference/goto-api.md#unconfirmed-behaviours).

SCIM users and Admin API users are one store keyed by the same ``userKey``: a user is "in the
organization" (visible over SCIM) and/or "in the account" (visible over the Admin API), because
SCIM DELETE removes a user from the organization "but not from the account"
(docs/reference/goto-api.md#deactivate-or-delete).

Everything is plain Python guarded by one ``threading.RLock`` (``self.lock``). HTTP handlers take
it for the duration of one operation and never await while holding it; every public method here
takes it too, so tests may call the control API while the server runs.

Protocol shapes (SCIM JSON, Admin JSON, OAuth responses) are built by the route modules; the model
works with plain attributes and raises :class:`GoToError` / :class:`OAuthError` for the route
modules to render in the selected error style.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
import threading
import time
import typing
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from .journal import Journal, journaled, key_by_name, keys_by_email, user_view

# --------------------------------------------------------------------------------------------
# Constants: defaults a test can rely on (documented in docs/emulator-goto.md)
# --------------------------------------------------------------------------------------------

DEFAULT_ACCOUNT_NAME = "Contoso Ltd"
DEFAULT_DOMAINS = ("contoso.com",)
DEFAULT_ADMIN_EMAIL = "admin@contoso.com"
DEFAULT_CLIENT_ID = "gotosync-emulator-client"
DEFAULT_CLIENT_SECRET = "gotosync-emulator-secret"
DEFAULT_PAT = "gotosync-emulator-pat"
DEFAULT_G2M_SEATS = 1000
DEFAULT_G2W_SEATS = 50
DEFAULT_LOCALE = "en_US"
DEFAULT_TIMEZONE = "America/New_York"

ACCESS_TOKEN_LIFETIME = 3600  # 60 minutes, docs/reference/goto-api.md#oauth
REFRESH_TOKEN_IDLE_LIFETIME = 30 * 86400  # ~30 days without use, docs/reference/goto-api.md#token-rotation
AUTH_CODE_LIFETIME = 600  # not documented; a short single-use code like every OAuth server

# Scopes (docs/reference/goto-api.md#scopes). A token needs identity:scim.org for /Users and /Groups,
# identity:scim.me for /Users/me and identity: for the Admin API.
SCOPE_SCIM_ORG = "identity:scim.org"
SCOPE_SCIM_ME = "identity:scim.me"
SCOPE_ADMIN = "identity:"
SCOPE_COLLAB = "collab:"
ALL_SCOPES = (SCOPE_SCIM_ORG, SCOPE_SCIM_ME, SCOPE_ADMIN, SCOPE_COLLAB)

# Roles: scopes are not permissions; the consenting user also needs an org role (SCIM) or an
# account admin role (Admin API); docs/reference/goto-api.md#scopes.
ROLE_ORG_READ = "ROLE_ORG_READ"
ROLE_ORG_WRITE = "ROLE_ORG_WRITE"
ACCOUNT_ADMIN_ROLES = ("SUPER_USER", "MANAGE_USERS", "MANAGE_SEATS")

GRANT_AUTH_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_PAT = "personal_access_token"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
DEFAULT_GRANTS = (GRANT_AUTH_CODE, GRANT_REFRESH, GRANT_PAT, GRANT_CLIENT_CREDENTIALS)

ENTERPRISE_ATTRS = ("department", "employeeNumber", "costCenter", "division")

USERNAME_MAX = 128  # docs/reference/goto-api.md#user-schema-and-limits
NAME_PART_MAX = 60  # docs/reference/goto-api.md#user-schema-and-limits
GROUP_NAME_MAX = 128  # docs/reference/goto-api.md#groups
GROUP_MEMBERS_MAX = 100  # per request body, docs/reference/goto-api.md#groups


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class GoToError(Exception):
    """An API error for the route modules to render in the selected error-body style
    (docs/reference/goto-api.md#u7).

    ``code`` is the GoTo-style dotted code (``{"code","uri"}`` bodies), ``scim_type`` the
    SCIM 2.0 ``scimType`` for the scim2 style, ``extra`` additional body fields (gotocode style).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        scim_type: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.scim_type = scim_type
        self.extra = dict(extra or {})


class InvalidTokenError(GoToError):
    """Missing, unknown or expired access token; rendered per the ``bad_token`` switch
    (docs/reference/goto-api.md#u6)."""

    def __init__(self, message: str = "Invalid token passed") -> None:
        super().__init__(403, "invalid.token", message)


class OAuthError(Exception):
    """An RFC 6749 error from /oauth/*: always rendered ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(description or error)
        self.status = status
        self.error = error
        self.description = description


def bad_request(message: str, *, code: str = "invalid.request", scim_type: str | None = "invalidValue") -> GoToError:
    return GoToError(400, code, message, scim_type=scim_type)


# --------------------------------------------------------------------------------------------
# Switches
# --------------------------------------------------------------------------------------------


def _switch(default: Any, ref: str, help: str, choices: tuple[Any, ...] | None = None) -> Any:
    return field(default=default, metadata={"ref": ref, "help": help, "choices": choices})


@dataclass
class GoToSwitches:
    """Run-time behaviour switches, one per UNCONFIRMED point that the stand-in models
    (docs/reference/goto-api.md#unconfirmed-behaviours), plus the rate-limit and page-size
    tunables. Defaults follow GoTo's documented specification; where it is silent the default is
    the most conservative reading and is documented.

    Change them at run time with ``GoToEmulator.set_switch`` or ``POST /_emulator/switches``.
    """

    dialect: str = _switch(
        "scim1",
        "docs/reference/goto-api.md#u1",
        "SCIM dialect: scim1 = the documented 1.x shapes (lower-case 'resources', urn:scim core URNs, "
        "plural /ServiceProviderConfigs only); scim2 = SCIM 2.0 shapes ('Resources', 'schemas', "
        "'itemsPerPage', 'startIndex', urn:ietf URNs, singular /ServiceProviderConfig too, 2.0 Error "
        "bodies); mixed = 1.x responses but both request styles and both config paths accepted",
        ("scim1", "scim2", "mixed"),
    )
    patch_mode: str = _switch(
        "merge",
        "docs/reference/goto-api.md#u2",
        "PATCH bodies accepted: merge (documented partial definition), patchop (RFC 7644 PatchOp) or "
        "both; any other style gets 400",
        ("merge", "patchop", "both"),
    )
    active: str = _switch(
        "ignore",
        "docs/reference/goto-api.md#u3",
        "the 'active' attribute: honour (stored and returned), ignore (accepted, not stored, not "
        "returned) or reject (400 whenever it is sent)",
        ("honour", "ignore", "reject"),
    )
    extension_attrs: str = _switch(
        "drop",
        "docs/reference/goto-api.md#u4, docs/reference/goto-api.md#u14",
        "externalId (users and groups), emails and the enterprise extension: store (kept and "
        "returned), drop (accepted silently) or reject (400)",
        ("store", "drop", "reject"),
    )
    users_paging: bool = _switch(
        False,
        "docs/reference/goto-api.md#u5",
        "off: GET /Users returns every match and ignores startIndex/count; on: honours them",
    )
    users_page_size: int = _switch(
        100, "docs/reference/goto-api.md#u5", "page size of GET /Users when paging is on and no count is given"
    )
    users_max_page_size: int = _switch(
        1000, "docs/reference/goto-api.md#u5", "largest count honoured by GET /Users when paging is on"
    )
    bad_token: str = _switch(
        "403",
        "docs/reference/goto-api.md#u6",
        "invalid/missing/expired token: 403 ('Invalid token passed', the spec) or 401-empty (401, "
        'empty body, WWW-Authenticate: Bearer error="invalid_token")',
        ("403", "401-empty"),
    )
    error_body: str = _switch(
        "auto",
        "docs/reference/goto-api.md#u7",
        "error body style: gotocode ({code, uri, message}), empty, scim2 (SCIM 2.0 Error) or auto "
        "(scim2 on /identity when dialect=scim2, gotocode otherwise)",
        ("auto", "gotocode", "empty", "scim2"),
    )
    retry_after_on_429: bool = _switch(
        False, "docs/reference/goto-api.md#u8", "send Retry-After (whole seconds) with rate-limit 429s"
    )
    members_patch: str = _switch(
        "replace",
        "docs/reference/goto-api.md#u13",
        "merge-style group PATCH with 'members': replace the list or add to it",
        ("replace", "add"),
    )
    delete_frees_seat: bool = _switch(
        False,
        "docs/reference/goto-api.md#u17",
        "SCIM DELETE of a user also removes their license assignments (frees seats)",
    )
    refresh_rotation: str = _switch(
        "never",
        "docs/reference/goto-api.md#token-rotation",
        "refresh grant: always (new refresh_token, old one revoked), never (no refresh_token in the "
        "response, old one stays valid) or sometimes (deterministically every other refresh)",
        ("always", "never", "sometimes"),
    )
    client_credentials: bool = _switch(False, "docs/reference/goto-api.md#u9", "offer the client_credentials grant")
    domain_unverified_status: int = _switch(
        400, "docs/reference/goto-api.md#u16", "status when a userName's domain is not a verified domain"
    )
    admin_license_paths: bool = _switch(
        True,
        "docs/reference/goto-api.md#u11",
        "serve the unconfirmed Admin API paths: POST/DELETE .../licenses/{licenseKey}/users and "
        "DELETE .../users/{userKey}",
    )
    over_assign_status: int = _switch(
        409, "docs/reference/goto-api.md#seats", "status when a license assignment exceeds the license's seats"
    )
    getgo_extension: str = _switch(
        "me",
        "docs/reference/goto-api.md#u15",
        "where the urn:scim:schemas:extension:getgo:1.0 extension appears: me (/Users/me only) or all",
        ("me", "all"),
    )
    non_numeric_id_502: bool = _switch(
        False, "docs/reference/goto-api.md#ids", "a non-numeric user/group key in a path gives 502 instead of 404/401"
    )
    admin_strict_filter_encoding: bool = _switch(
        True,
        "docs/reference/goto-api.md#admin-api-and-licenses",
        "Admin API filter: '+' is taken literally (spaces must be %20), so 'email+eq+...' is a 400",
    )
    rate_limit: float = _switch(
        10.0, "docs/reference/goto-api.md#rate-limits", "requests per second per API (identity, admin, oauth); 0 = off"
    )
    rate_burst: int = _switch(10, "docs/reference/goto-api.md#rate-limits", "token-bucket burst size per API")

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, coerce_switch(f.name, getattr(self, f.name)))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@lru_cache(maxsize=1)
def _switch_types() -> dict[str, Any]:
    return typing.get_type_hints(GoToSwitches)


def switch_names() -> list[str]:
    return [f.name for f in fields(GoToSwitches)]


def switch_info() -> list[dict[str, Any]]:
    """Name, type, default, choices, reference and help of every switch (CLI and docs)."""
    types = _switch_types()
    return [
        {
            "name": f.name,
            "type": types[f.name],
            "default": f.default,
            "choices": f.metadata["choices"],
            "ref": f.metadata["ref"],
            "help": f.metadata["help"],
        }
        for f in fields(GoToSwitches)
    ]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce_switch(name: str, value: Any) -> Any:
    """Validates and normalises one switch value; ValueError names the switch and the problem."""
    types = _switch_types()
    if name not in types:
        raise ValueError(f"unknown switch {name!r}; known: {', '.join(switch_names())}")
    kind = types[name]
    choices = next(f.metadata["choices"] for f in fields(GoToSwitches) if f.name == name)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"switch {name!r} needs a boolean, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(f"switch {name!r} needs an integer, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"switch {name!r} needs an integer, got {value!r}") from None
        if name.endswith("_status") and not 100 <= number <= 599:
            raise ValueError(f"switch {name!r} needs an HTTP status, got {number}")
        if name in ("users_page_size", "users_max_page_size", "rate_burst") and number < 1:
            raise ValueError(f"switch {name!r} must be >= 1")
        return number
    if kind is float:
        if value is None:
            return 0.0
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"switch {name!r} needs a number, got {value!r}") from None
        if number < 0:
            raise ValueError(f"switch {name!r} must be >= 0")
        return number
    text = str(value)
    if choices and text not in choices:
        raise ValueError(f"switch {name!r} must be one of {', '.join(choices)}; got {value!r}")
    return text


# --------------------------------------------------------------------------------------------
# Validation helpers (docs/reference/goto-api.md#user-schema-and-limits)
# --------------------------------------------------------------------------------------------

# A compact built-in copy of ISO 639-1 (languages) and ISO 3166-1 alpha-2 (countries)
# requires locale = language[_COUNTRY] with valid codes.
_LANGUAGES = """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
    ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io
    is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr
    ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si
    sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
    yi yo za zh zu"""
ISO_639_1 = frozenset(_LANGUAGES.split())
_COUNTRIES = """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW
    BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ
    FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ
    IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH
    MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD
    TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
ISO_3166_1 = frozenset(_COUNTRIES.split())


def valid_locale(value: str) -> bool:
    """One or two parts, ISO-639 language then optional ISO-3166 country, e.g. ``en_US``."""
    parts = value.split("_")
    if len(parts) > 2 or not parts[0]:
        return False
    if parts[0].lower() not in ISO_639_1:
        return False
    return len(parts) == 1 or parts[1].upper() in ISO_3166_1


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=4096)
def valid_timezone(value: str) -> bool:
    """A valid time-zone id. The id format is UNCONFIRMED; IANA ids are the natural reading."""
    if value in _timezones():
        return True
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return "/" in value or value == "UTC"


def email_domain(user_name: str) -> str:
    return user_name.rsplit("@", 1)[1].lower() if "@" in user_name else ""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class User:
    key: str
    user_name: str
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    locale: str = DEFAULT_LOCALE
    timezone: str = DEFAULT_TIMEZONE
    title: str | None = None
    active: bool = True
    external_id: str | None = None
    emails: list[dict[str, Any]] | None = None
    enterprise: dict[str, Any] | None = None
    in_org: bool = True
    in_account: bool = True
    org_admin: bool = False
    admin_roles: list[str] = field(default_factory=list)
    has_password: bool = False
    created: str = ""
    last_modified: str = ""

    @property
    def shown_display_name(self) -> str:
        if self.display_name:
            return self.display_name
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return full or self.user_name


@dataclass(slots=True)
class Group:
    key: str
    display_name: str
    members: dict[str, str] = field(default_factory=dict)  # member key -> "user" | "group", ordered
    external_id: str | None = None
    created: str = ""
    last_modified: str = ""


@dataclass(slots=True)
class License:
    key: str
    code: str
    seats: int
    products: list[str]
    description: str
    type: str = "PAID"
    enabled: bool = True
    channel: str = "ONLINE"
    user_keys: dict[str, None] = field(default_factory=dict)  # ordered set of user keys


@dataclass(slots=True)
class OAuthClient:
    client_id: str
    secret: str
    redirect_uris: tuple[str, ...] = ()
    grant_types: frozenset[str] = frozenset(DEFAULT_GRANTS)
    scopes: tuple[str, ...] = ALL_SCOPES


@dataclass(slots=True)
class AccessToken:
    token: str
    principal: str
    client_id: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    expires_at: float


@dataclass(slots=True)
class RefreshToken:
    token: str
    principal: str
    client_id: str
    scopes: frozenset[str]
    last_used: float
    revoked: bool = False


@dataclass(slots=True)
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str | None
    principal: str
    scopes: frozenset[str]
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class Pat:
    token: str
    principal: str
    scopes: frozenset[str]


class Clock:
    """The emulator clock: real time plus an offset that ``advance_clock`` moves forward (token
    expiry, code expiry, refresh-token idle expiry and rate-limit refill all use it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def iso(self) -> str:
        return datetime.fromtimestamp(self.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenBucket:
    """10 requests per second per API by default (docs/reference/goto-api.md#rate-limits); a classic token
    bucket."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> float:
        """0.0 when the request may pass, else the seconds until a token is available."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


# --------------------------------------------------------------------------------------------
# Filters (the parsed form; parsing lives in scim.py)
# --------------------------------------------------------------------------------------------

USER_FILTER_ATTRS = ("userName", "displayName", "name.givenName", "name.familyName")


def _user_attr(user: User, attr: str) -> str | None:
    if attr == "userName":
        return user.user_name
    if attr == "displayName":
        return user.shown_display_name
    if attr == "name.givenName":
        return user.given_name
    return user.family_name


def _matches(actual: str | None, op: str, wanted: str) -> bool:
    # SCIM: these attributes are caseExact=false, so comparisons ignore case (RFC 7643 §2.2).
    if actual is None:
        return False
    a, w = actual.lower(), wanted.lower()
    if op == "eq":
        return a == w
    if op == "sw":
        return a.startswith(w)
    return w in a  # co


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

UserChanges = dict[str, Any]
"""Parsed user attributes keyed by internal name: user_name, display_name, given_name,
family_name, locale, timezone, title, password, active, external_id, emails, enterprise.
``None`` clears an attribute; ``enterprise`` is a partial dict (``None`` values clear)."""


class GoToModel:
    """The GoTo organization + account + OAuth server, and its Python control API."""

    def __init__(
        self,
        switches: GoToSwitches | None = None,
        verified_domains: Iterable[str] = DEFAULT_DOMAINS,
        seats: int = DEFAULT_G2M_SEATS,
        seed: Mapping[str, Any] | str | Path | None = None,
        rng_seed: int = 0,
    ) -> None:
        self.lock = threading.RLock()
        self.switches = switches if switches is not None else GoToSwitches()
        self.clock = Clock()
        self._rng_seed = rng_seed
        self._default_domains = tuple(d.lower() for d in verified_domains)
        self._default_seats = seats
        self._buckets: dict[str, TokenBucket] = {}
        # Per API: the emulator-clock times of the requests the rate limit let through, and the
        # number it refused with 429 (since the last reset).
        self.passed: dict[str, list[float]] = {}
        self.refused: dict[str, int] = {}
        self._reset_state()
        self.seed(seed if seed is not None else {}, reset=True)

    # ---------------------------------------------------------------- state (re)construction

    def _reset_state(self) -> None:
        self._rng = random.Random(self._rng_seed)
        self._keys: set[str] = set()
        self._users: dict[str, User] = {}
        self._by_name: dict[str, str] = {}  # lower-cased userName/e-mail -> key (all users)
        self._org_cache: list[User] | None = None  # organization users in creation order
        self._groups: dict[str, Group] = {}
        self._group_by_name: dict[str, str] = {}  # lower-cased displayName -> key
        self._licenses: dict[str, License] = {}
        self._clients: dict[str, OAuthClient] = {}
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._codes: dict[str, AuthCode] = {}
        self._pats: dict[str, Pat] = {}
        self._refresh_count = 0
        self.journal = Journal()  # API writes to users since the last reset (emulators/goto/journal.py)
        self.verified_domains: list[str] = list(self._default_domains)
        self.account_key = self._new_key()
        self.account_name = DEFAULT_ACCOUNT_NAME
        self.admin_email = DEFAULT_ADMIN_EMAIL
        self._buckets.clear()
        self.passed.clear()
        self.refused.clear()

    def _new_key(self) -> str:
        # Keys are long decimal strings (19 digits) that still fit the int64 path type
        # (docs/reference/goto-api.md#ids).
        while True:
            key = str(self._rng.randrange(10**18, 2**63))
            if key not in self._keys:
                self._keys.add(key)
                return key

    def _claim_key(self, key: Any) -> str:
        key = str(key)
        if not key.isdigit():
            raise ValueError(f"key {key!r} must be a numeric string")
        if key in self._keys:
            raise ValueError(f"key {key} is already in use")
        self._keys.add(key)
        return key

    def reset(self) -> None:
        """Back to the default seed (clock offset and switches are kept)."""
        self.seed({}, reset=True)

    def seed(self, data: Mapping[str, Any] | str | Path, reset: bool = True) -> None:
        """Loads seed data (a dict, a JSON string or a path to a JSON file; see the docs for the
        format). ``reset=True`` replaces all state, filling anything not given with the defaults;
        ``reset=False`` adds the given users, groups, licenses, clients and PATs to the current
        state."""
        if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
            data = json.loads(Path(data).read_text(encoding="utf-8"))
        elif isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping):
            raise ValueError("seed data must be a JSON object")
        known = {"account", "verifiedDomains", "admin", "licenses", "users", "groups", "clients", "pats"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown seed key(s): {', '.join(sorted(unknown))}")
        with self.lock:
            # A full reseed is all-or-nothing: _reset_state() builds new containers, so the old
            # ones (kept by this shallow copy) can be put back if the seed data is bad.
            saved = dict(vars(self)) if reset else None
            try:
                self._load_seed(data, reset)
            except Exception:
                if saved is not None:
                    vars(self).clear()
                    vars(self).update(saved)
                raise

    def _load_seed(self, data: Mapping[str, Any], reset: bool) -> None:
        if reset:
            self._reset_state()
            self._apply_seed_defaults(data)
        else:
            for domain in data.get("verifiedDomains", []):
                self.add_verified_domain(domain)
            for lic in data.get("licenses", []):
                self._add_license(lic)
        for client in data.get("clients", []):
            self.register_client(
                client["clientId"],
                client["clientSecret"],
                client.get("redirectUris", ()),
                grant_types=client.get("grantTypes"),
                scopes=client.get("scopes"),
            )
        for pat in data.get("pats", []):
            self.create_pat(principal=pat.get("principal"), token=pat.get("token"), scopes=pat.get("scopes"))
        for user in data.get("users", []):
            self.add_user(**user)
        for group in data.get("groups", []):
            self.add_group(group["displayName"], group.get("members", ()), external_id=group.get("externalId"))

    def _apply_seed_defaults(self, data: Mapping[str, Any]) -> None:
        account = data.get("account") or {}
        if "key" in account:
            self._keys.discard(self.account_key)
            self.account_key = self._claim_key(account["key"])
        self.account_name = account.get("name", DEFAULT_ACCOUNT_NAME)
        if "verifiedDomains" in data:
            self.verified_domains = [d.lower() for d in data["verifiedDomains"]]
        licenses = data.get("licenses")
        if licenses is None:
            licenses = [
                {
                    "code": "G2M",
                    "products": ["G2M"],
                    "seats": self._default_seats,
                    "description": "GoToMeeting Business",
                },
                # A G2W organizer automatically has G2M as well (docs/reference/goto-api.md#seats).
                {
                    "code": "G2W",
                    "products": ["G2W", "G2M"],
                    "seats": DEFAULT_G2W_SEATS,
                    "description": "GoToWebinar",
                },
            ]
        for lic in licenses:
            self._add_license(lic)
        admin = dict(data.get("admin") or {})
        admin.setdefault("userName", DEFAULT_ADMIN_EMAIL)
        admin.setdefault("givenName", "Ada")
        admin.setdefault("familyName", "Admin")
        admin.setdefault("orgAdmin", True)
        admin.setdefault("adminRoles", ["SUPER_USER"])
        self.admin_email = admin["userName"].lower()
        self.add_user(**admin)
        if not any(c.get("clientId") == DEFAULT_CLIENT_ID for c in data.get("clients", [])):
            self.register_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        if not data.get("pats"):
            self.create_pat(principal=self.admin_email, token=DEFAULT_PAT)

    def _add_license(self, lic: Mapping[str, Any]) -> License:
        code = str(lic.get("code") or (lic.get("products") or ["G2M"])[0])
        key = self._claim_key(lic["key"]) if "key" in lic else self._new_key()
        record = License(
            key=key,
            code=code,
            seats=int(lic.get("seats", self._default_seats)),
            products=list(lic.get("products") or [code]),
            description=str(lic.get("description", code)),
            type=str(lic.get("type", "PAID")),
            enabled=bool(lic.get("enabled", True)),
            channel=str(lic.get("channel", "ONLINE")),
        )
        self._licenses[key] = record
        return record

    # ---------------------------------------------------------------- switches, clock, limits

    def set_switch(self, name: str, value: Any) -> None:
        value = coerce_switch(name, value)
        with self.lock:
            setattr(self.switches, name, value)
            if name in ("rate_limit", "rate_burst"):
                self._buckets.clear()

    def update_switches(self, **values: Any) -> dict[str, Any]:
        """Partial update, all-or-nothing: validates every value before applying any."""
        coerced = {name: coerce_switch(name, value) for name, value in values.items()}
        with self.lock:
            for name, value in coerced.items():
                self.set_switch(name, value)
            return self.switches.as_dict()

    def advance_clock(self, seconds: float) -> float:
        """Moves the emulator clock forward (tokens expire, buckets refill); returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self.clock.offset += seconds
            return self.clock.time()

    def now(self) -> float:
        return self.clock.time()

    def rate_check(self, api: str) -> float:
        """Takes one token from ``api``'s bucket: 0.0 = pass, else seconds until one is free."""
        with self.lock:
            rate = self.switches.rate_limit
            if not rate:
                return 0.0
            now = self.clock.monotonic()
            bucket = self._buckets.get(api)
            if bucket is None:
                bucket = self._buckets[api] = TokenBucket(rate, self.switches.rate_burst, now)
            wait = bucket.take(now)
            if wait > 0:
                self.refused[api] = self.refused.get(api, 0) + 1
            else:
                self.passed.setdefault(api, []).append(now)
            return wait

    def throttled(self, api: str | None = None) -> int:
        """The 429s the rate limit answered on `api` ("identity", "admin", "oauth"), or on all."""
        with self.lock:
            return self.refused.get(api, 0) if api else sum(self.refused.values())

    # ---------------------------------------------------------------- control: users

    def add_user(self, **attrs: Any) -> str:
        """Creates a user directly (pre-existing GoTo users, seeds); returns its key.

        Accepts SCIM-ish or snake_case names: ``userName``/``user_name``/``email``,
        ``displayName``, ``givenName``/``firstName``, ``familyName``/``lastName``, ``name`` (dict),
        ``locale``, ``timezone``, ``title``, ``active``, ``externalId``, ``emails``, ``enterprise``,
        ``inOrg`` (default: the domain is verified), ``inAccount`` (default true), ``orgAdmin``,
        ``adminRoles``, ``licenses`` (license keys or codes such as "G2M"), ``key``.
        Only lengths and types are checked: the domain, locale and time zone are not, so a test
        can plant data the API itself would refuse.
        """
        aliases = {
            "user_name": "userName",
            "email": "userName",
            "display_name": "displayName",
            "given_name": "givenName",
            "first_name": "givenName",
            "firstName": "givenName",
            "family_name": "familyName",
            "last_name": "familyName",
            "lastName": "familyName",
            "external_id": "externalId",
            "in_org": "inOrg",
            "in_account": "inAccount",
            "org_admin": "orgAdmin",
            "admin_roles": "adminRoles",
            "license_keys": "licenses",
            "licenseKeys": "licenses",
            "timeZone": "timezone",
        }
        a: dict[str, Any] = {}
        for name, value in attrs.items():
            a[aliases.get(name, name)] = value
        name = a.pop("name", None) or {}
        a.setdefault("givenName", name.get("givenName"))
        a.setdefault("familyName", name.get("familyName"))
        known = {
            "userName",
            "displayName",
            "givenName",
            "familyName",
            "locale",
            "timezone",
            "title",
            "active",
            "externalId",
            "emails",
            "enterprise",
            "inOrg",
            "inAccount",
            "orgAdmin",
            "adminRoles",
            "licenses",
            "key",
        }
        unknown = set(a) - known
        if unknown:
            raise ValueError(f"unknown user attribute(s): {', '.join(sorted(unknown))}")
        user_name = a.get("userName")
        if not isinstance(user_name, str) or not user_name or len(user_name) > USERNAME_MAX:
            raise ValueError("userName must be a non-empty string of at most 128 characters")
        with self.lock:
            if user_name.lower() in self._by_name:
                raise ValueError(f"userName {user_name!r} already exists")
            key = self._claim_key(a["key"]) if a.get("key") is not None else self._new_key()
            now = self.clock.iso()
            user = User(
                key=key,
                user_name=user_name,
                display_name=a.get("displayName"),
                given_name=a.get("givenName"),
                family_name=a.get("familyName"),
                locale=a.get("locale") or DEFAULT_LOCALE,
                timezone=a.get("timezone") or DEFAULT_TIMEZONE,
                title=a.get("title"),
                active=bool(a.get("active", True)),
                external_id=a.get("externalId"),
                emails=copy.deepcopy(a.get("emails")),
                enterprise=copy.deepcopy(a.get("enterprise")),
                in_org=bool(a.get("inOrg", email_domain(user_name) in self.verified_domains)),
                in_account=bool(a.get("inAccount", True)),
                org_admin=bool(a.get("orgAdmin", False)),
                admin_roles=list(a.get("adminRoles") or []),
                created=now,
                last_modified=now,
            )
            self._users[key] = user
            self._by_name[user_name.lower()] = key
            self._org_cache = None
            for lic in a.get("licenses") or ():
                self._licenses[self.license_key(lic)].user_keys[key] = None
            return key

    def users(self) -> list[dict[str, Any]]:
        """Every user in the store (organization and/or account), as plain dicts."""
        with self.lock:
            return [self._user_view(u) for u in self._users.values()]

    def user(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            u = self._users.get(str(key))
            return self._user_view(u) if u else None

    def user_by_username(self, user_name: str) -> dict[str, Any] | None:
        with self.lock:
            key = self._by_name.get(user_name.lower())
            return self._user_view(self._users[key]) if key else None

    def _user_view(self, u: User) -> dict[str, Any]:
        return {
            "key": u.key,
            "userName": u.user_name,
            "displayName": u.shown_display_name,
            "givenName": u.given_name,
            "familyName": u.family_name,
            "locale": u.locale,
            "timezone": u.timezone,
            "title": u.title,
            "active": u.active,
            "externalId": u.external_id,
            "emails": copy.deepcopy(u.emails),
            "enterprise": copy.deepcopy(u.enterprise),
            "inOrg": u.in_org,
            "inAccount": u.in_account,
            "orgAdmin": u.org_admin,
            "adminRoles": list(u.admin_roles),
            "licenseKeys": self._license_keys_of(u.key),
            "created": u.created,
            "lastModified": u.last_modified,
        }

    # ---------------------------------------------------------------- control: groups, licenses

    def add_group(
        self, display_name: str, members: Iterable[Any] = (), external_id: str | None = None, key: str | None = None
    ) -> str:
        """Creates a group directly. ``members`` are keys, userNames or ``{"type","value"}`` dicts."""
        with self.lock:
            if display_name.lower() in self._group_by_name:
                raise ValueError(f"group {display_name!r} already exists")
            resolved: dict[str, str] = {}
            for m in members:
                value = m.get("value") if isinstance(m, Mapping) else m
                value = str(value)
                if value.lower() in self._by_name:
                    value = self._by_name[value.lower()]
                if value in self._users:
                    resolved[value] = "user"
                elif value in self._groups:
                    resolved[value] = "group"
                else:
                    raise ValueError(f"unknown group member {value!r}")
            gkey = self._claim_key(key) if key is not None else self._new_key()
            now = self.clock.iso()
            self._groups[gkey] = Group(gkey, display_name, resolved, external_id, now, now)
            self._group_by_name[display_name.lower()] = gkey
            return gkey

    def groups(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "key": g.key,
                    "displayName": g.display_name,
                    "externalId": g.external_id,
                    "members": [{"type": t, "value": v} for v, t in g.members.items()],
                    "created": g.created,
                }
                for g in self._groups.values()
            ]

    def group_by_name(self, display_name: str) -> dict[str, Any] | None:
        with self.lock:
            key = self._group_by_name.get(display_name.lower())
            return next((g for g in self.groups() if g["key"] == key), None) if key else None

    def license_key(self, code_or_key: str) -> str:
        """The key of the license whose code is ``code_or_key`` ("G2M", "G2W"), or the key itself."""
        with self.lock:
            value = str(code_or_key)
            if value in self._licenses:
                return value
            for lic in self._licenses.values():
                if lic.code.upper() == value.upper():
                    return lic.key
            raise KeyError(f"no license {code_or_key!r}")

    def licenses(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._license_view(lic) for lic in self._licenses.values()]

    def _license_view(self, lic: License) -> dict[str, Any]:
        return {
            "key": lic.key,
            "code": lic.code,
            "seats": lic.seats,
            "userCount": len(lic.user_keys),
            "products": list(lic.products),
            "description": lic.description,
            "type": lic.type,
            "enabled": lic.enabled,
            "userKeys": list(lic.user_keys),
        }

    def licenses_of(self, user_key: str) -> list[str]:
        """Keys of the licenses assigned to ``user_key``."""
        with self.lock:
            return self._license_keys_of(str(user_key))

    def _license_keys_of(self, user_key: str) -> list[str]:
        return [lic.key for lic in self._licenses.values() if user_key in lic.user_keys]

    def journal_view(self, key: str) -> dict[str, Any] | None:
        """What the write journal compares for one user; None when there is no such user."""
        user = self._users.get(key)
        return None if user is None else user_view(user, self._license_keys_of(key))

    def journal_entries(self, since: int = 0) -> list[dict[str, Any]]:
        """The write journal: every change the SCIM and Admin APIs made to a user, in order
        (entries with ``seq`` > ``since``). See docs/emulator-goto.md, "Write journal"."""
        with self.lock:
            return self.journal.entries(since)

    def set_seats(self, license: str, seats: int) -> None:
        """Sets the purchased seats of a license (key or code). Existing assignments are kept even
        when they now exceed the seats, as on a real downgrade; new ones are refused."""
        if seats < 0:
            raise ValueError("seats must be >= 0")
        with self.lock:
            self._licenses[self.license_key(license)].seats = int(seats)

    def add_verified_domain(self, domain: str) -> None:
        with self.lock:
            if domain.lower() not in self.verified_domains:
                self.verified_domains.append(domain.lower())

    def state(self, include_objects: bool = True) -> dict[str, Any]:
        """Everything a test may want to assert on, as plain JSON-able data."""
        with self.lock:
            out: dict[str, Any] = {
                "account": {"key": self.account_key, "name": self.account_name},
                "verifiedDomains": list(self.verified_domains),
                "admin": self.admin_email,
                "switches": self.switches.as_dict(),
                "clock": {"now": self.clock.time(), "offset": self.clock.offset},
                "counts": {
                    "users": len(self._users),
                    "orgUsers": sum(1 for u in self._users.values() if u.in_org),
                    "groups": len(self._groups),
                },
                "tokens": {
                    "access": len(self._access),
                    "accessValid": sum(1 for t in self._access.values() if t.expires_at > self.clock.time()),
                    "refresh": sum(1 for t in self._refresh.values() if not t.revoked),
                    "codes": sum(1 for c in self._codes.values() if not c.used),
                    "pats": len(self._pats),
                    "clients": sorted(self._clients),
                },
                "licenses": self.licenses(),
            }
            if include_objects:
                out["users"] = self.users()
                out["groups"] = self.groups()
            return out

    # ---------------------------------------------------------------- OAuth

    def register_client(
        self,
        client_id: str,
        secret: str,
        redirect_uris: Iterable[str] = (),
        grant_types: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        """Registers (or replaces) an OAuth client. No ``redirect_uris`` = any redirect URI is
        accepted (handy for local callbacks whose port is not known in advance)."""
        with self.lock:
            self._clients[client_id] = OAuthClient(
                client_id,
                secret,
                tuple(redirect_uris),
                frozenset(grant_types) if grant_types is not None else frozenset(DEFAULT_GRANTS),
                tuple(scopes) if scopes is not None else ALL_SCOPES,
            )

    def create_pat(
        self, principal: str | None = None, token: str | None = None, scopes: Iterable[str] | None = None
    ) -> str:
        """Creates a personal access token for ``principal`` (default: the admin); returns it."""
        with self.lock:
            token = token or f"pat-{secrets.token_urlsafe(24)}"
            self._pats[token] = Pat(
                token,
                (principal or self.admin_email).lower(),
                frozenset(scopes) if scopes is not None else frozenset(ALL_SCOPES),
            )
            return token

    def revoke_pat(self, token: str) -> bool:
        with self.lock:
            return self._pats.pop(token, None) is not None

    def revoke_refresh_token(self, token: str) -> bool:
        with self.lock:
            rt = self._refresh.get(token)
            if rt is None or rt.revoked:
                return False
            rt.revoked = True
            return True

    def revoke_all_refresh_tokens(self) -> int:
        with self.lock:
            n = 0
            for rt in self._refresh.values():
                if not rt.revoked:
                    rt.revoked = True
                    n += 1
            return n

    def refresh_tokens(self) -> list[str]:
        """The refresh tokens that are currently valid (not revoked, not idle-expired)."""
        with self.lock:
            now = self.clock.time()
            return [
                t.token
                for t in self._refresh.values()
                if not t.revoked and now - t.last_used <= REFRESH_TOKEN_IDLE_LIFETIME
            ]

    def _roles_of(self, principal: str) -> frozenset[str]:
        key = self._by_name.get(principal.lower())
        user = self._users.get(key) if key else None
        if user is None:
            return frozenset()
        roles = set(user.admin_roles)
        if user.org_admin:
            roles |= {ROLE_ORG_READ, ROLE_ORG_WRITE}
        return frozenset(roles)

    def issue_access_token(
        self,
        scopes: Iterable[str] | str | None = None,
        principal: str | None = None,
        admin: bool = True,
        roles: Iterable[str] | None = None,
        expires_in: int = ACCESS_TOKEN_LIFETIME,
        client_id: str | None = None,
    ) -> str:
        """Issues an access token directly (no OAuth round trip). Default: every scope, for the
        admin principal, with the principal's roles. ``admin=False`` gives a token without any
        role (a non-admin consent: SCIM and Admin calls then get 401 not.authorized); ``roles``
        sets the roles explicitly (e.g. ``["ROLE_ORG_READ"]`` for a read-only admin)."""
        if isinstance(scopes, str):
            scopes = scopes.split()
        with self.lock:
            who = (principal or self.admin_email).lower()
            if roles is None:
                roles = self._roles_of(who) if admin else ()
            granted = frozenset(roles)
            return self._new_access(
                who, client_id, frozenset(scopes if scopes is not None else ALL_SCOPES), granted, expires_in
            )

    def _new_access(
        self, principal: str, client_id: str | None, scopes: frozenset[str], roles: frozenset[str], lifetime: int
    ) -> str:
        now = self.clock.time()
        if len(self._access) > 10_000:  # keep long runs bounded
            self._access = {k: v for k, v in self._access.items() if v.expires_at > now}
        token = f"at-{secrets.token_urlsafe(32)}"
        self._access[token] = AccessToken(token, principal, client_id, scopes, roles, now + lifetime)
        return token

    def authenticate(self, token: str) -> AccessToken | None:
        """The live access token for a bearer value, or None (unknown or expired)."""
        with self.lock:
            at = self._access.get(token)
            if at is None or at.expires_at <= self.clock.time():
                return None
            return at

    def _client(self, client_id: str, secret: str | None) -> OAuthClient:
        client = self._clients.get(client_id)
        if client is None or (secret is not None and not secrets.compare_digest(client.secret, secret)):
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        return client

    def authorize(
        self,
        client_id: str,
        response_type: str,
        redirect_uri: str | None,
        scope: str | None,
        principal: str | None = None,
    ) -> tuple[str, str]:
        """Auto-consent for the authorization-code flow: returns (redirect URI, code)."""
        with self.lock:
            client = self._clients.get(client_id)
            if client is None:
                raise OAuthError(400, "invalid_client", f"Unknown client_id {client_id!r}")
            if response_type != "code":
                raise OAuthError(400, "unsupported_response_type", "response_type must be 'code'")
            if GRANT_AUTH_CODE not in client.grant_types:
                raise OAuthError(400, "unauthorized_client", "authorization_code is not enabled for this client")
            if redirect_uri:
                if client.redirect_uris and redirect_uri not in client.redirect_uris:
                    raise OAuthError(400, "invalid_request", "redirect_uri is not registered for this client")
                target = redirect_uri
            elif client.redirect_uris:
                target = client.redirect_uris[0]
            else:
                raise OAuthError(400, "invalid_request", "redirect_uri is required (none registered)")
            who = (principal or self.admin_email).lower()
            if who not in self._by_name:
                raise OAuthError(400, "access_denied", f"Unknown user {who!r}")
            # No scope on authorize yields every scope assigned to the client (docs/reference/goto-api.md#oauth).
            granted = set(client.scopes)
            if scope:
                granted &= set(scope.split())
            code = secrets.token_urlsafe(24)
            self._codes[code] = AuthCode(
                code, client_id, redirect_uri or None, who, frozenset(granted), self.clock.time() + AUTH_CODE_LIFETIME
            )
            return target, code

    def token_grant(self, client_id: str, secret: str, form: Mapping[str, str]) -> dict[str, Any]:
        """/oauth/token for an authenticated client: returns the JSON response
        (docs/reference/goto-api.md#oauth)."""
        with self.lock:
            client = self._client(client_id, secret)
            grant = form.get("grant_type", "")
            if not grant:
                raise OAuthError(400, "invalid_request", "grant_type is required")
            if grant == GRANT_CLIENT_CREDENTIALS:
                # docs/reference/goto-api.md#u9: undocumented and disputed; refused unless switched on.
                if not self.switches.client_credentials or grant not in client.grant_types:
                    raise OAuthError(400, "unsupported_grant_type", "client_credentials is not supported")
                return self._token_response(client, self.admin_email, frozenset(client.scopes), None)
            if grant not in (GRANT_AUTH_CODE, GRANT_REFRESH, GRANT_PAT):
                # 'password' is deprecated and closed to new clients (docs/reference/goto-api.md#oauth);
                # anything else is unknown.
                raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
            if grant not in client.grant_types:
                raise OAuthError(400, "unauthorized_client", f"{grant} is not enabled for this client")
            now = self.clock.time()
            if grant == GRANT_AUTH_CODE:
                code = self._codes.get(form.get("code", ""))
                if code is None or code.used or code.expires_at <= now or code.client_id != client.client_id:
                    raise OAuthError(400, "invalid_grant", "Authorization code is invalid, expired or already used")
                code.used = True  # a code works once, docs/reference/goto-api.md#oauth
                if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
                    raise OAuthError(400, "invalid_grant", "redirect_uri does not match the authorization request")
                refresh = self._new_refresh(code.principal, client.client_id, code.scopes)
                return self._token_response(client, code.principal, code.scopes, refresh)
            if grant == GRANT_REFRESH:
                rt = self._refresh.get(form.get("refresh_token", ""))
                if (
                    rt is None
                    or rt.revoked
                    or rt.client_id != client.client_id
                    or now - rt.last_used > REFRESH_TOKEN_IDLE_LIFETIME
                ):
                    raise OAuthError(400, "invalid_grant", "Refresh token is invalid, expired or revoked")
                rt.last_used = now
                self._refresh_count += 1
                rotation = self.switches.refresh_rotation
                rotate = rotation == "always" or (rotation == "sometimes" and self._refresh_count % 2 == 0)
                new_refresh = None
                if rotate:
                    rt.revoked = True
                    new_refresh = self._new_refresh(rt.principal, client.client_id, rt.scopes)
                return self._token_response(client, rt.principal, rt.scopes, new_refresh)
            pat = self._pats.get(form.get("pat", ""))
            if pat is None:
                raise OAuthError(400, "invalid_grant", "Personal access token is invalid or revoked")
            return self._token_response(client, pat.principal, pat.scopes & set(client.scopes), None)

    def _new_refresh(self, principal: str, client_id: str, scopes: frozenset[str]) -> str:
        token = f"rt-{secrets.token_urlsafe(32)}"
        self._refresh[token] = RefreshToken(token, principal, client_id, scopes, self.clock.time())
        return token

    def _token_response(
        self, client: OAuthClient, principal: str, scopes: frozenset[str], refresh: str | None
    ) -> dict[str, Any]:
        if principal.lower() not in self._by_name:
            raise OAuthError(400, "invalid_grant", "The token's user no longer exists")
        access = self._new_access(principal, client.client_id, scopes, self._roles_of(principal), ACCESS_TOKEN_LIFETIME)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": " ".join(s for s in ALL_SCOPES if s in scopes) or "",
            "principal": principal,
        }
        if refresh is not None:
            # refresh_token is present only when a new one was issued (docs/reference/goto-api.md#token-rotation).
            body["refresh_token"] = refresh
        return body

    # ---------------------------------------------------------------- SCIM users

    def org_user(self, key: str) -> User:
        user = self._users.get(key)
        if user is None or not user.in_org:
            if self.switches.non_numeric_id_502 and not key.isdigit():
                raise GoToError(502, "bad.gateway", "Upstream error", scim_type=None)
            raise GoToError(404, "user.not.found", "User not found", scim_type=None)
        return user

    def principal_user(self, principal: str) -> User:
        key = self._by_name.get(principal.lower())
        user = self._users.get(key) if key else None
        if user is None or not user.in_org:
            raise GoToError(404, "user.not.found", "User not found")
        return user

    def find_users(self, flt: tuple[str, str, str] | None) -> list[User]:
        """Organization users matching ``(attribute, op, value)`` (or all), in creation order."""
        if flt is None:
            # Cached so that paging through 100k users costs O(page), not O(users), per request.
            if self._org_cache is None:
                self._org_cache = [u for u in self._users.values() if u.in_org]
            return list(self._org_cache)
        attr, op, value = flt
        if attr == "userName" and op == "eq":
            # O(1) through the userName index: the lookup Entra does on every sync
            # (docs/reference/entra-provisioning.md#scim-requests-entra-sends).
            key = self._by_name.get(value.lower())
            user = self._users.get(key) if key else None
            return [user] if user is not None and user.in_org else []
        return [u for u in self._users.values() if u.in_org and _matches(_user_attr(u, attr), op, value)]

    def _validate_user(self, c: UserChanges, *, creating: bool) -> None:
        # docs/reference/goto-api.md#user-schema-and-limits, checked in the documented order so that one rule
        # fails per request.
        if creating or "user_name" in c:
            name = c.get("user_name")
            if name is None or (isinstance(name, str) and not name.strip()):
                raise bad_request("userName is required and must not be empty", code="invalid.userName")
            if not isinstance(name, str):
                raise bad_request("userName must be a string", code="invalid.userName")
            if len(name) > USERNAME_MAX:
                raise bad_request("userName must be at most 128 characters", code="invalid.userName")
        for attr, label in (("given_name", "name.givenName"), ("family_name", "name.familyName")):
            part = c.get(attr)
            if part is not None and (not isinstance(part, str) or len(part) > NAME_PART_MAX):
                raise bad_request(f"{label} must be a string of at most 60 characters", code="invalid.name")
        for attr in ("display_name", "title", "external_id", "password"):
            if c.get(attr) is not None and not isinstance(c[attr], str):
                raise bad_request(f"{attr} must be a string")
        locale = c.get("locale")
        if locale is not None and (not isinstance(locale, str) or not valid_locale(locale)):
            raise bad_request(
                f"locale {locale!r} is not an ISO-639 language optionally followed by _ and an ISO-3166 country",
                code="invalid.locale",
            )
        tz = c.get("timezone")
        if tz is not None and (not isinstance(tz, str) or not valid_timezone(tz)):
            raise bad_request(f"timezone {tz!r} is not a valid time zone", code="invalid.timezone")
        if c.get("user_name") is not None and email_domain(c["user_name"]) not in self.verified_domains:
            raise GoToError(
                self.switches.domain_unverified_status,
                "invalid.domain",
                f"The domain of userName {c['user_name']!r} is not a verified domain of the organization",
                scim_type="invalidValue",
            )

    def _apply_user(self, user: User, c: UserChanges) -> None:
        simple = {
            "display_name": "display_name",
            "given_name": "given_name",
            "family_name": "family_name",
            "title": "title",
            "external_id": "external_id",
        }
        for src, attr in simple.items():
            if src in c:
                setattr(user, attr, c[src])
        if "locale" in c:
            user.locale = c["locale"] or DEFAULT_LOCALE
        if "timezone" in c:
            user.timezone = c["timezone"] or DEFAULT_TIMEZONE
        if "active" in c:
            user.active = True if c["active"] is None else bool(c["active"])
        if "emails" in c:
            user.emails = copy.deepcopy(c["emails"])
        if "enterprise" in c:
            if c["enterprise"] is None:
                user.enterprise = None
            else:
                merged = dict(user.enterprise or {})
                for k, v in c["enterprise"].items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                user.enterprise = merged or None
        if c.get("password") is not None:
            user.has_password = True
        if "user_name" in c and c["user_name"] != user.user_name:
            del self._by_name[user.user_name.lower()]
            user.user_name = c["user_name"]
            self._by_name[user.user_name.lower()] = user.key
        user.last_modified = self.clock.iso()

    @journaled(lambda m, c: [key_by_name(m, c.get("user_name"))])
    def scim_create_user(self, c: UserChanges) -> User:
        self._validate_user(c, creating=True)
        existing_key = self._by_name.get(c["user_name"].lower())
        if existing_key is not None:
            existing = self._users[existing_key]
            if existing.in_org:
                # POST /Users with a userName in use -> 409 "Username is already in use."
                # (docs/reference/goto-api.md#scim-endpoints)
                raise GoToError(409, "user.exists", "Username is already in use.", scim_type="uniqueness")
            # The e-mail belongs to an account-only (or SCIM-deleted) user: GoTo's store is one
            # identity per e-mail, so the user rejoins the organization with the same key
            # (compare the reported "re-create reactivates" quirk,
            # docs/reference/goto-api.md#error-bodies).
            existing.in_org = True
            existing.in_account = True
            existing.active = True
            self._org_cache = None
            self._apply_user(existing, {k: v for k, v in c.items() if k != "user_name"})
            return existing
        user = User(key=self._new_key(), user_name=c["user_name"], created=self.clock.iso())
        self._by_name[user.user_name.lower()] = user.key
        self._users[user.key] = user
        self._org_cache = None
        self._apply_user(user, c)
        return user

    def _check_rename(self, user: User, c: UserChanges) -> None:
        new = c.get("user_name")
        if new is not None and new.lower() != user.user_name.lower():
            other = self._by_name.get(new.lower())
            if other is not None and other != user.key:
                # PUT/PATCH -> 409 "Email address conflict" (docs/reference/goto-api.md#scim-endpoints)
                raise GoToError(409, "email.conflict", "Email address conflict", scim_type="uniqueness")

    @journaled(lambda m, user, c: [user.key])
    def scim_replace_user(self, user: User, c: UserChanges) -> User:
        """PUT: the full definition is required; attributes left out are cleared
        (docs/reference/goto-api.md#scim-endpoints)."""
        self._validate_user(c, creating=True)
        self._check_rename(user, c)
        full: UserChanges = {
            "display_name": None,
            "given_name": None,
            "family_name": None,
            "locale": None,
            "timezone": None,
            "title": None,
        }
        full.update(c)
        self._apply_user(user, full)
        return user

    @journaled(lambda m, user, c: [user.key])
    def scim_update_user(self, user: User, c: UserChanges) -> User:
        """PATCH: only the attributes given change (docs/reference/goto-api.md#patch-styles)."""
        self._validate_user(c, creating=False)
        self._check_rename(user, c)
        self._apply_user(user, c)
        return user

    @journaled(lambda m, user: [user.key])
    def scim_delete_user(self, user: User) -> None:
        # The user leaves the organization "but not the account"; whether the seat goes too is
        # docs/reference/goto-api.md#u17.
        user.in_org = False
        self._org_cache = None
        user.last_modified = self.clock.iso()
        for group in self._groups.values():
            group.members.pop(user.key, None)
        if self.switches.delete_frees_seat:
            for lic in self._licenses.values():
                lic.user_keys.pop(user.key, None)

    # ---------------------------------------------------------------- SCIM groups

    def get_group(self, key: str) -> Group:
        group = self._groups.get(key)
        if group is None:
            if self.switches.non_numeric_id_502 and not key.isdigit():
                raise GoToError(502, "bad.gateway", "Upstream error")
            # An unknown group is a 401, indistinguishable from a missing org role (docs/reference/goto-api.md#groups).
            raise GoToError(
                401,
                "not.authorized",
                "Client not sufficiently authorized or group does not exist in organization",
                scim_type=None,
            )
        return group

    def find_groups(self, flt: tuple[str, str, str] | None) -> list[Group]:
        if flt is None:
            return list(self._groups.values())
        _, op, value = flt
        if op == "eq":
            key = self._group_by_name.get(value.lower())
            return [self._groups[key]] if key else []
        return [g for g in self._groups.values() if _matches(g.display_name, op, value)]

    def _validate_group_name(self, name: Any, group: Group | None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise bad_request("displayName is required", code="invalid.displayName")
        if len(name) > GROUP_NAME_MAX:
            raise bad_request("displayName must be at most 128 characters", code="invalid.displayName")
        other = self._group_by_name.get(name.lower())
        if other is not None and (group is None or other != group.key):
            raise GoToError(409, "group.exists", "displayName is already in use", scim_type="uniqueness")
        return name

    def _resolve_members(self, members: Iterable[tuple[str | None, str]], group: Group | None) -> dict[str, str]:
        """Checks that each member exists in the organization (docs/reference/goto-api.md#groups);
        infers a missing type."""
        out: dict[str, str] = {}
        for kind, value in members:
            user = self._users.get(value)
            is_user = user is not None and user.in_org
            is_group = value in self._groups
            if kind is None:
                kind = "user" if is_user else "group" if is_group else None
            if kind == "user" and not is_user:
                raise bad_request(f"member {value} is not a user of the organization", code="invalid.member")
            if kind == "group" and not is_group:
                raise bad_request(f"member {value} is not a group of the organization", code="invalid.member")
            if kind is None:
                raise bad_request(f"member {value} does not exist in the organization", code="invalid.member")
            if group is not None and value == group.key:
                raise bad_request("a group cannot be a member of itself", code="invalid.member")
            out[value] = kind
        return out

    def scim_create_group(self, display_name: Any, members: list[tuple[str | None, str]], external_id: Any) -> Group:
        name = self._validate_group_name(display_name, None)
        resolved = self._resolve_members(members, None)
        now = self.clock.iso()
        group = Group(self._new_key(), name, resolved, external_id, now, now)
        self._groups[group.key] = group
        self._group_by_name[name.lower()] = group.key
        return group

    def scim_update_group(
        self,
        group: Group,
        *,
        display_name: Any = None,
        set_members: list[tuple[str | None, str]] | None = None,
        add_members: list[tuple[str | None, str]] | None = None,
        remove_members: list[str] | None = None,
        remove_all_members: bool = False,
        external_id: Any = ...,
    ) -> Group:
        """One atomic group change: validates everything, then applies it."""
        name = self._validate_group_name(display_name, group) if display_name is not None else None
        replacement = self._resolve_members(set_members, group) if set_members is not None else None
        additions = self._resolve_members(add_members, group) if add_members else {}
        if name is not None and name != group.display_name:
            del self._group_by_name[group.display_name.lower()]
            group.display_name = name
            self._group_by_name[name.lower()] = group.key
        if remove_all_members:
            group.members = {}
        if replacement is not None:
            group.members = replacement
        group.members.update(additions)
        for value in remove_members or ():
            group.members.pop(value, None)
        if external_id is not ...:
            group.external_id = external_id
        group.last_modified = self.clock.iso()
        return group

    def scim_delete_group(self, group: Group) -> None:
        del self._groups[group.key]
        del self._group_by_name[group.display_name.lower()]
        for other in self._groups.values():
            other.members.pop(group.key, None)

    # ---------------------------------------------------------------- Admin API

    def check_account(self, account_key: str) -> None:
        if account_key != self.account_key:
            raise GoToError(404, "account.not.found", f"Account {account_key} not found")

    def account_user(self, user_key: str) -> User:
        user = self._users.get(user_key)
        if user is None or not user.in_account:
            if self.switches.non_numeric_id_502 and not user_key.isdigit():
                # GET-by-id with a non-numeric id gives 502, not 404 (docs/reference/goto-api.md#ids).
                raise GoToError(502, "bad.gateway", "Upstream error")
            raise GoToError(404, "user.not.found", f"User {user_key} not found")
        return user

    def account_users(self, email: str | None) -> list[User]:
        if email is not None:
            key = self._by_name.get(email.lower())
            user = self._users.get(key) if key else None
            return [user] if user is not None and user.in_account else []
        return [u for u in self._users.values() if u.in_account]

    def products_of(self, user_key: str) -> list[str]:
        products: dict[str, None] = {}
        for lic in self._licenses.values():
            if user_key in lic.user_keys:
                products.update(dict.fromkeys(lic.products))
        return list(products)

    def _license(self, key: Any) -> License:
        lic = self._licenses.get(str(key))
        if lic is None:
            raise GoToError(400, "invalid.license", f"License {key} does not exist in this account")
        return lic

    def _check_seats(self, wanted: Mapping[str, Iterable[str]]) -> None:
        """Seat check for ``{license key: user keys to add}``; all-or-nothing
        (docs/reference/goto-api.md#seats)."""
        for lkey, user_keys in wanted.items():
            lic = self._licenses[lkey]
            new = [k for k in dict.fromkeys(user_keys) if k not in lic.user_keys]
            if len(lic.user_keys) + len(new) > lic.seats:
                raise GoToError(
                    self.switches.over_assign_status,
                    "license.seats.exceeded",
                    f"License {lic.key} ({lic.code}, {lic.description}) has no free seat: "
                    f"{len(lic.user_keys)} of {lic.seats} seats assigned, {len(new)} more requested",
                    scim_type=None,
                    extra={"licenseKey": int(lic.key), "seats": lic.seats, "userCount": len(lic.user_keys)},
                )

    @journaled(lambda m, entries, license_keys: keys_by_email(m, entries))
    def admin_add_users(self, entries: list[Mapping[str, Any]], license_keys: list[Any]) -> list[User]:
        """POST /accounts/{key}/users: creates users; existing ones are returned, not rejected."""
        licenses = [self._license(k).key for k in license_keys]
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise bad_request(f"users[{i}] must be an object")
            for attr in ("email", "firstName", "lastName"):
                # E-mail, given name and family name are mandatory for the Admin API
                # (docs/reference/goto-api.md#other-connectors).
                if not isinstance(entry.get(attr), str) or not entry[attr].strip():
                    raise bad_request(f"users[{i}].{attr} is required")
            if len(entry["email"]) > USERNAME_MAX or "@" not in entry["email"]:
                raise bad_request(f"users[{i}].email is not a valid e-mail address")
            self._validate_user(
                {
                    "given_name": entry["firstName"],
                    "family_name": entry["lastName"],
                    "locale": entry.get("locale"),
                    "timezone": entry.get("timeZone"),
                },
                creating=False,
            )
        emails = [e["email"].lower() for e in entries]
        existing = {e: self._by_name[e] for e in emails if e in self._by_name}
        # Seat check before anything changes; new users get placeholder keys for counting.
        wanted_keys = [existing.get(e, f"new:{e}") for e in emails]
        self._check_seats({lk: wanted_keys for lk in licenses})
        out: list[User] = []
        for entry in entries:
            email = entry["email"].lower()
            key = self._by_name.get(email)
            if key is None:
                key = self.add_user(
                    userName=entry["email"],
                    givenName=entry["firstName"],
                    familyName=entry["lastName"],
                    locale=entry.get("locale"),
                    timezone=entry.get("timeZone"),
                )
            user = self._users[key]
            user.in_account = True
            if email_domain(user.user_name) in self.verified_domains and not user.in_org:
                user.in_org = True
                self._org_cache = None
            for lk in licenses:
                self._licenses[lk].user_keys[key] = None
            out.append(user)
        return out

    @journaled(lambda m, user, body: [user.key])
    def admin_update_user(self, user: User, body: Mapping[str, Any]) -> User:
        """PUT /accounts/{key}/users/{userKey}: licenseKeys replaces the user's license set."""
        target: list[str] = []
        if "licenseKeys" in body:
            keys = body["licenseKeys"]
            if not isinstance(keys, list):
                raise bad_request("licenseKeys must be a list")
            target = [self._license(k).key for k in keys]
            self._check_seats({lk: [user.key] for lk in target})
        if "adminRoles" in body and not isinstance(body["adminRoles"], list):
            raise bad_request("adminRoles must be a list")
        if "email" in body:
            email = body["email"]
            if not isinstance(email, str) or "@" not in email or len(email) > USERNAME_MAX:
                raise bad_request("email is not a valid e-mail address")
            other = self._by_name.get(email.lower())
            if other is not None and other != user.key:
                raise GoToError(409, "email.conflict", "Email address conflict")
        changes: UserChanges = {}
        for src, dst in (("firstName", "given_name"), ("lastName", "family_name"), ("locale", "locale")):
            if src in body:
                changes[dst] = body[src]
        if "timeZone" in body:
            changes["timezone"] = body["timeZone"]
        self._validate_user(changes, creating=False)
        if "email" in body:
            changes["user_name"] = body["email"]
        if "licenseKeys" in body:
            for lic in self._licenses.values():
                lic.user_keys.pop(user.key, None)
            for lk in target:
                self._licenses[lk].user_keys[user.key] = None
        if "adminRoles" in body:
            user.admin_roles = [str(r) for r in body["adminRoles"]]
        self._apply_user(user, changes)
        return user

    @journaled(lambda m, license_key, user_keys: [str(k) for k in user_keys] if isinstance(user_keys, list) else [])
    def admin_assign(self, license_key: str, user_keys: list[Any]) -> License:
        lic = self._license(license_key)
        keys = [str(k) for k in user_keys]
        for k in keys:
            self.account_user(k)
        self._check_seats({lic.key: keys})
        for k in keys:
            lic.user_keys[k] = None
        return lic

    @journaled(lambda m, license_key, user_key: [str(user_key)])
    def admin_unassign(self, license_key: str, user_key: str) -> None:
        lic = self._license(license_key)
        self.account_user(user_key)
        lic.user_keys.pop(user_key, None)

    @journaled(lambda m, user: [user.key])
    def admin_delete_user(self, user: User) -> None:
        """UNCONFIRMED path (docs/reference/goto-api.md#u11): the user leaves the account and every
        license."""
        user.in_account = False
        for lic in self._licenses.values():
            lic.user_keys.pop(user.key, None)

    def find_license(self, key: str) -> License | None:
        return self._licenses.get(key)

    def account_principal(self, principal: str) -> User:
        """The store user behind a token principal (Admin /me); 404 when unknown."""
        key = self._by_name.get(principal.lower())
        user = self._users.get(key) if key else None
        if user is None:
            raise GoToError(404, "user.not.found", "User not found")
        return user

    def all_licenses(self) -> list[License]:
        return list(self._licenses.values())

    @property
    def default_client_id(self) -> str:
        return DEFAULT_CLIENT_ID

    @property
    def default_client_secret(self) -> str:
        return DEFAULT_CLIENT_SECRET

    @property
    def default_pat(self) -> str:
        return DEFAULT_PAT
