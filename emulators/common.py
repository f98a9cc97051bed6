"""What both emulators share: fault injection, request counters, and a server that runs either
in a background thread (tests, the demo) or in the foreground (``python -m emulators.X``).

Emulator state is plain Python guarded by one ``threading.RLock``: HTTP handlers and the Python
control API both take the lock and never await while holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CONTROL_PREFIX = "/_emulator"

ErrorFactory = Callable[[int, str, str], web.Response]
"""(status, code, message) -> a response in the emulated API's own error shape."""


FAULT_KINDS = (
    "latency",
    "empty-200",
    "no-content",
    "error-200",
    "reset",
    "drop-value",
    "wrong-shape",
    "wrong-shape-string",
    "drop-next-link",
    "drop-delta-link",
)
"""The named fault kinds; besides them a kind is an HTTP status (429, 503...) or
``commit-then-<status>`` / ``commit-then-reset``. See docs/emulator-graph.md, "Fault kinds"."""

REWRITE_KINDS = frozenset({"drop-value", "wrong-shape", "wrong-shape-string", "drop-next-link", "drop-delta-link"})
_COMMIT = re.compile(r"^commit-then-(?:reset|[1-5][0-9][0-9])$")


def _normalize_kind(kind: int | str) -> int | str:
    if isinstance(kind, bool):
        raise ValueError(f"fault kind {kind!r} is neither an HTTP status nor a named kind")
    if isinstance(kind, int):
        return kind
    name = str(kind).strip().lower()
    if name.isdigit():
        return int(name)
    if name in FAULT_KINDS or _COMMIT.match(name):
        return name
    raise ValueError(
        f"unknown fault kind {kind!r}: expected an HTTP status, commit-then-<status>, commit-then-reset "
        f"or one of {', '.join(FAULT_KINDS)}"
    )


@dataclass
class FaultRule:
    """One injected fault. ``kind`` is an HTTP status to answer (429, 404, 502, 503...), a
    named kind (see ``FAULT_KINDS``: ``latency`` delays then serves normally, ``empty-200``,
    ``no-content``, ``error-200``, ``reset``, the response rewrites ``drop-value``,
    ``wrong-shape``, ``wrong-shape-string``, ``drop-next-link``, ``drop-delta-link``) or
    ``commit-then-<status>`` / ``commit-then-reset`` (the request is served and its state
    change stays, but the client gets that status or a dropped connection).

    It applies to requests whose path matches ``path`` (a regular expression searched in the
    path) and, when set, ``method`` (one method, or several separated by ``|``, e.g.
    ``"POST|PATCH|PUT|DELETE"``); the first ``after`` matching requests pass untouched; then
    either a ``fraction`` of them or the next ``count`` of them (one of the two; neither = all)."""

    kind: int | str
    path: str = ""
    method: str | None = None
    fraction: float | None = None
    count: int | None = None
    retry_after: float | None = None
    latency_ms: int = 0
    after: int = 0
    id: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _methods: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.kind = _normalize_kind(self.kind)
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if self.after < 0:
            raise ValueError("after must be >= 0")
        self._pattern = re.compile(self.path)
        self._methods = frozenset(m.strip().upper() for m in (self.method or "").split("|") if m.strip())

    def matches(self, method: str, path: str) -> bool:
        if self._methods and method.upper() not in self._methods:
            return False
        return self._pattern.search(path) is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "path": self.path,
            "method": self.method,
            "fraction": self.fraction,
            "count": self.count,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "after": self.after,
        }


