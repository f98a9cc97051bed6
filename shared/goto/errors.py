"""Typed GoTo errors, and the one place where an HTTP answer becomes one of them.

Codes follow Entra's provisioning error names so that an admin reading our logs recognises them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from shared.errors import ErrorPolicy, GotosyncError
from shared.redaction import scrub

MAX_BODY_CHARS = 2048
MAX_CODE_CHARS = 100  # GoTo's own codes are short words; anything longer is not one

SERVICE_INCOMPATIBLE = "SystemForCrossDomainIdentityManagementServiceIncompatible"

AUTHORIZE_AGAIN = (
    "authorize GoTo again (`gotosync authorize`) with a GoTo organization admin that has Read & Write; "
    "it stores the new refresh token in Key Vault (KEY_VAULT_URL) or the local token file itself"
)


@dataclass(frozen=True)
class Op:
    """What a request was for, so that an error can name the step and the object.

    ``anchored`` marks a request on one linked object (``/Users/{key}``): a 404 there means the
    link is lost (Entra's ``InvalidAnchor``), not a failed search.
    """

    name: str  # e.g. "create user", "set licenses"
    obj: str = ""  # e.g. the userName, the user key, the group displayName
    anchored: bool = False

    @property
    def subject(self) -> str:
        return f"{self.name} {self.obj!r}" if self.obj else self.name


class GoToError(GotosyncError):
    """A failed GoTo call. ``status`` is None when no HTTP answer came back.

    Message, detail, body and GoTo's code are scrubbed here (shared.redaction), once for every
    error: whatever GoTo, its token endpoint or an intermediary echoed, no secret travels on in
    an exception, and so none reaches a log, the quarantine reason or an admin's screen.
    """

    code = "InternalError"
    policy = ErrorPolicy.SKIP  # an error raised retryable (or not) against its class's default: RETRY (or SKIP)
    exit_code = 5
    http_status = 502
    heading = "GoTo"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        op: Op | None = None,
        detail: str = "",
        body: str = "",
        retry_after: float | None = None,
        goto_code: str = "",
    ) -> None:
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or type(self).code
        self.retryable = self.default_retryable if retryable is None else retryable
        if self.retryable != (self.policy is ErrorPolicy.RETRY) and self.policy is not ErrorPolicy.QUARANTINE:
            self.policy = ErrorPolicy.RETRY if self.retryable else ErrorPolicy.SKIP
        self.op = op
        self.detail = scrub(detail)
        self.body = scrub(body)[:MAX_BODY_CHARS]
        self.retry_after = retry_after
        self.goto_code = scrub(goto_code)[:MAX_CODE_CHARS]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class NotFound(GoToError):
    code = "NotFound"


class Conflict(GoToError):
    code = "Conflict"


class BadRequest(GoToError):
    code = "UnprocessableEntity"


class AuthError(GoToError):
    code = "Unauthorized"
    policy = ErrorPolicy.QUARANTINE
    heading = "GoTo refused the credentials"
    fix = AUTHORIZE_AGAIN


class RateLimited(GoToError):
    code = "TooManyRequests"
    policy = ErrorPolicy.RETRY
    default_retryable = True


class TransientError(GoToError):
    code = "InternalServerError"
    policy = ErrorPolicy.RETRY
    default_retryable = True


class LicenseLimitExceeded(GoToError):
    code = "LicenseLimitExceeded"


class DryRunBlocked(GoToError):
    """A write refused by the read-only transport (dry run). Nothing reached GoTo."""

    code = "DryRun"


# --- error bodies -------------------------------------------------------------------------------

_CODE_KEYS = ("scimType", "int_err_code", "code", "errorCode", "error")
_DETAIL_KEYS = ("detail", "msg", "message", "errorMessage", "error_description", "description")


@dataclass(frozen=True)
class ErrorBody:
    """What could be read from an error body: GoTo's own code (if any) and a human message."""

    goto_code: str = ""
    detail: str = ""
    raw: str = ""


def parse_error_body(body: bytes | str, headers: Any = None) -> ErrorBody:
    """Reads every error-body style seen from GoTo (docs/reference/goto-api.md#error-bodies):
    empty, ``{"code","uri"}``, ``{"int_err_code","msg"}``, the SCIM 2.0 Error (``detail``,
    ``scimType``), or plain text.
    An empty body falls back to ``WWW-Authenticate: ... error="invalid_token"``."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    raw = text[:MAX_BODY_CHARS]
    if not text:
        return _from_challenge(headers)
    data = _json_object(text)
    if data is None:
        return ErrorBody(detail=raw, raw=raw)
    code = next((str(data[k]) for k in _CODE_KEYS if isinstance(data.get(k), str | int) and data.get(k) != ""), "")
    return ErrorBody(goto_code=code, detail=_detail_of(data, code)[:MAX_BODY_CHARS], raw=raw)


def _from_challenge(headers: Any) -> ErrorBody:
    """What ``WWW-Authenticate: Bearer error="...", error_description="..."`` says, if anything."""
    challenge = (headers or {}).get("www-authenticate", "") if headers is not None else ""
    match = re.search(r'error="?([\w.-]+)"?', challenge or "")
    if not match:
        return ErrorBody()
    desc = re.search(r'error_description="([^"]*)"', challenge)
    return ErrorBody(goto_code=match.group(1), detail=desc.group(1) if desc else match.group(1))


def _json_object(text: str) -> dict[str, Any] | None:
    """The body's JSON object (the first of a list of them), or None for anything else."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # some GoTo product APIs answer [{"code":..., "message":...}]
    return data if isinstance(data, dict) else None


def _detail_of(data: dict[str, Any], code: str) -> str:
    detail = next((str(data[k]) for k in _DETAIL_KEYS if isinstance(data.get(k), str) and data[k]), "")
    if not detail and isinstance(data.get("errors"), list) and data["errors"]:
        first = data["errors"][0]
        detail = str(first.get("message") or first.get("detail") or first) if isinstance(first, dict) else str(first)
    if not detail and code:
        detail = code
    if detail and data.get("uri") and detail == code:
        detail = f"{code} ({data['uri']})"
    return detail


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now`` (a POSIX timestamp): delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, seconds)


