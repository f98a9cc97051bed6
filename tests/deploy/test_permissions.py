"""`gotosync grant-permissions`: the app role assignments it would make for the managed identity.

The Graph emulator answers 405 to writes on /servicePrincipals (checked below), so the flow runs
through msgraph-sdk against a small in-test Graph (httpx.MockTransport) that records every
request; the request itself is also checked as msgraph-sdk builds it.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

from shared.deploy.permissions import (
    DEFAULT_PERMISSIONS,
    MICROSOFT_GRAPH_APP_ID,
    GrantRefused,
    PermissionGrantError,
    build_assignment,
    grant_permissions,
)
from shared.entra.graph import StaticTokenCredential, make_graph_client

MSI = "6f1c3f43-0d7a-4c4e-9d8c-1c2b3a4d5e6f"
GRAPH_SP = "2f3e4d5c-6b7a-4988-8776-655443322110"
# Microsoft Graph's app role ids for these permissions are the same in every tenant.
ROLE_IDS = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",  # delegated only
}


ODATA_TYPE = {"@odata.type": "#microsoft.graph.appRoleAssignment"}  # msgraph-sdk adds it; Graph accepts it


class FakeGraph:
    def __init__(self, existing: tuple[str, ...] = ()) -> None:
        self.requests: list[httpx.Request] = []
        self.assignments = [
            {"id": uuid.uuid4().hex, "principalId": MSI, "resourceId": GRAPH_SP, "appRoleId": ROLE_IDS[p]}
            for p in existing
        ]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == f"/v1.0/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')":
            roles = [
                {
                    "id": rid,
                    "value": name,
                    "isEnabled": True,
                    "allowedMemberTypes": ["User"] if name == "User.Read" else ["Application"],
                }
                for name, rid in ROLE_IDS.items()
            ]
            return httpx.Response(200, json={"id": GRAPH_SP, "appId": MICROSOFT_GRAPH_APP_ID, "appRoles": roles})
        if path == f"/v1.0/servicePrincipals/{MSI}/appRoleAssignments":
            if request.method == "GET":
                return httpx.Response(200, json={"value": self.assignments})
            body = json.loads(request.content)
            self.assignments.append({"id": uuid.uuid4().hex, **body})
            return httpx.Response(201, json={"id": uuid.uuid4().hex, **body})
        return httpx.Response(404, json={"error": {"code": "Request_ResourceNotFound", "message": path}})

    def client(self) -> GraphServiceClient:
        auth = AzureIdentityAuthenticationProvider(
            StaticTokenCredential("t"), scopes=["https://graph.microsoft.com/.default"]
        )
        http = httpx.AsyncClient(
            transport=httpx.MockTransport(self.handler), base_url="https://graph.microsoft.com/v1.0"
        )
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = "https://graph.microsoft.com/v1.0"
        return GraphServiceClient(request_adapter=adapter)

    def posts(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


async def test_grants_each_missing_permission_with_one_post():
    graph = FakeGraph(existing=("User.Read.All",))
    grants = await grant_permissions(graph.client(), MSI)
    assert [(g.permission, g.status) for g in grants] == [
        ("Application.Read.All", "granted"),
        ("User.Read.All", "already granted"),
        ("GroupMember.Read.All", "granted"),
        ("Group.Read.All", "granted"),
    ]
    posts = [r for r in graph.requests if r.method == "POST"]
    assert {str(r.url) for r in posts} == {
        f"https://graph.microsoft.com/v1.0/servicePrincipals/{MSI}/appRoleAssignments"
    }
    assert all(r.headers["authorization"] == "Bearer t" for r in posts)
    assert all(r.headers["content-type"].startswith("application/json") for r in posts)
    assert graph.posts() == [
        {**ODATA_TYPE, "principalId": MSI, "resourceId": GRAPH_SP, "appRoleId": ROLE_IDS[p]}
        for p in ("Application.Read.All", "GroupMember.Read.All", "Group.Read.All")
    ]
    # A second run finds them all and writes nothing.
    again = await grant_permissions(graph.client(), MSI)
    assert {g.status for g in again} == {"already granted"}
    assert len(graph.posts()) == 3


async def test_dry_run_writes_nothing():
    graph = FakeGraph()
    grants = await grant_permissions(graph.client(), MSI, dry_run=True)
    assert {g.status for g in grants} == {"would grant"}
    assert graph.posts() == []


async def test_unknown_or_delegated_only_permissions_are_refused_before_any_write():
    graph = FakeGraph()
    with pytest.raises(PermissionGrantError, match=r"User\.Read, Mail\.Send"):
        await grant_permissions(graph.client(), MSI, ["User.Read.All", "User.Read", "Mail.Send"])
    assert graph.posts() == []
    with pytest.raises(PermissionGrantError, match="object \\(principal\\) id"):
        await grant_permissions(graph.client(), "func-gotosync-abc")


async def test_a_grant_graph_refuses_says_who_may_make_it():
    graph = FakeGraph()
    answer = graph.handler

    def refuse_writes(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            graph.requests.append(request)
            error = {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}
            return httpx.Response(403, json={"error": error})
        return answer(request)

    graph.handler = refuse_writes  # type: ignore[method-assign]
    with pytest.raises(GrantRefused, match=r"refused the grant \(HTTP 403\)") as info:
        await grant_permissions(graph.client(), MSI)
    assert info.value.exit_code == 5 and "Privileged Role Administrator" in info.value.fix


def test_the_request_msgraph_sdk_builds():
    client, _ = make_graph_client("https://graph.microsoft.com/v1.0", "t")
    body = build_assignment(MSI, GRAPH_SP, ROLE_IDS["Group.Read.All"])
    builder = client.service_principals.by_service_principal_id(MSI).app_role_assignments
    info = builder.to_post_request_information(body)
    assert info.http_method.value == "POST"
    info.path_parameters["baseurl"] = client.request_adapter.base_url  # the adapter fills it in when sending
    assert info.url == f"https://graph.microsoft.com/v1.0/servicePrincipals/{MSI}/appRoleAssignments"
    expected = {**ODATA_TYPE, "principalId": MSI, "resourceId": GRAPH_SP, "appRoleId": ROLE_IDS["Group.Read.All"]}
    assert json.loads(info.content) == expected


def test_default_permissions_are_the_least_privileged_set():
    assert DEFAULT_PERMISSIONS == ("Application.Read.All", "User.Read.All", "GroupMember.Read.All", "Group.Read.All")


async def test_the_graph_emulator_does_not_accept_the_write(graph_emulator):
    """Why the flow above runs against a fake: the emulator is read-only for service principals."""
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{graph_emulator.graph_url}/servicePrincipals/{graph_emulator.sp_id}/appRoleAssignments",
            json={"principalId": MSI, "resourceId": GRAPH_SP, "appRoleId": ROLE_IDS["User.Read.All"]},
            headers={"Authorization": "Bearer test-token"},
        )
    assert answer.status_code in (400, 405)
