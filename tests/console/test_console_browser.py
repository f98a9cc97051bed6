"""The console page in Chromium against the local world: what an admin sees and does. The
browser waits on the page's own DOM (Playwright's auto-waiting), never on the clock.

With --console-screenshots DIR each test also saves the page it shows (docs/console.md)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

from shared.model import Initiator
from tests.console.conftest import ConsoleWorld

SLOW_GOTO = 4.0  # GoTo requests per second (emulator and client alike): an initial cycle of 40 users takes ~10 s


async def open_console(browser: Callable[..., Any], live: ConsoleWorld, path: str = "", **options: Any) -> Any:
    context = await browser(**options)
    page = context.pages[0] if context.pages else await context.new_page()
    await page.goto(live.sign_in_url())
    await page.wait_for_url(re.compile(r"/api/console$"))
    if path:
        await page.goto(f"{live.url}/api/console#/{path}")
    await page.locator("#who").filter(has_text="local-admin@localhost").wait_for()
    return page


def processed(text: str) -> int:
    return int(text.split("/")[0].strip())


async def test_the_overview_shows_an_initial_cycle_progressing(
    make_console: Callable[..., Any], browser: Callable[..., Any], screenshot: Callable[..., Any]
) -> None:
    live = await make_console(
        users=48, assign=40, goto={"rate_limit": SLOW_GOTO, "rate_burst": 1}, goto_rate_limit=SLOW_GOTO
    )
    cycle = asyncio.create_task(live.host.invoke("sync_cycle"))  # the timer's function, as the host fires it
    try:
        page = await open_console(browser, live)
        count = page.locator("#cycle-count")
        await page.locator("#cycle-running").wait_for(state="visible", timeout=30_000)
        await page.wait_for_function(
            "() => /^[1-9]\\d* \\/ \\d+$/.test(document.querySelector('#cycle-count').textContent)"
        )
        first = processed(await count.text_content() or "")
        # The engine checkpoints every few seconds: the page shows each checkpoint as it polls.
        await page.wait_for_function(
            f"() => parseInt(document.querySelector('#cycle-count').textContent) > {first}", timeout=30_000
        )
        later = processed(await count.text_content() or "")
        assert later > first and (await count.text_content() or "").endswith("/ 40")
        progressbar = page.get_by_role("progressbar", name="Cycle progress")
        assert int(await progressbar.evaluate("p => p.value")) >= later
        assert await page.locator("#cycle-kind").text_content() == "Initial"
        assert "objects/s" in (await page.locator("#cycle-rate").text_content() or "")
        await screenshot(page, "overview-cycle-running")
    finally:
        cycle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cycle


async def test_the_overview_shows_a_cycle_handed_on_to_its_next_invocation_as_in_progress(
    make_console: Callable[..., Any], browser: Callable[..., Any]
) -> None:
    live = await make_console(users=24, assign=20)
    live.world.goto.faults.inject("latency", r"^/identity/v1/Users$", method="POST", latency_ms=200)
    async with live.world.runtime(cycle_concurrency=1) as rt:  # the host runs no queue: nobody continues it
        result = await rt.engine.run_cycle(initiated_by=Initiator.TIMER, budget_seconds=1.0)
    assert result.continuing
    page = await open_console(browser, live)
    await page.locator("#cycle-running").wait_for(state="visible")
    count = await page.locator("#cycle-count").text_content() or ""
    assert count.endswith("/ 20, continuing (handed on after invocation 1)")
    assert processed(count) < 20


async def test_a_log_search_finds_a_users_entry_and_shows_its_details(
    make_console: Callable[..., Any], browser: Callable[..., Any], screenshot: Callable[..., Any]
) -> None:
    live = await make_console(users=8, assign=5)
    target = live.world.assigned_user_ids()[2]
    live.world.graph.update_user(target, givenName="G" * 64)  # GoTo takes at most 60: a failure with a fix
    await live.world.cycle()
    upn = live.world.upn(target)
    page = await open_console(browser, live, "logs", color_scheme="dark")  # the dark scheme, on the way

    await page.get_by_label("Identity").fill(upn)
    await page.get_by_label("Status").select_option("Failure")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("status").filter(has_text="1 entry.").wait_for()
    rows = page.locator("#log-rows tr")
    assert await rows.count() == 1
    await rows.first.get_by_role("button", name=re.compile(upn)).click()

    pane = page.get_by_role("complementary", name=re.compile(upn))
    await pane.get_by_role("heading", name="Steps").wait_for()
    text = await pane.text_content() or ""
    assert "SchemaPropertyCanOnlyAcceptValue" in text and "What to do:" in text and "60" in text
    assert all(step in text for step in ("Import", "Scoping", "Matching"))
    assert await pane.locator("#details-title").evaluate("h => document.activeElement === h")  # focus moved there
    assert f"user={upn.replace('@', '%40')}" in (
        await page.get_by_role("link", name="Download CSV").get_attribute("href") or ""
    )
    assert upn.split("@")[0] in page.url  # the search is in the address: a bookmark finds it again
    await screenshot(page, "logs-details")

    await page.keyboard.press("Escape")
    await pane.wait_for(state="hidden")


async def test_on_demand_shows_the_diff_first_then_applies_it(
    make_console: Callable[..., Any], browser: Callable[..., Any], screenshot: Callable[..., Any]
) -> None:
    live = await make_console(users=8, assign=5)
    upn = live.world.upn(live.world.assigned_user_ids()[0])
    page = await open_console(browser, live, "on-demand")

    await page.get_by_label("User (UPN, mail or object id)").fill(upn)
    await page.get_by_role("button", name="Show what would change").click()
    await page.get_by_role("heading", name=re.compile("Dry run")).wait_for()
    changes = page.get_by_role("table", name=f"Changes for {upn}")
    assert "userName" in (await changes.text_content() or "") and upn in (await changes.text_content() or "")
    assert live.world.goto_user(upn) is None  # a dry run writes nothing
    await screenshot(page, "on-demand-diff")

    await page.get_by_role("button", name=re.compile("Apply")).click()
    dialog = page.get_by_role("dialog", name="Provision now?")
    await dialog.get_by_role("button", name="Provision now").click()
    await page.get_by_role("heading", name=re.compile("Done")).wait_for()
    created = live.world.goto_user(upn)
    assert created is not None and created["active"] is True
    await page.get_by_role("link", name="See these entries in the provisioning logs").click()
    await page.locator("#log-rows tr").filter(has_text=upn).wait_for()


async def test_allow_deletes_clears_a_held_deletion(
    make_console: Callable[..., Any], browser: Callable[..., Any], screenshot: Callable[..., Any]
) -> None:
    live = await make_console(users=8, assign=6, deletion_threshold=2, role_licenses={"MeetingOrganizer": ("G2M",)})
    world = live.world
    await world.cycle()
    leaving = world.assigned_user_ids()[:3]
    for uid in leaving:
        world.graph.unassign(uid)
    assert (await world.cycle()).staged == 3
    page = await open_console(browser, live)

    held = page.get_by_role("article", name="Held deletions")
    await held.locator("#held-rows tr").nth(2).wait_for()
    assert await page.get_by_role("region", name="Provisioning is in quarantine").is_visible()
    await page.locator("#seats table").wait_for()
    await screenshot(page, "overview-held-deletions", full_page=True)
    await held.get_by_role("button", name=re.compile("Allow deletes")).click()
    dialog = page.get_by_role("dialog", name="Allow the held deletions?")
    assert "3 user(s)" in (await dialog.text_content() or "")
    await dialog.get_by_role("button", name="Allow deletes").click()

    await page.locator("#allow-result").filter(has_text="Deletes allowed").wait_for()
    await held.wait_for(state="hidden")
    await page.get_by_role("region", name="Provisioning is in quarantine").wait_for(state="hidden")
    assert all(world.goto_user(world.upn(u))["active"] is False for u in leaving)  # type: ignore[index]


async def test_actions_ask_before_writing_and_show_what_they_did(
    make_console: Callable[..., Any], browser: Callable[..., Any], screenshot: Callable[..., Any]
) -> None:
    live = await make_console(users=8, assign=5)
    await live.world.cycle()
    upn = live.world.upn(live.world.assigned_user_ids()[1])
    page = await open_console(browser, live, "actions")

    await page.get_by_role("button", name="Test connection").click()
    checks = page.locator("#tc-result li")
    await checks.nth(2).wait_for()
    assert [t.split(" ")[0] for t in await checks.all_text_contents()] == ["OK", "OK", "OK"]

    await page.get_by_role("button", name="Stop provisioning…").click()
    await page.get_by_role("dialog", name="Stop provisioning?").get_by_role("button", name="Cancel").click()
    async with live.world.store() as store:
        assert (await store.job.get()).enabled is True  # cancelled: nothing written
    await page.get_by_role("button", name="Stop provisioning…").click()
    await page.get_by_role("dialog", name="Stop provisioning?").get_by_role("button", name="Stop").click()
    await page.get_by_role("button", name="Start provisioning…").wait_for()
    async with live.world.store() as store:
        assert (await store.job.get()).enabled is False

    await page.locator("#audit-rows tr").filter(has_text="stop").wait_for()
    await screenshot(page, "actions")

    await page.get_by_label("User to preview (UPN, mail or object id)").fill(upn)
    await page.get_by_role("button", name="Preview the mapping").click()
    preview = page.get_by_role("table", name=re.compile("What the mapping makes of"))
    assert "displayName" in (await preview.text_content() or "")
    await page.locator("#preview-title").evaluate("h => h.closest('article').scrollIntoView({block: 'start'})")
    await screenshot(page, "actions-mapping-preview")


async def test_without_signing_in_or_without_the_role_the_browser_gets_no_console(
    make_console: Callable[..., Any], browser: Callable[..., Any], screenshot: Callable[..., Any]
) -> None:
    live = await make_console()
    context = await browser()
    page = context.pages[0] if context.pages else await context.new_page()
    response = await page.goto(f"{live.url}/api/console")
    assert response is not None and response.status == 401 and "/.auth/login/aad" in page.url
    assert await page.get_by_role("heading", name="Sign in").is_visible()
    api = await page.request.get(f"{live.url}/api/console/ops/overview", headers={"X-Gotosync-Console": "1"})
    assert api.status == 401
    # Signed in without the admin role: the page says so, and what to do.
    response = await page.goto(live.sign_in_url("reader@localhost"))
    assert response is not None and response.status == 403
    assert "does not hold the Gotosync.Admin app role" in (await page.text_content("main") or "")
    await screenshot(page, "not-allowed")
