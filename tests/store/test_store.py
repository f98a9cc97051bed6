"""The Store: its tables, its two ways of authenticating, and clear errors when storage is unusable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables.aio import TableClient, TableServiceClient

from emulators.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, free_port
from shared.model import JobState, Link
from shared.store import TABLES, Store, StoreError
from shared.store._base import delete, submit_batches, upsert


async def table_names(connection_string: str, prefix: str) -> set[str]:
    async with TableServiceClient.from_connection_string(connection_string) as service:
        return {t.name async for t in service.list_tables() if t.name.startswith(prefix)}


async def test_open_creates_the_six_prefixed_tables_and_is_idempotent(
    storage_connection_string: str, table_prefix: str
) -> None:
    async with Store(connection_string=storage_connection_string, prefix=table_prefix) as store:
        await store.open()
        assert store.table_names == [f"{table_prefix}{t}" for t in TABLES]
    assert await table_names(storage_connection_string, table_prefix) == {f"{table_prefix}{t}" for t in TABLES}
    async with Store(connection_string=storage_connection_string, prefix=table_prefix) as again:  # tables exist
        assert (await again.job.get()).etag is None


async def test_an_account_url_with_a_credential_reaches_the_same_tables(azurite: Azurite, table_prefix: str) -> None:
    async with Store.from_connection_string(azurite.connection_string, prefix=table_prefix) as by_string:
        await by_string.links.put(Link(entra_id="u1", goto_id="g1"))
    credential = AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY)
    async with Store.from_account_url(azurite.endpoint("table"), credential, prefix=table_prefix) as by_url:
        assert by_url.endpoint == azurite.endpoint("table")
        loaded = await by_url.links.get("u1")
        assert loaded is not None
        assert loaded.goto_id == "g1"


async def test_an_unreachable_account_is_a_store_error_naming_the_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/{ACCOUNT_NAME}"  # nothing listens there
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};TableEndpoint={endpoint};"
    )
    store = Store(connection_string=connection_string, prefix="unreachable", retry_total=0)
    with pytest.raises(StoreError, match="cannot reach") as raised:
        await store.open()
    assert endpoint in str(raised.value)
    assert raised.value.endpoint == endpoint
    with pytest.raises(StoreError, match=r"JobRepository\.get") as raised:
        await store.job.get()
    assert endpoint in str(raised.value)
    assert raised.value.table == "unreachablejob"
    await store.close()


async def test_a_wrong_account_key_is_reported_as_access_denied(azurite: Azurite, table_prefix: str) -> None:
    wrong = AzureNamedKeyCredential(ACCOUNT_NAME, "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NA==")
    store = Store.from_account_url(azurite.endpoint("table"), wrong, prefix=table_prefix, retry_total=0)
    with pytest.raises(StoreError, match="access denied"):
        await store.open()
    await store.close()


async def test_a_missing_table_is_a_store_error_never_an_empty_answer(
    storage_connection_string: str, table_prefix: str
) -> None:
    store = Store(connection_string=storage_connection_string, prefix=table_prefix)  # never opened
    calls = {
        "job.get": store.job.get(),
        "job.save": store.job.save(JobState()),
        "lease.acquire": store.lease.acquire("cycle", "me", 60),
        "links.get": store.links.get("u1"),
        "links.put_if_unchanged": store.links.put_if_unchanged(Link(entra_id="u1", goto_id="g1")),
        "escrow.record_failure": store.escrow.record_failure("u1", "user", "Conflict", "", datetime.now(UTC)),
        "logs.query": store.logs.query(),
    }
    try:
        for call in calls.values():
            with pytest.raises(StoreError, match=r"Store\.open\(\)"):
                await call
    finally:
        await store.close()


def test_the_table_prefix_must_make_valid_table_names() -> None:
    for bad in ("", "1abc", "has-dash", "x" * 53):
        with pytest.raises(ValueError, match="prefix"):
            Store(connection_string="UseDevelopmentStorage=true", prefix=bad)


def test_exactly_one_way_to_reach_the_account() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Store()
    with pytest.raises(ValueError, match="exactly one"):
        Store(connection_string="UseDevelopmentStorage=true", account_url="https://a.table.core.windows.net")


async def test_a_sas_token_never_reaches_the_endpoint_shown_in_errors() -> None:
    store = Store(account_url="https://acct.table.core.windows.net/?sv=2024-01-01&sig=c2VjcmV0")
    try:
        assert store.endpoint == "https://acct.table.core.windows.net"
    finally:
        await store.close()


async def test_default_prefix(storage_connection_string: str) -> None:
    store = Store(connection_string=storage_connection_string)
    try:
        assert store.table_name("links") == "gotosynclinks"
    finally:
        await store.close()


async def test_batches_collapse_repeated_rows_and_skip_deletes_of_rows_already_gone(
    storage_connection_string: str, store: Store
) -> None:
    async with TableClient.from_connection_string(storage_connection_string, store.table_name("links")) as table:
        await submit_batches(table, [upsert({"PartitionKey": "p", "RowKey": f"r{n}", "n": n}) for n in range(150)])
        operations = [delete("p", f"r{n}") for n in range(0, 150, 2)]  # existing rows
        operations += [delete("p", f"gone{n}") for n in range(5)]  # never existed: a racing purge took them
        operations += [upsert({"PartitionKey": "p", "RowKey": "r1", "n": -1}), delete("p", "r1")]  # last one wins
        answers = await submit_batches(table, operations)
        assert len(answers) == len(operations)
        remaining = {e["RowKey"]: e["n"] async for e in table.list_entities()}
    assert remaining == {f"r{n}": n for n in range(3, 150, 2)}
