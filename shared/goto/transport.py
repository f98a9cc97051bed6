"""The HTTP seam both GoTo clients share: bearer token, pacing, retries, status -> typed error,
and the dry-run refusal of writes. Every GoTo request goes through ``Transport.request``.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

import httpx

from shared import telemetry

from .auth import TokenProvider
from .errors import (
    SERVICE_INCOMPATIBLE,
    AuthError,
    DryRunBlocked,
    GoToError,
    Op,
    RateLimited,
    TransientError,
    error_from_status,
    parse_error_body,
    parse_retry_after,
    redact,
)
from .ratelimit import RateLimiter, SharedBudget

log = logging.getLogger("shared.goto")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE = "application/json"
USER_AGENT = "gotosync/0.1 (+https://github.com/gotosync)"


@dataclass
class ClientStats:
    """Counters for telemetry: one object per client (so per API)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers
    transient: int = 0  # 5xx answers, timeouts, connection errors
    token_refreshes: int = 0
    blocked_writes: int = 0  # refused by the read-only transport
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class WouldBeRequest:
    """A write the dry-run transport refused, kept so a dry run can show what it would send."""

    method: str
    url: str
    body: Any


class DryRunTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport and refuses every request that could change GoTo state.

    Dry run is enforced here, once, below the clients: no client method checks a flag.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.blocked: list[WouldBeRequest] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method.upper() not in READ_METHODS:
            raw = request.content
            try:
                body = jsonlib.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self.blocked.append(WouldBeRequest(request.method, str(request.url), body))
            raise DryRunBlocked(f"{request.method} {request.url.path} refused: read-only (dry run)")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; ``Retry-After`` wins when given.

    A ``Retry-After`` longer than ``max_retry_after`` is not slept through: the error is raised
    (still ``retryable``) so the caller can park the object instead of holding a worker.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); None = give up."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return rng() * min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))


def encode_query(params: Mapping[str, Any]) -> str:
    """``k=v&...`` with spaces as ``%20``: GoTo's Admin API rejects ``+`` for spaces
    (docs/reference/goto-api.md#admin-api-and-licenses)."""
    return "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in params.items() if v is not None)


class Transport:
    """One GoTo API (SCIM or Admin): its own HTTP client, rate limiter, retry policy and stats."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        rate_limit: float | None = 10.0,
        burst: float = 1.0,
        max_concurrency: int = 4,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
        read_only: bool = False,
        http_transport: httpx.AsyncBaseTransport | None = None,
        media_type: str = JSON_MEDIA_TYPE,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        budget: SharedBudget | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.tokens = token_provider
        self.limiter = RateLimiter(rate_limit, burst, max_concurrency, budget)
        self.policy = RetryPolicy(max_attempts, backoff_base, backoff_cap, max_retry_after)
        self.stats = ClientStats()
        self.read_only = read_only
        # Accept, and Content-Type of every JSON body: application/json for GoTo, or
        # application/scim+json for a strict SCIM 2.0 target (RFC 7644 §3.8).
        self.media_type = media_type
        inner = http_transport or httpx.AsyncHTTPTransport()
        self.dry_run = DryRunTransport(inner) if read_only else None
        self._http = httpx.AsyncClient(
            transport=self.dry_run or inner,
            timeout=timeout,
            headers={"Accept": media_type, "User-Agent": USER_AGENT},
        )
        self._sleep = sleep
        self._rng = rng

    @property
    def blocked(self) -> list[WouldBeRequest]:
        """The writes a read-only transport refused (empty when writes are allowed)."""
        return self.dry_run.blocked if self.dry_run else []

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        op: Op,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Sends one logical request; returns a 2xx response or raises a ``GoToError``.

        Retries 429 / 500 / 502 / 503 / 504 / timeouts / connection errors within the policy.
        On 401 or 403 fetches a new token once and retries once: GoTo answers an invalid token
        with 403 per its spec and with an empty 401 in practice (docs/reference/goto-api.md#u6).
        """
        url = self.base_url + path
        if params:
            url += "?" + encode_query(params)
        headers = {"Content-Type": self.media_type} if json is not None else {}
        attempt = 0
        refreshed = False
        force_refresh = False
        while True:
            attempt += 1
            token = ""
            try:
                token = await self.tokens.get_token(force_refresh=force_refresh)
                force_refresh = False
                async with self.limiter.slot():
                    self.stats.requests += 1
                    response = await self._http.request(
                        method, url, json=json, headers={**headers, "Authorization": f"Bearer {token}"}
                    )
            except DryRunBlocked as exc:
                self.stats.blocked_writes += 1
                raise DryRunBlocked(f"{op.subject} not sent: {exc}", op=op, retryable=False) from None
            except httpx.TimeoutException as exc:
                err: GoToError = TransientError(
                    f"{op.subject} failed: Timeout ({type(exc).__name__})", code="Timeout", op=op
                )
                self.stats.transient += 1
            except httpx.TransportError as exc:
                err = TransientError(
                    f"{op.subject} failed: connection error ({type(exc).__name__})", code="InternalError", op=op
                )
                self.stats.transient += 1
            except GoToError as exc:  # from the token provider
                err = exc
            else:
                self.stats.statuses[response.status_code] += 1
                if response.is_success:
                    return response
                err = self._error(response, op, method, token)
                if isinstance(err, AuthError) and not refreshed:
                    refreshed = True
                    force_refresh = True
                    attempt -= 1  # the token retry is not one of the backoff attempts
                    self.stats.token_refreshes += 1
                    log.info("GoTo %s: HTTP %s, refreshing the access token once", op.name, response.status_code)
                    continue
            if not err.retryable:
                raise err
            delay = self.policy.delay(attempt, err.retry_after, self._rng)
            if delay is None:
                raise err
            if isinstance(err, RateLimited):
                await self.limiter.pause(delay)
            self.stats.retries += 1
            log.info("GoTo %s: %s; retry %d in %.2fs", op.name, err.code, attempt, delay)
            await self._sleep(delay)

    def _error(self, response: httpx.Response, op: Op, method: str, token: str) -> GoToError:
        status = response.status_code
        if status == 429:
            self.stats.throttled += 1
            telemetry.metrics().record_goto_429()
        elif status >= 500 or status == 408:
            self.stats.transient += 1
        text = redact(response.text, [token])
        parsed = parse_error_body(text, response.headers)
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        return error_from_status(status, parsed, op, method=method, retry_after=retry_after)


def decode_json(response: httpx.Response, op: Op) -> Any:
    """The JSON body of a 2xx answer, or None when it is empty (204, or GoTo's bodiless 200)."""
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        raise GoToError(
            f"{op.subject}: HTTP {response.status_code} with a body that is not JSON",
            status=response.status_code,
            code=SERVICE_INCOMPATIBLE,
            op=op,
            body=response.text,
        ) from None


class TransportClient:
    """What both GoTo clients share: the transport's lifecycle and its counters."""

    _t: Transport

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._t.aclose()

    @property
    def stats(self) -> ClientStats:
        return self._t.stats

    @property
    def blocked(self) -> list[WouldBeRequest]:
        """Writes refused by the read-only (dry-run) transport."""
        return self._t.blocked
