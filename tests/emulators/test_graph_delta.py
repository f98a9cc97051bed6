"""Graph emulator: delta query for users and groups (docs/reference/microsoft-graph.md#delta-query)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from emulators.graph import GraphEmulator
from tests.fixtures.graph import graph_http_client

USER_SELECT = "id,displayName,accountEnabled,department"


@pytest.fixture
def emulator(graph_emulator_factory: Callable[..., GraphEmulator]) -> GraphEmulator:
    return graph_emulator_factory(users=12, groups=0, delta_page_size=5)


@pytest.fixture
def http(emulator: GraphEmulator) -> Iterator[httpx.Client]:
    with graph_http_client(emulator) as client:
        yield client


def run_round(http: httpx.Client, url: str, headers: dict[str, str] | None = None) -> tuple[list[dict], str, int]:
    """Follows nextLinks until the deltaLink; returns (entries, deltaLink, pages)."""
    entries: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        entries += body["value"]
        if "@odata.nextLink" not in body:
            return entries, body["@odata.deltaLink"], pages
        assert "@odata.deltaLink" not in body
        url = body["@odata.nextLink"]


def initial(http: httpx.Client, collection: str = "users", select: str = USER_SELECT) -> tuple[list[dict], str]:
    entries, link, _ = run_round(http, f"/{collection}/delta()?$select={select}")
    return entries, link


def by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in entries}


def test_initial_round_pages_then_ends_with_a_delta_link(http: httpx.Client) -> None:
    entries, link, pages = run_round(http, f"/users/delta()?$select={USER_SELECT}")

    assert pages == 3  # 12 users, 5 per page
    assert len(by_id(entries)) == 12
    assert all(set(e) == set(USER_SELECT.split(",")) for e in entries)
    assert "$deltatoken=" in link


def test_path_without_parentheses_works_too(http: httpx.Client) -> None:
    assert http.get("/users/delta").status_code == 200


def test_round_without_changes_is_empty_with_a_new_delta_link(http: httpx.Client) -> None:
    _, link = initial(http)

    entries, next_link, pages = run_round(http, link)

    assert entries == []
    assert pages == 1
    assert "$deltatoken=" in next_link


def test_change_to_a_selected_property_is_returned_with_all_selected_properties(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    _, link = initial(http)
    user_id = next(iter(emulator.tenant.users))

    emulator.update_user(user_id, displayName="Renamed Person")
    entries, _, _ = run_round(http, link)

    assert entries == [
        {
            "id": user_id,
            "displayName": "Renamed Person",
            "accountEnabled": True,
            "department": emulator.user(user_id)["department"],
        }
    ]


def test_change_to_an_unselected_property_yields_no_entry(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)

    emulator.update_user(next(iter(emulator.tenant.users)), jobTitle="Chief Untracked Officer")
    entries, _, _ = run_round(http, link)

    assert entries == []


def test_prefer_return_minimal_returns_only_changed_properties(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)
    user_id = next(iter(emulator.tenant.users))

    emulator.block_user(user_id)
    response = http.get(link, headers={"Prefer": "return=minimal"})

    assert response.headers["Preference-Applied"] == "return=minimal"
    assert response.json()["value"] == [{"id": user_id, "accountEnabled": False}]


def test_cleared_property_comes_back_as_null(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)
    user_id = next(iter(emulator.tenant.users))

    emulator.update_user(user_id, department=None)
    entries, _, _ = run_round(http, link, headers={"Prefer": "return=minimal"})

    assert entries == [{"id": user_id, "department": None}]


def test_soft_delete_is_removed_changed_and_restore_reappears_without_annotation(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    _, link = initial(http)
    user_id = next(iter(emulator.tenant.users))

    emulator.soft_delete_user(user_id)
    removed, link, _ = run_round(http, link)
    emulator.restore_user(user_id)
    restored, _, _ = run_round(http, link)

    assert removed == [{"id": user_id, "@removed": {"reason": "changed"}}]
    assert len(restored) == 1
    assert restored[0]["id"] == user_id
    assert "@removed" not in restored[0]
    assert set(restored[0]) == set(USER_SELECT.split(","))


def test_hard_delete_is_removed_deleted(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)
    user_id = next(iter(emulator.tenant.users))

    emulator.hard_delete_user(user_id)
    entries, _, _ = run_round(http, link)

    assert entries == [{"id": user_id, "@removed": {"reason": "deleted"}}]


def test_created_user_arrives_in_full_without_annotation(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)

    user_id = emulator.create_user(displayName="Newcomer", department="Legal")
    entries, _, _ = run_round(http, link, headers={"Prefer": "return=minimal"})

    assert entries == [{"id": user_id, "displayName": "Newcomer", "accountEnabled": True, "department": "Legal"}]


def test_user_created_and_purged_between_rounds_is_not_reported(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)

    emulator.hard_delete_user(emulator.create_user(displayName="Ephemeral"))
    entries, _, _ = run_round(http, link)

    assert entries == []


def test_delta_token_latest_returns_only_a_delta_link(emulator: GraphEmulator, http: httpx.Client) -> None:
    response = http.get(f"/users/delta()?$select={USER_SELECT}&$deltatoken=latest").json()
    user_id = emulator.create_user(displayName="After Latest")
    entries, _, _ = run_round(http, response["@odata.deltaLink"])

    assert response["value"] == []
    assert "@odata.nextLink" not in response
    assert [e["id"] for e in entries] == [user_id]


def test_options_live_in_the_token_not_in_the_link(http: httpx.Client) -> None:
    _, link = initial(http, select="id,displayName")

    assert "select" not in link.split("?", 1)[1].lower()


def test_filter_by_ids_restricts_every_round(emulator: GraphEmulator, http: httpx.Client) -> None:
    first, second, third = list(emulator.tenant.users)[:3]
    url = f"/users/delta()?$select=id,displayName&$filter=id eq '{first}' or id eq '{second}'"

    entries, link, _ = run_round(http, url)
    emulator.update_user(second, displayName="Seen")
    emulator.update_user(third, displayName="Not Seen")
    changes, _, _ = run_round(http, link)

    assert set(by_id(entries)) == {first, second}
    assert [c["id"] for c in changes] == [second]


def test_filter_with_more_than_50_ids_is_rejected(http: httpx.Client) -> None:
    clause = " or ".join(f"id eq '{uuid.uuid4()}'" for _ in range(51))

    response = http.get("/users/delta()", params={"$filter": clause})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_top_is_not_allowed_on_delta(http: httpx.Client) -> None:
    assert http.get("/users/delta()", params={"$top": "5"}).status_code == 400


def test_garbled_token_is_410_gone_with_a_location(http: httpx.Client) -> None:
    response = http.get("/users/delta()", params={"$deltatoken": "not-a-real-token"})

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "resyncRequired"
    assert "/users/delta?" in response.headers["Location"]


def test_token_from_another_tenant_is_410(
    graph_emulator_factory: Callable[..., GraphEmulator], http: httpx.Client
) -> None:
    _, link = initial(http)
    other = graph_emulator_factory(users=1, groups=0)
    token = link.split("$deltatoken=", 1)[1]

    with graph_http_client(other) as other_http:
        assert other_http.get("/users/delta()", params={"$deltatoken": token}).status_code == 410


def test_token_older_than_seven_days_is_410_and_location_restarts_the_sync(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    _, link = initial(http)

    emulator.advance_clock(7 * 24 * 3600 + 1)
    response = http.get(link)
    restart, new_link, _ = run_round(http, response.headers["Location"])

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "syncStateNotFound"
    assert len(restart) == 12
    assert set(restart[0]) == set(USER_SELECT.split(","))  # the Location keeps the original $select
    assert http.get(new_link).status_code == 200


def test_token_younger_than_seven_days_still_works(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)

    emulator.advance_clock(6 * 24 * 3600)

    assert http.get(link).status_code == 200


def test_expire_delta_tokens_invalidates_outstanding_tokens(emulator: GraphEmulator, http: httpx.Client) -> None:
    _, link = initial(http)

    emulator.expire_delta_tokens()

    assert http.get(link).status_code == 410


def test_group_initial_round_lists_members(emulator: GraphEmulator, http: httpx.Client) -> None:
    members = list(emulator.tenant.users)[:3]
    group = emulator.create_group("Delta Group", members=members)

    entries, _ = initial(http, "groups", "displayName,members")

    entry = by_id(entries)[group]
    assert entry["displayName"] == "Delta Group"
    assert entry["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": m} for m in members]


def test_group_member_add_and_remove_arrive_as_members_delta(emulator: GraphEmulator, http: httpx.Client) -> None:
    alice, bob, carol = list(emulator.tenant.users)[:3]
    group = emulator.create_group("Team", members=[alice, bob])
    _, link = initial(http, "groups", "displayName,members")

    emulator.add_member(group, carol)
    emulator.remove_member(group, alice)
    entries, _, _ = run_round(http, link)

    assert len(entries) == 1
    assert entries[0]["id"] == group
    assert sorted(entries[0]["members@delta"], key=lambda m: m["id"]) == sorted(
        [
            {"@odata.type": "#microsoft.graph.user", "id": carol},
            {"@odata.type": "#microsoft.graph.user", "id": alice, "@removed": {"reason": "deleted"}},
        ],
        key=lambda m: m["id"],
    )


def test_membership_changes_are_not_tracked_without_members_in_select(
    emulator: GraphEmulator, http: httpx.Client
) -> None:
    group = emulator.create_group("Quiet")
    _, link = initial(http, "groups", "displayName")

    emulator.add_member(group, next(iter(emulator.tenant.users)))
    entries, _, _ = run_round(http, link)

    assert entries == []


def test_large_group_is_split_across_entries(graph_emulator_factory: Callable[..., GraphEmulator]) -> None:
    emulator = graph_emulator_factory(users=7, groups=0, delta_page_size=2, delta_members_per_entry=3)
    group = emulator.create_group("Big", members=list(emulator.tenant.users))

    with graph_http_client(emulator) as http:
        entries, _ = initial(http, "groups", "displayName,members")

    pieces = [e for e in entries if e["id"] == group]
    assert len(pieces) == 3
    merged = [m["id"] for piece in pieces for m in piece["members@delta"]]
    assert sorted(merged) == sorted(emulator.tenant.users)


def test_deleted_group_is_removed_in_group_delta(emulator: GraphEmulator, http: httpx.Client) -> None:
    group = emulator.create_group("Doomed")
    _, link = initial(http, "groups", "displayName")

    emulator.soft_delete_group(group)
    entries, link, _ = run_round(http, link)
    emulator.hard_delete_group(group)
    purged, _, _ = run_round(http, link)

    assert entries == [{"id": group, "@removed": {"reason": "changed"}}]
    assert purged == [{"id": group, "@removed": {"reason": "deleted"}}]
