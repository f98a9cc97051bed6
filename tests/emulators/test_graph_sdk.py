"""Graph emulator smoke test with the real msgraph-sdk (docs/reference/microsoft-graph.md#msgraph-sdk):
paging appRoleAssignedTo and a users delta round trip, exactly as the app will call them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from emulators.graph import GraphEmulator
from tests.fixtures.graph import make_graph_client


@pytest.mark.slow  # msgraph-sdk spends ~8 ms deserialising each object; the emulator needs ~50 ms for all pages
async def test_sdk_pages_through_2500_assignments(graph_emulator_factory: Callable[..., GraphEmulator]) -> None:
    emulator = graph_emulator_factory(users=2_500, groups=0)
    roles = ["MeetingOrganizer", "WebinarOrganizer", "Admin", None]
    for i, user_id in enumerate(list(emulator.tenant.users)):
        emulator.assign(user_id, roles[i % len(roles)])
    client = make_graph_client(emulator)

    sp = client.service_principals.by_service_principal_id(emulator.sp_id)
    page = await sp.app_role_assigned_to.get()
    assert page is not None
    assignments = list(page.value or [])
    pages = 1
    while page.odata_next_link:
        page = await sp.app_role_assigned_to.with_url(page.odata_next_link).get()
        assert page is not None
        assignments += page.value or []
        pages += 1

    assert pages == 25  # default page size 100
    assert len(assignments) == 2_500
    assert len({a.id for a in assignments}) == 2_500
    assert all(isinstance(a.principal_id, uuid.UUID) and isinstance(a.app_role_id, uuid.UUID) for a in assignments)
    assert {str(a.resource_id) for a in assignments} == {emulator.sp_id}
    assert {a.principal_type for a in assignments} == {"User"}


async def test_sdk_reads_app_roles_and_404s_as_odata_error(graph_emulator: GraphEmulator) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
        ServicePrincipalItemRequestBuilder,
    )

    client = make_graph_client(graph_emulator)
    params = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(
        select=["appRoles"]
    )
    sp = await client.service_principals.by_service_principal_id(graph_emulator.sp_id).get(
        request_configuration=RequestConfiguration(query_parameters=params)
    )
    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(str(uuid.uuid4())).get()

    assert sp is not None
    assert {r.value for r in sp.app_roles or []} == {"MeetingOrganizer", "WebinarOrganizer", "Admin"}
    assert raised.value.response_status_code == 404
    assert raised.value.error is not None
    assert raised.value.error.code == "Request_ResourceNotFound"


async def test_sdk_users_delta_round_trip(graph_emulator_factory: Callable[..., GraphEmulator]) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

    emulator = graph_emulator_factory(users=250, groups=0)
    client = make_graph_client(emulator)
    select = ["id", "userPrincipalName", "accountEnabled", "displayName"]
    config = RequestConfiguration(
        query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=select)
    )

    async def full_round(first: Any) -> tuple[list[Any], str]:
        users = list(first.value or [])
        page = first
        while page.odata_next_link:
            page = await client.users.delta.with_url(page.odata_next_link).get()
            users += page.value or []
        assert page.odata_delta_link
        return users, page.odata_delta_link

    initial, delta_link = await full_round(await client.users.delta.get(request_configuration=config))
    blocked, deleted = list(emulator.tenant.users)[:2]
    emulator.block_user(blocked)
    emulator.soft_delete_user(deleted)
    changes, _ = await full_round(await client.users.delta.with_url(delta_link).get())

    assert len(initial) == 250
    assert all(u.account_enabled is True for u in initial)
    by_id = {u.id: u for u in changes}
    assert set(by_id) == {blocked, deleted}
    assert by_id[blocked].account_enabled is False
    assert by_id[blocked].user_principal_name == emulator.user(blocked)["userPrincipalName"]
    assert by_id[deleted].additional_data["@removed"] == {"reason": "changed"}