# --- status -> error ----------------------------------------------------------------------------

# GoTo documents none of these texts (docs/reference/goto-api.md#error-bodies); they are matched
# loosely and only refine the code.
_SEATS = re.compile(
    r"\bseats?\b|licen[cs]e\s*(limit|count|pool)|no\s+(more\s+|available\s+|free\s+)?licen[cs]es?"
    r"|licen[cs]es?\s+(are\s+)?(exhausted|exceeded|unavailable)|exceed\w*\s+(the\s+)?(number\s+of\s+)?licen",
    re.I,
)
_DOMAIN = re.compile(r"domain", re.I)
_DOMAIN_WHY = re.compile(r"verif|not\s+(allowed|part|owned|belong)|unknown|invalid|organi[sz]ation", re.I)
_MISSING = re.compile(r"\b(missing|required|must\s+not\s+be\s+(empty|null|blank)|is\s+empty|mandatory)\b", re.I)
_VALUE = re.compile(
    r"too\s+long|length|exceed|at\s+most|maximum|max\b|characters|invalid\s+(value|locale|time\s*zone)", re.I
)
_SHAPE = re.compile(
    r"invalid\.patch|patchop|\boperations\b|body\s+(shape|format)|patch\s+(style|format|body)|unsupported\s+(patch|body|media)"
    r"|not\s+support\w*\s+(patch|this\s+(body|format))|merge[- ]style",
    re.I,
)
_NO_RIGHTS = re.compile(r"not[._ ]authori[sz]ed|forbidden|insufficient|permission|role", re.I)


def error_from_status(
    status: int,
    parsed: ErrorBody,
    op: Op,
    *,
    method: str = "GET",
    retry_after: float | None = None,
) -> GoToError:
    """THE mapping from an HTTP status (and what its body says) to a typed error."""
    text = f"{parsed.goto_code} {parsed.detail}"
    if 400 <= status < 500 and status not in (401, 404, 408, 429) and _SEATS.search(text):
        return _error(LicenseLimitExceeded, None, status, parsed, op)
    known = _by_status(status, text, op, method)
    if known is not None:
        cls, code, retries = known
        return _error(cls, code, status, parsed, op, **({"retry_after": retry_after} if retries else {}))
    if 400 <= status < 500:
        return _error(BadRequest, _bad_request_code(text, parsed.goto_code), status, parsed, op)
    return _error(GoToError, "InternalServerError", status, parsed, op)


def _by_status(status: int, text: str, op: Op, method: str) -> tuple[type[GoToError], str | None, bool] | None:
    """(error class, code or None for the class's, whether Retry-After counts) of the statuses
    that decide the error by themselves."""
    if status in (401, 403):
        return AuthError, "InsufficientRights" if _NO_RIGHTS.search(text) else "Unauthorized", False
    if status == 404:
        return NotFound, "InvalidAnchor" if op.anchored else "NotFound", False
    if status == 409:
        return Conflict, "EntryConflict" if method.upper() == "POST" else "Conflict", False
    if status == 429:
        return RateLimited, None, True
    if status in (408, 504):
        return TransientError, "Timeout", True
    if status in (500, 502, 503):
        return TransientError, None, True
    if status in (405, 415, 501):
        return BadRequest, SERVICE_INCOMPATIBLE, False
    return None


def _bad_request_code(text: str, goto_code: str) -> str | None:
    """The code of another 4xx, from what its body says (None: the plain UnprocessableEntity)."""
    if _DOMAIN.search(text) and _DOMAIN_WHY.search(text):
        return "InvalidDomain"
    if goto_code == "invalidSyntax" or _SHAPE.search(text):
        return SERVICE_INCOMPATIBLE
    if _MISSING.search(text):
        return "MandatoryFieldsMissing"
    if goto_code == "invalidValue" or _VALUE.search(text):
        return "SchemaPropertyCanOnlyAcceptValue"
    return None


def _error(cls: type[GoToError], code: str | None, status: int, parsed: ErrorBody, op: Op, **kw: Any) -> GoToError:
    err_code = code or cls.code
    cause = parsed.detail or _REASON.get(status, "no error body")
    return cls(
        f"{op.subject} failed: HTTP {status} {err_code}: {cause}",
        status=status,
        code=err_code,
        op=op,
        detail=parsed.detail,
        body=parsed.raw,
        goto_code=parsed.goto_code,
        **kw,
    )


_REASON = {
    400: "bad request",
    401: "not authorized (GoTo also answers 401 for an unknown group)",
    403: "forbidden (GoTo answers 403 for an invalid token)",
    404: "not found",
    409: "conflict",
    429: "rate limit exceeded",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def redact(text: str, secrets: list[str]) -> str:
    """Removes every secret (access token, refresh token) that a server might echo back, in any
    encoding, and every credential-shaped value (shared.redaction.scrub)."""
    return scrub(text, secrets)
