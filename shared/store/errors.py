"""The two ways a storage call fails that callers act on: another writer got there first
(`ConcurrencyError`), or Table Storage could not be used at all (`StoreError`)."""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import ErrorPolicy, GotosyncError


class ConcurrencyError(GotosyncError):
    """A conditional write lost: the row changed (or appeared, or vanished) since it was read.

    Not a failure of the store: the caller re-reads and decides again.
    """

    code = "ConcurrentWrite"
    policy = ErrorPolicy.RETRY
    http_status = 409

    def __init__(self, table: str, partition_key: str, row_key: str, detail: str = "") -> None:
        self.table = table
        self.partition_key = partition_key
        self.row_key = row_key
        self.detail = detail
        what = detail or "the row was changed by another writer since it was read (ETag mismatch)"
        super().__init__(f"{table}[{partition_key}/{row_key}]: {what}")


class StoreError(GotosyncError):
    """Table Storage could not be used: unreachable, refused our credential, or rejected the call.

    The message names the account endpoint, the table, the operation and the cause, so that an
    operator can tell a wrong URL from a missing role assignment without a debugger.
    """

    code = "StorageUnavailable"
    policy = ErrorPolicy.RETRY
    exit_code = 5
    http_status = 503

    def __init__(self, message: str, *, endpoint: str, table: str | None = None, operation: str = "") -> None:
        self.endpoint = endpoint
        self.table = table
        self.operation = operation
        super().__init__(message)

    @classmethod
    def from_azure(cls, exc: AzureError, *, endpoint: str, table: str | None, operation: str) -> StoreError:
        where = f"Table Storage at {endpoint}" + (f" (table {table!r})" if table else "")
        status = getattr(exc, "status_code", None)
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            what = "cannot reach the account endpoint (wrong URL, network, firewall or the emulator is not running)"
        elif isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            what = (
                "access denied (check the connection string / credential, and that the identity holds "
                "'Storage Table Data Contributor' on the account)"
            )
        elif isinstance(exc, ResourceNotFoundError) and "TableNotFound" in str(exc):
            what = "the table does not exist (was Store.open() called?)"
        else:
            what = "the call was rejected"
        return cls(
            f"{where}: {operation} failed: {what}. Cause: {type(exc).__name__}: {_first_line(exc)}",
            endpoint=endpoint,
            table=table,
            operation=operation,
        )


def _first_line(exc: AzureError) -> str:
    text = getattr(exc, "message", None) or str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    code = getattr(exc, "error_code", None) if isinstance(exc, HttpResponseError) else None
    code = getattr(code, "value", code)
    return f"{first} [{code}]" if code and str(code) not in first else first
