"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

It serves the app's HTTP functions on 127.0.0.1 at `/api/<route>` through the very same
handlers (aiohttp request -> `func.HttpRequest` -> handler -> `func.HttpResponse`), with route
templates (`console/ops/{operation}` fills `route_params`), checks keys as the host does
(`?code=` or `x-functions-key`: the host key opens every function, a function-level key only its
own), plays App Service Authentication in front of the app as the platform does in Azure
(emulators/easy_auth.py: sign-in with the function key, session cookie, injected principal
headers), runs the queue-triggered
functions against the Azurite queue (polling with back-off up to `maxPollingInterval`, poison
after `maxDequeueCount`), fires the timer-triggered functions on their NCRONTAB schedules when
asked to (`run_timers`, `--timers`), and invokes any function on `POST /admin/functions/{name}`
like the real host's admin API. `python -m emulators.functions_host` is gotosync's `serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from emulators.easy_auth import EasyAuthEmulation
from shared.realtime.queue import NotificationQueue
from shared.settings import SETTINGS

log = logging.getLogger("gotosync.functions_host")
ROOT = Path(__file__).resolve().parent.parent


_indexed: dict[int, dict[str, Any]] = {}


def app_functions(app: func.FunctionApp) -> dict[str, Any]:
    """The app's functions by name. `FunctionApp.get_functions()` indexes the app and may be
    called only once per app (a second call fails on "duplicate" names), so every in-process
    caller (this host, the tests) goes through here."""
    if id(app) not in _indexed:
        _indexed[id(app)] = {f.get_function_name(): f for f in app.get_functions()}
    return _indexed[id(app)]


# The queue extension receives messages invisible for 10 minutes and renews that on a timer while
# the function runs (docs/reference/azure-platform.md#queue-trigger-visibility): a message is redelivered while it runs
# only if the host dies. This stand-in does not renew, so a function it runs for longer than 10
# minutes would see its message again (a continuation: harmless, the lease is held; D55, D81).
# host.json's `visibilityTimeout` is the delay before a failed one's retry.
DEQUEUE_VISIBILITY_SECONDS = 600


def _host_json() -> dict[str, Any]:
    return json.loads((ROOT / "host.json").read_text())


def _timespan_seconds(value: str, default: float) -> float:
    try:
        h, m, s = value.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except (AttributeError, ValueError):
        return default


def route_pattern(route: str) -> re.Pattern[str]:
    """A route template (`console/ops/{operation}`, `x/{name:alpha}`) as a regular expression whose
    groups are the route parameters; each parameter is one path segment."""
    parts = re.split(r"(\{[^{}]+\})", route)
    regex = "".join(
        f"(?P<{part[1:-1].split(':')[0].rstrip('?')}>[^/]+)" if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(f"^{regex}$", re.IGNORECASE)


def _setting(value: str) -> str:
    """`%NAME%` binding expressions resolve from app settings, as in the real host (here with
    gotosync's documented defaults for settings that are not set)."""
    if value.startswith("%") and value.endswith("%"):
        name = value[1:-1]
        default = next((s.default for s in SETTINGS.values() if s.env == name), "")
        return os.environ.get(name) or default
    return value


class FunctionsHost:
    def __init__(
        self,
        app: func.FunctionApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_key: str | None = None,
        easy_auth: EasyAuthEmulation | bool | None = True,
    ) -> None:
        """`easy_auth`: App Service Authentication in front of the app (True: the default local
        admin; an EasyAuthEmulation for other users; False/None: off, as an app without it)."""
        self.app = app
        self.host = host
        self.port = port
        # The host key (the real host's default host key and master key in one): it opens every
        # function. Function-level keys (`add_function_key`) open only their own function.
        self.function_key = function_key or secrets.token_urlsafe(24)
        self.function_keys: dict[str, dict[str, str]] = {}
        queues = _host_json().get("extensions", {}).get("queues", {})
        self.max_dequeue = int(queues.get("maxDequeueCount", 5))
        self.max_polling = _timespan_seconds(queues.get("maxPollingInterval", "00:00:02"), 2.0)
        self.visibility_timeout = int(_timespan_seconds(queues.get("visibilityTimeout", "00:00:30"), 30))
        # As the host does: messages are fetched `batch_size` at a time, and a new batch is
        # fetched as soon as no more than `new_batch_threshold` are still running.
        self.batch_size = int(queues.get("batchSize", 16))
        self.new_batch_threshold = int(queues.get("newBatchThreshold", self.batch_size // 2))
        self.functions = app_functions(app)
        self.easy_auth = EasyAuthEmulation() if easy_auth is True else easy_auth or None
        self._routes = [
            (route_pattern(fn.get_trigger().route or name), fn)
            for name, fn in self.functions.items()
            if fn.get_trigger().type == "httpTrigger"
        ]
        self._runner: web.AppRunner | None = None
        self._pollers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self.processed = 0
        self.failed = 0

    # ---------------------------------------------------------------- HTTP

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def function_url(self, route: str, key: str | None = None) -> str:
        """The URL of an HTTP function with a key: the host key unless another is given."""
        return f"{self.url}/api/{route}?code={key or self.function_key}"

    def add_function_key(self, function_name: str, name: str = "default", value: str | None = None) -> str:
        """Creates (or replaces) a key that opens `function_name` only, as
        `Microsoft.Web/sites/functions/keys` does in Azure; returns its value."""
        if function_name not in self.functions:
            raise KeyError(f"no function named {function_name!r}")
        key = value or secrets.token_urlsafe(32)
        self.function_keys.setdefault(function_name, {})[name] = key
        return key

    def _authorized(self, fn: Any, given: str) -> bool:
        """Function level: the host key or one of this function's own keys; admin level: the
        master key (here the host key) only; anonymous: anyone."""
        level = str(getattr(fn.get_trigger().auth_level, "value", fn.get_trigger().auth_level)).lower()
        if level == "anonymous":
            return True
        accepted = [self.function_key]
        if level != "admin":
            accepted += list(self.function_keys.get(fn.get_function_name(), {}).values())
        # Every candidate is compared, so the time taken does not tell which one was close.
        matches = [secrets.compare_digest(given.encode(), key.encode()) for key in accepted]
        return any(matches)

    def console_url(self, user: str | None = None) -> str:
        """Where a browser signs in to the console (with the function key) and lands on it."""
        pick = f"&user={user}" if user else ""
        return f"{self.url}/.auth/login/aad?code={self.function_key}{pick}&post_login_redirect_uri=/api/console"

    async def start(self, *, queues: bool = True) -> str:
        web_app = web.Application(client_max_size=4 * 1024 * 1024)
        web_app.router.add_route("*", "/api/{route:.*}", self._http)
        web_app.router.add_post("/admin/functions/{name}", self._admin_invoke)
        if self.easy_auth is not None:
            self.easy_auth.add_routes(web_app, self.function_key)
            self.easy_auth.switch_on()
        self._runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        if queues:
            self._pollers.append(asyncio.create_task(self.run_queue_workers(), name="queue workers"))
        return self.url

    async def run_queue_workers(self) -> None:
        """Polls every queue-triggered function's queue until cancelled."""
        await asyncio.gather(*(self._poll(fn) for fn in self._queue_functions()))

    async def stop(self) -> None:
        await self.stop_queue_workers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            if self.easy_auth is not None:
                self.easy_auth.switch_off()

    async def stop_queue_workers(self) -> None:
        for task in self._pollers:
            task.cancel()
        for task in self._pollers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pollers.clear()

    def _http_function(self, route: str, method: str) -> tuple[Any, dict[str, str]]:
        for pattern, fn in self._routes:
            found = pattern.match(route)
            if found is None:
                continue
            methods = [str(getattr(m, "value", m)).upper() for m in (fn.get_trigger().methods or [])]
            if not methods or method.upper() in methods:
                return fn, found.groupdict()
            return "method", {}
        return None, {}

    async def _http(self, request: web.Request) -> web.StreamResponse:
        route = request.match_info["route"]
        fn, route_params = self._http_function(route, request.method)
        if fn is None:
            return web.Response(status=404)
        if fn == "method":
            return web.Response(status=405)
        given = request.query.get("code") or request.headers.get("x-functions-key", "")
        if not self._authorized(fn, given):
            return web.Response(status=401)
        params = {k: v for k, v in request.query.items() if k != "code"}
        headers = self.easy_auth.headers_for(request) if self.easy_auth is not None else dict(request.headers)
        req = func.HttpRequest(
            request.method,
            str(request.url),
            headers=headers,
            params=params,
            route_params=route_params,
            body=await request.read(),
        )
        resp = await self._call(fn, req)
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.Response(
            status=resp.status_code, body=resp.get_body(), headers=headers, content_type=resp.mimetype or None
        )

    async def _admin_invoke(self, request: web.Request) -> web.Response:
        """The host's admin API: invoke a non-HTTP function now (master key = the function key here)."""
        given = request.headers.get("x-functions-key", "")
        if not secrets.compare_digest(given.encode(), self.function_key.encode()):
            return web.Response(status=401)
        name = request.match_info["name"]
        if name not in self.functions:
            return web.Response(status=404)
        await self.invoke(name)
        return web.Response(status=202)

    async def invoke(self, name: str, **kwargs: Any) -> Any:
        fn = self.functions[name]
        trigger = fn.get_trigger()
        if trigger.type == "timerTrigger":
            return await self._call(fn, TimerRequest(past_due=False))
        if trigger.type == "queueTrigger":
            return await self._call(fn, QueueMessage(body=json.dumps(kwargs.get("body", {})).encode()))
        raise ValueError(f"{name} is not a timer or queue function")

    @staticmethod
    async def _call(fn: Any, arg: Any) -> Any:
        user = fn.get_user_function()
        result = user(arg)
        if inspect.isawaitable(result):
            result = await result
        return result

    # ---------------------------------------------------------------- timers

    async def run_timers(self) -> None:
        """Fires every timer function on its schedule (and at once if it runs on startup), until
        cancelled; as the host, one invocation of a function at a time."""
        timers = [f for f in self.functions.values() if f.get_trigger().type == "timerTrigger"]
        await asyncio.gather(*(self._tick(fn) for fn in timers))

    async def _tick(self, fn: Any) -> None:
        from shared.model import utcnow
        from shared.ops.status import next_run

        name = fn.get_function_name()
        trigger = fn.get_trigger().get_dict_repr()
        if trigger.get("runOnStartup"):
            await self._fire(name)
        while True:
            schedule = _setting(str(trigger.get("schedule", "")))
            try:
                at = next_run(schedule, utcnow())
            except ValueError as exc:
                log.error("timer %s not scheduled: %s", name, exc)
                return
            if at is None:
                return
            await asyncio.sleep(max((at - utcnow()).total_seconds(), 0))  # a scheduler's wait for its fire time
            await self._fire(name)

    async def _fire(self, name: str) -> None:
        try:
            await self.invoke(name)
        except Exception:
            self.failed += 1
            log.exception("timer function %s failed", name)

    # ---------------------------------------------------------------- queues

    def _queue_functions(self) -> list[Any]:
        return [f for f in self.functions.values() if f.get_trigger().type == "queueTrigger"]

    def _queue_for(self, fn: Any, suffix: str = "") -> NotificationQueue:
        trigger = fn.get_trigger()
        connection = os.environ.get(trigger.connection) or os.environ.get("GOTOSYNC_STORAGE", "")
        return NotificationQueue.from_connection_string(connection, _setting(trigger.queue_name) + suffix)

    def wake(self) -> None:
        """Poll now (the real host's back-off resets when a message arrives)."""
        self._wake.set()

    async def _poll(self, fn: Any) -> None:
        queue = self._queue_for(fn)
        poison = self._queue_for(fn, "-poison")
        running: set[asyncio.Task[None]] = set()
        delay = 0.05
        try:
            while True:
                fetched = 0
                if len(running) <= self.new_batch_threshold:
                    fetched = len(messages := await self._receive(queue))
                    for m in messages:
                        task = asyncio.create_task(self._handle(fn, queue, poison, m))
                        running.add(task)
                        task.add_done_callback(running.discard)
                delay = 0.05 if fetched or running else min(self.max_polling, delay * 2)
                self._wake.clear()
                # Poll again once a message is done (a batch may be due), on a wake-up or later.
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait({woken, *running}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await queue.close()
            await poison.close()

    async def _receive(self, queue: NotificationQueue) -> list[Any]:
        # As the host: a message is received invisible for 10 minutes, which only matters if the
        # host dies while it runs; a failed attempt is retried `visibilityTimeout` later.
        return await queue.receive(max_messages=self.batch_size, visibility_timeout=DEQUEUE_VISIBILITY_SECONDS)

    async def _handle(self, fn: Any, queue: NotificationQueue, poison: NotificationQueue, m: Any) -> None:
        msg = QueueMessage(
            id=m.id, body=json.dumps(m.body).encode(), dequeue_count=m.dequeue_count, pop_receipt=m.pop_receipt
        )
        try:
            await self._call(fn, msg)
        except Exception:
            self.failed += 1
            log.exception("queue function %s failed (attempt %d)", fn.get_function_name(), m.dequeue_count)
            if m.dequeue_count >= self.max_dequeue:
                await poison.send(m.body)
                await queue.delete(m)
            else:
                await queue.retry_later(m, self.visibility_timeout)
            return
        self.processed += 1
        await queue.delete(m)

    async def _drain_once(self, fn: Any, queue: NotificationQueue, poison: NotificationQueue) -> int:
        messages = await self._receive(queue)
        await asyncio.gather(*(self._handle(fn, queue, poison, m) for m in messages))
        return len(messages)

    async def drain(self) -> int:
        """Processes queued messages until every queue is empty (tests: no sleeps, no polling)."""
        total = 0
        for fn in self._queue_functions():
            queue, poison = self._queue_for(fn), self._queue_for(fn, "-poison")
            try:
                while handled := await self._drain_once(fn, queue, poison):
                    total += handled
            finally:
                await queue.close()
                await poison.close()
        return total


def apply_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        os.environ[key] = value
    os.environ.setdefault("AzureWebJobsStorage", os.environ.get("GOTOSYNC_STORAGE", ""))


async def _serve(args: argparse.Namespace) -> None:
    import function_app  # imported late: app settings must be in the environment first

    host = FunctionsHost(function_app.app, port=args.port, function_key=args.key)
    webhook_key = host.add_function_key("graph_notifications", "graph-webhook", args.webhook_key)
    await host.start(queues=not args.no_queues)
    timers = asyncio.create_task(host.run_timers()) if args.timers else None
    print(f"functions host listening on {host.url} (host key in GOTOSYNC_FUNCTION_KEY or --key)", flush=True)
    print(f"  Graph notification URL (webhook key only): {host.function_url('graph/notify', webhook_key)}", flush=True)
    print(f"provisioning console: {host.console_url()}", flush=True)
    for name, fn in host.functions.items():
        trigger = fn.get_trigger()
        where = f"/api/{trigger.route}" if trigger.type == "httpTrigger" else trigger.type
        print(f"  {name}: {where}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if timers is not None:
            timers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timers
        await host.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.functions_host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=7071, help="port on 127.0.0.1 (default 7071, as func start)")
    parser.add_argument("--key", default=os.environ.get("GOTOSYNC_FUNCTION_KEY"), help="function key to require")
    parser.add_argument(
        "--webhook-key",
        default=os.environ.get("GOTOSYNC_WEBHOOK_KEY"),
        help="function-level key of graph_notifications (default: a random one, printed)",
    )
    parser.add_argument("--no-queues", action="store_true", help="serve HTTP only; do not poll queues")
    parser.add_argument("--timers", action="store_true", help="fire the timer functions on their schedules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
