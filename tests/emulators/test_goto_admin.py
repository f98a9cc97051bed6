"""GoTo emulator: the minimal Admin API, licenses and seats
(docs/reference/goto-api.md#admin-api-and-licenses; lower fidelity)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from emulators.goto import GoToEmulator
from tests.fixtures.goto import goto_client

Factory = Callable[..., GoToEmulator]


@pytest.fixture
def goto(make_goto_emulator: Factory) -> GoToEmulator:
    return make_goto_emulator(rate_limit=0)


@pytest.fixture
def http(goto: GoToEmulator) -> Iterator[httpx.Client]:
    with goto_client(goto) as client:
        yield client


def acct(goto: GoToEmulator) -> str:
    return f"/admin/rest/v1/accounts/{goto.account_key}"


def test_me(http: httpx.Client, goto: GoToEmulator) -> None:
    me = http.get("/admin/rest/v1/me").json()
    assert str(me["accountKey"]) == goto.account_key
    assert me["email"] == "admin@contoso.com"
    assert me["orgAdmin"] is True
    assert "SUPER_USER" in me["adminRoles"]
    assert me["products"] == []
    assert str(me["key"]) == goto.user_by_username("admin@contoso.com")["key"]  # type: ignore[index]


def test_licenses_seeded(http: httpx.Client, goto: GoToEmulator) -> None:
    body = http.get(f"{acct(goto)}/licenses").json()
    assert {"results", "total", "fromIndex", "toIndex"} <= set(body)
    by_key = {str(lic["key"]): lic for lic in body["results"]}
    g2m = by_key[goto.license_key("G2M")]
    g2w = by_key[goto.license_key("G2W")]
    assert (g2m["products"], g2m["seats"], g2m["userCount"], g2m["enabled"]) == (["G2M"], 1000, 0, True)
    assert (g2w["products"], g2w["seats"]) == (["G2W", "G2M"], 50)
    for attr in ("type", "description", "userKeys", "invitedUserKeys", "childLicenseKeys", "externallyManaged"):
        assert attr in g2m


def test_scim_and_admin_users_are_one_store(http: httpx.Client, goto: GoToEmulator) -> None:
    uid = http.post("/identity/v1/Users", json={"userName": "jane@contoso.com"}).json()["id"]
    body = http.get(f"{acct(goto)}/users?filter=email%20eq%20%22jane@contoso.com%22").json()
    assert body["total"] == 1
    assert str(body["results"][0]["key"]) == uid
    # SCIM DELETE: out of the organization, still in the account
    # (docs/reference/goto-api.md#deactivate-or-delete).
    http.delete(f"/identity/v1/Users/{uid}")
    assert http.get(f"{acct(goto)}/users?filter=email%20eq%20%22jane@contoso.com%22").json()["total"] == 1


def test_filter_spaces_must_be_percent_encoded(http: httpx.Client, goto: GoToEmulator) -> None:
    # '+' is not a space for this API (docs/reference/goto-api.md#admin-api-and-licenses);
    # httpx's params= encodes spaces as '+'.
    r = http.get(f"{acct(goto)}/users", params={"filter": 'email eq "admin@contoso.com"'})
    assert r.status_code == 400
    goto.set_switch("admin_strict_filter_encoding", False)
    r = http.get(f"{acct(goto)}/users", params={"filter": 'email eq "admin@contoso.com"'})
    assert r.status_code == 200
    assert r.json()["total"] == 1
    assert http.get(f"{acct(goto)}/users?filter=name%20eq%20%22x%22").status_code == 400


def test_list_users_paging(http: httpx.Client, goto: GoToEmulator) -> None:
    for i in range(4):
        goto.add_user(userName=f"u{i}@contoso.com")
    body = http.get(f"{acct(goto)}/users", params={"offset": 1, "pageSize": 2}).json()
    assert (body["total"], body["fromIndex"], body["toIndex"]) == (5, 1, 2)
    assert [u["email"] for u in body["results"]] == ["u0@contoso.com", "u1@contoso.com"]


def test_add_users_returns_existing_and_assigns_licenses(http: httpx.Client, goto: GoToEmulator) -> None:
    g2m = goto.license_key("G2M")
    body = {
        "users": [
            {"email": "admin@contoso.com", "firstName": "Ada", "lastName": "Admin"},
            {"email": "new@contoso.com", "firstName": "New", "lastName": "User"},
        ],
        "licenseKeys": [int(g2m)],
        "suppressEmail": True,
    }
    r = http.post(f"{acct(goto)}/users", json=body)
    assert r.status_code == 201
    out = r.json()
    assert [u["email"] for u in out] == ["admin@contoso.com", "new@contoso.com"]
    for entry in out:
        assert goto.licenses_of(str(entry["key"])) == [g2m]
    # The new user's domain is verified, so it is an organization identity too.
    assert http.get(f"/identity/v1/Users/{out[1]['key']}").status_code == 200
    assert http.post(f"{acct(goto)}/users", json={"users": [{"email": "x@contoso.com"}]}).status_code == 400


def test_put_license_keys_replaces_and_enforces_seats(http: httpx.Client, goto: GoToEmulator) -> None:
    g2m, g2w = goto.license_key("G2M"), goto.license_key("G2W")
    a = goto.add_user(userName="a@contoso.com")
    b = goto.add_user(userName="b@contoso.com")
    r = http.put(f"{acct(goto)}/users/{a}", json={"licenseKeys": [g2m]})
    assert r.status_code == 200
    assert [str(k) for k in r.json()["licenseKeys"]] == [g2m]
    assert http.put(f"{acct(goto)}/users/{a}", json={"licenseKeys": [g2w]}).json()["products"] == ["G2W", "G2M"]
    assert goto.licenses_of(a) == [g2w]
    # Over-assignment: seats are fixed (docs/reference/goto-api.md#seats); the status is a switch, 409 by
    # default.
    assert httpx.post(goto.url + "/_emulator/seats", json={"license": "G2W", "seats": 1}).status_code == 200
    r = http.put(f"{acct(goto)}/users/{b}", json={"licenseKeys": [g2w]})
    assert r.status_code == 409
    assert g2w in r.json()["message"]
    assert "G2W" in r.json()["message"]
    assert str(r.json()["licenseKey"]) == g2w
    assert goto.licenses_of(b) == []
    goto.set_switch("over_assign_status", 400)
    assert http.put(f"{acct(goto)}/users/{b}", json={"licenseKeys": [g2w]}).status_code == 400


def test_license_user_paths(http: httpx.Client, goto: GoToEmulator) -> None:
    g2m = goto.license_key("G2M")
    goto.set_seats("G2M", 2)
    keys = [goto.add_user(userName=f"u{i}@contoso.com") for i in range(3)]
    path = f"{acct(goto)}/licenses/{g2m}/users"
    r = http.post(path, json={"userKeys": keys[:2]})
    assert r.status_code == 200
    assert r.json()["userCount"] == 2
    assert http.post(path, json={"userKeys": keys[2:]}).status_code == 409
    assert http.delete(f"{path}/{keys[0]}").status_code == 204
    assert http.post(path, json={"userKeys": keys[2:]}).status_code == 200
    lic = next(lic for lic in goto.licenses() if lic["key"] == g2m)
    assert lic["userKeys"] == keys[1:]
    goto.set_switch("admin_license_paths", False)
    assert http.post(path, json={"userKeys": keys[:1]}).status_code == 404


def test_non_admin_and_unknown_account(goto: GoToEmulator) -> None:
    with goto_client(goto, admin=False) as http:
        r = http.get(f"{acct(goto)}/licenses")
        assert r.status_code == 401
        assert r.json()["code"] == "not.authorized"
        assert http.get("/admin/rest/v1/me").status_code == 200  # own profile needs no admin role
    with goto_client(goto) as http:
        assert http.get("/admin/rest/v1/accounts/1111111111111111111/licenses").status_code == 404
        assert http.get(f"{acct(goto)}/users/1111111111111111111").status_code == 404
        goto.set_switch("non_numeric_id_502", True)
        assert http.get(f"{acct(goto)}/users/abc").status_code == 502
