"""The console against the local world: Azurite, the Graph and GoTo emulators, and the Functions
host stand-in serving the real Function app (with App Service Authentication played as the
platform plays it), plus Chromium driven by Playwright.

Browser tests need Debian's Chromium (`apt-get install chromium`: /usr/bin/chromium, or set
GOTOSYNC_CHROMIUM). Where it is missing they are skipped with a message saying so, unless
GOTOSYNC_REQUIRE_BROWSER=1 (CI sets it): then they fail. Playwright never downloads a browser
here: it drives that executable.

`pytest tests/console --console-screenshots DIR` also saves a screenshot of each page into DIR
(docs/console.md shows them; `make screenshots` makes them).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import function_app
from emulators.easy_auth import LOCAL_ADMIN, EasyAuthEmulation, LocalUser
from emulators.functions_host import FunctionsHost
from shared.realtime.services import close_services
from tests.fixtures.world import World

CHROMIUM = os.environ.get("GOTOSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}  # a laptop screen
READER = LocalUser("reader@localhost", "00000000-0000-4000-8000-0000000000e1", ("Gotosync.Reader",))
# GoTo keeps `active` and the enterprise attributes here, so that diffs and disables are visible.
VISIBLE = {"active": "honour", "extension_attrs": "store"}


@dataclass
class ConsoleWorld:
    world: World
    host: FunctionsHost

    @property
    def url(self) -> str:
        return self.host.url

    def sign_in_url(self, user: str | None = None) -> str:
        return self.host.console_url(user)


@pytest.fixture
async def make_console(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Any]]:
    """`await make(users=, assign=, goto={switches}, easy_auth=True, **setting_overrides)`: a world
    with its settings in the environment and the Function app served in front of it."""
    hosts: list[FunctionsHost] = []

    async def make(
        users: int = 8,
        assign: int = 5,
        goto: dict[str, Any] | None = None,
        easy_auth: EasyAuthEmulation | bool = True,
        **overrides: Any,
    ) -> ConsoleWorld:
        world = make_world(users=users, assign=assign, goto={**VISIBLE, **(goto or {})})
        if overrides:
            world.settings = world.settings.with_overrides(**overrides)
        for key, value in world.env().items():
            monkeypatch.setenv(key, value)
        if easy_auth is True:
            easy_auth = EasyAuthEmulation(users=(LOCAL_ADMIN, READER))
        host = FunctionsHost(function_app.app, easy_auth=easy_auth)
        await host.start(queues=False)
        hosts.append(host)
        return ConsoleWorld(world, host)

    yield make
    for host in hosts:
        await host.stop()
    await close_services()


def browser_missing() -> str:
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        return f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (or set GOTOSYNC_CHROMIUM) to run it"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (`make setup` installs requirements-dev.txt)"
    return ""


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await browser(color_scheme="light")`: a fresh Chromium profile (its own user-data dir),
    headless, laptop-sized. Skips where Chromium is missing, except in CI."""
    missing = browser_missing()
    if missing:
        if os.environ.get("GOTOSYNC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GOTOSYNC_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    contexts: list[Any] = []
    async with async_playwright() as pw:

        async def launch(color_scheme: str = "light") -> Any:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{len(contexts)}"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=VIEWPORT,
                color_scheme=color_scheme,
                locale="en-GB",
                timezone_id="UTC",
            )
            context.set_default_timeout(15_000)
            contexts.append(context)
            return context

        try:
            yield launch
        finally:
            for context in contexts:
                await context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """`await screenshot(page, "overview")`: saved only with --console-screenshots."""
    folder = request.config.getoption("--console-screenshots")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)

    async def take(page: Any, name: str, **options: Any) -> None:
        if folder:
            await page.screenshot(path=str(Path(folder) / f"{name}.png"), **options)

    return take


def pretty(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str)
