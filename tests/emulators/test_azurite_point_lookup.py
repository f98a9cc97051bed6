"""bench/azurite_point_lookup.cjs makes Azurite find an entity by its RowKey index first: the
answers of point operations must stay those of Azurite (and of Table Storage), partition and all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient

from emulators.azurite import Azurite

PRELOAD = Path(__file__).resolve().parents[2] / "bench" / "azurite_point_lookup.cjs"


@pytest.fixture(scope="module")
def indexed_azurite() -> Iterator[Azurite]:
    server = Azurite(node_args=("--require", str(PRELOAD)))
    server.start()
    yield server
    server.stop()


async def test_point_operations_answer_as_before_with_the_row_key_looked_up_first(indexed_azurite: Azurite) -> None:
    assert any("azurite_point_lookup:" in line for line in indexed_azurite.output)  # the preload is in
    async with TableServiceClient.from_connection_string(indexed_azurite.connection_string) as service:
        table = service.get_table_client("pointlookup")
        await table.create_table()
        # The same RowKey in two partitions: each point operation must reach its own.
        await table.create_entity({"PartitionKey": "user", "RowKey": "same", "v": "u"})
        await table.create_entity({"PartitionKey": "group", "RowKey": "same", "v": "g"})
        with pytest.raises(ResourceExistsError):
            await table.create_entity({"PartitionKey": "user", "RowKey": "same", "v": "again"})
        assert (await table.get_entity("user", "same"))["v"] == "u"
        assert (await table.get_entity("group", "same"))["v"] == "g"
        await table.upsert_entity({"PartitionKey": "group", "RowKey": "same", "v": "g2"}, mode=UpdateMode.REPLACE)
        await table.delete_entity("user", "same")
        with pytest.raises(ResourceNotFoundError):
            await table.get_entity("user", "same")
        assert (await table.get_entity("group", "same"))["v"] == "g2"
        with pytest.raises(ResourceNotFoundError):
            await table.get_entity("group", "other")
        listed = [e["PartitionKey"] async for e in table.query_entities("RowKey eq 'same'")]
        assert listed == ["group"]