class Faults:
    """The active fault rules of one emulator. Control-surface paths are never faulted."""

    def __init__(self, rng_seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self._rng = random.Random(rng_seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def inject(self, kind: int | str, path: str = "", **kwargs: Any) -> FaultRule:
        return self.add(FaultRule(kind=kind, path=path, **kwargs))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def pick(self, method: str, path: str) -> list[FaultRule]:
        """The rules that fire for this request (latency rules first, then at most one error)."""
        fired: list[FaultRule] = []
        error_fired = False
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, path):
                    continue
                if rule.kind != "latency" and error_fired:
                    continue  # one error per request: later error rules keep their count
                if rule.after > 0:
                    rule.after -= 1  # this matching request passes untouched
                    continue
                if rule.count is not None:
                    if rule.count <= 0:
                        continue
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                elif rule.fraction is not None and self._rng.random() >= rule.fraction:
                    continue
                error_fired = error_fired or rule.kind != "latency"
                fired.append(rule)
        fired.sort(key=lambda r: r.kind != "latency")
        return fired


class Counters:
    """Requests seen, per method and path (control-surface requests excluded).

    Requests are counted on the server's thread; `wait_until` lets a coroutine on any event loop
    await a condition over the counts instead of polling them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._watchers: set[Callable[[], None]] = set()

    def hit(self, method: str, path: str) -> None:
        with self._lock:
            self._counts[(method.upper(), path)] += 1
        self._changed()

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for notify in watchers:
            notify()

    async def wait_until(self, predicate: Callable[[Counters], bool]) -> None:
        """Returns once `predicate(self)` holds: checked at once and again after every change of
        the counts, on the caller's loop. It waits for as long as the predicate is false, so the
        caller bounds it (asyncio.timeout)."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def notify() -> None:  # on the server's thread
            with contextlib.suppress(RuntimeError):  # the waiting loop is closed: nobody waits
                loop.call_soon_threadsafe(changed.set)

        with self._lock:
            self._watchers.add(notify)
        try:
            while not predicate(self):
                await changed.wait()
                changed.clear()
        finally:
            with self._lock:
                self._watchers.discard(notify)

    def total(self, method: str | None = None, path_prefix: str = "", path_regex: str | None = None) -> int:
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            return sum(
                n
                for (m, p), n in self._counts.items()
                if (method is None or m == method.upper())
                and p.startswith(path_prefix)
                and (pattern is None or pattern.search(p))
            )

    def writes(self, path_prefix: str = "") -> int:
        """Requests that could change state (anything but GET/HEAD/OPTIONS)."""
        with self._lock:
            return sum(
                n
                for (m, p), n in self._counts.items()
                if m not in ("GET", "HEAD", "OPTIONS") and p.startswith(path_prefix)
            )

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f"{m} {p}": n for (m, p), n in sorted(self._counts.items())}


def fault_middleware(
    faults: Faults,
    counters: Counters,
    error: ErrorFactory,
    fault_text: Mapping[int, tuple[str, str]] | None = None,
) -> Any:
    """aiohttp middleware: counts the request, then applies any fault that fires for it.
    ``fault_text`` gives the (code, message) an injected status answers with, per status, in the
    emulated API's words (e.g. Graph's ``Request_ResourceNotFound`` for 404); others default."""
    text = {**_FAULT_TEXT, **(fault_text or {})}

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return await handler(request)
        counters.hit(request.method, path)
        for rule in faults.pick(request.method, path):
            if rule.kind == "latency":
                await asyncio.sleep(rule.latency_ms / 1000)
                continue
            return await _apply_fault(rule, request, handler, error, text)
        return await handler(request)

    return middleware


async def _apply_fault(
    rule: FaultRule,
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    error: ErrorFactory,
    text: Mapping[int, tuple[str, str]],
) -> web.StreamResponse:
    kind = rule.kind
    if isinstance(kind, int):
        return _status_fault(rule, kind, error, text)
    if kind == "empty-200":
        return web.json_response({})
    if kind == "no-content":
        return web.Response(status=204)
    if kind == "error-200":
        return error(200, "InternalServerError", "An error occurred, answered with status 200 (injected fault).")
    if kind == "reset":
        return _drop_connection(request)
    response = await handler(request)  # rewrites and commit-then-*: the request is served first
    if not 200 <= response.status < 300:
        return response  # nothing was done (or the API refused it): answered as it was
    if kind in REWRITE_KINDS:
        return _rewrite(response, str(kind))
    then = str(kind).removeprefix("commit-then-")
    if then == "reset":
        return _drop_connection(request)
    return _status_fault(rule, int(then), error, text)


def _status_fault(
    rule: FaultRule, status: int, error: ErrorFactory, text: Mapping[int, tuple[str, str]]
) -> web.Response:
    code, message = text.get(status, ("serviceUnavailable", "Injected fault."))
    response = error(status, code, message)
    if rule.retry_after is not None:
        response.headers["Retry-After"] = _format_seconds(rule.retry_after)
    return response


