"""GoTo emulator: SCIM groups as documented in docs/reference/goto-api.md#groups (default switches)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from emulators.goto import GoToEmulator
from tests.fixtures.goto import goto_client

G = "/identity/v1/Groups"
UNKNOWN = "1234567890123456789"


@pytest.fixture
def goto(make_goto_emulator: Callable[..., GoToEmulator]) -> GoToEmulator:
    return make_goto_emulator(rate_limit=0)


@pytest.fixture
def http(goto: GoToEmulator) -> Iterator[httpx.Client]:
    with goto_client(goto) as client:
        yield client


def users(goto: GoToEmulator, n: int) -> list[str]:
    return [goto.add_user(userName=f"u{i}@contoso.com") for i in range(n)]


def members(keys: list[str]) -> list[dict[str, str]]:
    return [{"type": "user", "value": k} for k in keys]


def test_create_is_201_with_members(http: httpx.Client, goto: GoToEmulator) -> None:
    keys = users(goto, 2)
    r = http.post(G, json={"displayName": "Sales", "members": members(keys)})
    assert r.status_code == 201
    group = r.json()
    assert isinstance(group["id"], str)
    assert len(group["id"]) == 19
    assert group["members"] == members(keys)
    assert group["meta"]["location"].endswith(f"{G}/{group['id']}")
    nested = http.post(G, json={"displayName": "All", "members": [{"type": "group", "value": group["id"]}]})
    assert nested.status_code == 201


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_unknown_group_is_401_not_404(http: httpx.Client, method: str) -> None:
    kwargs = {"json": {"displayName": "X"}} if method in ("PUT", "PATCH") else {}
    r = http.request(method, f"{G}/{UNKNOWN}", **kwargs)
    assert r.status_code == 401
    assert r.json()["code"] == "not.authorized"


def test_duplicate_display_name_is_409(http: httpx.Client) -> None:
    assert http.post(G, json={"displayName": "Sales"}).status_code == 201
    assert http.post(G, json={"displayName": "SALES"}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [{}, {"displayName": ""}, {"displayName": "x" * 129}, {"displayName": 42}],
)
def test_display_name_missing_or_too_long_is_400(http: httpx.Client, body: dict) -> None:
    assert http.post(G, json=body).status_code == 400


def test_more_than_100_members_per_request_is_400(http: httpx.Client, goto: GoToEmulator) -> None:
    keys = users(goto, 101)
    assert http.post(G, json={"displayName": "Big", "members": members(keys)}).status_code == 400
    r = http.post(G, json={"displayName": "Big", "members": members(keys[:100])})
    assert r.status_code == 201
    gid = r.json()["id"]
    # Also counted over PatchOp operations when PatchOp is accepted.
    goto.set_switch("patch_mode", "both")
    ops = [{"op": "add", "path": "members", "value": members(keys[:51])}] * 2
    assert http.patch(f"{G}/{gid}", json={"Operations": ops}).status_code == 400


def test_members_must_exist_in_the_organization(http: httpx.Client, goto: GoToEmulator) -> None:
    assert http.post(G, json={"displayName": "A", "members": [{"type": "user", "value": UNKNOWN}]}).status_code == 400
    outsider = goto.add_user(userName="ext@fabrikam.com")  # unverified domain: account only
    assert http.post(G, json={"displayName": "A", "members": members([outsider])}).status_code == 400
    (key,) = users(goto, 1)
    assert http.post(G, json={"displayName": "A", "members": [{"type": "group", "value": key}]}).status_code == 400
    # scim1: both type and value are required (docs/reference/goto-api.md#groups).
    assert http.post(G, json={"displayName": "A", "members": [{"value": key}]}).status_code == 400


def test_delete_is_200(http: httpx.Client) -> None:
    gid = http.post(G, json={"displayName": "Sales"}).json()["id"]
    assert http.delete(f"{G}/{gid}").status_code == 200
    assert http.get(f"{G}/{gid}").status_code == 401


def test_filters_eq_sw_co_on_display_name(http: httpx.Client) -> None:
    for name in ("Sales EMEA", "Sales US", "Marketing"):
        http.post(G, json={"displayName": name})

    def names(flt: str) -> list[str]:
        r = http.get(G, params={"filter": flt})
        assert r.status_code == 200, r.text
        return sorted(g["displayName"] for g in r.json()["resources"])

    assert names('displayName eq "sales us"') == ["Sales US"]
    assert names('displayName sw "Sales"') == ["Sales EMEA", "Sales US"]
    assert names('displayName co "ket"') == ["Marketing"]
    assert http.get(G, params={"filter": 'id eq "1"'}).status_code == 400
    assert http.get(G, params={"filter": 'displayName ne "x"'}).status_code == 400


def test_paging_and_sorting(http: httpx.Client) -> None:
    for name in ("b", "d", "a", "c", "e"):
        http.post(G, json={"displayName": name})
    r = http.get(G, params={"startIndex": 2, "count": 2, "sortBy": "displayName", "sortOrder": "descending"})
    body = r.json()
    assert body["totalResults"] == 5
    assert [g["displayName"] for g in body["resources"]] == ["d", "c"]
    assert http.get(G, params={"sortOrder": "sideways"}).status_code == 400
    assert http.get(G, params={"startIndex": "x"}).status_code == 400


def test_put_replaces_members_and_requires_display_name(http: httpx.Client, goto: GoToEmulator) -> None:
    keys = users(goto, 3)
    gid = http.post(G, json={"displayName": "Sales", "members": members(keys[:2])}).json()["id"]
    r = http.put(f"{G}/{gid}", json={"displayName": "Sales 2", "members": members(keys[2:])})
    assert r.status_code == 200
    assert r.json()["members"] == members(keys[2:])
    assert http.put(f"{G}/{gid}", json={"members": []}).status_code == 400


def test_merge_patch_requires_display_name(http: httpx.Client) -> None:
    # The merge-style PATCH body is a GroupDefinition, whose model requires displayName
    # (docs/reference/goto-api.md#patch-styles).
    gid = http.post(G, json={"displayName": "Sales"}).json()["id"]
    assert http.patch(f"{G}/{gid}", json={"members": []}).status_code == 400
    assert http.patch(f"{G}/{gid}", json={"displayName": "Sales"}).status_code == 200


def test_patch_rename_to_existing_is_409(http: httpx.Client) -> None:
    http.post(G, json={"displayName": "A"})
    gid = http.post(G, json={"displayName": "B"}).json()["id"]
    assert http.patch(f"{G}/{gid}", json={"displayName": "a"}).status_code == 409


def test_scim_delete_of_user_removes_membership(http: httpx.Client, goto: GoToEmulator) -> None:
    keys = users(goto, 2)
    gid = http.post(G, json={"displayName": "Sales", "members": members(keys)}).json()["id"]
    http.delete(f"/identity/v1/Users/{keys[0]}")
    assert http.get(f"{G}/{gid}").json()["members"] == members(keys[1:])


def test_excluded_attributes_members(http: httpx.Client, goto: GoToEmulator) -> None:
    gid = http.post(G, json={"displayName": "Sales", "members": members(users(goto, 1))}).json()["id"]
    assert "members" not in http.get(f"{G}/{gid}", params={"excludedAttributes": "members"}).json()
