"""Where the GoTo refresh token lives between runs: Key Vault in Azure, a 0600 file locally;
and the token provider that reads it from there and writes every rotated token back.

GoTo returns a new refresh token only sometimes, and may revoke the old one when it does
(docs/reference/goto-api.md#token-rotation). A token that is not saved the moment it arrives
is lost for good, so every rotation goes straight to the store, and an access token is used
only once the refresh token that came with it is saved. Refresh-and-save runs under a lease
in Table Storage, so that instances running at once (timer, queue worker, admin API) never spend
the same refresh token twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from shared import redaction
from shared.settings import Settings, SettingsError, unresolved_reference

from .auth import DEFAULT_TOKEN_URL, OAuthTokenProvider
from .errors import AuthError, Op, TransientError

if TYPE_CHECKING:
    from shared.store import Lease, LeaseRepository

log = logging.getLogger("gotosync.goto.tokens")

REFRESH_TOKEN_SECRET = "goto-refresh-token"
CLIENT_SECRET_SECRET = "goto-client-secret"
PAT_SECRET = "goto-pat"
DEFAULT_TOKEN_FILE = Path("~/.gotosync/goto-refresh-token")


REFRESH_LEASE = "goto-token-refresh"
REFRESH_LEASE_TTL = 90.0  # seconds: the token request (30 s timeout) and the save, with room to spare
REFRESH_LEASE_WAIT = REFRESH_LEASE_TTL + 30.0  # a holder that died is taken over once its lease expires


class CredentialStoreError(AuthError):
    """The store of GoTo's credentials (Key Vault, the local token file) could not be used: one
    message that names the store and the cause, instead of the SDK's chained tracebacks."""

    code = "CredentialStoreUnavailable"
    http_status = 503
    heading = ""  # the message names the store and the cause
    fix = ""


class TokenNotSaved(TransientError):
    """GoTo rotated the refresh token and the new one could not be saved. The access token that
    came with it is not used; the save is tried again on the next attempt."""

    code = "TokenNotSaved"


@runtime_checkable
class LeaseSource(Protocol):
    """Where the refresh lease lives: the store's lease table, or None (no storage configured:
    a local run, where the in-process lock is the only one)."""

    async def repository(self) -> LeaseRepository | None: ...

    async def aclose(self) -> None: ...


class FixedLeases:
    """An already open store's lease table (the runtime's)."""

    def __init__(self, leases: LeaseRepository | None) -> None:
        self._leases = leases

    async def repository(self) -> LeaseRepository | None:
        return self._leases

    async def aclose(self) -> None:
        return None


@runtime_checkable
class RefreshTokenStore(Protocol):
    """Holds one refresh token. ``authoritative``: this store is where the newest token is
    (Key Vault, written by every instance), so it is tried before GOTO_REFRESH_TOKEN."""

    description: str
    authoritative: bool

    async def load(self) -> str | None: ...

    async def save(self, token: str) -> None: ...

    async def aclose(self) -> None: ...