def _drop_connection(request: web.Request) -> web.Response:
    """Closes the connection without an answer; the response returned is never sent."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def _rewrite(response: web.StreamResponse, kind: str) -> web.StreamResponse:
    """A served JSON object answer with one part removed or reshaped; any other answer as is."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes | bytearray):
        return response
    try:
        data = json.loads(body)
    except ValueError:
        return response
    if not isinstance(data, dict):
        return response
    if kind == "drop-value":
        data.pop("value", None)
    elif kind == "wrong-shape" and "value" in data:
        data["value"] = {"items": data["value"]}
    elif kind == "wrong-shape-string" and "value" in data:
        data["value"] = "injected fault: value is not an array"
    elif kind == "drop-next-link":
        data.pop("@odata.nextLink", None)
    elif kind == "drop-delta-link":
        data.pop("@odata.deltaLink", None)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=response.status, headers=headers)


_FAULT_TEXT = {
    400: ("BadRequest", "Bad request (injected fault)."),
    404: ("NotFound", "Not found (injected fault)."),
    409: ("Conflict", "Conflict (injected fault)."),
    429: ("TooManyRequests", "Too many requests (injected fault)."),
    500: ("InternalServerError", "Internal server error (injected fault)."),
    502: ("BadGateway", "Upstream gateway error (injected fault)."),
    503: ("ServiceUnavailable", "Service unavailable (injected fault)."),
    504: ("GatewayTimeout", "Upstream gateway timeout (injected fault)."),
}


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def fault_rule_from_json(body: dict[str, Any]) -> FaultRule:
    """Builds a rule from a control-surface JSON body; ValueError names the bad field."""
    allowed = {"kind", "path", "method", "fraction", "count", "retry_after", "latency_ms", "after"}
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    if "kind" not in body:
        raise ValueError("fault needs 'kind' (an HTTP status such as 429, 'latency', 'drop-value', ...)")
    try:
        return FaultRule(**body)
    except (TypeError, re.error) as exc:
        raise ValueError(f"bad fault: {exc}") from exc


def add_control_routes(app: web.Application, faults: Faults, counters: Counters) -> None:
    """The shared part of the control surface: faults and counters."""

    async def post_fault(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            rule = faults.add(fault_rule_from_json(body))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(rule.as_dict(), status=201)

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(faults.list())

    async def delete_faults(request: web.Request) -> web.Response:
        faults.clear()
        return web.Response(status=204)

    async def get_counters(request: web.Request) -> web.Response:
        return web.json_response(counters.snapshot())

    async def delete_counters(request: web.Request) -> web.Response:
        counters.reset()
        return web.Response(status=204)

    app.router.add_post(f"{CONTROL_PREFIX}/faults", post_fault)
    app.router.add_get(f"{CONTROL_PREFIX}/faults", get_faults)
    app.router.add_delete(f"{CONTROL_PREFIX}/faults", delete_faults)
    app.router.add_get(f"{CONTROL_PREFIX}/counters", get_counters)
    app.router.add_delete(f"{CONTROL_PREFIX}/counters", delete_counters)


class ThreadedServer:
    """Runs an aiohttp application on 127.0.0.1 in a daemon thread with its own event loop.

    ``start()`` returns the base URL once the socket is listening; ``stop()`` shuts it down.
    ``submit(coro)`` runs a coroutine on the server's loop and returns its result.
    """

    def __init__(self, app_factory: Callable[[], web.Application], host: str = "127.0.0.1", port: int = 0) -> None:
        self._app_factory = app_factory
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, name="emulator-server", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"emulator server failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("emulator server did not start within 30 s")
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._app_factory(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def submit(self, coro: Awaitable[Any], timeout: float = 30) -> Any:
        if self.loop is None:
            raise RuntimeError("server not started")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Served:
    """start/stop/context manager for an emulator served by a ThreadedServer. The class using it
    sets `host`, `port` and `_server = None`, and implements `make_app()`."""

    host: str
    port: int
    _server: ThreadedServer | None

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> str:
        """Starts serving in a daemon thread on `host`; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = ThreadedServer(self.make_app, self.host, self.port)
        url = self._server.start()
        self.port = self._server.port
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve_forever(app: web.Application, host: str, port: int, on_ready: Callable[[int], None]) -> None:
    """Foreground serving for ``python -m emulators.X``: stops cleanly on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
    on_ready(sockets[0].getsockname()[1] if sockets else port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
