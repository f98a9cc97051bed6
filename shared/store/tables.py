"""The store: one TableServiceClient, eleven tables under one name prefix, one repository per table
(the GoTo request budgets share the lease table)."""

from __future__ import annotations

import asyncio
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient, TableServiceClient

from .assignments import AssignmentRepository
from .audit import AuditRepository
from .budget import BudgetRepository
from .cycles import CycleHistoryRepository
from .errors import StoreError
from .escrow import EscrowRepository
from .job import JobRepository
from .lease import LeaseRepository
from .links import LinkRepository
from .listing import ListingRepository
from .logs import LogRepository
from .memberships import MembershipRepository
from .subscriptions import SubscriptionRepository

if TYPE_CHECKING:
    from collections.abc import Awaitable

DEFAULT_PREFIX = "gotosync"
TABLES = (
    "job",
    "lease",
    "assignments",
    "links",
    "escrow",
    "logs",
    "subscriptions",
    "cycles",
    "audit",
    "members",
    "listing",
)
# Table names: letters and digits, starting with a letter, 3 to 63 characters.
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,51}")

Credential = AsyncTokenCredential | AzureNamedKeyCredential | AzureSasCredential


def _public_endpoint(url: str) -> str:
    """The account URL without its query (a SAS token must never reach a message or a log)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Store:
    """gotosync's state in Azure Table Storage.

    Give either a connection string (Azurite, or an account key) or an account URL with a
    credential (default: azure-identity's DefaultAzureCredential, i.e. the managed identity in
    Azure; the store then owns it and closes it). Extra keyword arguments go to the
    TableServiceClient (for example `retry_total`).

        async with Store(connection_string=conn) as store:
            state = await store.job.get()
    """

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Credential | None = None,
        prefix: str = DEFAULT_PREFIX,
        **client_kwargs: Any,
    ) -> None:
        if (connection_string is None) == (account_url is None):
            raise ValueError("give exactly one of connection_string or account_url")
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"table prefix {prefix!r} must be letters and digits, start with a letter, at most 52 characters"
            )
        self.prefix = prefix
        self._owned_credential: AsyncTokenCredential | None = None
        if connection_string is not None:
            if credential is not None:
                raise ValueError("a connection string carries its own credential: do not pass one")
            self._service = TableServiceClient.from_connection_string(connection_string, **client_kwargs)
        else:
            assert account_url is not None
            if credential is None and "sig=" not in (urlsplit(account_url).query or ""):
                from azure.identity.aio import DefaultAzureCredential

                credential = self._owned_credential = DefaultAzureCredential()
            self._service = TableServiceClient(endpoint=account_url, credential=credential, **client_kwargs)
        self.endpoint = _public_endpoint(self._service.url)
        self._opened = False

        self.job = JobRepository(self._table("job"), self.endpoint)
        self.lease = LeaseRepository(self._table("lease"), self.endpoint)
        self.budget = BudgetRepository(self._table("lease"), self.endpoint)  # the GoTo request budgets
        self.assignments = AssignmentRepository(self._table("assignments"), self.endpoint)
        self.links = LinkRepository(self._table("links"), self.endpoint)
        self.escrow = EscrowRepository(self._table("escrow"), self.endpoint)
        self.logs = LogRepository(self._table("logs"), self.endpoint)
        self.subscriptions = SubscriptionRepository(self._table("subscriptions"), self.endpoint)
        self.cycles = CycleHistoryRepository(self._table("cycles"), self.endpoint)
        self.audit = AuditRepository(self._table("audit"), self.endpoint)
        self.memberships = MembershipRepository(self._table("members"), self.endpoint)
        self.listing = ListingRepository(self._table("listing"), self.endpoint)  # continuing full cycles

    @classmethod
    def from_connection_string(cls, connection_string: str, prefix: str = DEFAULT_PREFIX, **client_kwargs: Any) -> Self:
        return cls(connection_string=connection_string, prefix=prefix, **client_kwargs)

    @classmethod
    def from_account_url(
        cls, account_url: str, credential: Credential | None = None, prefix: str = DEFAULT_PREFIX, **client_kwargs: Any
    ) -> Self:
        return cls(account_url=account_url, credential=credential, prefix=prefix, **client_kwargs)

    from_endpoint = from_account_url  # the name settings use (GOTOSYNC_TABLE_ENDPOINT)

    def table_name(self, table: str) -> str:
        """The full name of one of the store's tables ("links" -> "gotosynclinks")."""
        return f"{self.prefix}{table}"

    @property
    def table_names(self) -> list[str]:
        return [self.table_name(t) for t in TABLES]

    def _table(self, table: str) -> TableClient:
        return self._service.get_table_client(self.table_name(table))

    async def open(self) -> Self:
        """Create the tables that do not exist yet. Raises StoreError when the account cannot be used."""
        if self._opened:
            return self
        creations: list[Awaitable[Any]] = [self._service.create_table_if_not_exists(n) for n in self.table_names]
        outcomes = await asyncio.gather(*creations, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, AzureError):
                raise StoreError.from_azure(
                    outcome, endpoint=self.endpoint, table=None, operation="Store.open (create tables)"
                ) from outcome
            if isinstance(outcome, BaseException):
                raise outcome
        self._opened = True
        return self

    async def close(self) -> None:
        await self._service.close()
        if self._owned_credential is not None:
            await self._owned_credential.close()

    async def __aenter__(self) -> Self:
        try:
            return await self.open()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
