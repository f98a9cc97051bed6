"""When listing stops, for list answers the emulator never gives (no totalResults). A MockTransport
plays the server here because only the envelope shape matters; the emulator cases are in
test_scim_emulator.py."""

from __future__ import annotations

import httpx
import pytest

from shared.goto import GoToScimClient, StaticTokenProvider


def server(users: list[dict], *, pages: bool, total: bool, cap: int | None = None):
    calls: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("startIndex", 1))
        count = int(request.url.params.get("count", 100))
        calls.append((start, count))
        chunk = users[start - 1 : start - 1 + min(count, cap or count)] if pages else users
        body: dict = {"resources": chunk}
        if total:
            body["totalResults"] = len(users)
        return httpx.Response(200, json=body)

    return handler, calls


USERS = [{"id": str(10**18 + i), "userName": f"u{i}@contoso.com"} for i in range(250)]


@pytest.mark.parametrize(
    ("pages", "total", "cap", "users", "requests"),
    [
        (False, False, None, USERS, 1),  # everything at once, more than a page: done
        (False, False, None, USERS[:100], 2),  # exactly one page, then the same page again: done
        (False, False, None, USERS[:30], 2),
        (True, False, None, USERS, 4),  # 100, 100, 50, then an empty page
        (True, False, 40, USERS, 8),  # the server caps pages at 40 and gives no total
        (True, True, 40, USERS, 7),
        (True, True, None, [], 1),
    ],
)
async def test_list_stops_after_everyone_once(pages, total, cap, users, requests):
    handler, calls = server(users, pages=pages, total=total, cap=cap)
    client = GoToScimClient(
        "https://goto.example/identity/v1",
        StaticTokenProvider("t"),
        rate_limit=None,
        http_transport=httpx.MockTransport(handler),
    )
    async with client:
        ids = [u["id"] async for u in client.list_users(page_size=100)]
    assert ids == [u["id"] for u in users]
    assert len(calls) == requests
