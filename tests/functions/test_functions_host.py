"""The Functions host stand-in runs queue triggers as the real host does (host.json `queues`):
`batchSize` messages fetched at a time, and the next batch fetched as soon as no more than
`newBatchThreshold` are still running, not when the whole batch has finished."""

from __future__ import annotations

import asyncio
import uuid

import azure.functions as func
import pytest

from emulators.functions_host import FunctionsHost
from shared.realtime.queue import NotificationQueue


async def test_the_next_batch_starts_while_the_threshold_of_the_last_one_is_still_running(
    storage_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "q" + uuid.uuid4().hex[:12]
    monkeypatch.setenv("GOTOSYNC_STORAGE", storage_connection_string)
    monkeypatch.setenv("TEST_QUEUE", name)
    started: list[int] = []
    finished: list[int] = []
    finished_when_started: dict[int, int] = {}
    release = {n: asyncio.Event() for n in range(40)}
    changed = asyncio.Condition()
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%TEST_QUEUE%", connection="GOTOSYNC_STORAGE")
    async def worker(msg: func.QueueMessage) -> None:
        n = int(msg.get_json()["n"])
        async with changed:
            finished_when_started[n] = len(finished)
            started.append(n)
            changed.notify_all()
        await release[n].wait()
        async with changed:
            finished.append(n)
            changed.notify_all()

    async def until(done: object) -> None:
        async with changed:
            await asyncio.wait_for(changed.wait_for(done), timeout=60)  # type: ignore[arg-type]

    queue = NotificationQueue.from_connection_string(storage_connection_string, name)
    await queue.ensure()
    for n in range(40):
        await queue.send({"n": n})
    host = FunctionsHost(app, easy_auth=False)
    assert (host.batch_size, host.new_batch_threshold) == (16, 8)  # host.json's values
    await host.start()
    try:
        await until(lambda: len(started) == 16)
        first = list(started)
        for n in first[:8]:
            release[n].set()
        await until(lambda: len(started) > 16)  # the next batch, with 8 of the first still blocked
        later = started[16:]
        assert all(finished_when_started[n] == 8 for n in later)
        assert not set(first[8:]) & set(finished)
        assert len(started) <= 16 + 16
    finally:
        for event in release.values():
            event.set()
        await host.stop()
        await queue.close()


async def test_a_message_received_stays_hidden_while_it_runs_and_a_failed_one_is_retried_when_told(
    storage_connection_string: str,
) -> None:
    queue = NotificationQueue.from_connection_string(storage_connection_string, "q" + uuid.uuid4().hex[:12])
    try:
        await queue.send({"n": 1})
        host = FunctionsHost(func.FunctionApp(), easy_auth=False)
        [received] = await host._receive(queue)
        assert await queue.receive(visibility_timeout=1) == []  # hidden while its function runs
        await queue.retry_later(received, 0)  # failed: visible again after the retry delay (here 0)
        [again] = await queue.receive(visibility_timeout=1)
        assert again.body == {"n": 1} and again.dequeue_count == 2
    finally:
        await queue.close()
