"""The storage emulator is real: tables round-trip through the azure-data-tables aio client."""

from azure.data.tables.aio import TableServiceClient

from emulators.azurite import Azurite


async def test_azurite_serves_tables_through_the_real_sdk(storage_connection_string: str, table_prefix: str) -> None:
    async with TableServiceClient.from_connection_string(storage_connection_string) as service:
        table = await service.create_table_if_not_exists(f"{table_prefix}probe")
        await table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": 42})
        entity = await table.get_entity("p", "r")
        assert entity["value"] == 42


def test_azurite_listens_only_on_loopback(azurite: Azurite) -> None:
    assert azurite.host == "127.0.0.1"
    assert all(f"127.0.0.1:{port}" in azurite.connection_string for port in azurite.ports.values())
    assert azurite.process is not None and azurite.process.poll() is None