class FileRefreshTokenStore:
    """A local file readable by its owner only (0600, in a 0700 directory), replaced atomically."""

    authoritative = False

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_TOKEN_FILE) -> None:
        self.path = Path(path).expanduser()
        self.description = f"the file {self.path}"

    async def load(self) -> str | None:
        return await asyncio.to_thread(self._read)

    async def save(self, token: str) -> None:
        await asyncio.to_thread(self._write, token)

    async def aclose(self) -> None:
        return None

    def _read(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def _write(self, token: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600 before a byte is written; os.replace keeps it.
        fd, tmp = tempfile.mkstemp(prefix=".goto-refresh-token.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(token + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class KeyVaultRefreshTokenStore:
    """A Key Vault secret (one new version per save), read and written with DefaultAzureCredential:
    the app's managed identity in Azure (Key Vault Secrets Officer), the admin's login locally.

    The SDK is imported on first use, so runs without Key Vault never load it.
    """

    authoritative = True

    def __init__(
        self,
        vault_url: str,
        secret_name: str = REFRESH_TOKEN_SECRET,
        *,
        credential: Any = None,
        client: Any = None,
    ) -> None:
        self.vault_url = vault_url.rstrip("/")
        self.secret_name = secret_name
        self.description = f"Key Vault secret {secret_name!r} in {self.vault_url}"
        self._credential = credential
        self._owns_credential = credential is None and client is None
        self._client = client
        self._owns_client = client is None

    def _secrets(self) -> Any:
        if self._client is None:
            from azure.keyvault.secrets.aio import SecretClient

            if self._credential is None:
                from azure.identity.aio import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            self._client = SecretClient(vault_url=self.vault_url, credential=self._credential)
        return self._client

    async def load(self) -> str | None:
        return await self.load_secret(self.secret_name)

    async def load_secret(self, name: str) -> str | None:
        """The latest version of any secret of this vault; None when there is none."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            secret = await self._secrets().get_secret(name)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise key_vault_error("read", name, self.vault_url, exc) from None
        value = (secret.value or "").strip() or None
        redaction.register(value)
        return value

    async def save(self, token: str) -> None:
        await self.save_secret(self.secret_name, token)

    async def save_secret(self, name: str, value: str) -> None:
        """Writes any secret of this vault (``gotosync authorize --store-client-secret``)."""
        from azure.core.exceptions import AzureError

        try:
            await self._secrets().set_secret(name, value, content_type="text/plain", tags={"writtenBy": "gotosync"})
        except AzureError as exc:
            raise key_vault_error("write", name, self.vault_url, exc) from None

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.close()
        if self._credential is not None and self._owns_credential:
            await self._credential.close()


def key_vault_error(verb: str, name: str, vault_url: str, exc: Exception) -> CredentialStoreError:
    """One clear sentence for a Key Vault failure: what could not be done, and what to check."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    status = getattr(exc, "status_code", None)
    if isinstance(exc, ServiceRequestError):
        cause = f"cannot reach the vault ({type(exc).__name__}): check KEY_VAULT_URL, DNS and the outbound network"
    elif isinstance(exc, ClientAuthenticationError) and status is None:
        cause = (
            "no Azure credential could sign in to the vault: in Azure enable the Function app's managed identity; "
            "locally sign in with `az login`"
        )
    elif status in (401, 403):
        cause = (
            f"the vault refused the identity (HTTP {status}): it needs the role 'Key Vault Secrets Officer' "
            "on the vault (and the vault's firewall must let it in)"
        )
    elif isinstance(exc, HttpResponseError):
        cause = f"the vault answered HTTP {status}: {redaction.summary(exc.message or '', limit=200)}"
    else:
        cause = f"{type(exc).__name__}: {redaction.summary(str(exc), limit=200)}"
    return CredentialStoreError(
        f"cannot {verb} Key Vault secret {name!r} in {vault_url}: {cause}",
        op=Op(f"{verb} Key Vault secret", name),
    )


def refresh_token_store(settings: Settings) -> RefreshTokenStore:
    """Key Vault when KEY_VAULT_URL is set (every deployed run), else the local file."""
    if settings.key_vault_url:
        return KeyVaultRefreshTokenStore(settings.key_vault_url)
    return FileRefreshTokenStore(settings.goto_refresh_token_file or DEFAULT_TOKEN_FILE)


class StoredRefreshTokenProvider(OAuthTokenProvider):
    """The refresh-token grant with the token kept in a :class:`RefreshTokenStore`.

    - The token is loaded on first use: from the store and from GOTO_REFRESH_TOKEN (``seed``).
      With Key Vault the store goes first: the app setting is a Key Vault reference that App
      Service caches for up to a day, so after a rotation it is stale. With the local file the
      explicit setting goes first.
    - Refresh-and-save is single-flight across instances: it runs under the lease
      ``goto-token-refresh`` in Table Storage (``leases``). Once the lease is held the store is
      read again: when another instance has rotated the token meanwhile, its token is used.
    - Every rotated token is saved to the store before the access token that came with it is
      used. If the save fails, :class:`TokenNotSaved` is raised (the access token is dropped),
      the rotated token is kept in memory only to try the save again on the next attempt, and
      the failure is logged (never the token).
    - ``invalid_grant`` on one token: the store is read again (another instance may have rotated
      the token a moment ago) and the next token not yet tried is used; when none is left the
      AuthError names the cause, and the engine quarantines the job on it.
    - No client secret given (GOTO_CLIENT_SECRET empty, or a Key Vault reference App Service has
      not resolved yet): it is read from the same vault (secret ``goto-client-secret``).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        store: RefreshTokenStore,
        *,
        seed: str = "",
        seed_unresolved: bool = False,
        leases: LeaseSource | None = None,
        token_url: str = DEFAULT_TOKEN_URL,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        extra: dict[str, Any] = dict(kwargs)
        if clock is not None:
            extra["clock"] = clock
        # The base class wants its token at construction; the real one is loaded in _fetch.
        super().__init__(
            client_id,
            client_secret,
            refresh_token=_NOT_LOADED,
            token_url=token_url,
            save_refresh_token=self._persist,
            http_client=http_client,
            **extra,
        )
        self.store = store
        self.leases = leases
        self._client_id = client_id
        self._secret_missing = not client_secret or unresolved_reference(client_secret)
        self._seed_unresolved = seed_unresolved or unresolved_reference(seed)
        self._seed = "" if unresolved_reference(seed) else seed.strip()
        self._loaded = False
        self._tried: set[str] = set()
        self._unsaved: str | None = None
        self._store_seen: str | None = None  # the store's token when this provider last read or wrote it
        self._owner = f"gotosync-{uuid.uuid4()}"
        self._sleep = sleep
        self.source = ""

    async def _load_store(self) -> str | None:
        try:
            stored = await self.store.load()
        except OSError as exc:  # the local file (Key Vault failures already are CredentialStoreErrors)
            raise CredentialStoreError(
                f"cannot read {self.store.description}: {exc.strerror or type(exc).__name__}"
            ) from None
        redaction.register(stored)
        self._store_seen = stored
        return stored

    async def _candidates(self) -> list[tuple[str, str]]:
        stored = await self._load_store()
        pairs = [(stored, self.store.description), (self._seed, "GOTO_REFRESH_TOKEN")]
        if not self.store.authoritative:
            pairs.reverse()
        seen: set[str] = set()
        out = []
        for token, source in pairs:
            if token and token not in seen and token not in self._tried:
                seen.add(token)
                out.append((token, source))
        return out

    async def _load_client_secret(self) -> None:
        secret = None
        if isinstance(self.store, KeyVaultRefreshTokenStore):
            secret = await self.store.load_secret(CLIENT_SECRET_SECRET)
        if not secret:
            where = f" and {self.store.description.replace(REFRESH_TOKEN_SECRET, CLIENT_SECRET_SECRET)} holds none"
            raise AuthError(
                "get access token failed: no GoTo client secret: GOTO_CLIENT_SECRET is empty"
                + (where if isinstance(self.store, KeyVaultRefreshTokenStore) else "")
                + "; run `gotosync authorize --store-client-secret`",
                code="Unauthorized",
            )
        self._auth = httpx.BasicAuth(self._client_id, secret)
        self._secrets = [secret, f"{self._client_id}:{secret}"]
        redaction.register(*self._secrets)
        self._secret_missing = False

    async def _fetch(self) -> None:
        if self._secret_missing:
            await self._load_client_secret()
        async with self._refresh_lease():
            if self._unsaved is not None:
                await self._persist(self._unsaved)
            await self._choose_token()
            await self._grant()

    async def _choose_token(self) -> None:
        """The token to spend: on first use the best candidate; later the store's, when another
        instance has written a newer one since this provider last looked."""
        if not self._loaded:
            first = await self._candidates()
            if not first:
                setting = (
                    "GOTO_REFRESH_TOKEN is a Key Vault reference App Service could not resolve"
                    if self._seed_unresolved
                    else "GOTO_REFRESH_TOKEN is empty"
                )
                raise AuthError(
                    f"get access token failed: no GoTo refresh token: {setting} and "
                    f"{self.store.description} holds none; run `gotosync authorize`",
                    code="Unauthorized",
                )
            self._refresh_token, self.source = first[0]
            self._loaded = True
            return
        seen = self._store_seen
        stored = await self._load_store()
        if stored and stored != seen and stored != self._refresh_token and stored not in self._tried:
            log.info("another instance rotated the GoTo refresh token: using the one in %s", self.store.description)
            self._refresh_token, self.source = stored, self.store.description

    async def _grant(self) -> None:
        while True:
            try:
                await super()._fetch()
                return
            except AuthError as exc:
                if exc.goto_code != "invalid_grant":
                    raise
                self._tried.add(self._refresh_token or "")
                rest = await self._candidates()
                if not rest:
                    raise AuthError(
                        f"{exc.message}; the refresh token from {self.source} was refused "
                        "(revoked, expired, or issued to another OAuth client): run `gotosync authorize`",
                        status=exc.status,
                        code=exc.code,
                        op=exc.op,
                        detail=exc.detail,
                        body=exc.body,
                        goto_code=exc.goto_code,
                    ) from None
                log.warning("GoTo refused the refresh token from %s; trying the one from %s", self.source, rest[0][1])
                self._refresh_token, self.source = rest[0]

    @asynccontextmanager
    async def _refresh_lease(self) -> AsyncIterator[None]:
        """Holds the lease ``goto-token-refresh`` (when there is a lease table) for the block."""
        repository = await self._lease_repository()
        if repository is None:
            yield
            return
        lease = await self._acquire(repository)
        try:
            yield
        finally:
            try:
                await repository.release(lease)
            except Exception as exc:  # it expires on its own; the refresh itself is done
                log.warning("could not release the GoTo token-refresh lease: %s", type(exc).__name__)

    async def _lease_repository(self) -> LeaseRepository | None:
        from shared.store import StoreError

        if self.leases is None:
            return None
        try:
            return await self.leases.repository()
        except StoreError as exc:
            raise _lease_unavailable(exc) from None

    async def _acquire(self, repository: LeaseRepository) -> Lease:
        from shared.store import StoreError

        deadline = time.monotonic() + REFRESH_LEASE_WAIT
        delay = 0.05
        while True:
            try:
                lease = await repository.acquire(REFRESH_LEASE, self._owner, REFRESH_LEASE_TTL)
            except StoreError as exc:
                raise _lease_unavailable(exc) from None
            if lease is not None:
                return lease
            if time.monotonic() >= deadline:
                raise TransientError(
                    f"get access token failed: another gotosync instance has held the token-refresh lease for "
                    f"{REFRESH_LEASE_WAIT:g} s",
                    code="Timeout",
                    op=_LEASE_OP,
                )
            # Waiting for another instance's refresh (a poll with jitter, not a synchronisation
            # between tests): it usually takes one token request.
            await self._sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    async def _persist(self, token: str) -> None:
        try:
            await self.store.save(token)
        except Exception as exc:  # the token must not be lost because a save failed once
            self._unsaved = token
            cause = (
                str(exc)
                if isinstance(exc, CredentialStoreError)
                else f"cannot write {self.store.description}: {type(exc).__name__}"
            )
            log.error("could not save the rotated GoTo refresh token: %s", cause)
            raise TokenNotSaved(
                f"get access token failed: GoTo issued a new refresh token that could not be saved ({cause}); "
                "the new access token is not used, and the save is tried again on the next attempt",
                op=Op("get access token", "save rotated refresh token"),
            ) from None
        self._unsaved = None
        self._store_seen = token
        self.source = self.store.description
        log.info("saved a rotated GoTo refresh token to %s", self.store.description)

    async def aclose(self) -> None:
        try:
            if self._unsaved is not None:
                with contextlib.suppress(TokenNotSaved):
                    await self._persist(self._unsaved)
        finally:
            try:
                await super().aclose()
            finally:
                try:
                    await self.store.aclose()
                finally:
                    if self.leases is not None:
                        await self.leases.aclose()


_NOT_LOADED = "<not loaded>"
_LEASE_OP = Op("get access token", "refresh lease")


def _lease_unavailable(exc: Exception) -> TransientError:
    return TransientError(
        f"get access token failed: cannot take the token-refresh lease in storage: {exc}",
        code="StorageUnavailable",
        op=_LEASE_OP,
        retryable=False,
    )


def client_secret_from(settings: Settings) -> str:
    """GOTO_CLIENT_SECRET; empty when it is to be read from Key Vault (an unresolved reference
    with KEY_VAULT_URL set). Without a vault an unresolved reference is a clear error."""
    if not unresolved_reference(settings.goto_client_secret):
        return settings.goto_client_secret
    if settings.key_vault_url:
        return ""
    raise SettingsError(
        "GOTO_CLIENT_SECRET is a Key Vault reference that App Service could not resolve, and KEY_VAULT_URL is "
        f"empty: set KEY_VAULT_URL, or create the secret {CLIENT_SECRET_SECRET!r} "
        "(gotosync authorize --store-client-secret) and restart the app"
    )
