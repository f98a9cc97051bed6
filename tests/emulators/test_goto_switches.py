"""GoTo emulator: every value of every switch (the UNCONFIRMED points). Each section below is
named after a switch; docs/reference/goto-api.md#unconfirmed-behaviours lists the behaviour each one
plays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulators.goto import GoToEmulator, GoToSwitches
from tests.fixtures.goto import goto_client

U = "/identity/v1/Users"
G = "/identity/v1/Groups"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCHOP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Factory = Callable[..., GoToEmulator]


def start(make: Factory, **switches: Any) -> tuple[GoToEmulator, httpx.Client]:
    goto = make(rate_limit=0, **switches)
    return goto, goto_client(goto)


def create(http: httpx.Client, user_name: str = "jane@contoso.com", **extra: Any) -> dict:
    r = http.post(U, json={"userName": user_name, "name": {"givenName": "Jane", "familyName": "Doe"}, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def patchop(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCHOP], "Operations": list(ops)}


def test_defaults_follow_the_documented_spec() -> None:
    sw = GoToSwitches()
    assert (sw.dialect, sw.patch_mode, sw.active, sw.extension_attrs) == ("scim1", "merge", "ignore", "drop")
    assert (sw.users_paging, sw.bad_token, sw.error_body, sw.retry_after_on_429) == (False, "403", "auto", False)
    assert (sw.members_patch, sw.delete_frees_seat, sw.refresh_rotation) == ("replace", False, "never")
    assert (sw.client_credentials, sw.domain_unverified_status, sw.admin_license_paths) == (False, 400, True)
    assert (sw.over_assign_status, sw.rate_limit, sw.rate_burst) == (409, 10.0, 10)


def test_switch_values_are_validated(goto_emulator: GoToEmulator) -> None:
    with pytest.raises(ValueError, match="dialect"):
        goto_emulator.set_switch("dialect", "scim3")
    with pytest.raises(ValueError, match="unknown switch"):
        goto_emulator.set_switch("nope", 1)
    with pytest.raises(ValueError, match="users_paging"):
        GoToSwitches(users_paging="maybe")  # type: ignore[arg-type]
    r = httpx.post(goto_emulator.url + "/_emulator/switches", json={"dialect": "scim2", "active": "bogus"})
    assert r.status_code == 400
    assert goto_emulator.switches.dialect == "scim1"  # all-or-nothing
    r = httpx.post(goto_emulator.url + "/_emulator/switches", json={"dialect": "scim2"})
    assert r.status_code == 200
    assert r.json()["dialect"] == "scim2"
    assert goto_emulator.switches.dialect == "scim2"


# ---------------------------------------------------------------- dialect


def test_dialect_scim2_shapes(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, dialect="scim2")
    with http:
        user = create(http, schemas=["urn:ietf:params:scim:schemas:core:2.0:User"])
        assert user["schemas"][0] == "urn:ietf:params:scim:schemas:core:2.0:User"
        assert user["meta"]["resourceType"] == "User"
        body = http.get(U).json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        assert {"Resources", "totalResults", "itemsPerPage", "startIndex"} <= set(body)
        assert "resources" not in body
        err = http.get(f"{U}/1234567890123456789")
        assert err.status_code == 404
        assert err.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert err.json()["status"] == "404"
        assert http.get("/identity/v1/ServiceProviderConfig").status_code == 200
        assert http.get("/identity/v1/ServiceProviderConfigs").status_code == 200
        # 1.x request style refused.
        r = http.post(U, json={"schemas": ["urn:scim:schemas:core:1.0"], "userName": "b@contoso.com"})
        assert r.status_code == 400
        # SCIM 2.0 DELETE answers 204; members may come without type (Entra style).
        gid = http.post(G, json={"displayName": "Sales", "members": [{"value": user["id"]}]}).json()["id"]
        assert http.get(f"{G}/{gid}").json()["members"] == [{"value": user["id"], "type": "User"}]
        assert http.delete(f"{U}/{user['id']}").status_code == 204


def test_dialect_scim1_refuses_scim2_request_style(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, dialect="scim1")
    with http:
        r = http.post(U, json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b@contoso.com"})
        assert r.status_code == 400
        assert create(http, schemas=["urn:scim:schemas:core:1.0"])["schemas"] == ["urn:scim:schemas:core:1.0"]


def test_dialect_mixed_accepts_both_and_answers_scim1(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, dialect="mixed")
    with http:
        create(http, "a@contoso.com", schemas=["urn:ietf:params:scim:schemas:core:2.0:User"])
        create(http, "b@contoso.com", schemas=["urn:scim:schemas:core:1.0"])
        assert "resources" in http.get(U).json()
        assert http.get("/identity/v1/ServiceProviderConfig").status_code == 200
        assert http.get("/identity/v1/ServiceProviderConfigs").status_code == 200


# ---------------------------------------------------------------- patch_mode


def test_patch_mode_merge_refuses_patchop(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, patch_mode="merge")
    with http:
        uid = create(http)["id"]
        op = patchop({"op": "replace", "path": "name.familyName", "value": "Byron"})
        assert http.patch(f"{U}/{uid}", json=op).status_code == 400
        assert http.patch(f"{U}/{uid}", json={"name": {"familyName": "Byron"}}).status_code == 200


def test_patch_mode_patchop_refuses_merge(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, patch_mode="patchop")
    with http:
        uid = create(http)["id"]
        assert http.patch(f"{U}/{uid}", json={"name": {"familyName": "Byron"}}).status_code == 400
        op = patchop({"op": "Replace", "path": "name.familyName", "value": "Byron"})
        r = http.patch(f"{U}/{uid}", json=op)
        assert r.status_code == 200
        assert r.json()["name"]["familyName"] == "Byron"
        bad = patchop({"op": "replace", "path": "nickName", "value": "x"})
        assert http.patch(f"{U}/{uid}", json=bad).status_code == 400


def test_patch_mode_both_accepts_both(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, patch_mode="both")
    with http:
        uid = create(http)["id"]
        assert http.patch(f"{U}/{uid}", json={"displayName": "A"}).json()["displayName"] == "A"
        op = patchop({"op": "replace", "value": {"displayName": "B"}})  # path-less replace
        assert http.patch(f"{U}/{uid}", json=op).json()["displayName"] == "B"


def test_group_patchop_add_and_remove_members(make_goto_emulator: Factory) -> None:
    goto, http = start(make_goto_emulator, patch_mode="patchop")
    keys = [goto.add_user(userName=f"u{i}@contoso.com") for i in range(3)]
    with http:
        gid = http.post(G, json={"displayName": "Sales"}).json()["id"]
        add = patchop({"op": "Add", "path": "members", "value": [{"type": "user", "value": k} for k in keys]})
        assert http.patch(f"{G}/{gid}", json=add).status_code == 200
        remove = patchop(
            {"op": "Remove", "path": f'members[value eq "{keys[0]}"]'},
            {"op": "Remove", "path": "members", "value": [{"type": "user", "value": keys[1]}]},
        )
        r = http.patch(f"{G}/{gid}", json=remove)
        assert r.status_code == 200
        assert [m["value"] for m in r.json()["members"]] == [keys[2]]
        rename = patchop({"op": "Replace", "path": "displayName", "value": "Sales 2"})
        assert http.patch(f"{G}/{gid}", json=rename).json()["displayName"] == "Sales 2"


# ---------------------------------------------------------------- active


def test_active_honour_stores_and_returns(make_goto_emulator: Factory) -> None:
    goto, http = start(make_goto_emulator, active="honour", patch_mode="both")
    with http:
        user = create(http)
        assert user["active"] is True
        r = http.patch(f"{U}/{user['id']}", json=patchop({"op": "Replace", "path": "active", "value": "False"}))
        assert r.json()["active"] is False  # Entra sends the string "False"
        assert http.get(f"{U}/{user['id']}").json()["active"] is False
    assert goto.user(user["id"])["active"] is False  # type: ignore[index]


def test_active_ignore_accepts_but_does_not_store(make_goto_emulator: Factory) -> None:
    goto, http = start(make_goto_emulator, active="ignore")
    with http:
        user = create(http, active=False)
        assert "active" not in user
        assert http.patch(f"{U}/{user['id']}", json={"active": False}).status_code == 200
    assert goto.user(user["id"])["active"] is True  # type: ignore[index]


def test_active_reject_gives_400(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, active="reject")
    with http:
        assert http.post(U, json={"userName": "a@contoso.com", "active": True}).status_code == 400
        uid = create(http)["id"]
        assert http.patch(f"{U}/{uid}", json={"active": False}).status_code == 400


# ---------------------------------------------------------------- extension_attrs

EXTRAS = {
    "externalId": "ext-1",
    "emails": [{"value": "jane@contoso.com", "type": "work", "primary": True}],
    ENTERPRISE: {"department": "Sales", "employeeNumber": "42", "costCenter": "CC1", "division": "EU"},
}


def test_extension_attrs_store(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, extension_attrs="store")
    with http:
        user = create(http, **EXTRAS)
        assert user["externalId"] == "ext-1"
        assert user["emails"] == EXTRAS["emails"]
        assert user[ENTERPRISE] == EXTRAS[ENTERPRISE]
        assert ENTERPRISE in user["schemas"]
        group = http.post(G, json={"displayName": "Sales", "externalId": "g-1"}).json()
        assert group["externalId"] == "g-1"


def test_extension_attrs_drop(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, extension_attrs="drop")
    with http:
        user = create(http, **EXTRAS)
        assert "externalId" not in user
        assert "emails" not in user
        assert ENTERPRISE not in user
        assert "externalId" not in http.post(G, json={"displayName": "S", "externalId": "g"}).json()


def test_extension_attrs_reject(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, extension_attrs="reject")
    with http:
        for attr, value in EXTRAS.items():
            assert http.post(U, json={"userName": "a@contoso.com", attr: value}).status_code == 400, attr
        assert http.post(G, json={"displayName": "S", "externalId": "g"}).status_code == 400


def test_enterprise_patchop_paths(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, extension_attrs="store", patch_mode="patchop")
    with http:
        uid = create(http)["id"]
        ops = patchop(
            {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Sales"},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "jd@contoso.com"},
            {"op": "Replace", "path": "externalId", "value": "e-9"},
        )
        body = http.patch(f"{U}/{uid}", json=ops).json()
        assert body[ENTERPRISE] == {"department": "Sales"}
        assert body["emails"] == [{"value": "jd@contoso.com", "type": "work", "primary": True}]
        assert body["externalId"] == "e-9"


# ---------------------------------------------------------------- users_paging


def test_users_paging_off_ignores_parameters(make_goto_emulator: Factory) -> None:
    goto, http = start(make_goto_emulator, users_paging=False)
    for i in range(5):
        goto.add_user(userName=f"u{i}@contoso.com")
    with http:
        body = http.get(U, params={"startIndex": 2, "count": 2}).json()
    assert body["totalResults"] == 6
    assert len(body["resources"]) == 6


def test_users_paging_on_honours_parameters_default_and_cap(make_goto_emulator: Factory) -> None:
    goto, http = start(make_goto_emulator, users_paging=True, users_page_size=3, users_max_page_size=4)
    for i in range(9):
        goto.add_user(userName=f"u{i}@contoso.com")
    with http:
        page = http.get(U, params={"startIndex": 2, "count": 2}).json()
        assert page["totalResults"] == 10
        assert [u["userName"] for u in page["resources"]] == ["u0@contoso.com", "u1@contoso.com"]
        assert len(http.get(U).json()["resources"]) == 3  # default page size
        assert len(http.get(U, params={"count": 50}).json()["resources"]) == 4  # capped
        assert http.get(U, params={"startIndex": 10}).json()["resources"][0]["userName"] == "u8@contoso.com"


# ---------------------------------------------------------------- bad_token


def test_bad_token_403_default(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0)
    r = httpx.get(goto.scim_url + "/Users", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 403
    assert r.json() == {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}
    assert httpx.get(goto.scim_url + "/Users").status_code == 403  # missing token
    assert httpx.get(goto.admin_url + "/me").status_code == 403


def test_bad_token_401_empty(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0, bad_token="401-empty")
    r = httpx.get(goto.scim_url + "/Users/me", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401
    assert r.content == b""
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_valid_token_without_org_role_is_401_not_authorized(goto_emulator: GoToEmulator) -> None:
    with goto_client(goto_emulator, admin=False) as http:
        r = http.get(U)
    assert r.status_code == 401
    assert r.json()["code"] == "not.authorized"
    assert r.json()["uri"] == "/v1/Users"


def test_read_only_role_cannot_write(goto_emulator: GoToEmulator) -> None:
    with goto_client(goto_emulator, roles=["ROLE_ORG_READ"]) as http:
        assert http.get(U).status_code == 200
        assert http.post(U, json={"userName": "a@contoso.com"}).status_code == 401


def test_scope_is_required(goto_emulator: GoToEmulator) -> None:
    with goto_client(goto_emulator, scopes=["identity:scim.me"]) as http:
        assert http.get(f"{U}/me").status_code == 200
        assert http.get(U).status_code == 401


# ---------------------------------------------------------------- error_body


def test_error_body_gotocode(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, error_body="gotocode")
    with http:
        r = http.get(f"{U}/1234567890123456789")
    assert r.json() == {"code": "user.not.found", "uri": "/v1/Users/1234567890123456789", "message": "User not found"}


def test_error_body_empty(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, error_body="empty")
    with http:
        r = http.post(U, json={"userName": ""})
    assert r.status_code == 400
    assert r.content == b""


def test_error_body_scim2(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, error_body="scim2")
    with http:
        create(http)
        r = http.post(U, json={"userName": "jane@contoso.com"})
    assert r.status_code == 409
    assert r.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "detail": "Username is already in use.",
        "scimType": "uniqueness",
    }


# ---------------------------------------------------------------- retry_after_on_429


@pytest.mark.parametrize("on", [True, False])
def test_retry_after_on_429(make_goto_emulator: Factory, on: bool) -> None:
    goto = make_goto_emulator(rate_limit=0.01, rate_burst=1, retry_after_on_429=on)
    with goto_client(goto) as http:
        assert http.get(U).status_code == 200
        r = http.get(U)
    assert r.status_code == 429
    if on:
        assert int(r.headers["Retry-After"]) >= 1
    else:
        assert "Retry-After" not in r.headers


# ---------------------------------------------------------------- members_patch


@pytest.mark.parametrize(("mode", "expected"), [("replace", [1]), ("add", [0, 1])])
def test_members_patch(make_goto_emulator: Factory, mode: str, expected: list[int]) -> None:
    goto, http = start(make_goto_emulator, members_patch=mode)
    keys = [goto.add_user(userName=f"u{i}@contoso.com") for i in range(2)]
    with http:
        gid = http.post(G, json={"displayName": "S", "members": [{"type": "user", "value": keys[0]}]}).json()["id"]
        r = http.patch(f"{G}/{gid}", json={"displayName": "S", "members": [{"type": "user", "value": keys[1]}]})
    assert [m["value"] for m in r.json()["members"]] == [keys[i] for i in expected]


# ---------------------------------------------------------------- delete_frees_seat


@pytest.mark.parametrize("frees", [True, False])
def test_delete_frees_seat(make_goto_emulator: Factory, frees: bool) -> None:
    goto, http = start(make_goto_emulator, delete_frees_seat=frees)
    key = goto.add_user(userName="a@contoso.com", licenses=["G2M"])
    g2m = goto.license_key("G2M")
    assert goto.licenses_of(key) == [g2m]
    with http:
        assert http.delete(f"{U}/{key}").status_code == 200
    assert goto.licenses_of(key) == ([] if frees else [g2m])


# ---------------------------------------------------------------- domain_unverified_status


def test_domain_unverified_status(make_goto_emulator: Factory) -> None:
    _, http = start(make_goto_emulator, domain_unverified_status=403)
    with http:
        r = http.post(U, json={"userName": "a@fabrikam.com"})
    assert r.status_code == 403
    assert r.json()["code"] == "invalid.domain"
