"""Who may use the provisioning console, and from where.

In Azure the console sits behind App Service Authentication ("Easy Auth") with Microsoft Entra
ID. The platform signs the admin in, and on every request to the app it injects
`X-MS-CLIENT-PRINCIPAL`: base64 of a JSON object `{"auth_typ", "name_typ", "role_typ",
"claims": [{"typ", "val"}, ...]}`. External requests cannot set that header: the platform
removes it (https://learn.microsoft.com/en-us/azure/app-service/configure-authentication-user-identities).
It does so only while the feature is on, which the platform tells the app by injecting
`WEBSITE_AUTH_ENABLED=True` (https://learn.microsoft.com/en-us/azure/app-service/reference-app-settings).
So the header is believed only when that variable says so; otherwise the console is closed.
Locally, the Functions host stand-in plays the platform's part (emulators/functions_host.py).

The header is still parsed as hostile input: bounded size, strict base64, a JSON object of the
documented shape, text claims only. A caller is let in when one of its role claims is the
admin role of gotosync's own app registration (`Gotosync.Admin`).

State-changing requests must also come from the console's own page: a custom header that a
cross-site form cannot send (and a cross-site script cannot send without a CORS preflight,
which the app never answers), a JSON body, and an `Origin` (or `Sec-Fetch-Site`) naming this
very origin. docs/console.md explains the choice.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.ops import OpsError

ADMIN_ROLE = "Gotosync.Admin"
PRINCIPAL_HEADER = "x-ms-client-principal"
CONSOLE_HEADER = "x-gotosync-console"  # the page sends it on every request; "1"
PLATFORM_AUTH_VARIABLE = "WEBSITE_AUTH_ENABLED"

MAX_HEADER_CHARS = 32_768  # Easy Auth's principal of a user in many groups is a few KB
MAX_CLAIMS = 1_000
MAX_CLAIM_CHARS = 2_048
MAX_NAME_CHARS = 256

ROLE_CLAIMS = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
NAME_CLAIMS = ("preferred_username", "name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
SAFE_METHODS = frozenset({"GET", "HEAD"})

SIGN_IN_FIX = (
    "sign in to the console through App Service Authentication (/.auth/login/aad); locally, open the URL "
    "that `make demo ARGS=--world` prints"
)
ROLE_FIX = (
    f"ask an Entra admin to assign you the {ADMIN_ROLE} app role of gotosync's app registration "
    "(Enterprise applications → gotosync console → Users and groups), then sign in again"
)
PLATFORM_FIX = (
    "turn on App Service Authentication with Microsoft Entra ID for the Function app (infra/ does it: "
    "`azd provision`); see docs/deploy.md, 'The console'"
)


class AccessDenied(OpsError):
    """The request may not use the console; `http_status` is the HTTP answer, `fix` what to do."""

    http_status = 403
    code = "Forbidden"

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


class Unauthenticated(AccessDenied):
    http_status = 401
    code = "Unauthenticated"


class Forbidden(AccessDenied):
    http_status = 403
    code = "Forbidden"


class CrossSiteRequest(AccessDenied):
    http_status = 403
    code = "CrossSiteRequest"


class ConsoleClosed(AccessDenied):
    http_status = 503
    code = "ConsoleClosed"


@dataclass(frozen=True)
class Principal:
    """The signed-in caller, as App Service Authentication describes it."""

    name: str
    object_id: str
    identity_provider: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "objectId": self.object_id, "roles": sorted(self.roles), "admin": self.is_admin}


def _clean(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """Printable text only (no control or format characters), at most `limit` characters."""
    kept = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return kept.strip()[:limit]


def _decode(value: str) -> Any:
    if len(value) > MAX_HEADER_CHARS:
        raise Unauthenticated(f"X-MS-CLIENT-PRINCIPAL is longer than {MAX_HEADER_CHARS} characters", SIGN_IN_FIX)
    text = value.strip()
    if not text or not text.isascii():
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL is empty or not base64", SIGN_IN_FIX)
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL is not base64", SIGN_IN_FIX) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL is not a JSON document", SIGN_IN_FIX) from None


def _claims(doc: Any) -> list[tuple[str, str]]:
    if not isinstance(doc, dict):
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL is not a JSON object", SIGN_IN_FIX)
    claims = doc.get("claims")
    if not isinstance(claims, list):
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL has no claims list", SIGN_IN_FIX)
    if len(claims) > MAX_CLAIMS:
        raise Unauthenticated(f"X-MS-CLIENT-PRINCIPAL has more than {MAX_CLAIMS} claims", SIGN_IN_FIX)
    pairs: list[tuple[str, str]] = []
    for claim in claims:
        typ = claim.get("typ") if isinstance(claim, dict) else None
        val = claim.get("val") if isinstance(claim, dict) else None
        if not isinstance(typ, str) or not isinstance(val, str):
            raise Unauthenticated("X-MS-CLIENT-PRINCIPAL has a claim that is not {typ, val} text", SIGN_IN_FIX)
        if len(typ) > MAX_CLAIM_CHARS or len(val) > MAX_CLAIM_CHARS:
            raise Unauthenticated(f"X-MS-CLIENT-PRINCIPAL has a claim over {MAX_CLAIM_CHARS} characters", SIGN_IN_FIX)
        pairs.append((typ, val))
    return pairs


def _text_field(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_CLAIM_CHARS:
        raise Unauthenticated(f"X-MS-CLIENT-PRINCIPAL: {name} is not text", SIGN_IN_FIX)
    return value


def parse_client_principal(value: str) -> Principal:
    """The caller described by an `X-MS-CLIENT-PRINCIPAL` value. Raises Unauthenticated naming
    what is wrong with it; never anything else."""
    doc = _decode(value)
    pairs = _claims(doc)
    role_typ = _text_field(doc, "role_typ")
    name_typ = _text_field(doc, "name_typ")
    auth_typ = _text_field(doc, "auth_typ")
    roles = frozenset(val for typ, val in pairs if typ in ROLE_CLAIMS or (role_typ and typ == role_typ))
    by_type: dict[str, str] = {}
    for typ, val in pairs:
        if val and typ not in by_type:
            by_type[typ] = val
    name = next((by_type[t] for t in (name_typ, *NAME_CLAIMS) if t and by_type.get(t)), "")
    object_id = next((by_type[t] for t in OBJECT_ID_CLAIMS if by_type.get(t)), "")
    if not name and not object_id:
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL names nobody (no name and no object id claim)", SIGN_IN_FIX)
    return Principal(
        name=_clean(name or object_id),
        object_id=_clean(object_id, 64),
        identity_provider=_clean(auth_typ, 64),
        roles=roles,  # compared as given: a role value that differs in any character is another role
    )


def platform_auth_enabled(env: Mapping[str, str]) -> bool:
    return env.get(PLATFORM_AUTH_VARIABLE, "").strip().lower() in ("true", "1")


def authorize(headers: Mapping[str, str], env: Mapping[str, str]) -> Principal:
    """The admin making this request. `headers` with lower-case names. Raises ConsoleClosed
    (no App Service Authentication: the header could be forged), Unauthenticated (nobody
    signed in, or a malformed principal) or Forbidden (signed in without the admin role)."""
    if not platform_auth_enabled(env):
        raise ConsoleClosed(
            "App Service Authentication is not enabled for this app: the console is closed", PLATFORM_FIX
        )
    value = headers.get(PRINCIPAL_HEADER)
    if not value:
        raise Unauthenticated("not signed in", SIGN_IN_FIX)
    principal = parse_client_principal(value)
    if not principal.is_admin:
        raise Forbidden(f"{principal.name} is signed in but does not hold the {ADMIN_ROLE} app role", ROLE_FIX)
    return principal


def _origin_host(origin: str) -> str:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return parts.netloc.lower()


def check_same_origin(method: str, headers: Mapping[str, str]) -> None:
    """Refuses a state-changing request that does not come from the console's own page.
    `headers` with lower-case names. GET and HEAD never change state and pass."""
    if method.upper() in SAFE_METHODS:
        return
    fix = "use the console page itself; a request from another site, or without the console's header, is refused"
    if headers.get(CONSOLE_HEADER) != "1":
        raise CrossSiteRequest(f"the {CONSOLE_HEADER} header is missing", fix)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise CrossSiteRequest("a state-changing request must send a JSON body (Content-Type: application/json)", fix)
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CrossSiteRequest(f"the browser says the request comes from another site ({fetch_site[:32]})", fix)
    origin = headers.get("origin")
    if origin is None:
        if fetch_site is None:
            raise CrossSiteRequest("the request names no Origin", fix)
        return
    # The host the browser addressed: Host, or the one a front end (App Service's own, a gateway) passes on.
    named = (
        headers.get("host", ""),
        headers.get("x-forwarded-host", "").split(",")[0],
        headers.get("disguised-host", ""),
    )
    own = {h.strip().lower() for h in named if h.strip()}
    if _origin_host(origin) not in own:
        raise CrossSiteRequest("the request comes from another origin", fix)
