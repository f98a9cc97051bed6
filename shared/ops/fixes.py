"""What an admin does about a provisioning-log error code or a quarantine: the "fix" the console
shows next to the reason, as the Entra portal's "Troubleshooting and recommendations" does."""

from __future__ import annotations

from shared.ops.connection import AUTHORIZE_AGAIN

TRANSIENT = (
    "a passing failure of GoTo or Graph: the object is retried at the next cycle; nothing to do unless it repeats"
)

ERROR_FIXES: dict[str, str] = {
    "EntryConflict": (
        "a GoTo user already holds this userName and was not matched to this Entra user: check the matching "
        "attributes (docs/mappings.md), or remove or rename the other GoTo account"
    ),
    "Conflict": (
        "GoTo refused the change as a conflict with another user: look for a duplicate userName or email in GoTo"
    ),
    "DuplicateTargetEntries": (
        "more than one GoTo user matches this Entra user: remove the duplicate in GoTo, or change the matching "
        "precedence in the mapping"
    ),
    "SchemaPropertyCanOnlyAcceptValue": (
        "GoTo does not accept a value (too long, or the wrong format): correct the attribute in Entra, or shape it "
        "in the mapping (for example Left([givenName], 60)); `gotosync mapping preview` shows the values"
    ),
    "UnprocessableEntity": (
        "a mapping could not be evaluated for this user: the reason names the mapping; fix the mapping or the "
        "source value, then provision on demand"
    ),
    "ImportSkipped": "the user has no value for any matching attribute (userPrincipalName, mail): set one in Entra",
    "LicenseLimitExceeded": (
        "no seat is free on the GoTo license: buy seats or release some in GoTo Admin; the user is retried "
        "(escrow) and gets the seat then"
    ),
    "LicenseNotFound": "ROLE_LICENSES names a license the GoTo account does not have: correct ROLE_LICENSES",
    "InvalidAnchor": (
        "the GoTo user gotosync created was deleted in GoTo: the next cycle creates it again if the user is in scope"
    ),
    "NotFound": "the GoTo object no longer exists: the next cycle creates it again if the user is in scope",
    "Unauthorized": AUTHORIZE_AGAIN,
    "AuthorizationFailed": AUTHORIZE_AGAIN,
    "StagedDelete": (
        "held by the deletion threshold: review the held deletions on the overview (a dry run lists them), then "
        "allow deletes, or fix the cause and restart"
    ),
    "InternalError": "gotosync could not process the change: the reason says why; the object is retried",
    "SystemForCrossDomainIdentityManagementServiceIncompatible": (
        "check GOTO_SCIM_URL: GoTo's SCIM API did not answer as SCIM"
    ),
}
for _code in ("TooManyRequests", "InternalServerError", "Timeout", "WebExceptionProtocolError", "ServiceUnavailable"):
    ERROR_FIXES[_code] = TRANSIENT


def error_fix(code: str) -> str:
    """The fix for a provisioning-log error code ("" when there is none to give)."""
    return ERROR_FIXES.get(code, "")


def quarantine_fix(reason: str) -> str:
    """The fix for a quarantine, from its reason ("" when the job is not quarantined)."""
    if not reason:
        return ""
    if reason.startswith("DeletionThresholdExceeded"):
        return (
            "review the held deletions (a dry run lists each one), then allow deletes; or, if they are a mistake "
            "(a group unassigned by accident), fix that in Entra and restart with the QuarantineState scope"
        )
    if "refused the credentials" in reason or "refresh token" in reason or "client secret" in reason:
        return AUTHORIZE_AGAIN + "; the next cycle that reaches GoTo lifts the quarantine"
    return "fix what the reason names, then restart with the QuarantineState scope (or wait for the next cycle)"
