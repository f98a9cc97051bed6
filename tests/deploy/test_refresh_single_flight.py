"""Refreshing the GoTo token is single-flight across processes: the timer, the queue worker and
the admin API run on parallel instances, and GoTo revokes a refresh token once it has rotated it.
Real OS processes refresh the same stored token at once, through Azurite's lease table and the
GoTo emulator's token endpoint (rotating on every grant)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from shared.goto.token_store import REFRESH_LEASE, FileRefreshTokenStore, StoredRefreshTokenProvider
from shared.ops.connection import check_connection
from shared.runtime import OwnLeases
from shared.settings import Settings
from shared.store import Store

from .test_authorize import run_authorize

ROOT = Path(__file__).parents[2]
PROCESSES = 6

# One instance: builds the provider, says "ready", waits for the word on stdin (so that every
# process asks at the same moment), refreshes once and prints the outcome as JSON.
CHILD = """
import asyncio, json, sys
from shared.goto.token_store import FileRefreshTokenStore, StoredRefreshTokenProvider
from shared.runtime import OwnLeases
from shared.settings import Settings

async def main(conn, prefix, token_url, token_file, client_id, client_secret):
    leases = OwnLeases(Settings(storage_connection_string=conn, table_prefix=prefix))
    tokens = StoredRefreshTokenProvider(
        client_id, client_secret, FileRefreshTokenStore(token_file), leases=leases, token_url=token_url
    )
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        await tokens.get_token()
        print(json.dumps({"ok": True}))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
    finally:
        await tokens.aclose()

asyncio.run(main(*sys.argv[1:]))
"""


def start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_processes_refreshing_the_same_stored_token_at_once_all_succeed_and_never_reuse_it(
    make_goto_emulator, tmp_path, storage_connection_string, table_prefix
):
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    first, store, _ = await run_authorize(goto, tmp_path)
    goto.counters.reset()
    args = [storage_connection_string, table_prefix, goto.token_url, str(store.path), DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET]  # fmt: skip
    children = [start(args) for _ in range(PROCESSES)]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:  # every one is waiting on its stdin: release them together
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert all(o["ok"] for o in outcomes), outcomes
    # Exactly one grant per process: none refused with invalid_grant (that would cost another
    # request, or fail), so no refresh token was spent twice; each rotated the one before it.
    assert goto.counters.total("POST", "/oauth/token") == PROCESSES
    final = await store.load()
    assert goto.refresh_tokens() == [final] and final != first.refresh_token
    async with Store(connection_string=storage_connection_string, prefix=table_prefix) as s:
        assert await s.lease.get(REFRESH_LEASE) is None  # released by every holder


async def test_another_instances_rotation_is_read_once_the_lease_is_held(
    make_goto_emulator, tmp_path, storage_connection_string, table_prefix
):
    """Instance A loaded the token, then B rotated it. A's next refresh re-reads the store under
    the lease and spends B's token, not its own revoked one (no invalid_grant round trip)."""
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    _, store, _ = await run_authorize(goto, tmp_path)
    settings = Settings(storage_connection_string=storage_connection_string, table_prefix=table_prefix)

    def provider() -> StoredRefreshTokenProvider:
        return StoredRefreshTokenProvider(
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            FileRefreshTokenStore(store.path),
            leases=OwnLeases(settings),
            token_url=goto.token_url,
        )

    a, b = provider(), provider()
    try:
        await a.get_token()
        await b.get_token()
        goto.counters.reset()
        await a.get_token(force_refresh=True)
        assert goto.counters.total("POST", "/oauth/token") == 1
    finally:
        await a.aclose()
        await b.aclose()
    assert goto.refresh_tokens() == [await store.load()]


async def test_storage_unreachable_is_one_clear_error_and_no_refresh(make_goto_emulator, tmp_path):
    """Without the lease a refresh could burn the token another instance is spending: none is tried."""
    goto = make_goto_emulator(rate_limit=0, refresh_rotation="always")
    _, store, _ = await run_authorize(goto, tmp_path)
    conn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/devstoreaccount1"
    tokens = StoredRefreshTokenProvider(
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        FileRefreshTokenStore(store.path),
        leases=OwnLeases(Settings(storage_connection_string=conn)),
        token_url=goto.token_url,
    )
    goto.counters.reset()
    try:
        with pytest.raises(Exception, match="cannot take the token-refresh lease in storage") as info:
            await tokens.get_token()
    finally:
        await tokens.aclose()
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert goto.counters.total("POST", "/oauth/token") == 0


async def test_test_connection_says_the_refresh_lease_not_goto_failed(make_world, tmp_path):
    world = make_world(users=2, assign=1)
    _, store, _ = await run_authorize(world.goto, tmp_path)
    conn = world.settings.storage_connection_string
    endpoint = next(p for p in conn.split(";") if p.startswith("TableEndpoint="))
    broken = conn.replace(endpoint, "TableEndpoint=http://127.0.0.1:9/devstoreaccount1")
    settings = world.settings.with_overrides(
        goto_access_token="",
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=DEFAULT_CLIENT_SECRET,
        goto_refresh_token_file=str(store.path),
        storage_connection_string=broken,
    )
    goto = (await check_connection(settings)).checks[0]
    assert goto.code == "StorageUnavailable" and "token-refresh lease" in goto.detail
    assert "cannot reach GoTo" not in goto.detail and "storage" in goto.fix
