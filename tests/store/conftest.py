"""A Store on Azurite per test, its tables under the test's own prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.store import Store


@pytest.fixture
async def store(storage_connection_string: str, table_prefix: str) -> AsyncIterator[Store]:
    async with Store(connection_string=storage_connection_string, prefix=table_prefix) as opened:
        yield opened
