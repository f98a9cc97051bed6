"""gotosync's Graph client waits exactly what Graph's Retry-After asks, fractions included
(Graph documents `Retry-After: 2.128`), measured through an injected sleep against the Graph
emulator's injected 429s; without the header it backs off exponentially."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kiota_abstractions.api_error import APIError

from emulators.graph import GraphEmulator
from shared.entra.graph import make_graph_client
from shared.entra.retry import MAX_RETRIES, MAX_RETRY_AFTER, GraphRetryHandler, parse_retry_after


class Waits:
    """An injected sleep: records each wait and returns at once (no wall clock involved)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def client_for(emulator: GraphEmulator, waits: Waits, **kwargs: object):  # type: ignore[no-untyped-def]
    client, _ = make_graph_client(emulator.graph_url, "test-token", retry=GraphRetryHandler(sleep=waits, **kwargs))
    return client


def users_requests(emulator: GraphEmulator) -> int:
    return emulator.counters.total("GET", path_regex=r"/v1\.0/users$")


async def test_a_fractional_retry_after_is_waited_exactly(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults.inject(429, path=r"/v1\.0/users$", count=1, retry_after=2.128)
    waits = Waits()
    page = await client_for(graph_emulator, waits).users.get()
    assert page is not None and page.value
    assert waits.seconds == [2.128]
    assert users_requests(graph_emulator) == 2


async def test_each_retry_waits_what_its_own_answer_asks(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults.inject(429, path=r"/v1\.0/users$", count=1, retry_after=0.25)
    graph_emulator.faults.inject(503, path=r"/v1\.0/users$", count=1, retry_after=1.5)
    waits = Waits()
    await client_for(graph_emulator, waits).users.get()
    assert sorted(waits.seconds) == [0.25, 1.5]


async def test_without_retry_after_it_backs_off_exponentially(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults.inject(503, path=r"/v1\.0/users$", count=2)
    waits = Waits()
    await client_for(graph_emulator, waits, rng=lambda: 1.0).users.get()
    assert waits.seconds == [1.0, 2.0]


async def test_it_gives_up_after_the_retry_limit_and_returns_graphs_answer(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults.inject(429, path=r"/v1\.0/users$", retry_after=0.5)
    waits = Waits()
    with pytest.raises(APIError) as caught:
        await client_for(graph_emulator, waits).users.get()
    assert caught.value.response_status_code == 429
    assert waits.seconds == [0.5] * MAX_RETRIES
    assert users_requests(graph_emulator) == MAX_RETRIES + 1


async def test_a_retry_after_beyond_the_cap_is_not_slept_through(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults.inject(429, path=r"/v1\.0/users$", count=1, retry_after=MAX_RETRY_AFTER + 1)
    waits = Waits()
    with pytest.raises(APIError):
        await client_for(graph_emulator, waits).users.get()
    assert waits.seconds == [] and users_requests(graph_emulator) == 1


NOW = datetime(2025, 1, 6, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2.128", 2.128),
        ("3", 3.0),
        (" 0.5 ", 0.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("Mon, 06 Jan 2025 12:00:10 GMT", 10.0),
        ("Mon, 06 Jan 2025 11:00:00 GMT", 0.0),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
