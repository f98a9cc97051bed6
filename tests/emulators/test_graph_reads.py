"""Graph emulator: reads of users, groups, members and app role assignments; paging; the error
shape (docs/reference/microsoft-graph.md#app-role-assignments,
docs/reference/microsoft-graph.md#paging)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulators.graph import DEFAULT_ACCESS_ROLE_ID, GraphEmulator
from tests.fixtures.graph import graph_http_client

DEFAULT_USER_PROPS = {
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
}


def assert_graph_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in response.text
    return error


def collect(http: httpx.Client, url: str, params: dict[str, str] | None = None) -> tuple[list[dict], int]:
    """Follows @odata.nextLink to the end; returns (items, pages)."""
    page = http.get(url, params=params).json()
    items, pages = list(page["value"]), 1
    while "@odata.nextLink" in page:
        assert page["@odata.nextLink"].startswith(
            "http://127.0.0.1:"
        )  # absolute, as given (docs/reference/microsoft-graph.md#paging)
        page = http.get(page["@odata.nextLink"]).json()
        items += page["value"]
        pages += 1
    return items, pages


def test_user_without_select_has_exactly_the_default_properties(graph_http: httpx.Client) -> None:
    users = graph_http.get("/users").json()["value"]

    assert users
    assert all(set(u) == DEFAULT_USER_PROPS for u in users)
    assert "accountEnabled" not in users[0]
    assert "employeeOrgData" not in users[0]


def test_select_returns_the_selected_properties_including_non_default_ones(graph_http: httpx.Client) -> None:
    select = "id,accountEnabled,department,employeeId,employeeOrgData,onPremisesExtensionAttributes"

    user = graph_http.get("/users", params={"$select": select, "$top": "1"}).json()["value"][0]

    assert list(user) == select.split(",")
    assert user["accountEnabled"] is True
    assert set(user["employeeOrgData"]) == {"division", "costCenter"}
    assert set(user["onPremisesExtensionAttributes"]) == {f"extensionAttribute{i}" for i in range(1, 16)}


def test_select_is_case_insensitive_and_id_always_comes_back(graph_http: httpx.Client) -> None:
    user = graph_http.get("/users", params={"$select": "DISPLAYNAME", "$top": "1"}).json()["value"][0]

    assert set(user) == {"id", "displayName"}


def test_unknown_select_property_is_a_graph_400(graph_http: httpx.Client) -> None:
    error = assert_graph_error(graph_http.get("/users", params={"$select": "id,shoeSize"}), 400, "Request_BadRequest")

    assert "shoeSize" in error["message"]


def test_users_page_with_nextlink_until_every_user_is_seen_once(graph_http: httpx.Client) -> None:
    users, pages = collect(graph_http, "/users", {"$top": "7", "$select": "id"})

    assert pages == 3  # 20 users: 7 + 7 + 6, no trailing empty page
    assert len({u["id"] for u in users}) == 20


def test_default_page_size_is_100(graph_emulator_factory: Callable[..., GraphEmulator]) -> None:
    emulator = graph_emulator_factory(users=150, groups=0)
    with graph_http_client(emulator) as http:
        first = http.get("/users").json()

    assert len(first["value"]) == 100
    assert "$skiptoken=" in first["@odata.nextLink"]


@pytest.mark.parametrize("top", ["1000", "0", "abc"])
def test_top_outside_1_to_999_is_rejected(graph_http: httpx.Client, top: str) -> None:
    error = assert_graph_error(graph_http.get("/users", params={"$top": top}), 400)

    assert "Must be between 1 and 999" in error["message"]


def test_top_999_is_accepted(graph_http: httpx.Client) -> None:
    assert graph_http.get("/users", params={"$top": "999"}).status_code == 200


def test_garbled_skiptoken_is_a_400_not_a_crash(graph_http: httpx.Client) -> None:
    assert_graph_error(graph_http.get("/users", params={"$skiptoken": "garbage"}), 400, "Directory_ExpiredPageToken")


def test_a_skiptoken_never_expires_by_default(graph_emulator_factory: Callable[..., GraphEmulator]) -> None:
    emulator = graph_emulator_factory(users=12, groups=0)
    with graph_http_client(emulator) as http:
        next_link = http.get("/users", params={"$top": "5"}).json()["@odata.nextLink"]
        emulator.advance_clock(30 * 24 * 3600)
        emulator.create_user(givenName="Late", surname="Comer")
        assert len(http.get(next_link).json()["value"]) == 5


def test_skiptoken_expiry_lifetime_refuses_a_token_older_than_its_lifetime(
    graph_emulator_factory: Callable[..., GraphEmulator],
) -> None:
    emulator = graph_emulator_factory(users=12, groups=0, skiptoken_expiry="lifetime", skiptoken_lifetime_seconds=60)
    with graph_http_client(emulator) as http:
        next_link = http.get("/users", params={"$top": "5"}).json()["@odata.nextLink"]
        emulator.advance_clock(59)
        assert len(http.get(next_link).json()["value"]) == 5  # still young enough
        emulator.advance_clock(2)
        assert_graph_error(http.get(next_link), 400, "Directory_ExpiredPageToken")
        fresh = http.get("/users", params={"$top": "5"}).json()["@odata.nextLink"]
        assert len(http.get(fresh).json()["value"]) == 5  # a listing started again works


def test_skiptoken_expiry_on_change_refuses_a_token_issued_before_a_change(
    graph_emulator_factory: Callable[..., GraphEmulator],
) -> None:
    emulator = graph_emulator_factory(users=12, groups=0, skiptoken_expiry="on-change")
    with graph_http_client(emulator) as http:
        next_link = http.get("/users", params={"$top": "5"}).json()["@odata.nextLink"]
        assert len(http.get(next_link).json()["value"]) == 5  # reads change nothing
        emulator.update_user(next(iter(emulator.tenant.users)), department="Moved")
        assert_graph_error(http.get(next_link), 400, "Directory_ExpiredPageToken")


def test_an_unknown_skiptoken_expiry_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="skiptoken_expiry must be one of never, lifetime, on-change"):
        GraphEmulator(skiptoken_expiry="sometimes")


def test_get_user_by_id_and_by_upn(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    user_id = graph_emulator.create_user(givenName="Ann", surname="Lee", department="Sales")

    by_id = graph_http.get(f"/users/{user_id}", params={"$select": "id,userPrincipalName,department"}).json()
    by_upn = graph_http.get(f"/users/{by_id['userPrincipalName'].upper()}").json()

    assert by_id["userPrincipalName"] == "ann.lee@contoso.com"
    assert by_id["department"] == "Sales"
    assert by_upn["id"] == user_id


def test_unknown_user_is_request_resource_not_found(graph_http: httpx.Client) -> None:
    assert_graph_error(graph_http.get(f"/users/{uuid.uuid4()}"), 404, "Request_ResourceNotFound")


def test_soft_deleted_user_leaves_users_and_appears_in_deleted_items(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    user_id = graph_emulator.create_user(displayName="Gone Soon")
    graph_emulator.soft_delete_user(user_id)

    listed = {u["id"] for u in collect(graph_http, "/users", {"$top": "999"})[0]}
    deleted = graph_http.get("/directory/deletedItems/microsoft.graph.user").json()["value"]

    assert user_id not in listed
    assert graph_http.get(f"/users/{user_id}").status_code == 404
    assert [d["id"] for d in deleted] == [user_id]
    assert deleted[0]["deletedDateTime"]


def test_app_role_assigned_to_carries_the_documented_fields_with_real_guids(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    user_id = graph_emulator.create_user(displayName="Role Holder")
    group_id = graph_emulator.create_group("Assigned Group")
    graph_emulator.assign(user_id, "WebinarOrganizer")
    graph_emulator.assign(group_id, None)

    items = graph_http.get(f"/servicePrincipals/{graph_emulator.sp_id}/appRoleAssignedTo").json()["value"]

    by_principal = {i["principalId"]: i for i in items}
    user_item, group_item = by_principal[user_id], by_principal[group_id]
    assert set(user_item) == {
        "id",
        "deletedDateTime",
        "appRoleId",
        "createdDateTime",
        "principalDisplayName",
        "principalId",
        "principalType",
        "resourceDisplayName",
        "resourceId",
    }
    for item in (user_item, group_item):
        for key in ("appRoleId", "principalId", "resourceId"):
            assert str(uuid.UUID(item[key])) == item[key]
        assert item["resourceId"] == graph_emulator.sp_id
        assert item["resourceDisplayName"] == "GoToMeeting"
    assert user_item["principalType"] == "User"
    assert user_item["principalDisplayName"] == "Role Holder"
    assert user_item["appRoleId"] == graph_emulator.app_roles["WebinarOrganizer"]
    assert group_item["principalType"] == "Group"
    assert group_item["appRoleId"] == DEFAULT_ACCESS_ROLE_ID


def test_app_role_assigned_to_pages_and_supports_the_app_id_form(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    for user_id in list(graph_emulator.tenant.users):
        graph_emulator.assign(user_id, "MeetingOrganizer")

    by_id, pages = collect(graph_http, f"/servicePrincipals/{graph_emulator.sp_id}/appRoleAssignedTo", {"$top": "6"})
    by_app_id, _ = collect(graph_http, f"/servicePrincipals(appId='{graph_emulator.app_id}')/appRoleAssignedTo")

    assert pages == 4
    assert len(by_id) == 20
    assert {a["id"] for a in by_app_id} == {a["id"] for a in by_id}


def test_app_role_assigned_to_filters_on_principal_display_name(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    target = graph_emulator.create_user(displayName="Zed Filterable")
    graph_emulator.assign(target, "Admin")
    graph_emulator.assign(next(iter(graph_emulator.tenant.users)), "Admin")

    url = f"/servicePrincipals/{graph_emulator.sp_id}/appRoleAssignedTo"
    items = graph_http.get(url, params={"$filter": "startswith(principalDisplayName,'zed')"}).json()["value"]

    assert [i["principalId"] for i in items] == [target]


def test_service_principal_select_app_roles(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    sp = graph_http.get(f"/servicePrincipals/{graph_emulator.sp_id}", params={"$select": "appRoles"}).json()

    roles = {r["value"]: r for r in sp["appRoles"]}
    assert set(roles) == {"MeetingOrganizer", "WebinarOrganizer", "Admin"}
    assert roles["Admin"]["displayName"] == "Administrator"
    assert all(r["isEnabled"] and r["allowedMemberTypes"] == ["User"] for r in roles.values())
    assert "displayName" not in sp


def test_members_are_direct_and_transitive_members_are_flattened(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    alice = graph_emulator.create_user(displayName="Alice")
    bob = graph_emulator.create_user(displayName="Bob")
    outer = graph_emulator.create_group("Outer", members=[alice])
    inner = graph_emulator.create_group("Inner", members=[bob])
    graph_emulator.add_member(outer, inner)

    direct = graph_http.get(f"/groups/{outer}/members").json()["value"]
    transitive = graph_http.get(f"/groups/{outer}/transitiveMembers", params={"$select": "id"}).json()["value"]

    assert {(m["@odata.type"], m["id"]) for m in direct} == {
        ("#microsoft.graph.user", alice),
        ("#microsoft.graph.group", inner),
    }
    assert {m["id"] for m in transitive} == {alice, inner, bob}
    assert set(transitive[0]) == {"@odata.type", "id"}


def test_member_listing_honours_select_and_pages(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    members = [graph_emulator.create_user(displayName=f"M{i}") for i in range(5)]
    group = graph_emulator.create_group("Paged", members=members)

    items, pages = collect(graph_http, f"/groups/{group}/members", {"$top": "2", "$select": "id,displayName"})

    assert pages == 3
    assert [m["id"] for m in items] == members
    assert all(set(m) == {"@odata.type", "id", "displayName"} for m in items)


def test_soft_deleted_member_is_hidden_and_returns_on_restore(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    user = graph_emulator.create_user(displayName="Flaky")
    group = graph_emulator.create_group("G", members=[user])

    graph_emulator.soft_delete_user(user)
    hidden = graph_http.get(f"/groups/{group}/members").json()["value"]
    graph_emulator.restore_user(user)
    back = graph_http.get(f"/groups/{group}/members").json()["value"]

    assert hidden == []
    assert [m["id"] for m in back] == [user]


def test_count_needs_consistency_level_eventual(graph_http: httpx.Client) -> None:
    without = graph_http.get("/users", params={"$count": "true"})
    with_header = graph_http.get(
        "/users", params={"$count": "true", "$top": "5"}, headers={"ConsistencyLevel": "eventual"}
    )

    assert_graph_error(without, 400)
    assert with_header.json()["@odata.count"] == 20


def test_users_filter_on_upn_is_case_insensitive(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    user_id = graph_emulator.create_user(userPrincipalName="Mixed.Case@contoso.com")

    items = graph_http.get("/users", params={"$filter": "userPrincipalName eq 'mixed.case@CONTOSO.com'"}).json()

    assert [u["id"] for u in items["value"]] == [user_id]


def test_advanced_filters_need_consistency_level_and_count(graph_http: httpx.Client) -> None:
    clause = {"$filter": "endswith(mail,'@contoso.com')"}

    plain = graph_http.get("/users", params=clause)
    advanced = graph_http.get("/users", params={**clause, "$count": "true"}, headers={"ConsistencyLevel": "eventual"})

    assert_graph_error(plain, 400, "Request_UnsupportedQuery")
    assert advanced.json()["@odata.count"] == 20


def test_requests_without_a_bearer_token_get_401(graph_emulator: GraphEmulator) -> None:
    with graph_http_client(graph_emulator, token=None) as http:
        assert_graph_error(http.get("/users"), 401, "InvalidAuthenticationToken")
        assert_graph_error(http.get("/users", headers={"Authorization": "Basic abc"}), 401)


def test_unknown_path_and_wrong_method_are_graph_errors(graph_http: httpx.Client) -> None:
    error = assert_graph_error(graph_http.get("/shoes"), 400, "BadRequest")
    assert "shoes" in error["message"]
    assert_graph_error(graph_http.delete("/users"), 405)
    assert_graph_error(graph_http.get("/../nothing"), 404)


def test_malformed_json_body_is_a_graph_400(graph_http: httpx.Client) -> None:
    response = graph_http.post("/subscriptions", content=b"{not json", headers={"Content-Type": "application/json"})

    error = assert_graph_error(response, 400, "BadRequest")
    assert "Unable to read JSON request payload" in error["message"]


def test_unexpected_failure_is_a_graph_500_without_a_stack_trace(
    graph_emulator: GraphEmulator, graph_http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(graph_emulator.tenant, "list_users", explode)

    error = assert_graph_error(graph_http.get("/users"), 500, "InternalServerError")
    assert "secret internals" not in error["message"]


def test_client_request_id_is_echoed(graph_http: httpx.Client) -> None:
    response = graph_http.get(f"/users/{uuid.uuid4()}", headers={"client-request-id": "my-id"})

    assert response.headers["client-request-id"] == "my-id"
    assert response.json()["error"]["innerError"]["client-request-id"] == "my-id"
