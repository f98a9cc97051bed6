"""Where the GoTo refresh token lives between runs: Key Vault in Azure, a 0600 file locally;
and the token provider that reads it from there and writes every rotated token back.

GoTo returns a new refresh token only sometimes, and may revoke the old one when it does
(reference/goto-api.md §3). A token that is not saved the moment it arrives is lost for good,
so every rotation goes straight to the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from shared.settings import Settings, SettingsError

from .auth import DEFAULT_TOKEN_URL, OAuthTokenProvider
from .errors import AuthError

log = logging.getLogger("gotosync.goto.tokens")

REFRESH_TOKEN_SECRET = "goto-refresh-token"
CLIENT_SECRET_SECRET = "goto-client-secret"
PAT_SECRET = "goto-pat"
DEFAULT_TOKEN_FILE = Path("~/.gotosync/goto-refresh-token")

# App Service leaves an app setting as this literal text when a Key Vault reference cannot be
# resolved (secret missing, identity without access). It must never be sent as a credential.
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("


def unresolved_reference(value: str) -> bool:
    """True for an app-setting value that is a Key Vault reference App Service could not resolve."""
    return value.strip().lower().startswith(_KEY_VAULT_REFERENCE)


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
        from azure.core.exceptions import ResourceNotFoundError

        try:
            secret = await self._secrets().get_secret(name)
        except ResourceNotFoundError:
            return None
        return (secret.value or "").strip() or None

    async def save(self, token: str) -> None:
        await self.save_secret(self.secret_name, token)

    async def save_secret(self, name: str, value: str) -> None:
        """Writes any secret of this vault (``gotosync authorize --store-client-secret``)."""
        await self._secrets().set_secret(name, value, content_type="text/plain", tags={"writtenBy": "gotosync"})

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.close()
        if self._credential is not None and self._owns_credential:
            await self._credential.close()


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
    - Every rotated token is saved to the store at once. If the save fails the token is kept in
      memory, the failure is logged (never the token) and the save is retried on the next fetch.
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
        token_url: str = DEFAULT_TOKEN_URL,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
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
        self._client_id = client_id
        self._secret_missing = not client_secret or unresolved_reference(client_secret)
        self._seed = "" if unresolved_reference(seed) else seed.strip()
        self._loaded = False
        self._tried: set[str] = set()
        self._unsaved: str | None = None
        self.source = ""

    async def _candidates(self) -> list[tuple[str, str]]:
        stored = await self.store.load()
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
        self._secrets = [secret]
        self._secret_missing = False

    async def _fetch(self) -> None:
        if self._secret_missing:
            await self._load_client_secret()
        if self._unsaved is not None:
            await self._persist(self._unsaved)
        if not self._loaded:
            first = await self._candidates()
            if not first:
                raise AuthError(
                    "get access token failed: no GoTo refresh token: GOTO_REFRESH_TOKEN is empty and "
                    f"{self.store.description} holds none; run `gotosync authorize`",
                    code="Unauthorized",
                )
            self._refresh_token, self.source = first[0]
            self._loaded = True
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

    async def _persist(self, token: str) -> None:
        try:
            await self.store.save(token)
        except Exception as exc:  # the token must not be lost because a save failed once
            self._unsaved = token
            log.error(
                "could not save the rotated GoTo refresh token to %s: %s", self.store.description, type(exc).__name__
            )
            return
        self._unsaved = None
        self.source = self.store.description
        log.info("saved a rotated GoTo refresh token to %s", self.store.description)

    async def aclose(self) -> None:
        try:
            if self._unsaved is not None:
                await self._persist(self._unsaved)
        finally:
            try:
                await super().aclose()
            finally:
                await self.store.aclose()


_NOT_LOADED = "<not loaded>"


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
