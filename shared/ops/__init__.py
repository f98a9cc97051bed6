"""Admin operations, one module each: provision on demand, test connection, on/off and restart,
the dry-run report, status, log export and retention. The `gotosync` CLI and the HTTP admin
endpoints (admin_api/) are two thin faces of the same functions here.

The errors below are the ones both faces translate: bad input names its field (CLI exit 2,
HTTP 400), a named object that does not exist (exit 4, 404), and an operation refused while a
cycle holds the lease (exit 3, 409).
"""

from __future__ import annotations

from shared.errors import ErrorPolicy, GotosyncError


class OpsError(GotosyncError):
    """An admin operation could not be done as asked; the message says why and what to do."""

    code = "BadRequest"
    policy = ErrorPolicy.STOP
    exit_code = 2
    http_status = 400


class InvalidInput(OpsError):
    """A request field (CLI option, JSON property or query parameter) has a wrong value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class NotFound(OpsError):
    """The user or group named in the request does not exist in Entra."""

    code = "NotFound"
    exit_code = 4
    http_status = 404


class CycleRunning(OpsError):
    """A sync cycle holds the lease; the operation would race with it."""

    code = "CycleRunning"
    exit_code = 3
    http_status = 409
    heading = "not run"


__all__ = ["CycleRunning", "InvalidInput", "NotFound", "OpsError"]
